//! Helpers shared by the measuring examples (`bench`, `load`): argument
//! numbers, finding the release binary, and formatting figures. Included with
//! `#[path = "support/mod.rs"] mod support;`; not an example of its own.

#![allow(dead_code)] // each example uses its own part of it

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{Datelike, NaiveDate};

/// The examples' result type: an error is a message for stderr.
pub type Res<T> = Result<T, String>;

/// Turns an error into `context: error`.
pub fn err<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{context}: {e}")
}

/// Parses the number given to `flag`.
pub fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{flag}: not a valid number: {text}"))
}

/// `target/release/dealledger`, beside the directory of the running
/// `example`; warns when src/ changed after it was built (it would measure
/// old code).
pub fn find_binary(example: &str) -> Res<PathBuf> {
    let exe = std::env::current_exe().map_err(err("cannot locate the running example"))?;
    let dir = exe.parent().and_then(Path::parent).ok_or("cannot locate the target directory")?;
    let bin = dir.join(format!("dealledger{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        return Err(format!(
            "the dealledger binary is missing ({}): run `cargo build --release` first \
             (cargo build --release && cargo run --release --example {example})",
            bin.display()
        ));
    }
    let built = fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let newest = newest_mtime(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    if let (Some(built), Some(newest)) = (built, newest) {
        if newest > built {
            eprintln!(
                "{example}: WARNING: {} is older than the newest file in src/; run `cargo build --release` to measure the current code",
                bin.display()
            );
        }
    }
    Ok(bin)
}

/// The newest modification time of the files below `dir`.
pub fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let meta = entry.metadata().ok()?;
        let t = if meta.is_dir() { newest_mtime(&entry.path()) } else { meta.modified().ok() };
        newest = newest.max(t);
    }
    newest
}

/// Nearest-rank percentile of samples.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// `1234567` → `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as µs, ms or s.
pub fn fmt_secs(s: f64) -> String {
    if !s.is_finite() {
        "—".into()
    } else if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// `YYYY-MM-DD` as days from the common era.
pub fn day_of(text: &str) -> Option<i32> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(|d| d.num_days_from_ce())
}

/// Days from the common era as `YYYY-MM-DD`.
pub fn date_text(days: i32) -> String {
    NaiveDate::from_num_days_from_ce_opt(days).map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string())
}
