//! Isolation of readers: one writer appending while eight readers query the
//! same `Ledger`. No reader ever sees part of an append (every answer's
//! `known_at_seq` is the end of some append, and asking again at that seq
//! gives the same answer), nothing deadlocks, nothing is lost.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use dealledger::testkit::Rng;
use dealledger::testkit::{generate, GenOptions};
use dealledger::{At, Date, KnownAt, Ledger, QueryKind};

/// The registered entities of a generated history, with their kind.
fn entities(lines: &[String]) -> Vec<(String, bool)> {
    lines
        .iter()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            match v["type"].as_str()? {
                "company_registered" => Some((v["company"].as_str()?.to_owned(), true)),
                "person_registered" => Some((v["person"].as_str()?.to_owned(), false)),
                _ => None,
            }
        })
        .collect()
}

fn ask(
    ledger: &Ledger,
    kind: QueryKind,
    id: &str,
    as_of: Date,
    known_at: KnownAt,
) -> Result<serde_json::Value, String> {
    ledger.answer(kind, id, At { as_of, known_at }).map_err(|e| e.to_string())
}

#[test]
fn readers_never_see_part_of_an_append() {
    let lines = generate(&GenOptions { events: 4_000, seed: 11, ..GenOptions::default() }).expect("history");
    let entities = Arc::new(entities(&lines));
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Arc::new(Ledger::open_or_create(dir.path().join("db")).expect("open"));
    let boundaries = Arc::new(Mutex::new(BTreeSet::from([0u64])));
    let done = Arc::new(AtomicBool::new(false));

    let writer = {
        let (ledger, boundaries, done) = (Arc::clone(&ledger), Arc::clone(&boundaries), Arc::clone(&done));
        std::thread::spawn(move || {
            for chunk in lines.chunks(150) {
                let stored = ledger.append_text(&chunk.join("\n")).expect("a valid chunk is accepted");
                let last = stored.last().map_or(0, |a| a.seq);
                boundaries.lock().expect("lock").insert(last);
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let kinds = [QueryKind::Ownership, QueryKind::Holdings, QueryKind::Partnerships, QueryKind::Executives];
    let readers: Vec<_> = (0..8u64)
        .map(|r| {
            let (ledger, entities, done) = (Arc::clone(&ledger), Arc::clone(&entities), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut rng = Rng::new(r + 1);
                let mut seen = Vec::new();
                let mut asked = 0;
                while !done.load(Ordering::SeqCst) || asked < 50 {
                    let (id, company) = &entities[rng.index(entities.len())];
                    let kind = if *company { kinds[rng.index(kinds.len())] } else { QueryKind::Career };
                    let as_of = Date::from_days(10_957 + rng.index(9_500) as i32).expect("date");
                    let now = ask(&ledger, kind, id, as_of, KnownAt::Latest);
                    if let Ok(answer) = &now {
                        let k = answer["known_at_seq"].as_u64().expect("known_at_seq");
                        let again = ask(&ledger, kind, id, as_of, KnownAt::Seq(k));
                        assert_eq!(again.as_ref(), Ok(answer), "{kind:?} {id} as of {as_of} known at {k}");
                        seen.push(k);
                    }
                    asked += 1;
                }
                seen
            })
        })
        .collect();

    writer.join().expect("writer");
    let seen: Vec<u64> = readers.into_iter().flat_map(|r| r.join().expect("reader")).collect();
    let boundaries = boundaries.lock().expect("lock");
    assert!(seen.len() > 100, "the readers answered {} queries", seen.len());
    for k in &seen {
        assert!(boundaries.contains(k), "a reader saw seq {k}, which is not the end of an append");
    }
    assert_eq!(ledger.last_seq(), 4_000);
    assert_eq!(ledger.verify().expect("verify").last_seq, 4_000);
}

#[test]
fn readers_keep_their_answers_while_the_index_is_rebuilt() {
    let lines = generate(&GenOptions { events: 2_000, seed: 5, ..GenOptions::default() }).expect("history");
    let entities = entities(&lines);
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Arc::new(Ledger::open_or_create(dir.path().join("db")).expect("open"));
    ledger.append_text(&lines.join("\n")).expect("append");
    let as_of = Date::parse("2024-01-01").expect("date");
    let expected: Vec<_> = entities
        .iter()
        .filter(|(_, company)| *company)
        .take(50)
        .map(|(id, _)| (id.clone(), ask(&ledger, QueryKind::Ownership, id, as_of, KnownAt::Latest)))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let rebuilder = {
        let (ledger, done) = (Arc::clone(&ledger), Arc::clone(&done));
        std::thread::spawn(move || {
            for _ in 0..5 {
                ledger.reindex().expect("reindex");
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut asked = 0;
    while !done.load(Ordering::SeqCst) || asked < expected.len() {
        let (id, answer) = &expected[asked % expected.len()];
        assert_eq!(&ask(&ledger, QueryKind::Ownership, id, as_of, KnownAt::Latest), answer, "{id} during reindex");
        asked += 1;
    }
    rebuilder.join().expect("rebuilder");
}
