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

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::codec::{self, TimelinePart};
use crate::error::Result;
use crate::event::{Event, Kind, StoredEvent};
use crate::par;
use crate::store::{timeline_key, Ns, Store, StoredTimeline, TimelineWrite};
use crate::timeline::{timeline_refs_of, Fact, Registration, StoredBody, TimelineKey, Topics};
use crate::value::{Date, EntityId};

/// A staged timeline: its decoded facts (the batch's, and the stored ones a
/// rule may read) and the stored facts left encoded. Validation folds only
/// the decoded ones, so a stored fact is decoded only when a rule can read it
/// (see [`StagedTimeline::load`]), and [`Indexer::finish`] copies the others
/// as they were read: a fund's thousandth acquisition decodes a handful of
/// its facts, not a thousand.
#[derive(Default)]
struct StagedTimeline {
    /// Decoded facts, in no particular order until sorted.
    facts: Vec<Arc<Fact>>,
    /// Stored facts left encoded, in fold order: their places in `stored`.
    kept: Vec<usize>,
    /// The stored timeline `kept` points into.
    stored: Option<StoredTimeline>,
    /// Whether a stored fact changed (a retraction): the timeline is then written whole.
    rewrite: bool,
}

impl StagedTimeline {
    /// Loads a stored timeline, decoding the facts a rule may read. Stored
    /// facts passed every rule when stored, and a batch that only adds facts
    /// changes neither their registration (the first one by seq) nor their
    /// dates: what can break is a fold's state, and each fold reads one topic
    /// (`projection`). So an entity's timeline decodes its registrations and
    /// renames and the topics its kind folds (a company's stakes and
    /// partnerships, a person's roles); a deal's, everything; an entity's
    /// registrations alone (`Ns::Name`), nothing. A retraction among its facts
    /// decodes the rest ([`StagedTimeline::decode_all`]).
    fn load(store: &Store, ns: Ns, slug: &EntityId) -> Result<Self> {
        let Some(stored) = store.stored_timeline(ns, slug)? else { return Ok(Self::default()) };
        let topics = |i: usize| Topics::from_bits(stored.entries()[i].topics);
        let mut names: Vec<(usize, Arc<Fact>)> = Vec::new();
        if ns == Ns::Entity {
            for i in (0..stored.len()).filter(|i| topics(*i).meets(Topics::NAME)) {
                names.push((i, Arc::new(stored.fact(slug, i, true)?)));
            }
        }
        let needed = match ns {
            Ns::Deal => Topics::ALL,
            Ns::Name => Topics::NONE,
            Ns::Entity => {
                let live = names.iter().filter(|(_, f)| f.retracted_by.is_none());
                match live.filter_map(|(_, f)| Registration::of(f)).min_by_key(|r| r.seq).map(|r| r.kind) {
                    Some(Kind::Company) => Topics::STAKE | Topics::PARTNER,
                    Some(Kind::Person) => Topics::ROLE,
                    None => Topics::ALL,
                }
            }
        };
        let mut staged = Self::default();
        let mut names = names.into_iter().peekable();
        for i in 0..stored.len() {
            if let Some((_, fact)) = names.next_if(|(at, _)| *at == i) {
                staged.facts.push(fact);
            } else if topics(i).meets(needed) {
                staged.facts.push(Arc::new(stored.fact(slug, i, true)?));
            } else {
                staged.kept.push(i);
            }
        }
        staged.stored = Some(stored);
        Ok(staged)
    }

    /// Decodes the facts left encoded (before a retraction changes one, and
    /// so that validation refolds the whole timeline); the timeline is then
    /// written whole.
    fn decode_all(&mut self, slug: &EntityId) -> Result<()> {
        self.rewrite = true;
        let Some(stored) = &self.stored else { return Ok(()) };
        for i in self.kept.drain(..) {
            self.facts.push(Arc::new(stored.fact(slug, i, true)?));
        }
        Ok(())
    }

    /// The decoded facts in fold order (stable: of two facts at one place,
    /// the one staged first stays first).
    fn sorted(&mut self) -> &[Arc<Fact>] {
        self.facts.sort_by_key(|f| f.key());
        &self.facts
    }

    /// How the timeline goes back to the store: decoded and kept facts
    /// merged in fold order, each seq once (a record indexed again after a
    /// crash keeps its stored fact, which comes first), whole or as a delta
    /// (see [`StoredTimeline::write`]).
    fn encode(&mut self, key: &TimelineKey, whole: bool) -> TimelineWrite {
        self.sorted();
        let stored = self.stored.as_ref();
        let kept: Vec<TimelinePart<'_>> = match stored {
            Some(stored) => {
                self.kept.iter().map(|&i| TimelinePart::Kept(&stored.entries()[i], stored.body(i))).collect()
            }
            None => Vec::new(),
        };
        let decoded = self.facts.iter().map(|f| TimelinePart::Fact(f));
        let mut parts = codec::merge_in_order(kept, decoded, TimelinePart::key);
        parts.dedup_by_key(|part| part.seq());
        StoredTimeline::write(stored, &parts, self.rewrite || whole, (key.0, &key.1))
    }
}

/// In [`Indexer::slots`]: no staged timeline of this namespace for this slug.
const NO_SLOT: usize = usize::MAX;

/// What the staging area knows of one staged seq.
#[derive(Clone)]
enum Staged {
    /// A record with a fact (the same one its timelines hold).
    Fact(Arc<Fact>),
    /// A retraction.
    Retraction,
    /// Nothing staged at this seq (or a record without a fact).
    Nothing,
}

/// Staged index updates for records given in seq order.
pub struct Indexer<'a> {
    store: &'a Store,
    /// Where each staged timeline is in `timelines`, by slug, then by [`ns_slot`].
    slots: HashMap<EntityId, [usize; 3]>,
    /// The same by slug number (see [`Numbering`]), filled as numbers are met.
    by_number: Vec<[usize; 3]>,
    /// Each staged timeline, in the order first touched (as `touched`).
    timelines: Vec<StagedTimeline>,
    touched: Vec<(TimelineKey, u64)>,
    ids: Vec<(Uuid, u64)>,
    new_ids: HashMap<Uuid, u64>,
    retractions: HashMap<u64, u64>,
    staged_retractions: Vec<u64>,
    /// The seq of `staged[0]`.
    first: u64,
    /// What each staged seq is, from `first` on (records come in seq order, without gaps).
    staged: Vec<Staged>,
    fresh: bool,
}

/// The position of a namespace in [`Indexer::slots`].
fn ns_slot(ns: Ns) -> usize {
    match ns {
        Ns::Entity => 0,
        Ns::Deal => 1,
        Ns::Name => 2,
    }
}

/// The encoded body of a fact `(event, announcement)` (as `codec::encode_timeline_parts`
/// writes it), from the body of `(event, None)` cut from the record (see
/// `codec::fact_body_of_record`) and, for a closure, the announcement's fact;
/// `None` when the announcement's body is not known (it is then encoded).
fn body_with(mut body: Vec<u8>, announcement: Option<&Fact>) -> Option<Arc<[u8]>> {
    let Some(announced) = announcement else { return Some(Arc::from(body)) };
    let kept = announced.stored_body.0.as_ref().filter(|_| announced.announcement.is_none())?;
    // Both end in the zero byte of a `None` announcement; a `Some` is a one, then the event.
    let (&0, announced_event) = kept.split_last()? else { return None };
    if body.pop() != Some(0) {
        return None;
    }
    body.push(1);
    body.extend_from_slice(announced_event);
    Some(Arc::from(body))
}

/// At most this many timelines of a record are numbered ahead (an event
/// names at most four today; one naming more is looked up by slug).
const AHEAD: usize = 6;

/// A record read from the log, with the timelines of its fact numbered on
/// the reading thread (see [`Numbering`]).
pub struct Prepared {
    rec: StoredEvent,
    body: Option<Vec<u8>>,
    /// The namespace and slug number of each timeline of the fact, in
    /// [`timeline_refs_of`] order; `None` for a closure (its timelines are its
    /// announcement's) and for more than [`AHEAD`].
    numbered: Option<([(Ns, u32); AHEAD], usize)>,
}

/// Numbers slugs in the order first seen, so that a rebuild looks its
/// timelines up by number (an index into a table) instead of hashing and
/// comparing each slug on the staging thread. Used on the log-reading thread.
#[derive(Default)]
pub struct Numbering {
    numbers: HashMap<EntityId, u32>,
}

impl Numbering {
    /// The record with the timelines of its fact numbered.
    pub fn prepare(&mut self, rec: StoredEvent, body: Option<Vec<u8>>) -> Prepared {
        let numbered = self.numbered(&rec.event);
        Prepared { rec, body, numbered }
    }

    fn numbered(&mut self, event: &Event) -> Option<([(Ns, u32); AHEAD], usize)> {
        if matches!(event, Event::DealCompleted { .. } | Event::DealTerminated { .. }) {
            return None;
        }
        let keys = timeline_refs_of(event, None);
        if keys.len() > AHEAD {
            return None;
        }
        let mut out = [(Ns::Entity, 0); AHEAD];
        for ((ns, slug), slot) in keys.iter().zip(&mut out) {
            let number = match self.numbers.get(*slug) {
                Some(number) => *number,
                None => {
                    let next = u32::try_from(self.numbers.len()).ok()?;
                    self.numbers.insert((*slug).clone(), next);
                    next
                }
            };
            *slot = (*ns, number);
        }
        Some((out, keys.len()))
    }
}

impl<'a> Indexer<'a> {
    /// An empty staging area over `store`.
    pub fn new(store: &'a Store) -> Self {
        Self {
            store,
            slots: HashMap::new(),
            by_number: Vec::new(),
            timelines: Vec::new(),
            touched: Vec::new(),
            ids: Vec::new(),
            new_ids: HashMap::new(),
            retractions: HashMap::new(),
            staged_retractions: Vec::new(),
            first: 0,
            staged: Vec::new(),
            fresh: false,
        }
    }

    /// A staging area that ignores what the index holds: a rebuild from the
    /// log, whose output replaces every derived value.
    pub fn fresh(store: &'a Store) -> Self {
        Self { fresh: true, ..Self::new(store) }
    }

    /// The position in `timelines` of a staged timeline, if it is staged.
    fn staged_slot(&self, ns: Ns, slug: &EntityId) -> Option<usize> {
        self.slots.get(slug).map(|slots| slots[ns_slot(ns)]).filter(|i| *i != NO_SLOT)
    }

    /// The position in `timelines` of a timeline, loaded from the store on first use.
    fn slot(&mut self, ns: Ns, slug: &EntityId, cause: u64) -> Result<usize> {
        if let Some(i) = self.staged_slot(ns, slug) {
            return Ok(i);
        }
        let stored = if self.fresh { StagedTimeline::default() } else { StagedTimeline::load(self.store, ns, slug)? };
        let i = self.timelines.len();
        self.timelines.push(stored);
        self.touched.push(((ns, slug.clone()), cause));
        match self.slots.get_mut(slug) {
            Some(slots) => slots[ns_slot(ns)] = i,
            None => {
                let mut slots = [NO_SLOT; 3];
                slots[ns_slot(ns)] = i;
                self.slots.insert(slug.clone(), slots);
            }
        }
        Ok(i)
    }

    /// The staged copy of a timeline, loaded from the store on first use.
    fn timeline(&mut self, ns: Ns, slug: &EntityId, cause: u64) -> Result<&mut StagedTimeline> {
        let i = self.slot(ns, slug, cause)?;
        Ok(&mut self.timelines[i])
    }

    /// What is staged at `seq`, if it is in the staged range.
    fn staged_at(&self, seq: u64) -> Option<&Staged> {
        let i = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.staged.get(i)
    }

    /// Notes what the record at `seq` staged (records come in seq order).
    fn set_staged(&mut self, seq: u64, what: Staged) {
        if self.staged.is_empty() {
            self.first = seq;
        }
        let Some(i) = seq.checked_sub(self.first).and_then(|i| usize::try_from(i).ok()) else { return };
        if i >= self.staged.len() {
            self.staged.resize(i + 1, Staged::Nothing);
        }
        self.staged[i] = what;
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
        match self.staged_at(seq) {
            Some(Staged::Fact(_)) => Ok(false),
            Some(Staged::Retraction) => Ok(true),
            _ => Ok(matches!(self.store.get(seq)?.event, Event::Retraction { .. })),
        }
    }

    /// The live announcement of a deal, as staged so far.
    ///
    /// # Errors
    /// Storage errors.
    pub fn announcement(&mut self, deal: &EntityId, cause: u64) -> Result<Option<Event>> {
        Ok(self.announcement_fact(deal, cause)?.map(|f| f.event.clone()))
    }

    /// The fact of the live announcement of a deal, as staged so far.
    fn announcement_fact(&mut self, deal: &EntityId, cause: u64) -> Result<Option<Arc<Fact>>> {
        let facts = &self.timeline(Ns::Deal, deal, cause)?.facts;
        Ok(facts.iter().find(|f| f.retracted_by.is_none() && matches!(f.event, Event::DealAnnounced { .. })).cloned())
    }

    /// Stages one record (records must come in seq order).
    ///
    /// # Errors
    /// Storage errors, or [`crate::Error::Corrupt`] when a retraction's target is missing.
    pub fn add(&mut self, rec: &StoredEvent) -> Result<()> {
        if self.stage_id_or_retraction(rec)? {
            return Ok(());
        }
        let announcement = self.closed_announcement(&rec.event, rec.seq)?;
        match self.fact(rec.seq, rec.effective, rec.event.clone(), announcement, None) {
            Some(fact) => self.place(fact),
            None => Ok(()),
        }
    }

    /// Stages one record read from the log as [`Indexer::add`] does, but
    /// taking its event rather than copying it, finding its timelines by the
    /// numbers [`Numbering`] gave their slugs, and keeping the encoded body of
    /// its fact when the reading thread cut it from the record (see
    /// `codec::fact_body_of_record`): [`Indexer::finish`] then copies it
    /// instead of encoding the event again.
    ///
    /// # Errors
    /// As [`Indexer::add`].
    pub fn add_prepared(&mut self, prepared: Prepared) -> Result<()> {
        let Prepared { rec, body, numbered } = prepared;
        if self.stage_id_or_retraction(&rec)? {
            return Ok(());
        }
        let announcement = self.closed_announcement(&rec.event, rec.seq)?;
        let numbered = numbered.filter(|_| announcement.is_none());
        let Some(fact) = self.fact(rec.seq, rec.effective, rec.event, announcement, body) else { return Ok(()) };
        match numbered {
            Some((numbers, len)) => self.place_numbered(fact, &numbers[..len]),
            None => self.place(fact),
        }
    }

    /// Stages the record's id and, if it is a retraction, the retraction;
    /// returns whether it was one (and so is fully staged).
    fn stage_id_or_retraction(&mut self, rec: &StoredEvent) -> Result<bool> {
        self.ids.push((rec.id, rec.seq));
        self.new_ids.insert(rec.id, rec.seq);
        let Event::Retraction { retracts, .. } = &rec.event else { return Ok(false) };
        self.set_staged(rec.seq, Staged::Retraction);
        self.retract(retracts, rec.seq)?;
        Ok(true)
    }

    /// For a deal's completion or termination: the fact of the announcement it closes.
    fn closed_announcement(&mut self, event: &Event, seq: u64) -> Result<Option<Arc<Fact>>> {
        match event {
            Event::DealCompleted { deal, .. } | Event::DealTerminated { deal, .. } => self.announcement_fact(deal, seq),
            _ => Ok(None),
        }
    }

    /// The fact of a record; none without an effective date (which is then staged as nothing).
    fn fact(
        &mut self,
        seq: u64,
        effective: Option<Date>,
        event: Event,
        announcement: Option<Arc<Fact>>,
        body: Option<Vec<u8>>,
    ) -> Option<Arc<Fact>> {
        let Some(effective) = effective else {
            self.set_staged(seq, Staged::Nothing);
            return None;
        };
        let body = body.and_then(|body| body_with(body, announcement.as_deref()));
        Some(Arc::new(Fact {
            effective,
            seq,
            retracted_by: None,
            event,
            announcement: announcement.map(|a| a.event.clone()),
            stored_body: StoredBody(body),
        }))
    }

    /// Adds a fact to each of its timelines.
    fn place(&mut self, fact: Arc<Fact>) -> Result<()> {
        for (ns, slug) in fact.timeline_refs() {
            let i = self.slot(ns, slug, fact.seq)?;
            self.timelines[i].facts.push(Arc::clone(&fact));
        }
        self.set_staged(fact.seq, Staged::Fact(fact));
        Ok(())
    }

    /// Adds a fact to each of its timelines, given as numbered slugs (in
    /// [`Fact::timeline_refs`] order); a number met for the first time is
    /// looked up by its slug once.
    fn place_numbered(&mut self, fact: Arc<Fact>, numbered: &[(Ns, u32)]) -> Result<()> {
        let mut slots = [NO_SLOT; AHEAD];
        for (j, &(ns, number)) in numbered.iter().enumerate() {
            let n = number as usize;
            slots[j] = match self.by_number.get(n).map(|s| s[ns_slot(ns)]).filter(|i| *i != NO_SLOT) {
                Some(i) => i,
                None => {
                    let refs = fact.timeline_refs();
                    let Some(&(_, slug)) = refs.get(j).filter(|(ns_j, _)| *ns_j == ns) else {
                        return self.place(fact); // (numbered otherwise: never the case)
                    };
                    let i = self.slot(ns, slug, fact.seq)?;
                    if self.by_number.len() <= n {
                        self.by_number.resize(n + 1, [NO_SLOT; 3]);
                    }
                    self.by_number[n][ns_slot(ns)] = i;
                    i
                }
            };
        }
        for &i in &slots[..numbered.len()] {
            self.timelines[i].facts.push(Arc::clone(&fact));
        }
        self.set_staged(fact.seq, Staged::Fact(fact));
        Ok(())
    }

    fn retract(&mut self, id: &Uuid, by: u64) -> Result<()> {
        let target = self
            .seq_of_id(id)?
            .ok_or_else(|| crate::Error::Corrupt { seq: by, detail: format!("retracts unknown id {id}") })?;
        self.retractions.insert(target, by);
        self.staged_retractions.push(target);
        for (ns, slug) in self.locate(target)? {
            let timeline = self.timeline(ns, &slug, by)?;
            timeline.decode_all(&slug)?;
            for fact in timeline.facts.iter_mut().filter(|f| f.seq == target) {
                Arc::make_mut(fact).retracted_by = Some(by);
            }
        }
        Ok(())
    }

    /// The timelines holding the fact of the event at `seq`.
    fn locate(&mut self, seq: u64) -> Result<Vec<TimelineKey>> {
        if let Some(Staged::Fact(fact)) = self.staged_at(seq) {
            return Ok(fact.timelines());
        }
        let rec = self.store.get(seq)?;
        if let Event::DealCompleted { deal, .. } | Event::DealTerminated { deal, .. } = &rec.event {
            // A closure names its parties through its fact in the deal's timeline.
            if let Some(fact) = self.timeline(Ns::Deal, deal, seq)?.facts.iter().find(|f| f.seq == seq) {
                return Ok(fact.timelines());
            }
        }
        Ok(crate::timeline::fact_of(&rec, None).map(|f| f.timelines()).unwrap_or_default())
    }

    /// All decoded staged facts of a touched timeline, retracted ones
    /// included, in fold order: every fact a rule may read (see
    /// [`StagedTimeline::load`]).
    pub fn all(&mut self, key: &TimelineKey) -> Vec<Arc<Fact>> {
        let Some(i) = self.staged_slot(key.0, &key.1) else { return Vec::new() };
        self.timelines[i].sorted().to_vec()
    }

    /// Runs `check` over every touched timeline's live facts in fold order,
    /// on every core (a rule concerns one timeline alone), and returns what
    /// it found, in the order the timelines were touched, with each
    /// timeline's key and the first staged seq that touched it.
    pub fn check_each<X: Send>(
        &mut self,
        check: impl Fn(&TimelineKey, &[Arc<Fact>]) -> Option<X> + Sync,
    ) -> Vec<(TimelineKey, u64, X)> {
        let mut pairs: Vec<(&(TimelineKey, u64), &mut StagedTimeline)> =
            self.touched.iter().zip(self.timelines.iter_mut()).collect();
        let found = par::map_mut(&mut pairs, |(touched, staged)| {
            let facts = staged.sorted();
            let found = if facts.iter().any(|f| f.retracted_by.is_some()) {
                let live: Vec<Arc<Fact>> = facts.iter().filter(|f| f.retracted_by.is_none()).cloned().collect();
                check(&touched.0, &live)
            } else {
                check(&touched.0, facts)
            };
            found.map(|x| (touched.0.clone(), touched.1, x))
        });
        found.into_iter().flatten().collect()
    }

    /// How many stored facts the staged timelines leave encoded.
    #[cfg(test)]
    pub fn kept(&self) -> usize {
        self.timelines.iter().map(|t| t.kept.len()).sum()
    }

    /// Sorts the touched timelines into fold order and writes everything
    /// (the timelines written are those of [`Indexer::touched`]). Idempotent: a record indexed again
    /// after a crash (when part of the index reached the disk without its
    /// watermark) is kept once.
    ///
    /// # Errors
    /// Storage errors.
    pub fn finish(mut self) -> Result<()> {
        let written = self
            .touched
            .iter()
            .zip(self.timelines.iter_mut())
            .map(|((key, _), staged)| (key, staged.encode(key, false)));
        self.store.write_index(&self.ids, written, !self.fresh)?;
        for seq in &self.staged_retractions {
            if let Some(by) = self.retractions.get(seq) {
                self.store.mark_retracted(*seq, *by)?;
            }
        }
        Ok(())
    }
}

impl Indexer<'_> {
    /// Writes everything staged as a sorted run holding the derived values
    /// up to seq `upto` (see `run`), and returns its name, for an index that
    /// holds nothing else: a rebuild, or a bulk load into an empty index
    /// ([`Store::index_is_empty`]). Every timeline is written whole. The
    /// run is seen once [`Store::install_run`] names it.
    ///
    /// # Errors
    /// Storage errors.
    pub fn write_run(mut self, upto: u64) -> Result<String> {
        let retracted: Vec<(u64, u64)> =
            self.staged_retractions.iter().filter_map(|seq| self.retractions.get(seq).map(|by| (*seq, *by))).collect();
        let mut pairs: Vec<(&TimelineKey, &mut StagedTimeline)> =
            self.touched.iter().map(|(key, _)| key).zip(self.timelines.iter_mut()).collect();
        // Encoded on every core, a group at a time (one group's values in memory).
        let timelines = pairs.chunks_mut(ENCODE_GROUP).flat_map(|group| {
            par::map_mut(group, |(key, staged)| {
                let value = match staged.encode(key, true) {
                    TimelineWrite::Whole(value) | TimelineWrite::Delta(value) => value, // (whole: never a delta)
                };
                (timeline_key(key.0, &key.1), value)
            })
        });
        let written = self.store.write_run(upto, timelines, &self.ids, &retracted);
        drop(pairs);
        self.free_in_background();
        written
    }

    /// Frees the staged records and timelines on a thread of their own: a
    /// million facts take a few hundred milliseconds to free, which the
    /// caller (a rebuild, a bulk load) need not wait for.
    fn free_in_background(&mut self) {
        let staged = (
            std::mem::take(&mut self.timelines),
            std::mem::take(&mut self.staged),
            std::mem::take(&mut self.new_ids),
            std::mem::take(&mut self.slots),
            std::mem::take(&mut self.touched),
            std::mem::take(&mut self.ids),
        );
        // (should no thread start, they are freed here)
        let _ = std::thread::Builder::new().name("dealledger-free".into()).spawn(move || drop(staged));
    }
}

/// Timelines encoded at once when writing a run (see [`Indexer::write_run`]).
const ENCODE_GROUP: usize = 16_384;

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, event: Event) -> StoredEvent {
        crate::event::test_record(seq, event)
    }

    fn slug(text: &str) -> EntityId {
        EntityId::parse(text).expect("slug")
    }

    #[test]
    fn numbering_gives_each_slug_one_number_in_timeline_order() {
        let mut numbering = Numbering::default();
        let renamed = |company: &str| Event::CompanyRenamed { company: slug(company), name: "X".into() };
        let first = numbering.prepare(record(1, renamed("b")), None);
        let again = numbering.prepare(record(2, renamed("b")), None);
        let other = numbering.prepare(record(3, renamed("a")), None);
        assert_eq!(first.numbered.map(|(n, len)| n[..len].to_vec()), Some(vec![(Ns::Entity, 0)]));
        assert_eq!(again.numbered.map(|(n, len)| n[..len].to_vec()), Some(vec![(Ns::Entity, 0)]));
        assert_eq!(other.numbered.map(|(n, len)| n[..len].to_vec()), Some(vec![(Ns::Entity, 1)]));
        // A closure's timelines are its announcement's, known only when staged.
        let closure = Event::DealTerminated { deal: slug("d"), reason: None };
        assert!(numbering.prepare(record(4, closure), None).numbered.is_none());
    }

    #[test]
    fn a_closure_body_is_its_event_then_its_announcement() {
        let announced = Fact {
            effective: Date::parse("2025-01-01").expect("date"),
            seq: 1,
            retracted_by: None,
            event: Event::CompanyRenamed { company: slug("a"), name: "A".into() },
            announcement: None,
            stored_body: StoredBody(Some(Arc::from(&[7u8, 8, 0][..]))),
        };
        assert_eq!(body_with(vec![5, 6, 0], Some(&announced)).as_deref(), Some(&[5u8, 6, 1, 7, 8][..]));
        assert_eq!(body_with(vec![5, 6, 0], None).as_deref(), Some(&[5u8, 6, 0][..]));
        let unknown = Fact { stored_body: StoredBody(None), ..announced };
        assert_eq!(body_with(vec![5, 6, 0], Some(&unknown)), None);
    }
}
