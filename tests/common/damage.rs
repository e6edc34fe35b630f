//! Damage done to a ledger behind its back (shared by `tamper.rs` and
//! `faults.rs`): a story appended in three log blocks, and rewrites of the
//! log file's blocks behind the ledger's back.

use std::path::Path;

use dealledger::journal::{decode_file, encode_file, Block, Journal};
use dealledger::{decode_block, decode_record, encode_block, encode_record, Ledger, StoredEvent};

/// The Meta / Scale AI story (18 events).
pub const STORY: &str = include_str!("../../examples/data/scale-ai.jsonl");

/// Appends the story to `<dir>/db` in three appends: log blocks 1-6, 7-12, 13-18.
pub fn ledger_with_story(dir: &Path) {
    let ledger = Ledger::open_or_create(dir.join("db")).expect("open");
    let (first, rest) = STORY.split_at(STORY.match_indices('\n').nth(5).map_or(0, |(i, _)| i + 1));
    let (middle, last) = rest.split_at(rest.match_indices('\n').nth(5).map_or(0, |(i, _)| i + 1));
    for part in [first, middle, last] {
        ledger.append_text(part).expect("append");
    }
    assert_eq!(ledger.last_seq(), 18, "three appends, three log blocks: seqs 1-6, 7-12, 13-18");
}

/// Rewrites the log file of `<dir>/db` with `change` applied to its blocks,
/// framed and checksummed anew, as a tamperer who knows the format would.
pub fn rewrite_log(dir: &Path, change: impl FnOnce(&mut Vec<Block>)) {
    let path = Journal::path_in(&dir.join("db"));
    let (salt, frames) = decode_file(&std::fs::read(&path).expect("read the log")).expect("whole frames");
    let mut blocks =
        frames.into_iter().map(|(f, bytes)| Block { first: f.first, count: f.count, stamp: f.stamp, bytes }).collect();
    change(&mut blocks);
    std::fs::write(&path, encode_file(&salt, &blocks)).expect("write the log");
}

/// Rewrites the block holding `seq` with `change`, given its first seq.
fn with_block(dir: &Path, seq: u64, change: impl FnOnce(u64, &mut Vec<u8>)) {
    rewrite_log(dir, |blocks| {
        let block = blocks.iter_mut().rev().find(|b| b.first <= seq).expect("a block");
        change(block.first, &mut block.bytes);
    });
}

/// Rewrites the block holding `seq` whole, behind the ledger's back.
pub fn tamper_block(dir: &Path, seq: u64, change: impl FnOnce(&mut Vec<u8>)) {
    with_block(dir, seq, |_, block| change(block));
}

/// Rewrites the record at `seq` of `<dir>/db` with `change`, behind the ledger's back.
pub fn tamper(dir: &Path, seq: u64, change: impl FnOnce(&mut Vec<u8>)) {
    with_block(dir, seq, |first, block| {
        let mut records: Vec<Vec<u8>> = decode_block(block).expect("intact block").iter().map(|r| r.to_vec()).collect();
        change(&mut records[(seq - first) as usize]);
        *block = encode_block(&records);
    });
}

/// Decodes the record at `seq`, changes it and stores it re-encoded.
pub fn edit(dir: &Path, seq: u64, change: impl FnOnce(&mut StoredEvent)) {
    tamper(dir, seq, |bytes| {
        let mut rec = decode_record(bytes).expect("decodes");
        change(&mut rec);
        *bytes = encode_record(&rec);
    });
}

/// The chain hash of a record as the ledger computes it (SHA-256 of the
/// previous hash and the canonical export line without its hash).
pub fn chain_hash(rec: &StoredEvent) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let line = dealledger::export_line(rec);
    let canonical = &line[..line.rfind(",\"hash\"").expect("hash field")];
    let mut h = Sha256::new();
    h.update(rec.prev_hash);
    h.update(format!("{canonical}}}").as_bytes());
    h.finalize().into()
}

/// Opens a sled database (the index) behind the ledger's back, waiting up to five
/// seconds for the lock: sled 0.34 releases it from a background thread
/// after a `Db` of this process is dropped (slow on a loaded machine).
pub fn open_sled(path: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let segment = dealledger::sled_segment_size(path).unwrap_or(512 << 10);
        match sled::Config::new().path(path).segment_size(segment).open() {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot open {}: {e}", path.display()),
        }
    }
}
