//! Shared helpers for the CLI conformance tests: a throwaway ledger in a
//! temporary directory, the real `dealledger` binary run against it, JSON
//! parsing of its output, and the answer comparison of the scenario checker
//! (`check/compare.py`) ported to Rust.
//!
//! Nothing here reads outside the crate: data files come from
//! `CARGO_MANIFEST_DIR`.

#![allow(dead_code)]

pub mod damage;
pub mod process;

use assert_cmd::Command;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

/// The output of one run of the binary.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Panics unless the exit code is `code`, showing both streams.
    pub fn expect_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The non-empty lines of stdout, each parsed as JSON.
    pub fn json_lines(&self) -> Vec<Value> {
        parse_json_lines(&self.stdout)
    }
}

pub fn parse_json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect()
}

/// Path of a file shipped with the crate.
pub fn data_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn read_data(rel: &str) -> String {
    std::fs::read_to_string(data_path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// The binary, isolated from the caller's environment (no ledger, no
/// server, no token from the environment) and run from a scratch directory
/// so that the `./dealledger.db` default can never touch the project.
pub fn bin(cwd: &Path) -> Command {
    let mut cmd = Command::cargo_bin("dealledger").expect("binary dealledger");
    cmd.env_remove("DEALLEDGER_DB")
        .env_remove("DEALLEDGER_SERVER")
        .env_remove("DEALLEDGER_TOKEN")
        .current_dir(cwd)
        .timeout(Duration::from_secs(60));
    cmd
}

pub fn run_cmd(cmd: &mut Command, stdin: &str) -> Out {
    let out = cmd.write_stdin(stdin.to_string()).output().expect("spawn dealledger");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A ledger in its own temporary directory: `<tmp>/db`.
pub struct Ledger {
    tmp: TempDir,
    pub db: PathBuf,
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

impl Ledger {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = tmp.path().join("db");
        Ledger { tmp, db }
    }

    /// The temporary directory holding the ledger (for scratch files).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// `dealledger --db <dir>/db`, ready for more arguments.
    pub fn cmd(&self) -> Command {
        let mut cmd = bin(self.tmp.path());
        cmd.arg("--db").arg(&self.db);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Out {
        run_cmd(self.cmd().args(args), "")
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Out {
        run_cmd(self.cmd().args(args), stdin)
    }

    /// Runs and asserts exit 0.
    pub fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        out.expect_code(0, &args.join(" "));
        out
    }

    /// Runs and asserts exit 1 (a refused or failed operation).
    pub fn fail(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        out.expect_code(1, &args.join(" "));
        out
    }

    /// `append --json` of `input` on stdin; asserts success and returns the
    /// `{"seq", "id"}` lines.
    pub fn append(&self, input: &str) -> Vec<Value> {
        let out = self.run_stdin(&["append", "--json"], input);
        out.expect_code(0, &format!("append of\n{input}"));
        let lines = out.json_lines();
        for l in &lines {
            assert!(l["seq"].is_u64(), "append --json line without seq: {l}");
            assert!(l["id"].is_string(), "append --json line without id: {l}");
        }
        lines
    }

    /// `append --json` of events given as JSON values, one per line.
    pub fn append_events(&self, events: &[Value]) -> Vec<Value> {
        self.append(&jsonl(events))
    }

    /// Appends and returns the seqs assigned.
    pub fn append_seqs(&self, events: &[Value]) -> Vec<u64> {
        seqs(&self.append_events(events))
    }

    /// A query with `--json`: one JSON value on stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a: Vec<&str> = args.to_vec();
        a.push("--json");
        let out = self.ok(&a);
        serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("{}: stdout is not one JSON value ({e}):\n{}", a.join(" "), out.stdout))
    }

    /// A command with `--json` that prints JSON Lines (history).
    pub fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        let mut a: Vec<&str> = args.to_vec();
        a.push("--json");
        self.ok(&a).json_lines()
    }

    /// `log` (with extra args), parsed.
    pub fn log_args(&self, args: &[&str]) -> Vec<Value> {
        let mut a = vec!["log"];
        a.extend_from_slice(args);
        self.ok(&a).json_lines()
    }

    pub fn log(&self) -> Vec<Value> {
        self.log_args(&[])
    }

    /// Number of stored events: the lines of `log`; 0 when the ledger does
    /// not exist at all.
    pub fn count(&self) -> usize {
        if !self.db.exists() {
            return 0;
        }
        self.log().len()
    }

    pub fn verify_ok(&self) -> Out {
        self.ok(&["verify"])
    }

    /// An append that must be refused: exit 1, `needle` in stderr, nothing
    /// stored (log count unchanged) and the chain still verifies.
    /// Returns stderr.
    pub fn refuse(&self, input: &str, needle: &str) -> String {
        let before = self.count();
        let out = self.run_stdin(&["append", "--json"], input);
        out.expect_code(1, &format!("append (should be refused) of\n{input}"));
        assert!(out.stderr.contains(needle), "stderr should contain {needle:?}, got:\n{}\ninput:\n{input}", out.stderr);
        assert_eq!(self.count(), before, "a refused append stored something");
        if before > 0 {
            self.verify_ok();
        }
        out.stderr
    }

    pub fn refuse_events(&self, events: &[Value], needle: &str) -> String {
        self.refuse(&jsonl(events), needle)
    }

    /// The scenario ledger: examples/data/scale-ai.jsonl appended in one
    /// call with `append FILE --json`; asserts seqs 1..=18.
    pub fn scenario() -> Self {
        let l = Ledger::new();
        let path = data_path("examples/data/scale-ai.jsonl");
        let out = l.run(&["append", path.to_str().unwrap(), "--json"]);
        out.expect_code(0, "append scale-ai.jsonl");
        let got = seqs(&out.json_lines());
        assert_eq!(got, (1..=18).collect::<Vec<u64>>(), "scenario seqs");
        l
    }
}

/// Events as JSON Lines (one compact object per line, trailing newline).
pub fn jsonl(events: &[Value]) -> String {
    let mut s = String::new();
    for e in events {
        s.push_str(&serde_json::to_string(e).unwrap());
        s.push('\n');
    }
    s
}

/// The `seq` field of each value.
pub fn seqs(values: &[Value]) -> Vec<u64> {
    values.iter().map(|v| v["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {v}"))).collect()
}

/// `compare.py`'s `same`: every key of `expected` is in `got` with an equal
/// value; numbers within 1e-9; lists equal in length and order; extra keys
/// in `got` allowed.
pub fn same(expected: &Value, got: &Value) -> bool {
    match (expected, got) {
        (Value::Bool(e), Value::Bool(g)) => e == g,
        (Value::Bool(_), _) | (_, Value::Bool(_)) => false,
        (Value::Number(e), Value::Number(g)) => (e.as_f64().unwrap() - g.as_f64().unwrap()).abs() < 1e-9,
        (Value::Object(e), Value::Object(g)) => e.iter().all(|(k, v)| g.get(k).is_some_and(|gv| same(v, gv))),
        (Value::Object(_), _) => false,
        (Value::Array(e), Value::Array(g)) => e.len() == g.len() && e.iter().zip(g).all(|(a, b)| same(a, b)),
        (Value::Array(_), _) => false,
        (e, g) => e == g,
    }
}

/// `compare.py`'s line check: an expected `{"error": …}` needs an `error`
/// key in the answer; otherwise `same`.
pub fn answer_matches(expected: &Value, got: &Value) -> bool {
    if expected.get("error").is_some() && got.is_object() {
        return got.get("error").is_some();
    }
    same(expected, got)
}

#[track_caller]
pub fn assert_match(expected: &Value, got: &Value) {
    assert!(answer_matches(expected, got), "answer does not match\n  want {expected}\n  got  {got}");
}

// ---- event builders (all dates are far in the past, so that the default
// `--as-of` of today sees everything) ----

pub fn reg_co(id: &str, date: &str) -> Value {
    json!({"type": "company_registered", "effective": date, "company": id, "name": format!("{id} Inc")})
}

pub fn reg_person(id: &str, date: &str) -> Value {
    json!({"type": "person_registered", "effective": date, "person": id, "name": format!("{id} Person")})
}

pub fn acq(acquirer: &str, target: &str, pct: impl Into<Value>, date: &str) -> Value {
    json!({"type": "acquisition", "effective": date, "acquirer": acquirer, "target": target, "stake_pct": pct.into()})
}

pub fn sold(seller: &str, target: &str, pct: impl Into<Value>, date: &str) -> Value {
    json!({"type": "stake_sold", "effective": date, "seller": seller, "target": target, "stake_pct": pct.into()})
}

/// Registrations of the given companies on 2020-01-01.
pub fn companies(ids: &[&str]) -> Vec<Value> {
    ids.iter().map(|id| reg_co(id, "2020-01-01")).collect()
}

/// A fixed, valid event id (a UUIDv7-shaped string) numbered `n`.
pub fn uuid(n: u32) -> String {
    format!("01970000-0000-7000-8000-{n:012}")
}

/// `[a, b, ...]` as an owned Vec of events.
pub fn with(mut base: Vec<Value>, more: &[Value]) -> Vec<Value> {
    base.extend_from_slice(more);
    base
}
