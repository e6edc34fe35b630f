//! Replaying history: one entity's events in fold order, each with the
//! entity's state after that day and the key change it made; and the whole
//! ledger in fold order, for custom projections.
//!
//! An entity's replay costs its own timeline (one as-of fold per distinct
//! date), never the whole log. This module must never write.

use std::collections::{BTreeMap, HashMap};
use std::iter::Peekable;
use std::sync::Arc;

use crate::answer::{HistoryLine, Ownership, State};
use crate::error::{Error, Result};
use crate::event::{Kind, StoredEvent};
use crate::json;
use crate::query::Query;
use crate::store::{Ns, Store};
use crate::timeline::{Fact, View};
use crate::value::{pct_text, Date, EntityId};

/// One entity's history, computed step by step: an iterator of
/// [`HistoryLine`]s in fold order `(effective, seq)`.
pub struct History<'a> {
    view: View<'a>,
    id: String,
    kind: Kind,
    facts: Peekable<std::vec::IntoIter<Arc<Fact>>>,
    from: Option<Date>,
    to: Option<Date>,
    states: HashMap<Date, State>,
    before: Option<State>,
    day: Option<(Date, State)>,
}

impl<'a> History<'a> {
    /// The history of `id` as seen by `view`, bounded by effective dates `from..=to`.
    ///
    /// # Errors
    /// [`Error::UnknownEntity`] when `id` is not registered in the view; storage errors.
    pub fn new(view: View<'a>, id: &str, from: Option<Date>, to: Option<Date>) -> Result<Self> {
        let unknown = || Error::UnknownEntity { id: id.to_owned(), expected: "company or person" };
        let slug = EntityId::parse(id).map_err(|_| unknown())?;
        let reg = view.registration(&slug)?.ok_or_else(unknown)?;
        let facts = view.facts(Ns::Entity, &slug)?.into_iter().peekable();
        Ok(Self {
            view,
            id: id.to_owned(),
            kind: reg.kind,
            facts,
            from,
            to,
            states: HashMap::new(),
            before: None,
            day: None,
        })
    }

    fn state_on(&mut self, date: Date) -> Result<State> {
        if let Some(state) = self.states.get(&date) {
            return Ok(state.clone());
        }
        let state = Query::new(&self.view, date).state(&self.id, self.kind)?;
        self.states.insert(date, state.clone());
        Ok(state)
    }

    fn step(&mut self, fact: Arc<Fact>) -> Result<Option<HistoryLine>> {
        let date = fact.effective;
        let state = self.state_on(date)?;
        if self.day.as_ref().is_none_or(|(d, _)| *d != date) {
            self.before = self.day.take().map(|(_, s)| s);
            self.day = Some((date, state.clone()));
        }
        if self.from.is_some_and(|f| date < f) || self.to.is_some_and(|t| date > t) {
            return Ok(None);
        }
        // States are the day's closing state, so a day's change shows on its last event.
        let last_of_day = self.facts.peek().is_none_or(|next| next.effective != date);
        let change = if last_of_day { change(self.before.as_ref(), &state) } else { String::new() };
        let rec = self.view.record(fact.seq)?;
        let mut event = json::log_object(&rec, self.view.retracted_by(rec.seq)?);
        event.shift_remove("seq");
        Ok(Some(HistoryLine {
            seq: rec.seq,
            effective: date,
            kind: rec.event.type_name(),
            event,
            state,
            summary: rec.event.describe(),
            change,
        }))
    }
}

impl Iterator for History<'_> {
    type Item = Result<HistoryLine>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(fact) = self.facts.next() {
            match self.step(fact) {
                Ok(None) => continue,
                Ok(Some(line)) => return Some(Ok(line)),
                Err(e) => return Some(Err(e)),
            }
        }
        None
    }
}

/// The whole ledger in fold order `(effective, seq)` as known at a seq:
/// every event recorded by then and not retracted by then (retractions
/// themselves act by leaving their targets out). It holds 16 bytes per event
/// for the order and reads each record when it is reached.
pub struct FoldOrder<'a> {
    store: &'a Store,
    order: std::vec::IntoIter<(Date, u64)>,
}

impl<'a> FoldOrder<'a> {
    /// Orders the events of `store` visible at `upto`.
    ///
    /// # Errors
    /// Storage errors and [`Error::Corrupt`].
    pub fn new(store: &'a Store, upto: u64) -> Result<Self> {
        let mut order = Vec::new();
        for rec in store.records_from(0) {
            let rec = rec?;
            if rec.seq > upto {
                break;
            }
            let retracted = store.retracted_by(rec.seq)?.is_some_and(|by| by <= upto);
            if let (Some(date), false) = (rec.effective, retracted) {
                order.push((date, rec.seq));
            }
        }
        order.sort_unstable();
        Ok(Self { store, order: order.into_iter() })
    }
}

impl Iterator for FoldOrder<'_> {
    type Item = Result<StoredEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        self.order.next().map(|(_, seq)| self.store.get(seq))
    }
}

/// The key change from one state to the next, in words (`meta 0% → 49%`).
pub fn change(before: Option<&State>, after: &State) -> String {
    let parts = match (before, after) {
        (Some(State::Ownership(b)), State::Ownership(a)) => ownership_change(b, a),
        (_, State::Ownership(a)) => diff_stakes(&BTreeMap::new(), &stakes(a)),
        (before, State::Career(a)) => {
            let before = match before {
                Some(State::Career(c)) => roles(c),
                _ => Vec::new(),
            };
            let after = roles(a);
            let ended = before.iter().filter(|r| !after.contains(r)).map(|r| format!("ends {r}"));
            let started = after.iter().filter(|r| !before.contains(r)).map(|r| format!("starts {r}"));
            ended.chain(started).collect()
        }
    };
    if parts.is_empty() {
        "no change".to_owned()
    } else {
        parts.join(", ")
    }
}

fn roles(c: &crate::answer::Career) -> Vec<String> {
    c.current.iter().map(|r| format!("{} at {}", r.role, r.company)).collect()
}

fn ownership_change(b: &Ownership, a: &Ownership) -> Vec<String> {
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

fn stakes(o: &Ownership) -> BTreeMap<EntityId, u64> {
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
