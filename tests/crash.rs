//! Durability under SIGKILL, through the real `dealledger` binary.
//!
//! * `large_append_is_all_or_nothing_under_sigkill`: one large `append FILE`
//!   is killed at seeded delays spread over its measured duration; after each
//!   kill the reopened ledger verifies and holds either none or all of it.
//! * `acknowledged_appends_survive_sigkill`: chunked appends run one after
//!   another, each its own process; the current one is killed at a random
//!   moment; every append that exited 0 before the kill is stored, and the
//!   killed one is stored wholly or not at all (then it is re-sent: an
//!   idempotent retry must answer the same seqs either way).
//!
//! * `a_bulk_load_killed_while_its_run_is_written_or_named_is_whole_or_absent`:
//!   a bulk load into an empty ledger is killed at eleven moments from its
//!   sorted run's file appearing to its exit (while the run and the log are
//!   written, fsynced, renamed and named); the reopened ledger holds all or
//!   none of it and, holding it, answers as an unkilled one does.
//!
//! Sizes: the large append has 20,000 events in debug builds and 200,000 in
//! release builds (`DEALLEDGER_CRASH_EVENTS=N` overrides); the chunked history
//! is the first 20,000 events of the same generated stream. Every prefix of a
//! generated stream is itself valid.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::process::{dealledger, kill, log_count, run, show, verify, Ended};
use dealledger::testkit::Rng;
use dealledger::testkit::{generate, GenOptions};
use serde_json::Value;

const GEN_SEED: u64 = 20_250_612;
const CHUNK: usize = 500;
const CHUNKED_EVENTS: usize = 20_000;
const LARGE_KILLS: usize = 5;
const ROUNDS: usize = 10;

fn large_events() -> usize {
    match std::env::var("DEALLEDGER_CRASH_EVENTS") {
        Ok(v) => v.parse().expect("DEALLEDGER_CRASH_EVENTS must be a number"),
        Err(_) if cfg!(debug_assertions) => 20_000,
        Err(_) => 200_000,
    }
}

/// The generated history, shared by both tests (generated once).
fn history() -> &'static [String] {
    static HISTORY: OnceLock<Vec<String>> = OnceLock::new();
    HISTORY.get_or_init(|| {
        let n = large_events().max(CHUNKED_EVENTS);
        let t = Instant::now();
        let lines = generate(&GenOptions { events: n, seed: GEN_SEED, ..GenOptions::default() }).expect("generate");
        eprintln!("generated {n} events in {:.1?}", t.elapsed());
        lines
    })
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).expect("write events file");
}

#[test]
fn large_append_is_all_or_nothing_under_sigkill() {
    let started = Instant::now();
    let lines = &history()[..large_events()];
    let n = lines.len();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("events.jsonl");
    write_lines(&file, lines);

    // An unkilled run on its own ledger gives the window to kill in.
    let t = Instant::now();
    let out = run(&tmp.path().join("measure"), &["append", "--json", file.to_str().expect("utf-8 path")]);
    let mut full = t.elapsed();
    assert!(out.status.success(), "unkilled append failed\n{}", show(&out));
    let answers: Vec<&[u8]> = out.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    assert_eq!(answers.len(), n, "one --json answer per event");
    let last: Value = serde_json::from_slice(answers[n - 1]).expect("json answer");
    assert_eq!(last["seq"].as_u64(), Some(n as u64));
    eprintln!("unkilled append of {n} events: {full:.2?}");
    // What a whole append answers: the ledger's derived index (written as a
    // sorted run by a bulk load) must answer the same after any kill that
    // left the append stored, whichever step of indexing the kill cut short.
    let questions = tmp.path().join("questions.jsonl");
    write_lines(&questions, &ownership_questions(lines, 25));
    let answers_of = |db: &Path, context: &str| {
        let out = run(db, &["query", questions.to_str().expect("utf-8 path")]);
        assert!(out.status.success(), "{context}: query failed\n{}", show(&out));
        out.stdout
    };
    let whole = answers_of(&tmp.path().join("measure"), "the unkilled ledger");

    let mut rng = Rng::new(0x00c0_ffee);
    let (mut landed, mut landed_committed, mut finished, mut attempts) = (0, 0, 0, 0);
    let (mut stratum, mut retried) = (0, false);
    while stratum < LARGE_KILLS {
        // Stratified: one seeded delay in each fifth of [5%, 95%] of the run.
        let frac = 0.05 + 0.9 * (stratum as f64 + rng.random()) / LARGE_KILLS as f64;
        let delay = full.mul_f64(frac).max(Duration::from_millis(200));
        let db = tmp.path().join(format!("kill-{attempts}"));
        attempts += 1;
        let context = format!("kill {stratum} at {delay:.2?} ({:.0}% of {full:.2?})", frac * 100.0);
        let mut child = dealledger(&db)
            .args(["append", file.to_str().expect("utf-8 path")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn append");
        let spawned = Instant::now();
        let mut exited_after = None;
        while spawned.elapsed() < delay {
            if child.try_wait().expect("try_wait").is_some() {
                exited_after = Some(spawned.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let ended = kill(child, &context);

        let head = verify(&db, &context);
        let count = log_count(&db, &context);
        assert!(
            count == 0 || count == n,
            "{context}: the log holds {count} of the {n} events of one append: a partial append survived"
        );
        assert_eq!(head as usize, count, "{context}: verify's head seq and the log disagree");
        if count == n {
            assert!(answers_of(&db, &context) == whole, "{context}: the reopened ledger answers otherwise");
        }
        let killed = matches!(ended, Ended::Killed);
        eprintln!("{context}: {} -> {count} events stored", if killed { "killed" } else { "finished first" });
        if killed {
            landed += 1;
            if count == n {
                landed_committed += 1;
            }
        } else {
            finished += 1;
            assert_eq!(count, n, "{context}: the append exited 0 but its events are not all stored");
            // The machine is less loaded than when measured: shrink the
            // window to this run's duration and draw this fifth once more.
            full = full.min(exited_after.unwrap_or(delay));
            if !retried {
                retried = true;
                continue;
            }
        }
        retried = false;
        stratum += 1;
    }
    eprintln!(
        "large append: {landed} of {attempts} kills landed mid-append ({landed_committed} of them after the commit), \
         {finished} came after it exited; {:.1?} in all",
        started.elapsed()
    );
    assert!(landed > 0, "no kill landed before the append finished: the append is too small for this machine");
}

/// Writes the chunk files of the chunked history.
fn chunk_files(dir: &Path, lines: &[String]) -> Vec<PathBuf> {
    lines
        .chunks(CHUNK)
        .enumerate()
        .map(|(k, chunk)| {
            let path = dir.join(format!("chunk-{k:03}.jsonl"));
            write_lines(&path, chunk);
            path
        })
        .collect()
}

/// The kill aimed at the end of a bulk load: a run file is being written,
/// fsynced, renamed or named, the log's write is finishing beside it.
#[test]
fn a_bulk_load_killed_while_its_run_is_written_or_named_is_whole_or_absent() {
    let lines = &history()[..CHUNKED_EVENTS / 2];
    let n = lines.len();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (file, questions) = (tmp.path().join("events.jsonl"), tmp.path().join("questions.jsonl"));
    write_lines(&file, lines);
    write_lines(&questions, &ownership_questions(lines, 25));
    let answers_of = |db: &Path, context: &str| {
        let out = run(db, &["query", questions.to_str().expect("utf-8 path")]);
        assert!(out.status.success(), "{context}: query failed\n{}", show(&out));
        out.stdout
    };
    let spawn = |db: &Path| {
        dealledger(db)
            .args(["append", file.to_str().expect("utf-8 path")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn append")
    };
    // Waits until a run file appears in the ledger's index (or the append ends).
    let await_run = |db: &Path, child: &mut std::process::Child| {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) && child.try_wait().expect("try_wait").is_none() {
            let entries = std::fs::read_dir(db.join("index")).into_iter().flatten().filter_map(Result::ok);
            if entries.into_iter().any(|e| e.file_name().to_string_lossy().starts_with("run-")) {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    // An unkilled load gives the answers and the time from its run's first
    // appearance to its exit: the window the kills are spread over.
    let measure = tmp.path().join("measure");
    let mut child = spawn(&measure);
    await_run(&measure, &mut child);
    let seen = Instant::now();
    let out = child.wait_with_output().expect("wait");
    let window = seen.elapsed();
    assert!(out.status.success(), "unkilled load failed\n{}", show(&out));
    let whole = answers_of(&measure, "the unkilled ledger");
    let (mut stored, mut absent) = (0, 0);
    for attempt in 0..=10 {
        let db = tmp.path().join(format!("kill-{attempt}"));
        let wait = window.mul_f64(f64::from(attempt) / 10.0);
        let context = format!("kill {wait:.2?} after a run file appeared ({attempt}/10 of {window:.2?})");
        let mut child = spawn(&db);
        await_run(&db, &mut child);
        std::thread::sleep(wait);
        kill(child, &context);
        let count = log_count(&db, &context);
        assert!(count == 0 || count == n, "{context}: {count} of {n} events stored");
        assert_eq!(verify(&db, &context) as usize, count, "{context}: verify's head seq and the log disagree");
        if count == n {
            stored += 1;
            assert!(answers_of(&db, &context) == whole, "{context}: the reopened ledger answers otherwise");
        } else {
            absent += 1;
        }
        eprintln!("{context}: {count} events stored");
    }
    eprintln!("bulk load killed around its run: {stored} stored whole, {absent} absent");
}

/// Batch-query lines asking the ownership and holdings of the first `count`
/// companies registered in `lines`, as of a late date.
fn ownership_questions(lines: &[String], count: usize) -> Vec<String> {
    let companies = lines.iter().filter_map(|line| {
        let event: Value = serde_json::from_str(line).ok()?;
        (event["type"] == "company_registered").then(|| event["company"].as_str().map(str::to_owned)).flatten()
    });
    companies
        .take(count)
        .flat_map(|c| {
            ["ownership", "holdings"].map(|cmd| format!(r#"{{"cmd":"{cmd}","id":"{c}","as_of":"2030-01-01"}}"#))
        })
        .collect()
}

/// Checks the `--json` answers of an acknowledged append of `chunk`: one per
/// event, seqs `first..first + len` in order, the submitted ids.
fn check_answers(out: &Output, chunk: &[String], first: u64, context: &str) {
    let answers: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{context}: answer {l:?}: {e}")))
        .collect();
    assert_eq!(answers.len(), chunk.len(), "{context}: one answer per event");
    for (i, (answer, line)) in answers.iter().zip(chunk).enumerate() {
        let event: Value = serde_json::from_str(line).expect("generated line");
        assert_eq!(answer["seq"].as_u64(), Some(first + i as u64), "{context}: answer {i}: {answer}");
        assert_eq!(answer["id"], event["id"], "{context}: answer {i}");
    }
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let started = Instant::now();
    let lines = &history()[..CHUNKED_EVENTS];
    let tmp = tempfile::tempdir().expect("tempdir");
    let chunks = chunk_files(tmp.path(), lines);
    let db = tmp.path().join("ledger");
    let spawn = |k: usize| {
        dealledger(&db)
            .args(["append", "--json", chunks[k].to_str().expect("utf-8 path")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn append")
    };
    let chunk_lines = |k: usize| &lines[k * CHUNK..((k + 1) * CHUNK).min(lines.len())];

    // The first chunk, unkilled, gives a typical append duration.
    let t = Instant::now();
    let out = spawn(0).wait_with_output().expect("wait");
    let mut typical = t.elapsed();
    assert!(out.status.success(), "first append\n{}", show(&out));
    check_answers(&out, chunk_lines(0), 1, "chunk 0");
    // `acked`: events of appends that exited 0; `next`: the next chunk to send
    // (a killed chunk is sent again: stored or not, it must answer the same seqs).
    let (mut acked, mut next) = (CHUNK as u64, 1usize);

    let mut rng = Rng::new(0x5eed_0b0b);
    let (mut landed, mut landed_committed, mut rounds) = (0, 0, 0);
    while rounds < ROUNDS && next < chunks.len() {
        rounds += 1;
        // Somewhere in the next one to three appends.
        let delay = typical.mul_f64(0.5 + 2.0 * rng.random());
        let deadline = Instant::now() + delay;
        let mut killed: Option<usize> = None;
        // Appends one after another until the deadline, then kill the current one.
        while next < chunks.len() {
            let k = next;
            let context = format!("round {rounds}, chunk {k}");
            let t = Instant::now();
            let mut child = spawn(k);
            let exited = loop {
                if child.try_wait().expect("try_wait").is_some() {
                    break true;
                }
                if Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(2));
            };
            let out = if exited {
                child.wait_with_output().expect("wait")
            } else {
                match kill(child, &context) {
                    Ended::Killed => {
                        killed = Some(k);
                        break;
                    }
                    Ended::Succeeded(out) => out,
                }
            };
            assert!(out.status.success(), "{context}: append failed\n{}", show(&out));
            check_answers(&out, chunk_lines(k), acked + 1, &context);
            typical = t.elapsed();
            acked += chunk_lines(k).len() as u64;
            next += 1;
            if !exited {
                break; // the kill came just after it exited
            }
        }

        // Reopen: the chain verifies and nothing acknowledged is lost.
        let context = format!("round {rounds} (killed chunk {killed:?}, acknowledged {acked})");
        let head = verify(&db, &context);
        match killed {
            Some(k) => {
                landed += 1;
                let doubt = chunk_lines(k).len() as u64;
                assert!(
                    head == acked || head == acked + doubt,
                    "{context}: {head} events stored; expected the {acked} acknowledged, or those plus the killed \
                     chunk's {doubt}"
                );
                if head == acked + doubt {
                    landed_committed += 1;
                }
                eprintln!("{context}: killed after {delay:.2?}; {head} stored");
            }
            None => assert_eq!(head, acked, "{context}: stored count differs from the acknowledged total"),
        }
    }
    let head = verify(&db, "final");
    assert!(head == acked || head == acked + CHUNK as u64, "final: {head} stored, {acked} acknowledged");
    assert_eq!(log_count(&db, "final") as u64, head, "final: log and verify disagree");
    eprintln!(
        "chunked appends: {rounds} rounds, {landed} kills landed mid-append ({landed_committed} had committed), \
         {acked} events acknowledged; {:.1?} in all",
        started.elapsed()
    );
    assert!(landed > 0, "no kill landed while an append was running");
}
