//! The command line: parse arguments, call the library, print.
//!
//! Data goes to stdout, diagnostics to stderr; exit 0 on success, 1 on a
//! refused or failed operation, 2 on a usage error (clap's own). A closed
//! pipe is not an error. This module must never hold domain logic: every
//! answer comes from [`dealledger::Ledger`].

mod remote;
mod table;

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use dealledger::answer::Answer;
use dealledger::{Appended, At, Date, KnownAt, Ledger, Phase, QueryKind};
use remote::{encode, Remote};

/// dealledger: an append-only, tamper-evident, bitemporal ledger of corporate deals.
#[derive(Parser, Debug)]
#[command(name = "dealledger", version, about, long_about = None)]
struct Cli {
    /// The ledger directory (else $DEALLEDGER_DB, else ./dealledger.db).
    #[arg(long, global = true, env = "DEALLEDGER_DB", default_value = "dealledger.db")]
    db: PathBuf,
    /// Go through the running `dealledger serve` at this URL (append, log, query, verify and the five queries).
    #[arg(long, global = true, env = "DEALLEDGER_SERVER")]
    server: Option<String>,
    /// A file holding the bearer token: `serve` requires it on every POST, `--server` sends it
    /// (else $DEALLEDGER_TOKEN).
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
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
    /// Serve the HTTP API (contract §7) until SIGINT or SIGTERM.
    Serve {
        /// The address to listen on (loopback by default; port 0 picks a free port).
        #[arg(long, default_value = dealledger::server::DEFAULT_ADDR)]
        addr: std::net::SocketAddr,
        /// The largest request body accepted, in bytes (larger ones get 413).
        #[arg(long, default_value_t = dealledger::server::DEFAULT_BODY_LIMIT)]
        body_limit: usize,
        /// On SIGINT/SIGTERM, how many seconds to wait for open connections before closing them.
        #[arg(long, default_value_t = dealledger::server::DEFAULT_SHUTDOWN_GRACE.as_secs())]
        shutdown_grace: u64,
    },
}

#[derive(Args, Debug)]
struct QueryArgs {
    /// The company, person or holder.
    id: String,
    /// Valid time: the state at the end of this day (default: today, UTC).
    #[arg(long, value_parser = parse_date)]
    as_of: Option<Date>,
    /// What the ledger knew: a seq number or an RFC 3339 timestamp (default: everything).
    #[arg(long, value_parser = parse_known_at_arg)]
    known_at: Option<KnownAtArg>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

impl QueryArgs {
    fn at(&self) -> At {
        let known_at = self.known_at.as_ref().map_or(KnownAt::Latest, |k| k.value);
        At { as_of: self.as_of.unwrap_or_else(Date::today), known_at }
    }
}

fn parse_date(text: &str) -> Result<Date, String> {
    Date::parse(text)
}

/// A `--known-at` of a query, with its text (sent as is through `--server`).
#[derive(Clone, Debug)]
struct KnownAtArg {
    text: String,
    value: KnownAt,
}

fn parse_known_at_arg(text: &str) -> Result<KnownAtArg, String> {
    Ok(KnownAtArg { text: text.to_owned(), value: parse_known_at(text)? })
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
    let token = token(cli.token_file.as_deref())?;
    if let Some(url) = &cli.server {
        let remote = Remote::new(url, token)?;
        run_remote(&remote, cli.command, &mut out)?;
    } else {
        run_local(&cli.db, cli.command, token, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// The bearer token: the file's content (trimmed), else $DEALLEDGER_TOKEN.
fn token(file: Option<&Path>) -> Result<Option<String>> {
    let token = match file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read the token file {}", path.display()))?
        }
        None => match std::env::var("DEALLEDGER_TOKEN") {
            Ok(token) => token,
            Err(_) => return Ok(None),
        },
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(anyhow::anyhow!("the bearer token is empty"));
    }
    Ok(Some(token))
}

fn run_local(db: &Path, command: Command, token: Option<String>, out: &mut dyn Write) -> Result<()> {
    match command {
        Command::Append { file, json } => append(db, file.as_deref(), json, out)?,
        Command::Ownership(args) => one_query(db, QueryKind::Ownership, &args, out)?,
        Command::Holdings(args) => one_query(db, QueryKind::Holdings, &args, out)?,
        Command::Partnerships(args) => one_query(db, QueryKind::Partnerships, &args, out)?,
        Command::Executives(args) => one_query(db, QueryKind::Executives, &args, out)?,
        Command::Career(args) => one_query(db, QueryKind::Career, &args, out)?,
        Command::History { id, from, to, known_at, json } => {
            let ledger = Ledger::open(db)?;
            let lines = ledger.history(&id, known_at.unwrap_or_default(), from, to)?;
            if json {
                for line in &lines {
                    writeln!(out, "{}", serde_json::to_string(line)?)?;
                }
            } else {
                table::history(out, &id, &lines)?;
            }
        }
        Command::Log { entity } => {
            Ledger::open(db)?.log(entity.as_deref(), |obj| {
                writeln!(out, "{}", serde_json::Value::Object(obj))?;
                Ok(())
            })?;
        }
        Command::Verify { json } => print_verified(out, &Ledger::open(db)?.verify()?.into(), json)?,
        Command::Export => {
            Ledger::open(db)?.export(out)?;
        }
        Command::Import { file } => {
            let mut input = open_input(Some(&file))?;
            let ledger = Ledger::open_with(db, &bulk_options())?;
            let count = ledger.import(&mut input)?;
            eprintln!("imported {count} events; head seq {}", ledger.last_seq());
        }
        Command::Query { file } => {
            let ledger = Ledger::open(db)?;
            for line in open_input(file.as_deref())?.lines() {
                if let Some(answer) = ledger.batch_line(&line?) {
                    writeln!(out, "{answer}")?;
                }
            }
        }
        Command::Reindex => {
            let seq = Ledger::open(db)?.reindex()?;
            writeln!(out, "reindexed {seq} events")?;
        }
        Command::Serve { addr, body_limit, shutdown_grace } => {
            let shutdown_grace = std::time::Duration::from_secs(shutdown_grace);
            serve(db, addr, dealledger::server::Config { token, body_limit, shutdown_grace })?;
        }
    }
    Ok(())
}

fn run_remote(remote: &Remote, command: Command, out: &mut dyn Write) -> Result<()> {
    match command {
        Command::Append { file, json } => {
            let mut text = String::new();
            open_input(file.as_deref())?.read_to_string(&mut text).context("cannot read the input as UTF-8 text")?;
            let reply = remote.post("/events", "application/x-ndjson", &text)?;
            let body: AppendedBody = serde_json::from_str(&reply.body).context("reading the server's answer")?;
            let before = reply.previous_seq.unwrap_or(0);
            print_appended(out, &body.appended, before, body.last_seq, json)?;
        }
        Command::Ownership(args) => remote_query(remote, QueryKind::Ownership, &args, out)?,
        Command::Holdings(args) => remote_query(remote, QueryKind::Holdings, &args, out)?,
        Command::Partnerships(args) => remote_query(remote, QueryKind::Partnerships, &args, out)?,
        Command::Executives(args) => remote_query(remote, QueryKind::Executives, &args, out)?,
        Command::Career(args) => remote_query(remote, QueryKind::Career, &args, out)?,
        Command::Log { entity } => {
            let filter = entity.map(|e| format!("&entity={}", encode(&e))).unwrap_or_default();
            let mut after = 0;
            loop {
                let reply = remote.get(&format!("/events?after={after}{filter}"))?;
                let page: LogBody = serde_json::from_str(&reply.body).context("reading the server's answer")?;
                let Some(last) = page.events.last().and_then(|e| e.get("seq")).and_then(serde_json::Value::as_u64)
                else {
                    break;
                };
                for event in page.events {
                    writeln!(out, "{event}")?;
                }
                after = last;
            }
        }
        Command::Query { file } => {
            let mut text = String::new();
            open_input(file.as_deref())?.read_to_string(&mut text).context("cannot read the queries as UTF-8 text")?;
            out.write_all(remote.post("/query", "application/x-ndjson", &text)?.body.as_bytes())?;
        }
        Command::Verify { json } => {
            let verified: Verified = serde_json::from_str(&remote.get("/verify")?.body)?;
            print_verified(out, &verified, json)?;
        }
        other => {
            let name = format!("{other:?}");
            let name = name.split([' ', '{', '(']).next().unwrap_or("this command").to_lowercase();
            return Err(anyhow::anyhow!(
                "`{name}` does not go through --server (only append, log, query, verify and the five queries do): \
                 run it on the ledger's machine without --server, with the server stopped"
            ));
        }
    }
    Ok(())
}

/// The answer of `POST /events`, as the client reads it.
#[derive(serde::Deserialize)]
struct AppendedBody {
    appended: Vec<Appended>,
    last_seq: u64,
}

/// The answer of `GET /events`, as the client reads it.
#[derive(serde::Deserialize)]
struct LogBody {
    events: Vec<serde_json::Value>,
}

/// The answer of `verify`, as printed with `--json` and by `GET /verify`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Verified {
    ok: bool,
    last_seq: u64,
    hash: String,
}

impl From<dealledger::answer::Verified> for Verified {
    fn from(v: dealledger::answer::Verified) -> Self {
        Self { ok: true, last_seq: v.last_seq, hash: v.hash }
    }
}

fn print_verified(out: &mut dyn Write, verified: &Verified, json: bool) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(verified)?)?;
    } else {
        writeln!(out, "ok: {} events, hash chain intact", verified.last_seq)?;
        writeln!(out, "head seq {} hash {}", verified.last_seq, verified.hash)?;
    }
    Ok(())
}

/// The blocking threads of the server's runtime: twice the cores, at least 4
/// (appends wait for the writer lock on one of them while queries go on).
fn blocking_threads() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).max(4))
}

/// Serves the ledger over HTTP until SIGINT or SIGTERM.
fn serve(db: &Path, addr: std::net::SocketAddr, config: dealledger::server::Config) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let ledger =
        std::sync::Arc::new(Ledger::open_with(db, &dealledger::Options { create: true, ..Default::default() })?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Few blocking threads, kept busy: a query takes microseconds, and
        // waking one of many idle threads per request costs more than it.
        .max_blocking_threads(blocking_threads())
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        // The first line of stdout names the address (useful with port 0).
        println!("listening on http://{local}");
        io::stdout().flush()?;
        tracing::info!(ledger = %db.display(), %local, auth = config.token.is_some(), "serving");
        let verified = dealledger::server::serve(ledger, listener, &config, dealledger::server::stop_signal()).await?;
        eprintln!("stopped; ledger verified: head seq {} hash {}", verified.last_seq, verified.hash);
        Ok(())
    })
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
                    Phase::Writing(n) => (2, format!("writing and indexing {n} events")),
                };
                bar.set_position(step);
                bar.set_message(message);
            }
        })
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    print_appended(out, &appended?, before, ledger.last_seq(), json)
}

/// The output of `append`: one JSON line per event, or a summary that tells
/// new events (seq above `before`) from retries of stored ones.
fn print_appended(out: &mut dyn Write, appended: &[Appended], before: u64, head: u64, json: bool) -> Result<()> {
    if json {
        for a in appended {
            writeln!(out, "{}", serde_json::json!({"seq": a.seq, "id": a.id}))?;
        }
        return Ok(());
    }
    let new = appended.iter().filter(|a| a.seq > before).count();
    let retried = appended.len() - new;
    let again = if retried > 0 { format!(", {retried} already stored") } else { String::new() };
    match new {
        0 => writeln!(out, "appended nothing new{again}; head seq {head}")?,
        _ => writeln!(out, "appended {new} events (seq {}..{head}){again}; head seq {head}", before + 1)?,
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
    let bar = indicatif::ProgressBar::new(3);
    let style = indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:20} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

fn one_query(db: &Path, kind: QueryKind, args: &QueryArgs, out: &mut dyn Write) -> Result<()> {
    let answer = Ledger::open(db)?.answer_typed(kind, &args.id, args.at())?;
    print_answer(out, &answer, args.json)
}

/// One of the five queries through `GET /…/{id}/…?as_of=…&known_at=…`.
fn remote_query(remote: &Remote, kind: QueryKind, args: &QueryArgs, out: &mut dyn Write) -> Result<()> {
    let route = match kind {
        QueryKind::Ownership => "companies/{}/ownership",
        QueryKind::Holdings => "holders/{}/holdings",
        QueryKind::Partnerships => "companies/{}/partnerships",
        QueryKind::Executives => "companies/{}/executives",
        QueryKind::Career => "people/{}/career",
    };
    let mut path = format!("/{}?as_of={}", route.replace("{}", &encode(&args.id)), args.at().as_of);
    if let Some(known_at) = &args.known_at {
        path.push_str(&format!("&known_at={}", encode(&known_at.text)));
    }
    let body = remote.get(&path)?.body;
    let parse = || -> serde_json::Result<Answer> {
        Ok(match kind {
            QueryKind::Ownership => Answer::Ownership(serde_json::from_str(&body)?),
            QueryKind::Holdings => Answer::Holdings(serde_json::from_str(&body)?),
            QueryKind::Partnerships => Answer::Partnerships(serde_json::from_str(&body)?),
            QueryKind::Executives => Answer::Executives(serde_json::from_str(&body)?),
            QueryKind::Career => Answer::Career(serde_json::from_str(&body)?),
        })
    };
    print_answer(out, &parse().context("reading the server's answer")?, args.json)
}

fn print_answer(out: &mut dyn Write, answer: &Answer, json: bool) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(answer)?)?;
        return Ok(());
    }
    match answer {
        Answer::Ownership(a) => table::ownership(out, a),
        Answer::Holdings(a) => table::holdings(out, a),
        Answer::Partnerships(a) => table::partnerships(out, a),
        Answer::Executives(a) => table::executives(out, a),
        Answer::Career(a) => table::career(out, a),
    }
}
