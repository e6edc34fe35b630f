//! `verify` against damage done behind the ledger's back: an altered record,
//! a broken chain, undecodable bytes and a missing block, each named by its
//! seq; and the recovery path (export of the intact prefix, import).

mod common;

use std::path::Path;
use std::process::Command;

use common::damage::{chain_hash as dealledger_hash, edit, ledger_with_story, tamper};
use dealledger::{Error, Event, Ledger};

fn verify(dir: &Path) -> (i32, String) {
    let out = Command::new(assert_cmd::cargo::cargo_bin("dealledger"))
        .args(["--db", &dir.join("db").to_string_lossy(), "verify"])
        .output()
        .expect("run");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_altered_record_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    edit(dir.path(), 5, |rec| {
        if let Event::PersonRegistered { name, .. } = &mut rec.event {
            *name = "Someone Else".into();
        }
    });
    let (code, err) = verify(dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("seq 5") && err.contains("altered"), "{err}");
}

#[test]
fn a_broken_chain_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    // A self-consistent record whose prev_hash no longer matches its predecessor.
    edit(dir.path(), 9, |rec| {
        rec.prev_hash = [7; 32];
        rec.hash = dealledger_hash(rec);
    });
    let (code, err) = verify(dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("seq 9") && err.contains("chain is broken"), "{err}");
}

#[test]
fn undecodable_bytes_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    tamper(dir.path(), 14, |bytes| bytes[0] = 0xee);
    let (code, err) = verify(dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("seq 14") && err.contains("format version 238"), "{err}");
}

#[test]
fn a_missing_block_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    common::damage::rewrite_log(dir.path(), |blocks| {
        let removed = blocks.remove(1);
        assert_eq!(removed.first, 7, "the middle block");
    });
    let (code, err) = verify(dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("seq 7") && err.contains("missing"), "{err}");
}

#[test]
fn the_intact_prefix_can_be_exported_and_imported() {
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    tamper(dir.path(), 14, |bytes| bytes.truncate(bytes.len() / 2));
    let bin = assert_cmd::cargo::cargo_bin("dealledger");
    let db = dir.path().join("db");
    let export = Command::new(&bin).args(["--db", &db.to_string_lossy(), "export"]).output().expect("export");
    assert_eq!(export.status.code(), Some(1), "export stops at the damage");
    let prefix = String::from_utf8(export.stdout).expect("utf-8");
    assert_eq!(prefix.lines().count(), 13, "seqs 1-13 are intact");
    let restored = Ledger::open_or_create(dir.path().join("restored")).expect("open");
    assert_eq!(restored.import(&mut prefix.as_bytes()).expect("import"), 13);
    assert_eq!(restored.verify().expect("verify").last_seq, 13);
}

#[test]
fn an_index_behind_its_contents_catches_up_without_duplicates() {
    // After a crash, part of the index can reach the disk without its
    // watermark: reopening re-indexes those records, and must keep them once.
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    let at = dealledger::At::date(dealledger::Date::parse("2025-07-01").expect("date"));
    let before = {
        let ledger = Ledger::open(dir.path().join("db")).expect("open");
        (ledger.ownership("scale-ai", at).expect("ownership"), ledger.career("alexandr-wang", at).expect("career"))
    };
    {
        let db = common::damage::open_sled(&dir.path().join("db").join("index"));
        db.open_tree("meta").expect("meta").insert("indexed", &3u64.to_be_bytes()).expect("write");
        db.flush().expect("flush");
    }
    let ledger = Ledger::open(dir.path().join("db")).expect("reopen");
    assert_eq!(ledger.ownership("scale-ai", at).expect("ownership"), before.0);
    assert_eq!(ledger.career("alexandr-wang", at).expect("career"), before.1);
    let history = ledger.history("scale-ai", dealledger::KnownAt::Latest, None, None).expect("history");
    assert_eq!(history.len(), 9, "each event once");
}

#[test]
fn a_damaged_last_record_still_opens_for_reading_and_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    tamper(dir.path(), 18, |bytes| bytes[0] = 0xee);
    let bin = assert_cmd::cargo::cargo_bin("dealledger");
    let db = dir.path().join("db").to_string_lossy().into_owned();
    let run = |args: &[&str], input: &str| {
        let out =
            assert_cmd::Command::new(&bin).arg("--db").arg(&db).args(args).write_stdin(input).output().expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["export"], "");
    assert_eq!(code, Some(1), "export stops at the damage");
    assert_eq!(out.lines().count(), 17, "the intact prefix is exported");
    let (code, _, err) = run(&["verify"], "");
    assert_eq!(code, Some(1));
    assert!(err.contains("seq 18"), "{err}");
    let (code, out, _) = run(&["ownership", "meta", "--as-of", "2022-01-01", "--json"], "");
    assert_eq!(code, Some(0), "reading still works");
    assert!(out.contains("Meta Platforms"), "{out}");
    let event = r#"{"type":"company_registered","effective":"2020-01-01","company":"newco","name":"N"}"#;
    let (code, _, err) = run(&["append"], event);
    assert_eq!(code, Some(1), "no append on a damaged log");
    assert!(err.contains("seq 18"), "{err}");
    assert_eq!(run(&["export"], "").1.lines().count(), 17, "nothing was stored");
}

#[test]
fn an_export_with_a_repeated_id_is_refused_even_with_a_valid_chain() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    let mut export = Vec::new();
    Ledger::open(dir.path().join("db")).expect("open").export(&mut export).expect("export");
    let lines: Vec<serde_json::Map<String, serde_json::Value>> =
        String::from_utf8(export).expect("utf-8").lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let first_id = lines[0]["id"].clone();
    // Give seq 2 the id of seq 1, and re-chain every hash so only the id repeats.
    let mut prev = [0u8; 32];
    let mut forged = String::new();
    for (i, mut line) in lines.into_iter().enumerate() {
        if i == 1 {
            line.insert("id".into(), first_id.clone());
        }
        line.remove("hash");
        let canonical = serde_json::to_string(&line).expect("json");
        let hash: [u8; 32] = Sha256::new().chain_update(prev).chain_update(canonical.as_bytes()).finalize().into();
        line.insert("hash".into(), hex::encode(hash).into());
        forged.push_str(&serde_json::to_string(&line).expect("json"));
        forged.push('\n');
        prev = hash;
    }
    let restored = Ledger::open_or_create(dir.path().join("restored")).expect("open");
    match restored.import(&mut forged.as_bytes()) {
        Err(Error::Import(message)) => assert!(message.contains("line 2") && message.contains("twice"), "{message}"),
        other => panic!("expected a refused import, got {other:?}"),
    }
    assert_eq!(restored.last_seq(), 0);
}

#[test]
fn a_flipped_bit_in_a_stored_block_fails_its_checksum_and_is_named() {
    // Damage that did not come through the format (the disk, not a
    // tamperer): the frame's checksum no longer matches.
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    let path = dealledger::journal::Journal::path_in(&dir.path().join("db"));
    let mut bytes = std::fs::read(&path).expect("read the log");
    let (_, frames) = dealledger::journal::decode_file(&bytes).expect("whole frames");
    let (middle, _) = frames[1];
    assert_eq!(middle.first, 7, "the middle block");
    bytes[middle.offset as usize + 40] ^= 0x10;
    std::fs::write(&path, &bytes).expect("write");
    let (code, err) = verify(dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("seq 7") && err.contains("checksum"), "{err}");
}

#[test]
fn a_torn_last_append_is_cut_off_at_the_open_and_its_bytes_kept() {
    // A crash in the middle of an append's write leaves part of its frames
    // at the end of the file: never acknowledged, so the open cuts them off,
    // and the next append continues the chain from the last whole one.
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    let db = dir.path().join("db");
    let path = dealledger::journal::Journal::path_in(&db);
    let whole = std::fs::read(&path).expect("read the log");
    let block =
        dealledger::journal::Block { first: 19, count: 1, stamp: 0, bytes: b"a block that never made it".to_vec() };
    let (salt, _) = dealledger::journal::decode_file(&whole).expect("whole frames");
    let torn = dealledger::journal::encode_frame(&salt, whole.len() as u64, &block);
    let mut bytes = whole.clone();
    bytes.extend_from_slice(&torn[..torn.len() - 5]);
    std::fs::write(&path, &bytes).expect("write");
    let ledger = Ledger::open(&db).expect("opens");
    assert_eq!(ledger.last_seq(), 18);
    assert_eq!(std::fs::read(&path).expect("read"), whole, "the torn bytes are cut off");
    let kept = db.join(format!("journal.torn-{}", whole.len()));
    assert_eq!(std::fs::read(kept).expect("kept beside the log"), torn[..torn.len() - 5]);
    let next = r#"{"type":"company_registered","effective":"2020-01-01","company":"after-torn","name":"After"}"#;
    ledger.append_text(next).expect("append after the repair");
    assert_eq!(ledger.verify().expect("whole chain").last_seq, 19);
}

#[test]
fn a_forged_time_stamp_on_a_block_is_named_by_verify() {
    // A frame's stamp steers `--known-at` searches by time and lies outside
    // the hash chain: `verify` compares it with the block's first record.
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    common::damage::rewrite_log(dir.path(), |blocks| blocks[1].stamp -= 1_000);
    let (code, err) = verify(dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("seq 7") && err.contains("time stamp"), "{err}");
}
