//! Maintenance of the derived indexes: ids and per-entity timelines.
//!
//! The [`Indexer`] folds records, in seq order, into the timelines they
//! belong to: it loads each touched timeline once, appends the new facts,
//! marks retracted ones, and writes every touched timeline back in one batch.
//! The same code indexes an append and rebuilds the indexes from the log
//! (`reindex`, or catching up after a crash). This module must never write
//! to the log: everything it writes can be rebuilt from it.

use std::collections::HashMap;

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::{Event, StoredEvent};
use crate::store::{Ns, Store};
use crate::timeline::{fact_of, Fact};
use crate::value::EntityId;

/// Accumulates index updates for records given in seq order.
pub struct Indexer<'a> {
    store: &'a Store,
    timelines: HashMap<(Ns, EntityId), Vec<Fact>>,
    ids: Vec<(Uuid, u64)>,
    new_ids: HashMap<Uuid, u64>,
    retracted: Vec<(u64, u64)>,
}

impl<'a> Indexer<'a> {
    /// An indexer writing to `store`.
    pub fn new(store: &'a Store) -> Self {
        Self { store, timelines: HashMap::new(), ids: Vec::new(), new_ids: HashMap::new(), retracted: Vec::new() }
    }

    /// The working copy of a timeline, loaded from the store on first use.
    fn timeline(&mut self, key: (Ns, EntityId)) -> Result<&mut Vec<Fact>> {
        if !self.timelines.contains_key(&key) {
            let stored = self.store.timeline(key.0, &key.1)?;
            self.timelines.insert(key.clone(), stored);
        }
        self.timelines.get_mut(&key).ok_or_else(|| Error::Corrupt { seq: 0, detail: "timeline vanished".into() })
    }

    /// The live announcement of a deal, as indexed so far.
    fn announcement(&mut self, deal: &EntityId) -> Result<Option<Event>> {
        let facts = self.timeline((Ns::Deal, deal.clone()))?;
        Ok(facts
            .iter()
            .find(|f| f.retracted_by.is_none() && matches!(f.event, Event::DealAnnounced { .. }))
            .map(|f| f.event.clone()))
    }

    fn fact(&mut self, rec: &StoredEvent) -> Result<Option<Fact>> {
        let announcement = match &rec.event {
            Event::DealCompleted { deal, .. } | Event::DealTerminated { deal, .. } => self.announcement(deal)?,
            _ => None,
        };
        Ok(fact_of(rec, announcement))
    }

    /// Indexes one record (records must come in seq order).
    ///
    /// # Errors
    /// Storage errors, or [`Error::Corrupt`] when a retraction's target is missing.
    pub fn add(&mut self, rec: &StoredEvent) -> Result<()> {
        self.ids.push((rec.id, rec.seq));
        self.new_ids.insert(rec.id, rec.seq);
        if let Event::Retraction { retracts, .. } = &rec.event {
            return self.retract(retracts, rec.seq);
        }
        if let Some(fact) = self.fact(rec)? {
            for key in fact.timelines() {
                self.timeline(key)?.push(fact.clone());
            }
        }
        Ok(())
    }

    fn retract(&mut self, id: &Uuid, by: u64) -> Result<()> {
        let target = match self.new_ids.get(id) {
            Some(seq) => Some(*seq),
            None => self.store.seq_of_id(id)?,
        };
        let target = target.ok_or_else(|| Error::Corrupt { seq: by, detail: format!("retracts unknown id {id}") })?;
        self.retracted.push((target, by));
        let keys = self.locate(target)?;
        for key in keys {
            if let Some(fact) = self.timeline(key)?.iter_mut().find(|f| f.seq == target) {
                fact.retracted_by = Some(by);
            }
        }
        Ok(())
    }

    /// The timelines holding the fact of the record at `seq`.
    fn locate(&mut self, seq: u64) -> Result<Vec<(Ns, EntityId)>> {
        let rec = self.store.get(seq)?;
        let keys = rec.event.parties().into_iter().map(|(id, _)| (Ns::Entity, id.clone()));
        let mut keys: Vec<_> = keys.chain(rec.event.deal_id().map(|d| (Ns::Deal, d.clone()))).collect();
        if let Some(deal) = rec.event.deal_id().filter(|_| keys.len() == 1) {
            // A closure names its parties through the announcement's timeline facts.
            let deal_key = (Ns::Deal, deal.clone());
            let fact = self.timeline(deal_key)?.iter().find(|f| f.seq == seq).cloned();
            keys = fact.map(|f| f.timelines()).unwrap_or(keys);
        }
        Ok(keys)
    }

    /// Sorts the touched timelines into fold order and writes everything.
    ///
    /// # Errors
    /// Storage errors.
    pub fn finish(mut self) -> Result<()> {
        for facts in self.timelines.values_mut() {
            facts.sort_by_key(Fact::key);
        }
        self.store.write_index(&self.ids, &self.timelines)?;
        for (seq, by) in &self.retracted {
            self.store.mark_retracted(*seq, *by)?;
        }
        Ok(())
    }
}
