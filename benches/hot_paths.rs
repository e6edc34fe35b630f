//! Micro-benchmarks of the hot paths (criterion): the record codec, input
//! parsing, the export line, and an ownership query on a small ledger.
//!
//! ```text
//! cargo bench --bench hot_paths            # all of them
//! cargo bench --bench hot_paths -- codec   # those whose name contains `codec`
//! ```
//!
//! The whole-system figures (bulk append, cold queries, reindex, …) are in
//! `examples/bench.rs`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use dealledger::testkit::{generate, GenOptions};
use dealledger::{decode_record, encode_record, export_line, parse_input, At, Date, Ledger, StoredEvent, Timestamp};

/// A typical acquisition: consideration, source, a stake with decimals.
const ACQUISITION: &str = r#"{"id":"0197656a-0000-7000-8000-000000000001","type":"acquisition","effective":"2025-06-12","acquirer":"meta","target":"scale-ai","stake_pct":49.5,"consideration":{"amount":"14800000000","currency":"USD"},"source":"Reuters, 2025-06-13"}"#;

/// The Meta / Scale AI story of the README.
const SCALE_AI: &str = include_str!("../examples/data/scale-ai.jsonl");

/// The acquisition as the ledger would store it (seq, recorded_at and hashes made up).
fn acquisition_record() -> StoredEvent {
    let (_, draft) = parse_input(ACQUISITION).expect("valid event").remove(0);
    assert!(draft.id.is_some(), "the line has an id");
    let recorded_at = Timestamp::parse("2025-06-13T09:30:00.123456789Z").expect("valid timestamp");
    StoredEvent { prev_hash: [0x5a; 32], hash: [0xa5; 32], ..StoredEvent::unhashed(draft, 123_456, recorded_at) }
}

fn date(text: &str) -> Date {
    Date::parse(text).expect("valid date")
}

fn codec(c: &mut Criterion) {
    let rec = acquisition_record();
    let bytes = encode_record(&rec);
    c.bench_function("codec/encode_record acquisition", |b| b.iter(|| encode_record(black_box(&rec))));
    c.bench_function("codec/decode_record acquisition", |b| {
        b.iter(|| decode_record(black_box(&bytes)).expect("decodes"))
    });
}

fn json(c: &mut Criterion) {
    let rec = acquisition_record();
    c.bench_function("json/parse_input one acquisition line", |b| {
        b.iter(|| parse_input(black_box(ACQUISITION)).expect("parses"))
    });
    c.bench_function("json/export_line acquisition", |b| b.iter(|| export_line(black_box(&rec))));
}

fn ownership(c: &mut Criterion) {
    // The README's story: a handful of events.
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open_or_create(dir.path().join("ledger")).expect("ledger");
    ledger.append_text(SCALE_AI).expect("the story appends");
    let at = At::date(date("2025-07-01"));
    c.bench_function("query/ownership scale-ai (18-event ledger)", |b| {
        b.iter(|| ledger.ownership(black_box("scale-ai"), at).expect("answers"))
    });

    // A generated ledger of 2,000 events: the company with the most holders.
    let gen_dir = tempfile::tempdir().expect("tempdir");
    let gen = Ledger::open_or_create(gen_dir.path().join("ledger")).expect("ledger");
    let lines = generate(&GenOptions { events: 2_000, seed: 42, ..GenOptions::default() }).expect("generates");
    gen.append_text(&lines.join("\n")).expect("the generated events append");
    let at = At::date(date("2026-06-30"));
    let company = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "company_registered")
        .filter_map(|v| v["company"].as_str().map(str::to_owned))
        .max_by_key(|c| gen.ownership(c, at).map_or(0, |o| o.holders.len()))
        .expect("a company");
    let holders = gen.ownership(&company, at).map_or(0, |o| o.holders.len());
    c.bench_function(&format!("query/ownership {company} ({holders} holders, 2,000-event ledger)"), |b| {
        b.iter(|| gen.ownership(black_box(&company), at).expect("answers"))
    });
}

criterion_group! {
    name = hot_paths;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = codec, json, ownership
}
criterion_main!(hot_paths);
