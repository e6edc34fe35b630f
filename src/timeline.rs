//! Timelines: the events that name one entity (or one deal), in fold order
//! `(effective, seq)`, as seen from one point of transaction time.
//!
//! A [`View`] reads the store's derived indexes up to a seq bound (the
//! query's `known_at`), leaves out events retracted by then, and can lay a
//! pending batch (an [`Overlay`]) over the store, so that validation sees the
//! timeline exactly as it would be with the new events in it. This module
//! must never decide validity or build answers: it only says which events
//! count, in which order.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use uuid::Uuid;

use crate::error::Result;
use crate::event::{Event, Kind, Part, StoredEvent};
use crate::store::{Entry, Ns, Store};
use crate::value::EntityId;

/// A pending batch laid over the store during validation.
#[derive(Default)]
pub struct Overlay {
    records: Vec<Rc<StoredEvent>>,
    first_seq: u64,
    timelines: HashMap<(Ns, EntityId), Vec<Entry>>,
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

    /// Adds a record (seqs must follow each other) under the given timelines.
    pub fn push(&mut self, rec: StoredEvent, timelines: Vec<(Ns, EntityId)>) {
        if let Some(effective) = rec.effective {
            for key in timelines {
                self.timelines.entry(key).or_default().push(Entry { effective, seq: rec.seq });
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

/// The events of the ledger as known at one seq, optionally with a batch over them.
pub struct View<'a> {
    store: &'a Store,
    upto: u64,
    overlay: Option<&'a Overlay>,
    cache: RefCell<HashMap<u64, Rc<StoredEvent>>>,
}

impl<'a> View<'a> {
    /// The store as known at `upto` (events with `seq <= upto`, retractions recorded by then).
    pub fn at(store: &'a Store, upto: u64) -> Self {
        Self { store, upto, overlay: None, cache: RefCell::default() }
    }

    /// Everything stored, with `overlay` over it (for validation).
    pub fn with_overlay(store: &'a Store, overlay: &'a Overlay) -> Self {
        Self { store, upto: u64::MAX, overlay: Some(overlay), cache: RefCell::default() }
    }

    /// The seq bound of this view.
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// The record at `seq`, from the batch or the store (decoded once per view).
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when the stored record is damaged.
    pub fn record(&self, seq: u64) -> Result<Rc<StoredEvent>> {
        if let Some(rec) = self.overlay.and_then(|o| o.get(seq)) {
            return Ok(Rc::clone(rec));
        }
        if let Some(rec) = self.cache.borrow().get(&seq) {
            return Ok(Rc::clone(rec));
        }
        let rec = Rc::new(self.store.get(seq)?);
        self.cache.borrow_mut().insert(seq, Rc::clone(&rec));
        Ok(rec)
    }

    /// Whether the event at `seq` counts in this view (recorded, not retracted).
    ///
    /// # Errors
    /// [`crate::Error::Storage`] on a read failure.
    pub fn counts(&self, seq: u64) -> Result<bool> {
        if seq > self.upto {
            return Ok(false);
        }
        if self.overlay.is_some_and(|o| o.retracted.contains_key(&seq)) {
            return Ok(false);
        }
        Ok(self.store.retracted_by(seq)?.is_none_or(|by| by > self.upto))
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

    /// The entries of a timeline that count in this view, in fold order.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] on a read failure.
    pub fn entries(&self, ns: Ns, slug: &EntityId) -> Result<Vec<Entry>> {
        let mut entries = self.store.timeline(ns, slug)?;
        if let Some(extra) = self.overlay.and_then(|o| o.timelines.get(&(ns, slug.clone()))) {
            entries.extend_from_slice(extra);
            entries.sort_unstable();
        }
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            if self.counts(e.seq)? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The events of a timeline that count in this view, in fold order.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] / [`crate::Error::Corrupt`] on a read failure.
    pub fn events(&self, ns: Ns, slug: &EntityId) -> Result<Vec<Rc<StoredEvent>>> {
        self.entries(ns, slug)?.into_iter().map(|e| self.record(e.seq)).collect()
    }

    /// The registration of an entity that counts in this view (the earliest).
    ///
    /// # Errors
    /// [`crate::Error::Storage`] / [`crate::Error::Corrupt`] on a read failure.
    pub fn registration(&self, slug: &EntityId) -> Result<Option<Registration>> {
        for e in self.entries(Ns::Entity, slug)? {
            let rec = self.record(e.seq)?;
            if let Some(reg) = Registration::of(&rec) {
                return Ok(Some(reg));
            }
        }
        Ok(None)
    }

    /// The announcement of a deal that counts in this view.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] / [`crate::Error::Corrupt`] on a read failure.
    pub fn announcement(&self, deal: &EntityId) -> Result<Option<Rc<StoredEvent>>> {
        for e in self.entries(Ns::Deal, deal)? {
            let rec = self.record(e.seq)?;
            if matches!(rec.event, Event::DealAnnounced { .. }) {
                return Ok(Some(rec));
            }
        }
        Ok(None)
    }

    /// Every entity an event names, with its part; a deal's completion or
    /// termination names the parties of its announcement in this view.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] / [`crate::Error::Corrupt`] on a read failure.
    pub fn parties(&self, rec: &StoredEvent) -> Result<Vec<(EntityId, Part)>> {
        let own = |ev: &Event| ev.parties().into_iter().map(|(id, p)| (id.clone(), p)).collect::<Vec<_>>();
        match &rec.event {
            Event::DealCompleted { deal, .. } | Event::DealTerminated { deal, .. } => {
                Ok(self.announcement(deal)?.map(|a| own(&a.event)).unwrap_or_default())
            }
            ev => Ok(own(ev)),
        }
    }

    /// The timelines an event belongs to: its parties' and its deal's.
    ///
    /// # Errors
    /// As [`View::parties`].
    pub fn timelines_of(&self, rec: &StoredEvent) -> Result<Vec<(Ns, EntityId)>> {
        let mut keys: Vec<(Ns, EntityId)> = Vec::with_capacity(4);
        for (id, _) in self.parties(rec)? {
            if !keys.iter().any(|(_, k)| *k == id) {
                keys.push((Ns::Entity, id));
            }
        }
        if let Some(deal) = rec.event.deal_id() {
            keys.push((Ns::Deal, deal.clone()));
        }
        Ok(keys)
    }
}

/// An entity's registration: its kind, date, name and seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Company or person.
    pub kind: Kind,
    /// From when it exists.
    pub effective: crate::value::Date,
    /// The registered name.
    pub name: String,
    /// The registration's seq.
    pub seq: u64,
}

impl Registration {
    /// The registration an event makes, if it is one.
    pub fn of(rec: &StoredEvent) -> Option<Self> {
        let (kind, name) = match &rec.event {
            Event::CompanyRegistered { name, .. } => (Kind::Company, name),
            Event::PersonRegistered { name, .. } => (Kind::Person, name),
            _ => return None,
        };
        Some(Self { kind, effective: rec.effective?, name: name.clone(), seq: rec.seq })
    }
}
