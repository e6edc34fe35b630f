//! Replaying history: one entity's events in fold order, each with the
//! entity's state after that day, and the key change it made.
//!
//! The cost is proportional to the entity's own timeline (one as-of fold per
//! distinct date), never to the whole log. This module must never write.

use std::collections::{BTreeMap, HashMap};

use crate::answer::{HistoryLine, State};
use crate::error::{Error, Result};
use crate::json;
use crate::query::Query;
use crate::store::Ns;
use crate::timeline::View;
use crate::value::{pct_text, Date, EntityId};

/// The history of `id` in `view`, bounded by effective dates `from..=to`.
///
/// # Errors
/// [`Error::UnknownEntity`] when `id` is not registered in the view; storage errors.
pub fn history(view: &View<'_>, id: &str, from: Option<Date>, to: Option<Date>) -> Result<Vec<HistoryLine>> {
    let unknown = || Error::UnknownEntity { id: id.to_owned(), expected: "company or person" };
    let slug = EntityId::parse(id).map_err(|_| unknown())?;
    let reg = view.registration(&slug)?.ok_or_else(unknown)?;
    let mut states: HashMap<Date, State> = HashMap::new();
    let mut lines: Vec<HistoryLine> = Vec::new();
    let mut before: Option<State> = None;
    let mut day: Option<(Date, State)> = None;
    for fact in view.facts(Ns::Entity, &slug)? {
        let date = fact.effective;
        let state = match states.get(&date) {
            Some(state) => state.clone(),
            None => {
                let state = Query::new(view, date).state(id, reg.kind)?;
                states.insert(date, state.clone());
                state
            }
        };
        if day.as_ref().is_none_or(|(d, _)| *d != date) {
            before = day.take().map(|(_, s)| s);
            day = Some((date, state.clone()));
        }
        // States are the day's closing state, so a day's change shows on its last event.
        if let Some(last) = lines.last_mut().filter(|l| l.effective == date) {
            last.change.clear();
        }
        let change = change(before.as_ref(), &state);
        if from.is_some_and(|f| date < f) || to.is_some_and(|t| date > t) {
            continue;
        }
        let rec = view.record(fact.seq)?;
        let mut event = json::log_object(&rec, view.retracted_by(rec.seq)?);
        event.shift_remove("seq");
        lines.push(HistoryLine {
            seq: rec.seq,
            effective: date,
            kind: rec.event.type_name(),
            event,
            state,
            summary: rec.event.describe(),
            change,
        });
    }
    Ok(lines)
}

/// The key change from one state to the next, in words (`meta 0% → 49%`).
pub fn change(before: Option<&State>, after: &State) -> String {
    let parts = match (before, after) {
        (Some(State::Ownership(b)), State::Ownership(a)) => {
            let mut parts = Vec::new();
            if b.name != a.name {
                parts.push(format!("name \"{}\" → \"{}\"", b.name, a.name));
            }
            parts.extend(diff_stakes(&stakes(b), &stakes(a)));
            if b.pending_deals.len() != a.pending_deals.len() {
                parts.push(format!("{} pending deal(s)", a.pending_deals.len()));
            }
            parts
        }
        (before, State::Career(a)) => {
            let roles = |s: Option<&State>| match s {
                Some(State::Career(c)) => c.current.iter().map(|r| format!("{} at {}", r.role, r.company)).collect(),
                _ => Vec::<String>::new(),
            };
            let (b, a) = (roles(before), roles(Some(&State::Career(a.clone()))));
            let ended = b.iter().filter(|r| !a.contains(r)).map(|r| format!("ends {r}"));
            let started = a.iter().filter(|r| !b.contains(r)).map(|r| format!("starts {r}"));
            ended.chain(started).collect()
        }
        (_, State::Ownership(a)) => diff_stakes(&BTreeMap::new(), &stakes(a)),
    };
    if parts.is_empty() {
        "no change".to_owned()
    } else {
        parts.join(", ")
    }
}

fn stakes(o: &crate::answer::Ownership) -> BTreeMap<EntityId, u64> {
    o.holders.iter().map(|h| (h.holder.clone(), h.stake_pct.0)).collect()
}

fn diff_stakes(before: &BTreeMap<EntityId, u64>, after: &BTreeMap<EntityId, u64>) -> Vec<String> {
    let mut holders: Vec<&EntityId> = before.keys().chain(after.keys()).collect();
    holders.sort();
    holders.dedup();
    holders
        .into_iter()
        .filter_map(|h| {
            let (b, a) = (before.get(h).copied().unwrap_or(0), after.get(h).copied().unwrap_or(0));
            (b != a).then(|| format!("{h} {} → {}", pct_text(b), pct_text(a)))
        })
        .collect()
}
