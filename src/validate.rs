//! The rules of contract §4, checked across the whole timeline.
//!
//! A batch is laid over the store as an [`Overlay`]; every timeline the batch
//! touches (the entities and deals its events name, and those of the events
//! its retractions remove) is then folded from its start with the new events
//! at their `(effective, seq)` place. The first breach of each timeline is
//! found; a breach at a stored event means a late event or a retraction broke
//! it, and the error names that later event. This module must never write:
//! it answers "may this batch be stored?" and nothing else.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::error::{Error, Result, Rule};
use crate::event::{Event, Kind, StoredEvent};
use crate::projection::{Breach, CapTable, DealState, Partnerships, Roles};
use crate::store::{Ns, Store};
use crate::timeline::{Fact, Overlay, Registration, View};
use crate::value::EntityId;

/// Where each new record came from in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// 1-based line in the input.
    pub line: usize,
    /// 0-based position among the submitted events.
    pub index: usize,
}

/// Checks a batch of new records (consecutive seqs after the store's head).
///
/// # Errors
/// [`Error::Refused`] naming the line (and, for a broken later event, its seq)
/// and the rule; storage errors as they come.
pub fn check(store: &Store, records: &[StoredEvent], origins: &[Origin]) -> Result<()> {
    let first_seq = records.first().map_or(1, |r| r.seq);
    let mut overlay = Overlay::new(first_seq);
    let mut touched: BTreeMap<(Ns, EntityId), u64> = BTreeMap::new();
    for (rec, origin) in records.iter().zip(origins) {
        let (fact, retracted) = {
            let view = View::with_overlay(store, &overlay);
            if let Event::Retraction { retracts, .. } = &rec.event {
                let target = retraction_target(&view, rec, retracts, *origin)?;
                let target_fact = view.fact_of(&target)?;
                touch(&mut touched, target_fact.iter().flat_map(Fact::timelines), rec.seq);
                (None, Some(target.seq))
            } else {
                let fact = view.fact_of(rec)?;
                touch(&mut touched, fact.iter().flat_map(Fact::timelines), rec.seq);
                (fact, None)
            }
        };
        if let Some(target) = retracted {
            overlay.retract(target, rec.seq);
        }
        overlay.push(rec.clone(), fact);
    }
    let view = View::with_overlay(store, &overlay);
    let lines: HashMap<u64, Origin> = records.iter().map(|r| r.seq).zip(origins.iter().copied()).collect();
    let mut worst: Option<(Origin, u64, Error)> = None;
    for (key, cause) in &touched {
        let Some((seq, found)) = first_breach(&view, key)? else { continue };
        let (origin, err) = refusal(&view, &lines, seq, *cause, found)?;
        if worst.as_ref().is_none_or(|(o, s, _)| (origin.line, seq) < (o.line, *s)) {
            worst = Some((origin, seq, err));
        }
    }
    match worst {
        Some((_, _, err)) => Err(err),
        None => Ok(()),
    }
}

fn touch(touched: &mut BTreeMap<(Ns, EntityId), u64>, keys: impl IntoIterator<Item = (Ns, EntityId)>, seq: u64) {
    for key in keys {
        touched.entry(key).or_insert(seq);
    }
}

/// Rule 7: the retracted event exists, is no retraction and is not retracted yet.
fn retraction_target(
    view: &View<'_>,
    rec: &StoredEvent,
    retracts: &uuid::Uuid,
    origin: Origin,
) -> Result<Rc<StoredEvent>> {
    let refuse = |message: String| Error::Refused {
        line: origin.line,
        index: origin.index,
        rule: Rule::Retraction,
        message: format!("retraction: {message}"),
    };
    let seq = view
        .seq_of_id(retracts)?
        .filter(|s| *s < rec.seq)
        .ok_or_else(|| refuse(format!("no stored event has id {retracts}")))?;
    let target = view.record(seq)?;
    if matches!(target.event, Event::Retraction { .. }) {
        return Err(refuse(format!("seq {seq} is itself a retraction; a retraction cannot be retracted")));
    }
    if let Some(by) = view.retracted_by(seq)? {
        return Err(refuse(format!("seq {seq} ({}) is already retracted by seq {by}", target.event.type_name())));
    }
    Ok(target)
}

/// Turns a breach into the error to report, naming the input line.
fn refusal(
    view: &View<'_>,
    lines: &HashMap<u64, Origin>,
    seq: u64,
    cause: u64,
    found: Breach,
) -> Result<(Origin, Error)> {
    let rec = view.record(seq)?;
    let (origin, message) = match lines.get(&seq) {
        Some(origin) => (*origin, format!("{}: {}", rec.event.type_name(), found.message)),
        None => {
            let cause_rec = view.record(cause)?;
            let what = match &cause_rec.event {
                Event::Retraction { retracts, .. } => {
                    let target = view.seq_of_id(retracts)?.unwrap_or(0);
                    format!("retraction of seq {target}")
                }
                ev => format!("{} effective {}", ev.type_name(), date_text(&cause_rec)),
            };
            let origin = lines.get(&cause).copied().unwrap_or(Origin { line: 0, index: 0 });
            let message = format!(
                "{what} would break seq {seq} ({} effective {}): {}",
                rec.event.type_name(),
                date_text(&rec),
                found.message
            );
            (origin, message)
        }
    };
    Ok((origin, Error::Refused { line: origin.line, index: origin.index, rule: found.rule, message }))
}

fn date_text(rec: &StoredEvent) -> String {
    rec.effective.map_or_else(|| "-".to_owned(), |d| d.to_string())
}

/// The first breach in one timeline, in fold order.
fn first_breach(view: &View<'_>, key: &(Ns, EntityId)) -> Result<Option<(u64, Breach)>> {
    match key.0 {
        Ns::Deal => {
            let mut deal = DealState::default();
            for fact in view.facts(Ns::Deal, &key.1)? {
                if let Some(b) = deal.apply(&fact) {
                    return Ok(Some((fact.seq, b)));
                }
            }
            Ok(None)
        }
        Ns::Entity => entity_breach(view, &key.1),
    }
}

/// Rules 2, 3 and 5 over one entity's timeline.
fn entity_breach(view: &View<'_>, slug: &EntityId) -> Result<Option<(u64, Breach)>> {
    let facts = view.facts(Ns::Entity, slug)?;
    let reg = facts.iter().filter_map(Registration::of).min_by_key(|r| r.seq);
    let mut cap = CapTable::default();
    let mut partnerships = Partnerships::default();
    let mut roles = Roles::default();
    for fact in &facts {
        let found = existence_breach(slug, fact, reg.as_ref()).or_else(|| match reg.as_ref().map(|r| r.kind) {
            Some(Kind::Company) => cap.apply(slug, fact).or_else(|| partnerships.apply(slug, fact)),
            Some(Kind::Person) => roles.apply(fact),
            None => None,
        });
        if let Some(b) = found {
            return Ok(Some((fact.seq, b)));
        }
    }
    Ok(None)
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
