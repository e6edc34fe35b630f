//! Differential test: the real ledger against the independent reference model
//! of `tests/model` (a brute-force reading of CONTRACT.md §1–§3 and §6).
//!
//! Generated histories (testkit) are appended to a fresh ledger in chunks of
//! random sizes and to the model line by line; random queries (as
//! `bench/gen_queries.py` draws them) must get the same JSON from both. On a
//! mismatch the query, both answers and the events naming the entity are
//! printed.

mod model;

use chrono::{Datelike, NaiveDate};
use dealledger::testkit::Rng;
use dealledger::testkit::{generate, GenOptions};
use dealledger::{At, Date, KnownAt, Ledger, QueryKind};
use model::Model;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const COMMANDS: [&str; 5] = ["ownership", "holdings", "partnerships", "executives", "career"];
const EVENTS: usize = 3000;
const QUERIES: usize = 400;
const AS_OF_MAX: &str = "2026-06-30";

fn day(text: &str) -> i64 {
    i64::from(NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap().num_days_from_ce())
}

fn date_of(days: i64) -> String {
    NaiveDate::from_num_days_from_ce_opt(days as i32).unwrap().format("%Y-%m-%d").to_string()
}

fn ledger_answer(ledger: &Ledger, cmd: &str, id: &str, as_of: &str, known_at: Option<u64>) -> Result<Value, String> {
    let kind = QueryKind::parse(cmd).map_err(|e| e.to_string())?;
    let as_of = Date::parse(as_of)?;
    let known_at = known_at.map_or(KnownAt::Latest, KnownAt::Seq);
    ledger.answer(kind, id, At { as_of, known_at }).map_err(|e| e.to_string())
}

/// Both errors, or the same answer.
fn agree(model: &Result<Value, String>, ledger: &Result<Value, String>) -> bool {
    match (model, ledger) {
        (Ok(m), Ok(l)) => model::same(m, l, false),
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

/// Where two answers first differ, as a JSON pointer with both values.
fn first_diff(a: &Value, b: &Value, path: &str, loose: bool) -> Option<String> {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            let found =
                x.iter().zip(y).enumerate().find_map(|(i, (x, y))| first_diff(x, y, &format!("{path}/{i}"), loose));
            found.or_else(|| (x.len() != y.len()).then(|| format!("{path}: {} vs {} items", x.len(), y.len())))
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys: Vec<&String> = x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(v), Some(w)) => first_diff(v, w, &format!("{path}/{k}"), loose || k == "look_through"),
                (v, w) => Some(format!("{path}/{k}: model {v:?}, ledger {w:?}")),
            })
        }
        _ => (!model::same(a, b, loose)).then(|| format!("{path}: model {a}, ledger {b}")),
    }
}

fn show(answer: &Result<Value, String>) -> String {
    match answer {
        Ok(v) => v.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

/// The stored lines (with their seq) that name `entity`, the completions and
/// terminations of the deals among them, and the retractions of any of them.
fn events_of(lines: &[String], entity: &str) -> String {
    let quoted = format!("\"{entity}\"");
    let named: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains(&quoted)).collect();
    let mut keep: Vec<usize> = named.clone();
    let parsed = |i: usize| serde_json::from_str::<Value>(&lines[i]).unwrap();
    let deals: Vec<String> =
        named.iter().filter_map(|&i| parsed(i).get("deal").and_then(Value::as_str).map(str::to_owned)).collect();
    for (i, line) in lines.iter().enumerate() {
        if deals.iter().any(|d| line.contains(&format!("\"deal\":\"{d}\""))) {
            keep.push(i);
        }
    }
    let ids: Vec<String> =
        keep.iter().filter_map(|&i| parsed(i).get("id").and_then(Value::as_str).map(str::to_owned)).collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains("\"retraction\"") && ids.iter().any(|id| line.contains(id.as_str())) {
            keep.push(i);
        }
    }
    keep.sort_unstable();
    keep.dedup();
    keep.iter().map(|&i| format!("  seq {}: {}\n", i + 1, lines[i])).collect()
}

/// Compares one query; on a mismatch returns a report.
fn check(ledger: &Ledger, model: &Model, lines: &[String], q: &Value) -> Option<String> {
    let cmd = q["cmd"].as_str().unwrap();
    let id = q["id"].as_str().unwrap();
    let as_of = q["as_of"].as_str().unwrap();
    let known_at = q["known_at"].as_u64();
    let m = model.answer(cmd, id, as_of, known_at);
    let l = ledger_answer(ledger, cmd, id, as_of, known_at);
    if agree(&m, &l) {
        return None;
    }
    let mut report = format!("MISMATCH {q}\n  model:  {}\n  ledger: {}\n", show(&m), show(&l));
    if let (Ok(m), Ok(l)) = (&m, &l) {
        report.push_str(&format!("  first difference at {}\n", first_diff(m, l, "", false).unwrap_or_default()));
    }
    report.push_str(&format!("  events of {id}:\n"));
    report.push_str(&events_of(lines, id));
    Some(report)
}

/// Appends `lines` to a fresh ledger in random chunks and to a model line by
/// line.
fn load(lines: &[String], rng: &mut Rng) -> (tempfile::TempDir, Ledger, Model) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_or_create(dir.path().join("db")).unwrap();
    let mut model = Model::new();
    let mut at = 0;
    while at < lines.len() {
        let n = (rng.between(1, 500) as usize).min(lines.len() - at);
        let chunk = &lines[at..at + n];
        let appended = ledger
            .append_text(&chunk.join("\n"))
            .unwrap_or_else(|e| panic!("ledger refused the chunk of lines {}..{}: {e}", at + 1, at + n));
        assert_eq!(appended.len(), n, "one Appended per event");
        for (i, a) in appended.iter().enumerate() {
            assert_eq!(a.seq, (at + i + 1) as u64, "seq of line {}", at + i + 1);
        }
        for line in chunk {
            model.append(line);
        }
        at += n;
    }
    assert_eq!(ledger.last_seq(), model.last_seq());
    (dir, ledger, model)
}

/// Random queries over a stream, mirroring bench/gen_queries.py (with a
/// third of them at a known-at seq), plus a few that must fail (before the
/// entity exists, or known before its registration).
fn queries(lines: &[String], rng: &mut Rng, count: usize) -> Vec<Value> {
    let (mut companies, mut persons) = (Vec::new(), Vec::new());
    let mut reg: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut buyers: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let ev: Value = serde_json::from_str(line).unwrap();
        let field = |k: &str| ev.get(k).and_then(Value::as_str).map(str::to_owned);
        let eff = field("effective").unwrap_or_default();
        match field("type").unwrap().as_str() {
            "company_registered" => {
                let c = field("company").unwrap();
                reg.entry(c.clone()).or_insert((eff, i as u64 + 1));
                companies.push(c);
            }
            "person_registered" => {
                let p = field("person").unwrap();
                reg.entry(p.clone()).or_insert((eff, i as u64 + 1));
                persons.push(p);
            }
            "acquisition" | "deal_announced" => buyers.push(field("acquirer").unwrap()),
            "stake_sold" => buyers.extend(field("buyer")),
            _ => {}
        }
    }
    buyers.sort();
    buyers.dedup();
    buyers.retain(|b| reg.contains_key(b));
    let everyone: Vec<String> = companies.iter().chain(&persons).cloned().collect();
    let last = lines.len() as u64;
    let hi = day(AS_OF_MAX);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let cmd = *rng.pick(&COMMANDS);
        let entity = match cmd {
            "career" => rng.pick(&persons),
            "holdings" if !buyers.is_empty() && rng.chance(80) => rng.pick(&buyers),
            "holdings" => rng.pick(&everyone),
            _ => rng.pick(&companies),
        }
        .clone();
        let (reg_date, reg_seq) = reg[&entity].clone();
        let lo = day(&reg_date);
        let mut as_of = date_of(rng.between(lo as u64, lo.max(hi) as u64) as i64);
        let mut known_at = if rng.chance(33) { Some(rng.between(reg_seq, last)) } else { None };
        if rng.chance(3) {
            // Not existing yet on as_of: an error for both.
            as_of = date_of(lo - rng.between(1, 3000) as i64);
        } else if rng.chance(2) && reg_seq > 1 {
            // Not yet known: an error for both.
            known_at = Some(rng.between(0, reg_seq - 1));
        } else if rng.chance(2) {
            known_at = Some(last + rng.between(1, 100));
        }
        out.push(json!({"cmd": cmd, "id": entity, "as_of": as_of, "known_at": known_at}));
    }
    out
}

fn differential(seed: u64) {
    let lines = generate(&GenOptions { events: EVENTS, seed, ..Default::default() }).expect("testkit generates");
    assert!(
        lines.iter().all(|l| serde_json::from_str::<Value>(l).unwrap().get("id").is_some()),
        "the model needs every generated event to carry its id"
    );
    let mut rng = Rng::new(seed ^ 0xD1FF_5EED);
    let (_dir, ledger, model) = load(&lines, &mut rng);
    let mut qs = queries(&lines, &mut rng, QUERIES);
    // Plus a sweep of ownership and holdings of every company at the end of
    // the range, so that the ownership cycles the generator makes are looked
    // through and followed up.
    for line in &lines {
        let ev: Value = serde_json::from_str(line).unwrap();
        if ev["type"] == "company_registered" {
            for cmd in ["ownership", "holdings"] {
                qs.push(json!({"cmd": cmd, "id": ev["company"], "as_of": AS_OF_MAX, "known_at": null}));
            }
        }
    }
    let mut per_cmd: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut reports = Vec::new();
    for q in &qs {
        let entry = per_cmd.entry(COMMANDS.iter().find(|c| **c == q["cmd"]).unwrap()).or_default();
        entry.0 += 1;
        if let Some(r) = check(&ledger, &model, &lines, q) {
            entry.1 += 1;
            reports.push(r);
        }
    }
    for r in reports.iter().take(5) {
        eprintln!("{r}");
    }
    assert!(
        reports.is_empty(),
        "seed {seed}: {} of {} queries disagree (queries, mismatches per command: {per_cmd:?}); the first are above",
        reports.len(),
        qs.len()
    );
}

#[test]
fn differential_seed_1() {
    differential(1);
}

#[test]
fn differential_seed_2() {
    differential(2);
}

#[test]
fn differential_seed_3() {
    differential(3);
}

/// The scenario of examples/data, appended in one call: every command at a
/// few dates and known-at points.
#[test]
fn scale_ai_scenario() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/scale-ai.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_or_create(dir.path().join("db")).unwrap();
    assert_eq!(ledger.append_text(&text).unwrap().len(), 18);
    let mut model = Model::new();
    for line in &lines {
        model.append(line);
    }

    // The model first reproduces the scenario's documented answers.
    let own = |as_of, k| model.answer("ownership", "scale-ai", as_of, k).unwrap();
    assert_eq!(own("2025-06-11", None)["holders"], json!([]));
    assert_eq!(own("2025-06-11", None)["unattributed_pct"], json!(100));
    let meta49 = json!([{"holder": "meta", "stake_pct": 49, "since": "2025-06-12"}]);
    assert_eq!(own("2025-06-15", None)["holders"], meta49);
    assert_eq!(own("2025-06-15", None)["unattributed_pct"], json!(51));
    assert_eq!(own("2025-06-15", Some(16))["holders"], meta49);
    assert_eq!(own("2025-06-15", Some(17))["holders"], json!([]));
    assert_eq!(
        model.answer("partnerships", "openai", "2025-06-15", None).unwrap()["partnerships"],
        json!([{"partner": "scale-ai", "scope": "AI training data", "since": null, "last_affirmed": "2025-06-13"}])
    );
    assert_eq!(model.answer("partnerships", "openai", "2025-06-20", None).unwrap()["partnerships"], json!([]));
    assert_eq!(
        model.answer("career", "alexandr-wang", "2025-07-01", None).unwrap()["past"],
        json!([{"company": "scale-ai", "role": "CEO", "from": "2016-06-01", "to": "2025-06-12"}])
    );
    assert_eq!(model.answer("ownership", "meta", "2020-01-01", None).unwrap()["name"], json!("Facebook"));
    assert_eq!(model.answer("ownership", "meta", "2021-10-28", None).unwrap()["name"], json!("Meta Platforms"));

    let targets: [(&str, &[&str]); 5] = [
        ("ownership", &["scale-ai", "meta", "openai", "alexandr-wang", "nobody"]),
        ("holdings", &["meta", "alexandr-wang", "scale-ai"]),
        ("partnerships", &["openai", "scale-ai", "meta"]),
        ("executives", &["scale-ai", "openai", "meta"]),
        ("career", &["alexandr-wang", "jason-droege", "sarah-friar", "meta"]),
    ];
    let dates = ["2010-01-01", "2016-06-01", "2020-01-01", "2025-06-11", "2025-06-12", "2025-06-15", "2025-06-20"];
    let mut reports = Vec::new();
    let mut ok_answers = 0;
    for (cmd, ids) in targets {
        for id in ids {
            for as_of in dates.iter().copied().chain(["2025-07-01"]) {
                for known_at in [None, Some(10), Some(16), Some(17), Some(18), Some(99)] {
                    let q = json!({"cmd": cmd, "id": id, "as_of": as_of, "known_at": known_at});
                    ok_answers += usize::from(model.answer(cmd, id, as_of, known_at).is_ok());
                    reports.extend(check(&ledger, &model, &lines, &q));
                }
            }
        }
    }
    assert!(ok_answers > 300, "most scenario queries have an answer ({ok_answers})");
    for r in reports.iter().take(5) {
        eprintln!("{r}");
    }
    assert!(reports.is_empty(), "{} scenario queries disagree; the first are above", reports.len());
}

/// A hand-made history for the corners random histories rarely reach: a
/// control cycle, a person at the top of a chain, half-up rounding of an
/// exact look-through, a sum that rounds to 0, a same-day sell-out and
/// re-purchase, re-appointment to a held role, departures and moves without a
/// role, a role that starts and ends the same day, partnerships continued
/// without being formed, re-formed and with several scopes, pending deals
/// with an overriding completion, stakes as strings and decimals, a rename,
/// a late event and the retraction of it and of a registration.
const CORNERS: &str = r#"{"type":"company_registered","effective":"2000-01-01","company":"alpha","name":"Alpha"}
{"type":"company_registered","effective":"2000-01-01","company":"beta","name":"Beta","jurisdiction":"US-DE"}
{"type":"company_registered","effective":"2000-01-01","company":"gamma","name":"Gamma"}
{"type":"company_registered","effective":"2000-01-01","company":"delta","name":"Delta"}
{"type":"company_registered","effective":"2000-01-01","company":"eps","name":"Epsilon"}
{"type":"company_registered","effective":"2000-01-01","company":"phi","name":"Phi"}
{"type":"company_registered","effective":"2000-01-01","company":"gee","name":"Gee"}
{"type":"person_registered","effective":"2000-01-01","person":"pat","name":"Pat One"}
{"type":"person_registered","effective":"2000-01-01","person":"sam","name":"Sam Two"}
{"type":"executive_appointed","effective":"2000-02-01","person":"sam","company":"beta","role":"CTO"}
{"type":"executive_appointed","effective":"2000-06-01","person":"pat","company":"alpha","role":"CEO","interim":true}
{"type":"executive_appointed","effective":"2000-06-01","person":"pat","company":"alpha","role":"Director"}
{"type":"acquisition","effective":"2001-01-01","acquirer":"alpha","target":"beta","stake_pct":60}
{"type":"acquisition","effective":"2001-01-01","acquirer":"beta","target":"gamma","stake_pct":"60"}
{"type":"acquisition","effective":"2001-01-02","acquirer":"gamma","target":"alpha","stake_pct":60.0}
{"type":"acquisition","effective":"2001-01-02","acquirer":"pat","target":"alpha","stake_pct":30}
{"type":"executive_appointed","effective":"2001-01-01","person":"pat","company":"alpha","role":"CEO","interim":false}
{"type":"partnership_formed","effective":"2001-01-01","partners":["alpha","beta"]}
{"type":"partnership_formed","effective":"2001-03-01","partners":["beta","alpha"],"scope":"x"}
{"type":"partnership_continued","effective":"2001-06-01","partners":["beta","alpha"],"scope":null}
{"type":"partnership_formed","effective":"2001-02-01","partners":["gamma","alpha"],"scope":"research"}
{"type":"company_renamed","effective":"2002-01-01","company":"alpha","name":"Alpha Two"}
{"type":"partnership_ended","effective":"2002-01-01","partners":["alpha","beta"],"reason":"done"}
{"type":"partnership_continued","effective":"2002-06-01","partners":["alpha","beta"]}
{"type":"partnership_continued","effective":"2002-09-01","partners":["alpha","beta"]}
{"type":"partnership_ended","effective":"2002-02-01","partners":["gamma","alpha"],"scope":"research"}
{"type":"partnership_formed","effective":"2002-03-01","partners":["gamma","alpha"],"scope":"research"}
{"type":"acquisition","effective":"2002-01-01","acquirer":"sam","target":"delta","stake_pct":10}
{"type":"stake_sold","effective":"2003-01-01","seller":"sam","target":"delta","stake_pct":10}
{"type":"acquisition","effective":"2003-01-01","acquirer":"sam","target":"delta","stake_pct":5}
{"type":"executive_moved","effective":"2003-01-01","person":"sam","from":{"company":"beta"},"to":{"company":"gamma","role":"CEO","interim":true}}
{"type":"acquisition","effective":"2003-02-01","acquirer":"pat","target":"eps","stake_pct":60}
{"type":"acquisition","effective":"2003-02-01","acquirer":"delta","target":"eps","stake_pct":0.5}
{"type":"acquisition","effective":"2003-02-01","acquirer":"eps","target":"phi","stake_pct":"0.15"}
{"type":"acquisition","effective":"2003-02-01","acquirer":"phi","target":"gee","stake_pct":0.0001}
{"type":"acquisition","effective":"2003-03-01","acquirer":"gamma","target":"eps","stake_pct":"12.50","seller":"pat"}
{"type":"stake_sold","effective":"2003-04-01","seller":"pat","target":"eps","stake_pct":7.5,"buyer":"gamma"}
{"type":"deal_announced","effective":"2003-12-01","deal":"dl0","acquirer":"gamma","target":"delta","stake_pct":5}
{"type":"deal_announced","effective":"2004-01-01","deal":"dl2","acquirer":"beta","target":"delta","stake_pct":10}
{"type":"deal_announced","effective":"2004-01-01","deal":"dl1","acquirer":"alpha","target":"delta","stake_pct":20,"consideration":{"amount":"1000.5","currency":"USD"}}
{"type":"executive_departed","effective":"2004-01-01","person":"pat","company":"alpha"}
{"type":"deal_completed","effective":"2004-06-01","deal":"dl1","stake_pct":"25.5"}
{"type":"deal_terminated","effective":"2004-07-01","deal":"dl2"}
{"type":"executive_appointed","effective":"2005-01-01","person":"sam","company":"delta","role":"Advisor"}
{"type":"executive_departed","effective":"2005-01-01","person":"sam","company":"delta","role":"Advisor"}
{"type":"deal_announced","effective":"2005-02-01","deal":"dl3","acquirer":"pat","target":"beta","stake_pct":40,"seller":"alpha"}
{"type":"deal_completed","effective":"2005-03-01","deal":"dl3"}
{"id":"00000000-0000-7000-8000-00000000000a","type":"acquisition","effective":"2001-06-01","acquirer":"beta","target":"delta","stake_pct":10}
{"id":"00000000-0000-7000-8000-00000000000b","type":"company_registered","effective":"2006-01-01","company":"zed","name":"Zed"}
{"type":"retraction","retracts":"00000000-0000-7000-8000-00000000000a","reason":"wrong"}
{"type":"retraction","retracts":"00000000-0000-7000-8000-00000000000b","reason":"duplicate"}"#;

#[test]
fn corner_cases() {
    let lines: Vec<String> = CORNERS.lines().map(str::to_owned).collect();
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open_or_create(dir.path().join("db")).unwrap();
    let appended = ledger.append_text(CORNERS).unwrap_or_else(|e| panic!("ledger refused the corner cases: {e}"));
    assert_eq!(appended.len(), lines.len());
    let mut model = Model::new();
    for line in &lines {
        model.append(line);
    }
    let last = model.last_seq();

    // The model's reading of the corners, stated once by hand.
    let ask = |cmd: &str, id: &str, as_of: &str| model.answer(cmd, id, as_of, None).unwrap();
    let alpha = ask("ownership", "alpha", "2002-01-01");
    assert_eq!((&alpha["name"], &alpha["controlled_by"]), (&json!("Alpha Two"), &json!("gamma")));
    assert_eq!(alpha["ultimate_controller"], json!("beta"), "alpha <- gamma <- beta <- alpha: stop before alpha");
    assert_eq!(ask("ownership", "eps", "2003-02-01")["ultimate_controller"], json!("pat"));
    let delta = ask("ownership", "delta", "2004-01-01");
    assert_eq!(delta["holders"], json!([{"holder": "sam", "stake_pct": 5, "since": "2003-01-01"}]));
    assert_eq!(
        delta["pending_deals"],
        json!([{"deal": "dl0", "acquirer": "gamma", "stake_pct": 5, "announced": "2003-12-01"},
               {"deal": "dl1", "acquirer": "alpha", "stake_pct": 20, "announced": "2004-01-01"},
               {"deal": "dl2", "acquirer": "beta", "stake_pct": 10, "announced": "2004-01-01"}])
    );
    assert_eq!(ask("ownership", "delta", "2004-07-01")["unattributed_pct"], json!(69.5));
    let look = ask("holdings", "delta", "2003-02-01")["look_through"].clone();
    assert_eq!(
        look,
        json!([{"company": "eps", "effective_pct": 0.5}, {"company": "phi", "effective_pct": 0.0008},
               {"company": "gee", "effective_pct": 0}]),
        "0.5% x 0.15% = 0.00075% rounds half up; 7.5e-10% is above 0"
    );
    let exec = ask("executives", "alpha", "2003-01-01")["executives"].clone();
    assert_eq!(
        exec[0],
        json!({"person": "pat", "name": "Pat One", "role": "CEO", "interim": false, "since": "2000-06-01"})
    );
    let sam = ask("career", "sam", "2005-01-01");
    assert_eq!(
        sam["past"][1],
        json!({"company": "delta", "role": "Advisor", "from": "2005-01-01", "to": "2005-01-01"})
    );
    assert_eq!(
        ask("partnerships", "alpha", "2002-09-01")["partnerships"],
        json!([{"partner": "beta", "scope": null, "since": null, "last_affirmed": "2002-09-01"},
               {"partner": "beta", "scope": "x", "since": "2001-03-01", "last_affirmed": null},
               {"partner": "gamma", "scope": "research", "since": "2002-03-01", "last_affirmed": null}])
    );
    assert!(model.answer("ownership", "zed", "2007-01-01", None).is_err());
    assert!(model.answer("ownership", "zed", "2007-01-01", Some(last - 1)).is_ok());

    // Then every command, entity, date and a few known-at points against the
    // ledger.
    let entities = ["alpha", "beta", "gamma", "delta", "eps", "phi", "gee", "pat", "sam", "zed", "nobody"];
    let mut dates: Vec<String> = vec!["1999-12-31".into(), "2030-01-01".into()];
    for line in &lines {
        if let Some(d) = serde_json::from_str::<Value>(line).unwrap()["effective"].as_str() {
            dates.push(d.to_owned());
            dates.push(date_of(day(d) - 1));
        }
    }
    dates.sort();
    dates.dedup();
    let known: Vec<Option<u64>> =
        [None, Some(8), Some(30), Some(last - 3), Some(last - 2), Some(last - 1), Some(last)].into_iter().collect();
    let mut reports = Vec::new();
    for cmd in COMMANDS {
        for id in entities {
            for as_of in &dates {
                for k in &known {
                    let q = json!({"cmd": cmd, "id": id, "as_of": as_of, "known_at": k});
                    reports.extend(check(&ledger, &model, &lines, &q));
                }
            }
        }
    }
    for r in reports.iter().take(5) {
        eprintln!("{r}");
    }
    assert!(reports.is_empty(), "{} corner-case queries disagree; the first are above", reports.len());
}
