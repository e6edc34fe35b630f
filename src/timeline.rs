//! Timelines: the facts that name one entity (or one deal), in fold order
//! `(effective, seq)`, as seen from one point of transaction time.
//!
//! A [`Fact`] is what the folds need of one event: its dates, the event, its
//! retraction (if any) and, for a deal's completion or termination, the
//! announcement it closes. Each timeline is stored as one value (see
//! `store`), so an answer costs one read per entity. A [`View`] filters
//! facts by a seq bound (the query's `known_at`) and retractions recorded by
//! then, and can lay a pending batch (an [`Overlay`]) over the store, so that
//! validation sees the timeline exactly as it would be with the new events
//! in it. This module must never decide validity or build answers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Result;
use crate::event::{Event, Kind, Part, StoredEvent};
use crate::store::{Ns, Store};
use crate::value::{Date, EntityId};

/// What folds need of one event in a timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// Valid time.
    pub effective: Date,
    /// Transaction time.
    pub seq: u64,
    /// The seq of the retraction that removed it, if any.
    pub retracted_by: Option<u64>,
    /// The event.
    pub event: Event,
    /// For a deal's completion or termination: the announcement it closes.
    pub announcement: Option<Event>,
}

impl Fact {
    /// The fold position.
    pub fn key(&self) -> (Date, u64) {
        (self.effective, self.seq)
    }

    /// Every entity the fact names, with its part; a deal's completion or
    /// termination names the parties of its announcement.
    pub fn parties(&self) -> Vec<(&EntityId, Part)> {
        match (&self.event, &self.announcement) {
            (Event::DealCompleted { .. } | Event::DealTerminated { .. }, Some(a)) => a.parties(),
            (ev, _) => ev.parties(),
        }
    }

    /// The timelines the fact belongs to: its parties' and its deal's.
    pub fn timelines(&self) -> Vec<(Ns, EntityId)> {
        let mut keys: Vec<(Ns, EntityId)> = Vec::with_capacity(4);
        for (id, _) in self.parties() {
            if !keys.iter().any(|(_, k)| k == id) {
                keys.push((Ns::Entity, id.clone()));
            }
        }
        if let Some(deal) = self.event.deal_id() {
            keys.push((Ns::Deal, deal.clone()));
        }
        keys
    }

    /// Whether the fact counts as known at `upto` (recorded and not retracted by then).
    pub fn known_at(&self, upto: u64) -> bool {
        self.seq <= upto && self.retracted_by.is_none_or(|by| by > upto)
    }
}

/// The fact of a record, given the announcement it closes (if it closes a deal).
/// A retraction has no fact: it acts through `retracted_by`.
pub fn fact_of(rec: &StoredEvent, announcement: Option<Event>) -> Option<Fact> {
    Some(Fact { effective: rec.effective?, seq: rec.seq, retracted_by: None, event: rec.event.clone(), announcement })
}

/// A timeline's key: its namespace and slug.
pub type TimelineKey = (Ns, EntityId);

/// A pending batch laid over the store during validation.
#[derive(Default)]
pub struct Overlay {
    records: Vec<Rc<StoredEvent>>,
    first_seq: u64,
    facts: HashMap<(Ns, EntityId), Vec<Fact>>,
    retracted: HashMap<u64, u64>,
    ids: HashMap<Uuid, u64>,
}

impl Overlay {
    /// An empty overlay whose first record will have `first_seq`.
    pub fn new(first_seq: u64) -> Self {
        Self { first_seq, ..Self::default() }
    }

    /// The batch's record at `seq`, if it is one of the batch's.
    pub fn get(&self, seq: u64) -> Option<&Rc<StoredEvent>> {
        let i = seq.checked_sub(self.first_seq)?;
        self.records.get(usize::try_from(i).ok()?)
    }

    /// Adds a record (seqs must follow each other) with its fact, under the fact's timelines.
    pub fn push(&mut self, rec: StoredEvent, fact: Option<Fact>) {
        if let Some(fact) = fact {
            for key in fact.timelines() {
                self.facts.entry(key).or_default().push(fact.clone());
            }
        }
        self.ids.insert(rec.id, rec.seq);
        self.records.push(Rc::new(rec));
    }

    /// Marks `seq` (stored or in the batch) as retracted by the batch's `by`.
    pub fn retract(&mut self, seq: u64, by: u64) {
        self.retracted.insert(seq, by);
    }
}

/// The ledger as known at one seq, optionally with a batch over it.
pub struct View<'a> {
    store: &'a Store,
    upto: u64,
    overlay: Option<&'a Overlay>,
    blobs: RefCell<HashMap<TimelineKey, Rc<Vec<Fact>>>>,
}

impl<'a> View<'a> {
    /// The store as known at `upto` (events with `seq <= upto`, retractions recorded by then).
    pub fn at(store: &'a Store, upto: u64) -> Self {
        Self { store, upto, overlay: None, blobs: RefCell::default() }
    }

    /// Everything stored, with `overlay` over it (for validation).
    pub fn with_overlay(store: &'a Store, overlay: &'a Overlay) -> Self {
        Self { store, upto: u64::MAX, overlay: Some(overlay), blobs: RefCell::default() }
    }

    /// The seq bound of this view.
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// The full record at `seq`, from the batch or the log.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when the stored record is damaged.
    pub fn record(&self, seq: u64) -> Result<Rc<StoredEvent>> {
        match self.overlay.and_then(|o| o.get(seq)) {
            Some(rec) => Ok(Rc::clone(rec)),
            None => Ok(Rc::new(self.store.get(seq)?)),
        }
    }

    /// The seq of the retraction of `seq` within this view, if any.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] on a read failure.
    pub fn retracted_by(&self, seq: u64) -> Result<Option<u64>> {
        if let Some(by) = self.overlay.and_then(|o| o.retracted.get(&seq)) {
            return Ok(Some(*by));
        }
        Ok(self.store.retracted_by(seq)?.filter(|by| *by <= self.upto))
    }

    /// The seq of the event with this id within this view (retracted or not).
    ///
    /// # Errors
    /// [`crate::Error::Storage`] on a read failure.
    pub fn seq_of_id(&self, id: &Uuid) -> Result<Option<u64>> {
        if let Some(seq) = self.overlay.and_then(|o| o.ids.get(id)) {
            return Ok(Some(*seq));
        }
        Ok(self.store.seq_of_id(id)?.filter(|seq| *seq <= self.upto))
    }

    fn stored(&self, ns: Ns, slug: &EntityId) -> Result<Rc<Vec<Fact>>> {
        let key = (ns, slug.clone());
        if let Some(blob) = self.blobs.borrow().get(&key) {
            return Ok(Rc::clone(blob));
        }
        let blob = Rc::new(self.store.timeline(ns, slug)?);
        self.blobs.borrow_mut().insert(key, Rc::clone(&blob));
        Ok(blob)
    }

    /// The facts of a timeline that count in this view, in fold order.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] / [`crate::Error::Corrupt`] on a read failure.
    pub fn facts(&self, ns: Ns, slug: &EntityId) -> Result<Vec<Fact>> {
        let stored = self.stored(ns, slug)?;
        let extra = self.overlay.and_then(|o| o.facts.get(&(ns, slug.clone())));
        let retracted = |f: &Fact| self.overlay.is_some_and(|o| o.retracted.contains_key(&f.seq));
        let mut out: Vec<Fact> = stored
            .iter()
            .chain(extra.into_iter().flatten())
            .filter(|f| f.known_at(self.upto) && !retracted(f))
            .cloned()
            .collect();
        if extra.is_some() {
            out.sort_unstable_by_key(Fact::key);
        }
        Ok(out)
    }

    /// The registration of an entity that counts in this view (the earliest by seq).
    ///
    /// # Errors
    /// [`crate::Error::Storage`] / [`crate::Error::Corrupt`] on a read failure.
    pub fn registration(&self, slug: &EntityId) -> Result<Option<Registration>> {
        Ok(self.facts(Ns::Entity, slug)?.iter().filter_map(Registration::of).min_by_key(|r| r.seq))
    }

    /// The announcement of a deal that counts in this view.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] / [`crate::Error::Corrupt`] on a read failure.
    pub fn announcement(&self, deal: &EntityId) -> Result<Option<Event>> {
        Ok(self
            .facts(Ns::Deal, deal)?
            .into_iter()
            .find(|f| matches!(f.event, Event::DealAnnounced { .. }))
            .map(|f| f.event))
    }

    /// The fact of a record in this view (resolving the announcement a closure refers to).
    ///
    /// # Errors
    /// As [`View::announcement`].
    pub fn fact_of(&self, rec: &StoredEvent) -> Result<Option<Fact>> {
        let announcement = match &rec.event {
            Event::DealCompleted { deal, .. } | Event::DealTerminated { deal, .. } => self.announcement(deal)?,
            _ => None,
        };
        Ok(fact_of(rec, announcement))
    }
}

/// An entity's registration: its kind, date, name and seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Company or person.
    pub kind: Kind,
    /// From when it exists.
    pub effective: Date,
    /// The registered name.
    pub name: String,
    /// The registration's seq.
    pub seq: u64,
}

impl Registration {
    /// The registration a fact makes, if it is one.
    pub fn of(fact: &Fact) -> Option<Self> {
        let (kind, name) = match &fact.event {
            Event::CompanyRegistered { name, .. } => (Kind::Company, name),
            Event::PersonRegistered { name, .. } => (Kind::Person, name),
            _ => return None,
        };
        Some(Self { kind, effective: fact.effective, name: name.clone(), seq: fact.seq })
    }
}
