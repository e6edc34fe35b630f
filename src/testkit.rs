//! Test kit: a deterministic generator of VALID dealledger event streams.
//!
//! Why it exists: tests and benchmarks need large, realistic streams of events
//! (JSON Lines, contract section 3) that, appended in order (seq = line
//! number), break no rule of contract section 4, late events and retractions
//! included. This is the Rust port of `shared/bench/gen_events.py`, with the
//! same logic, mix and options (not the same bytes), so that the project
//! stands alone.
//!
//! How: the generator keeps its own model of every timeline the ledger checks
//! (each company's cap table, each partnership, each person's roles at a
//! company, each pending deal) and only emits an event that is valid at its
//! own date and leaves every later event valid.
//!
//! What it must never do: emit an event the ledger should refuse; use floats
//! in stake arithmetic (stakes are integer millionths); depend on anything but
//! its options (no clock, no environment, no files, no OS randomness: the same
//! options give the same lines); read `../shared` or any other file at run
//! time.

use serde_json::{Map, Value};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::hash::Hash;

/// 100% in millionths.
const MILLION: i64 = 1_000_000;
/// 1% in millionths.
const PCT: i64 = 10_000;
/// Chance that an acquirer or buyer is a company (else a person).
const HOLDER_SHARE: f64 = 0.5;
/// The same, for the wholly owned and majority stakes that build control chains.
const CONTROL_SHARE: f64 = 0.85;

const FIRMS: &[&str] = &[
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Globex",
    "Initech",
    "Umbrella",
    "Tyrell",
    "Wayland",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Aperture",
    "Oscorp",
    "Stark",
    "Wonka",
    "Acme",
    "Dunder",
    "Pied Piper",
    "Gringotts",
    "Monarch",
    "Nakatomi",
    "Virtucon",
    "Zorg",
];
const FORMS: &[&str] = &[
    "Holdings",
    "Capital",
    "Group",
    "Industries",
    "Partners",
    "Ventures",
    "Systems",
    "Labs",
    "Energy",
    "Logistics",
    "Media",
    "Bio",
];
const SUFFIXES: &[&str] = &["Inc.", "plc", "AG", "SA", "GmbH", "Ltd", "S.p.A.", "N.V.", "LLC", "K.K."];
const FIRST: &[&str] = &[
    "Amelia", "Johannes", "Margaux", "Kenji", "Olusegun", "Ingrid", "Rafael", "Siobhan", "Dmitri", "Priya", "Mateo",
    "Chiara", "Wei", "Fatima", "Lars", "Aiko", "Tomas", "Nadia", "Kwame", "Elena",
];
const LAST: &[&str] = &[
    "Okonkwo",
    "Lindqvist",
    "Fontaine",
    "Takahashi",
    "Hernandez",
    "Kowalski",
    "Brennan",
    "Achterberg",
    "Moreau",
    "Venkataraman",
    "Castellanos",
    "Rossi",
    "Zhang",
    "Haddad",
    "Berg",
    "Sato",
    "Novak",
];
const ROLES: &[&str] = &[
    "CEO",
    "CFO",
    "COO",
    "CTO",
    "General Counsel",
    "Chair",
    "Chief AI Officer",
    "Non-Executive Director",
    "Head of M&A",
];
const SCOPES: &[Option<&str>] = &[
    None,
    None,
    None,
    Some("cloud"),
    Some("research"),
    Some("distribution"),
    Some("supply-chain"),
    Some("ai-models"),
    Some("payments"),
];
const CURRENCIES: &[&str] = &["USD", "USD", "USD", "EUR", "EUR", "GBP", "CHF", "JPY"];
const JURISDICTIONS: &[&str] = &["US-DE", "US-CA", "GB", "DE", "FR", "CH", "NL", "IE", "SG", "JP", "KY", "LU"];
const TERMINATION_REASONS: &[&str] = &[
    "regulatory objection",
    "financing fell through",
    "mutual agreement",
    "shareholder vote failed",
    "superior offer",
];
const END_REASONS: &[&str] = &["contract expired", "strategic review", "merged into broader agreement"];
const RETRACT_REASONS: &[&str] = &["entered in error", "duplicate filing", "source withdrawn", "wrong counterparty"];

// ------------------------------------------------------------------ dates

/// A date as days since 1970-01-01.
type Day = i64;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
const fn days_from_civil(y: i64, m: i64, d: i64) -> Day {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The ISO text `YYYY-MM-DD` of a day (inverse of [`days_from_civil`]).
fn iso_date(z: Day) -> String {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

const REG_START: Day = days_from_civil(1990, 1, 1);
const REG_END: Day = days_from_civil(2015, 12, 31);
const MAIN_START: Day = days_from_civil(2000, 1, 1);
const MAIN_END: Day = days_from_civil(2025, 12, 31);

// ------------------------------------------------------------------ random numbers

/// xoshiro256** seeded by splitmix64: small, fast and the same on every
/// platform. Public so that tests and benchmarks draw reproducible choices
/// from the same generator as the histories.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut splitmix = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self { s: [splitmix(), splitmix(), splitmix(), splitmix()] }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A float in [0, 1) with 53 random bits.
    pub fn random(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// An unbiased integer in [0, n) (Lemire's method); 0 when n is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// An integer in [lo, hi], both included (`lo` when `hi < lo`).
    fn randint(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi.abs_diff(lo) + 1) as i64
    }

    /// An index in [0, len).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// An integer in [lo, hi], both included (`lo` when `hi < lo`).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// True with a chance of `percent` in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, uniformly.
    ///
    /// # Panics
    /// When `items` is empty (a caller's mistake, as with slice indexing).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    fn choice<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.index(items.len()))
    }

    /// Exponentially distributed with rate `lambd` (mean 1 / lambd), as Python's.
    fn expovariate(&mut self, lambd: f64) -> f64 {
        -(1.0 - self.random()).ln() / lambd
    }

    /// 128 random bits as a version 4 UUID, 8-4-4-4-12 lowercase hex.
    fn uuid4(&mut self) -> String {
        let hi = (self.next_u64() & !0xF000) | 0x4000;
        let lo = (self.next_u64() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }

    /// `k` distinct integers of [lo, hi) (Floyd's algorithm), `k <= hi - lo`.
    fn sample(&mut self, lo: usize, hi: usize, k: usize) -> Vec<usize> {
        let n = hi.saturating_sub(lo);
        let mut chosen = HashSet::new();
        let mut out = Vec::with_capacity(k.min(n));
        for j in n.saturating_sub(k)..n {
            let t = self.index(j + 1);
            let pick = if chosen.contains(&t) { j } else { t };
            chosen.insert(pick);
            out.push(lo + pick);
        }
        out
    }

    /// A name drawn from weighted kinds.
    fn weighted<K: Copy>(&mut self, kinds: &[(K, u32)]) -> Option<K> {
        let total: u32 = kinds.iter().map(|&(_, w)| w).sum();
        let mut r = self.random() * f64::from(total);
        for &(kind, weight) in kinds {
            if r < f64::from(weight) {
                return Some(kind);
            }
            r -= f64::from(weight);
        }
        kinds.last().map(|&(kind, _)| kind)
    }
}

// ------------------------------------------------------------------ options

/// Options of the generator (defaults as gen_events.py: events 100_000, seed 42,
/// companies = events/20, people = events/40, late_pct 5.0, retract_pct 1.0,
/// cycles = max(3, companies/1000)).
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Total number of events (lines), registrations included; at least 10.
    pub events: usize,
    /// Seed of the generator: the same options and seed give the same lines.
    pub seed: u64,
    /// Number of companies (default `max(2, events / 20)`).
    pub companies: Option<usize>,
    /// Number of people (default `max(1, events / 40)`).
    pub people: Option<usize>,
    /// Share (%) of events whose effective date is earlier than the previous
    /// event's, in [0, 50].
    pub late_pct: f64,
    /// Share (%) of events that are retractions, in [0, 20].
    pub retract_pct: f64,
    /// Cross-holdings that close an ownership cycle (default
    /// `max(3, companies / 1000)`).
    pub cycles: Option<usize>,
}

impl Default for GenOptions {
    fn default() -> Self {
        Self { events: 100_000, seed: 42, companies: None, people: None, late_pct: 5.0, retract_pct: 1.0, cycles: None }
    }
}

/// Options with every default filled in.
struct Plan {
    events: usize,
    seed: u64,
    companies: usize,
    people: usize,
    late_pct: f64,
    retract_pct: f64,
    cycles: usize,
}

impl GenOptions {
    /// Checks the same constraints as the python's argument checks: at least
    /// 10 events, at least 2 companies and 1 person, companies + people at
    /// most half of the events, `late_pct` in [0, 50], `retract_pct` in [0, 20].
    ///
    /// # Errors
    /// A message naming the option and the constraint it breaks.
    pub fn validate(&self) -> Result<(), String> {
        self.plan().map(|_| ())
    }

    fn plan(&self) -> Result<Plan, String> {
        let n = self.events;
        if n < 10 {
            return Err(format!("events must be at least 10 (got {n})"));
        }
        let companies = self.companies.unwrap_or((n / 20).max(2));
        let people = self.people.unwrap_or((n / 40).max(1));
        if companies < 2 || people < 1 {
            return Err(format!("need at least 2 companies and 1 person (got {companies} companies, {people} people)"));
        }
        if companies + people > n / 2 {
            return Err(format!(
                "companies + people ({}) must be at most half of events ({n}): registrations leave room for the rest",
                companies + people
            ));
        }
        if !(0.0..=50.0).contains(&self.late_pct) {
            return Err(format!("late_pct must be in [0, 50] (got {})", self.late_pct));
        }
        if !(0.0..=20.0).contains(&self.retract_pct) {
            return Err(format!("retract_pct must be in [0, 20] (got {})", self.retract_pct));
        }
        Ok(Plan {
            events: n,
            seed: self.seed,
            companies,
            people,
            late_pct: self.late_pct,
            retract_pct: self.retract_pct,
            cycles: self.cycles.unwrap_or((companies / 1000).max(3)),
        })
    }
}

/// Summary figures (counts per type, late events, cycles made).
#[derive(Debug, Clone, Default)]
pub struct GenStats {
    /// Number of events of each `type`.
    pub by_type: BTreeMap<String, usize>,
    /// Events whose `effective` is earlier than the previous dated event's.
    pub late_events: usize,
    /// Cross-holdings made that close an ownership cycle.
    pub cycles_made: usize,
}

/// Generates the stream, calling `sink` with each JSON line (no trailing
/// newline), in append order.
///
/// # Errors
/// The message of [`GenOptions::validate`] when the options are invalid;
/// nothing is generated then.
pub fn generate_with(opts: &GenOptions, mut sink: impl FnMut(&str)) -> Result<GenStats, String> {
    let plan = opts.plan()?;
    let mut gen = Generator::new(&plan);
    gen.run(&plan, &mut sink);
    Ok(gen.stats())
}

/// Convenience: the whole stream as a Vec of lines.
///
/// # Errors
/// As [`generate_with`].
pub fn generate(opts: &GenOptions) -> Result<Vec<String>, String> {
    let mut lines = Vec::with_capacity(opts.events);
    generate_with(opts, |line| lines.push(line.to_owned()))?;
    Ok(lines)
}

// ------------------------------------------------------------------ small containers

/// Entities registered so far, in date order, so "registered by d" is a prefix.
#[derive(Default)]
struct Registry {
    items: Vec<usize>,
    dates: Vec<Day>,
}

impl Registry {
    fn push(&mut self, e: usize, d: Day) {
        self.items.push(e);
        self.dates.push(d);
    }

    /// How many are registered by `d` (all when `d` is None).
    fn count(&self, d: Option<Day>) -> usize {
        d.map_or(self.items.len(), |d| self.dates.partition_point(|&x| x <= d))
    }

    fn pick(&self, rng: &mut Rng, d: Option<Day>) -> Option<usize> {
        rng.choice(&self.items[..self.count(d)]).copied()
    }
}

/// A set with O(1) insert, remove and uniform pick (swap-remove).
struct IndexedSet<T> {
    items: Vec<T>,
    pos: HashMap<T, usize>,
}

impl<T: Copy + Eq + Hash> IndexedSet<T> {
    fn new() -> Self {
        Self { items: Vec::new(), pos: HashMap::new() }
    }

    fn contains(&self, x: &T) -> bool {
        self.pos.contains_key(x)
    }

    fn insert(&mut self, x: T) {
        if !self.pos.contains_key(&x) {
            self.pos.insert(x, self.items.len());
            self.items.push(x);
        }
    }

    fn remove(&mut self, x: &T) {
        if let Some(i) = self.pos.remove(x) {
            self.items.swap_remove(i);
            if let Some(moved) = self.items.get(i) {
                self.pos.insert(*moved, i);
            }
        }
    }

    fn pick(&self, rng: &mut Rng) -> Option<T> {
        rng.choice(&self.items).copied()
    }
}

/// The fields of one event after `type`, in output order.
struct Body {
    kind: &'static str,
    fields: Map<String, Value>,
}

impl Body {
    fn new(kind: &'static str) -> Self {
        Self { kind, fields: Map::new() }
    }

    fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.put(key, value);
        self
    }

    fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.fields.insert(key.to_owned(), value.into());
    }
}

/// A holder's change of stake in one company, in millionths.
type Delta = (usize, i64);
/// A partnership: its two companies (smaller first) and its scope.
type PKey = (usize, usize, Option<&'static str>);
/// A person at a company.
type RKey = (usize, usize);

/// One cap-table change, kept in (effective, seq) fold order.
struct CapEntry {
    eff: Day,
    seq: u64,
    deltas: Vec<Delta>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PKind {
    Formed,
    Continued,
    Ended,
}

/// One partnership event: (effective, seq, kind), kept in fold order.
type PEntry = (Day, u64, PKind);

/// The terms of an announced deal.
struct Pending {
    slug: String,
    announced: Day,
    acquirer: usize,
    target: usize,
    stake: i64,
    seller: Option<usize>,
}

/// An event that may be retracted later, if its removal breaks no rule then.
enum Cand {
    Rename { id: String },
    Continued { seq: u64, id: String, key: PKey },
    Appointed { seq: u64, id: String, key: RKey, role: usize },
    Stake { seq: u64, id: String, company: usize },
}

#[derive(Clone, Copy)]
enum Normal {
    Acquisition,
    DealAnnounced,
    StakeSold,
    PartnershipFormed,
    PartnershipContinued,
    PartnershipEnded,
    ExecutiveAppointed,
    ExecutiveDeparted,
    ExecutiveMoved,
    CompanyRenamed,
}

const NORMAL_KINDS: &[(Normal, u32)] = &[
    (Normal::Acquisition, 22),
    (Normal::DealAnnounced, 6),
    (Normal::StakeSold, 11),
    (Normal::PartnershipFormed, 7),
    (Normal::PartnershipContinued, 8),
    (Normal::PartnershipEnded, 4),
    (Normal::ExecutiveAppointed, 12),
    (Normal::ExecutiveDeparted, 5),
    (Normal::ExecutiveMoved, 5),
    (Normal::CompanyRenamed, 3),
];

#[derive(Clone, Copy)]
enum Late {
    Acquisition,
    StakeSold,
    Renamed,
    Continued,
    Appointed,
    DealClose,
}

const LATE_KINDS: &[(Late, u32)] = &[
    (Late::Acquisition, 40),
    (Late::StakeSold, 12),
    (Late::Renamed, 12),
    (Late::Continued, 12),
    (Late::Appointed, 14),
    (Late::DealClose, 10),
];

/// The stake text of the contract: whole percent, or up to 4 decimals.
fn pct_text(m: i64) -> String {
    let (whole, frac) = (m / PCT, m % PCT);
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:04}").trim_end_matches('0').to_owned()
    }
}

/// The deltas of moving `x` from `from` (None: the unattributed remainder) to `to`.
fn transfer(from: Option<usize>, to: Option<usize>, x: i64) -> Vec<Delta> {
    from.map(|f| (f, -x)).into_iter().chain(to.map(|t| (t, x))).collect()
}

/// A holder with a positive stake, other than `exclude`.
fn pick_holder_key(rng: &mut Rng, hold: &BTreeMap<usize, i64>, exclude: Option<usize>) -> Option<usize> {
    let keys: Vec<usize> = hold.iter().filter(|&(&h, &v)| v > 0 && Some(h) != exclude).map(|(&h, _)| h).collect();
    rng.choice(&keys).copied()
}

/// Strict fold of a partnership: None when invalid, else whether it is active
/// at the end (or at the end of day `upto`).
fn pship_fold(entries: &[PEntry], upto: Option<Day>) -> Option<bool> {
    let mut active = false;
    for &(eff, _, kind) in entries {
        if upto.is_some_and(|u| eff > u) {
            break;
        }
        match kind {
            PKind::Formed if active => return None,
            PKind::Ended if !active => return None,
            PKind::Formed | PKind::Continued => active = true,
            PKind::Ended => active = false,
        }
    }
    Some(active)
}

/// Whether a cap table folded in order keeps every rule: no self-holding, no
/// negative holding, a total of at most 100%.
fn cap_valid(company: usize, entries: &[CapEntry]) -> bool {
    let mut hold: HashMap<usize, i64> = HashMap::new();
    let mut total = 0;
    for entry in entries {
        for &(h, x) in &entry.deltas {
            let v = hold.entry(h).or_insert(0);
            *v += x;
            if h == company || *v < 0 {
                return false;
            }
            total += x;
        }
        if total > MILLION {
            return false;
        }
    }
    true
}

// ------------------------------------------------------------------ the generator

/// Where the driver is in the stream, and what it still owes.
struct Schedule {
    regs: Vec<usize>,
    main_dates: Vec<Day>,
    cycle_at: Vec<usize>,
    p_late: f64,
    p_retract: f64,
    ri: usize,
    mi: usize,
    ci: usize,
    late_owed: usize,
    retract_owed: usize,
    last_eff: Option<Day>,
}

struct Generator {
    rng: Rng,
    companies: usize,
    iso: Vec<String>,
    seq: u64,
    cur_id: String,
    // entities: 0..C-1 companies, C..C+P-1 persons
    slug: Vec<String>,
    name: Vec<String>,
    tier: Vec<u8>,
    reg_date: Vec<Day>,
    reg_c: Registry,
    by_tier: [Registry; 4],
    reg_p: Registry,
    // cap tables: entries in fold order; end state
    cap_entries: Vec<Vec<CapEntry>>,
    cap_hold: Vec<BTreeMap<usize, i64>>,
    cap_total: Vec<i64>,
    // deals
    deal_counter: u64,
    pending: HashMap<u64, Pending>,
    pending_keys: IndexedSet<u64>,
    due: BinaryHeap<Reverse<(Day, u64)>>,
    // partnerships
    pship_entries: HashMap<PKey, Vec<PEntry>>,
    pship_all: Vec<PKey>,
    active: IndexedSet<PKey>,
    // roles
    role_cur: HashMap<RKey, BTreeSet<usize>>,
    role_entries: HashMap<RKey, Vec<(Day, u64)>>,
    person_cos: HashMap<usize, BTreeSet<usize>>,
    with_roles: IndexedSet<usize>,
    // retraction candidates
    cands: Vec<Cand>,
    by_type: BTreeMap<&'static str, usize>,
    late_events: usize,
    cycles_made: usize,
    cycle_owed: usize,
}

impl Generator {
    fn new(plan: &Plan) -> Self {
        let mut gen = Self {
            rng: Rng::new(plan.seed),
            companies: plan.companies,
            iso: (REG_START..=MAIN_END).map(iso_date).collect(),
            seq: 0,
            cur_id: String::new(),
            slug: Vec::new(),
            name: Vec::new(),
            tier: Vec::new(),
            reg_date: Vec::new(),
            reg_c: Registry::default(),
            by_tier: Default::default(),
            reg_p: Registry::default(),
            cap_entries: (0..plan.companies).map(|_| Vec::new()).collect(),
            cap_hold: vec![BTreeMap::new(); plan.companies],
            cap_total: vec![0; plan.companies],
            deal_counter: 0,
            pending: HashMap::new(),
            pending_keys: IndexedSet::new(),
            due: BinaryHeap::new(),
            pship_entries: HashMap::new(),
            pship_all: Vec::new(),
            active: IndexedSet::new(),
            role_cur: HashMap::new(),
            role_entries: HashMap::new(),
            person_cos: HashMap::new(),
            with_roles: IndexedSet::new(),
            cands: Vec::new(),
            by_type: BTreeMap::new(),
            late_events: 0,
            cycles_made: 0,
            cycle_owed: 0,
        };
        gen.make_entities(plan.companies, plan.people);
        gen
    }

    fn stats(&self) -> GenStats {
        GenStats {
            by_type: self.by_type.iter().map(|(&k, &v)| (k.to_owned(), v)).collect(),
            late_events: self.late_events,
            cycles_made: self.cycles_made,
        }
    }

    // -------------------------------------------------------------- small helpers

    fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        self.rng.choice(items).copied().unwrap_or_default()
    }

    fn iso(&self, d: Day) -> &str {
        &self.iso[(d - REG_START) as usize]
    }

    fn make_entities(&mut self, companies: usize, people: usize) {
        for c in 0..companies {
            let firm = self.pick_str(FIRMS);
            let form = self.pick_str(FORMS);
            let suffix = self.pick_str(SUFFIXES);
            let slug = format!("{}-{}-{c}", firm.to_lowercase().replace(' ', "-"), form.to_lowercase());
            self.slug.push(slug);
            self.name.push(format!("{firm} {form} {suffix}"));
            let r = self.rng.random();
            let tier = if c == 0 || r < 0.05 {
                0
            } else if r < 0.20 {
                1
            } else if r < 0.50 {
                2
            } else {
                3
            };
            self.tier.push(tier);
            self.push_reg_date(c);
        }
        for p in 0..people {
            let first = self.pick_str(FIRST);
            let last = self.pick_str(LAST);
            self.slug.push(format!("{}-{}-{p}", first.to_lowercase(), last.to_lowercase()));
            self.name.push(format!("{first} {last}"));
            self.push_reg_date(p);
        }
    }

    /// The first of each kind exists from the earliest date, so the first
    /// event is a company's registration and every later event has one.
    fn push_reg_date(&mut self, nth_of_kind: usize) {
        let d = if nth_of_kind == 0 { REG_START } else { self.rng.randint(REG_START, REG_END) };
        self.reg_date.push(d);
    }

    /// An acquirer or buyer for a stake in `target`: a person, or a company of
    /// a lower tier (so holdings form chains), registered by `d`.
    fn pick_holder_for(&mut self, target: usize, d: Option<Day>, company_share: f64) -> Option<usize> {
        let t = usize::from(self.tier[target]);
        if t == 0 || self.rng.random() >= company_share {
            return self.reg_p.pick(&mut self.rng, d);
        }
        let sizes: Vec<usize> = self.by_tier[..t].iter().map(|r| r.count(d)).collect();
        let total: usize = sizes.iter().sum();
        if total == 0 {
            return self.reg_p.pick(&mut self.rng, d);
        }
        let mut r = self.rng.index(total);
        for (tier, size) in self.by_tier.iter().zip(sizes) {
            if r < size {
                return tier.items.get(r).copied();
            }
            r -= size;
        }
        None
    }

    /// A stake in millionths in [lo, hi] (1 <= lo <= hi), mostly round numbers.
    fn stake_between(&mut self, lo: i64, hi: i64) -> i64 {
        let r = self.rng.random();
        let unit = if r < 0.72 {
            PCT
        } else if r < 0.87 {
            1000
        } else {
            1
        };
        let (a, b) = ((lo + unit - 1) / unit, hi / unit);
        if a <= b {
            self.rng.randint(a, b) * unit
        } else {
            self.rng.randint(lo, hi)
        }
    }

    /// All of a holding `h` with chance `whole`, else a part of it.
    fn part_of(&mut self, h: i64, whole: f64) -> i64 {
        if self.rng.random() < whole {
            h
        } else {
            self.stake_between(PCT.min(h), h)
        }
    }

    /// `stake_pct` as JSON: a number with at most 4 decimals, ~3% as a string.
    fn stake_json(&mut self, m: i64) -> Value {
        if self.rng.random() < 0.03 {
            Value::String(pct_text(m))
        } else if m % PCT == 0 {
            Value::from(m / PCT)
        } else {
            // m / 10^4 correctly rounded: prints back as the exact decimal
            Value::from(m as f64 / PCT as f64)
        }
    }

    fn money(&mut self) -> Value {
        let exp = self.rng.randint(2, 6) as u32;
        let amount = self.rng.randint(1, 99_999) * 10_i64.pow(exp);
        let r = self.rng.random();
        let value = if r < 0.08 {
            Value::from(amount)
        } else if r < 0.16 {
            let frac = self.rng.randint(1, 9999);
            Value::String(format!("{amount}.{frac:04}").trim_end_matches('0').to_owned())
        } else {
            Value::String(amount.to_string())
        };
        let mut money = Map::new();
        money.insert("amount".to_owned(), value);
        money.insert("currency".to_owned(), self.pick_str(CURRENCIES).into());
        Value::Object(money)
    }

    fn new_name(&mut self, c: usize) -> String {
        let form = self.pick_str(FORMS);
        let suffix = self.pick_str(SUFFIXES);
        let base = self.name[c].split(' ').next().unwrap_or_default();
        format!("{base} {form} {suffix}")
    }

    fn maybe_consideration(&mut self, body: &mut Body, chance: f64) {
        if self.rng.random() < chance {
            let money = self.money();
            body.put("consideration", money);
        }
    }

    // -------------------------------------------------------------- cap tables

    fn cap_apply(&mut self, c: usize, deltas: &[Delta], sign: i64) {
        let hold = &mut self.cap_hold[c];
        for &(h, x) in deltas {
            let v = hold.get(&h).copied().unwrap_or(0) + sign * x;
            if v == 0 {
                hold.remove(&h);
            } else {
                hold.insert(h, v);
            }
            self.cap_total[c] += sign * x;
        }
    }

    /// Adds a change at its (effective, seq) place: the end for an event at
    /// "today", earlier for a late one.
    fn cap_add(&mut self, c: usize, eff: Day, deltas: Vec<Delta>) {
        self.cap_apply(c, &deltas, 1);
        let entries = &mut self.cap_entries[c];
        let at = entries.partition_point(|e| (e.eff, e.seq) <= (eff, self.seq));
        let seq = self.seq;
        entries.insert(at, CapEntry { eff, seq, deltas });
    }

    /// Folds c's cap table to the end of day `d` (where an event appended now
    /// at `d` goes), then on to the end. Returns the min holding over d..end
    /// of each holder present at `d`, and the min unattributed remainder.
    fn cap_profile(&self, c: usize, d: Day) -> (BTreeMap<usize, i64>, i64) {
        let entries = &self.cap_entries[c];
        let split = entries.partition_point(|e| e.eff <= d);
        let mut hold: HashMap<usize, i64> = HashMap::new();
        let mut total = 0;
        for &(h, x) in entries[..split].iter().flat_map(|e| &e.deltas) {
            *hold.entry(h).or_insert(0) += x;
            total += x;
        }
        let mut min_h: BTreeMap<usize, i64> = hold.iter().filter(|&(_, &v)| v > 0).map(|(&h, &v)| (h, v)).collect();
        let mut min_rem = MILLION - total;
        for entry in &entries[split..] {
            for &(h, x) in &entry.deltas {
                let v = hold.entry(h).or_insert(0);
                *v += x;
                total += x;
                if let Some(m) = min_h.get_mut(&h) {
                    *m = (*m).min(*v);
                }
            }
            min_rem = min_rem.min(MILLION - total);
        }
        (min_h, min_rem)
    }

    // -------------------------------------------------------------- partnerships and roles

    fn pship_add(&mut self, key: PKey, eff: Day, kind: PKind) {
        let seq = self.seq;
        let entries = self.pship_entries.entry(key).or_insert_with(|| {
            self.pship_all.push(key);
            Vec::new()
        });
        let at = entries.partition_point(|&(e, s, _)| (e, s) <= (eff, seq));
        entries.insert(at, (eff, seq, kind));
    }

    fn set_active(&mut self, key: PKey, active: bool) {
        if active {
            self.active.insert(key);
        } else {
            self.active.remove(&key);
        }
    }

    fn pair_key(&mut self) -> Option<PKey> {
        let a = self.reg_c.pick(&mut self.rng, None)?;
        let b = self.reg_c.pick(&mut self.rng, None)?;
        let scope = self.rng.choice(SCOPES).copied().flatten();
        (a != b).then_some((a.min(b), a.max(b), scope))
    }

    fn roles_held(&self, key: RKey) -> Vec<usize> {
        self.role_cur.get(&key).map(|roles| roles.iter().copied().collect()).unwrap_or_default()
    }

    fn role_add(&mut self, key: RKey, role: usize) {
        self.role_cur.entry(key).or_default().insert(role);
        self.person_cos.entry(key.0).or_default().insert(key.1);
        self.with_roles.insert(key.0);
    }

    /// Ends `role` (all roles when None) of a person at a company.
    fn role_remove(&mut self, key: RKey, role: Option<usize>) {
        let Some(cur) = self.role_cur.get_mut(&key) else {
            return;
        };
        match role {
            Some(r) => {
                cur.remove(&r);
            }
            None => cur.clear(),
        }
        if cur.is_empty() {
            let (p, c) = key;
            let cos = self.person_cos.entry(p).or_default();
            cos.remove(&c);
            if cos.is_empty() {
                self.with_roles.remove(&p);
            }
        }
    }

    /// Records an event of the person at the company: always the last one of
    /// its key in fold order.
    fn role_touch(&mut self, key: RKey, eff: Day) {
        let seq = self.seq;
        self.role_entries.entry(key).or_default().push((eff, seq));
    }

    // -------------------------------------------------------------- registrations

    fn registration(&mut self, e: usize) -> Body {
        let d = self.reg_date[e];
        if e >= self.companies {
            self.reg_p.push(e, d);
            return Body::new("person_registered")
                .with("person", self.slug[e].as_str())
                .with("name", self.name[e].as_str());
        }
        let tier = usize::from(self.tier[e]);
        self.reg_c.push(e, d);
        self.by_tier[tier].push(e, d);
        let mut body =
            Body::new("company_registered").with("company", self.slug[e].as_str()).with("name", self.name[e].as_str());
        if self.rng.random() < 0.7 {
            body.put("jurisdiction", self.pick_str(JURISDICTIONS));
        }
        body
    }

    // -------------------------------------------------------------- events at "today" (the end of every timeline)

    fn acquisition(&mut self, today: Day) -> Option<Body> {
        let c = self.reg_c.pick(&mut self.rng, None)?;
        let rem = MILLION - self.cap_total[c];
        let r = self.rng.random();
        let (a, seller, stake) = if rem == MILLION && r < 0.12 {
            // wholly owned subsidiaries: control chains
            (self.pick_holder_for(c, None, CONTROL_SHARE), None, MILLION)
        } else if r < 0.35 && !self.cap_hold[c].is_empty() {
            let a = self.pick_holder_for(c, None, HOLDER_SHARE);
            let seller = pick_holder_key(&mut self.rng, &self.cap_hold[c], a)?;
            let h = self.cap_hold[c].get(&seller).copied()?;
            (a, Some(seller), self.part_of(h, 0.35))
        } else if rem < PCT {
            return None;
        } else if rem > 510_000 && self.rng.random() < 0.08 {
            let a = self.pick_holder_for(c, None, CONTROL_SHARE);
            (a, None, self.stake_between(510_000, rem.min(800_000)))
        } else {
            let a = self.pick_holder_for(c, None, HOLDER_SHARE);
            (a, None, self.stake_between(PCT, rem.min(490_000)))
        };
        let a = a.filter(|&a| a != c)?;
        Some(self.emit_acquisition(c, a, seller, stake, today))
    }

    fn emit_acquisition(&mut self, c: usize, a: usize, seller: Option<usize>, stake: i64, eff: Day) -> Body {
        self.cap_add(c, eff, transfer(seller, Some(a), stake));
        let stake_pct = self.stake_json(stake);
        let mut body = Body::new("acquisition")
            .with("acquirer", self.slug[a].as_str())
            .with("target", self.slug[c].as_str())
            .with("stake_pct", stake_pct);
        if let Some(s) = seller {
            body.put("seller", self.slug[s].as_str());
        }
        self.maybe_consideration(&mut body, 0.5);
        self.push_stake_cand(c);
        body
    }

    fn push_stake_cand(&mut self, company: usize) {
        self.cands.push(Cand::Stake { seq: self.seq, id: self.cur_id.clone(), company });
    }

    /// A company buys a small stake in one of its own (company) holders: a cycle.
    fn cross_holding(&mut self, today: Day) -> Option<Body> {
        for _ in 0..30 {
            let Some(c) = self.reg_c.pick(&mut self.rng, None) else {
                continue;
            };
            let tier = self.tier[c];
            if tier == 0 {
                continue;
            }
            let ups: Vec<usize> =
                self.cap_hold[c].keys().copied().filter(|&h| h < self.companies && self.tier[h] < tier).collect();
            let Some(&a) = self.rng.choice(&ups) else {
                continue;
            };
            let rem = MILLION - self.cap_total[a];
            if rem >= PCT {
                let stake = self.stake_between(PCT, rem.min(5 * PCT));
                return Some(self.emit_acquisition(a, c, None, stake, today));
            }
            if let Some(seller) = pick_holder_key(&mut self.rng, &self.cap_hold[a], Some(c)) {
                let h = self.cap_hold[a].get(&seller).copied().unwrap_or(0);
                let stake = h.min(self.stake_between(PCT / 10, 3 * PCT));
                return Some(self.emit_acquisition(a, c, Some(seller), stake, today));
            }
        }
        None
    }

    fn stake_sold(&mut self, today: Day) -> Option<Body> {
        for _ in 0..4 {
            let Some(c) = self.reg_c.pick(&mut self.rng, None) else {
                continue;
            };
            if !self.cap_hold[c].is_empty() {
                let available = self.cap_hold[c].clone();
                return self.emit_sale(c, &available, today);
            }
        }
        None
    }

    /// A sale of part of what a holder holds in `available` (its holding at
    /// `eff`, or its minimum from `eff` on for a late sale), to a buyer or to
    /// the unattributed remainder.
    fn emit_sale(&mut self, c: usize, available: &BTreeMap<usize, i64>, eff: Day) -> Option<Body> {
        let s = pick_holder_key(&mut self.rng, available, None)?;
        let h = available.get(&s).copied()?;
        let stake = self.part_of(h, 0.3);
        let buyer = if self.rng.random() < 0.4 {
            // registered by `eff`: at "today" that is everyone registered so far
            self.pick_holder_for(c, Some(eff), HOLDER_SHARE).filter(|&b| b != s && b != c)
        } else {
            None
        };
        self.cap_add(c, eff, transfer(Some(s), buyer, stake));
        let stake_pct = self.stake_json(stake);
        let mut body = Body::new("stake_sold")
            .with("seller", self.slug[s].as_str())
            .with("target", self.slug[c].as_str())
            .with("stake_pct", stake_pct);
        if let Some(b) = buyer {
            body.put("buyer", self.slug[b].as_str());
        }
        self.maybe_consideration(&mut body, 0.4);
        self.push_stake_cand(c);
        Some(body)
    }

    fn deal_announced(&mut self, today: Day) -> Option<Body> {
        let c = self.reg_c.pick(&mut self.rng, None)?;
        let a = self.pick_holder_for(c, None, HOLDER_SHARE).filter(|&a| a != c)?;
        let seller = if !self.cap_hold[c].is_empty() && self.rng.random() < 0.3 {
            pick_holder_key(&mut self.rng, &self.cap_hold[c], Some(a))
        } else {
            None
        };
        let stake = match seller.and_then(|s| self.cap_hold[c].get(&s).copied()) {
            Some(h) => self.part_of(h, 0.4),
            None => {
                let rem = MILLION - self.cap_total[c];
                self.stake_between(PCT, PCT.max(rem.min(600_000)))
            }
        };
        self.deal_counter += 1;
        let k = self.deal_counter;
        let slug = format!("deal-{k:07}");
        let due = today + self.rng.randint(20, 420);
        self.due.push(Reverse((due, k)));
        self.pending_keys.insert(k);
        let stake_pct = self.stake_json(stake);
        let mut body = Body::new("deal_announced")
            .with("deal", slug.as_str())
            .with("acquirer", self.slug[a].as_str())
            .with("target", self.slug[c].as_str())
            .with("stake_pct", stake_pct);
        if let Some(s) = seller {
            body.put("seller", self.slug[s].as_str());
        }
        self.maybe_consideration(&mut body, 0.6);
        let terms = Pending { slug, announced: today, acquirer: a, target: c, stake, seller };
        self.pending.insert(k, terms);
        Some(body)
    }

    /// Closes pending deal `k` at `eff`: completed with what the cap table
    /// allows from `eff` on (sometimes a smaller stake), else terminated.
    fn deal_close(&mut self, k: u64, eff: Day) -> Option<Body> {
        let deal = self.pending.remove(&k)?;
        self.pending_keys.remove(&k);
        let granted = self.deal_grant(&deal, eff);
        if granted == 0 {
            let mut body = Body::new("deal_terminated").with("deal", deal.slug.as_str());
            if self.rng.random() < 0.7 {
                body.put("reason", self.pick_str(TERMINATION_REASONS));
            }
            return Some(body);
        }
        let deltas = transfer(deal.seller, Some(deal.acquirer), granted);
        self.cap_add(deal.target, eff, deltas);
        let mut body = Body::new("deal_completed").with("deal", deal.slug.as_str());
        if granted != deal.stake {
            body.put("stake_pct", self.stake_json(granted));
        }
        self.maybe_consideration(&mut body, 0.3);
        Some(body)
    }

    /// The stake a completion at `eff` gets: 0 (terminate) one time in five,
    /// or when the seller's holding (or the remainder) from `eff` on is too small.
    fn deal_grant(&mut self, deal: &Pending, eff: Day) -> i64 {
        if self.rng.random() < 0.2 {
            return 0;
        }
        let (min_h, min_rem) = self.cap_profile(deal.target, eff);
        let avail = deal.seller.map_or(min_rem, |s| min_h.get(&s).copied().unwrap_or(0));
        if avail >= deal.stake {
            if deal.stake > PCT && self.rng.random() < 0.1 {
                return self.stake_between(PCT, deal.stake);
            }
            deal.stake
        } else if avail >= PCT {
            self.stake_between(PCT, avail)
        } else {
            0
        }
    }

    fn partnership_formed(&mut self, today: Day) -> Option<Body> {
        let key = self.pair_key()?;
        if self.active.contains(&key) {
            return None;
        }
        self.pship_add(key, today, PKind::Formed);
        self.set_active(key, true);
        Some(self.pship_event("partnership_formed", key))
    }

    fn partnership_continued(&mut self, today: Day) -> Option<Body> {
        let reuse = !self.active.items.is_empty() && self.rng.random() < 0.85;
        let key = if reuse { self.active.pick(&mut self.rng)? } else { self.pair_key()? };
        self.pship_add(key, today, PKind::Continued);
        self.set_active(key, true);
        Some(self.continued_event(key))
    }

    fn continued_event(&mut self, key: PKey) -> Body {
        self.cands.push(Cand::Continued { seq: self.seq, id: self.cur_id.clone(), key });
        self.pship_event("partnership_continued", key)
    }

    fn partnership_ended(&mut self, today: Day) -> Option<Body> {
        let key = self.active.pick(&mut self.rng)?;
        self.pship_add(key, today, PKind::Ended);
        self.set_active(key, false);
        let mut body = self.pship_event("partnership_ended", key);
        if self.rng.random() < 0.5 {
            body.put("reason", self.pick_str(END_REASONS));
        }
        Some(body)
    }

    fn pship_event(&mut self, kind: &'static str, (a, b, scope): PKey) -> Body {
        let mut pair = vec![self.slug[a].clone(), self.slug[b].clone()];
        if self.rng.random() < 0.5 {
            pair.reverse();
        }
        let mut body = Body::new(kind).with("partners", pair);
        if let Some(s) = scope {
            body.put("scope", s);
        } else if self.rng.random() < 0.2 {
            body.put("scope", Value::Null);
        }
        body
    }

    /// Appoints a person registered by `d` to a company registered by `d`, in
    /// a role not held; at a late `d` only when nothing of that person at that
    /// company comes after `d`.
    fn appoint(&mut self, d: Day, late: bool) -> Option<Body> {
        let when = late.then_some(d);
        let p = self.reg_p.pick(&mut self.rng, when)?;
        let c = self.reg_c.pick(&mut self.rng, when)?;
        let key = (p, c);
        let last = self.role_entries.get(&key).and_then(|e| e.last());
        if late && last.is_some_and(|&(eff, _)| eff > d) {
            return None;
        }
        let role = self.rng.index(ROLES.len());
        if self.role_cur.get(&key).is_some_and(|r| r.contains(&role)) {
            return None;
        }
        self.role_add(key, role);
        self.role_touch(key, d);
        self.cands.push(Cand::Appointed { seq: self.seq, id: self.cur_id.clone(), key, role });
        let mut body = Body::new("executive_appointed")
            .with("person", self.slug[p].as_str())
            .with("company", self.slug[c].as_str())
            .with("role", ROLES[role]);
        let r = self.rng.random();
        if r < 0.25 {
            body.put("interim", r < 0.15);
        }
        Some(body)
    }

    /// A person with a role now, and one of the companies where they hold one.
    fn pick_role_holder(&mut self) -> Option<RKey> {
        let p = self.with_roles.pick(&mut self.rng)?;
        let cos: Vec<usize> = self.person_cos.get(&p)?.iter().copied().collect();
        let c = *self.rng.choice(&cos)?;
        Some((p, c))
    }

    fn executive_departed(&mut self, today: Day) -> Option<Body> {
        let key = self.pick_role_holder()?;
        let mut body = Body::new("executive_departed")
            .with("person", self.slug[key.0].as_str())
            .with("company", self.slug[key.1].as_str());
        if self.rng.random() < 0.75 {
            let role = *self.rng.choice(&self.roles_held(key))?;
            self.role_remove(key, Some(role));
            body.put("role", ROLES[role]);
        } else {
            self.role_remove(key, None);
        }
        self.role_touch(key, today);
        Some(body)
    }

    fn executive_moved(&mut self, today: Day) -> Option<Body> {
        let (p, c) = self.pick_role_holder()?;
        let y = if self.rng.random() < 0.1 { c } else { self.reg_c.pick(&mut self.rng, None)? };
        let held_from = self.roles_held((p, c));
        let from_role = if self.rng.random() < 0.7 { Some(*self.rng.choice(&held_from)?) } else { None };
        let to_role = self.rng.index(ROLES.len());
        // a role held at `y` now is refused (still held after the move) or is
        // one the move ends (never move a person to the role the move ends)
        if self.role_cur.get(&(p, y)).is_some_and(|r| r.contains(&to_role)) {
            return None;
        }
        self.role_remove((p, c), from_role);
        self.role_add((p, y), to_role);
        self.role_touch((p, c), today);
        if y != c {
            self.role_touch((p, y), today);
        }
        let mut from = Map::new();
        from.insert("company".to_owned(), self.slug[c].as_str().into());
        if let Some(r) = from_role {
            from.insert("role".to_owned(), ROLES[r].into());
        }
        let mut to = Map::new();
        to.insert("company".to_owned(), self.slug[y].as_str().into());
        to.insert("role".to_owned(), ROLES[to_role].into());
        if self.rng.random() < 0.1 {
            to.insert("interim".to_owned(), true.into());
        }
        Some(Body::new("executive_moved").with("person", self.slug[p].as_str()).with("from", from).with("to", to))
    }

    /// A rename of a company registered by `d` (None: any so far).
    fn company_renamed(&mut self, d: Option<Day>) -> Option<Body> {
        let c = self.reg_c.pick(&mut self.rng, d)?;
        self.cands.push(Cand::Rename { id: self.cur_id.clone() });
        let name = self.new_name(c);
        Some(Body::new("company_renamed").with("company", self.slug[c].as_str()).with("name", name))
    }

    fn normal_kind(&mut self, kind: Normal, today: Day) -> Option<Body> {
        match kind {
            Normal::Acquisition => self.acquisition(today),
            Normal::DealAnnounced => self.deal_announced(today),
            Normal::StakeSold => self.stake_sold(today),
            Normal::PartnershipFormed => self.partnership_formed(today),
            Normal::PartnershipContinued => self.partnership_continued(today),
            Normal::PartnershipEnded => self.partnership_ended(today),
            Normal::ExecutiveAppointed => self.appoint(today, false),
            Normal::ExecutiveDeparted => self.executive_departed(today),
            Normal::ExecutiveMoved => self.executive_moved(today),
            Normal::CompanyRenamed => self.company_renamed(None),
        }
    }

    // -------------------------------------------------------------- late events (effective d < previous event's)

    fn late_acquisition(&mut self, d: Day) -> Option<Body> {
        let c = self.reg_c.pick(&mut self.rng, Some(d))?;
        let a = self.pick_holder_for(c, Some(d), HOLDER_SHARE).filter(|&a| a != c)?;
        let (min_h, min_rem) = self.cap_profile(c, d);
        if min_rem >= 1 && self.rng.random() < 0.8 {
            // no larger than the unattributed remainder at every later point
            let stake = self.stake_between(PCT.min(min_rem), min_rem.min(200_000));
            return Some(self.emit_acquisition(c, a, None, stake, d));
        }
        let s = pick_holder_key(&mut self.rng, &min_h, Some(a))?;
        let v = min_h.get(&s).copied()?;
        let stake = self.part_of(v, 0.3);
        Some(self.emit_acquisition(c, a, Some(s), stake, d))
    }

    fn late_stake_sold(&mut self, d: Day) -> Option<Body> {
        let c = self.reg_c.pick(&mut self.rng, Some(d))?;
        if self.cap_entries[c].first().is_none_or(|e| e.eff > d) {
            return None;
        }
        let (min_h, _) = self.cap_profile(c, d);
        self.emit_sale(c, &min_h, d)
    }

    /// Affirms a partnership active at `d`: changes no state at any date.
    fn late_continued(&mut self, d: Day) -> Option<Body> {
        for _ in 0..4 {
            let key = *self.rng.choice(&self.pship_all)?;
            let entries = self.pship_entries.get(&key)?;
            if entries.first().is_none_or(|e| e.0 > d) {
                continue;
            }
            if pship_fold(entries, Some(d)) == Some(true) {
                self.pship_add(key, d, PKind::Continued);
                return Some(self.continued_event(key));
            }
        }
        None
    }

    fn late_deal_close(&mut self, d: Day) -> Option<Body> {
        let k = self.pending_keys.pick(&mut self.rng)?;
        if self.pending.get(&k)?.announced > d {
            return None;
        }
        self.deal_close(k, d)
    }

    fn late_kind(&mut self, kind: Late, d: Day) -> Option<Body> {
        match kind {
            Late::Acquisition => self.late_acquisition(d),
            Late::StakeSold => self.late_stake_sold(d),
            Late::Renamed => self.company_renamed(Some(d)),
            Late::Continued => self.late_continued(d),
            Late::Appointed => self.appoint(d, true),
            Late::DealClose => self.late_deal_close(d),
        }
    }

    /// A late event, effective some days (exponential, mean 150) before
    /// `last_eff`, with its date.
    fn late_event(&mut self, last_eff: Day) -> Option<(Body, Day)> {
        let hi = last_eff - 1;
        if hi < MAIN_START {
            return None;
        }
        for _ in 0..6 {
            let lag = (self.rng.expovariate(1.0 / 150.0) as i64).min(5 * 365);
            let d = MAIN_START.max(hi - lag);
            let kind = self.rng.weighted(LATE_KINDS)?;
            if let Some(body) = self.late_kind(kind, d) {
                return Some((body, d));
            }
        }
        None
    }

    // -------------------------------------------------------------- retractions

    fn retraction(&mut self) -> Option<Body> {
        for _ in 0..10 {
            if self.cands.is_empty() {
                return None;
            }
            let i = self.rng.index(self.cands.len());
            let cand = self.cands.swap_remove(i);
            if let Some(id) = self.try_retract(cand) {
                let reason = self.pick_str(RETRACT_REASONS);
                return Some(Body::new("retraction").with("retracts", id).with("reason", reason));
            }
        }
        None
    }

    /// Removes the candidate from the model when its removal breaks no rule;
    /// returns its id then.
    fn try_retract(&mut self, cand: Cand) -> Option<String> {
        match cand {
            Cand::Rename { id } => Some(id),
            Cand::Continued { seq, id, key } => {
                let entries = self.pship_entries.get_mut(&key)?;
                let kept: Vec<PEntry> = entries.iter().copied().filter(|e| e.1 != seq).collect();
                let active = pship_fold(&kept, None)?;
                *entries = kept;
                self.set_active(key, active);
                Some(id)
            }
            Cand::Appointed { seq, id, key, role } => {
                let entries = self.role_entries.get_mut(&key)?;
                // later events of this person at this company may rely on it
                if entries.last()?.1 != seq {
                    return None;
                }
                entries.pop();
                self.role_remove(key, Some(role));
                Some(id)
            }
            Cand::Stake { seq, id, company } => {
                let entries = &mut self.cap_entries[company];
                let at = entries.iter().position(|e| e.seq == seq)?;
                let removed = entries.remove(at);
                if !cap_valid(company, entries) {
                    entries.insert(at, removed);
                    return None;
                }
                self.cap_apply(company, &removed.deltas, -1);
                Some(id)
            }
        }
    }

    // -------------------------------------------------------------- driver

    fn schedule(&mut self, plan: &Plan) -> Schedule {
        let mut regs: Vec<usize> = (0..plan.companies + plan.people).collect();
        regs.sort_by_key(|&e| (self.reg_date[e], e));
        let main_n = plan.events - regs.len();
        let mut main_dates: Vec<Day> = (0..main_n).map(|_| self.rng.randint(MAIN_START, MAIN_END)).collect();
        main_dates.sort_unstable();
        let k = plan.cycles.min(main_n * 3 / 4);
        let mut cycle_at = self.rng.sample(main_n / 4, main_n, k);
        cycle_at.sort_unstable();
        let scale = plan.events as f64 / main_n.max(1) as f64;
        Schedule {
            regs,
            main_dates,
            cycle_at,
            p_late: plan.late_pct / 100.0 * scale,
            p_retract: plan.retract_pct / 100.0 * scale,
            ri: 0,
            mi: 0,
            ci: 0,
            late_owed: 0,
            retract_owed: 0,
            last_eff: None,
        }
    }

    fn run(&mut self, plan: &Plan, sink: &mut dyn FnMut(&str)) {
        let mut sched = self.schedule(plan);
        for _ in 0..plan.events {
            self.seq += 1;
            self.cur_id = self.rng.uuid4();
            let reg = sched
                .regs
                .get(sched.ri)
                .copied()
                .filter(|&e| sched.main_dates.get(sched.mi).is_none_or(|&d| self.reg_date[e] <= d));
            let (body, eff) = match reg {
                Some(e) => {
                    sched.ri += 1;
                    (self.registration(e), Some(self.reg_date[e]))
                }
                None => self.main_event(&mut sched),
            };
            let line = self.line(body, eff, &mut sched.last_eff);
            sink(&line);
        }
    }

    /// The next event of the main period: a retraction or a late event when
    /// one is owed and possible, else a normal event at the next date.
    fn main_event(&mut self, sched: &mut Schedule) -> (Body, Option<Day>) {
        let today = *sched.main_dates.get(sched.mi).expect("registrations and main events add up to the event count");
        while sched.cycle_at.get(sched.ci).is_some_and(|&at| at <= sched.mi) {
            self.cycle_owed += 1;
            sched.ci += 1;
        }
        sched.mi += 1;
        let r = self.rng.random();
        if r < sched.p_retract {
            sched.retract_owed += 1;
        } else if r < sched.p_retract + sched.p_late {
            sched.late_owed += 1;
        }
        if sched.retract_owed > 0 && self.seq > 1 {
            if let Some(body) = self.retraction() {
                sched.retract_owed -= 1;
                return (body, None);
            }
        }
        if sched.late_owed > 0 {
            if let Some((body, d)) = sched.last_eff.and_then(|l| self.late_event(l)) {
                sched.late_owed -= 1;
                return (body, Some(d));
            }
        }
        (self.normal_event(today), Some(today))
    }

    fn normal_event(&mut self, today: Day) -> Body {
        if self.cycle_owed > 0 {
            if let Some(body) = self.cross_holding(today) {
                self.cycle_owed -= 1;
                self.cycles_made += 1;
                return body;
            }
        }
        while let Some(&Reverse((_, k))) = self.due.peek() {
            if self.pending.contains_key(&k) {
                break;
            }
            self.due.pop();
        }
        if let Some(&Reverse((when, k))) = self.due.peek() {
            if when <= today && self.rng.random() < 0.7 {
                self.due.pop();
                if let Some(body) = self.deal_close(k, today) {
                    return body;
                }
            }
        }
        for _ in 0..12 {
            let kind = self.rng.weighted(NORMAL_KINDS).unwrap_or(Normal::CompanyRenamed);
            if let Some(body) = self.normal_kind(kind, today) {
                return body;
            }
        }
        self.company_renamed(None).expect("company 0 is registered on the earliest date, before every other event")
    }

    /// The JSON line of an event: id, type, effective, the body, source or note.
    fn line(&mut self, body: Body, eff: Option<Day>, last_eff: &mut Option<Day>) -> String {
        let mut ev = Map::new();
        ev.insert("id".to_owned(), self.cur_id.as_str().into());
        ev.insert("type".to_owned(), body.kind.into());
        if let Some(e) = eff {
            ev.insert("effective".to_owned(), self.iso(e).into());
            if last_eff.is_some_and(|l| e < l) {
                self.late_events += 1;
            }
            *last_eff = Some(e);
        }
        ev.extend(body.fields);
        let r = self.rng.random();
        if r < 0.3 {
            let year = eff.map_or("r", |e| &self.iso(e)[..4]);
            let source = format!("https://filings.example.org/{year}/{}", self.seq);
            ev.insert("source".to_owned(), source.into());
        } else if r < 0.33 {
            ev.insert("note".to_owned(), "compiled from press release".into());
        }
        *self.by_type.entry(body.kind).or_insert(0) += 1;
        Value::Object(ev).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(events: usize, seed: u64) -> GenOptions {
        GenOptions { events, seed, ..GenOptions::default() }
    }

    fn objects(lines: &[String]) -> Vec<Map<String, Value>> {
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| match serde_json::from_str(line) {
                Ok(Value::Object(ev)) => ev,
                other => panic!("line {}: not a JSON object: {other:?}", i + 1),
            })
            .collect()
    }

    fn text<'a>(ev: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
        ev.get(key).and_then(Value::as_str)
    }

    /// A stake as exact millionths: a number or string, 0 < x <= 100, at most
    /// 4 decimals; None otherwise.
    fn millionths(v: &Value) -> Option<i64> {
        let t = match v {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => return None,
        };
        let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !(frac.is_empty() || digits(frac) && frac.len() <= 4) {
            return None;
        }
        let frac_m: i64 = format!("{frac:0<4}").parse().ok()?;
        let m = whole.parse::<i64>().ok()?.checked_mul(PCT)? + frac_m;
        (m > 0 && m <= MILLION).then_some(m)
    }

    // ---------------------------------------------------------- an independent checker

    /// One change on a timeline, folded in (effective, seq, sub) order.
    #[derive(Clone)]
    enum Op {
        Stake(Vec<(String, i64)>),
        Pship(PKind),
        Appoint(String),
        Depart(Option<String>),
        Announce,
        Close,
    }

    struct Entry {
        order: (String, usize, u8),
        id: String,
        op: Op,
    }

    struct Terms {
        acquirer: String,
        target: String,
        seller: Option<String>,
        stake: i64,
    }

    /// Replays the stream as the ledger checks it: after each append, every
    /// timeline the event touches (or whose event it retracts) is refolded in
    /// (effective, seq) order without the retracted events, and must keep the
    /// rules of contract section 4.
    #[derive(Default)]
    struct Checker {
        entities: HashMap<String, (bool, String)>,
        line_of: HashMap<String, usize>,
        keys_of: HashMap<String, Vec<String>>,
        retracted: HashSet<String>,
        timelines: HashMap<String, Vec<Entry>>,
        deals: HashMap<String, Terms>,
    }

    impl Checker {
        fn check(lines: &[String]) {
            let mut checker = Checker::default();
            for (i, ev) in objects(lines).iter().enumerate() {
                checker.append(i + 1, ev);
            }
        }

        fn append(&mut self, seq: usize, ev: &Map<String, Value>) {
            let id = text(ev, "id").expect("id").to_owned();
            let kind = text(ev, "type").expect("type");
            assert!(self.line_of.insert(id.clone(), seq).is_none(), "line {seq}: duplicate id");
            if kind == "retraction" {
                return self.retract(seq, ev);
            }
            let eff = text(ev, "effective").expect("effective").to_owned();
            self.check_refs(seq, ev, &eff);
            let ops = self.ops(seq, kind, ev);
            let mut keys = Vec::new();
            for (sub, (key, op)) in ops.into_iter().enumerate() {
                let entry = Entry { order: (eff.clone(), seq, sub as u8), id: id.clone(), op };
                let timeline = self.timelines.entry(key.clone()).or_default();
                let at = timeline.partition_point(|e| e.order <= entry.order);
                timeline.insert(at, entry);
                keys.push(key);
            }
            self.refold(seq, &keys);
            self.keys_of.insert(id, keys);
        }

        fn retract(&mut self, seq: usize, ev: &Map<String, Value>) {
            let target = text(ev, "retracts").expect("retracts");
            assert!(text(ev, "reason").is_some(), "line {seq}: retraction without reason");
            assert!(self.line_of[target] < seq, "line {seq}: retracts a later event");
            assert!(self.retracted.insert(target.to_owned()), "line {seq}: retracted twice");
            let keys = self
                .keys_of
                .get(target)
                .unwrap_or_else(|| panic!("line {seq}: retracts a registration or retraction"))
                .clone();
            self.refold(seq, &keys);
        }

        /// Every entity named exists (with the right kind) on the event's date.
        fn check_refs(&mut self, seq: usize, ev: &Map<String, Value>, eff: &str) {
            for (field, company) in [("company", true), ("person", false)] {
                if ev.get("type").and_then(Value::as_str) == Some(&format!("{field}_registered")) {
                    let slug = text(ev, field).expect("slug").to_owned();
                    let old = self.entities.insert(slug, (company, eff.to_owned()));
                    assert!(old.is_none(), "line {seq}: registered twice");
                    return;
                }
            }
            let mut named: Vec<(&str, Option<bool>)> = Vec::new();
            for (field, company) in [
                ("company", Some(true)),
                ("target", Some(true)),
                ("person", Some(false)),
                ("acquirer", None),
                ("seller", None),
                ("buyer", None),
            ] {
                if let Some(s) = text(ev, field) {
                    named.push((s, company));
                }
            }
            for side in ["from", "to"] {
                if let Some(s) = ev.get(side).and_then(|o| o.get("company")).and_then(Value::as_str) {
                    named.push((s, Some(true)));
                }
            }
            for p in ev.get("partners").and_then(Value::as_array).into_iter().flatten() {
                named.push((p.as_str().expect("partner"), Some(true)));
            }
            for (slug, company) in named {
                let (is_company, since) =
                    self.entities.get(slug).unwrap_or_else(|| panic!("line {seq}: {slug} never registered"));
                assert!(since.as_str() <= eff, "line {seq}: {slug} used before it exists");
                assert!(company.is_none_or(|c| c == *is_company), "line {seq}: {slug} wrong kind");
            }
        }

        fn stake(seq: usize, ev: &Map<String, Value>) -> i64 {
            millionths(&ev["stake_pct"]).unwrap_or_else(|| panic!("line {seq}: bad stake_pct"))
        }

        /// The timelines an event changes, with its change on each.
        fn ops(&mut self, seq: usize, kind: &str, ev: &Map<String, Value>) -> Vec<(String, Op)> {
            let s = |k: &str| text(ev, k).map(str::to_owned);
            let transfer = |from: Option<String>, to: Option<String>, x: i64| {
                let deltas = from.map(|f| (f, -x)).into_iter().chain(to.map(|t| (t, x)));
                Op::Stake(deltas.collect())
            };
            match kind {
                "acquisition" => {
                    assert_ne!(s("seller"), s("acquirer"), "line {seq}: seller = acquirer");
                    let op = transfer(s("seller"), s("acquirer"), Self::stake(seq, ev));
                    vec![(format!("cap:{}", s("target").expect("target")), op)]
                }
                "stake_sold" => {
                    assert_ne!(s("seller"), s("buyer"), "line {seq}: buyer = seller");
                    let op = transfer(s("seller"), s("buyer"), Self::stake(seq, ev));
                    vec![(format!("cap:{}", s("target").expect("target")), op)]
                }
                "deal_announced" => {
                    let deal = s("deal").expect("deal");
                    let terms = Terms {
                        acquirer: s("acquirer").expect("acquirer"),
                        target: s("target").expect("target"),
                        seller: s("seller"),
                        stake: Self::stake(seq, ev),
                    };
                    assert_ne!(terms.seller.as_ref(), Some(&terms.acquirer));
                    assert!(self.deals.insert(deal.clone(), terms).is_none(), "line {seq}: deal announced twice");
                    vec![(format!("deal:{deal}"), Op::Announce)]
                }
                "deal_completed" => {
                    let deal = s("deal").expect("deal");
                    let t = &self.deals[&deal];
                    let x = ev.get("stake_pct").map_or(t.stake, |_| Self::stake(seq, ev));
                    let op = transfer(t.seller.clone(), Some(t.acquirer.clone()), x);
                    vec![(format!("deal:{deal}"), Op::Close), (format!("cap:{}", t.target), op)]
                }
                "deal_terminated" => {
                    vec![(format!("deal:{}", s("deal").expect("deal")), Op::Close)]
                }
                "partnership_formed" | "partnership_continued" | "partnership_ended" => {
                    let mut pair: Vec<&str> =
                        ev["partners"].as_array().expect("partners").iter().filter_map(Value::as_str).collect();
                    pair.sort_unstable();
                    assert!(pair.len() == 2 && pair[0] != pair[1], "line {seq}: bad partners");
                    let key = format!("ps:{}|{}|{:?}", pair[0], pair[1], s("scope"));
                    let pk = match kind {
                        "partnership_formed" => PKind::Formed,
                        "partnership_continued" => PKind::Continued,
                        _ => PKind::Ended,
                    };
                    vec![(key, Op::Pship(pk))]
                }
                "executive_appointed" => {
                    let key = format!("role:{}|{}", s("person").expect("p"), s("company").expect("c"));
                    vec![(key, Op::Appoint(s("role").expect("role")))]
                }
                "executive_departed" => {
                    let key = format!("role:{}|{}", s("person").expect("p"), s("company").expect("c"));
                    vec![(key, Op::Depart(s("role")))]
                }
                "executive_moved" => {
                    let p = s("person").expect("person");
                    let side = |k: &str, f: &str| ev[k].get(f).and_then(Value::as_str).map(str::to_owned);
                    let from = format!("role:{p}|{}", side("from", "company").expect("from"));
                    let to = format!("role:{p}|{}", side("to", "company").expect("to"));
                    vec![
                        (from, Op::Depart(side("from", "role"))),
                        (to, Op::Appoint(side("to", "role").expect("to role"))),
                    ]
                }
                "company_renamed" | "company_registered" | "person_registered" => vec![],
                other => panic!("line {seq}: unexpected type {other}"),
            }
        }

        fn refold(&self, seq: usize, keys: &[String]) {
            for key in keys {
                let live: Vec<&Entry> =
                    self.timelines[key].iter().filter(|e| !self.retracted.contains(&e.id)).collect();
                if let Err(why) = fold(key, &live) {
                    panic!("line {seq}: {key}: {why}");
                }
            }
        }
    }

    fn fold(key: &str, entries: &[&Entry]) -> Result<(), String> {
        let company = key.strip_prefix("cap:").unwrap_or_default();
        let mut hold: HashMap<&str, i64> = HashMap::new();
        let mut total = 0;
        let mut active = false;
        let mut roles: HashSet<&str> = HashSet::new();
        let mut deal_state = 0;
        for e in entries {
            let at = &e.order;
            match &e.op {
                Op::Stake(deltas) => {
                    for (h, x) in deltas {
                        let v = hold.entry(h.as_str()).or_insert(0);
                        *v += x;
                        total += x;
                        if h == company || *v < 0 {
                            return Err(format!("{h} holds {v} (self or negative) at {at:?}"));
                        }
                    }
                    if total > MILLION {
                        return Err(format!("total {total} above 100% at {at:?}"));
                    }
                }
                Op::Pship(PKind::Formed) if active => return Err(format!("formed while active at {at:?}")),
                Op::Pship(PKind::Ended) if !active => return Err(format!("ended while inactive at {at:?}")),
                Op::Pship(kind) => active = *kind != PKind::Ended,
                Op::Appoint(role) => {
                    roles.insert(role);
                }
                Op::Depart(Some(role)) if !roles.remove(role.as_str()) => {
                    return Err(format!("{role} not held at {at:?}"))
                }
                Op::Depart(Some(_)) => {}
                Op::Depart(None) if roles.is_empty() => return Err(format!("no role held at {at:?}")),
                Op::Depart(None) => roles.clear(),
                Op::Announce if deal_state != 0 => return Err(format!("announce out of order at {at:?}")),
                Op::Close if deal_state != 1 => return Err(format!("close of a deal not pending at {at:?}")),
                Op::Announce | Op::Close => deal_state += 1,
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------- tests

    #[test]
    fn same_seed_same_lines() {
        assert_eq!(generate(&opts(3000, 7)), generate(&opts(3000, 7)));
    }

    #[test]
    fn different_seed_different_lines() {
        assert_ne!(generate(&opts(3000, 7)), generate(&opts(3000, 8)));
    }

    #[test]
    fn line_count_is_events_and_stats_add_up() {
        let mut count = 0;
        let stats = generate_with(&opts(5000, 3), |_| count += 1).expect("valid options");
        assert_eq!(count, 5000);
        assert_eq!(stats.by_type.values().sum::<usize>(), 5000);
        assert_eq!(stats.by_type["company_registered"], 250);
        assert_eq!(stats.by_type["person_registered"], 125);
        assert_eq!(stats.cycles_made, 3);
    }

    #[test]
    fn lines_are_objects_with_a_type_and_unique_ids() {
        let lines = generate(&opts(5000, 11)).expect("valid options");
        let mut ids = HashSet::new();
        for (i, ev) in objects(&lines).iter().enumerate() {
            assert!(text(ev, "type").is_some(), "line {}: no type", i + 1);
            let keys: Vec<&str> = ev.keys().map(String::as_str).take(2).collect();
            assert_eq!(keys, ["id", "type"], "line {}: key order", i + 1);
            let id = text(ev, "id").expect("id");
            assert!(is_uuid4(id), "line {}: id {id}", i + 1);
            assert!(ids.insert(id.to_owned()), "line {}: duplicate id", i + 1);
        }
    }

    fn is_uuid4(id: &str) -> bool {
        let parts: Vec<&str> = id.split('-').collect();
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        lens == [8, 4, 4, 4, 12]
            && id.bytes().all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && parts[2].starts_with('4')
            && parts[3].starts_with(['8', '9', 'a', 'b'])
    }

    #[test]
    fn retractions_name_earlier_events() {
        let lines = generate(&opts(20_000, 5)).expect("valid options");
        let mut seen = HashMap::new();
        let mut retractions = 0;
        for ev in objects(&lines) {
            if let Some(target) = text(&ev, "retracts") {
                let kind = seen.get(target).expect("retracts an earlier line");
                assert_ne!(kind, "retraction");
                assert!(!ev.contains_key("effective"));
                retractions += 1;
            }
            seen.insert(text(&ev, "id").expect("id").to_owned(), text(&ev, "type").expect("type").to_owned());
        }
        let share = 100.0 * retractions as f64 / lines.len() as f64;
        assert!((0.7..=1.3).contains(&share), "retraction share {share}%");
    }

    fn late_share(late_pct: f64) -> f64 {
        let o = GenOptions { late_pct, ..opts(20_000, 9) };
        let lines = generate(&o).expect("valid options");
        let mut last: Option<String> = None;
        let mut late = 0;
        for ev in objects(&lines) {
            if let Some(eff) = text(&ev, "effective") {
                late += usize::from(last.as_deref().is_some_and(|l| eff < l));
                last = Some(eff.to_owned());
            }
        }
        100.0 * late as f64 / lines.len() as f64
    }

    #[test]
    fn late_share_roughly_as_asked() {
        for (asked, lo, hi) in [(0.0, 0.0, 0.0), (5.0, 4.0, 6.0), (20.0, 16.0, 24.0)] {
            let share = late_share(asked);
            assert!((lo..=hi).contains(&share), "asked {asked}%, got {share}%");
        }
    }

    #[test]
    fn stakes_are_in_range_with_at_most_4_decimals() {
        let lines = generate(&opts(20_000, 13)).expect("valid options");
        let mut strings = 0;
        for (i, ev) in objects(&lines).iter().enumerate() {
            if let Some(v) = ev.get("stake_pct") {
                assert!(millionths(v).is_some(), "line {}: stake_pct {v}", i + 1);
                strings += usize::from(v.is_string());
            }
        }
        assert!(strings > 0, "the string form appears too");
    }

    #[test]
    fn streams_keep_every_rule() {
        for seed in [1, 2, 3] {
            Checker::check(&generate(&opts(20_000, seed)).expect("valid options"));
        }
    }

    #[test]
    fn heavy_late_and_retractions_keep_every_rule() {
        let o = GenOptions { late_pct: 50.0, retract_pct: 20.0, ..opts(10_000, 4) };
        Checker::check(&generate(&o).expect("valid options"));
    }

    #[test]
    fn validate_checks_the_python_constraints() {
        assert!(GenOptions::default().validate().is_ok());
        assert!(opts(10, 1).validate().is_ok());
        let bad = [
            opts(9, 1),
            GenOptions { companies: Some(1), ..opts(100, 1) },
            GenOptions { people: Some(0), ..opts(100, 1) },
            GenOptions { companies: Some(40), people: Some(11), ..opts(100, 1) },
            GenOptions { late_pct: 50.5, ..opts(100, 1) },
            GenOptions { late_pct: f64::NAN, ..opts(100, 1) },
            GenOptions { retract_pct: -1.0, ..opts(100, 1) },
        ];
        for o in bad {
            assert!(o.validate().is_err(), "{o:?}");
            assert!(generate(&o).is_err(), "{o:?}");
        }
    }

    #[test]
    fn small_streams_work() {
        for seed in 0..20 {
            let lines = generate(&opts(10, seed)).expect("valid options");
            assert_eq!(lines.len(), 10);
            Checker::check(&lines);
        }
    }

    #[test]
    fn dates_convert_both_ways() {
        assert_eq!(iso_date(REG_START), "1990-01-01");
        assert_eq!(iso_date(days_from_civil(2000, 2, 29)), "2000-02-29");
        assert_eq!(iso_date(days_from_civil(2000, 3, 1) - 1), "2000-02-29");
        assert_eq!(iso_date(days_from_civil(1900, 3, 1) - 1), "1900-02-28");
        assert_eq!(iso_date(MAIN_END), "2025-12-31");
        assert_eq!(MAIN_END - REG_START, 13_148);
        for d in REG_START..=MAIN_END {
            let t = iso_date(d);
            let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().expect("digits");
            assert_eq!(days_from_civil(n(0..4), n(5..7), n(8..10)), d);
        }
    }

    #[test]
    fn stake_text_and_json() {
        assert_eq!(pct_text(490_000), "49");
        assert_eq!(pct_text(333_333), "33.3333");
        assert_eq!(pct_text(1), "0.0001");
        assert_eq!(pct_text(125_000), "12.5");
        for m in [1, 10, 100, 333_333, 999_999, 125_000] {
            let v = Value::from(m as f64 / PCT as f64);
            assert_eq!(millionths(&v), Some(m), "{v}");
            assert_eq!(v.to_string(), pct_text(m));
        }
    }

    #[test]
    fn rng_helpers_stay_in_range() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            let x = rng.randint(-3, 3);
            assert!((-3..=3).contains(&x));
            let f = rng.random();
            assert!((0.0..1.0).contains(&f));
        }
        let mut s = rng.sample(10, 20, 10);
        s.sort_unstable();
        assert_eq!(s, (10..20).collect::<Vec<_>>());
        assert!(rng.expovariate(1.0 / 150.0) >= 0.0);
    }
}
