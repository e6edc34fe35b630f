//! The byte format is a promise.
//!
//! * Golden bytes: one fixed `StoredEvent` per event type is encoded with
//!   `encode_record` and compared with `tests/golden/v1/<type>.hex` (lowercase
//!   hex, one line). A missing golden file is written and the test FAILS
//!   saying so: the first run creates the files, they are committed, and every
//!   later run pins them. Each golden file also decodes back to its struct.
//!   A changed encoding must get a new `FORMAT_VERSION` and an upcaster in
//!   `codec`; it must never change these files.
//! * `decode_record` refuses empty bytes, unknown versions, truncated records
//!   and trailing bytes.
//! * The hash chain is checkable without this crate: each export line minus
//!   its trailing `,"hash":"…"` is the hashed text, and
//!   `hash = SHA-256(prev_hash || that text)` from 32 zero bytes.

use std::path::{Path, PathBuf};

use dealledger::event::{Event, RoleEnd, RoleStart};
use dealledger::{
    decode_record, encode_block, encode_record, Date, DecodeError, EntityId, Ledger, Money, Stake, StoredEvent,
    Timestamp, FORMAT_VERSION,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn id(slug: &str) -> EntityId {
    EntityId::parse(slug).expect("slug")
}

fn date(text: &str) -> Option<Date> {
    Some(Date::parse(text).expect("date"))
}

fn stake(pct: &str) -> Stake {
    Stake::parse_pct(pct).expect("stake")
}

fn money(amount: &str, currency: &str) -> Option<Money> {
    Some(Money::parse(amount, currency).expect("money"))
}

fn text(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// A fixed, recognisable 16-byte pattern.
fn bytes16(salt: u8) -> [u8; 16] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(3).wrapping_add(salt))
}

/// A fixed, recognisable 32-byte pattern.
fn bytes32(salt: u8) -> [u8; 32] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(salt))
}

/// The record of golden number `n` around `event`.
fn record(n: u8, effective: Option<Date>, source: Option<String>, note: Option<String>, event: Event) -> StoredEvent {
    StoredEvent {
        seq: [1, 2, 127, 128, 255, 256, 65_535, 65_536, 1 << 32, 42, 7, 1_000_000, 3, 250, u64::MAX >> 1]
            [usize::from(n) - 1],
        id: Uuid::from_u128(0x0197_656a_0000_7000_8000_0000_0000_0000 | u128::from(n)),
        recorded_at: Timestamp::from_nanos(1_750_000_000_123_456_000 + i64::from(n) * 1_000),
        effective,
        source,
        note,
        event,
        prev_hash: bytes32(n),
        hash: bytes32(0x80 | n),
    }
}

/// One fixed record per event type; optional fields are set on some and
/// absent on others, so both encodings of an `Option` are pinned.
fn goldens() -> Vec<(&'static str, StoredEvent)> {
    let cases = vec![
        record(
            1,
            date("2004-02-04"),
            text("public company records"),
            text("founded as TheFacebook"),
            Event::CompanyRegistered { company: id("meta"), name: "Facebook".into(), jurisdiction: text("US-DE") },
        ),
        record(
            2,
            date("2021-10-28"),
            None,
            None,
            Event::CompanyRenamed { company: id("meta"), name: "Meta Platforms".into() },
        ),
        record(
            3,
            date("1969-12-31"),
            None,
            text("non-ASCII names are UTF-8: Zoë Ångström, 王伟"),
            Event::PersonRegistered { person: id("zoe.angstrom_1"), name: "Zoë Ångström".into() },
        ),
        record(
            4,
            date("2025-06-12"),
            text("Reuters, 2025-06-13"),
            None,
            Event::Acquisition {
                acquirer: id("meta"),
                target: id("scale-ai"),
                stake: stake("33.3333"),
                seller: Some(id("alexandr-wang")),
                consideration: money("14300000000.1234", "USD"),
                deal: Some(id("meta-scale-2025")),
            },
        ),
        record(
            5,
            date("2025-01-02"),
            None,
            None,
            Event::DealAnnounced {
                deal: id("d-1"),
                acquirer: id("acme"),
                target: id("widgets"),
                stake: stake("100"),
                seller: None,
                consideration: None,
            },
        ),
        record(
            6,
            date("2025-03-04"),
            text("press release"),
            text("closed early"),
            Event::DealCompleted { deal: id("d-1"), stake: Some(stake("0.0001")), consideration: money("0", "EUR") },
        ),
        record(7, date("2025-03-05"), None, None, Event::DealTerminated { deal: id("d-2"), reason: None }),
        record(
            8,
            date("2000-02-29"),
            None,
            text("secondary sale"),
            Event::StakeSold {
                seller: id("meta"),
                target: id("scale-ai"),
                stake: stake("12.5"),
                buyer: Some(id("openai")),
                consideration: money("99999999999999999999.9999", "JPY"),
            },
        ),
        record(
            9,
            date("2019-07-22"),
            None,
            None,
            Event::PartnershipFormed { partners: [id("openai"), id("microsoft")], scope: None },
        ),
        record(
            10,
            date("2025-06-13"),
            text("Sarah Friar at VivaTech"),
            None,
            Event::PartnershipContinued { partners: [id("openai"), id("scale-ai")], scope: text("AI training data") },
        ),
        record(
            11,
            date("2025-06-18"),
            text("OpenAI spokesperson"),
            text("wind-down"),
            Event::PartnershipEnded {
                partners: [id("scale-ai"), id("openai")],
                scope: text("AI training data"),
                reason: text("OpenAI is winding down its work with Scale AI"),
            },
        ),
        record(
            12,
            date("2025-06-12"),
            None,
            None,
            Event::ExecutiveAppointed {
                person: id("jason-droege"),
                company: id("scale-ai"),
                role: "CEO".into(),
                interim: true,
            },
        ),
        record(
            13,
            date("2025-07-01"),
            None,
            text("left every role"),
            Event::ExecutiveDeparted { person: id("sarah-friar"), company: id("openai"), role: None },
        ),
        record(
            14,
            date("2025-06-12"),
            text("Wang memo to staff"),
            text("remains a director"),
            Event::ExecutiveMoved {
                person: id("alexandr-wang"),
                from: RoleEnd { company: id("scale-ai"), role: text("CEO") },
                to: RoleStart { company: id("meta"), role: "Head of superintelligence effort".into(), interim: false },
            },
        ),
        record(
            15,
            None,
            text("errata"),
            None,
            Event::Retraction {
                retracts: Uuid::from_u128(0x0197_656a_0000_7000_8000_0000_0000_0004),
                reason: "most outlets report the price as $14.3B".into(),
            },
        ),
    ];
    cases.into_iter().map(|rec| (rec.event.type_name(), rec)).collect()
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1")
}

#[test]
fn every_event_type_has_a_golden_record() {
    let names: std::collections::BTreeSet<&str> = goldens().iter().map(|(name, _)| *name).collect();
    assert_eq!(names.len(), 15, "one golden record per event type: {names:?}");
}

#[test]
fn records_encode_to_the_golden_bytes() {
    assert_eq!(FORMAT_VERSION, 1, "a new format version needs its own golden directory (tests/golden/v2)");
    let dir = golden_dir();
    let mut created = Vec::new();
    let mut changed = Vec::new();
    for (name, rec) in goldens() {
        let actual = hex::encode(encode_record(&rec));
        assert!(actual.starts_with("01"), "{name}: the record starts with version byte 1");
        let path = dir.join(format!("{name}.hex"));
        match std::fs::read_to_string(&path) {
            Ok(golden) => {
                let golden = golden.trim();
                if golden != actual {
                    changed.push(format!("{name}:\n  golden {golden}\n  actual {actual}"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&dir).expect("create golden dir");
                std::fs::write(&path, format!("{actual}\n")).expect("write golden file");
                created.push(path.display().to_string());
            }
            Err(e) => panic!("read {}: {e}", path.display()),
        }
    }
    assert!(
        changed.is_empty(),
        "the version-1 byte format changed (records written by earlier releases must keep decoding; a new layout \
         needs a new FORMAT_VERSION and an upcaster, never new golden bytes):\n{}",
        changed.join("\n")
    );
    assert!(
        created.is_empty(),
        "golden files were missing and have been CREATED; review and commit them, later runs pin them:\n{}",
        created.join("\n")
    );
}

#[test]
fn golden_bytes_decode_to_the_records() {
    for (name, rec) in goldens() {
        let path = golden_dir().join(format!("{name}.hex"));
        let Ok(golden) = std::fs::read_to_string(&path) else {
            panic!("{} is missing: run `cargo test --test golden` to create it", path.display());
        };
        let golden = golden.trim();
        assert_eq!(golden, golden.to_lowercase(), "{name}: lowercase hex");
        assert!(!golden.contains(char::is_whitespace), "{name}: one line");
        let bytes = hex::decode(golden).unwrap_or_else(|e| panic!("{name}: not hex: {e}"));
        assert_eq!(decode_record(&bytes), Ok(rec.clone()), "{name}: golden bytes decode to the record");
        assert_eq!(decode_record(&encode_record(&rec)), Ok(rec), "{name}: round trip");
    }
}

#[test]
fn decode_refuses_empty_bytes() {
    assert_eq!(decode_record(&[]), Err(DecodeError::Empty));
}

#[test]
fn decode_refuses_unknown_versions_and_names_them() {
    let (_, rec) = &goldens()[3];
    let mut bytes = encode_record(rec);
    for version in [0u8, 2, 255] {
        bytes[0] = version;
        let err = decode_record(&bytes).expect_err("unknown version");
        assert_eq!(err, DecodeError::UnknownVersion(version));
        let message = err.to_string();
        assert!(message.contains(&format!("version {version}")), "message names the version: {message}");
        assert_eq!(decode_record(&[version]), Err(DecodeError::UnknownVersion(version)));
    }
}

#[test]
fn decode_refuses_truncated_records() {
    for (name, rec) in goldens() {
        let bytes = encode_record(&rec);
        for len in 1..bytes.len() {
            match decode_record(&bytes[..len]) {
                Err(DecodeError::Body(_)) => {}
                other => panic!("{name}: a record cut to {len} of {} bytes must be refused: {other:?}", bytes.len()),
            }
        }
    }
}

#[test]
fn decode_refuses_trailing_bytes() {
    for (name, rec) in goldens() {
        let mut bytes = encode_record(&rec);
        bytes.push(0);
        assert_eq!(decode_record(&bytes), Err(DecodeError::Trailing(1)), "{name}");
        bytes.extend_from_slice(&encode_record(&rec));
        assert!(matches!(decode_record(&bytes), Err(DecodeError::Trailing(_))), "{name}: two records back to back");
    }
}

/// Anyone can re-check an export with SHA-256 alone: the hashed bytes are the
/// export line without its trailing `,"hash":"…"`, chained from 32 zero bytes.
#[test]
fn export_lines_recheck_with_sha256_alone() {
    let scenario = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/scale-ai.jsonl"))
        .expect("scenario");
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open_or_create(dir.path().join("db")).expect("create ledger");
    let appended = ledger.append_text(&scenario).expect("append scenario");
    let mut export = Vec::new();
    ledger.export(&mut export).expect("export");
    let export = String::from_utf8(export).expect("utf-8 export");

    let mut prev = [0u8; 32];
    let mut count = 0;
    for (i, line) in export.lines().enumerate() {
        let value: serde_json::Value = serde_json::from_str(line).expect("export line is JSON");
        let obj = value.as_object().expect("export line is an object");
        assert_eq!(obj.keys().next_back().map(String::as_str), Some("hash"), "line {}: hash is the last field", i + 1);
        let hash = obj["hash"].as_str().expect("hash is a string");
        let suffix = format!(",\"hash\":\"{hash}\"}}");
        let body = line.strip_suffix(&suffix).unwrap_or_else(|| panic!("line {} ends with {suffix}", i + 1));
        let canonical = format!("{body}}}");

        let mut sha = Sha256::new();
        sha.update(prev);
        sha.update(canonical.as_bytes());
        let digest: [u8; 32] = sha.finalize().into();
        assert_eq!(hex::encode(digest), hash, "line {}: SHA-256(prev || line without hash)", i + 1);
        prev = digest;
        count += 1;
    }
    assert_eq!(count, appended.len(), "one export line per stored event");
    let verified = ledger.verify().expect("verify");
    assert_eq!(verified.hash, hex::encode(prev), "the head hash of verify is the last recomputed hash");
}

/// The log file of two blocks (the first two golden records, then the
/// third alone), as `journal::encode_file` writes it.
fn golden_log() -> (Vec<dealledger::journal::Block>, Vec<u8>) {
    let recs: Vec<Vec<u8>> = goldens().iter().take(3).map(|(_, rec)| encode_record(rec)).collect();
    let stamp = |n: usize| goldens()[n].1.recorded_at.nanos();
    let block = |first, count, stamp, bytes| dealledger::journal::Block { first, count, stamp, bytes };
    let blocks =
        vec![block(1, 2, stamp(0), encode_block(&recs[..2])), block(127, 1, stamp(2), encode_block(&recs[2..]))];
    // (a fixed salt: a new file gets a random one)
    let file = dealledger::journal::encode_file(&bytes16(0x5a), &blocks);
    (blocks, file)
}

#[test]
fn the_log_file_keeps_its_golden_bytes() {
    let (blocks, file) = golden_log();
    let path = golden_dir().join("log-file.hex");
    let actual = hex::encode(&file);
    assert!(actual.starts_with(&hex::encode(b"dealledger log\0\x01")), "the file header names the format, version 1");
    match std::fs::read_to_string(&path) {
        Ok(golden) => assert_eq!(
            golden.trim(),
            actual,
            "the log file's version-1 layout changed: files written by earlier releases must keep opening"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&path, format!("{actual}\n")).expect("write golden file");
            panic!("{} was missing and has been CREATED; review and commit it", path.display());
        }
        Err(e) => panic!("read {}: {e}", path.display()),
    }
    let (salt, decoded) = dealledger::journal::decode_file(&file).expect("whole frames");
    assert_eq!(salt, bytes16(0x5a));
    let back: Vec<dealledger::journal::Block> = decoded
        .into_iter()
        .map(|(f, bytes)| dealledger::journal::Block { first: f.first, count: f.count, stamp: f.stamp, bytes })
        .collect();
    assert_eq!(back, blocks);
}
