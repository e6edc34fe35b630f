//! The closed set of domain events and the stored record around them.
//!
//! These types are what the log stores (through `codec`) and what every other
//! layer folds. They hold only valid values (see `value`); the JSON form lives
//! in `json`. This module must never know the byte layout or touch storage.
//! Stored structs stay plain (no serde attributes such as `untagged`,
//! `flatten` or `skip_serializing_if`) because bincode is not self-describing.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::value::{Date, EntityId, Money, Stake, Timestamp};

/// A SHA-256 digest of the hash chain.
pub type Hash = [u8; 32];

/// The `from` side of an `executive_moved`: the role(s) that end.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoleEnd {
    /// The company where the role(s) end.
    pub company: EntityId,
    /// The role that ends; `None` ends every role of the person there.
    pub role: Option<String>,
}

/// The `to` side of an `executive_moved`: the role that starts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoleStart {
    /// The company where the role starts.
    pub company: EntityId,
    /// The role.
    pub role: String,
    /// Whether the role is held on an interim basis.
    pub interim: bool,
}

/// A domain event: one variant per event type of the contract.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Event {
    /// A company exists from the effective date on.
    CompanyRegistered {
        /// The new company.
        company: EntityId,
        /// Its display name.
        name: String,
        /// Where it is incorporated.
        jurisdiction: Option<String>,
    },
    /// A company's display name changes.
    CompanyRenamed {
        /// The company.
        company: EntityId,
        /// Its new display name.
        name: String,
    },
    /// A person exists from the effective date on.
    PersonRegistered {
        /// The new person.
        person: EntityId,
        /// Their name.
        name: String,
    },
    /// `acquirer` gains `stake` of `target`, from `seller` or the unattributed remainder.
    Acquisition {
        /// Who gains the stake.
        acquirer: EntityId,
        /// The company whose shares change hands.
        target: EntityId,
        /// The share acquired.
        stake: Stake,
        /// Who gives up the stake; `None` means the unattributed remainder.
        seller: Option<EntityId>,
        /// The price.
        consideration: Option<Money>,
        /// A label only.
        deal: Option<EntityId>,
    },
    /// A pending deal; ownership is unchanged until it completes.
    DealAnnounced {
        /// The deal's id.
        deal: EntityId,
        /// Who would gain the stake.
        acquirer: EntityId,
        /// The company whose shares would change hands.
        target: EntityId,
        /// The announced share.
        stake: Stake,
        /// Who would give up the stake.
        seller: Option<EntityId>,
        /// The announced price.
        consideration: Option<Money>,
    },
    /// A pending deal closes, with its announced terms unless overridden.
    DealCompleted {
        /// The deal's id.
        deal: EntityId,
        /// A stake overriding the announced one.
        stake: Option<Stake>,
        /// A price overriding the announced one.
        consideration: Option<Money>,
    },
    /// A pending deal ends without effect.
    DealTerminated {
        /// The deal's id.
        deal: EntityId,
        /// Why.
        reason: Option<String>,
    },
    /// `seller` gives up `stake` of `target`, to `buyer` or the unattributed remainder.
    StakeSold {
        /// Who gives up the stake.
        seller: EntityId,
        /// The company whose shares change hands.
        target: EntityId,
        /// The share sold.
        stake: Stake,
        /// Who gains it; `None` means the unattributed remainder.
        buyer: Option<EntityId>,
        /// The price.
        consideration: Option<Money>,
    },
    /// A partnership becomes active.
    PartnershipFormed {
        /// The two distinct companies, as given.
        partners: [EntityId; 2],
        /// What the partnership covers.
        scope: Option<String>,
    },
    /// A partnership is reaffirmed (and becomes active if it was not).
    PartnershipContinued {
        /// The two distinct companies, as given.
        partners: [EntityId; 2],
        /// What the partnership covers.
        scope: Option<String>,
    },
    /// A partnership ends.
    PartnershipEnded {
        /// The two distinct companies, as given.
        partners: [EntityId; 2],
        /// What the partnership covered.
        scope: Option<String>,
        /// Why it ended.
        reason: Option<String>,
    },
    /// A person takes a role at a company.
    ExecutiveAppointed {
        /// The person.
        person: EntityId,
        /// The company.
        company: EntityId,
        /// The role.
        role: String,
        /// Whether on an interim basis.
        interim: bool,
    },
    /// A person leaves a role (or every role) at a company.
    ExecutiveDeparted {
        /// The person.
        person: EntityId,
        /// The company.
        company: EntityId,
        /// The role; `None` ends every role of the person there.
        role: Option<String>,
    },
    /// A person leaves role(s) at one company and takes a role, the same day.
    ExecutiveMoved {
        /// The person.
        person: EntityId,
        /// The role(s) that end.
        from: RoleEnd,
        /// The role that starts.
        to: RoleStart,
    },
    /// From its seq on, the retracted event counts as never having happened.
    Retraction {
        /// The id of the retracted event.
        retracts: Uuid,
        /// Why.
        reason: String,
    },
}

/// What kind of entity an id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// A company.
    Company,
    /// A person.
    Person,
}

impl Kind {
    /// `company` or `person`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Company => "company",
            Kind::Person => "person",
        }
    }
}

/// The part an entity plays in an event; it decides which kind the entity must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The event registers the entity as this kind.
    Registers(Kind),
    /// A holder of shares: acquirer, seller or buyer (company or person).
    Holder,
    /// The company whose shares change hands (or would, for a deal).
    Target,
    /// A partner of a partnership.
    Partner,
    /// The company of a role or a rename.
    Company,
    /// The person of a role event.
    Person,
}

impl Part {
    /// The kind the entity must be, if any.
    pub fn required_kind(self) -> Option<Kind> {
        match self {
            Part::Registers(_) | Part::Holder => None,
            Part::Target | Part::Partner | Part::Company => Some(Kind::Company),
            Part::Person => Some(Kind::Person),
        }
    }

    /// How the part is named in messages.
    pub fn name(self) -> &'static str {
        match self {
            Part::Registers(_) => "registered entity",
            Part::Holder => "holder",
            Part::Target => "target",
            Part::Partner => "partner",
            Part::Company => "company",
            Part::Person => "person",
        }
    }
}

impl Event {
    /// The contract's name of the event type (`acquisition`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::CompanyRegistered { .. } => "company_registered",
            Event::CompanyRenamed { .. } => "company_renamed",
            Event::PersonRegistered { .. } => "person_registered",
            Event::Acquisition { .. } => "acquisition",
            Event::DealAnnounced { .. } => "deal_announced",
            Event::DealCompleted { .. } => "deal_completed",
            Event::DealTerminated { .. } => "deal_terminated",
            Event::StakeSold { .. } => "stake_sold",
            Event::PartnershipFormed { .. } => "partnership_formed",
            Event::PartnershipContinued { .. } => "partnership_continued",
            Event::PartnershipEnded { .. } => "partnership_ended",
            Event::ExecutiveAppointed { .. } => "executive_appointed",
            Event::ExecutiveDeparted { .. } => "executive_departed",
            Event::ExecutiveMoved { .. } => "executive_moved",
            Event::Retraction { .. } => "retraction",
        }
    }

    /// The entities the event names itself, with their parts. A deal's
    /// completion or termination names its parties only through the
    /// announcement, which the caller resolves.
    pub fn parties(&self) -> Vec<(&EntityId, Part)> {
        let mut out = Vec::with_capacity(3);
        match self {
            Event::CompanyRegistered { company, .. } => out.push((company, Part::Registers(Kind::Company))),
            Event::PersonRegistered { person, .. } => out.push((person, Part::Registers(Kind::Person))),
            Event::CompanyRenamed { company, .. } => out.push((company, Part::Company)),
            Event::Acquisition { acquirer, target, seller, .. }
            | Event::DealAnnounced { acquirer, target, seller, .. } => {
                out.push((acquirer, Part::Holder));
                out.push((target, Part::Target));
                out.extend(seller.iter().map(|s| (s, Part::Holder)));
            }
            Event::StakeSold { seller, target, buyer, .. } => {
                out.push((seller, Part::Holder));
                out.push((target, Part::Target));
                out.extend(buyer.iter().map(|b| (b, Part::Holder)));
            }
            Event::PartnershipFormed { partners, .. }
            | Event::PartnershipContinued { partners, .. }
            | Event::PartnershipEnded { partners, .. } => {
                out.extend(partners.iter().map(|p| (p, Part::Partner)));
            }
            Event::ExecutiveAppointed { person, company, .. } | Event::ExecutiveDeparted { person, company, .. } => {
                out.push((person, Part::Person));
                out.push((company, Part::Company));
            }
            Event::ExecutiveMoved { person, from, to } => {
                out.push((person, Part::Person));
                out.push((&from.company, Part::Company));
                if to.company != from.company {
                    out.push((&to.company, Part::Company));
                }
            }
            Event::DealCompleted { .. } | Event::DealTerminated { .. } | Event::Retraction { .. } => {}
        }
        out
    }

    /// The deal id of an announcement, completion or termination (not the label of an acquisition).
    pub fn deal_id(&self) -> Option<&EntityId> {
        match self {
            Event::DealAnnounced { deal, .. }
            | Event::DealCompleted { deal, .. }
            | Event::DealTerminated { deal, .. } => Some(deal),
            _ => None,
        }
    }
}

/// An event as submitted, before the ledger gives it a place in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// The event's id, if the submitter chose one.
    pub id: Option<Uuid>,
    /// Valid time; `None` only for a retraction.
    pub effective: Option<Date>,
    /// Where the fact comes from.
    pub source: Option<String>,
    /// Free text.
    pub note: Option<String>,
    /// The event itself.
    pub event: Event,
}

/// An event stored in the log: the draft plus what the ledger assigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Position in transaction time: 1, 2, 3, … with no gaps.
    pub seq: u64,
    /// The event's id.
    pub id: Uuid,
    /// When the ledger stored it.
    pub recorded_at: Timestamp,
    /// Valid time; `None` only for a retraction.
    pub effective: Option<Date>,
    /// Where the fact comes from.
    pub source: Option<String>,
    /// Free text.
    pub note: Option<String>,
    /// The event itself.
    pub event: Event,
    /// The hash of the previous record (zeros for seq 1).
    pub prev_hash: Hash,
    /// SHA-256 of `prev_hash` and the record's canonical bytes.
    pub hash: Hash,
}

impl StoredEvent {
    /// The record a draft becomes at `seq`, stored at `recorded_at`, with
    /// the draft's id (a new v7 id when it has none) and the hashes still
    /// zero: the ledger chains them once the whole append is placed.
    pub fn unhashed(draft: Draft, seq: u64, recorded_at: Timestamp) -> Self {
        StoredEvent {
            seq,
            id: draft.id.unwrap_or_else(Uuid::now_v7),
            recorded_at,
            effective: draft.effective,
            source: draft.source,
            note: draft.note,
            event: draft.event,
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    /// The fold position `(effective, seq)`; a retraction sorts by seq alone, before any date.
    pub fn fold_key(&self) -> (Option<Date>, u64) {
        (self.effective, self.seq)
    }

    /// Whether the stored record carries the same submitted content as `draft`
    /// (the test of an idempotent retry).
    pub fn same_content(&self, draft: &Draft) -> bool {
        self.effective == draft.effective
            && self.source == draft.source
            && self.note == draft.note
            && self.event == draft.event
    }
}

impl Event {
    /// The event in words, for readable timelines (`meta acquires 49% of scale-ai`).
    pub fn describe(&self) -> String {
        let price = |c: &Option<Money>| c.as_ref().map(|m| format!(" for {m}")).unwrap_or_default();
        let from = |s: &Option<EntityId>| s.as_ref().map(|s| format!(" from {s}")).unwrap_or_default();
        let scope = |s: &Option<String>| s.as_ref().map(|s| format!(" ({s})")).unwrap_or_default();
        match self {
            Event::CompanyRegistered { company, name, .. } => format!("{company} registered as \"{name}\""),
            Event::CompanyRenamed { company, name } => format!("{company} renamed \"{name}\""),
            Event::PersonRegistered { person, name } => format!("{person} registered as \"{name}\""),
            Event::Acquisition { acquirer, target, stake, seller, consideration, .. } => {
                format!("{acquirer} acquires {stake} of {target}{}{}", from(seller), price(consideration))
            }
            Event::DealAnnounced { deal, acquirer, target, stake, seller, consideration } => format!(
                "deal {deal} announced: {acquirer} to acquire {stake} of {target}{}{}",
                from(seller),
                price(consideration)
            ),
            Event::DealCompleted { deal, stake, .. } => match stake {
                Some(s) => format!("deal {deal} completed at {s}"),
                None => format!("deal {deal} completed"),
            },
            Event::DealTerminated { deal, reason } => {
                format!("deal {deal} terminated{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())
            }
            Event::StakeSold { seller, target, stake, buyer, consideration } => format!(
                "{seller} sells {stake} of {target}{}{}",
                buyer.as_ref().map(|b| format!(" to {b}")).unwrap_or_default(),
                price(consideration)
            ),
            Event::PartnershipFormed { partners, scope: s } => {
                format!("{} and {} form a partnership{}", partners[0], partners[1], scope(s))
            }
            Event::PartnershipContinued { partners, scope: s } => {
                format!("{} and {} continue their partnership{}", partners[0], partners[1], scope(s))
            }
            Event::PartnershipEnded { partners, scope: s, .. } => {
                format!("{} and {} end their partnership{}", partners[0], partners[1], scope(s))
            }
            Event::ExecutiveAppointed { person, company, role, interim } => {
                format!("{person} appointed {role}{} at {company}", if *interim { " (interim)" } else { "" })
            }
            Event::ExecutiveDeparted { person, company, role } => match role {
                Some(r) => format!("{person} leaves {r} at {company}"),
                None => format!("{person} leaves every role at {company}"),
            },
            Event::ExecutiveMoved { person, from, to } => format!(
                "{person} moves from {}{} to {} at {}",
                from.role.as_deref().map(|r| format!("{r} at ")).unwrap_or_default(),
                from.company,
                to.role,
                to.company
            ),
            Event::Retraction { retracts, reason } => format!("retracts {retracts}: {reason}"),
        }
    }
}

/// A record of `event` at `seq` with fixed other fields, for unit tests.
#[cfg(test)]
pub(crate) fn test_record(seq: u64, event: Event) -> StoredEvent {
    let draft = Draft {
        id: Some(Uuid::from_u128(u128::from(seq))),
        effective: Date::parse("2025-01-01").ok(),
        source: None,
        note: None,
        event,
    };
    StoredEvent::unhashed(draft, seq, Timestamp::from_nanos(0))
}
