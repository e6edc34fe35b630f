//! The answers of the queries, in the JSON shape of contract §6.
//!
//! Field order here is the order of the JSON output. Percentages are exact
//! millionths written as numbers with at most 4 decimals; dates are
//! `YYYY-MM-DD`. This module must never compute anything: it only holds and
//! serializes what `query` found.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::value::{pct_json, Date, EntityId};

/// A percentage held as exact millionths of a whole; serializes as a JSON
/// number of percent with at most 4 decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pct(pub u64);

impl Serialize for Pct {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        pct_json(self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Pct {
    /// Reads the JSON number of percent back into millionths of a whole (it
    /// has at most 4 decimals, so rounding to the nearest millionth is exact).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pct = f64::deserialize(d)?;
        if !(0.0..=1e12).contains(&pct) {
            return Err(serde::de::Error::custom(format!("percentage {pct} out of range")));
        }
        // In range and non-negative: the cast cannot truncate or wrap.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Pct((pct * 10_000.0).round() as u64))
    }
}

/// Dates in answers are `YYYY-MM-DD` text (the stored form is a day number).
mod text_date {
    use super::{Date, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        d.with_text(|text| s.serialize_str(text))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        Date::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// [`text_date`] for optional dates (`null` when absent).
mod opt_text_date {
    use super::{Date, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => d.with_text(|text| s.serialize_str(text)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        Option::<String>::deserialize(d)?.map(|t| Date::parse(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

/// OpenAPI schemas of the value types that answers carry.
mod schemas {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
    use utoipa::openapi::RefOr;

    use super::{Date, EntityId, Pct};

    fn string(description: &str, format: Option<KnownFormat>) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(format.map(SchemaFormat::KnownFormat))
            .description(Some(description))
            .into()
    }

    impl utoipa::PartialSchema for EntityId {
        fn schema() -> RefOr<Schema> {
            string("a slug: ^[a-z0-9][a-z0-9._-]{0,63}$", None)
        }
    }
    impl utoipa::ToSchema for EntityId {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("EntityId")
        }
    }

    impl utoipa::PartialSchema for Date {
        fn schema() -> RefOr<Schema> {
            string("a date, YYYY-MM-DD", Some(KnownFormat::Date))
        }
    }
    impl utoipa::ToSchema for Date {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Date")
        }
    }

    impl utoipa::PartialSchema for Pct {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .description(Some("a percentage with at most 4 decimals"))
                .into()
        }
    }
    impl utoipa::ToSchema for Pct {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Pct")
        }
    }
}

/// `ownership COMPANY`: the cap table as of a date.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ownership {
    /// The company.
    pub company: EntityId,
    /// Its name as of the date.
    pub name: String,
    /// The valid-time date asked for.
    #[serde(with = "text_date")]
    pub as_of: Date,
    /// The transaction-time bound the answer saw.
    pub known_at_seq: u64,
    /// Holders by stake, descending (ties by id).
    pub holders: Vec<HolderRow>,
    /// The share held by nobody named.
    pub unattributed_pct: Pct,
    /// The holder with more than 50%, if any.
    pub controlled_by: Option<EntityId>,
    /// The top of the chain of controllers (null when `controlled_by` is null).
    pub ultimate_controller: Option<EntityId>,
    /// Deals announced for the company and not closed, by announcement date.
    pub pending_deals: Vec<PendingRow>,
}

/// One holder of a cap table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HolderRow {
    /// The holder (company or person).
    pub holder: EntityId,
    /// The stake.
    pub stake_pct: Pct,
    /// Start of the current unbroken holding.
    #[serde(with = "text_date")]
    pub since: Date,
}

/// One pending deal of a cap table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingRow {
    /// The deal id.
    pub deal: EntityId,
    /// Who would gain the stake.
    pub acquirer: EntityId,
    /// The announced stake.
    pub stake_pct: Pct,
    /// The announcement date.
    #[serde(with = "text_date")]
    pub announced: Date,
}

/// `holdings HOLDER`: what a company or person owns, directly and by look-through.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Holdings {
    /// The holder.
    pub holder: EntityId,
    /// The valid-time date asked for.
    #[serde(with = "text_date")]
    pub as_of: Date,
    /// The transaction-time bound the answer saw.
    pub known_at_seq: u64,
    /// Direct stakes by size, descending.
    pub direct: Vec<DirectRow>,
    /// Look-through stakes by rounded size, descending.
    pub look_through: Vec<LookThroughRow>,
}

/// One direct holding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DirectRow {
    /// The company held.
    pub company: EntityId,
    /// The stake.
    pub stake_pct: Pct,
    /// Start of the current unbroken holding.
    #[serde(with = "text_date")]
    pub since: Date,
}

/// One look-through holding: the sum over chains of the product of stakes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LookThroughRow {
    /// The company held.
    pub company: EntityId,
    /// The effective share, rounded half up to 4 decimals.
    pub effective_pct: Pct,
}

/// `partnerships COMPANY`: the active partnerships.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PartnershipsAnswer {
    /// The company.
    pub company: EntityId,
    /// The valid-time date asked for.
    #[serde(with = "text_date")]
    pub as_of: Date,
    /// The transaction-time bound the answer saw.
    pub known_at_seq: u64,
    /// Active partnerships by partner, then scope (null first).
    pub partnerships: Vec<PartnerRow>,
}

/// One active partnership.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PartnerRow {
    /// The other company.
    pub partner: EntityId,
    /// What it covers.
    pub scope: Option<String>,
    /// The `partnership_formed` date (null when first known from a continuation).
    #[serde(with = "opt_text_date")]
    pub since: Option<Date>,
    /// The latest continuation of the current period (or null).
    #[serde(with = "opt_text_date")]
    pub last_affirmed: Option<Date>,
}

/// `executives COMPANY`: who holds which role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Executives {
    /// The company.
    pub company: EntityId,
    /// The valid-time date asked for.
    #[serde(with = "text_date")]
    pub as_of: Date,
    /// The transaction-time bound the answer saw.
    pub known_at_seq: u64,
    /// Roles by role, then person.
    pub executives: Vec<ExecutiveRow>,
}

/// One role held at a company.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutiveRow {
    /// The person.
    pub person: EntityId,
    /// Their name.
    pub name: String,
    /// The role.
    pub role: String,
    /// Whether on an interim basis.
    pub interim: bool,
    /// Since when.
    #[serde(with = "text_date")]
    pub since: Date,
}

/// `career PERSON`: roles held now and before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Career {
    /// The person.
    pub person: EntityId,
    /// Their name.
    pub name: String,
    /// The valid-time date asked for.
    #[serde(with = "text_date")]
    pub as_of: Date,
    /// The transaction-time bound the answer saw.
    pub known_at_seq: u64,
    /// Roles held on the date, by `since`, then company, role.
    pub current: Vec<CurrentRole>,
    /// Roles ended on or before the date, by `to`, then company, role, `from`.
    pub past: Vec<PastRoleRow>,
}

/// A role held now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CurrentRole {
    /// The company.
    pub company: EntityId,
    /// The role.
    pub role: String,
    /// Whether on an interim basis.
    pub interim: bool,
    /// Since when.
    #[serde(with = "text_date")]
    pub since: Date,
}

/// A role that ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PastRoleRow {
    /// The company.
    pub company: EntityId,
    /// The role.
    pub role: String,
    /// When it started.
    #[serde(with = "text_date")]
    pub from: Date,
    /// When it ended.
    #[serde(with = "text_date")]
    pub to: Date,
}

/// The answer of any of the five queries.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// `ownership COMPANY`
    Ownership(Ownership),
    /// `holdings HOLDER`
    Holdings(Holdings),
    /// `partnerships COMPANY`
    Partnerships(PartnershipsAnswer),
    /// `executives COMPANY`
    Executives(Executives),
    /// `career PERSON`
    Career(Career),
}

/// The state shown after an event of a history: a company's cap table or a person's career.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum State {
    /// For a company.
    Ownership(Ownership),
    /// For a person.
    Career(Career),
}

/// One line of `history ID`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryLine {
    /// The event's seq.
    pub seq: u64,
    /// Its effective date.
    #[serde(with = "text_date")]
    pub effective: Date,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Its input fields (as in `log`, without `seq`).
    pub event: Map<String, Value>,
    /// The entity's state as of the event's date, after that day's events.
    pub state: State,
    /// The event in words (not part of the JSON form).
    #[serde(skip)]
    pub summary: String,
    /// The key change of the state since the previous event (not part of the JSON form).
    #[serde(skip)]
    pub change: String,
}

/// The result of `verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// The last seq checked.
    pub last_seq: u64,
    /// Its hash, hex.
    pub hash: String,
}
