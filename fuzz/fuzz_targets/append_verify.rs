//! `append_verify`: arbitrary text appended (`Ledger::append_text`) to a small
//! ledger holding the Scale AI example (18 events), then `verify()`.
//!
//! The ledger is reused across iterations, and rebuilt from the example
//! after every append that stored something, so each iteration starts from
//! the same state and a finding reproduces from its input alone (refused
//! appends, the bulk of the inputs, cost no rebuild). Must never panic.
//! Oracles: `verify` always succeeds and its head is `last_seq`; a refused
//! append stores nothing (same `last_seq`, same head hash); an accepted one
//! answers each event with a seq, new events numbered on from the old head.
#![no_main]

use std::sync::Mutex;

use dealledger::Ledger;
use libfuzzer_sys::fuzz_target;

const EXAMPLE: &str = include_str!("../../examples/data/scale-ai.jsonl");

struct Base {
    dir: tempfile::TempDir,
    ledger: Option<Ledger>,
}

impl Base {
    fn new() -> Self {
        let mut base = Self { dir: tempfile::tempdir().expect("temporary directory"), ledger: None };
        base.rebuild();
        base
    }

    /// A fresh ledger holding the example, in a new directory under `dir`.
    fn rebuild(&mut self) {
        self.ledger = None; // closes sled before the old files go
        let path = self.dir.path().join("db");
        let _ = std::fs::remove_dir_all(&path);
        let ledger = Ledger::open_or_create(&path).expect("open the ledger");
        ledger.append_text(EXAMPLE).expect("the example appends");
        self.ledger = Some(ledger);
    }
}

static BASE: Mutex<Option<Base>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut guard = BASE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let base = guard.get_or_insert_with(Base::new);
    let ledger = base.ledger.as_ref().expect("a ledger");
    let before = ledger.verify().expect("the base verifies");
    assert_eq!(before.last_seq, ledger.last_seq());
    let result = ledger.append_text(text);
    let after = match ledger.verify() {
        Ok(after) => after,
        Err(e) => panic!("verify fails after an append ({}): {e}", if result.is_ok() { "accepted" } else { "refused" }),
    };
    assert_eq!(after.last_seq, ledger.last_seq());
    match result {
        Err(_) => {
            assert_eq!(after.last_seq, before.last_seq, "a refused append stored something");
            assert_eq!(after.hash, before.hash, "a refused append changed the head");
        }
        Ok(appended) => {
            let mut next = before.last_seq;
            for a in &appended {
                if a.seq == next + 1 {
                    next += 1;
                } else {
                    // A retry answers with the seq already stored.
                    assert!((1..=next).contains(&a.seq), "new events take consecutive seqs: {appended:?}");
                }
            }
            assert_eq!(after.last_seq, next, "every new event and nothing else is stored");
            if after.last_seq != before.last_seq {
                base.rebuild();
            }
        }
    }
});
