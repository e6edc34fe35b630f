//! Timelines: the facts that name one entity (or one deal), in fold order
//! `(effective, seq)`, as seen from one point of transaction time.
//!
//! A [`Fact`] is what the folds need of one event: its dates, the event, its
//! retraction (if any) and, for a deal's completion or termination, the
//! announcement it closes. Each timeline is stored as one value (see
//! `store`), so an answer costs one read per entity. A [`View`] filters
//! facts by a seq bound (the query's `known_at`) and retractions recorded by
//! then; validation folds the timelines staged by `index` instead. This
//! module must never decide validity or build answers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec::FactHeader;
use crate::error::Result;
use crate::event::{Event, Kind, Part, StoredEvent};
use crate::store::{Ns, Store, StoredTimeline};
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
    /// Its encoded body as read from a stored timeline, if it was.
    #[serde(skip)]
    pub stored_body: StoredBody,
}

/// The encoded body of a fact (event and announcement) as it was read from a
/// stored timeline, kept so that writing the timeline back copies it instead
/// of encoding it again (appends rewrite every timeline they touch). Only
/// `retracted_by` ever changes on a stored fact, and it lives in the header,
/// so the body stays valid. It is a cache: never compared, never serialized.
#[derive(Clone, Default)]
pub struct StoredBody(pub Option<Arc<[u8]>>);

impl PartialEq for StoredBody {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for StoredBody {}

impl std::fmt::Debug for StoredBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredBody({} bytes)", self.0.as_ref().map_or(0, |b| b.len()))
    }
}

impl Fact {
    /// The fold position.
    pub fn key(&self) -> (Date, u64) {
        (self.effective, self.seq)
    }

    /// Every entity the fact names, with its part; a deal's completion or
    /// termination names the parties of its announcement.
    pub fn parties(&self) -> Vec<(&EntityId, Part)> {
        parties_of(&self.event, self.announcement.as_ref())
    }

    /// The timelines the fact belongs to: its parties' and its deal's.
    pub fn timelines(&self) -> Vec<(Ns, EntityId)> {
        self.timeline_refs().into_iter().map(|(ns, id)| (ns, id.clone())).collect()
    }

    /// As [`Fact::timelines`], borrowing the slugs.
    pub fn timeline_refs(&self) -> Vec<(Ns, &EntityId)> {
        timeline_refs_of(&self.event, self.announcement.as_ref())
    }

    /// Whether the fact counts as known at `upto` (recorded and not retracted by then).
    pub fn known_at(&self, upto: u64) -> bool {
        self.seq <= upto && self.retracted_by.is_none_or(|by| by > upto)
    }
}

/// Which folds read a fact, as bits. Each fact's header in a stored
/// timeline carries them, so a query decodes only the facts its fold reads
/// (an ownership answer skips a company's partnership and role events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Topics(u8);

impl Topics {
    /// Registrations and renames: what names and kinds an entity.
    pub const NAME: Topics = Topics(1);
    /// Stakes and deals in the timeline's own shares (its entity is the
    /// target, or it is a deal's timeline): what the cap-table fold reads.
    pub const STAKE: Topics = Topics(2);
    /// Partnerships.
    pub const PARTNER: Topics = Topics(4);
    /// Executive roles.
    pub const ROLE: Topics = Topics(8);
    /// Stakes and deals in which the timeline's entity is a holder (acquirer,
    /// seller or buyer): what its direct holdings fold.
    pub const HELD: Topics = Topics(16);
    /// Every fact.
    pub const ALL: Topics = Topics(u8::MAX);
    /// No fact.
    pub const NONE: Topics = Topics(0);

    /// The topics of a fact in the timeline of `key`: as [`Topics::of`],
    /// but a stake or deal fact in an entity's timeline is [`Topics::STAKE`]
    /// where the entity is its target and [`Topics::HELD`] where it is a
    /// holder, so that an ownership answer (or an append's cap-table check)
    /// on an active acquirer skips its acquisitions, and its holdings skip
    /// the stakes taken in it.
    pub fn in_timeline(event: &Event, announcement: Option<&Event>, key: (Ns, &EntityId)) -> Topics {
        let topics = Topics::of(event);
        if key.0 != Ns::Entity || topics != Topics::STAKE {
            return topics;
        }
        let sides = parties_of(event, announcement).into_iter().filter(|(id, _)| *id == key.1).fold(
            Topics::NONE,
            |sides, (_, part)| match part {
                Part::Target => sides | Topics::STAKE,
                Part::Holder => sides | Topics::HELD,
                _ => sides,
            },
        );
        // (a fact in an entity's timeline names it; should one not, both)
        if sides == Topics::NONE {
            Topics::STAKE | Topics::HELD
        } else {
            sides
        }
    }

    /// The topics of an event (a retraction has none: it has no fact).
    pub fn of(event: &Event) -> Topics {
        match event {
            Event::CompanyRegistered { .. } | Event::CompanyRenamed { .. } | Event::PersonRegistered { .. } => {
                Topics::NAME
            }
            Event::Acquisition { .. }
            | Event::DealAnnounced { .. }
            | Event::DealCompleted { .. }
            | Event::DealTerminated { .. }
            | Event::StakeSold { .. } => Topics::STAKE,
            Event::PartnershipFormed { .. } | Event::PartnershipContinued { .. } | Event::PartnershipEnded { .. } => {
                Topics::PARTNER
            }
            Event::ExecutiveAppointed { .. } | Event::ExecutiveDeparted { .. } | Event::ExecutiveMoved { .. } => {
                Topics::ROLE
            }
            Event::Retraction { .. } => Topics::NONE,
        }
    }

    /// The bits, as stored.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Topics from stored bits.
    pub fn from_bits(bits: u8) -> Topics {
        Topics(bits)
    }

    /// Whether the two share a topic.
    pub fn meets(self, other: Topics) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for Topics {
    type Output = Topics;

    fn bitor(self, other: Topics) -> Topics {
        Topics(self.0 | other.0)
    }
}

/// The entities an event names, with their parts; a deal's completion or
/// termination names the parties of `announcement`, the announcement it closes.
fn parties_of<'e>(event: &'e Event, announcement: Option<&'e Event>) -> Vec<(&'e EntityId, Part)> {
    match (event, announcement) {
        (Event::DealCompleted { .. } | Event::DealTerminated { .. }, Some(a)) => a.parties(),
        (ev, _) => ev.parties(),
    }
}

/// The timelines the fact of `event` belongs to (see [`Fact::timelines`]),
/// given the announcement it closes, if it closes a deal.
pub fn timeline_refs_of<'e>(event: &'e Event, announcement: Option<&'e Event>) -> Vec<(Ns, &'e EntityId)> {
    let mut keys: Vec<(Ns, &EntityId)> = Vec::with_capacity(4);
    for (id, _) in parties_of(event, announcement) {
        if !keys.iter().any(|(_, k)| *k == id) {
            keys.push((Ns::Entity, id));
        }
    }
    if let Some(deal) = event.deal_id() {
        keys.push((Ns::Deal, deal));
    }
    if let Event::CompanyRegistered { company: id, .. } | Event::PersonRegistered { person: id, .. } = event {
        keys.push((Ns::Name, id));
    }
    keys
}

/// The fact of a record, given the announcement it closes (if it closes a deal).
/// A retraction has no fact: it acts through `retracted_by`.
pub fn fact_of(rec: &StoredEvent, announcement: Option<Event>) -> Option<Fact> {
    Some(Fact {
        effective: rec.effective?,
        seq: rec.seq,
        retracted_by: None,
        event: rec.event.clone(),
        announcement,
        stored_body: StoredBody::default(),
    })
}

/// A timeline's key: its namespace and slug.
pub type TimelineKey = (Ns, EntityId);

/// One stored timeline, decoded fact by fact as folds need them.
struct Lazy {
    stored: StoredTimeline,
    decoded: RefCell<Vec<Option<Arc<Fact>>>>,
}

impl Lazy {
    fn fact(&self, slug: &EntityId, i: usize) -> Result<Arc<Fact>> {
        if let Some(Some(fact)) = self.decoded.borrow().get(i) {
            return Ok(Arc::clone(fact));
        }
        let fact = Arc::new(self.stored.fact(slug, i, false)?);
        if let Some(slot) = self.decoded.borrow_mut().get_mut(i) {
            *slot = Some(Arc::clone(&fact));
        }
        Ok(fact)
    }
}

/// The ledger as known at one seq.
pub struct View<'a> {
    store: &'a Store,
    upto: u64,
    blobs: RefCell<HashMap<TimelineKey, Option<Rc<Lazy>>>>,
}

impl<'a> View<'a> {
    /// The store as known at `upto` (events with `seq <= upto`, retractions recorded by then).
    pub fn at(store: &'a Store, upto: u64) -> Self {
        Self { store, upto, blobs: RefCell::default() }
    }

    /// The seq bound of this view.
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// The full record at `seq`, from the log.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when the stored record is damaged.
    pub fn record(&self, seq: u64) -> Result<StoredEvent> {
        self.store.get(seq)
    }

    /// The seq of the retraction of `seq` within this view, if any.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] on a read failure.
    pub fn retracted_by(&self, seq: u64) -> Result<Option<u64>> {
        Ok(self.store.retracted_by(seq)?.filter(|by| *by <= self.upto))
    }

    fn stored(&self, ns: Ns, slug: &EntityId) -> Result<Option<Rc<Lazy>>> {
        let key = (ns, slug.clone());
        if let Some(found) = self.blobs.borrow().get(&key) {
            return Ok(found.clone());
        }
        let lazy = self.store.stored_timeline(ns, slug)?.map(|stored| {
            let decoded = RefCell::new(vec![None; stored.len()]);
            Rc::new(Lazy { stored, decoded })
        });
        self.blobs.borrow_mut().insert(key, lazy.clone());
        Ok(lazy)
    }

    /// The facts of a timeline that count in this view, in fold order.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] / [`crate::Error::Corrupt`] on a read failure.
    pub fn facts(&self, ns: Ns, slug: &EntityId) -> Result<Vec<Arc<Fact>>> {
        self.facts_of(ns, slug, None, Topics::ALL)
    }

    /// The facts of a timeline that count in this view, are effective on or
    /// before `until` (all when `None`) and have one of `topics`, in fold
    /// order. Only those facts are decoded.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] / [`crate::Error::Corrupt`] on a read failure.
    pub fn facts_of(&self, ns: Ns, slug: &EntityId, until: Option<Date>, topics: Topics) -> Result<Vec<Arc<Fact>>> {
        let Some(lazy) = self.stored(ns, slug)? else { return Ok(Vec::new()) };
        let entries = lazy.stored.entries();
        let end = until.map_or(entries.len(), |d| entries.partition_point(|e| e.effective <= d.days()));
        let wanted = |h: &FactHeader| {
            Topics::from_bits(h.topics).meets(topics)
                && h.seq <= self.upto
                && (h.retracted_by == u64::MAX || h.retracted_by > self.upto)
        };
        (0..end).filter(|i| wanted(&entries[*i])).map(|i| lazy.fact(slug, i)).collect()
    }

    /// The registration of an entity that counts in this view, read from
    /// one of its timelines: `Ns::Name` (a small value) when nothing else of
    /// the entity is needed, `Ns::Entity` when the caller folds that anyway
    /// (the view keeps what it read, so the timeline is read once).
    ///
    /// # Errors
    /// [`crate::Error::Storage`] / [`crate::Error::Corrupt`] on a read failure.
    pub fn registration_in(&self, ns: Ns, slug: &EntityId) -> Result<Option<Registration>> {
        let names = self.facts_of(ns, slug, None, Topics::NAME)?;
        Ok(names.iter().filter_map(|f| Registration::of(f)).min_by_key(|r| r.seq))
    }

    /// The registration of an entity that counts in this view (the earliest by seq).
    ///
    /// # Errors
    /// [`crate::Error::Storage`] / [`crate::Error::Corrupt`] on a read failure.
    pub fn registration(&self, slug: &EntityId) -> Result<Option<Registration>> {
        self.registration_in(Ns::Name, slug)
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
            .map(|f| f.event.clone()))
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
