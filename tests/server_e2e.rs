//! The HTTP API end to end: the real `dealledger serve` on port 0, driven
//! over sockets — append, read back, subscribe while appends race, many
//! clients at once, `--server` on the command line, the token, and a
//! graceful stop that leaves the ledger verified.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;

const SCENARIO: &str = include_str!("../examples/data/scale-ai.jsonl");
const BIN: &str = env!("CARGO_BIN_EXE_dealledger");

/// A running server over a ledger in a temporary directory.
struct Server {
    dir: TempDir,
    child: Option<Child>,
    url: String,
}

impl Server {
    /// Starts `dealledger serve` on a free port over a ledger seeded with `events`.
    fn start(events: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        if !events.is_empty() {
            let seed = dir.path().join("seed.jsonl");
            std::fs::write(&seed, events).expect("write seed");
            let out = cli(dir.path(), &["append", seed.to_str().expect("path")]);
            assert!(out.status.success(), "seed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Self::start_in(dir, extra, env)
    }

    fn start_in(dir: TempDir, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut command = Command::new(BIN);
        command
            .arg("--db")
            .arg(dir.path().join("db"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .env_remove("DEALLEDGER_SERVER")
            .env_remove("DEALLEDGER_TOKEN")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = command.spawn().expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).expect("read the address");
        let url =
            first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("first line: {first:?}")).to_owned();
        Self { dir, child: Some(child), url }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("db")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Sends SIGTERM and waits: the server must exit 0 after verifying the ledger.
    fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let pid = i32::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = child.wait().expect("wait");
        assert!(status.success(), "server exit {status:?}\n{}", self.log());
        assert!(self.log().contains("ledger verified"), "{}", self.log());
        assert!(!self.db().join("server.url").exists(), "the server removes its URL file");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the binary on `dir/db` without a server.
fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--db")
        .arg(dir.join("db"))
        .args(args)
        .env_remove("DEALLEDGER_SERVER")
        .env_remove("DEALLEDGER_TOKEN")
        .output()
        .expect("run dealledger")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn get(url: &str) -> (u16, Value) {
    let mut response = agent().get(url).call().expect("GET");
    let status = response.status().as_u16();
    let text = response.body_mut().with_config().limit(u64::MAX).read_to_string().expect("body");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
}

fn post(agent: &ureq::Agent, url: &str, body: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = agent.post(url).header("content-type", "application/x-ndjson");
    if let Some(token) = token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let mut response = request.send(body).expect("POST");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().expect("body");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
}

fn company(id: &str) -> String {
    json!({"type": "company_registered", "effective": "2020-01-01", "company": id, "name": id}).to_string()
}

fn acquisition(acquirer: &str, target: &str, pct: u32) -> String {
    json!({"type": "acquisition", "effective": "2021-01-01", "acquirer": acquirer, "target": target, "stake_pct": pct})
        .to_string()
}

/// Reads a subscription until it has seen `last`, returning the seqs in order.
fn subscribe(url: &str, last_event_id: Option<u64>, last: u64) -> Vec<u64> {
    let mut request = agent().get(url).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", &id.to_string());
    }
    let response = request.call().expect("subscribe");
    assert_eq!(response.status().as_u16(), 200);
    let mut seqs = Vec::new();
    let mut reader = BufReader::new(response.into_body().into_reader());
    let mut line = String::new();
    let mut id = None;
    while seqs.last() != Some(&last) {
        line.clear();
        assert!(reader.read_line(&mut line).expect("read the stream") > 0, "stream ended after {seqs:?}");
        let line = line.trim_end();
        if let Some(value) = line.strip_prefix("id: ").or_else(|| line.strip_prefix("id:")) {
            id = Some(value.trim().parse::<u64>().expect("id is a seq"));
        } else if let Some(data) = line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:")) {
            let event: Value = serde_json::from_str(data).expect("data is JSON");
            assert_eq!(event["seq"].as_u64(), id, "id: is the event's seq");
            seqs.push(event["seq"].as_u64().expect("seq"));
        }
    }
    seqs
}

#[test]
fn serve_append_read_back_subscribe_and_stop() {
    let mut server = Server::start("", &[], &[]);
    let (status, health) = get(&format!("{}/health", server.url));
    assert_eq!((status, health["last_seq"].as_u64()), (200, Some(0)));
    let (status, body) = post(&agent(), &format!("{}/events", server.url), SCENARIO, None);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["last_seq"], 18);
    let (status, cap) = get(&format!("{}/companies/scale-ai/ownership?as_of=2025-07-01", server.url));
    assert_eq!(status, 200);
    assert_eq!(cap["holders"], json!([{"holder": "meta", "stake_pct": 49, "since": "2025-06-12"}]));
    let (_, page) = get(&format!("{}/events?after=16", server.url));
    assert_eq!(page["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(subscribe(&format!("{}/events/stream?after=10", server.url), None, 18), (11..=18).collect::<Vec<_>>());
    let held = cli(server.dir.path(), &["verify"]);
    let stderr = String::from_utf8_lossy(&held.stderr);
    assert_eq!(held.status.code(), Some(1));
    assert!(stderr.contains("--server") && stderr.contains(&server.url), "a held ledger names its server: {stderr}");
    server.stop();
    let after = cli(server.dir.path(), &["verify", "--json"]);
    assert!(after.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&after.stdout).expect("json")["last_seq"], 18);
}

#[test]
fn subscriptions_have_no_gap_and_no_duplicate_while_appends_race() {
    const APPENDS: u64 = 150;
    let mut server = Server::start(SCENARIO, &[], &[]);
    let last = 18 + APPENDS;
    let start = Arc::new(Barrier::new(4));
    let url = server.url.clone();
    let go = Arc::clone(&start);
    let appender = thread::spawn(move || {
        let agent = agent();
        go.wait();
        for i in 0..APPENDS {
            let (status, body) = post(&agent, &format!("{url}/events"), &company(&format!("race-{i}")), None);
            assert_eq!(status, 201, "{body}");
        }
    });
    // Subscribers join at different moments of the race, from different points.
    let subscribers: Vec<_> = [(Some(0), None, 0u64), (Some(5), None, 5), (None, Some(12), 40)]
        .into_iter()
        .map(|(after, last_event_id, delay_ms)| {
            let url = server.url.clone();
            let go = Arc::clone(&start);
            thread::spawn(move || {
                go.wait();
                thread::sleep(Duration::from_millis(delay_ms));
                let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
                let from = after.or(last_event_id).unwrap_or(0);
                (from, subscribe(&format!("{url}/events/stream{query}"), last_event_id, last))
            })
        })
        .collect();
    appender.join().expect("appender");
    for handle in subscribers {
        let (from, seqs) = handle.join().expect("subscriber");
        assert_eq!(seqs, (from + 1..=last).collect::<Vec<_>>(), "every event once, in seq order, from {from}");
    }
    server.stop();
}

#[test]
fn many_clients_at_once_keep_every_rule_and_lose_nothing() {
    const CLIENTS: usize = 8;
    const ROUNDS: usize = 12;
    let mut server = Server::start(&company("hub"), &[], &[]);
    let handles: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let url = server.url.clone();
            thread::spawn(move || {
                let agent = agent();
                let (mut acknowledged, mut seen) = (Vec::new(), Vec::new());
                for r in 0..ROUNDS {
                    let me = format!("c{c}-{r}");
                    let body = [company(&me), acquisition(&me, "hub", 1)].join("\n");
                    let (status, answer) = post(&agent, &format!("{url}/events"), &body, None);
                    match status {
                        201 => acknowledged.extend(answer["appended"].as_array().expect("appended").iter().cloned()),
                        // 96 stakes of 1% in the hub fit: a refusal here is a bug.
                        other => panic!("client {c}: {other} {answer}"),
                    }
                    // Every client also tries stakes over 100%, which must always be refused whole.
                    let other = format!("{me}-x");
                    let bad = [company(&other), acquisition("hub", &other, 60), acquisition(&me, &other, 50)];
                    let (status, answer) = post(&agent, &format!("{url}/events"), &bad.join("\n"), None);
                    assert_eq!((status, answer["error"]["index"].as_u64()), (422, Some(2)), "{answer}");
                    let (status, cap) = get(&format!("{url}/companies/hub/ownership?as_of=2030-01-01"));
                    assert_eq!(status, 200);
                    seen.push(cap);
                }
                (acknowledged, seen)
            })
        })
        .collect();
    let (acknowledged, seen): (Vec<Vec<Value>>, Vec<Vec<Value>>) =
        handles.into_iter().map(|h| h.join().expect("client")).unzip();
    // No reader saw part of an append: each answer read during the race is
    // the answer as known at its own known_at_seq, asked again afterwards.
    for cap in seen.into_iter().flatten() {
        let seq = cap["known_at_seq"].as_u64().expect("known_at_seq");
        let (_, again) = get(&format!("{}/companies/hub/ownership?as_of=2030-01-01&known_at={seq}", server.url));
        assert_eq!(again, cap, "the answer at seq {seq}");
    }
    let mut acknowledged: Vec<(u64, String)> = acknowledged
        .into_iter()
        .flatten()
        .map(|a| (a["seq"].as_u64().expect("seq"), a["id"].as_str().expect("id").to_owned()))
        .collect();
    acknowledged.sort();
    let (_, log) = get(&format!("{}/events?after=1", server.url));
    let stored: Vec<(u64, String)> = log["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| (e["seq"].as_u64().expect("seq"), e["id"].as_str().expect("id").to_owned()))
        .collect();
    assert_eq!(stored, acknowledged, "the log is exactly what the clients were told");
    assert_eq!(stored.len(), CLIENTS * ROUNDS * 2);
    let (_, cap) = get(&format!("{}/companies/hub/ownership?as_of=2030-01-01", server.url));
    assert_eq!(cap["holders"].as_array().map(Vec::len), Some(CLIENTS * ROUNDS));
    server.stop();
    assert!(cli(server.dir.path(), &["verify"]).status.success());
}

#[test]
fn the_cli_through_server_prints_what_it_prints_locally() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = dir.path().join("seed.jsonl");
    std::fs::write(&seed, SCENARIO).expect("seed");
    let seed = seed.to_str().expect("path").to_owned();
    let queries = dir.path().join("queries.jsonl");
    std::fs::write(
        &queries,
        "{\"cmd\":\"ownership\",\"id\":\"scale-ai\",\"as_of\":\"2025-07-01\"}\n{\"cmd\":\"career\",\"id\":\"nobody\"}\n",
    )
    .expect("queries");
    let queries = queries.to_str().expect("path").to_owned();
    let commands: Vec<Vec<&str>> = vec![
        vec!["ownership", "scale-ai", "--as-of", "2025-07-01"],
        vec!["ownership", "scale-ai", "--as-of", "2025-06-15", "--known-at", "16", "--json"],
        vec!["holdings", "meta", "--as-of", "2025-07-01"],
        vec!["partnerships", "openai", "--as-of", "2025-07-01", "--json"],
        vec!["executives", "scale-ai", "--as-of", "2025-07-01"],
        vec!["career", "alexandr-wang", "--as-of", "2025-07-01"],
        vec!["career", "alexandr-wang", "--as-of", "2025-07-01", "--json"],
        vec!["ownership", "nobody"],
        vec!["log"],
        vec!["log", "--entity", "openai"],
        vec!["query", &queries],
        vec!["verify"],
    ];
    assert!(cli(dir.path(), &["append", &seed]).status.success());
    let local: Vec<_> = commands.iter().map(|args| cli(dir.path(), args)).collect();
    let mut server = Server::start_in(dir, &[], &[]);
    for (args, local) in commands.iter().zip(&local) {
        let remote = Command::new(BIN)
            .args(["--server", &server.url])
            .args(args)
            .env_remove("DEALLEDGER_DB")
            .env_remove("DEALLEDGER_TOKEN")
            .output()
            .expect("run");
        assert_eq!(remote.status.code(), local.status.code(), "{args:?}: {}", String::from_utf8_lossy(&remote.stderr));
        assert_eq!(String::from_utf8_lossy(&remote.stdout), String::from_utf8_lossy(&local.stdout), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&remote.stderr), String::from_utf8_lossy(&local.stderr), "{args:?}");
    }
    // An append through the server prints the same summary as a local one.
    let more = server.dir.path().join("more.jsonl");
    std::fs::write(&more, [company("zeta"), acquisition("meta", "zeta", 5)].join("\n")).expect("more");
    let env_server = Command::new(BIN)
        .args(["append", more.to_str().expect("path")])
        .env("DEALLEDGER_SERVER", &server.url)
        .output()
        .expect("append");
    assert_eq!(String::from_utf8_lossy(&env_server.stdout), "appended 2 events (seq 19..20); head seq 20\n");
    let again = Command::new(BIN)
        .args(["--server", &server.url, "append", more.to_str().expect("path")])
        .output()
        .expect("append");
    assert_eq!(again.status.code(), Some(1), "zeta is registered already");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.starts_with("dealledger: line 1: company_registered"), "the refusal names the line: {stderr}");
    let refused = Command::new(BIN)
        .args(["--server", &server.url, "append"])
        .arg(server.dir.path().join("nope.jsonl"))
        .output()
        .expect("append");
    assert_eq!(refused.status.code(), Some(1));
    let export = Command::new(BIN).args(["--server", &server.url, "export"]).output().expect("export");
    assert_eq!(export.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&export.stderr).contains("does not go through --server"));
    server.stop();
}

#[test]
fn with_a_token_posts_need_it_and_it_never_reaches_the_log() {
    const TOKEN: &str = "tok-5b1d0c2e-never-logged";
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
    let token_arg = token_file.to_str().expect("path").to_owned();
    let mut server = Server::start_in(dir, &["--token-file", &token_arg], &[("RUST_LOG", "trace")]);
    let url = format!("{}/events", server.url);
    let (status, body) = post(&agent(), &url, &company("a"), None);
    assert_eq!((status, body["error"]["kind"].as_str()), (401, Some("unauthorized")));
    let (status, _) = post(&agent(), &url, &company("a"), Some("wrong"));
    assert_eq!(status, 401);
    let (status, _) = post(&agent(), &url, &company("a"), Some(TOKEN));
    assert_eq!(status, 201);
    let through_cli = Command::new(BIN)
        .args(["--server", &server.url, "append", "-"])
        .env("DEALLEDGER_TOKEN", TOKEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(company("b").as_bytes())?;
            child.wait_with_output()
        })
        .expect("append");
    assert!(through_cli.status.success());
    assert_eq!(get(&format!("{}/health", server.url)).1["last_seq"], 2);
    server.stop();
    let log = server.log();
    assert!(log.contains("/events"), "requests are logged: {log}");
    assert!(!log.contains(TOKEN), "the token must never be logged");
}

#[test]
fn a_stop_during_appends_finishes_them_and_loses_nothing() {
    let mut server = Server::start(&company("hub"), &[], &[]);
    let url = server.url.clone();
    let appender = thread::spawn(move || {
        let agent = agent();
        let mut acknowledged = 0u64;
        for i in 0.. {
            let batch: Vec<String> = (0..50).map(|j| company(&format!("s{i}-{j}"))).collect();
            match agent.post(&format!("{url}/events")).send(batch.join("\n")) {
                Ok(mut r) if r.status().as_u16() == 201 => {
                    let mut text = String::new();
                    r.body_mut().as_reader().read_to_string(&mut text).expect("body");
                    acknowledged =
                        serde_json::from_str::<Value>(&text).expect("json")["last_seq"].as_u64().expect("seq");
                }
                _ => break,
            }
        }
        acknowledged
    });
    thread::sleep(Duration::from_millis(700));
    server.stop();
    let acknowledged = appender.join().expect("appender");
    assert!(acknowledged > 1, "some appends went through before the stop");
    let out = cli(server.dir.path(), &["verify", "--json"]);
    assert!(out.status.success());
    let last = serde_json::from_slice::<Value>(&out.stdout).expect("json")["last_seq"].as_u64().expect("seq");
    assert!(last >= acknowledged, "acknowledged {acknowledged}, stored {last}");
    assert_eq!((last - 1) % 50, 0, "whole batches only: {last}");
}

#[test]
fn a_subscriber_that_never_reads_holds_up_nobody() {
    use std::io::Write;
    let mut server = Server::start(&company("hub"), &["--shutdown-grace", "1"], &[]);
    let address = server.url.trim_start_matches("http://").to_owned();
    // A subscriber that asks for the stream and then never reads a byte.
    let mut stalled = std::net::TcpStream::connect(&address).expect("connect");
    write!(stalled, "GET /events/stream?after=0 HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n")
        .expect("request");
    // Far more than the socket buffers hold, so the stalled stream's writes block.
    let note = "n".repeat(6_000);
    let agent = agent();
    for i in 0..40 {
        let batch: Vec<String> = (0..50)
            .map(|j| {
                json!({"type": "company_registered", "effective": "2020-01-01", "company": format!("slow-{i}-{j}"),
                       "name": "x", "note": note})
                .to_string()
            })
            .collect();
        let (status, body) = post(&agent, &format!("{}/events", server.url), &batch.join("\n"), None);
        assert_eq!(status, 201, "{body}");
    }
    // Other clients are served, and a reading subscriber gets everything.
    assert_eq!(get(&format!("{}/health", server.url)).1["last_seq"], 2_001);
    assert_eq!(subscribe(&format!("{}/events/stream?after=1990", server.url), None, 2_001).len(), 11);
    // Nor does it hold up a stop: after the grace period the server closes it.
    server.stop();
    drop(stalled);
}
