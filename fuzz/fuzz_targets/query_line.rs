//! `query_line`: arbitrary text as one line of the batch `query` command,
//! answered by `Ledger::answer_line` against a small ledger (the Scale AI
//! example, 18 events) built once per process in a temporary directory.
//!
//! Must never panic: every input gives `Ok` or `Err`. Oracle: an `Ok` answer
//! is one JSON object.
#![no_main]

use std::sync::OnceLock;

use dealledger::Ledger;
use libfuzzer_sys::fuzz_target;

const EXAMPLE: &str = include_str!("../../examples/data/scale-ai.jsonl");

fn ledger() -> &'static Ledger {
    static LEDGER: OnceLock<(tempfile::TempDir, Ledger)> = OnceLock::new();
    let (_, ledger) = LEDGER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ledger = Ledger::open_or_create(dir.path().join("db")).expect("open the ledger");
        ledger.append_text(EXAMPLE).expect("the example appends");
        (dir, ledger)
    });
    ledger
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    if let Ok(answer) = ledger().answer_line(line) {
        let value: serde_json::Value = serde_json::from_str(&answer).expect("an answer is JSON");
        assert!(value.is_object(), "{answer}");
    }
});
