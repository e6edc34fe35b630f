//! The rules of contract §4, checked across the whole timeline.
//!
//! A batch is staged over the store by the `index` module; every timeline the batch
//! touches (the entities and deals its events name, and those of the events
//! its retractions remove) is then folded from its start with the new events
//! at their `(effective, seq)` place. The first breach of each timeline is
//! found; a breach at a stored event means a late event or a retraction broke
//! it, and the error names that later event. This module must never write:
//! it answers "may this batch be stored?" and nothing else.

use std::sync::Arc;

use crate::error::{Error, Result, Rule};
use crate::event::{Event, Kind, StoredEvent};
use crate::index::Indexer;
use crate::projection::{Breach, CapTable, DealState, Partnerships, Roles};
use crate::store::{Ns, Store};
use crate::timeline::{Fact, Registration, TimelineKey};
use crate::value::EntityId;

/// Where each new record came from in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// 1-based line in the input.
    pub line: usize,
    /// 0-based position among the submitted events.
    pub index: usize,
}

/// Checks a batch of new records (consecutive seqs after the store's head)
/// and returns the staged index updates, to be written after the log.
///
/// # Errors
/// [`Error::Refused`] naming the line (and, for a broken later event, its seq)
/// and the rule; storage errors as they come.
pub fn check<'a>(store: &'a Store, records: &[StoredEvent], origins: &[Origin]) -> Result<Indexer<'a>> {
    let mut staged = Indexer::new(store);
    for (rec, origin) in records.iter().zip(origins) {
        let refuse = |rule: Rule, message: String| Error::Refused {
            line: origin.line,
            index: origin.index,
            rule,
            message: format!("{}: {message}", rec.event.type_name()),
        };
        match &rec.event {
            Event::Retraction { retracts, .. } => {
                retraction_target(&staged, rec, retracts).map_err(|m| refuse(Rule::Retraction, m))?
            }
            Event::DealCompleted { deal, .. } | Event::DealTerminated { deal, .. }
                if staged.announcement(deal, rec.seq)?.is_none() =>
            {
                return Err(refuse(Rule::Deal, format!("deal {deal} is not pending: it was never announced")));
            }
            _ => {}
        }
        staged.add(rec)?;
    }
    let first_seq = records.first().map_or(0, |r| r.seq);
    let batch = Batch { records, origins, first_seq, store };
    // The error reported: the earliest line; for one line, a rule its own
    // event breaks before what it would do to a stored, later event (a
    // completion dated before its announcement breaks the deal rule: that it
    // would also overfill a cap table later is a consequence, not the cause).
    let mut worst: Option<((usize, bool, u64), Error)> = None;
    for (key, cause, (seq, found)) in staged.check_each(first_breach) {
        let cause = if seq < first_seq { culprit(&key, &staged.all(&key), first_seq).unwrap_or(cause) } else { cause };
        let (origin, err) = batch.refusal(seq, cause, found)?;
        let rank = (origin.line, seq < first_seq, seq);
        if worst.as_ref().is_none_or(|(r, _)| rank < *r) {
            worst = Some((rank, err));
        }
    }
    match worst {
        Some((_, err)) => Err(err),
        None => Ok(staged),
    }
}

/// The batch event that breaks a stored event of a timeline: the first one
/// (in input order) such that the batch up to it already breaks a stored
/// event. Only on the error path: it folds the timeline once per candidate.
fn culprit(key: &TimelineKey, facts: &[Arc<Fact>], first_seq: u64) -> Option<u64> {
    let mut candidates: Vec<u64> =
        facts.iter().flat_map(|f| [Some(f.seq), f.retracted_by]).flatten().filter(|seq| *seq >= first_seq).collect();
    candidates.sort_unstable();
    candidates.dedup();
    candidates.into_iter().find(|&c| {
        let prefix: Vec<Arc<Fact>> = facts
            .iter()
            .filter(|f| f.seq < first_seq || f.seq <= c)
            .filter(|f| f.retracted_by.is_none_or(|by| by >= first_seq && by > c))
            .cloned()
            .collect();
        first_breach(key, &prefix).is_some_and(|(seq, _)| seq < first_seq)
    })
}

/// The batch being checked, to name its events in errors.
struct Batch<'r> {
    records: &'r [StoredEvent],
    origins: &'r [Origin],
    first_seq: u64,
    store: &'r Store,
}

impl Batch<'_> {
    fn position(&self, seq: u64) -> Option<usize> {
        let i = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        (i < self.records.len()).then_some(i)
    }

    fn describe(&self, seq: u64) -> Result<(String, String)> {
        let stored;
        let rec = match self.position(seq) {
            Some(i) => &self.records[i],
            None => {
                stored = self.store.get(seq)?;
                &stored
            }
        };
        Ok((rec.event.type_name().to_owned(), date_text(rec)))
    }

    /// Turns a breach into the error to report, naming the input line.
    fn refusal(&self, seq: u64, cause: u64, found: Breach) -> Result<(Origin, Error)> {
        let (kind, date) = self.describe(seq)?;
        let (origin, message) = match self.position(seq) {
            Some(i) => (self.origins[i], format!("{kind}: {}", found.message)),
            None => {
                let i = self.position(cause).unwrap_or(0);
                let cause_rec = &self.records[i];
                let what = match &cause_rec.event {
                    Event::Retraction { retracts, .. } => {
                        let target = self
                            .store
                            .seq_of_id(retracts)?
                            .or_else(|| self.records.iter().find(|r| r.id == *retracts).map(|r| r.seq));
                        format!("retraction of seq {}", target.unwrap_or(0))
                    }
                    ev => format!("{} effective {}", ev.type_name(), date_text(cause_rec)),
                };
                let message = format!("{what} would break seq {seq} ({kind} effective {date}): {}", found.message);
                (self.origins[i], message)
            }
        };
        Ok((origin, Error::Refused { line: origin.line, index: origin.index, rule: found.rule, message }))
    }
}

/// Rule 7: the retracted event exists, is no retraction and is not retracted yet.
fn retraction_target(staged: &Indexer<'_>, rec: &StoredEvent, retracts: &uuid::Uuid) -> Result<(), String> {
    let lookup = |e: Error| e.to_string();
    let seq = staged
        .seq_of_id(retracts)
        .map_err(lookup)?
        .filter(|s| *s < rec.seq)
        .ok_or_else(|| format!("no stored event has id {retracts}"))?;
    if staged.is_retraction(seq).map_err(lookup)? {
        return Err(format!("seq {seq} is itself a retraction; a retraction cannot be retracted"));
    }
    if let Some(by) = staged.retracted_by(seq).map_err(lookup)? {
        return Err(format!("seq {seq} is already retracted by seq {by}"));
    }
    Ok(())
}

fn date_text(rec: &StoredEvent) -> String {
    rec.effective.map_or_else(|| "-".to_owned(), |d| d.to_string())
}

/// The first breach in one timeline (its live facts in fold order).
fn first_breach(key: &TimelineKey, facts: &[Arc<Fact>]) -> Option<(u64, Breach)> {
    match key.0 {
        Ns::Deal => {
            let mut deal = DealState::default();
            facts.iter().find_map(|f| deal.apply(f).map(|b| (f.seq, b)))
        }
        Ns::Entity => entity_breach(&key.1, facts),
        Ns::Name => None,
    }
}

/// Rules 2, 3 and 5 over one entity's timeline.
fn entity_breach(slug: &EntityId, facts: &[Arc<Fact>]) -> Option<(u64, Breach)> {
    let reg = facts.iter().filter_map(|f| Registration::of(f)).min_by_key(|r| r.seq);
    let mut cap = CapTable::default();
    let mut partnerships = Partnerships::default();
    let mut roles = Roles::default();
    facts.iter().find_map(|fact| {
        let found = existence_breach(slug, fact, reg.as_ref()).or_else(|| match reg.as_ref().map(|r| r.kind) {
            Some(Kind::Company) => cap.apply(slug, fact).or_else(|| partnerships.apply(slug, fact)),
            Some(Kind::Person) => roles.apply(fact),
            None => None,
        });
        found.map(|b| (fact.seq, b))
    })
}

/// Rule 2 for one fact of `slug`'s timeline.
fn existence_breach(slug: &EntityId, fact: &Fact, reg: Option<&Registration>) -> Option<Breach> {
    let existence = |message: String| Some(Breach { rule: Rule::Existence, message });
    if let Some(own) = Registration::of(fact) {
        return match reg {
            Some(first) if first.seq != own.seq => {
                existence(format!("{slug} is already registered as a {} (seq {})", first.kind.name(), first.seq))
            }
            _ => None,
        };
    }
    let Some(reg) = reg else {
        return existence(format!("{slug} is not registered"));
    };
    let date = fact.effective;
    if date < reg.effective {
        return existence(format!("{slug} does not exist on {date}: it is registered from {}", reg.effective));
    }
    let wrong = fact
        .parties()
        .into_iter()
        .filter(|(id, _)| *id == slug)
        .find_map(|(_, part)| part.required_kind().filter(|k| *k != reg.kind).map(|k| (part, k)));
    let (part, kind) = wrong?;
    existence(format!("{slug} is a {}, but a {} must be a {}", reg.kind.name(), part.name(), kind.name()))
}
