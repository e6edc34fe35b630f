//! The benchmark harness: every headline figure of dealledger, measured in one
//! run against a baseline measured in the same run, printed as ONE markdown
//! table on stdout (progress goes to stderr). Nothing is asserted.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench -- [--events N] [--runs R] [--queries Q] [--seed S]
//! ```
//!
//! Defaults: 1,000,000 events, 3 runs, 10,000 queries, seed 42. The real
//! binary (`target/release/dealledger`) is used for the bulk append, the batch
//! `query` command and the cold one-off queries; the library for the rest.
//! Slow figures stop taking runs once a time budget is spent (the table says
//! how many runs each figure got). Work files go to a temporary directory
//! (`$TMPDIR`), removed at the end.

#[path = "support/mod.rs"]
mod support;

use support::{date_text, day_of, err, find_binary, fmt_secs, group, number, percentile, Res};

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use dealledger::journal::{decode_file, Journal};
use dealledger::testkit::Rng;
use dealledger::testkit::{generate_with, GenOptions};
use dealledger::{decode_block, decode_record, At, Ledger};
use serde::Deserialize;

const USAGE: &str = "usage: cargo run --release --example bench -- [--events N] [--runs R] [--queries Q] [--seed S]

  --events N    events in the generated ledger (default 1000000)
  --runs R      runs of each figure (default 3; slow figures may take fewer, the table says)
  --queries Q   random queries for the query figures (default 10000)
  --seed S      generator and query seed (default 42)

Build the binary first: cargo build --release && cargo run --release --example bench";

/// The five query commands, in the order of gen_queries.py.
const COMMANDS: [&str; 5] = ["ownership", "holdings", "partnerships", "executives", "career"];
/// The latest `as_of` of a generated query (gen_queries.py's default).
const AS_OF_MAX: &str = "2026-06-30";
/// Share of queries with a `known_at` seq.
const KNOWN_AT_SHARE: f64 = 1.0 / 3.0;
/// Size of a raw sled baseline record.
const RAW_RECORD: usize = 220;
/// Records per raw sled baseline batch.
const RAW_BATCH: u64 = 1_000;
/// Single appends per run.
const SINGLE_APPENDS: usize = 1_000;
/// Unmeasured appends before the single-append runs.
const WARM_APPENDS: usize = 10;

// ------------------------------------------------------------------ arguments

struct Args {
    events: usize,
    runs: usize,
    queries: usize,
    seed: u64,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args { events: 1_000_000, runs: 3, queries: 10_000, seed: 42 };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--events" => args.events = number(&flag, &value()?)?,
            "--runs" => args.runs = number(&flag, &value()?)?,
            "--queries" => args.queries = number(&flag, &value()?)?,
            "--seed" => args.seed = number(&flag, &value()?)?,
            // `cargo bench` passes --bench to every target; tolerate it
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.runs == 0 || args.queries == 0 {
        return Err("--runs and --queries must be at least 1".into());
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let bin = match find_binary("bench") {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&args, &bin) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

macro_rules! progress {
    ($($arg:tt)*) => { eprintln!("bench: {}", format_args!($($arg)*)) };
}

// ------------------------------------------------------------------ statistics and formatting

/// The median of samples (mean of the middle two for an even count).
fn median(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn min_max(samples: &[f64]) -> (f64, f64) {
    samples.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

fn fmt_rate(r: f64) -> String {
    if r.is_finite() {
        format!("{} ev/s", group(r.round() as u64))
    } else {
        "—".into()
    }
}

fn fmt_bytes(b: f64) -> String {
    format!("{:.1} MB", b / 1e6)
}

/// Peak RSS (KiB, as the kernel reports it) in MB (10^6 bytes, as the targets are written).
fn fmt_kib(kb: f64) -> String {
    format!("{:.1} MB", kb * 1024.0 / 1e6)
}

/// A figure's samples and how to print them.
#[derive(Clone, Copy)]
enum Unit {
    Secs,
    Rate,
    Bytes,
    KiB,
    Ratio,
}

impl Unit {
    fn fmt(self, x: f64) -> String {
        match self {
            Unit::Secs => fmt_secs(x),
            Unit::Rate => fmt_rate(x),
            Unit::Bytes => fmt_bytes(x),
            Unit::KiB => fmt_kib(x),
            Unit::Ratio => format!("{x:.2}×"),
        }
    }
}

/// A target: at most / at least a value, or a ratio to the baseline.
#[derive(Clone, Copy)]
enum Target {
    None,
    AtMost(f64),
    AtLeast(f64),
    RatioAtMost(f64),
}

struct Row {
    figure: String,
    median: String,
    range: String,
    baseline: String,
    ratio: String,
    target: String,
}

/// Builds a row: ours vs an optional baseline (medians), ratio ours/baseline.
fn row(figure: String, unit: Unit, ours: &[f64], baseline: Option<(&[f64], String)>, target: Target) -> Row {
    let med = median(ours);
    let (lo, hi) = min_max(ours);
    let range = if ours.len() > 1 { format!("{} – {}", unit.fmt(lo), unit.fmt(hi)) } else { "(1 run)".into() };
    let (base_text, ratio) = match baseline {
        Some((base, label)) if !base.is_empty() => {
            let b = median(base);
            (format!("{} ({label})", unit.fmt(b)), Some(med / b))
        }
        _ => ("—".into(), None),
    };
    let verdict = |ok: bool, by: f64| if ok { "met".to_string() } else { format!("MISSED ({by:.1}× off)") };
    let target = match target {
        Target::None => "—".into(),
        Target::AtMost(t) => format!("≤ {}: {}", unit.fmt(t), verdict(med <= t, med / t)),
        Target::AtLeast(t) => format!("≥ {}: {}", unit.fmt(t), verdict(med >= t, t / med)),
        Target::RatioAtMost(t) => match ratio {
            Some(r) => format!("≤ {t}× baseline: {}", verdict(r <= t, r / t)),
            None => format!("≤ {t}× baseline"),
        },
    };
    Row {
        figure,
        median: unit.fmt(med),
        range,
        baseline: base_text,
        ratio: ratio.map_or_else(|| "—".into(), |r| format!("{r:.2}")),
        target,
    }
}

fn print_table(rows: &[Row]) {
    println!("| figure | median | min–max | baseline (same run) | ratio | target |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} | {} | {} | {} |", r.figure, r.median, r.range, r.baseline, r.ratio, r.target);
    }
}

/// Runs `f` up to `runs` times, stopping early once `budget` is spent
/// (always at least once). Returns the samples `f` produced.
fn runs_within<T>(runs: usize, budget: Duration, mut f: impl FnMut(usize) -> Res<T>) -> Res<Vec<T>> {
    let started = Instant::now();
    let mut out = Vec::with_capacity(runs);
    for r in 0..runs {
        if r > 0 && started.elapsed() > budget {
            progress!("  time budget of {} s spent: {r} of {runs} runs", budget.as_secs());
            break;
        }
        out.push(f(r)?);
    }
    Ok(out)
}

fn runs_note(done: usize, asked: usize) -> String {
    let runs = plural(done, "run");
    if done < asked {
        format!("{runs} (of {asked}: time budget)")
    } else {
        runs
    }
}

/// `1 run`, `2 runs`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

// ------------------------------------------------------------------ small helpers

/// Sum of the sizes of every file under `path`.
fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Opens sled on a directory, retrying briefly while a previous holder lets go of its lock.
fn sled_open(dir: &Path) -> Res<sled::Db> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let segment = dealledger::sled_segment_size(dir).unwrap_or(512 << 10);
        match sled::Config::new().path(dir).segment_size(segment).open() {
            Ok(db) => return Ok(db),
            Err(e) if Instant::now() < deadline && e.to_string().to_lowercase().contains("lock") => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("sled::open {}: {e}", dir.display())),
        }
    }
}

/// A raw baseline record: 220 bytes that vary with the key.
fn raw_value(i: u64) -> [u8; RAW_RECORD] {
    let mut v = [0u8; RAW_RECORD];
    let mut rng = Rng::new(i);
    for chunk in v.chunks_mut(8) {
        let bytes = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    v
}

// ------------------------------------------------------------------ child processes

/// What a child run measured.
struct ChildRun {
    wall: f64,
    /// Peak resident set in KiB, when measured.
    peak_kib: Option<f64>,
}

/// How the peak RSS of a child is read.
#[derive(Clone, Copy, PartialEq)]
enum RssMethod {
    /// `/usr/bin/time -f %M` (the kernel's ru_maxrss of the child).
    GnuTime,
    /// `/proc/<pid>/status` VmHWM, polled while the child runs.
    Poll,
}

impl RssMethod {
    fn detect() -> Self {
        let time = Path::new("/usr/bin/time");
        let works = time.is_file()
            && std::env::var_os("DEALLEDGER_BENCH_POLL_RSS").is_none()
            && Command::new(time)
                .args(["-f", "%M", "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stderr).trim().parse::<u64>().is_ok());
        if works {
            Self::GnuTime
        } else {
            Self::Poll
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::GnuTime => "/usr/bin/time %M",
            Self::Poll => "VmHWM polled",
        }
    }
}

struct Runner {
    bin: PathBuf,
    scratch: PathBuf,
    rss: RssMethod,
}

impl Runner {
    /// Runs `dealledger ARGS`, stdout to `stdout` (or discarded); fails on a non-zero exit.
    fn run(&self, args: &[&str], stdout: Option<&Path>, measure_rss: bool) -> Res<ChildRun> {
        let errfile = self.scratch.join("child.stderr");
        let timefile = self.scratch.join("child.time");
        let out = match stdout {
            Some(p) => Stdio::from(File::create(p).map_err(err("stdout file"))?),
            None => Stdio::null(),
        };
        let err_out = Stdio::from(File::create(&errfile).map_err(err("stderr file"))?);
        let gnu = measure_rss && self.rss == RssMethod::GnuTime;
        let mut cmd = if gnu {
            let mut c = Command::new("/usr/bin/time");
            c.arg("-f").arg("%M").arg("-o").arg(&timefile).arg(&self.bin);
            c
        } else {
            Command::new(&self.bin)
        };
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err_out);
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(err("cannot start dealledger"))?;
        let mut peak: Option<f64> = None;
        let status = if measure_rss && !gnu {
            let status_path = format!("/proc/{}/status", child.id());
            loop {
                if let Some(kb) = fs::read_to_string(&status_path).ok().as_deref().and_then(vm_hwm) {
                    peak = Some(peak.map_or(kb, |p: f64| p.max(kb)));
                }
                if let Some(status) = child.try_wait().map_err(err("wait"))? {
                    break status;
                }
                std::thread::sleep(Duration::from_micros(300));
            }
        } else {
            child.wait().map_err(err("wait"))?
        };
        let wall = started.elapsed().as_secs_f64();
        if !status.success() {
            let stderr = fs::read_to_string(&errfile).unwrap_or_default();
            return Err(format!("`dealledger {}` failed ({status}): {}", args.join(" "), stderr.trim()));
        }
        if gnu {
            let text = fs::read_to_string(&timefile).map_err(err("reading /usr/bin/time output"))?;
            peak = text.lines().filter_map(|l| l.trim().parse::<f64>().ok()).next_back();
        }
        Ok(ChildRun { wall, peak_kib: peak })
    }
}

fn vm_hwm(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ------------------------------------------------------------------ the generated corpus

/// The fields of a generated line that the query generator needs.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "type")]
    kind: String,
    effective: Option<String>,
    company: Option<String>,
    person: Option<String>,
    acquirer: Option<String>,
    buyer: Option<String>,
}

/// What gen_queries.py reads from an event file.
#[derive(Default)]
struct Corpus {
    companies: Vec<String>,
    persons: Vec<String>,
    /// Registration day (days from CE) and seq of each entity.
    reg: HashMap<String, (i32, u64)>,
    /// Entities that bought a stake, in first-seen order.
    buyers: Vec<String>,
    buyer_set: HashSet<String>,
    last_seq: u64,
}

impl Corpus {
    fn add(&mut self, seq: u64, line: &str) {
        self.last_seq = seq;
        let Ok(p) = serde_json::from_str::<Probe>(line) else { return };
        let day = p.effective.as_deref().and_then(day_of).unwrap_or(0);
        match p.kind.as_str() {
            "company_registered" => {
                if let Some(c) = p.company {
                    self.reg.insert(c.clone(), (day, seq));
                    self.companies.push(c);
                }
            }
            "person_registered" => {
                if let Some(c) = p.person {
                    self.reg.insert(c.clone(), (day, seq));
                    self.persons.push(c);
                }
            }
            "acquisition" | "deal_announced" => self.buyer(p.acquirer),
            "stake_sold" => self.buyer(p.buyer),
            _ => {}
        }
    }

    fn buyer(&mut self, who: Option<String>) {
        if let Some(b) = who {
            if self.buyer_set.insert(b.clone()) {
                self.buyers.push(b);
            }
        }
    }

    /// Random queries as gen_queries.py makes them: all five commands, as_of
    /// between the entity's registration and 2026-06-30, known_at in a third.
    fn queries(&self, count: usize, seed: u64) -> Vec<(usize, String)> {
        let mut rng = Rng::new(seed ^ 0x5EED_5EED_5EED_5EED);
        let buyers: Vec<String> = self.buyers.iter().filter(|b| self.reg.contains_key(*b)).cloned().collect();
        let everyone: Vec<String> = self.companies.iter().chain(&self.persons).cloned().collect();
        let hi = day_of(AS_OF_MAX).unwrap_or(0);
        (0..count)
            .map(|_| {
                let cmd = rng.next_u64() as usize % COMMANDS.len();
                let entity: &String = match COMMANDS[cmd] {
                    "career" => rng.pick(&self.persons),
                    "holdings" if !buyers.is_empty() && rng.random() < 0.8 => rng.pick(&buyers),
                    "holdings" => rng.pick(&everyone),
                    _ => rng.pick(&self.companies),
                };
                let (reg_day, reg_seq) = self.reg[entity];
                let as_of = date_text(rng.between(reg_day as u64, reg_day.max(hi) as u64) as i32);
                let known_at = if rng.random() < KNOWN_AT_SHARE {
                    serde_json::Value::from(rng.between(reg_seq, self.last_seq.max(reg_seq)))
                } else {
                    serde_json::Value::Null
                };
                let line =
                    serde_json::json!({"cmd": COMMANDS[cmd], "id": entity, "as_of": as_of, "known_at": known_at});
                (cmd, line.to_string())
            })
            .collect()
    }
}

/// Generates `events` events into `path`; returns the corpus and the file size.
fn generate(path: &Path, events: usize, seed: u64) -> Res<(Corpus, u64)> {
    let opts = GenOptions { events, seed, ..GenOptions::default() };
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).map_err(err("create"))?);
    let mut corpus = Corpus::default();
    let mut failed: Option<io::Error> = None;
    let mut seq = 0u64;
    generate_with(&opts, |line| {
        seq += 1;
        corpus.add(seq, line);
        if failed.is_none() {
            if let Err(e) = writeln!(out, "{line}") {
                failed = Some(e);
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(format!("writing {}: {e}", path.display()));
    }
    out.flush().map_err(err("flush"))?;
    drop(out);
    let size = fs::metadata(path).map_err(err("stat"))?.len();
    Ok((corpus, size))
}

/// The company with the most holders today, among up to 3,000 evenly sampled.
fn company_with_holders(ledger_dir: &Path, corpus: &Corpus) -> Res<(String, usize)> {
    let ledger = Ledger::open(ledger_dir).map_err(err("open"))?;
    let step = (corpus.companies.len() / 3_000).max(1);
    let mut best: Option<(String, usize)> = None;
    for c in corpus.companies.iter().step_by(step) {
        if let Ok(cap) = ledger.ownership(c, At::today()) {
            if best.as_ref().is_none_or(|(_, n)| cap.holders.len() > *n) {
                best = Some((c.clone(), cap.holders.len()));
            }
        }
    }
    best.ok_or_else(|| "no company answers an ownership query".into())
}

// ------------------------------------------------------------------ the run

fn run(args: &Args, bin: &Path) -> Res<()> {
    let total = Instant::now();
    let tmp = tempfile::Builder::new().prefix("dealledger-bench-").tempdir().map_err(err("tempdir"))?;
    let root = tmp.path().to_path_buf();
    let runner = Runner { bin: bin.to_path_buf(), scratch: root.clone(), rss: RssMethod::detect() };
    let runs = args.runs;
    let n = args.events;
    let mut rows: Vec<Row> = Vec::new();
    progress!("binary {}; work dir {}; peak RSS by {}", bin.display(), root.display(), runner.rss.label());

    // 1. generate
    let big = root.join("big.jsonl");
    let t = Instant::now();
    let (corpus, big_size) = generate(&big, n, args.seed)?;
    progress!(
        "generated {} events ({}, {} companies, {} people) in {:.1} s",
        group(n as u64),
        fmt_bytes(big_size as f64),
        group(corpus.companies.len() as u64),
        group(corpus.persons.len() as u64),
        t.elapsed().as_secs_f64()
    );

    // 2. bulk append through the binary, fresh ledger each run; disk size after it (8.)
    let big_s = big.to_string_lossy().into_owned();
    let ledger_dir = root.join("ledger");
    let mut bulk_rate = Vec::new();
    let mut bulk_rss = Vec::new();
    let mut disk = Vec::new();
    let bulk = runs_within(runs, Duration::from_secs(150), |r| {
        let dir = root.join(format!("bulk-{r}"));
        progress!("bulk append run {}/{runs}: dealledger append big.jsonl ...", r + 1);
        let run = runner.run(&["--db", &dir.to_string_lossy(), "append", &big_s], None, true)?;
        let size = dir_size(&dir);
        progress!("  {:.2} s ({}), ledger {}", run.wall, fmt_rate(n as f64 / run.wall), fmt_bytes(size as f64));
        if ledger_dir.exists() {
            fs::remove_dir_all(&ledger_dir).map_err(err("remove old ledger"))?;
        }
        fs::rename(&dir, &ledger_dir).map_err(err("keep ledger"))?;
        Ok((n as f64 / run.wall, run.peak_kib, size as f64))
    })?;
    for (rate, rss, size) in &bulk {
        bulk_rate.push(*rate);
        bulk_rss.extend(rss);
        disk.push(*size);
    }

    // 2b. baseline: raw sled, same count of 220-byte records, batches of 1,000 + flush + fsync
    let raw_dir = root.join("raw-sled");
    let raw_rate = runs_within(runs, Duration::from_secs(90), |r| {
        if raw_dir.exists() {
            fs::remove_dir_all(&raw_dir).map_err(err("remove raw sled"))?;
        }
        progress!("raw sled bulk run {}/{runs} ...", r + 1);
        let secs = raw_bulk(&raw_dir, n as u64)?;
        progress!("  {:.2} s ({})", secs, fmt_rate(n as f64 / secs));
        Ok(n as f64 / secs)
    })?;
    let raw_size = dir_size(&raw_dir) as f64;

    rows.push(row(
        format!("bulk append, `dealledger append` of {} events ({})", group(n as u64), runs_note(bulk.len(), runs)),
        Unit::Rate,
        &bulk_rate,
        Some((&raw_rate, format!("raw sled, {RAW_RECORD}-B values, batches of 1,000 + flush + fsync"))),
        Target::None,
    ));
    rows.push(row(format!("bulk append peak RSS ({})", runner.rss.label()), Unit::KiB, &bulk_rss, None, Target::None));

    // 5. cold one-off queries through the binary
    progress!("choosing a company with several holders ...");
    let (x, holders) = company_with_holders(&ledger_dir, &corpus)?;
    progress!("cold queries: ownership {x} ({holders} holders), {} runs ...", runs * 5);
    let cold = cold_queries(&runner, &ledger_dir, &x, runs)?;

    progress!("cold queries on a 10,000-event ledger ...");
    let small = root.join("small.jsonl");
    let small_dir = root.join("ledger-10k");
    let (small_corpus, _) = generate(&small, 10_000, args.seed)?;
    runner.run(&["--db", &small_dir.to_string_lossy(), "append", &small.to_string_lossy()], None, false)?;
    let (small_x, small_holders) = company_with_holders(&small_dir, &small_corpus)?;
    let cold_small = cold_queries(&runner, &small_dir, &small_x, runs)?;

    progress!("process spawn baseline: dealledger --version ...");
    let mut spawn = Vec::new();
    for _ in 0..runs * 5 {
        spawn.push(runner.run(&["--version"], None, false)?.wall);
    }

    // 4. batch queries
    let queries = corpus.queries(args.queries, args.seed);
    let qfile = root.join("queries.jsonl");
    {
        let mut w = BufWriter::new(File::create(&qfile).map_err(err("queries file"))?);
        for (_, q) in &queries {
            writeln!(w, "{q}").map_err(err("queries file"))?;
        }
        w.flush().map_err(err("queries file"))?;
    }
    let qfile_s = qfile.to_string_lossy().into_owned();
    let answers = root.join("answers.jsonl");
    let ledger_s = ledger_dir.to_string_lossy().into_owned();
    let bin_query = runs_within(runs, Duration::from_secs(90), |r| {
        progress!("dealledger query of {} lines, run {}/{runs} ...", group(queries.len() as u64), r + 1);
        let run = runner.run(&["--db", &ledger_s, "query", &qfile_s], Some(&answers), false)?;
        progress!("  {:.2} s", run.wall);
        Ok(run.wall)
    })?;
    let bin_errors = count_errors(&answers);

    progress!("in-process queries (Ledger::answer_line): warm-up pass ...");
    let ledger = Ledger::open(&ledger_dir).map_err(err("open ledger"))?;
    let mut lib_errors = 0usize;
    for (_, q) in &queries {
        lib_errors += usize::from(ledger.answer_line(q).is_err());
    }
    // per pass: per command, the latencies
    let passes = runs_within(runs, Duration::from_secs(120), |r| {
        progress!("in-process query pass {}/{runs} ...", r + 1);
        let mut per_cmd: Vec<Vec<f64>> = vec![Vec::new(); COMMANDS.len()];
        let mut sum = 0.0;
        for (cmd, q) in &queries {
            let t = Instant::now();
            let answer = ledger.answer_line(q);
            let dt = t.elapsed().as_secs_f64();
            std::hint::black_box(&answer);
            per_cmd[*cmd].push(dt);
            sum += dt;
        }
        Ok((per_cmd, sum))
    })?;
    let pass_sums: Vec<f64> = passes.iter().map(|(_, s)| *s).collect();

    // 7. verify
    let verify = runs_within(runs, Duration::from_secs(60), |r| {
        progress!("verify run {}/{runs} ...", r + 1);
        let t = Instant::now();
        let v = ledger.verify().map_err(err("verify"))?;
        let secs = t.elapsed().as_secs_f64();
        progress!("  {} events in {:.2} s", group(v.last_seq), secs);
        Ok(v.last_seq as f64 / secs)
    })?;

    // 6. reindex
    let reindex = runs_within(runs, Duration::from_secs(60), |r| {
        progress!("reindex run {}/{runs} ...", r + 1);
        let t = Instant::now();
        let seq = ledger.reindex().map_err(err("reindex"))?;
        let secs = t.elapsed().as_secs_f64();
        progress!("  {} events in {:.2} s", group(seq), secs);
        Ok(seq as f64 / secs)
    })?;
    drop(ledger);

    // 6b. baseline: raw read of the log file, its frames checked, + decode_record of every record
    let mut record_bytes = 0u64;
    let scan = runs_within(runs, Duration::from_secs(60), |r| {
        progress!("raw log scan + decode_record run {}/{runs} ...", r + 1);
        let t = Instant::now();
        let file = fs::read(Journal::path_in(&ledger_dir)).map_err(err("read the log file"))?;
        let (_, frames) = decode_file(&file).map_err(err("decode_file"))?;
        let (mut count, mut bytes) = (0u64, 0u64);
        for (_, block) in &frames {
            for value in decode_block(block).map_err(err("decode_block"))? {
                let rec = decode_record(value).map_err(err("decode_record"))?;
                std::hint::black_box(&rec);
                count += 1;
                bytes += value.len() as u64;
            }
        }
        let secs = t.elapsed().as_secs_f64();
        record_bytes = bytes / count.max(1);
        Ok(count as f64 / secs)
    })?;

    // 3. single durable appends
    let person = corpus.persons.first().ok_or("no person in the generated events")?.clone();
    let ledger = Ledger::open(&ledger_dir).map_err(err("open ledger"))?;
    for i in 0..WARM_APPENDS {
        let line = format!(
            r#"{{"type":"company_registered","effective":"2026-01-02","company":"bench-warm-{i}","name":"Bench Warm {i}"}}"#
        );
        ledger.append_text(&line).map_err(err("warm-up append"))?;
    }
    let single = runs_within(runs, Duration::from_secs(60), |r| {
        progress!("single durable appends run {}/{runs} ({SINGLE_APPENDS} appends) ...", r + 1);
        let mut lat = Vec::with_capacity(SINGLE_APPENDS);
        for i in 0..SINGLE_APPENDS {
            let co = format!("bench-co-{r}-{}", i / 2);
            let line = if i % 2 == 0 {
                format!(
                    r#"{{"type":"company_registered","effective":"2026-01-15","company":"{co}","name":"Bench Co {r} {}"}}"#,
                    i / 2
                )
            } else {
                format!(
                    r#"{{"type":"acquisition","effective":"2026-02-01","acquirer":"{person}","target":"{co}","stake_pct":1}}"#
                )
            };
            let t = Instant::now();
            ledger.append_text(&line).map_err(err("single append"))?;
            lat.push(t.elapsed().as_secs_f64());
        }
        Ok(lat)
    })?;
    drop(ledger);

    // 3b. baseline: raw sled, one insert + flush + fsync, on the raw bulk db
    let raw_single = {
        let db = sled_open(&raw_dir)?;
        let tree = db.open_tree("log").map_err(err("open_tree"))?;
        let file = File::open(raw_dir.join("db")).map_err(err("open raw db file"))?;
        let mut key = n as u64 + 1;
        let one = |key: u64| -> Res<f64> {
            let t = Instant::now();
            tree.insert(key.to_be_bytes(), &raw_value(key)[..]).map_err(err("insert"))?;
            db.flush().map_err(err("flush"))?;
            file.sync_data().map_err(err("sync_data"))?;
            Ok(t.elapsed().as_secs_f64())
        };
        for _ in 0..WARM_APPENDS {
            one(key)?;
            key += 1;
        }
        let mut all = Vec::new();
        for r in 0..runs {
            progress!("raw sled single insert run {}/{runs} ...", r + 1);
            let mut lat = Vec::with_capacity(SINGLE_APPENDS);
            for _ in 0..SINGLE_APPENDS {
                lat.push(one(key)?);
                key += 1;
            }
            all.push(lat);
        }
        all
    };

    // ---- rows, in the order of the brief
    let p = |runs: &[Vec<f64>], q: f64| -> Vec<f64> { runs.iter().map(|lat| percentile(lat, q)).collect() };
    let single_note = format!("{} × {SINGLE_APPENDS}, after {WARM_APPENDS} warm-up", runs_note(single.len(), runs));
    rows.push(row(
        format!("single durable append (`Ledger::append_text`, 1 event) p50 ({single_note})"),
        Unit::Secs,
        &p(&single, 50.0),
        Some((&p(&raw_single, 50.0), "raw sled insert + flush + fsync".into())),
        Target::RatioAtMost(1.5),
    ));
    rows.push(row(
        "single durable append p99".into(),
        Unit::Secs,
        &p(&single, 99.0),
        Some((&p(&raw_single, 99.0), "raw sled p99".into())),
        Target::None,
    ));

    let qnote = format!("{}, after 1 warm-up pass", runs_note(passes.len(), runs));
    for (c, name) in COMMANDS.iter().enumerate() {
        let lat: Vec<Vec<f64>> = passes.iter().map(|(per, _)| per[c].clone()).collect();
        let count = lat.first().map_or(0, Vec::len);
        let target = if *name == "holdings" { 100e-6 } else { 10e-6 };
        rows.push(row(
            format!("query `{name}` p50 (`answer_line`, {} queries, {qnote})", group(count as u64)),
            Unit::Secs,
            &p(&lat, 50.0),
            None,
            Target::AtMost(target),
        ));
        rows.push(row(format!("query `{name}` p99"), Unit::Secs, &p(&lat, 99.0), None, Target::None));
    }
    rows.push(row(
        format!(
            "`dealledger query FILE`, {} lines, process total ({}; {} error answers)",
            group(queries.len() as u64),
            runs_note(bin_query.len(), runs),
            group(bin_errors as u64)
        ),
        Unit::Secs,
        &bin_query,
        Some((&pass_sums, "sum of in-process `answer_line`".into())),
        Target::None,
    ));

    for (label, c, xx, h) in [
        (format!("{} events", group(n as u64)), &cold, &x, holders),
        ("10,000 events".to_string(), &cold_small, &small_x, small_holders),
    ] {
        rows.push(row(
            format!(
                "cold `dealledger ownership {xx} --json` ({h} holders), {label}, wall ({})",
                plural(c.wall.len(), "run")
            ),
            Unit::Secs,
            &c.wall,
            Some((&c.open, "in-process `sled::open` of the ledger's index".into())),
            Target::AtMost(0.050),
        ));
        rows.push(row(
            format!("cold query peak RSS, {label} ({}, {})", runner.rss.label(), plural(c.rss.len(), "run")),
            Unit::KiB,
            &c.rss,
            None,
            Target::AtMost(150e6 / 1024.0),
        ));
    }
    rows.push(row(
        format!("process spawn + exit, `dealledger --version` ({})", plural(spawn.len(), "run")),
        Unit::Secs,
        &spawn,
        None,
        Target::None,
    ));

    let scan_label = format!("raw read of the log file + `decode_record`, avg record {record_bytes} B");
    rows.push(row(
        format!("`Ledger::reindex()` ({})", runs_note(reindex.len(), runs)),
        Unit::Rate,
        &reindex,
        Some((&scan, scan_label.clone())),
        Target::AtLeast(500_000.0),
    ));
    rows.push(row(
        format!("`Ledger::verify()` ({})", runs_note(verify.len(), runs)),
        Unit::Rate,
        &verify,
        Some((&scan, scan_label)),
        Target::AtLeast(500_000.0),
    ));

    let disk_ratio: Vec<f64> = disk.iter().map(|d| d / big_size as f64).collect();
    rows.push(row(
        format!("disk size of the ledger dir after the bulk append ({})", plural(disk.len(), "run")),
        Unit::Bytes,
        &disk,
        Some((&[big_size as f64], "JSON Lines input".into())),
        Target::None,
    ));
    rows.push(row("ledger size / JSON Lines size".into(), Unit::Ratio, &disk_ratio, None, Target::AtMost(5.0)));

    progress!("done in {:.0} s", total.elapsed().as_secs_f64());
    println!(
        "dealledger bench: {} events (seed {}), {} queries, {runs} runs asked; JSON Lines input {}; raw sled baseline db {}; peak RSS by {}; {} s total",
        group(n as u64),
        args.seed,
        group(args.queries as u64),
        fmt_bytes(big_size as f64),
        fmt_bytes(raw_size),
        runner.rss.label(),
        total.elapsed().as_secs()
    );
    if lib_errors > 0 {
        println!("({} of the in-process queries answered with an error; they are timed like the others)", lib_errors);
    }
    println!();
    print_table(&rows);
    println!();
    println!("ratio = ours / baseline in the figure's unit (events/s: below 1 is slower than the baseline; times: above 1 is slower).");
    Ok(())
}

/// Inserts `n` raw records in batches of 1,000, each made durable; returns the seconds taken.
fn raw_bulk(dir: &Path, n: u64) -> Res<f64> {
    let db = sled_open(dir)?;
    let tree = db.open_tree("log").map_err(err("open_tree"))?;
    let file = File::open(dir.join("db")).map_err(err("open raw db file"))?;
    let t = Instant::now();
    let mut key = 1u64;
    while key <= n {
        let end = (key + RAW_BATCH).min(n + 1);
        let mut batch = sled::Batch::default();
        for k in key..end {
            batch.insert(&k.to_be_bytes(), &raw_value(k)[..]);
        }
        tree.apply_batch(batch).map_err(err("apply_batch"))?;
        db.flush().map_err(err("flush"))?;
        file.sync_data().map_err(err("sync_data"))?;
        key = end;
    }
    Ok(t.elapsed().as_secs_f64())
}

struct Cold {
    wall: Vec<f64>,
    rss: Vec<f64>,
    open: Vec<f64>,
}

/// R×5 timed cold queries (each followed by an in-process `sled::open` of
/// the ledger's index database as the baseline: open, time, drop), then R
/// runs for the peak RSS.
fn cold_queries(runner: &Runner, dir: &Path, company: &str, runs: usize) -> Res<Cold> {
    let d = dir.to_string_lossy().into_owned();
    let args = ["--db", d.as_str(), "ownership", company, "--json"];
    let out = runner.scratch.join("cold.json");
    let mut cold = Cold { wall: Vec::new(), rss: Vec::new(), open: Vec::new() };
    for _ in 0..runs * 5 {
        cold.wall.push(runner.run(&args, Some(&out), false)?.wall);
        // The ledger directory holds the log file and one sled database, the index.
        let t = Instant::now();
        let db = sled_open(&dir.join("index"))?;
        cold.open.push(t.elapsed().as_secs_f64());
        drop(db);
    }
    let answer = fs::read_to_string(&out).unwrap_or_default();
    if serde_json::from_str::<serde_json::Value>(&answer).is_err() {
        return Err(format!("the cold query printed no JSON: {answer}"));
    }
    for _ in 0..runs {
        cold.rss.extend(runner.run(&args, None, true)?.peak_kib);
    }
    Ok(cold)
}

/// Answer lines of `dealledger query` that are errors.
fn count_errors(path: &Path) -> usize {
    let Ok(f) = File::open(path) else { return 0 };
    BufReader::new(f).lines().map_while(Result::ok).filter(|l| l.starts_with("{\"error\"")).count()
}
