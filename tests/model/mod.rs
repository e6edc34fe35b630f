//! An independent reference model of the ledger's queries, written from
//! CONTRACT.md alone (§1–§3 and §6), never from `src/`.
//!
//! Brute force is the point: every query takes the events recorded up to the
//! known-at seq, drops those retracted by a retraction recorded up to it,
//! keeps those effective on or before the as-of date, sorts them by
//! `(effective, seq)` and folds the whole world from scratch. Nothing is
//! cached or indexed, so the model is easy to check by reading.
//!
//! Stakes are integer millionths (100% = 1_000_000). Look-through is exact:
//! every chain product is a fixed-point number with one base-10^6 digit per
//! link ([`Frac`]), so sums and the final half-up rounding need no
//! approximation.
//!
//! The queries assume valid input (the ledger accepted it); whether an
//! append must be accepted at all is decided separately, from §4, by
//! [`Model::verdict`] (`rules.rs`).

#![allow(dead_code)]

mod rules;
#[allow(unused_imports)] // used by model_based.rs, not by differential.rs
pub use rules::{parse_pct, Verdict};

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};

const FULL: u64 = 1_000_000;

/// One stored event.
#[derive(Debug, Clone)]
pub struct Stored {
    /// 1, 2, … in append order.
    pub seq: u64,
    /// The event's `id`, when it carried one (the model cannot know ids the
    /// ledger assigns, so only events with an id can be retracted here).
    pub id: Option<String>,
    /// `effective` ("" for a retraction, whose date does not count).
    pub effective: String,
    /// The parsed input line.
    pub event: Value,
    /// The event's effect, read once from `event` (a transcription of the
    /// table of §3).
    op: Op,
}

/// What an event does. `acquisition` and `stake_sold` are both a transfer
/// of a stake from a holder or the unattributed remainder (`None`) to a
/// holder or the remainder.
#[derive(Debug, Clone)]
enum Op {
    Register { kind: Kind, entity: String, name: String },
    Rename { company: String, name: String },
    Transfer { target: String, from: Option<String>, to: Option<String>, stake: u64 },
    Announce { deal: String, acquirer: String, target: String, seller: Option<String>, stake: u64 },
    Complete { deal: String, stake: Option<u64> },
    Terminate { deal: String },
    Formed(PKey),
    Continued(PKey),
    Ended(PKey),
    Appoint { person: String, company: String, role: String, interim: bool },
    Depart { person: String, company: String, role: Option<String> },
    Move { person: String, from: (String, Option<String>), to: (String, String, bool) },
    Retract { retracts: String },
}

/// A partnership: the unordered pair (smaller id first) and the scope.
type PKey = (String, String, Option<String>);

impl Op {
    fn read(ev: &Value) -> Op {
        let interim = |v: &Value| v.get("interim").and_then(Value::as_bool).unwrap_or(false);
        match typ(ev) {
            "company_registered" => Op::Register { kind: Kind::Company, entity: s(ev, "company"), name: s(ev, "name") },
            "person_registered" => Op::Register { kind: Kind::Person, entity: s(ev, "person"), name: s(ev, "name") },
            "company_renamed" => Op::Rename { company: s(ev, "company"), name: s(ev, "name") },
            "acquisition" => Op::Transfer {
                target: s(ev, "target"),
                from: text(ev, "seller"),
                to: Some(s(ev, "acquirer")),
                stake: pct(&ev["stake_pct"]),
            },
            "stake_sold" => Op::Transfer {
                target: s(ev, "target"),
                from: Some(s(ev, "seller")),
                to: text(ev, "buyer"),
                stake: pct(&ev["stake_pct"]),
            },
            "deal_announced" => Op::Announce {
                deal: s(ev, "deal"),
                acquirer: s(ev, "acquirer"),
                target: s(ev, "target"),
                seller: text(ev, "seller"),
                stake: pct(&ev["stake_pct"]),
            },
            "deal_completed" => {
                Op::Complete { deal: s(ev, "deal"), stake: is_given(ev, "stake_pct").then(|| pct(&ev["stake_pct"])) }
            }
            "deal_terminated" => Op::Terminate { deal: s(ev, "deal") },
            "partnership_formed" => Op::Formed(partnership_key(ev)),
            "partnership_continued" => Op::Continued(partnership_key(ev)),
            "partnership_ended" => Op::Ended(partnership_key(ev)),
            "executive_appointed" => Op::Appoint {
                person: s(ev, "person"),
                company: s(ev, "company"),
                role: s(ev, "role"),
                interim: interim(ev),
            },
            "executive_departed" => {
                Op::Depart { person: s(ev, "person"), company: s(ev, "company"), role: text(ev, "role") }
            }
            "executive_moved" => {
                let (from, to) = (&ev["from"], &ev["to"]);
                Op::Move {
                    person: s(ev, "person"),
                    from: (s(from, "company"), text(from, "role")),
                    to: (s(to, "company"), s(to, "role"), interim(to)),
                }
            }
            "retraction" => Op::Retract { retracts: s(ev, "retracts") },
            other => panic!("model: unexpected event type {other}"),
        }
    }
}

/// The reference model: the stored events, nothing else.
#[derive(Debug, Default)]
pub struct Model {
    events: Vec<Stored>,
}

impl Model {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one valid event (a JSON object on one line). An event whose id
    /// is already stored is an idempotent retry: nothing new is stored.
    pub fn append(&mut self, line: &str) {
        self.append_with_id(line, None);
    }

    /// [`Model::append`] of an event without an `id`, under the id the
    /// ledger assigned to it (so that it can be retracted later).
    pub fn append_with_id(&mut self, line: &str, assigned: Option<&str>) {
        let event: Value = serde_json::from_str(line).expect("model: event is not JSON");
        let id = text(&event, "id").or_else(|| assigned.map(str::to_owned));
        if let Some(id) = &id {
            if self.events.iter().any(|e| e.id.as_deref() == Some(id)) {
                return;
            }
        }
        let seq = self.events.len() as u64 + 1;
        let op = Op::read(&event);
        let effective = if matches!(op, Op::Retract { .. }) { String::new() } else { s(&event, "effective") };
        self.events.push(Stored { seq, id, effective, event, op });
    }

    pub fn last_seq(&self) -> u64 {
        self.events.len() as u64
    }

    pub fn events(&self) -> &[Stored] {
        &self.events
    }

    /// The §6 JSON answer of `cmd` (ownership, holdings, partnerships,
    /// executives, career) for `id`, as of `as_of`, known at seq `known_at`.
    pub fn answer(&self, cmd: &str, id: &str, as_of: &str, known_at: Option<u64>) -> Result<Value, String> {
        let k = known_at.map_or(self.last_seq(), |k| k.min(self.last_seq()));
        let visible = self.visible(k);

        // Which entities exist (at any date) as known at k, and of what kind.
        let mut registered: BTreeMap<&str, (Kind, &str)> = BTreeMap::new();
        for e in &visible {
            if let Op::Register { kind, entity, .. } = &e.op {
                registered.insert(entity, (*kind, &e.effective));
            }
        }
        let Some(&(kind, since)) = registered.get(id) else {
            return Err(format!("unknown entity {id}"));
        };
        let wanted = match cmd {
            "ownership" | "partnerships" | "executives" => Some(Kind::Company),
            "career" => Some(Kind::Person),
            "holdings" => None,
            other => return Err(format!("unknown command {other}")),
        };
        if let Some(wanted) = wanted.filter(|w| *w != kind) {
            return Err(format!("{id} is not a {wanted:?}"));
        }
        if since > as_of {
            return Err(format!("{id} exists from {since}, not yet on {as_of}"));
        }

        let mut dated: Vec<&Stored> = visible.into_iter().filter(|e| e.effective.as_str() <= as_of).collect();
        dated.sort_by(|a, b| (&a.effective, a.seq).cmp(&(&b.effective, b.seq)));
        let mut world = World::default();
        for e in dated {
            world.apply(&e.op, &e.effective);
        }

        Ok(match cmd {
            "ownership" => world.ownership(id, as_of, k),
            "holdings" => world.holdings(id, as_of, k),
            "partnerships" => world.partnerships(id, as_of, k),
            "executives" => world.executives(id, as_of, k),
            _ => world.career(id, as_of, k),
        })
    }

    /// The non-retraction events with `seq <= k` not retracted by a
    /// retraction with `seq <= k`.
    fn visible(&self, k: u64) -> Vec<&Stored> {
        let known = &self.events[..k as usize];
        let retracted: HashSet<&str> = known
            .iter()
            .filter_map(|e| match &e.op {
                Op::Retract { retracts } => Some(retracts.as_str()),
                _ => None,
            })
            .collect();
        known
            .iter()
            .filter(|e| !matches!(e.op, Op::Retract { .. }))
            .filter(|e| !e.id.as_deref().is_some_and(|id| retracted.contains(id)))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Company,
    Person,
}

struct Deal<'a> {
    acquirer: &'a str,
    target: &'a str,
    seller: Option<&'a str>,
    stake: u64,
    announced: &'a str,
}

struct Partnership<'a> {
    since: Option<&'a str>,
    last_affirmed: Option<&'a str>,
}

struct Role<'a> {
    interim: bool,
    since: &'a str,
}

struct PastRole<'a> {
    person: &'a str,
    company: &'a str,
    role: &'a str,
    from: &'a str,
    to: &'a str,
}

/// The whole world as of the end of one day (borrowing from the events).
#[derive(Default)]
struct World<'a> {
    /// Company display names.
    names: BTreeMap<&'a str, &'a str>,
    /// Person names.
    people: BTreeMap<&'a str, &'a str>,
    /// company -> holder -> (stake millionths > 0, since).
    stakes: BTreeMap<&'a str, BTreeMap<&'a str, (u64, &'a str)>>,
    /// Pending deals by deal id.
    deals: BTreeMap<&'a str, Deal<'a>>,
    /// Active partnerships.
    partnerships: BTreeMap<&'a PKey, Partnership<'a>>,
    /// Held roles by (person, company, role).
    roles: BTreeMap<(&'a str, &'a str, &'a str), Role<'a>>,
    /// Ended roles, in the order they ended.
    past: Vec<PastRole<'a>>,
}

impl<'a> World<'a> {
    fn apply(&mut self, op: &'a Op, eff: &'a str) {
        match op {
            Op::Register { kind: Kind::Company, entity, name } => {
                self.names.insert(entity, name);
            }
            Op::Register { kind: Kind::Person, entity, name } => {
                self.people.insert(entity, name);
            }
            Op::Rename { company, name } => {
                self.names.insert(company, name);
            }
            Op::Transfer { target, from, to, stake } => {
                self.transfer(target, from.as_deref(), to.as_deref(), *stake, eff);
            }
            Op::Announce { deal, acquirer, target, seller, stake } => {
                let d = Deal { acquirer, target, seller: seller.as_deref(), stake: *stake, announced: eff };
                self.deals.insert(deal, d);
            }
            Op::Complete { deal, stake } => {
                // A completion takes the parties of its announcement, and its
                // terms unless overridden.
                if let Some(d) = self.deals.remove(deal.as_str()) {
                    self.transfer(d.target, d.seller, Some(d.acquirer), stake.unwrap_or(d.stake), eff);
                }
            }
            Op::Terminate { deal } => {
                self.deals.remove(deal.as_str());
            }
            Op::Formed(key) => {
                self.partnerships.insert(key, Partnership { since: Some(eff), last_affirmed: None });
            }
            Op::Continued(key) => {
                // Reaffirms an active one, or starts one with since: null.
                self.partnerships
                    .entry(key)
                    .or_insert(Partnership { since: None, last_affirmed: None })
                    .last_affirmed = Some(eff);
            }
            Op::Ended(key) => {
                self.partnerships.remove(key);
            }
            Op::Appoint { person, company, role, interim } => self.appoint(person, company, role, *interim, eff),
            Op::Depart { person, company, role } => self.depart(person, company, role.as_deref(), eff),
            Op::Move { person, from, to } => {
                // Ends `from` first, then starts `to`.
                self.depart(person, &from.0, from.1.as_deref(), eff);
                self.appoint(person, &to.0, &to.1, to.2, eff);
            }
            Op::Retract { .. } => unreachable!("retractions are not folded"),
        }
    }

    /// `stake` of `company` passes from `from` (None: the unattributed
    /// remainder) to `to` (None: the unattributed remainder). A holder whose
    /// stake drops to zero leaves; one who comes back starts a new `since`.
    fn transfer(&mut self, company: &'a str, from: Option<&'a str>, to: Option<&'a str>, stake: u64, date: &'a str) {
        let table = self.stakes.entry(company).or_default();
        if let Some(from) = from {
            if let Some(held) = table.get_mut(from) {
                held.0 = held.0.saturating_sub(stake);
                if held.0 == 0 {
                    table.remove(from);
                }
            }
        }
        if let Some(to) = to {
            table.entry(to).or_insert((0, date)).0 += stake;
        }
    }

    /// Appointed to a role already held: only `interim` changes.
    fn appoint(&mut self, person: &'a str, company: &'a str, role: &'a str, interim: bool, date: &'a str) {
        self.roles.entry((person, company, role)).or_insert(Role { interim, since: date }).interim = interim;
    }

    /// Ends `role`, or every role of the person at the company when None.
    fn depart(&mut self, person: &'a str, company: &'a str, role: Option<&str>, date: &'a str) {
        let ending: Vec<(&'a str, &'a str, &'a str)> = self
            .roles
            .keys()
            .filter(|(p, c, r)| *p == person && *c == company && (role.is_none() || role == Some(*r)))
            .copied()
            .collect();
        for key in ending {
            let held = self.roles.remove(&key).unwrap();
            let (person, company, role) = key;
            self.past.push(PastRole { person, company, role, from: held.since, to: date });
        }
    }

    /// (holder, stake, since) by stake descending, then holder.
    fn holders_of(&self, company: &str) -> Vec<(&'a str, u64, &'a str)> {
        let mut out: Vec<(&'a str, u64, &'a str)> = self
            .stakes
            .get(company)
            .map(|t| t.iter().map(|(h, (st, since))| (*h, *st, *since)).collect())
            .unwrap_or_default();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        out
    }

    /// The holder with more than 50%.
    fn controller(&self, company: &str) -> Option<&'a str> {
        self.stakes.get(company)?.iter().find(|(_, (st, _))| *st * 2 > FULL).map(|(h, _)| *h)
    }

    fn ownership(&self, company: &str, as_of: &str, k: u64) -> Value {
        let holders = self.holders_of(company);
        let total: u64 = holders.iter().map(|h| h.1).sum();
        let controlled_by = self.controller(company);
        // Follow controlled_by upward; stop at the top or before an id repeats
        // (the queried company itself counts as seen).
        let ultimate = controlled_by.map(|first| {
            let mut seen: BTreeSet<&str> = [company, first].into();
            let mut cur = first;
            while let Some(next) = self.controller(cur) {
                if !seen.insert(next) {
                    break;
                }
                cur = next;
            }
            cur
        });
        let mut pending: Vec<(&str, &Deal)> =
            self.deals.iter().filter(|(_, d)| d.target == company).map(|(id, d)| (*id, d)).collect();
        pending.sort_by(|a, b| (a.1.announced, a.0).cmp(&(b.1.announced, b.0)));
        json!({
            "company": company,
            "name": self.names.get(company),
            "as_of": as_of,
            "known_at_seq": k,
            "holders": holders.iter().map(|(h, st, since)| json!({"holder": h, "stake_pct": pct_json(*st), "since": since})).collect::<Vec<_>>(),
            "unattributed_pct": pct_json(FULL - total),
            "controlled_by": controlled_by,
            "ultimate_controller": ultimate,
            "pending_deals": pending.iter().map(|(id, d)| json!({"deal": id, "acquirer": d.acquirer, "stake_pct": pct_json(d.stake), "announced": d.announced})).collect::<Vec<_>>(),
        })
    }

    /// (company, stake, since) held by `holder`, by stake descending, then company.
    fn direct_of(&self, holder: &str) -> Vec<(&'a str, u64, &'a str)> {
        let mut out: Vec<(&'a str, u64, &'a str)> =
            self.stakes.iter().filter_map(|(c, t)| t.get(holder).map(|(st, since)| (*c, *st, *since))).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        out
    }

    fn holdings(&self, holder: &str, as_of: &str, k: u64) -> Value {
        let direct = self.direct_of(holder);
        // Sum over every simple chain holder -> ... -> company of the product
        // of the stakes, exactly.
        let mut sums: BTreeMap<&str, Frac> = BTreeMap::new();
        let mut on_chain: BTreeSet<&str> = [holder].into();
        let mut links: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
        for (company, table) in &self.stakes {
            for (h, (stake, _)) in table {
                links.entry(h).or_default().push((company, *stake));
            }
        }
        walk(&links, holder, &Frac::one(), &mut on_chain, &mut sums);
        let mut look: Vec<(&str, u64)> =
            sums.into_iter().filter(|(_, f)| !f.is_zero()).map(|(c, f)| (c, f.round_millionths())).collect();
        look.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        json!({
            "holder": holder,
            "as_of": as_of,
            "known_at_seq": k,
            "direct": direct.iter().map(|(c, st, since)| json!({"company": c, "stake_pct": pct_json(*st), "since": since})).collect::<Vec<_>>(),
            "look_through": look.iter().map(|(c, u)| json!({"company": c, "effective_pct": pct_json(*u)})).collect::<Vec<_>>(),
        })
    }

    fn partnerships(&self, company: &str, as_of: &str, k: u64) -> Value {
        let mut rows: Vec<(&str, &Option<String>, &Partnership)> = self
            .partnerships
            .iter()
            .filter_map(|((a, b, scope), p)| {
                if a == company {
                    Some((b.as_str(), scope, p))
                } else if b == company {
                    Some((a.as_str(), scope, p))
                } else {
                    None
                }
            })
            .collect();
        // By partner, then scope with null first (Option's order).
        rows.sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
        json!({
            "company": company,
            "as_of": as_of,
            "known_at_seq": k,
            "partnerships": rows.iter().map(|(partner, scope, p)| json!({"partner": partner, "scope": scope, "since": p.since, "last_affirmed": p.last_affirmed})).collect::<Vec<_>>(),
        })
    }

    fn executives(&self, company: &str, as_of: &str, k: u64) -> Value {
        let mut rows: Vec<(&str, &str, &Role)> =
            self.roles.iter().filter(|((_, c, _), _)| *c == company).map(|((p, _, r), role)| (*r, *p, role)).collect();
        rows.sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
        json!({
            "company": company,
            "as_of": as_of,
            "known_at_seq": k,
            "executives": rows.iter().map(|(role, person, held)| json!({"person": person, "name": self.people.get(person), "role": role, "interim": held.interim, "since": held.since})).collect::<Vec<_>>(),
        })
    }

    fn career(&self, person: &str, as_of: &str, k: u64) -> Value {
        let mut current: Vec<(&str, &str, &str, bool)> = self
            .roles
            .iter()
            .filter(|((p, _, _), _)| *p == person)
            .map(|((_, c, r), held)| (held.since, *c, *r, held.interim))
            .collect();
        current.sort_by(|x, y| (x.0, x.1, x.2).cmp(&(y.0, y.1, y.2)));
        let mut past: Vec<&PastRole> = self.past.iter().filter(|p| p.person == person).collect();
        past.sort_by(|x, y| (x.to, x.company, x.role, x.from).cmp(&(y.to, y.company, y.role, y.from)));
        json!({
            "person": person,
            "name": self.people.get(person),
            "as_of": as_of,
            "known_at_seq": k,
            "current": current.iter().map(|(since, c, r, interim)| json!({"company": c, "role": r, "interim": interim, "since": since})).collect::<Vec<_>>(),
            "past": past.iter().map(|p| json!({"company": p.company, "role": p.role, "from": p.from, "to": p.to})).collect::<Vec<_>>(),
        })
    }
}

/// Adds to `sums` the product of every simple chain that extends the chain
/// ending at `node` (whose product is `product`; `on_chain` holds its ids).
fn walk<'s>(
    links: &BTreeMap<&'s str, Vec<(&'s str, u64)>>,
    node: &str,
    product: &Frac,
    on_chain: &mut BTreeSet<&'s str>,
    sums: &mut BTreeMap<&'s str, Frac>,
) {
    for &(company, stake) in links.get(node).map(Vec::as_slice).unwrap_or_default() {
        if on_chain.contains(company) {
            continue;
        }
        let p = product.times_millionths(stake);
        sums.entry(company).or_insert_with(Frac::zero).add(&p);
        on_chain.insert(company);
        walk(links, company, &p, on_chain, sums);
        on_chain.remove(company);
    }
}

/// An exact non-negative fixed-point number: `d[0]` is the integer part and
/// `d[i]` (i >= 1) the i-th base-10^6 fractional digit. A stake of `m`
/// millionths is exactly one fractional digit, so a chain of n stakes is
/// exactly n digits and no product or sum is ever rounded.
#[derive(Clone, Debug)]
struct Frac {
    d: Vec<u64>,
}

impl Frac {
    fn zero() -> Self {
        Self { d: vec![0] }
    }

    fn one() -> Self {
        Self { d: vec![1] }
    }

    fn is_zero(&self) -> bool {
        self.d.iter().all(|&x| x == 0)
    }

    /// `self * m / 10^6`: digit i moves to position i + 1.
    fn times_millionths(&self, m: u64) -> Self {
        let mut r = vec![0u64; self.d.len() + 1];
        let mut carry = 0u128;
        for i in (0..self.d.len()).rev() {
            let x = self.d[i] as u128 * m as u128 + carry;
            r[i + 1] = (x % FULL as u128) as u64;
            carry = x / FULL as u128;
        }
        r[0] = u64::try_from(carry).expect("look-through product overflow");
        Self { d: r }
    }

    fn add(&mut self, other: &Frac) {
        if other.d.len() > self.d.len() {
            self.d.resize(other.d.len(), 0);
        }
        let mut carry = 0u64;
        for i in (1..self.d.len()).rev() {
            let x = self.d[i] + other.d.get(i).copied().unwrap_or(0) + carry;
            self.d[i] = x % FULL;
            carry = x / FULL;
        }
        self.d[0] += other.d[0] + carry;
    }

    /// Rounded half up to whole millionths (4 decimals of a percentage).
    fn round_millionths(&self) -> u64 {
        let digit = |i: usize| self.d.get(i).copied().unwrap_or(0);
        self.d[0] * FULL + digit(1) + u64::from(digit(2) >= FULL / 2)
    }
}

fn typ(ev: &Value) -> &str {
    ev.get("type").and_then(Value::as_str).unwrap_or("")
}

/// An optional string field (`null` is absent).
fn text(ev: &Value, key: &str) -> Option<String> {
    ev.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A required string field.
fn s(ev: &Value, key: &str) -> String {
    text(ev, key).unwrap_or_else(|| panic!("model: missing {key} in {ev}"))
}

fn is_given(ev: &Value, key: &str) -> bool {
    ev.get(key).is_some_and(|v| !v.is_null())
}

fn partnership_key(ev: &Value) -> (String, String, Option<String>) {
    let partners = ev["partners"].as_array().expect("partners");
    let (a, b) = (partners[0].as_str().unwrap().to_owned(), partners[1].as_str().unwrap().to_owned());
    let scope = text(ev, "scope");
    if a <= b {
        (a, b, scope)
    } else {
        (b, a, scope)
    }
}

/// `stake_pct` (a JSON number or a decimal string) in millionths, exactly.
fn pct(v: &Value) -> u64 {
    let txt = match v {
        Value::String(t) => t.clone(),
        Value::Number(n) => match n.as_u64() {
            Some(u) => u.to_string(),
            // Rust's f64 Display is the shortest round-trip decimal, never
            // exponent notation.
            None => format!("{}", n.as_f64().unwrap()),
        },
        other => panic!("model: bad stake_pct {other}"),
    };
    let (int, frac) = txt.split_once('.').unwrap_or((&txt, ""));
    assert!(frac.len() <= 4, "model: stake_pct {txt} has more than 4 decimals");
    let int: u64 = int.parse().expect("stake_pct integer part");
    let frac: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<4}").parse().expect("stake_pct decimals") };
    int * 10_000 + frac
}

/// Millionths as a JSON number with at most 4 decimals, an integer when whole.
pub fn pct_json(m: u64) -> Value {
    if m.is_multiple_of(10_000) {
        json!(m / 10_000)
    } else {
        let t = format!("{}.{:04}", m / 10_000, m % 10_000);
        let t = t.trim_end_matches('0');
        json!(t.parse::<f64>().unwrap())
    }
}

/// `serde_json::Value` equality, except that numbers under `look_through`
/// (sums of products of stakes, computed in floating point by the model) are
/// compared within 1e-9.
pub fn same(a: &Value, b: &Value, loose: bool) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if loose => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-9,
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y, loose)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w, loose || k == "look_through")))
        }
        _ => a == b,
    }
}
