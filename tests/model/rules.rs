//! Contract §4 in the reference model: may this one event be appended?
//!
//! Written from CONTRACT.md §2–§4 alone, by brute force: the candidate is
//! checked field by field (rules 1 and 9), against the stored ids (rule 8)
//! and retractions (rule 7), and then the WHOLE timeline as it would be with
//! the candidate in it (every stored event plus the candidate, less every
//! retracted event) is sorted by `(effective, seq)` and folded from scratch,
//! checking every rule at every event (rules 2–6 and the second half of 7).
//! The stored history is valid (the model only stores what it accepted), so
//! any breach found is the candidate's doing, wherever it shows.
//!
//! The verdict names the rule categories with the ledger's `Rule::name()`
//! words: `malformed`, `existence`, `stakes`, `deal`, `relationship`,
//! `retraction`, `id_conflict`, `ledger_owned`.

use super::{Kind, Model, Op, Stored, World, FULL};
use chrono::NaiveDate;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What the contract says of an append of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Stored as the next seq.
    New,
    /// Its id is stored with the same content: a no-op answered with that seq.
    Retry(u64),
    /// Refused; every rule category a breach was found under (the ledger
    /// must name one of them).
    Refused(BTreeSet<&'static str>),
}

fn refused(rule: &'static str) -> Verdict {
    Verdict::Refused([rule].into())
}

/// How a field must look.
#[derive(Clone, Copy)]
enum F {
    Slug,
    /// A non-empty string.
    Text,
    /// Any string.
    Str,
    Date,
    Pct,
    Bool,
    Uuid,
    Money,
    Partners,
    From,
    To,
}

/// Fields and how each must look.
type Fields = Vec<(&'static str, F)>;

/// (required, optional) fields of each type, besides `type`, `id`, `source`, `note`.
fn schema(kind: &str) -> Option<(Fields, Fields)> {
    use F::*;
    let eff = ("effective", Date);
    Some(match kind {
        "company_registered" => (vec![eff, ("company", Slug), ("name", Text)], vec![("jurisdiction", Str)]),
        "company_renamed" => (vec![eff, ("company", Slug), ("name", Text)], vec![]),
        "person_registered" => (vec![eff, ("person", Slug), ("name", Text)], vec![]),
        "acquisition" => (
            vec![eff, ("acquirer", Slug), ("target", Slug), ("stake_pct", Pct)],
            vec![("seller", Slug), ("consideration", Money), ("deal", Slug)],
        ),
        "deal_announced" => (
            vec![eff, ("deal", Slug), ("acquirer", Slug), ("target", Slug), ("stake_pct", Pct)],
            vec![("seller", Slug), ("consideration", Money)],
        ),
        "deal_completed" => (vec![eff, ("deal", Slug)], vec![("stake_pct", Pct), ("consideration", Money)]),
        "deal_terminated" => (vec![eff, ("deal", Slug)], vec![("reason", Str)]),
        "stake_sold" => (
            vec![eff, ("seller", Slug), ("target", Slug), ("stake_pct", Pct)],
            vec![("buyer", Slug), ("consideration", Money)],
        ),
        "partnership_formed" | "partnership_continued" => (vec![eff, ("partners", Partners)], vec![("scope", Text)]),
        "partnership_ended" => (vec![eff, ("partners", Partners)], vec![("scope", Text), ("reason", Str)]),
        "executive_appointed" => {
            (vec![eff, ("person", Slug), ("company", Slug), ("role", Text)], vec![("interim", Bool)])
        }
        "executive_departed" => (vec![eff, ("person", Slug), ("company", Slug)], vec![("role", Text)]),
        "executive_moved" => (vec![eff, ("person", Slug), ("from", From), ("to", To)], vec![]),
        "retraction" => (vec![("retracts", Uuid), ("reason", Text)], vec![("effective", Date)]),
        _ => return None,
    })
}

fn is_slug(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

fn is_date(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok())
}

/// A decimal with at most 4 decimals, in ten-thousandths.
fn decimal(v: &Value) -> Option<u128> {
    let text = match v {
        Value::String(t) => t.clone(),
        Value::Number(n) => match n.as_u64() {
            Some(u) => u.to_string(),
            None => format!("{}", n.as_f64()?),
        },
        _ => return None,
    };
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 4 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (text.contains('.') && frac.is_empty()) {
        return None;
    }
    let frac: u128 = if frac.is_empty() { 0 } else { format!("{frac:0<4}").parse().ok()? };
    Some(int.parse::<u128>().ok()? * 10_000 + frac)
}

/// `stake_pct` in millionths when valid: `0 < x <= 100`, at most 4 decimals.
pub fn parse_pct(v: &Value) -> Option<u64> {
    let m = u64::try_from(decimal(v)?).ok()?;
    (m > 0 && m <= FULL).then_some(m)
}

fn field_ok(f: F, v: &Value) -> bool {
    let obj_ok = |v: &Value, req: &[(&str, F)], opt: &[(&str, F)]| {
        let Some(m) = v.as_object() else { return false };
        m.keys().all(|k| req.iter().chain(opt).any(|(n, _)| n == k))
            && req.iter().all(|(n, f)| m.get(*n).is_some_and(|x| !x.is_null() && field_ok(*f, x)))
            && opt.iter().all(|(n, f)| m.get(*n).is_none_or(|x| x.is_null() || field_ok(*f, x)))
    };
    match f {
        F::Slug => is_slug(v),
        F::Text => v.as_str().is_some_and(|s| !s.is_empty()),
        F::Str => v.is_string(),
        F::Date => is_date(v),
        F::Pct => parse_pct(v).is_some(),
        F::Bool => v.is_boolean(),
        F::Uuid => v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()),
        F::Money => {
            let currency =
                |c: &Value| c.as_str().is_some_and(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()));
            v.as_object().is_some_and(|m| {
                m.len() == 2
                    && m.get("amount").is_some_and(|a| decimal(a).is_some())
                    && m.get("currency").is_some_and(currency)
            })
        }
        F::Partners => v.as_array().is_some_and(|a| a.len() == 2 && a.iter().all(is_slug) && a[0] != a[1]),
        F::From => obj_ok(v, &[("company", F::Slug)], &[("role", F::Text)]),
        F::To => obj_ok(v, &[("company", F::Slug), ("role", F::Text)], &[("interim", F::Bool)]),
    }
}

/// Rules 1 and 9 for one JSON object: `Some(rule)` when broken.
fn shape(ev: &Map<String, Value>) -> Option<&'static str> {
    if ["seq", "recorded_at", "hash"].iter().any(|k| ev.contains_key(*k)) {
        return Some("ledger_owned");
    }
    let kind = ev.get("type").and_then(Value::as_str)?;
    let Some((req, opt)) = schema(kind) else { return Some("malformed") };
    let common = [("id", F::Uuid), ("source", F::Str), ("note", F::Str)];
    let known = |k: &str| k == "type" || req.iter().chain(&opt).chain(&common).any(|(n, _)| *n == k);
    if !ev.keys().all(|k| known(k)) {
        return Some("malformed");
    }
    let given = |n: &str| ev.get(n).filter(|v| !v.is_null());
    if !req.iter().all(|(n, f)| given(n).is_some_and(|v| field_ok(*f, v))) {
        return Some("malformed");
    }
    if !opt.iter().chain(&common).all(|(n, f)| given(n).is_none_or(|v| field_ok(*f, v))) {
        return Some("malformed");
    }
    // §3: a seller equal to the acquirer, or a buyer equal to the seller.
    let same = |a: &str, b: &str| given(a).is_some() && given(a) == given(b);
    if same("seller", "acquirer") || same("buyer", "seller") {
        return Some("malformed");
    }
    None
}

impl Model {
    /// The contract's verdict on appending `line` (one JSON object) now.
    pub fn verdict(&self, line: &str) -> Verdict {
        let Ok(Value::Object(ev)) = serde_json::from_str::<Value>(line) else { return refused("malformed") };
        if ev.get("type").and_then(Value::as_str).is_none() {
            return refused("malformed");
        }
        if let Some(rule) = shape(&ev) {
            return refused(rule);
        }
        let value = Value::Object(ev);
        let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
        // Rule 8.
        if let Some(stored) = id.as_ref().and_then(|id| self.events.iter().find(|e| e.id.as_ref() == Some(id))) {
            return if same_content(&stored.event, &value) {
                Verdict::Retry(stored.seq)
            } else {
                refused("id_conflict")
            };
        }
        let op = Op::read(&value);
        // Rule 7, the target itself.
        if let Op::Retract { retracts } = &op {
            let Some(target) = self.events.iter().find(|e| e.id.as_deref() == Some(retracts.as_str())) else {
                return refused("retraction");
            };
            if matches!(target.op, Op::Retract { .. }) {
                return refused("retraction");
            }
            if self
                .events
                .iter()
                .any(|e| matches!(&e.op, Op::Retract { retracts } if Some(retracts) == target.id.as_ref()))
            {
                return refused("retraction");
            }
        }
        // Rules 2-7 over the whole timeline with the candidate in it.
        let mut all: Vec<Stored> = self.events.clone();
        let effective = if matches!(op, Op::Retract { .. }) { String::new() } else { super::s(&value, "effective") };
        all.push(Stored { seq: self.last_seq() + 1, id, effective, event: value, op });
        let found = breaches(&all);
        if found.is_empty() {
            Verdict::New
        } else {
            Verdict::Refused(found)
        }
    }
}

/// Same content (the ids being equal): equal after dropping `null` fields
/// (absent and `null` are the same), the id (the model keeps the input line,
/// without the id the ledger assigned) and, for a retraction, its ignored
/// `effective`.
fn same_content(a: &Value, b: &Value) -> bool {
    let norm = |v: &Value| -> Value {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.retain(|k, x| !x.is_null() && k != "id");
        if m.get("type").and_then(Value::as_str) == Some("retraction") {
            m.remove("effective");
        }
        Value::Object(m)
    };
    norm(a) == norm(b)
}

/// Every rule category broken anywhere in the live timeline of `all`.
fn breaches(all: &[Stored]) -> BTreeSet<&'static str> {
    let retracted: BTreeSet<&str> = all
        .iter()
        .filter_map(|e| match &e.op {
            Op::Retract { retracts } => Some(retracts.as_str()),
            _ => None,
        })
        .collect();
    let mut live: Vec<&Stored> = all
        .iter()
        .filter(|e| !matches!(e.op, Op::Retract { .. }))
        .filter(|e| !e.id.as_deref().is_some_and(|id| retracted.contains(id)))
        .collect();
    live.sort_by(|a, b| (&a.effective, a.seq).cmp(&(&b.effective, b.seq)));

    let mut found = BTreeSet::new();
    // Rule 2: registrations, whatever their order.
    let mut regs: BTreeMap<&str, Vec<(Kind, &str)>> = BTreeMap::new();
    for e in &live {
        if let Op::Register { kind, entity, .. } = &e.op {
            regs.entry(entity).or_default().push((*kind, &e.effective));
        }
    }
    if regs.values().any(|r| r.len() > 1) {
        found.insert("existence");
    }
    let mut world = World::default();
    let mut announced: BTreeSet<&str> = BTreeSet::new();
    for e in live {
        let eff = e.effective.as_str();
        // Rule 2: every entity named exists on the date, of the right kind.
        for (entity, want) in named(&e.op) {
            let ok = regs
                .get(entity)
                .and_then(|r| r.first())
                .is_some_and(|(kind, since)| *since <= eff && want.is_none_or(|w| w == *kind));
            if !ok {
                found.insert("existence");
            }
        }
        if let Some(rule) = breach(&world, &announced, &e.op) {
            found.insert(rule);
        }
        if let Op::Announce { deal, .. } = &e.op {
            announced.insert(deal);
        }
        world.apply(&e.op, eff);
    }
    found
}

/// The entities an event names, with the kind each must be (None: either).
fn named(op: &Op) -> Vec<(&str, Option<Kind>)> {
    fn co(s: &str) -> (&str, Option<Kind>) {
        (s, Some(Kind::Company))
    }
    fn any(s: &Option<String>) -> Option<(&str, Option<Kind>)> {
        s.as_deref().map(|s| (s, None))
    }
    match op {
        Op::Register { .. } | Op::Retract { .. } | Op::Complete { .. } | Op::Terminate { .. } => vec![],
        Op::Rename { company, .. } => vec![co(company)],
        Op::Transfer { target, from, to, .. } => [Some(co(target)), any(from), any(to)].into_iter().flatten().collect(),
        Op::Announce { acquirer, target, seller, .. } => {
            [Some((acquirer.as_str(), None)), Some(co(target)), any(seller)].into_iter().flatten().collect()
        }
        Op::Formed((a, b, _)) | Op::Continued((a, b, _)) | Op::Ended((a, b, _)) => vec![co(a), co(b)],
        Op::Appoint { person, company, .. } | Op::Depart { person, company, .. } => {
            vec![(person.as_str(), Some(Kind::Person)), co(company)]
        }
        Op::Move { person, from, to } => vec![(person.as_str(), Some(Kind::Person)), co(&from.0), co(&to.0)],
    }
}

/// Rules 3-5 for one event against the world just before it.
fn breach(world: &World<'_>, announced: &BTreeSet<&str>, op: &Op) -> Option<&'static str> {
    // Rule 3: a transfer of `stake` of `target` from `from` to `to`.
    let transfer = |target: &str, from: Option<&str>, to: Option<&str>, stake: u64| {
        let table = world.stakes.get(target);
        let held = |h: &str| table.and_then(|t| t.get(h)).map_or(0, |x| x.0);
        let total: u64 = table.map_or(0, |t| t.values().map(|x| x.0).sum());
        let short = match from {
            Some(seller) => held(seller) < stake,
            None => total + stake > FULL,
        };
        (short || to == Some(target)).then_some("stakes")
    };
    let holds = |person: &str, company: &str, role: Option<&str>| {
        world.roles.keys().any(|(p, c, r)| *p == person && *c == company && role.is_none_or(|role| role == *r))
    };
    match op {
        Op::Transfer { target, from, to, stake } => transfer(target, from.as_deref(), to.as_deref(), *stake),
        Op::Announce { deal, .. } => announced.contains(deal.as_str()).then_some("deal"),
        Op::Complete { deal, stake } => match world.deals.get(deal.as_str()) {
            None => Some("deal"),
            Some(d) => transfer(d.target, d.seller, Some(d.acquirer), stake.unwrap_or(d.stake)),
        },
        Op::Terminate { deal } => (!world.deals.contains_key(deal.as_str())).then_some("deal"),
        Op::Formed(key) => world.partnerships.contains_key(key).then_some("relationship"),
        Op::Ended(key) => (!world.partnerships.contains_key(key)).then_some("relationship"),
        Op::Depart { person, company, role } => (!holds(person, company, role.as_deref())).then_some("relationship"),
        Op::Move { person, from, .. } => (!holds(person, &from.0, from.1.as_deref())).then_some("relationship"),
        _ => None,
    }
}
