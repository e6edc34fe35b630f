//! Helpers for `tests/properties.rs`: generated histories, throwaway ledgers,
//! query sampling and answer normalisation.

#![allow(dead_code)]

use dealledger::testkit::{generate, GenOptions};
use dealledger::{At, Date, KnownAt, Ledger, QueryKind};
use serde_json::Value;
use std::collections::BTreeSet;
use tempfile::TempDir;

/// The five queries.
pub const KINDS: [QueryKind; 5] =
    [QueryKind::Ownership, QueryKind::Holdings, QueryKind::Partnerships, QueryKind::Executives, QueryKind::Career];

/// A generated history: its JSON lines, parsed, and the entities it registers.
pub struct History {
    pub lines: Vec<String>,
    pub values: Vec<Value>,
    pub companies: Vec<String>,
    pub persons: Vec<String>,
}

impl History {
    /// Every registered id (companies then persons).
    pub fn entities(&self) -> Vec<String> {
        self.companies.iter().chain(&self.persons).cloned().collect()
    }

    /// The sorted effective dates of the dated events.
    pub fn dates(&self) -> Vec<String> {
        let mut d: Vec<String> =
            self.values.iter().filter_map(|v| v.get("effective").and_then(Value::as_str)).map(str::to_owned).collect();
        d.sort();
        d
    }

    /// A date of the history chosen by a fraction in `[0, 1)` of its dated events.
    pub fn date_at(&self, frac: f64) -> Date {
        let d = self.dates();
        let i = ((d.len() as f64) * frac).floor() as usize;
        date(&d[i.min(d.len() - 1)])
    }
}

/// What a case asks the generator for.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub seed: u64,
    pub events: usize,
    /// Share (%) of late events.
    pub late_pct: f64,
    /// Share (%) of retractions.
    pub retract_pct: f64,
}

/// Generates a valid history (testkit defaults for what `spec` leaves out).
pub fn history(spec: Spec) -> History {
    let Spec { seed, events, late_pct, retract_pct } = spec;
    let opts = GenOptions { events, seed, late_pct, retract_pct, ..GenOptions::default() };
    let lines = generate(&opts).expect("valid generator options");
    let values: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).expect("generator emits JSON")).collect();
    let mut companies = BTreeSet::new();
    let mut persons = BTreeSet::new();
    for v in &values {
        match v["type"].as_str() {
            Some("company_registered") => {
                companies.insert(v["company"].as_str().expect("company").to_owned());
            }
            Some("person_registered") => {
                persons.insert(v["person"].as_str().expect("person").to_owned());
            }
            _ => {}
        }
    }
    History { lines, values, companies: companies.into_iter().collect(), persons: persons.into_iter().collect() }
}

pub fn date(text: &str) -> Date {
    Date::parse(text).expect("a valid date")
}

/// A fresh, empty ledger in a temporary directory.
pub fn empty_ledger() -> (TempDir, Ledger) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open_or_create(dir.path().join("db")).expect("open ledger");
    (dir, ledger)
}

/// A fresh ledger holding `lines`, appended in one call.
pub fn ledger_of(lines: &[String]) -> (TempDir, Ledger) {
    let (dir, ledger) = empty_ledger();
    if !lines.is_empty() {
        ledger.append_text(&lines.join("\n")).unwrap_or_else(|e| panic!("append refused: {e}"));
    }
    (dir, ledger)
}

/// One query's JSON answer, or its error text.
pub fn ask(ledger: &Ledger, kind: QueryKind, id: &str, as_of: Date, known_at: KnownAt) -> Result<Value, String> {
    ledger.answer(kind, id, At { as_of, known_at }).map_err(|e| e.to_string())
}

/// The answer without `known_at_seq` (the only field that depends on how much was appended).
pub fn without_seq(answer: Result<Value, String>) -> Result<Value, String> {
    answer.map(|mut v| {
        if let Some(map) = v.as_object_mut() {
            map.shift_remove("known_at_seq");
        }
        v
    })
}

/// Both errors (any message), or the same answer.
pub fn agree(a: &Result<Value, String>, b: &Result<Value, String>) -> bool {
    match (a, b) {
        (Err(_), Err(_)) => true,
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// splitmix64: a tiny deterministic PRNG for sampling inside a case.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64 - 1) as usize]
    }

    /// Up to `n` distinct items (all of them when there are fewer).
    pub fn sample<T: Clone>(&mut self, items: &[T], n: usize) -> Vec<T> {
        let mut idx: Vec<usize> = (0..items.len()).collect();
        for i in 0..idx.len() {
            let j = self.range(i as u64, idx.len() as u64 - 1) as usize;
            idx.swap(i, j);
        }
        idx.into_iter().take(n).map(|i| items[i].clone()).collect()
    }

    /// A date between 1989-06-01 and 2026-06-30.
    pub fn date(&mut self) -> Date {
        let lo = date("1989-06-01").days();
        let hi = date("2026-06-30").days();
        Date::from_days(self.range(lo as u64, hi as u64) as i32).expect("in range")
    }
}
