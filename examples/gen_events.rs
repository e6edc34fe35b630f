//! Writes a deterministic, VALID dealledger event stream (JSON Lines) for tests
//! and benchmarks: appended in file order, every rule of the contract holds,
//! late events and retractions included.
//!
//! ```text
//! cargo run --release --example gen_events -- --events 1000000 --seed 7 --out events-1m.jsonl
//! ```

use dealledger::testkit::{generate_with, GenOptions};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: gen_events [--events N] [--seed S] [--companies C] [--people P] \
[--late-pct X] [--retract-pct X] [--cycles K] [--out FILE] [--quiet]

  --events N       total events (default 100000)
  --seed S         random seed (default 42)
  --companies C    companies (default N/20)
  --people P       people (default N/40)
  --late-pct X     share (%) of events whose effective date is earlier than the previous event's (default 5)
  --retract-pct X  share (%) of events that are retractions (default 1)
  --cycles K       cross-holdings that close an ownership cycle (default max(3, C/1000))
  --out FILE       output file (default: stdout)
  --quiet          no summary on stderr";

/// What the command line asks for.
struct Args {
    opts: GenOptions,
    out: Option<String>,
    quiet: bool,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gen_events: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = args.opts.validate() {
        eprintln!("gen_events: {e}");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        // a closed pipe (`| head`) is not an error
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_events: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the options; `Ok(None)` for `--help`.
fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args { opts: GenOptions::default(), out: None, quiet: false };
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        let o = &mut args.opts;
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quiet" => args.quiet = true,
            "--events" => o.events = number(&flag, &value()?)?,
            "--seed" => o.seed = number(&flag, &value()?)?,
            "--companies" => o.companies = Some(number(&flag, &value()?)?),
            "--people" => o.people = Some(number(&flag, &value()?)?),
            "--late-pct" => o.late_pct = number(&flag, &value()?)?,
            "--retract-pct" => o.retract_pct = number(&flag, &value()?)?,
            "--cycles" => o.cycles = Some(number(&flag, &value()?)?),
            "--out" => args.out = Some(value()?).filter(|f| f != "-"),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Some(args))
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{flag}: not a valid number: {text}"))
}

/// Generates into the output (buffered), then prints the summary.
fn run(args: &Args) -> io::Result<()> {
    let out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(File::create(path)?),
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut failed: Option<io::Error> = None;
    let started = Instant::now();
    let stats = generate_with(&args.opts, |line| {
        if failed.is_none() {
            if let Err(e) = writeln!(out, "{line}") {
                failed = Some(e);
            }
        }
    })
    .map_err(io::Error::other)?;
    if let Some(e) = failed {
        return Err(e);
    }
    out.flush()?;
    if !args.quiet {
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let n = args.opts.events;
        let count = |t: &str| stats.by_type.get(t).copied().unwrap_or(0);
        let mut mix: Vec<(&String, &usize)> = stats.by_type.iter().collect();
        mix.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mix: Vec<String> = mix.iter().map(|(k, v)| format!("{k} {v}")).collect();
        eprintln!(
            "gen_events: {n} events in {elapsed:.1} s ({:.0} events/s); seed {}; {} companies, {} people; late {} ({:.2}%), cycles {}",
            n as f64 / elapsed,
            args.opts.seed,
            count("company_registered"),
            count("person_registered"),
            stats.late_events,
            100.0 * stats.late_events as f64 / n as f64,
            stats.cycles_made,
        );
        eprintln!("gen_events: mix: {}", mix.join(", "));
    }
    Ok(())
}
