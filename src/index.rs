//! Maintenance of the derived indexes: ids and per-entity timelines.
//!
//! The [`Indexer`] is a staging area: it takes records in seq order, loads
//! each timeline they touch once, adds the new facts, marks retracted ones,
//! and answers look-ups (ids, retractions, announcements) over the store with
//! the staged records laid over it. Validation folds the staged timelines
//! before anything is written; after the durable write, [`Indexer::finish`]
//! writes every touched timeline back in one batch. Rebuilding the indexes
//! from the log uses the same code. This module must never write to the log,
//! and never decide validity: everything it writes can be rebuilt from the log.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use uuid::Uuid;

use crate::error::Result;
use crate::event::{Event, StoredEvent};
use crate::store::{Ns, Store};
use crate::timeline::{fact_of, Fact, TimelineKey};
use crate::value::EntityId;

/// Staged index updates for records given in seq order.
pub struct Indexer<'a> {
    store: &'a Store,
    timelines: HashMap<TimelineKey, Vec<Rc<Fact>>>,
    touched: Vec<(TimelineKey, u64)>,
    ids: Vec<(Uuid, u64)>,
    new_ids: HashMap<Uuid, u64>,
    retractions: HashMap<u64, u64>,
    staged_retractions: Vec<u64>,
    retraction_seqs: HashSet<u64>,
    located: HashMap<u64, Vec<TimelineKey>>,
    fresh: bool,
}

impl<'a> Indexer<'a> {
    /// An empty staging area over `store`.
    pub fn new(store: &'a Store) -> Self {
        Self {
            store,
            timelines: HashMap::new(),
            touched: Vec::new(),
            ids: Vec::new(),
            new_ids: HashMap::new(),
            retractions: HashMap::new(),
            staged_retractions: Vec::new(),
            retraction_seqs: HashSet::new(),
            located: HashMap::new(),
            fresh: false,
        }
    }

    /// A staging area that ignores what the index holds: a rebuild from the
    /// log, whose output replaces every derived value.
    pub fn fresh(store: &'a Store) -> Self {
        Self { fresh: true, ..Self::new(store) }
    }

    /// The staged copy of a timeline, loaded from the store on first use.
    fn timeline(&mut self, key: &TimelineKey, cause: u64) -> Result<&mut Vec<Rc<Fact>>> {
        if !self.timelines.contains_key(key) {
            let stored = if self.fresh { Vec::new() } else { self.store.timeline(key.0, &key.1)? };
            self.timelines.insert(key.clone(), stored);
            self.touched.push((key.clone(), cause));
        }
        Ok(self.timelines.entry(key.clone()).or_default())
    }

    /// The seq of the event with this id, staged or stored.
    ///
    /// # Errors
    /// Storage errors.
    pub fn seq_of_id(&self, id: &Uuid) -> Result<Option<u64>> {
        match self.new_ids.get(id) {
            Some(seq) => Ok(Some(*seq)),
            None if self.fresh => Ok(None),
            None => self.store.seq_of_id(id),
        }
    }

    /// The seq of the retraction of `seq`, staged or stored.
    ///
    /// # Errors
    /// Storage errors.
    pub fn retracted_by(&self, seq: u64) -> Result<Option<u64>> {
        match self.retractions.get(&seq) {
            Some(by) => Ok(Some(*by)),
            None => self.store.retracted_by(seq),
        }
    }

    /// Whether the staged or stored event at `seq` is a retraction.
    ///
    /// # Errors
    /// Storage errors, [`crate::Error::Corrupt`].
    pub fn is_retraction(&self, seq: u64) -> Result<bool> {
        if self.located.contains_key(&seq) {
            return Ok(false);
        }
        if self.retraction_seqs.contains(&seq) {
            return Ok(true);
        }
        Ok(matches!(self.store.get(seq)?.event, Event::Retraction { .. }))
    }

    /// The live announcement of a deal, as staged so far.
    ///
    /// # Errors
    /// Storage errors.
    pub fn announcement(&mut self, deal: &EntityId, cause: u64) -> Result<Option<Event>> {
        let facts = self.timeline(&(Ns::Deal, deal.clone()), cause)?;
        Ok(facts
            .iter()
            .find(|f| f.retracted_by.is_none() && matches!(f.event, Event::DealAnnounced { .. }))
            .map(|f| f.event.clone()))
    }

    /// Stages one record (records must come in seq order).
    ///
    /// # Errors
    /// Storage errors, or [`crate::Error::Corrupt`] when a retraction's target is missing.
    pub fn add(&mut self, rec: &StoredEvent) -> Result<()> {
        self.ids.push((rec.id, rec.seq));
        self.new_ids.insert(rec.id, rec.seq);
        if let Event::Retraction { retracts, .. } = &rec.event {
            self.retraction_seqs.insert(rec.seq);
            return self.retract(retracts, rec.seq);
        }
        let announcement = match &rec.event {
            Event::DealCompleted { deal, .. } | Event::DealTerminated { deal, .. } => {
                self.announcement(deal, rec.seq)?
            }
            _ => None,
        };
        if let Some(fact) = fact_of(rec, announcement) {
            let keys = fact.timelines();
            let fact = Rc::new(fact);
            for key in &keys {
                self.timeline(key, rec.seq)?.push(Rc::clone(&fact));
            }
            self.located.insert(rec.seq, keys);
        }
        Ok(())
    }

    fn retract(&mut self, id: &Uuid, by: u64) -> Result<()> {
        let target = self
            .seq_of_id(id)?
            .ok_or_else(|| crate::Error::Corrupt { seq: by, detail: format!("retracts unknown id {id}") })?;
        self.retractions.insert(target, by);
        self.staged_retractions.push(target);
        for key in self.locate(target)? {
            for fact in self.timeline(&key, by)?.iter_mut().filter(|f| f.seq == target) {
                Rc::make_mut(fact).retracted_by = Some(by);
            }
        }
        Ok(())
    }

    /// The timelines holding the fact of the event at `seq`.
    fn locate(&mut self, seq: u64) -> Result<Vec<TimelineKey>> {
        if let Some(keys) = self.located.get(&seq) {
            return Ok(keys.clone());
        }
        let rec = self.store.get(seq)?;
        if let Event::DealCompleted { deal, .. } | Event::DealTerminated { deal, .. } = &rec.event {
            // A closure names its parties through its fact in the deal's timeline.
            let deal_key = (Ns::Deal, deal.clone());
            if let Some(fact) = self.timeline(&deal_key, seq)?.iter().find(|f| f.seq == seq) {
                return Ok(fact.timelines());
            }
        }
        Ok(fact_of(&rec, None).map(|f| f.timelines()).unwrap_or_default())
    }

    /// The touched timelines with the first staged seq that touched each, in the order touched.
    pub fn touched(&self) -> &[(TimelineKey, u64)] {
        &self.touched
    }

    /// The staged facts of a touched timeline that are not retracted, in fold order.
    pub fn live(&mut self, key: &TimelineKey) -> Vec<Rc<Fact>> {
        self.all(key).into_iter().filter(|f| f.retracted_by.is_none()).collect()
    }

    /// All staged facts of a touched timeline, retracted ones included, in fold order.
    pub fn all(&mut self, key: &TimelineKey) -> Vec<Rc<Fact>> {
        let Some(facts) = self.timelines.get_mut(key) else { return Vec::new() };
        facts.sort_by_key(|f| f.key());
        facts.clone()
    }

    /// Sorts the touched timelines into fold order and writes everything;
    /// returns the timelines written. Idempotent: a record indexed again
    /// after a crash (when part of the index reached the disk without its
    /// watermark) is kept once.
    ///
    /// # Errors
    /// Storage errors.
    pub fn finish(mut self) -> Result<HashSet<TimelineKey>> {
        for facts in self.timelines.values_mut() {
            facts.sort_by_key(|f| f.key());
            facts.dedup_by_key(|f| f.seq);
        }
        self.store.write_index(&self.ids, &self.timelines, !self.fresh)?;
        for seq in &self.staged_retractions {
            if let Some(by) = self.retractions.get(seq) {
                self.store.mark_retracted(*seq, *by)?;
            }
        }
        Ok(self.timelines.into_keys().collect())
    }
}
