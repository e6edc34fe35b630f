//! Reopening, re-indexing and locking, through the library.
//!
//! * The scenario's answers are identical after the ledger is dropped and
//!   reopened (queries, `log`, `log --entity`, `history`, `verify`, `export`).
//! * `reindex()` drops the derived indexes and rebuilds them from the log:
//!   every answer of 200 random entity/date pairs on a 5,000-event generated
//!   history is the same before, after, after a further reopen, and after
//!   the index directory is deleted outright (the open rebuilds it), and
//!   after its newest snapshot is garbled (sled reports corruption: the open
//!   makes the index anew).
//! * A second open of a ledger already open (in this process, or in another
//!   process) fails with `Error::Locked`, and the first keeps working.
//! * A query on a missing path gets `Error::NoLedger` and creates nothing.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dealledger::testkit::Rng;
use dealledger::testkit::{generate, GenOptions};
use dealledger::{At, Date, Error, KnownAt, Ledger, QueryKind};
use serde_json::Value;

const KINDS: [QueryKind; 5] =
    [QueryKind::Ownership, QueryKind::Holdings, QueryKind::Partnerships, QueryKind::Executives, QueryKind::Career];

fn scenario() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/scale-ai.jsonl"))
        .expect("scenario")
}

fn date(text: &str) -> Date {
    Date::parse(text).expect("date")
}

/// Reopens `path` after a `Ledger` on it was dropped in this process, waiting
/// out sled's delayed lock release (the bug pinned by
/// `reopen_right_after_drop_is_not_locked_out`) so that the other tests check
/// their own concern.
fn reopen(path: &Path) -> Ledger {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Ledger::open(path) {
            Err(Error::Locked(_)) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            other => return other.unwrap_or_else(|e| panic!("reopen {}: {e}", path.display())),
        }
    }
}

/// One query: kind, id, coordinates.
type Ask = (QueryKind, String, At);

/// Every answer (or error text) of `asks`, plus the `log` (whole and per
/// entity), each entity's `history`, `verify` and `export`.
fn snapshot(ledger: &Ledger, asks: &[Ask], entities: &BTreeSet<String>) -> Vec<(String, Result<Value, String>)> {
    let mut out = Vec::with_capacity(asks.len() + 3 * entities.len() + 3);
    for (kind, id, at) in asks {
        let key = format!("{kind:?} {id} as of {} known at {:?}", at.as_of, at.known_at);
        out.push((key, ledger.answer(*kind, id, *at).map_err(|e| e.to_string())));
    }
    let log = |entity: Option<&str>| {
        let mut lines = Vec::new();
        ledger
            .log(entity, |obj| {
                lines.push(Value::Object(obj));
                Ok(())
            })
            .map(|()| Value::Array(lines))
            .map_err(|e| e.to_string())
    };
    out.push(("log".into(), log(None)));
    for id in entities {
        out.push((format!("log --entity {id}"), log(Some(id))));
        let history = ledger
            .history(id, KnownAt::Latest, None, None)
            .map(|lines| serde_json::to_value(lines).expect("history json"))
            .map_err(|e| e.to_string());
        out.push((format!("history {id}"), history));
    }
    let verified = ledger.verify().map(|v| serde_json::json!([v.last_seq, v.hash])).map_err(|e| e.to_string());
    out.push(("verify".into(), verified));
    let mut export = Vec::new();
    let exported = ledger.export(&mut export).map_err(|e| e.to_string());
    out.push(("export".into(), exported.map(|_| Value::String(String::from_utf8(export).expect("utf-8")))));
    out
}

fn assert_same(before: &[(String, Result<Value, String>)], after: &[(String, Result<Value, String>)], what: &str) {
    assert_eq!(before.len(), after.len());
    for ((key, a), (_, b)) in before.iter().zip(after) {
        assert_eq!(a, b, "{what}: `{key}` changed");
    }
}

/// The registered entity ids of JSON Lines events.
fn entities_of(lines: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in lines {
        let v: Value = serde_json::from_str(line).expect("event json");
        for key in ["company", "person"] {
            if matches!(v["type"].as_str(), Some("company_registered" | "person_registered")) {
                if let Some(id) = v[key].as_str() {
                    out.insert(id.to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn answers_survive_drop_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let text = scenario();
    let entities = entities_of(&text.lines().collect::<Vec<_>>());
    assert_eq!(entities.len(), 6, "{entities:?}");

    let dates = ["2004-02-04", "2016-06-01", "2021-12-31", "2025-06-11", "2025-06-12", "2025-06-18", "2025-07-01"];
    let known = [KnownAt::Latest, KnownAt::Seq(0), KnownAt::Seq(11), KnownAt::Seq(16), KnownAt::Seq(17)];
    let mut asks = Vec::new();
    for id in &entities {
        for kind in KINDS {
            for d in dates {
                for known_at in known {
                    asks.push((kind, id.clone(), At { as_of: date(d), known_at }));
                }
            }
        }
    }

    let ledger = Ledger::open_or_create(&path).expect("create");
    let appended = ledger.append_text(&text).expect("append scenario");
    assert_eq!(appended.len(), 18);
    let before = snapshot(&ledger, &asks, &entities);
    let answered = before.iter().filter(|(_, r)| r.is_ok()).count();
    assert!(answered > asks.len() / 4, "a good share of the scenario queries answer ({answered})");
    drop(ledger);

    let reopened = reopen(&path);
    assert_eq!(reopened.last_seq(), 18);
    assert_same(&before, &snapshot(&reopened, &asks, &entities), "after drop and reopen");

    // The reopened ledger appends on top of the old chain.
    let more = reopened
        .append_text(r#"{"type":"company_renamed","effective":"2025-08-01","company":"scale-ai","name":"Scale"}"#)
        .expect("append after reopen");
    assert_eq!(more[0].seq, 19);
    assert_eq!(reopened.verify().expect("verify").last_seq, 19);
}

#[test]
fn reindex_rebuilds_the_same_answers() {
    let lines = generate(&GenOptions { events: 5_000, seed: 5_000, ..GenOptions::default() }).expect("generate");
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let entities: Vec<String> = entities_of(&refs).into_iter().collect();
    let days: Vec<i32> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok()?["effective"].as_str().map(|d| date(d).days()))
        .collect();
    let (lo, hi) = (days.iter().min().expect("dates") - 30, days.iter().max().expect("dates") + 30);

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let ledger = Ledger::open_or_create(&path).expect("create");
    ledger.append_text(&lines.join("\n")).expect("append generated history");
    let head = ledger.last_seq();
    assert_eq!(head, 5_000);

    let mut rng = Rng::new(0x0005_eed5);
    let mut asks = Vec::new();
    let mut sampled = BTreeSet::new();
    for i in 0..200 {
        let id = entities[rng.below(entities.len() as u64) as usize].clone();
        let as_of = Date::from_days(lo + rng.below((hi - lo) as u64 + 1) as i32).expect("date in range");
        let known_at = if i % 2 == 0 { KnownAt::Latest } else { KnownAt::Seq(1 + rng.below(head)) };
        for kind in KINDS {
            asks.push((kind, id.clone(), At { as_of, known_at }));
        }
        if i % 10 == 0 {
            sampled.insert(id); // log --entity and history for 20 of them
        }
    }

    let before = snapshot(&ledger, &asks, &sampled);
    let answered = before.iter().filter(|(_, r)| r.is_ok()).count();
    eprintln!("{answered} of {} answers are not errors", before.len());
    assert!(answered > asks.len() / 4, "the sample asks mostly meaningful questions ({answered} answered)");

    assert_eq!(ledger.reindex().expect("reindex"), head);
    assert_eq!(ledger.last_seq(), head);
    assert_same(&before, &snapshot(&ledger, &asks, &sampled), "after reindex");

    drop(ledger);
    let reopened = reopen(&path);
    assert_same(&before, &snapshot(&reopened, &asks, &sampled), "after reindex and reopen");

    // Deleting the derived indexes outright: the next open rebuilds them from the log.
    drop(reopened);
    std::fs::remove_dir_all(path.join("index")).expect("delete the derived indexes");
    let rebuilt = reopen(&path);
    assert_eq!(rebuilt.last_seq(), head);
    assert_same(&before, &snapshot(&rebuilt, &asks, &sampled), "after deleting the index directory");
    assert_eq!(rebuilt.verify().expect("verify").last_seq, head);

    // An index database sled finds corrupted (here: its newest snapshot
    // file fails its checksum) is made anew and rebuilt from the log.
    drop(rebuilt);
    std::fs::write(path.join("index").join("snap.FFFFFFFFFFFFFFFF"), [0x5a_u8; 64]).expect("garble");
    let rebuilt = reopen(&path);
    assert_eq!(rebuilt.last_seq(), head);
    assert_same(&before, &snapshot(&rebuilt, &asks, &sampled), "after garbling the index's snapshot");
    assert_eq!(rebuilt.verify().expect("verify").last_seq, head);
}

const ONE_COMPANY: &str =
    r#"{"type":"company_registered","effective":"2016-06-01","company":"scale-ai","name":"Scale AI"}"#;

fn is_locked(result: Result<Ledger, Error>, path: &Path) -> bool {
    match result {
        Err(Error::Locked(p)) => {
            assert_eq!(p, path, "the Locked error names the ledger");
            true
        }
        Err(other) => panic!("expected Error::Locked, got {other:?}: {other}"),
        Ok(_) => false,
    }
}

#[test]
fn a_second_open_in_this_process_is_locked_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let first = Ledger::open_or_create(&path).expect("create");
    first.append_text(ONE_COMPANY).expect("append");

    assert!(is_locked(Ledger::open(&path), &path), "a second Ledger::open of an open ledger must fail");
    assert!(is_locked(Ledger::open_or_create(&path), &path), "a second open_or_create must fail");
    let message = Ledger::open(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("in use"), "a clear message: {message}");

    // The first keeps working.
    first
        .append_text(r#"{"type":"company_registered","effective":"2004-02-04","company":"meta","name":"Meta"}"#)
        .expect("append after the refused open");
    assert_eq!(first.ownership("scale-ai", At::date(date("2025-01-01"))).expect("query").company.as_str(), "scale-ai");
    assert_eq!(first.verify().expect("verify").last_seq, 2);

    drop(first);
    let again = reopen(&path);
    assert_eq!(again.last_seq(), 2);
}

/// The binary against `db`, run from the first existing ancestor of `db`.
fn dealledger(db: &Path) -> Command {
    let cwd = db.ancestors().find(|p| p.is_dir()).expect("an existing ancestor");
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("dealledger"));
    cmd.env_remove("DEALLEDGER_DB")
        .env_remove("DEALLEDGER_SERVER")
        .env_remove("DEALLEDGER_TOKEN")
        .current_dir(cwd)
        .arg("--db")
        .arg(db);
    cmd
}

#[test]
fn another_process_is_locked_out_while_this_one_holds_the_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let first = Ledger::open_or_create(&path).expect("create");
    first.append_text(ONE_COMPANY).expect("append");

    for args in [&["verify"][..], &["log"], &["ownership", "scale-ai", "--json"]] {
        let out = dealledger(&path).args(args).stdin(Stdio::null()).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} while the ledger is open elsewhere: {stderr}");
        assert!(stderr.contains("in use"), "{args:?}: a clear error: {stderr}");
    }
    let out = dealledger(&path)
        .args(["append", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().expect("stdin").write_all(
                br#"{"type":"company_registered","effective":"2004-02-04","company":"meta","name":"Meta"}"#,
            )?;
            child.wait_with_output()
        })
        .expect("run append");
    assert_eq!(out.status.code(), Some(1), "append while locked: {}", String::from_utf8_lossy(&out.stderr));

    // The first keeps working, and nothing of the refused append is stored.
    assert_eq!(first.last_seq(), 1);
    first
        .append_text(r#"{"type":"company_registered","effective":"2015-12-11","company":"openai","name":"OpenAI"}"#)
        .expect("append");
    assert_eq!(first.verify().expect("verify").last_seq, 2);
    drop(first);
    let out = dealledger(&path).args(["verify"]).output().expect("run");
    assert!(out.status.success(), "verify after the first closed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn this_process_is_locked_out_while_another_holds_the_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    Ledger::open_or_create(&path).expect("create").append_text(ONE_COMPANY).expect("append");

    // `query` opens the ledger, then reads queries from stdin as they come:
    // with stdin left open it holds the ledger. Enough queries to overflow its
    // output buffer prove it has the ledger open.
    let mut child = dealledger(&path)
        .arg("query")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn query");
    let mut stdin = child.stdin.take().expect("stdin");
    let ask = "{\"cmd\":\"ownership\",\"id\":\"scale-ai\",\"as_of\":\"2025-01-01\"}\n".repeat(200);
    stdin.write_all(ask.as_bytes()).expect("write queries");
    stdin.flush().expect("flush");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first_answer = String::new();
    stdout.read_line(&mut first_answer).expect("read an answer");
    assert!(first_answer.contains("\"company\":\"scale-ai\""), "answer: {first_answer}");

    assert!(is_locked(Ledger::open(&path), &path), "Ledger::open while another process holds the ledger");

    drop(stdin);
    let rest: Vec<String> = stdout.lines().map(|l| l.expect("line")).collect();
    let status = child.wait().expect("wait");
    assert!(status.success(), "the holder keeps working: {status:?}");
    assert_eq!(rest.len() + 1, 200, "every query answered");
    assert!(rest.iter().all(|l| l.contains("\"company\":\"scale-ai\"")), "no query failed");
    assert_eq!(Ledger::open(&path).expect("open once the holder exited").last_seq(), 1);
}

#[test]
fn a_query_on_a_missing_path_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    for path in [dir.path().join("missing"), dir.path().join("a/b/c")] {
        match Ledger::open(&path) {
            Err(Error::NoLedger(p)) => assert_eq!(p, path),
            Err(other) => panic!("expected Error::NoLedger, got {other:?}"),
            Ok(_) => panic!("Ledger::open created a ledger at {}", path.display()),
        }
        assert!(!path.exists(), "Ledger::open created {}", path.display());

        let out = dealledger(&path).args(["ownership", "scale-ai", "--json"]).output().expect("run");
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no ledger"), "{out:?}");
        assert!(!path.exists(), "the ownership command created {}", path.display());
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("read dir").count(), 0, "nothing created beside");
}

/// Dropping a `Ledger` must release it: an immediate reopen in the same
/// process must not be refused as `Locked`. (sled 0.34 releases its file lock
/// from a background thread after `Db` is dropped: spacejam/sled#1234.)
#[test]
fn reopen_right_after_drop_is_not_locked_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    Ledger::open_or_create(&path).expect("create").append_text(ONE_COMPANY).expect("append");
    let mut refused = Vec::new();
    for round in 0..100 {
        match Ledger::open(&path) {
            Ok(ledger) => {
                let name = format!("c-{round}");
                let event = format!(
                    r#"{{"type":"company_registered","effective":"2020-01-01","company":"{name}","name":"{name}"}}"#
                );
                ledger.append_text(&event).expect("append");
            }
            Err(Error::Locked(_)) => {
                refused.push(round);
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(other) => panic!("round {round}: {other}"),
        }
    }
    assert!(
        refused.is_empty(),
        "Ledger::open right after dropping the previous Ledger was refused as Locked in rounds {refused:?}"
    );
}

#[test]
fn the_chain_continues_across_refusals_conflicts_and_reopens() {
    // The writer keeps the log's tail in memory between appends: a refused
    // append, a seq conflict and a reopen must all leave it right.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let company = |slug: &str| {
        format!(r#"{{"type":"company_registered","effective":"2020-01-01","company":"{slug}","name":"{slug}"}}"#)
    };
    {
        let ledger = Ledger::open_or_create(&path).expect("open");
        ledger.append_text(&company("alpha")).expect("append");
        assert!(matches!(ledger.append_text(&company("alpha")), Err(Error::Refused { .. })));
        let items = dealledger::parse_input(&company("beta")).expect("parse");
        assert!(matches!(ledger.append_checked(items, Some(7), &|_| {}), Err(Error::SeqConflict { .. })));
        ledger.append_text(&company("beta")).expect("append after a refusal and a conflict");
    }
    let ledger = reopen(&path);
    ledger.append_text(&company("gamma")).expect("append after reopen");
    assert_eq!(ledger.verify().expect("the chain is whole").last_seq, 3);
    let mut seqs = Vec::new();
    ledger
        .log(None, |line| {
            seqs.push(line["seq"].as_u64().unwrap_or(0));
            Ok(())
        })
        .expect("log");
    assert_eq!(seqs, [1, 2, 3]);
}
