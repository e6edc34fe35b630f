//! The JSON form of events: strict parsing of submitted events and the
//! canonical rendering used by `log`, `export` and the hash chain.
//!
//! Parsing refuses anything the contract does not allow (unknown fields, wrong
//! kinds, malformed values) with a message naming the field. Rendering is
//! canonical: fixed field order, no spaces, exact decimals, so the same record
//! always gives the same bytes. This module must never consult the ledger's
//! state: whether an event is *allowed* is `validate`'s business.

use std::io::Write as _;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::event::{Draft, Event, RoleEnd, RoleStart, StoredEvent};
use crate::value::{decimal_text, pct_json, truncate, Date, EntityId, Money, Stake, Timestamp};

/// The longest text a field may hold, in bytes: records stay far below the
/// codec's size guard, so a stored record always decodes.
pub const MAX_TEXT: usize = 64 * 1024;

/// Fields every event may carry.
const COMMON: &[&str] = &["type", "effective", "id", "source", "note"];
/// Fields only the ledger sets (contract §4 rule 9).
const LEDGER_OWNED: &[&str] = &["seq", "recorded_at", "hash"];

/// The fields a type allows besides the common ones.
fn allowed_fields(type_name: &str) -> Option<&'static [&'static str]> {
    Some(match type_name {
        "company_registered" => &["company", "name", "jurisdiction"],
        "company_renamed" => &["company", "name"],
        "person_registered" => &["person", "name"],
        "acquisition" => &["acquirer", "target", "stake_pct", "seller", "consideration", "deal"],
        "deal_announced" => &["deal", "acquirer", "target", "stake_pct", "seller", "consideration"],
        "deal_completed" => &["deal", "stake_pct", "consideration"],
        "deal_terminated" => &["deal", "reason"],
        "stake_sold" => &["seller", "target", "stake_pct", "buyer", "consideration"],
        "partnership_formed" | "partnership_continued" => &["partners", "scope"],
        "partnership_ended" => &["partners", "scope", "reason"],
        "executive_appointed" => &["person", "company", "role", "interim"],
        "executive_departed" => &["person", "company", "role"],
        "executive_moved" => &["person", "from", "to"],
        "retraction" => &["retracts", "reason"],
        _ => return None,
    })
}

/// Reads typed fields out of one JSON object, naming the field on error.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    context: &'a str,
}

impl<'a> Fields<'a> {
    fn err(&self, key: &str, what: impl std::fmt::Display) -> String {
        format!("{}: field `{key}`: {what}", self.context)
    }

    /// The value, treating `null` as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn required(&self, key: &str) -> Result<&'a Value, String> {
        self.get(key).ok_or_else(|| format!("{}: missing field `{key}`", self.context))
    }

    fn text_of(&self, key: &str, value: &'a Value) -> Result<String, String> {
        match value {
            Value::String(s) if s.len() > MAX_TEXT => {
                Err(self.err(key, format!("is {} bytes long; at most {MAX_TEXT} are allowed", s.len())))
            }
            Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
            Value::String(_) => Err(self.err(key, "must not be empty")),
            other => Err(self.err(key, format!("expected a string, found {}", kind_of(other)))),
        }
    }

    fn text(&self, key: &str) -> Result<String, String> {
        self.text_of(key, self.required(key)?)
    }

    fn opt_text(&self, key: &str) -> Result<Option<String>, String> {
        self.get(key).map(|v| self.text_of(key, v)).transpose()
    }

    fn id_of(&self, key: &str, value: &Value) -> Result<EntityId, String> {
        match value {
            Value::String(s) => EntityId::parse(s).map_err(|e| self.err(key, e)),
            other => Err(self.err(key, format!("expected a slug, found {}", kind_of(other)))),
        }
    }

    fn id(&self, key: &str) -> Result<EntityId, String> {
        self.id_of(key, self.required(key)?)
    }

    fn opt_id(&self, key: &str) -> Result<Option<EntityId>, String> {
        self.get(key).map(|v| self.id_of(key, v)).transpose()
    }

    fn stake_of(&self, value: &Value) -> Result<Stake, String> {
        let text = decimal_text(value)
            .ok_or_else(|| self.err("stake_pct", format!("expected a number, found {}", kind_of(value))))?;
        Stake::parse_pct(&text).map_err(|e| self.err("stake_pct", e))
    }

    fn stake(&self) -> Result<Stake, String> {
        self.stake_of(self.required("stake_pct")?)
    }

    fn opt_stake(&self) -> Result<Option<Stake>, String> {
        self.get("stake_pct").map(|v| self.stake_of(v)).transpose()
    }

    fn opt_money(&self) -> Result<Option<Money>, String> {
        let Some(value) = self.get("consideration") else {
            return Ok(None);
        };
        let obj = value
            .as_object()
            .ok_or_else(|| self.err("consideration", format!("expected an object, found {}", kind_of(value))))?;
        let inner = Fields { map: obj, context: &format!("{}: consideration", self.context) };
        inner.only(&["amount", "currency"])?;
        let amount = inner.required("amount")?;
        let amount = decimal_text(amount)
            .ok_or_else(|| inner.err("amount", format!("expected a decimal, found {}", kind_of(amount))))?;
        let currency = inner.text("currency")?;
        Money::parse(&amount, &currency).map(Some).map_err(|e| self.err("consideration", e))
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.err(key, format!("expected true or false, found {}", kind_of(other)))),
        }
    }

    fn partners(&self) -> Result<[EntityId; 2], String> {
        let value = self.required("partners")?;
        let list = value
            .as_array()
            .filter(|l| l.len() == 2)
            .ok_or_else(|| self.err("partners", "expected a list of two companies"))?;
        let (a, b) = (self.id_of("partners", &list[0])?, self.id_of("partners", &list[1])?);
        if a == b {
            return Err(self.err("partners", format!("the two partners must be distinct, both are `{a}`")));
        }
        Ok([a, b])
    }

    fn object(&self, key: &str, allowed: &[&str]) -> Result<Fields<'a>, String> {
        let value = self.required(key)?;
        let map =
            value.as_object().ok_or_else(|| self.err(key, format!("expected an object, found {}", kind_of(value))))?;
        let inner = Fields { map, context: self.context };
        for field in map.keys() {
            if !allowed.contains(&field.as_str()) {
                return Err(self.err(key, format!("unknown field `{field}`")));
            }
        }
        Ok(inner)
    }

    /// Refuses any field outside `allowed`.
    fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(field) => Err(format!("{}: unknown field `{}`", self.context, truncate(field, 40))),
            None => Ok(()),
        }
    }
}

/// Names a JSON value's kind for messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Parses one submitted event (contract §3), refusing ledger-owned fields.
///
/// # Errors
/// A message naming the event type and the offending field.
pub fn parse_draft(value: &Value) -> Result<Draft, String> {
    let map = value.as_object().ok_or_else(|| format!("expected a JSON object, found {}", kind_of(value)))?;
    if let Some(message) = ledger_owned(value) {
        return Err(message);
    }
    parse_fields(map)
}

/// Rule 9: the message for a submitted event that sets a field only the ledger sets.
pub fn ledger_owned(value: &Value) -> Option<String> {
    let map = value.as_object()?;
    LEDGER_OWNED.iter().find(|k| map.contains_key(**k)).map(|owned| {
        format!(
            "field `{owned}` belongs to the ledger and cannot be set on append (only `import` of an export carries it)"
        )
    })
}

fn parse_fields(map: &Map<String, Value>) -> Result<Draft, String> {
    let type_name = match map.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(format!("field `type`: expected a string, found {}", kind_of(other))),
        None => return Err("missing field `type`".to_owned()),
    };
    let specific =
        allowed_fields(type_name).ok_or_else(|| format!("unknown event type `{}`", truncate(type_name, 40)))?;
    let f = Fields { map, context: type_name };
    let allowed: Vec<&str> = COMMON.iter().chain(specific).copied().collect();
    f.only(&allowed)?;
    let id = match f.get("id") {
        None => None,
        Some(Value::String(s)) => {
            Some(Uuid::parse_str(s).map_err(|_| f.err("id", format!("`{}` is not a UUID", truncate(s, 40))))?)
        }
        Some(other) => return Err(f.err("id", format!("expected a UUID string, found {}", kind_of(other)))),
    };
    let event = parse_event(&f, type_name)?;
    let effective = match (&event, f.get("effective")) {
        (Event::Retraction { .. }, _) => None,
        (_, None) => return Err(format!("{type_name}: missing field `effective`")),
        (_, Some(Value::String(s))) => Some(Date::parse(s).map_err(|e| f.err("effective", e))?),
        (_, Some(other)) => return Err(f.err("effective", format!("expected a date string, found {}", kind_of(other)))),
    };
    Ok(Draft { id, effective, source: f.opt_text("source")?, note: f.opt_text("note")?, event })
}

fn parse_event(f: &Fields<'_>, type_name: &str) -> Result<Event, String> {
    Ok(match type_name {
        "company_registered" => Event::CompanyRegistered {
            company: f.id("company")?,
            name: f.text("name")?,
            jurisdiction: f.opt_text("jurisdiction")?,
        },
        "company_renamed" => Event::CompanyRenamed { company: f.id("company")?, name: f.text("name")? },
        "person_registered" => Event::PersonRegistered { person: f.id("person")?, name: f.text("name")? },
        "acquisition" => {
            let (acquirer, seller) = (f.id("acquirer")?, f.opt_id("seller")?);
            distinct(f, "seller", seller.as_ref(), "acquirer", &acquirer)?;
            Event::Acquisition {
                acquirer,
                target: f.id("target")?,
                stake: f.stake()?,
                seller,
                consideration: f.opt_money()?,
                deal: f.opt_id("deal")?,
            }
        }
        "deal_announced" => {
            let (acquirer, seller) = (f.id("acquirer")?, f.opt_id("seller")?);
            distinct(f, "seller", seller.as_ref(), "acquirer", &acquirer)?;
            Event::DealAnnounced {
                deal: f.id("deal")?,
                acquirer,
                target: f.id("target")?,
                stake: f.stake()?,
                seller,
                consideration: f.opt_money()?,
            }
        }
        "deal_completed" => {
            Event::DealCompleted { deal: f.id("deal")?, stake: f.opt_stake()?, consideration: f.opt_money()? }
        }
        "deal_terminated" => Event::DealTerminated { deal: f.id("deal")?, reason: f.opt_text("reason")? },
        "stake_sold" => {
            let (seller, buyer) = (f.id("seller")?, f.opt_id("buyer")?);
            distinct(f, "buyer", buyer.as_ref(), "seller", &seller)?;
            Event::StakeSold {
                seller,
                target: f.id("target")?,
                stake: f.stake()?,
                buyer,
                consideration: f.opt_money()?,
            }
        }
        "partnership_formed" => Event::PartnershipFormed { partners: f.partners()?, scope: f.opt_text("scope")? },
        "partnership_continued" => Event::PartnershipContinued { partners: f.partners()?, scope: f.opt_text("scope")? },
        "partnership_ended" => Event::PartnershipEnded {
            partners: f.partners()?,
            scope: f.opt_text("scope")?,
            reason: f.opt_text("reason")?,
        },
        "executive_appointed" => Event::ExecutiveAppointed {
            person: f.id("person")?,
            company: f.id("company")?,
            role: f.text("role")?,
            interim: f.opt_bool("interim")?.unwrap_or(false),
        },
        "executive_departed" => {
            Event::ExecutiveDeparted { person: f.id("person")?, company: f.id("company")?, role: f.opt_text("role")? }
        }
        "executive_moved" => {
            let from = f.object("from", &["company", "role"])?;
            let to = f.object("to", &["company", "role", "interim"])?;
            Event::ExecutiveMoved {
                person: f.id("person")?,
                from: RoleEnd { company: from.id("company")?, role: from.opt_text("role")? },
                to: RoleStart {
                    company: to.id("company")?,
                    role: to.text("role")?,
                    interim: to.opt_bool("interim")?.unwrap_or(false),
                },
            }
        }
        "retraction" => Event::Retraction {
            retracts: {
                let text = f.text("retracts")?;
                Uuid::parse_str(&text)
                    .map_err(|_| f.err("retracts", format!("`{}` is not a UUID", truncate(&text, 40))))?
            },
            reason: f.text("reason")?,
        },
        other => return Err(format!("unknown event type `{other}`")),
    })
}

/// Refuses `a == b` where the contract calls it malformed (`seller` = `acquirer`, `buyer` = `seller`).
fn distinct(f: &Fields<'_>, a_name: &str, a: Option<&EntityId>, b_name: &str, b: &EntityId) -> Result<(), String> {
    match a {
        Some(a) if a == b => Err(f.err(a_name, format!("`{a}` cannot be both {a_name} and {b_name}"))),
        _ => Ok(()),
    }
}

/// One value of the canonical rendering, borrowed from the record.
#[derive(Clone, Copy)]
enum Field<'a> {
    Str(&'a str),
    Id(&'a EntityId),
    /// A date, as `YYYY-MM-DD` text.
    Date(Date),
    /// A timestamp, as RFC 3339 text.
    Time(Timestamp),
    Pct(u64),
    Bool(bool),
    U64(u64),
    Money(&'a Money),
    Ids(&'a [EntityId]),
    /// A role's end of `executive_moved`: company and optional role.
    From(&'a RoleEnd),
    /// A role's start of `executive_moved`: company, role, interim.
    To(&'a RoleStart),
}

/// Calls `put` with every input field of an event, in canonical order: the
/// single description of the canonical field order, which both the JSON
/// objects of `log` and the hashed bytes are rendered from.
fn visit_input_fields(
    effective: Option<Date>,
    source: Option<&str>,
    note: Option<&str>,
    event: &Event,
    put: &mut dyn FnMut(&'static str, Field<'_>),
) {
    put("type", Field::Str(event.type_name()));
    if let Some(d) = effective {
        put("effective", Field::Date(d));
    }
    visit_event_fields(event, put);
    if let Some(s) = source {
        put("source", Field::Str(s));
    }
    if let Some(n) = note {
        put("note", Field::Str(n));
    }
}

fn visit_event_fields(event: &Event, put: &mut dyn FnMut(&'static str, Field<'_>)) {
    match event {
        Event::CompanyRegistered { company, name, jurisdiction } => {
            put("company", Field::Id(company));
            put("name", Field::Str(name));
            if let Some(j) = jurisdiction {
                put("jurisdiction", Field::Str(j));
            }
        }
        Event::CompanyRenamed { company, name } => {
            put("company", Field::Id(company));
            put("name", Field::Str(name));
        }
        Event::PersonRegistered { person, name } => {
            put("person", Field::Id(person));
            put("name", Field::Str(name));
        }
        Event::Acquisition { acquirer, target, stake, seller, consideration, deal } => {
            put("acquirer", Field::Id(acquirer));
            put("target", Field::Id(target));
            put("stake_pct", Field::Pct(stake.millionths()));
            visit_trade_extras(put, "seller", seller.as_ref(), consideration.as_ref());
            if let Some(d) = deal {
                put("deal", Field::Id(d));
            }
        }
        Event::DealAnnounced { deal, acquirer, target, stake, seller, consideration } => {
            put("deal", Field::Id(deal));
            put("acquirer", Field::Id(acquirer));
            put("target", Field::Id(target));
            put("stake_pct", Field::Pct(stake.millionths()));
            visit_trade_extras(put, "seller", seller.as_ref(), consideration.as_ref());
        }
        Event::DealCompleted { deal, stake, consideration } => {
            put("deal", Field::Id(deal));
            if let Some(s) = stake {
                put("stake_pct", Field::Pct(s.millionths()));
            }
            if let Some(c) = consideration {
                put("consideration", Field::Money(c));
            }
        }
        Event::DealTerminated { deal, reason } => {
            put("deal", Field::Id(deal));
            if let Some(r) = reason {
                put("reason", Field::Str(r));
            }
        }
        Event::StakeSold { seller, target, stake, buyer, consideration } => {
            put("seller", Field::Id(seller));
            put("target", Field::Id(target));
            put("stake_pct", Field::Pct(stake.millionths()));
            visit_trade_extras(put, "buyer", buyer.as_ref(), consideration.as_ref());
        }
        Event::PartnershipFormed { partners, scope } | Event::PartnershipContinued { partners, scope } => {
            put("partners", Field::Ids(partners));
            if let Some(s) = scope {
                put("scope", Field::Str(s));
            }
        }
        Event::PartnershipEnded { partners, scope, reason } => {
            put("partners", Field::Ids(partners));
            if let Some(s) = scope {
                put("scope", Field::Str(s));
            }
            if let Some(r) = reason {
                put("reason", Field::Str(r));
            }
        }
        Event::ExecutiveAppointed { person, company, role, interim } => {
            put("person", Field::Id(person));
            put("company", Field::Id(company));
            put("role", Field::Str(role));
            put("interim", Field::Bool(*interim));
        }
        Event::ExecutiveDeparted { person, company, role } => {
            put("person", Field::Id(person));
            put("company", Field::Id(company));
            if let Some(r) = role {
                put("role", Field::Str(r));
            }
        }
        Event::ExecutiveMoved { person, from, to } => {
            put("person", Field::Id(person));
            put("from", Field::From(from));
            put("to", Field::To(to));
        }
        Event::Retraction { retracts, reason } => {
            put("retracts", Field::Str(&retracts.to_string()));
            put("reason", Field::Str(reason));
        }
    }
}

/// The optional counterparty and price of a trade, in canonical order.
fn visit_trade_extras(
    put: &mut dyn FnMut(&'static str, Field<'_>),
    party_key: &'static str,
    party: Option<&EntityId>,
    consideration: Option<&Money>,
) {
    if let Some(p) = party {
        put(party_key, Field::Id(p));
    }
    if let Some(c) = consideration {
        put("consideration", Field::Money(c));
    }
}

impl Field<'_> {
    /// The field as a JSON value (for the objects of `log` and the HTTP API).
    fn to_value(self) -> Value {
        let object =
            |pairs: Vec<(&str, Value)>| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        match self {
            Field::Str(s) => Value::from(s),
            Field::Id(id) => Value::from(id.as_str()),
            Field::Date(d) => Value::from(d.to_string()),
            Field::Time(t) => Value::from(t.to_string()),
            Field::Pct(p) => pct_json(p),
            Field::Bool(b) => Value::from(b),
            Field::U64(n) => Value::from(n),
            Field::Money(m) => object(vec![("amount", m.amount_text().into()), ("currency", m.currency().into())]),
            Field::Ids(ids) => Value::Array(ids.iter().map(|id| Value::from(id.as_str())).collect()),
            Field::From(from) => {
                let mut pairs = vec![("company", Value::from(from.company.as_str()))];
                if let Some(r) = &from.role {
                    pairs.push(("role", r.as_str().into()));
                }
                object(pairs)
            }
            Field::To(to) => object(vec![
                ("company", to.company.as_str().into()),
                ("role", to.role.as_str().into()),
                ("interim", to.interim.into()),
            ]),
        }
    }

    /// Appends the field's compact JSON to `out`: the same bytes as
    /// `serde_json` writes for [`Field::to_value`], without building it.
    fn write(self, out: &mut Vec<u8>) {
        match self {
            Field::Str(s) => write_str(out, s),
            Field::Id(id) => write_str(out, id.as_str()),
            // Their text is digits and `-:.TZ+`: nothing to escape.
            Field::Date(d) => {
                out.push(b'"');
                d.write_text(out);
                out.push(b'"');
            }
            Field::Time(t) => {
                out.push(b'"');
                t.write_text(out);
                out.push(b'"');
            }
            Field::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            Field::U64(n) => {
                let _ = write!(out, "{n}");
            }
            Field::Ids(ids) => {
                out.push(b'[');
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(out, id.as_str());
                }
                out.push(b']');
            }
            // Numbers and the small nested objects: through serde_json itself.
            other => {
                let _ = serde_json::to_writer(&mut *out, &other.to_value());
            }
        }
    }
}

/// Writes a JSON string with serde_json's escaping (which escapes only
/// control characters, `"` and `\`).
fn write_str(out: &mut Vec<u8>, s: &str) {
    // A fold without an early exit, so that it runs on whole vectors of bytes.
    let plain = !s.bytes().fold(false, |escape, b| escape | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// The input fields of an event, in canonical order (the JSON of `log` and
/// `history` without the ledger's fields).
pub fn input_fields(
    effective: Option<Date>,
    source: Option<&str>,
    note: Option<&str>,
    event: &Event,
) -> Map<String, Value> {
    let mut m = Map::new();
    visit_input_fields(effective, source, note, event, &mut |key, field| {
        m.insert(key.to_owned(), field.to_value());
    });
    m
}

/// The record's canonical object: `seq`, `id`, `recorded_at`, then the input
/// fields. Its compact bytes are what the hash chain covers.
pub fn canonical_object(rec: &StoredEvent) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("seq".into(), rec.seq.into());
    m.insert("id".into(), rec.id.to_string().into());
    m.insert("recorded_at".into(), rec.recorded_at.to_string().into());
    m.extend(input_fields(rec.effective, rec.source.as_deref(), rec.note.as_deref(), &rec.event));
    m
}

/// The canonical bytes of a record: the compact JSON of [`canonical_object`],
/// written straight from the record (this is the hot path of `verify` and of
/// every append's hashing).
pub fn canonical_bytes(rec: &StoredEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(320);
    write_canonical(rec, &mut out);
    out
}

/// Appends the canonical bytes of a record to `out` (see [`canonical_bytes`]),
/// so that a caller rendering many records reuses one buffer.
pub fn write_canonical(rec: &StoredEvent, out: &mut Vec<u8>) {
    let mut first = true;
    let mut put = |key: &'static str, field: Field<'_>| {
        out.push(if first { b'{' } else { b',' });
        first = false;
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        field.write(out);
    };
    put("seq", Field::U64(rec.seq));
    put("id", Field::Str(rec.id.hyphenated().encode_lower(&mut Uuid::encode_buffer())));
    put("recorded_at", Field::Time(rec.recorded_at));
    visit_input_fields(rec.effective, rec.source.as_deref(), rec.note.as_deref(), &rec.event, &mut put);
    out.push(b'}');
}

/// The record as one export line: the canonical object with `hash` last, so
/// that the line without its trailing `,"hash":"…"` is exactly the hashed bytes.
pub fn export_line(rec: &StoredEvent) -> String {
    let mut m = canonical_object(rec);
    m.insert("hash".into(), hex::encode(rec.hash).into());
    serde_json::to_string(&m).unwrap_or_default()
}

/// The record as a `log` line: the export line plus `retracted_by`.
pub fn log_object(rec: &StoredEvent, retracted_by: Option<u64>) -> Map<String, Value> {
    let mut m = canonical_object(rec);
    m.insert("hash".into(), hex::encode(rec.hash).into());
    m.insert("retracted_by".into(), retracted_by.map_or(Value::Null, Value::from));
    m
}

/// The parts of an export line that the ledger assigned.
#[derive(Debug, Clone)]
pub struct Assigned {
    /// The stored seq.
    pub seq: u64,
    /// The stored id.
    pub id: Uuid,
    /// The stored recording time.
    pub recorded_at: Timestamp,
    /// The stored hash (checked by the importer).
    pub hash: [u8; 32],
}

/// Parses one line of an export back into what the ledger assigned and the draft.
///
/// # Errors
/// A message naming the missing or malformed field.
pub fn parse_export_line(value: &Value) -> Result<(Assigned, Draft), String> {
    let mut map =
        value.as_object().cloned().ok_or_else(|| format!("expected a JSON object, found {}", kind_of(value)))?;
    map.remove("retracted_by");
    let seq = map.remove("seq").and_then(|v| v.as_u64()).ok_or("missing or malformed field `seq`")?;
    let recorded_at = map
        .remove("recorded_at")
        .and_then(|v| v.as_str().map(Timestamp::parse))
        .ok_or("missing field `recorded_at`")??;
    let hash = map
        .remove("hash")
        .and_then(|v| v.as_str().and_then(|h| hex::decode(h).ok()))
        .and_then(|h| <[u8; 32]>::try_from(h).ok())
        .ok_or("missing or malformed field `hash`")?;
    let draft = parse_fields(&map)?;
    let id = draft.id.ok_or("missing field `id`")?;
    Ok((Assigned { seq, id, recorded_at, hash }, draft))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Draft, String> {
        parse_draft(&v)
    }

    #[test]
    fn parses_an_acquisition() {
        let d = parse(json!({"type":"acquisition","effective":"2025-06-12","acquirer":"meta","target":"scale-ai",
            "stake_pct":49,"consideration":{"amount":"14800000000","currency":"USD"}}))
        .expect("valid");
        assert!(matches!(d.event, Event::Acquisition { ref stake, .. } if stake.millionths() == 490_000));
    }

    #[test]
    fn refuses_what_the_contract_refuses() {
        let cases = [
            (json!({"type":"merger","effective":"2025-01-01"}), "unknown event type"),
            (json!({"type":"company_registered","effective":"2025-01-01","company":"x"}), "missing field `name`"),
            (
                json!({"type":"company_registered","effective":"2025-01-01","company":"x","name":"X","ceo":"y"}),
                "unknown field `ceo`",
            ),
            (json!({"type":"company_registered","effective":"2025-02-30","company":"x","name":"X"}), "not a real date"),
            (json!({"type":"company_registered","effective":"2025-01-01","company":"X","name":"X"}), "not a slug"),
            (
                json!({"type":"acquisition","effective":"2025-01-01","acquirer":"a","target":"b","stake_pct":0}),
                "outside",
            ),
            (
                json!({"type":"acquisition","effective":"2025-01-01","acquirer":"a","target":"b","stake_pct":"1.23456"}),
                "decimal places",
            ),
            (
                json!({"type":"acquisition","effective":"2025-01-01","acquirer":"a","target":"b","stake_pct":5,"seller":"a"}),
                "both seller and acquirer",
            ),
            (
                json!({"type":"stake_sold","effective":"2025-01-01","seller":"a","target":"b","stake_pct":5,"buyer":"a"}),
                "both buyer and seller",
            ),
            (json!({"type":"partnership_formed","effective":"2025-01-01","partners":["a","a"]}), "distinct"),
            (json!({"type":"retraction","retracts":"0197656a-0000-7000-8000-000000000001"}), "missing field `reason`"),
            (
                json!({"type":"company_renamed","effective":"2025-01-01","company":"x","name":"X","seq":3}),
                "belongs to the ledger",
            ),
            (json!({"type":"company_renamed","effective":"2025-01-01","company":"x","name":""}), "must not be empty"),
            (
                json!({"type":"acquisition","effective":"2025-01-01","acquirer":"a","target":"b","stake_pct":5,
                "consideration":{"amount":"5","currency":"usd"}}),
                "ISO 4217",
            ),
        ];
        for (input, want) in cases {
            let err = parse(input.clone()).expect_err(&input.to_string());
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn null_means_absent() {
        let d = parse(json!({"type":"executive_appointed","effective":"2025-01-01","person":"p","company":"c",
            "role":"CEO","interim":null,"source":null}))
        .expect("valid");
        assert_eq!(d.source, None);
        assert!(matches!(d.event, Event::ExecutiveAppointed { interim: false, .. }));
    }

    #[test]
    fn input_fields_round_trip() {
        let input = json!({"type":"executive_moved","effective":"2025-06-12","person":"alexandr-wang",
            "from":{"company":"scale-ai","role":"CEO"},"to":{"company":"meta","role":"Head","interim":false},"source":"memo"});
        let d = parse(input.clone()).expect("valid");
        let out = Value::Object(input_fields(d.effective, d.source.as_deref(), d.note.as_deref(), &d.event));
        assert_eq!(out, input);
        assert_eq!(parse(out).expect("valid"), d);
    }
}

#[cfg(test)]
mod canonical_tests {
    use super::*;
    use crate::testkit::{generate, GenOptions};

    /// The bytes written straight from a record are exactly the compact JSON
    /// of its canonical object, for every event type and optional field the
    /// generator produces, plus text that needs escaping.
    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut texts: Vec<String> = (0..=0x7f_u8).map(|b| format!("a{}z", char::from(b))).collect();
        texts.extend(["", "plain", "é 😀 \u{7f} \u{2028}", "\\\"", "tab\tnew\nline"].map(String::from));
        for text in texts {
            let mut out = Vec::new();
            write_str(&mut out, &text);
            assert_eq!(out, serde_json::to_vec(&text).expect("serialize"), "{text:?}");
        }
    }

    #[test]
    fn canonical_bytes_equal_the_canonical_object_serialized() {
        let opts = GenOptions { events: 3_000, seed: 11, ..GenOptions::default() };
        let mut lines = generate(&opts).expect("generate");
        lines.push(
            r#"{"type":"company_registered","effective":"2020-01-01","company":"q","name":"Quote \" back\\ \u0001 é 😀","note":"tab\tnew\nline"}"#
                .to_owned(),
        );
        let mut types = std::collections::HashSet::new();
        for (i, line) in lines.iter().enumerate() {
            let draft = parse_draft(&serde_json::from_str(line).expect("JSON")).expect("valid event");
            types.insert(draft.event.type_name());
            let recorded_at = Timestamp::from_nanos(1_700_000_000_123_456_789 + i as i64);
            let rec = StoredEvent::unhashed(draft, i as u64 + 1, recorded_at);
            let expected = serde_json::to_vec(&canonical_object(&rec)).expect("serialize");
            assert_eq!(String::from_utf8_lossy(&canonical_bytes(&rec)), String::from_utf8_lossy(&expected), "line {i}");
        }
        assert_eq!(types.len(), 15, "every event type was covered: {types:?}");
    }
}
