//! HTTP load figures of `dealledger serve` (issue 4, item 8): requests/s and
//! latency of the §7 API under concurrent keep-alive connections, printed as
//! ONE markdown table on stdout (progress goes to stderr).
//!
//! ```text
//! cargo build --release && cargo run --release --example load -- [--events N] [--seconds S]
//! ```
//!
//! What it does:
//!
//! 1. Generates N events (default 1,000,000) with `dealledger::testkit` and
//!    appends them with the release binary (`target/release/dealledger
//!    append`) to a ledger in a temporary directory — or reuses the ledger of
//!    `--ledger PATH` (building it there first when PATH does not exist).
//! 2. Starts the release `dealledger serve --addr 127.0.0.1:0` on it with
//!    `RUST_LOG=warn`, reads the address from its first stdout line, and
//!    measures, each figure for S seconds (default 10) after a warm-up
//!    (default 2 s) on the same connections:
//!    * `GET /health` with 64 connections: the ceiling of this client and the
//!      HTTP stack with no ledger work (the client's own cost, measured);
//!    * `GET /companies/{id}/ownership?as_of=…` for random generated companies
//!      and dates between their registration and 2026-06-30, with 1, 8 and 64
//!      connections;
//!    * `POST /events` of single events (a new company's registration, then a
//!      1% acquisition of it by a random generated company: every rule check
//!      runs, and every append is durable) with 1 and 8 connections;
//!    * `POST /events` of batches of 1,000 such events (500 registrations,
//!      then 500 acquisitions; `application/x-ndjson`) with 1 and 4 connections.
//! 3. Stops the server with SIGTERM, restarts it with the default `info`
//!    logging (what users get: one log line per request, to a file here) and
//!    measures the 64-connection ownership figure again.
//! 4. With the server stopped, runs the same requests through the library in
//!    this process (`Ledger::answer_typed` + JSON with 1 and 2 threads,
//!    `Ledger::append_text` of one event and of a batch of 1,000): the cost of
//!    the ledger itself, without HTTP, on the same machine at the same time.
//! 5. Checks: the server exited 0 on SIGTERM both times, `dealledger verify`
//!    passes, and its last seq equals the seq before the run plus the events
//!    acknowledged (201, or `Ok` in-process; warm-up included): nothing
//!    acknowledged was lost, nothing unacknowledged was stored.
//!
//! Every response is checked (200 for GETs, 201 for POSTs); any other status
//! or an I/O error counts as an error, and a figure with errors is marked
//! invalid. Latency is measured per request, from writing the request to
//! reading the last byte of the answer. The client is one OS thread per
//! connection, speaking HTTP/1.1 with keep-alive on a raw `TcpStream` (the
//! default) or through `ureq` agents (`--client ureq`, to compare); its CPU
//! time, the server's and the rest of the machine's are read during each
//! figure (`getrusage`, `/proc/PID/stat`, `/proc/stat`) and printed beside it,
//! so a figure limited by the client, or by other load on the machine, shows.
//! `--binary PATH` measures another build of `dealledger` with the same client.

#[path = "support/mod.rs"]
mod support;

use support::{date_text, day_of, err, find_binary, fmt_secs, group, number, percentile, Res};

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dealledger::testkit::{generate_with, GenOptions, Rng};
use dealledger::{At, Date, Ledger, QueryKind};
use serde::Deserialize;

const USAGE: &str = "usage: cargo run --release --example load -- [--events N] [--seconds S] [--warmup S] [--ledger PATH] [--seed S] [--client raw|ureq] [--only LIST]

  --events N      events in the generated ledger (default 1000000)
  --seconds S     measured seconds of each figure (default 10)
  --warmup S      unmeasured seconds before each figure (default 2)
  --ledger PATH   use (or build, when absent, and keep) the ledger at PATH instead of a temporary one
  --seed S        generator and request seed (default 42)
  --client C      raw (HTTP/1.1 on a TcpStream, default) or ureq
  --only LIST     comma-separated figures to run: health,get,post,batch,info,lib (default all)
  --binary PATH   the dealledger binary to measure (default target/release/dealledger)

Build the binary first: cargo build --release && cargo run --release --example load";

/// The latest `as_of` of a generated ownership query.
const AS_OF_MAX: &str = "2026-06-30";
/// Effective dates of the posted events: after every generated event.
const POST_REGISTERED: &str = "2026-01-15";
const POST_ACQUIRED: &str = "2026-02-01";
/// Events per posted batch.
const BATCH: usize = 1_000;
/// Targets of the issue.
const GET_TARGET: f64 = 20_000.0;
const BATCH_TARGET: f64 = 50_000.0;
const FIGURES: [&str; 6] = ["health", "get", "post", "batch", "info", "lib"];

// ------------------------------------------------------------------ arguments

#[derive(Clone, Copy, PartialEq)]
enum ClientKind {
    Raw,
    Ureq,
}

struct Args {
    events: usize,
    seconds: f64,
    warmup: f64,
    ledger: Option<PathBuf>,
    seed: u64,
    client: ClientKind,
    only: HashSet<String>,
    binary: Option<PathBuf>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        events: 1_000_000,
        seconds: 10.0,
        warmup: 2.0,
        ledger: None,
        seed: 42,
        client: ClientKind::Raw,
        only: FIGURES.iter().map(|f| f.to_string()).collect(),
        binary: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--events" => args.events = number(&flag, &value()?)?,
            "--seconds" => args.seconds = number(&flag, &value()?)?,
            "--warmup" => args.warmup = number(&flag, &value()?)?,
            "--ledger" => args.ledger = Some(PathBuf::from(value()?)),
            "--seed" => args.seed = number(&flag, &value()?)?,
            "--binary" => args.binary = Some(PathBuf::from(value()?)),
            "--client" => {
                args.client = match value()?.as_str() {
                    "raw" => ClientKind::Raw,
                    "ureq" => ClientKind::Ureq,
                    other => return Err(format!("--client: raw or ureq, not {other}")),
                }
            }
            "--only" => {
                args.only = value()?.split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect();
                if let Some(bad) = args.only.iter().find(|f| !FIGURES.contains(&f.as_str())) {
                    return Err(format!("--only: unknown figure {bad} (one of {})", FIGURES.join(", ")));
                }
            }
            // `cargo bench` passes --bench to every target; tolerate it
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !args.seconds.is_finite() || args.seconds <= 0.0 || !args.warmup.is_finite() || args.warmup < 0.0 {
        return Err("--seconds must be above 0 and --warmup at least 0".into());
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
            eprintln!("load: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let bin = match &args.binary {
        Some(path) if path.is_file() => Ok(path.clone()),
        Some(path) => Err(format!("--binary {}: no such file", path.display())),
        None => find_binary("load"),
    };
    let result = bin.and_then(|bin| run(&args, &bin));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("load: the run is NOT valid (errors, or a failed final check): see above");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}

macro_rules! progress {
    ($($arg:tt)*) => { eprintln!("load: {}", format_args!($($arg)*)) };
}

// ------------------------------------------------------------------ formatting

// ------------------------------------------------------------------ CPU accounting

/// CPU seconds at one moment: this process (the client), the server, and the
/// whole machine (busy, and of it interrupts: summed over cores).
#[derive(Clone, Copy, Default)]
struct Cpu {
    client: f64,
    server: f64,
    busy: f64,
    irq: f64,
}

/// Shares of one core over an interval: this process, the server (NaN when
/// in-process), and the rest of the machine's busy time: other processes,
/// steal, and interrupt work charged to no process (loopback TCP's softirq
/// when it runs outside the client and the server; `irq` is all interrupt
/// work, shown apart because the kernel charges some of it to the process
/// it interrupted, so it overlaps the other shares).
#[derive(Clone, Copy, Default)]
struct Shares {
    client: f64,
    server: f64,
    rest: f64,
    irq: f64,
}

impl Shares {
    fn text(self) -> String {
        let pct = |x: f64| if x.is_nan() { "—".to_string() } else { format!("{:.0}", x * 100.0) };
        format!("{} / {} / {} ({})", pct(self.client), pct(self.server), pct(self.rest), pct(self.irq))
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

impl Cpu {
    fn now(server_pid: Option<u32>) -> Self {
        let ticks = clock_ticks();
        // SAFETY: getrusage writes into the zeroed struct we own.
        let client = unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut ru);
            let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            tv(ru.ru_utime) + tv(ru.ru_stime)
        };
        // /proc/PID/stat: after the `(comm)`, field 3 is the state; utime and stime are fields 14 and 15.
        let server = server_pid
            .and_then(|pid| fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .and_then(|s| {
                let rest = s.rsplit_once(") ")?.1.split_whitespace().collect::<Vec<_>>();
                Some((rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?) / ticks)
            })
            .unwrap_or(f64::NAN);
        // /proc/stat `cpu` line: user nice system idle iowait irq softirq steal …
        let (busy, irq) = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                let line = s.lines().next()?;
                let v: Vec<f64> = line.split_whitespace().skip(1).take(8).filter_map(|x| x.parse().ok()).collect();
                let total: f64 = v.iter().sum();
                let idle = v.get(3)? + v.get(4)?;
                Some(((total - idle) / ticks, (v.get(5)? + v.get(6)?) / ticks))
            })
            .unwrap_or((f64::NAN, f64::NAN));
        Self { client, server, busy, irq }
    }

    /// Shares of one core over the interval: client, server, everything else.
    fn shares(self, later: Self, wall: f64) -> Shares {
        let client = (later.client - self.client) / wall;
        let server = (later.server - self.server) / wall;
        let irq = (later.irq - self.irq) / wall;
        let rest = ((later.busy - self.busy) / wall - client - if server.is_nan() { 0.0 } else { server }).max(0.0);
        Shares { client, server, rest, irq }
    }
}

// ------------------------------------------------------------------ the server

/// A running `dealledger serve`.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Kept open: the server's stdout.
    _stdout: BufReader<ChildStdout>,
    stderr: PathBuf,
}

impl Server {
    /// Starts the server on `ledger`; `log` is `RUST_LOG` (None: unset, the default `info`).
    fn start(bin: &Path, ledger: &Path, log: Option<&str>, stderr: &Path) -> Res<Self> {
        let mut cmd = Command::new(bin);
        cmd.arg("--db").arg(ledger).args(["serve", "--addr", "127.0.0.1:0"]);
        match log {
            Some(level) => cmd.env("RUST_LOG", level),
            None => cmd.env_remove("RUST_LOG"),
        };
        let err_file = File::create(stderr).map_err(err("server stderr file"))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err_file))
            .spawn()
            .map_err(err("cannot start dealledger serve"))?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line).map_err(err("reading the server's first line"))?;
        let addr = line.trim().strip_prefix("listening on http://").and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            let text = fs::read_to_string(stderr).unwrap_or_default();
            return Err(format!("the server did not say where it listens ({:?}): {}", line.trim(), text.trim()));
        };
        Ok(Self { child, addr, _stdout: stdout, stderr: stderr.to_path_buf() })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits (the server verifies the ledger before it exits).
    /// Returns whether it exited 0, and how long stopping took.
    fn stop(mut self) -> Res<(bool, f64)> {
        let t = Instant::now();
        // SAFETY: kill with a pid of our own child.
        if unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) } != 0 {
            return Err(format!("kill -TERM {}: {}", self.child.id(), std::io::Error::last_os_error()));
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Some(status) = self.child.try_wait().map_err(err("wait for the server"))? {
                let secs = t.elapsed().as_secs_f64();
                if !status.success() {
                    let text = fs::read_to_string(&self.stderr).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    progress!("server exited with {status}; last stderr lines: {:?}", tail);
                }
                return Ok((status.success(), secs));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err("the server did not stop within 600 s of SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

// ------------------------------------------------------------------ HTTP clients

/// One request to send.
struct Req {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: String,
    /// The status that counts as success.
    expect: u16,
    /// Events this request appends (0 for a GET).
    events: u64,
}

/// One keep-alive connection.
trait Conn {
    /// Sends `req` and reads the whole answer; Err on an I/O error or an
    /// unexpected status (with the start of the body).
    fn send(&mut self, req: &Req) -> Result<(), String>;
}

fn connect(kind: ClientKind, addr: SocketAddr) -> Box<dyn Conn> {
    match kind {
        ClientKind::Raw => Box::new(RawConn { addr, stream: None, buf: Vec::with_capacity(1 << 16), out: Vec::new() }),
        ClientKind::Ureq => {
            let config = ureq::Agent::config_builder().http_status_as_error(false).build();
            Box::new(UreqConn { agent: config.into(), base: format!("http://{addr}") })
        }
    }
}

/// HTTP/1.1 on a `TcpStream`: the request written in one `write_all`, the
/// answer read by `Content-Length` (or chunked), the connection kept open.
struct RawConn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl Conn for RawConn {
    fn send(&mut self, req: &Req) -> Result<(), String> {
        let result = self.exchange(req);
        if result.is_err() {
            self.stream = None; // reconnect on the next request
        }
        let (status, body_start, body_end) = result?;
        if status != req.expect {
            let body = String::from_utf8_lossy(&self.buf[body_start..body_end]);
            return Err(format!("{} {} answered {status}: {}", req.method, req.path, snippet(&body)));
        }
        Ok(())
    }
}

impl RawConn {
    /// Returns the status and the body's range in `buf`.
    fn exchange(&mut self, req: &Req) -> Result<(u16, usize, usize), String> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).map_err(err("connect"))?;
            s.set_nodelay(true).map_err(err("nodelay"))?;
            self.stream = Some(s);
        }
        let stream = self.stream.as_mut().ok_or("no stream")?;
        self.out.clear();
        write!(self.out, "{} {} HTTP/1.1\r\nHost: {}\r\n", req.method, req.path, self.addr).map_err(err("format"))?;
        if let Some(ct) = req.content_type {
            write!(self.out, "Content-Type: {ct}\r\nContent-Length: {}\r\n", req.body.len()).map_err(err("format"))?;
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(req.body.as_bytes());
        stream.write_all(&self.out).map_err(err("write"))?;

        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            fill(stream, &mut self.buf)?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(err("response head"))?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line: {}", snippet(head)))?;
        let mut length = None;
        let mut chunked = false;
        for line in head.split("\r\n").skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
            }
        }
        if chunked {
            // Decode in place: move each chunk's bytes down to the end of the body so far.
            let mut body_end = head_end;
            let mut pos = head_end;
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf[pos..], b"\r\n") {
                        break pos + i;
                    }
                    fill(stream, &mut self.buf)?;
                };
                let size_text = std::str::from_utf8(&self.buf[pos..line_end]).map_err(err("chunk size"))?;
                let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(err("chunk size"))?;
                let data = line_end + 2;
                while self.buf.len() < data + size + 2 {
                    fill(stream, &mut self.buf)?;
                }
                if size == 0 {
                    break;
                }
                self.buf.copy_within(data..data + size, body_end);
                body_end += size;
                pos = data + size + 2;
            }
            Ok((status, head_end, body_end))
        } else {
            let length = length.ok_or("an answer without Content-Length or chunked encoding")?;
            while self.buf.len() < head_end + length {
                fill(stream, &mut self.buf)?;
            }
            Ok((status, head_end, head_end + length))
        }
    }
}

/// Reads more bytes into `buf`; an error at end of stream.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 16 << 10];
    let n = stream.read(&mut chunk).map_err(err("read"))?;
    if n == 0 {
        return Err("the server closed the connection".into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn snippet(text: &str) -> String {
    text.chars().take(300).collect()
}

/// The same through a `ureq` agent (one per connection).
struct UreqConn {
    agent: ureq::Agent,
    base: String,
}

impl Conn for UreqConn {
    fn send(&mut self, req: &Req) -> Result<(), String> {
        let url = format!("{}{}", self.base, req.path);
        let response = match req.method {
            "GET" => self.agent.get(&url).call(),
            _ => self
                .agent
                .post(&url)
                .header("content-type", req.content_type.unwrap_or("application/json"))
                .send(&req.body),
        };
        let mut response = response.map_err(err("ureq"))?;
        let status = response.status().as_u16();
        let body = response.body_mut().with_config().limit(u64::MAX).read_to_vec().map_err(err("ureq body"))?;
        if status != req.expect {
            return Err(format!(
                "{} {} answered {status}: {}",
                req.method,
                req.path,
                snippet(&String::from_utf8_lossy(&body))
            ));
        }
        Ok(())
    }
}

/// The same requests answered by the library in this process, as the
/// handlers answer them (the answer serialized to JSON; an append of the
/// body's text): the cost of the ledger without HTTP.
struct LibConn {
    ledger: Arc<Ledger>,
}

impl Conn for LibConn {
    fn send(&mut self, req: &Req) -> Result<(), String> {
        match req.method {
            "GET" => {
                let (id, as_of) = req
                    .path
                    .strip_prefix("/companies/")
                    .and_then(|p| p.split_once("/ownership?as_of="))
                    .ok_or_else(|| format!("the library runs only ownership queries, not {}", req.path))?;
                let at = At::date(Date::parse(as_of)?);
                let answer = self.ledger.answer_typed(QueryKind::Ownership, id, at).map_err(|e| e.to_string())?;
                let json = serde_json::to_vec(&answer).map_err(err("serialize"))?;
                std::hint::black_box(json);
                Ok(())
            }
            _ => self.ledger.append_text(&req.body).map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

// ------------------------------------------------------------------ the generated corpus

/// The fields of an event line that the requests need.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "type")]
    kind: String,
    effective: Option<String>,
    company: Option<String>,
}

/// The generated companies and their registration days.
#[derive(Default)]
struct Corpus {
    companies: Vec<(String, i32)>,
}

impl Corpus {
    fn add(&mut self, line: &str) {
        let Ok(p) = serde_json::from_str::<Probe>(line) else { return };
        if p.kind == "company_registered" {
            if let (Some(c), Some(day)) = (p.company, p.effective.as_deref().and_then(day_of)) {
                // companies this tool posted are left out: only the generated history is queried
                if !c.starts_with("load-") {
                    self.companies.push((c, day));
                }
            }
        }
    }
}

/// Generates `events` events into `path`; returns their companies.
fn generate(path: &Path, events: usize, seed: u64) -> Res<Corpus> {
    let opts = GenOptions { events, seed, ..GenOptions::default() };
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).map_err(err("create"))?);
    let mut corpus = Corpus::default();
    let mut failed: Option<std::io::Error> = None;
    generate_with(&opts, |line| {
        corpus.add(line);
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
    Ok(corpus)
}

/// The companies of an existing ledger, from `dealledger log`.
fn read_corpus(bin: &Path, ledger: &Path) -> Res<Corpus> {
    let mut child = Command::new(bin)
        .arg("--db")
        .arg(ledger)
        .arg("log")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(err("cannot start dealledger log"))?;
    let mut corpus = Corpus::default();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    for line in BufReader::with_capacity(1 << 20, stdout).lines() {
        corpus.add(&line.map_err(err("reading dealledger log"))?);
    }
    let out = child.wait_with_output().map_err(err("dealledger log"))?;
    if !out.status.success() {
        return Err(format!("dealledger log failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(corpus)
}

/// Runs `dealledger ARGS`; its stdout, or an error with its stderr.
fn dealledger(bin: &Path, args: &[&str]) -> Res<String> {
    let out = Command::new(bin).args(args).stdin(Stdio::null()).output().map_err(err("cannot start dealledger"))?;
    if !out.status.success() {
        return Err(format!(
            "`dealledger {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[derive(Deserialize)]
struct Verified {
    last_seq: u64,
    hash: String,
}

// ------------------------------------------------------------------ workloads

#[derive(Clone, Copy, PartialEq)]
enum Work {
    Health,
    Ownership,
    PostOne,
    PostBatch,
}

/// Makes the requests of one connection.
struct Maker {
    work: Work,
    /// Unique per figure and connection: the posted ids never repeat, even on a reused ledger.
    tag: String,
    count: u64,
    rng: Rng,
    corpus: Arc<Corpus>,
    as_of_max: i32,
}

impl Maker {
    fn next(&mut self) -> Req {
        let n = self.count;
        self.count += 1;
        match self.work {
            Work::Health => get("/health".into()),
            Work::Ownership => {
                let (company, reg) = self.rng.pick(&self.corpus.companies);
                let day = self.rng.between(*reg as u64, (*reg).max(self.as_of_max) as u64) as i32;
                get(format!("/companies/{company}/ownership?as_of={}", date_text(day)))
            }
            Work::PostOne => {
                let company = format!("{}-{}", self.tag, n / 2);
                let body = if n.is_multiple_of(2) { registration(&company) } else { self.acquisition(&company) };
                post("application/json", body, 1)
            }
            Work::PostBatch => {
                let mut body = String::with_capacity(BATCH * 160);
                let half = BATCH / 2;
                for j in 0..half {
                    body.push_str(&registration(&format!("{}-{n}-{j}", self.tag)));
                    body.push('\n');
                }
                for j in 0..BATCH - half {
                    body.push_str(&self.acquisition(&format!("{}-{n}-{}", self.tag, j % half)));
                    body.push('\n');
                }
                post("application/x-ndjson", body, BATCH as u64)
            }
        }
    }

    /// A 1% acquisition of `target` by a random generated company.
    fn acquisition(&mut self, target: &str) -> String {
        let acquirer = &self.rng.pick(&self.corpus.companies).0;
        format!(
            r#"{{"type":"acquisition","effective":"{POST_ACQUIRED}","acquirer":"{acquirer}","target":"{target}","stake_pct":1,"source":"load test"}}"#
        )
    }
}

fn registration(company: &str) -> String {
    format!(
        r#"{{"type":"company_registered","effective":"{POST_REGISTERED}","company":"{company}","name":"Load {company}"}}"#
    )
}

fn get(path: String) -> Req {
    Req { method: "GET", path, content_type: None, body: String::new(), expect: 200, events: 0 }
}

fn post(content_type: &'static str, body: String, events: u64) -> Req {
    Req { method: "POST", path: "/events".into(), content_type: Some(content_type), body, expect: 201, events }
}

// ------------------------------------------------------------------ one figure

/// What one figure measured.
struct Measured {
    figure: String,
    conns: usize,
    /// Requests completed inside the measured window.
    requests: u64,
    /// Events appended inside the measured window.
    events: u64,
    seconds: f64,
    latencies: Vec<Duration>,
    /// Every failed request, warm-up included.
    errors: u64,
    first_error: Option<String>,
    /// Events acknowledged with 201, warm-up and run-out included.
    acked: u64,
    cpu: Shares,
    target: Option<f64>,
}

struct Worker {
    latencies: Vec<Duration>,
    requests: u64,
    events: u64,
    errors: u64,
    first_error: Option<String>,
    acked: u64,
}

struct Setup<'a> {
    args: &'a Args,
    corpus: Arc<Corpus>,
    as_of_max: i32,
    run_tag: String,
    /// Figures measured so far: part of the posted ids, so no two figures post the same id.
    figures: std::sync::atomic::AtomicUsize,
}

/// What a figure runs against: the HTTP server, or the library in this process.
#[derive(Clone)]
enum Against<'a> {
    Http(&'a Server),
    Library(Arc<Ledger>),
}

fn measure(setup: &Setup, against: Against, figure: &str, work: Work, conns: usize, target: Option<f64>) -> Measured {
    let server_pid = match &against {
        Against::Http(server) => Some(server.pid()),
        Against::Library(_) => None,
    };
    let args = setup.args;
    progress!("{figure}, {conns} connection(s): {:.0} s warm-up + {:.0} s ...", args.warmup, args.seconds);
    let figure_no = setup.figures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = Instant::now();
    let t0 = start + Duration::from_secs_f64(args.warmup);
    let end = t0 + Duration::from_secs_f64(args.seconds);
    let (workers, cpu): (Vec<Worker>, _) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..conns)
            .map(|w| {
                let mut maker = Maker {
                    work,
                    tag: format!("load-{}-{figure_no}{}{conns}-{w}", setup.run_tag, figure_code(work)),
                    count: 0,
                    rng: Rng::new(args.seed ^ ((w as u64 + 1) << 32) ^ conns as u64 ^ (work as u64) << 48),
                    corpus: Arc::clone(&setup.corpus),
                    as_of_max: setup.as_of_max,
                };
                let kind = args.client;
                let against = against.clone();
                scope.spawn(move || {
                    let mut conn: Box<dyn Conn> = match against {
                        Against::Http(server) => connect(kind, server.addr),
                        Against::Library(ledger) => Box::new(LibConn { ledger }),
                    };
                    let mut out = Worker {
                        latencies: Vec::with_capacity(1 << 16),
                        requests: 0,
                        events: 0,
                        errors: 0,
                        first_error: None,
                        acked: 0,
                    };
                    loop {
                        let req = maker.next();
                        let sent = Instant::now();
                        if sent >= end {
                            break;
                        }
                        let result = conn.send(&req);
                        let done = Instant::now();
                        match result {
                            Ok(()) => {
                                out.acked += req.events;
                                if sent >= t0 && done <= end {
                                    out.latencies.push(done - sent);
                                    out.requests += 1;
                                    out.events += req.events;
                                }
                            }
                            Err(e) => {
                                out.errors += 1;
                                out.first_error.get_or_insert(e);
                                // an unanswered post may still have been stored: never resend it
                                std::thread::sleep(Duration::from_millis(10));
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        std::thread::sleep(t0.saturating_duration_since(Instant::now()));
        let before = Cpu::now(server_pid);
        let measured_from = Instant::now();
        std::thread::sleep(end.saturating_duration_since(Instant::now()));
        let wall = measured_from.elapsed().as_secs_f64();
        let after = Cpu::now(server_pid);
        let cpu = before.shares(after, wall);
        let workers = handles.into_iter().map(|h| h.join().expect("a client thread panicked")).collect();
        (workers, cpu)
    });
    let mut m = Measured {
        figure: figure.to_string(),
        conns,
        requests: 0,
        events: 0,
        seconds: args.seconds,
        latencies: Vec::new(),
        errors: 0,
        first_error: None,
        acked: 0,
        cpu,
        target,
    };
    for w in workers {
        m.latencies.extend(w.latencies);
        m.requests += w.requests;
        m.events += w.events;
        m.errors += w.errors;
        m.acked += w.acked;
        if m.first_error.is_none() {
            m.first_error = w.first_error;
        }
    }
    m.latencies.sort_unstable();
    progress!(
        "  {} requests/s, {} events/s, p50 {}, p99 {}, {} errors; CPU % client / server / rest (irq): {}",
        group((m.requests as f64 / m.seconds).round() as u64),
        group((m.events as f64 / m.seconds).round() as u64),
        fmt_secs(percentile(&secs(&m.latencies), 50.0)),
        fmt_secs(percentile(&secs(&m.latencies), 99.0)),
        m.errors,
        cpu.text()
    );
    if let Some(e) = &m.first_error {
        progress!("  first error: {e}");
    }
    m
}

fn figure_code(work: Work) -> &'static str {
    match work {
        Work::Health => "h",
        Work::Ownership => "g",
        Work::PostOne => "p",
        Work::PostBatch => "b",
    }
}

// ------------------------------------------------------------------ the run

/// Returns whether the run is valid (no errors, every final check passed).
fn run(args: &Args, bin: &Path) -> Res<bool> {
    let total = Instant::now();
    let tmp = tempfile::Builder::new().prefix("dealledger-load-").tempdir().map_err(err("tempdir"))?;
    let root = tmp.path().to_path_buf();
    let load_before = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    progress!("binary {}; work dir {}; load average {}", bin.display(), root.display(), load_before.trim());

    // 1. the ledger
    let (ledger, corpus) = match &args.ledger {
        Some(path) if path.exists() => {
            progress!("reusing the ledger {}: reading its companies with `dealledger log` ...", path.display());
            (path.clone(), read_corpus(bin, path)?)
        }
        other => {
            let ledger = other.clone().unwrap_or_else(|| root.join("ledger"));
            let big = root.join("events.jsonl");
            let t = Instant::now();
            let corpus = generate(&big, args.events, args.seed)?;
            progress!("generated {} events in {:.1} s", group(args.events as u64), t.elapsed().as_secs_f64());
            let t = Instant::now();
            let l = ledger.to_string_lossy().into_owned();
            dealledger(bin, &["--db", &l, "append", &big.to_string_lossy()])?;
            progress!("appended them to {} in {:.1} s", ledger.display(), t.elapsed().as_secs_f64());
            fs::remove_file(&big).map_err(err("remove the events file"))?;
            (ledger, corpus)
        }
    };
    if corpus.companies.is_empty() {
        return Err("the ledger has no generated company to query".into());
    }
    let ledger_s = ledger.to_string_lossy().into_owned();
    let setup = Setup {
        args,
        corpus: Arc::new(corpus),
        as_of_max: day_of(AS_OF_MAX).unwrap_or(0),
        run_tag: radix36(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)),
        figures: std::sync::atomic::AtomicUsize::new(0),
    };

    // 2. the server with RUST_LOG=warn
    let server = Server::start(bin, &ledger, Some("warn"), &root.join("serve-warn.stderr"))?;
    let base_seq = health_seq(server.addr)?;
    progress!("server pid {} at http://{} (RUST_LOG=warn); ledger last seq {}", server.pid(), server.addr, base_seq);
    let on = |f: &str| args.only.contains(f);
    let mut rows: Vec<Measured> = Vec::new();
    if on("health") {
        rows.push(measure(
            &setup,
            Against::Http(&server),
            "GET /health (client + HTTP ceiling)",
            Work::Health,
            64,
            None,
        ));
    }
    if on("get") {
        for conns in [1, 8, 64] {
            let target = (conns == 64).then_some(GET_TARGET);
            rows.push(measure(
                &setup,
                Against::Http(&server),
                "GET /companies/{id}/ownership",
                Work::Ownership,
                conns,
                target,
            ));
        }
    }
    if on("post") {
        for conns in [1, 8] {
            rows.push(measure(&setup, Against::Http(&server), "POST /events, 1 event", Work::PostOne, conns, None));
        }
    }
    if on("batch") {
        for conns in [1, 4] {
            rows.push(measure(
                &setup,
                Against::Http(&server),
                "POST /events, batch of 1,000 (x-ndjson)",
                Work::PostBatch,
                conns,
                Some(BATCH_TARGET),
            ));
        }
    }
    progress!("stopping the server (SIGTERM) ...");
    let (exit_warn, stop_secs) = server.stop()?;
    progress!("  exited {} after {:.1} s", if exit_warn { "0" } else { "NON-ZERO" }, stop_secs);

    // 3. default logging
    let mut exit_info = true;
    let mut info_log = 0u64;
    if on("info") {
        let log_path = root.join("serve-info.stderr");
        let server = Server::start(bin, &ledger, None, &log_path)?;
        progress!("server pid {} at http://{} (default logging: info, to a file)", server.pid(), server.addr);
        rows.push(measure(
            &setup,
            Against::Http(&server),
            "GET /companies/{id}/ownership, default `info` logging",
            Work::Ownership,
            64,
            Some(GET_TARGET),
        ));
        let (ok, secs) = server.stop()?;
        exit_info = ok;
        info_log = fs::metadata(&log_path).map_or(0, |m| m.len());
        progress!(
            "  exited {} after {:.1} s; the log grew to {:.1} MB",
            if ok { "0" } else { "NON-ZERO" },
            secs,
            info_log as f64 / 1e6
        );
    }

    // 4. the same requests through the library in this process, for comparison
    if on("lib") {
        let ledger = Arc::new(Ledger::open(&ledger).map_err(err("open the ledger in-process"))?);
        progress!("the library in this process (no HTTP) ...");
        for threads in [1, 2] {
            let lib = Against::Library(Arc::clone(&ledger));
            rows.push(measure(
                &setup,
                lib,
                "in-process `Ledger::answer_typed` ownership + JSON",
                Work::Ownership,
                threads,
                None,
            ));
        }
        let lib = Against::Library(Arc::clone(&ledger));
        rows.push(measure(&setup, lib, "in-process `Ledger::append_text`, 1 event", Work::PostOne, 1, None));
        let lib = Against::Library(Arc::clone(&ledger));
        rows.push(measure(&setup, lib, "in-process `Ledger::append_text`, batch of 1,000", Work::PostBatch, 1, None));
    }

    // 5. nothing lost
    let acked: u64 = rows.iter().map(|m| m.acked).sum();
    let verified: Verified = serde_json::from_str(dealledger(bin, &["--db", &ledger_s, "verify", "--json"])?.trim())
        .map_err(err("reading verify --json"))?;
    let expected = base_seq + acked;
    let errors: u64 = rows.iter().map(|m| m.errors).sum();
    let load_after = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

    println!(
        "dealledger HTTP load: ledger of {} events ({}), seed {}, {} client, {:.0} s per figure after {:.0} s warm-up; \
         {} cores; load average {} before, {} after; {} s total",
        group(base_seq),
        if args.ledger.is_some() { ledger.display().to_string() } else { "generated".into() },
        args.seed,
        if args.client == ClientKind::Raw { "raw TcpStream HTTP/1.1 keep-alive" } else { "ureq keep-alive" },
        args.seconds,
        args.warmup,
        cores,
        load_before.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        load_after.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        total.elapsed().as_secs()
    );
    println!();
    println!("| figure | connections (threads in-process) | requests/s | events/s | p50 | p99 | errors | CPU % of 1 core: client / server / rest (irq) | target |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for m in &rows {
        let rps = m.requests as f64 / m.seconds;
        let eps = m.events as f64 / m.seconds;
        let target = match m.target {
            None => "—".to_string(),
            Some(t) => {
                let (value, unit) = if m.events > 0 { (eps, "events/s") } else { (rps, "requests/s") };
                let verdict = if m.errors > 0 {
                    "not valid (errors)".to_string()
                } else if value >= t {
                    "met".to_string()
                } else {
                    format!("**missed** ({:.1}× off)", t / value)
                };
                format!("≥ {} {unit}: {verdict}", group(t as u64))
            }
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.figure,
            m.conns,
            group(rps.round() as u64),
            if m.events > 0 { group(eps.round() as u64) } else { "—".into() },
            fmt_secs(percentile(&secs(&m.latencies), 50.0)),
            fmt_secs(percentile(&secs(&m.latencies), 99.0)),
            m.errors,
            m.cpu.text(),
            target
        );
    }
    println!();
    let checks = [
        (exit_warn, "server (RUST_LOG=warn) exited 0 on SIGTERM".to_string()),
        (
            exit_info,
            if on("info") { "server (default logging) exited 0 on SIGTERM" } else { "(no default-logging run)" }.into(),
        ),
        (errors == 0, format!("{errors} failed requests in all figures (warm-up included)")),
        (
            verified.last_seq == expected,
            format!(
                "`dealledger verify` passes: last seq {} = {} before + {} acknowledged (head hash {})",
                group(verified.last_seq),
                group(base_seq),
                group(acked),
                &verified.hash[..16.min(verified.hash.len())]
            ),
        ),
    ];
    for (ok, text) in &checks {
        println!("- {}: {text}", if *ok { "ok" } else { "FAILED" });
    }
    if on("info") {
        println!("- the default `info` log grew by {:.1} MB during its figure", info_log as f64 / 1e6);
    }
    println!(
        "- CPU: client = this process (for the in-process rows: the library's work), server = `dealledger serve`, rest = the rest of the machine's busy time (other processes, steal, and interrupt work charged to no process: loopback TCP), irq = all interrupt work (the kernel charges part of it to the process it interrupted, so it overlaps the others), each as a share of one core ({} cores = {}%).",
        cores,
        cores * 100
    );
    Ok(checks.iter().all(|(ok, _)| *ok))
}

/// The ledger's last seq, from `GET /health`.
fn health_seq(addr: SocketAddr) -> Res<u64> {
    let mut s = TcpStream::connect(addr).map_err(err("connect"))?;
    write!(s, "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").map_err(err("write"))?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(err("read"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).ok_or("no body in /health")?;
    #[derive(Deserialize)]
    struct Health {
        last_seq: u64,
    }
    let h: Health = serde_json::from_str(body.trim()).map_err(|e| format!("/health answered {body}: {e}"))?;
    Ok(h.last_seq)
}

fn radix36(mut n: u64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Latencies in seconds, for [`percentile`].
fn secs(latencies: &[Duration]) -> Vec<f64> {
    latencies.iter().map(Duration::as_secs_f64).collect()
}
