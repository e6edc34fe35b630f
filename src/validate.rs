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
use crate::timeline::{Overlay, Registration, View};
use crate::value::EntityId;

/// Where each new record came from in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// 1-based line in the input.
    pub line: usize,
    /// 0-based position among the submitted events.
    pub index: usize,
}

/// A batch that passed every rule, with what indexing it needs.
pub struct Plan {
    /// For each record (in seq order), the timelines it belongs to.
    pub timelines: Vec<Vec<(Ns, EntityId)>>,
    /// Retractions as `(retracted seq, retraction seq)`.
    pub retractions: Vec<(u64, u64)>,
}

/// Checks a batch of new records (consecutive seqs after the store's head).
///
/// # Errors
/// [`Error::Refused`] naming the line (and, for a broken later event, its seq)
/// and the rule; storage errors as they come.
pub fn check(store: &Store, records: &[StoredEvent], origins: &[Origin]) -> Result<Plan> {
    let first_seq = records.first().map_or(1, |r| r.seq);
    let mut overlay = Overlay::new(first_seq);
    let mut plan = Plan { timelines: Vec::with_capacity(records.len()), retractions: Vec::new() };
    let mut touched: BTreeMap<(Ns, EntityId), u64> = BTreeMap::new();
    for (rec, origin) in records.iter().zip(origins) {
        let keys = {
            let view = View::with_overlay(store, &overlay);
            if let Event::Retraction { retracts, .. } = &rec.event {
                let target = retraction_target(&view, rec, retracts, *origin)?;
                plan.retractions.push((target.seq, rec.seq));
                touch(&mut touched, view.timelines_of(&target)?, rec.seq);
                Vec::new()
            } else {
                let keys = view.timelines_of(rec)?;
                touch(&mut touched, keys.clone(), rec.seq);
                keys
            }
        };
        if let Some((target, _)) = plan.retractions.last().filter(|(_, by)| *by == rec.seq) {
            overlay.retract(*target, rec.seq);
        }
        overlay.push(rec.clone(), keys.clone());
        plan.timelines.push(keys);
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
        None => Ok(plan),
    }
}

fn touch(touched: &mut BTreeMap<(Ns, EntityId), u64>, keys: Vec<(Ns, EntityId)>, seq: u64) {
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
            for rec in view.events(Ns::Deal, &key.1)? {
                if let Some(b) = deal.apply(&rec) {
                    return Ok(Some((rec.seq, b)));
                }
            }
            Ok(None)
        }
        Ns::Entity => entity_breach(view, &key.1),
    }
}

/// Rules 2, 3 and 5 over one entity's timeline.
fn entity_breach(view: &View<'_>, slug: &EntityId) -> Result<Option<(u64, Breach)>> {
    let events = view.events(Ns::Entity, slug)?;
    let reg = events.iter().filter_map(|r| Registration::of(r)).min_by_key(|r| r.seq);
    let mut cap = CapTable::default();
    let mut partnerships = Partnerships::default();
    let mut roles = Roles::default();
    for rec in &events {
        let found = match existence_breach(view, slug, rec, reg.as_ref())? {
            Some(b) => Some(b),
            None => match reg.as_ref().map(|r| r.kind) {
                Some(Kind::Company) => {
                    let announcement = match rec.event.deal_id() {
                        Some(deal) if !matches!(rec.event, Event::DealAnnounced { .. }) => view.announcement(deal)?,
                        _ => None,
                    };
                    cap.apply(slug, rec, announcement.as_deref()).or_else(|| partnerships.apply(slug, rec))
                }
                Some(Kind::Person) => roles.apply(rec),
                None => None,
            },
        };
        if let Some(b) = found {
            return Ok(Some((rec.seq, b)));
        }
    }
    Ok(None)
}

/// Rule 2 for one event of `slug`'s timeline.
fn existence_breach(
    view: &View<'_>,
    slug: &EntityId,
    rec: &StoredEvent,
    reg: Option<&Registration>,
) -> Result<Option<Breach>> {
    let existence = |message: String| Ok(Some(Breach { rule: Rule::Existence, message }));
    if let Some(own) = Registration::of(rec) {
        return match reg {
            Some(first) if first.seq != own.seq => {
                existence(format!("{slug} is already registered as a {} (seq {})", first.kind.name(), first.seq))
            }
            _ => Ok(None),
        };
    }
    let Some(reg) = reg else {
        return existence(format!("{slug} is not registered"));
    };
    let Some(date) = rec.effective else { return Ok(None) };
    if date < reg.effective {
        return existence(format!("{slug} does not exist on {date}: it is registered from {}", reg.effective));
    }
    for (id, part) in view.parties(rec)? {
        if id != *slug {
            continue;
        }
        if let Some(kind) = part.required_kind().filter(|k| *k != reg.kind) {
            return existence(format!(
                "{slug} is a {}, but a {} must be a {}",
                reg.kind.name(),
                part.name(),
                kind.name()
            ));
        }
    }
    Ok(None)
}
