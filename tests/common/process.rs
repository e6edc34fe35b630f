//! Child processes of the real binary for the crash tests (`crash.rs`,
//! `crash_loop.rs`): run, kill with SIGKILL, reopen and verify.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

const SIGKILL: i32 = 9;

/// The binary against `db`, isolated from the caller's environment.
pub fn dealledger(db: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("dealledger"));
    cmd.env_remove("DEALLEDGER_DB")
        .env_remove("DEALLEDGER_SERVER")
        .env_remove("DEALLEDGER_TOKEN")
        .current_dir(db.parent().expect("db has a parent"))
        .arg("--db")
        .arg(db)
        .stdin(Stdio::null());
    cmd
}

pub fn run(db: &Path, args: &[&str]) -> Output {
    dealledger(db).args(args).output().expect("run dealledger")
}

pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout (head)\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).chars().take(2000).collect::<String>(),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Reopens the ledger with `verify --json`: it must pass; returns the head seq.
pub fn verify(db: &Path, context: &str) -> u64 {
    let out = run(db, &["verify", "--json"]);
    assert!(out.status.success(), "{context}: verify failed after the kill\n{}", show(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{context}: verify --json: {e}"));
    assert_eq!(v["ok"], Value::Bool(true), "{context}: {v}");
    v["last_seq"].as_u64().unwrap_or_else(|| panic!("{context}: no last_seq in {v}"))
}

/// `log | wc -l`.
pub fn log_count(db: &Path, context: &str) -> usize {
    let out = run(db, &["log"]);
    assert!(out.status.success(), "{context}: log failed\n{}", show(&out));
    out.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count()
}

/// How a killed process ended.
pub enum Ended {
    /// SIGKILL landed while it was running.
    Killed,
    /// It had already exited 0 (the kill raced its exit).
    Succeeded(Output),
}

pub fn kill(mut child: Child, context: &str) -> Ended {
    let _ = child.kill(); // an already exited child is fine: wait tells
    let out = child.wait_with_output().expect("wait for the killed child");
    if out.status.signal() == Some(SIGKILL) {
        Ended::Killed
    } else {
        assert!(out.status.success(), "{context}: the append failed on its own\n{}", show(&out));
        Ended::Succeeded(out)
    }
}
