//! Crash loop: `dealledger append` of a batch, killed with SIGKILL at a
//! seeded random moment, then reopened and verified, over and over on one
//! ledger (`CRASH_LOOP_ROUNDS`, default 60).
//!
//! After every kill: `verify` passes; every append that was acknowledged
//! (exited 0 before the kill) is stored; the killed batch is stored wholly or
//! not at all (the head seq is the acknowledged total, or that plus the whole
//! batch); a batch that was not stored is sent again in the next round, so
//! that the ledger always holds a prefix of one generated history. At the
//! end, the log holds exactly that prefix, id by id, in order.
//!
//! Batch sizes vary from 1 to 400 events, with every eighth batch large
//! (2,000 to 4,000 events); the kill lands anywhere in [0, 1.3 x] the batch's
//! expected duration, learned from the batches that finished.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::process::{dealledger, kill, log_count, run, show, verify, Ended};
use dealledger::testkit::{generate, GenOptions, Rng};
use serde_json::Value;

fn rounds() -> usize {
    std::env::var("CRASH_LOOP_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60)
}

#[test]
fn acknowledged_appends_survive_a_kill_loop_and_none_is_partial() {
    let started = Instant::now();
    let rounds = rounds();
    let mut rng = Rng::new(0x0c4a_5100);
    // Enough history for every round to be a fresh batch.
    let history =
        generate(&GenOptions { events: 12_000 + rounds * 600, seed: 51, ..GenOptions::default() }).expect("generate");
    let ids: Vec<String> = history
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("json")["id"].as_str().expect("generated ids").to_owned())
        .collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("ledger");
    let file = tmp.path().join("batch.jsonl");

    // `acked`: events stored by appends known to have finished; the batch
    // in flight is history[acked..acked + len].
    let (mut acked, mut pending): (usize, Option<usize>) = (0, None);
    // Expected time per process and per event: measured on a scratch ledger
    // (10 events, then 2,000), then learned again from batches that finish.
    let calibrate = |lines: &[String], name: &str| {
        let path = tmp.path().join(format!("{name}.jsonl"));
        std::fs::write(&path, lines.join("\n")).expect("write");
        let t = Instant::now();
        let out = run(&tmp.path().join("calibration"), &["append", path.to_str().expect("utf-8 path")]);
        assert!(out.status.success(), "calibration append\n{}", show(&out));
        t.elapsed()
    };
    let mut per_run = calibrate(&history[..10], "small");
    let mut per_event =
        (calibrate(&history[10..2_010], "large").saturating_sub(per_run) / 2_000).max(Duration::from_micros(20));
    eprintln!("calibration: {per_run:.2?} a process, {per_event:.2?} an event");
    let (mut killed, mut killed_stored, mut finished) = (0, 0, 0);
    for round in 0..rounds {
        let len = pending.unwrap_or_else(|| {
            if round % 8 == 7 {
                2_000 + rng.below(2_001) as usize
            } else {
                1 + rng.below(400) as usize
            }
        });
        let len = len.min(history.len() - acked);
        assert!(len > 0, "the generated history is too short for {rounds} rounds");
        let mut text = history[acked..acked + len].join("\n");
        text.push('\n');
        std::fs::write(&file, text).expect("write batch");
        let expected = per_run + per_event * len as u32;
        let delay = expected.mul_f64(1.3 * rng.random());
        let context = format!("round {round}: batch of {len} after {acked} stored, kill at {delay:.2?}");

        let t = Instant::now();
        let mut child = dealledger(&db)
            .args(["append", file.to_str().expect("utf-8 path")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn append");
        let exited = loop {
            if child.try_wait().expect("try_wait").is_some() {
                break true;
            }
            if t.elapsed() >= delay {
                break false;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let ack = if exited {
            let out = child.wait_with_output().expect("wait");
            assert!(out.status.success(), "{context}: the append failed on its own\n{}", show(&out));
            true
        } else {
            matches!(kill(child, &context), Ended::Succeeded(_))
        };
        let took = t.elapsed();

        // Reopen: the chain verifies, nothing acknowledged is lost, nothing is partial.
        let head = verify(&db, &context) as usize;
        if ack {
            finished += 1;
            assert_eq!(head, acked + len, "{context}: acknowledged, so all of it is stored");
            // Learn the pace (a finished run took at least this long).
            per_event = (took.saturating_sub(per_run) / len as u32).max(Duration::from_micros(20));
            if len < 50 {
                per_run = took;
            }
        } else {
            killed += 1;
            assert!(
                head == acked || head == acked + len,
                "{context}: {head} events stored: a partial append (expected {acked} or {})",
                acked + len
            );
            if head == acked + len {
                killed_stored += 1;
            }
        }
        if head == acked + len {
            acked = head;
            pending = None;
        } else {
            pending = Some(len); // not stored: send the same batch again
        }
    }

    // The log is exactly the acknowledged prefix of the history, id by id.
    let out = run(&db, &["log"]);
    assert!(out.status.success(), "final log\n{}", show(&out));
    let stored: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("log line")["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(stored.len(), acked, "final: log and the acknowledged count disagree");
    assert_eq!(log_count(&db, "final"), acked);
    assert!(stored == ids[..acked], "final: the log is not the history's prefix in order");
    eprintln!(
        "{rounds} rounds: {killed} killed mid-append ({killed_stored} of them had committed), {finished} finished \
         first; {acked} events stored; {:.1?}",
        started.elapsed()
    );
    assert!(killed > 0, "no kill of {rounds} landed mid-append: the kill window is off");
}
