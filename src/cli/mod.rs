//! The command line: parse arguments, call the library, print.
//!
//! Data goes to stdout, diagnostics to stderr; exit 0 on success, 1 on a
//! refused or failed operation, 2 on a usage error (clap's own). A closed
//! pipe is not an error. This module must never hold domain logic: every
//! answer comes from [`dealledger::Ledger`].

mod table;

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use dealledger::{At, Date, KnownAt, Ledger, Phase, QueryKind};

/// dealledger: an append-only, tamper-evident, bitemporal ledger of corporate deals.
#[derive(Parser, Debug)]
#[command(name = "dealledger", version, about, long_about = None)]
struct Cli {
    /// The ledger directory (else $DEALLEDGER_DB, else ./dealledger.db).
    #[arg(long, global = true, env = "DEALLEDGER_DB", default_value = "dealledger.db")]
    db: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Append the events of FILE (or stdin): one JSON object, or JSON Lines. All or nothing.
    Append {
        /// The input file; stdin when absent or `-`.
        file: Option<PathBuf>,
        /// Print one line per event: {"seq": N, "id": "…"}.
        #[arg(long)]
        json: bool,
    },
    /// The cap table of COMPANY.
    Ownership(QueryArgs),
    /// What HOLDER owns, directly and by look-through.
    Holdings(QueryArgs),
    /// The active partnerships of COMPANY.
    Partnerships(QueryArgs),
    /// Who holds which role at COMPANY.
    Executives(QueryArgs),
    /// The roles of PERSON, current and past.
    Career(QueryArgs),
    /// Replay the history of one company or person, with the state after each event.
    History {
        /// The company or person.
        id: String,
        /// Only events effective on or after this date.
        #[arg(long, value_parser = parse_date)]
        from: Option<Date>,
        /// Only events effective on or before this date.
        #[arg(long, value_parser = parse_date)]
        to: Option<Date>,
        /// What the ledger knew: a seq number or an RFC 3339 timestamp.
        #[arg(long, value_parser = parse_known_at)]
        known_at: Option<KnownAt>,
        /// JSON Lines output.
        #[arg(long)]
        json: bool,
    },
    /// The stored events, oldest first, one JSON object a line.
    Log {
        /// Only the events that name this company or person.
        #[arg(long)]
        entity: Option<String>,
    },
    /// Re-check every stored record and the hash chain.
    Verify {
        /// Print {"ok": true, "last_seq": N, "hash": "…"}.
        #[arg(long)]
        json: bool,
    },
    /// Write a full, lossless backup as JSON Lines to stdout.
    Export,
    /// Restore an export into an empty ledger (same seqs, ids, recorded_at, hashes).
    Import {
        /// The export file; stdin when `-`.
        file: PathBuf,
    },
    /// Many queries in one process: JSON Lines of {"cmd", "id", "as_of", "known_at"} in, one answer a line out.
    Query {
        /// The query file; stdin when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Drop and rebuild every derived index from the log.
    Reindex,
}

#[derive(Args, Debug)]
struct QueryArgs {
    /// The company, person or holder.
    id: String,
    /// Valid time: the state at the end of this day (default: today, UTC).
    #[arg(long, value_parser = parse_date)]
    as_of: Option<Date>,
    /// What the ledger knew: a seq number or an RFC 3339 timestamp (default: everything).
    #[arg(long, value_parser = parse_known_at)]
    known_at: Option<KnownAt>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

impl QueryArgs {
    fn at(&self) -> At {
        At { as_of: self.as_of.unwrap_or_else(Date::today), known_at: self.known_at.unwrap_or_default() }
    }
}

fn parse_date(text: &str) -> Result<Date, String> {
    Date::parse(text)
}

fn parse_known_at(text: &str) -> Result<KnownAt, String> {
    KnownAt::parse(text).map_err(|e| e.to_string())
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("dealledger: {}", message(&err));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose words
/// are already there (a library error that shows its source would otherwise
/// print it twice).
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let words = cause.to_string();
        if text.contains(&words) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&words);
    }
    text
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || matches!(cause.downcast_ref::<dealledger::Error>(), Some(dealledger::Error::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match cli.command {
        Command::Append { file, json } => append(&cli.db, file.as_deref(), json, &mut out)?,
        Command::Ownership(args) => one_query(&cli.db, QueryKind::Ownership, &args, &mut out)?,
        Command::Holdings(args) => one_query(&cli.db, QueryKind::Holdings, &args, &mut out)?,
        Command::Partnerships(args) => one_query(&cli.db, QueryKind::Partnerships, &args, &mut out)?,
        Command::Executives(args) => one_query(&cli.db, QueryKind::Executives, &args, &mut out)?,
        Command::Career(args) => one_query(&cli.db, QueryKind::Career, &args, &mut out)?,
        Command::History { id, from, to, known_at, json } => {
            let ledger = Ledger::open(&cli.db)?;
            let lines = ledger.history(&id, known_at.unwrap_or_default(), from, to)?;
            if json {
                for line in &lines {
                    writeln!(out, "{}", serde_json::to_string(line)?)?;
                }
            } else {
                table::history(&mut out, &id, &lines)?;
            }
        }
        Command::Log { entity } => {
            let ledger = Ledger::open(&cli.db)?;
            ledger.log(entity.as_deref(), |obj| {
                writeln!(out, "{}", serde_json::Value::Object(obj))?;
                Ok(())
            })?;
        }
        Command::Verify { json } => {
            let verified = Ledger::open(&cli.db)?.verify()?;
            if json {
                let v = serde_json::json!({"ok": true, "last_seq": verified.last_seq, "hash": verified.hash});
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "ok: {} events, hash chain intact", verified.last_seq)?;
                writeln!(out, "head seq {} hash {}", verified.last_seq, verified.hash)?;
            }
        }
        Command::Export => {
            Ledger::open(&cli.db)?.export(&mut out)?;
        }
        Command::Import { file } => {
            let mut input = open_input(Some(&file))?;
            let ledger = Ledger::open_with(&cli.db, &bulk_options())?;
            let count = ledger.import(&mut input)?;
            eprintln!("imported {count} events; head seq {}", ledger.last_seq());
        }
        Command::Query { file } => {
            let ledger = Ledger::open(&cli.db)?;
            for line in open_input(file.as_deref())?.lines() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let answer = ledger
                    .answer_line(&line)
                    .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}).to_string());
                writeln!(out, "{answer}")?;
            }
        }
        Command::Reindex => {
            let seq = Ledger::open(&cli.db)?.reindex()?;
            writeln!(out, "reindexed {seq} events")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Opens FILE, or stdin for `None` / `-`.
fn open_input(file: Option<&Path>) -> Result<Box<dyn BufRead>> {
    match file {
        None => Ok(Box::new(BufReader::new(io::stdin()))),
        Some(p) if p.as_os_str() == "-" => Ok(Box::new(BufReader::new(io::stdin()))),
        Some(p) => {
            let f = File::open(p).with_context(|| format!("cannot read {}", p.display()))?;
            Ok(Box::new(BufReader::new(f)))
        }
    }
}

fn append(db: &Path, file: Option<&Path>, json: bool, out: &mut dyn Write) -> Result<()> {
    let mut text = String::new();
    open_input(file)?.read_to_string(&mut text).context("cannot read the input as UTF-8 text")?;
    let ledger = Ledger::open_with(db, &bulk_options())?;
    let before = ledger.last_seq();
    let bar = progress_bar(text.len());
    if let Some(bar) = &bar {
        bar.set_message("parsing");
    }
    let items = dealledger::parse_input(&text);
    drop(text); // the parsed events are all the append needs: free the input
    let appended = items.and_then(|items| {
        ledger.append_parsed(items, &|phase| {
            if let Some(bar) = &bar {
                let (step, message) = match phase {
                    Phase::Parsing => (0, "parsing".to_owned()),
                    Phase::Validating(n) => (1, format!("validating {n} events")),
                    Phase::Writing(n) => (2, format!("writing {n} events durably")),
                    Phase::Indexing(n) => (3, format!("indexing {n} events")),
                };
                bar.set_position(step);
                bar.set_message(message);
            }
        })
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let appended = appended?;
    if json {
        for a in &appended {
            writeln!(out, "{}", serde_json::json!({"seq": a.seq, "id": a.id}))?;
        }
    } else {
        let head = ledger.last_seq();
        let new = appended.iter().filter(|a| a.seq > before).count();
        let retried = appended.len() - new;
        let again = if retried > 0 { format!(", {retried} already stored") } else { String::new() };
        match new {
            0 => writeln!(out, "appended nothing new{again}; head seq {head}")?,
            _ => writeln!(out, "appended {new} events (seq {}..{head}){again}; head seq {head}", before + 1)?,
        }
    }
    Ok(())
}

/// Options for writing processes: create the ledger, keep sled's cache small
/// (a bulk load fills it with pages it will not read again).
fn bulk_options() -> dealledger::Options {
    dealledger::Options { create: true, cache_bytes: 64 << 20 }
}

/// A progress bar on stderr for large appends, only when stderr is a terminal.
fn progress_bar(input_len: usize) -> Option<indicatif::ProgressBar> {
    if input_len < 1 << 20 || !io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(4);
    let style = indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:20} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

fn one_query(db: &Path, kind: QueryKind, args: &QueryArgs, out: &mut dyn Write) -> Result<()> {
    let ledger = Ledger::open(db)?;
    let at = args.at();
    if args.json {
        let answer = ledger.answer(kind, &args.id, at)?;
        writeln!(out, "{answer}")?;
        return Ok(());
    }
    match kind {
        QueryKind::Ownership => table::ownership(out, &ledger.ownership(&args.id, at)?),
        QueryKind::Holdings => table::holdings(out, &ledger.holdings(&args.id, at)?),
        QueryKind::Partnerships => table::partnerships(out, &ledger.partnerships(&args.id, at)?),
        QueryKind::Executives => table::executives(out, &ledger.executives(&args.id, at)?),
        QueryKind::Career => table::career(out, &ledger.career(&args.id, at)?),
    }
}
