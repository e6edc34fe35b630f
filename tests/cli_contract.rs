//! Conformance tests of the command line against CONTRACT.md, through the
//! real binary: the Scale AI scenario (its expected answers, history,
//! batch queries, known-at, log, verify, export/import) and hand-made
//! examples of every answer the contract describes.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

// ---------------------------------------------------------------- scenario

#[test]
fn scenario_append_numbers_events_1_to_18() {
    let l = Ledger::scenario();
    let log = l.log();
    assert_eq!(seqs(&log), (1..=18).collect::<Vec<u64>>());
    assert_eq!(log[10]["id"], "0197656a-0000-7000-8000-000000000001");
}

#[test]
fn scenario_queries_match_expected() {
    let l = Ledger::scenario();
    let queries = read_data("tests/data/scale-ai.queries");
    let expected = parse_json_lines(&read_data("tests/data/scale-ai.expected.jsonl"));
    let queries: Vec<&str> = queries.lines().filter(|q| !q.trim().is_empty()).collect();
    assert_eq!(queries.len(), expected.len());
    let mut bad = Vec::new();
    for (q, want) in queries.iter().zip(&expected) {
        let args: Vec<&str> = q.split_whitespace().collect();
        let got = l.json(&args);
        if !answer_matches(want, &got) {
            bad.push(format!("{q}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(bad.is_empty(), "{} mismatches:\n{}", bad.len(), bad.join("\n"));
}

fn meta_49_on_2025_06_12() -> Value {
    json!({"state": {"company": "scale-ai", "as_of": "2025-06-12",
        "holders": [{"holder": "meta", "stake_pct": 49, "since": "2025-06-12"}],
        "unattributed_pct": 51}})
}

#[test]
fn scenario_history_in_fold_order() {
    let l = Ledger::scenario();
    let h = l.json_lines(&["history", "scale-ai"]);
    assert_eq!(seqs(&h), vec![4, 6, 7, 12, 13, 14, 18, 15, 16]);
    let day: Vec<&Value> = h.iter().filter(|x| x["effective"] == "2025-06-12").collect();
    assert_eq!(day.len(), 4);
    for line in day {
        assert_match(&meta_49_on_2025_06_12(), line);
    }
    assert_match(
        &json!({"seq": 4, "effective": "2016-06-01", "type": "company_registered",
            "event": {"company": "scale-ai", "name": "Scale AI"},
            "state": {"company": "scale-ai", "name": "Scale AI", "holders": [], "unattributed_pct": 100}}),
        &h[0],
    );
    assert_match(
        &json!({"type": "acquisition", "event": {"acquirer": "meta", "target": "scale-ai", "stake_pct": 49}}),
        &h[6],
    );
    assert!(h[6]["event"].get("seq").is_none(), "event carries no seq");
}

#[test]
fn scenario_history_known_at_16_shows_first_record() {
    let l = Ledger::scenario();
    let h = l.json_lines(&["history", "scale-ai", "--known-at", "16"]);
    assert_eq!(seqs(&h), vec![4, 6, 7, 11, 12, 13, 14, 15, 16]);
    for line in h.iter().filter(|x| x["effective"] == "2025-06-12") {
        assert_match(&meta_49_on_2025_06_12(), line);
    }
    assert_eq!(h[3]["type"], "acquisition");
    assert_eq!(h[3]["event"]["acquirer"], "meta");
}

#[test]
fn scenario_history_from_to_bounds_effective_dates() {
    let l = Ledger::scenario();
    let h = l.json_lines(&["history", "scale-ai", "--from", "2025-06-12", "--to", "2025-06-13"]);
    assert_eq!(seqs(&h), vec![12, 13, 14, 18, 15]);
    let h = l.json_lines(&["history", "scale-ai", "--from", "2025-06-14"]);
    assert_eq!(seqs(&h), vec![16]);
    let h = l.json_lines(&["history", "scale-ai", "--to", "2016-06-01"]);
    assert_eq!(seqs(&h), vec![4, 6, 7]);
}

#[test]
fn scenario_history_of_a_person_shows_career() {
    let l = Ledger::scenario();
    let h = l.json_lines(&["history", "alexandr-wang"]);
    assert_eq!(seqs(&h), vec![5, 6, 7, 13]);
    assert_match(
        &json!({"state": {"person": "alexandr-wang", "name": "Alexandr Wang", "as_of": "2025-06-12",
            "current": [
                {"company": "scale-ai", "role": "Director", "interim": false, "since": "2016-06-01"},
                {"company": "meta", "role": "Head of superintelligence effort", "interim": false, "since": "2025-06-12"}],
            "past": [{"company": "scale-ai", "role": "CEO", "from": "2016-06-01", "to": "2025-06-12"}]}}),
        &h[3],
    );
}

/// `ownership scale-ai --as-of D --known-at K` as a batch query object.
fn query_json(q: &str) -> Value {
    let parts: Vec<&str> = q.split_whitespace().collect();
    let mut obj = json!({"cmd": parts[0], "id": parts[1]});
    let mut i = 2;
    while i + 1 < parts.len() {
        match parts[i] {
            "--as-of" => obj["as_of"] = json!(parts[i + 1]),
            "--known-at" => {
                obj["known_at"] = match parts[i + 1].parse::<u64>() {
                    Ok(n) => json!(n),
                    Err(_) => json!(parts[i + 1]),
                }
            }
            other => panic!("unexpected query option {other}"),
        }
        i += 2;
    }
    obj
}

fn scenario_batch() -> (String, Vec<Value>) {
    let queries = read_data("tests/data/scale-ai.queries");
    let batch: Vec<Value> = queries.lines().filter(|q| !q.trim().is_empty()).map(query_json).collect();
    let expected = parse_json_lines(&read_data("tests/data/scale-ai.expected.jsonl"));
    (jsonl(&batch), expected)
}

fn assert_all_match(expected: &[Value], got: &[Value]) {
    assert_eq!(got.len(), expected.len(), "answer lines: {got:?}");
    for (want, got) in expected.iter().zip(got) {
        assert_match(want, got);
    }
}

#[test]
fn scenario_query_batch_from_stdin_matches_expected() {
    let l = Ledger::scenario();
    let (batch, expected) = scenario_batch();
    let out = l.run_stdin(&["query"], &batch);
    out.expect_code(0, "query");
    assert_all_match(&expected, &out.json_lines());
}

#[test]
fn scenario_query_batch_from_file_matches_expected() {
    let l = Ledger::scenario();
    let (batch, expected) = scenario_batch();
    let file = l.dir().join("batch.jsonl");
    std::fs::write(&file, batch).unwrap();
    let out = l.ok(&["query", file.to_str().unwrap()]);
    assert_all_match(&expected, &out.json_lines());
}

#[test]
fn query_batch_bad_lines_answer_error_and_others_go_on() {
    let l = Ledger::scenario();
    let expected = parse_json_lines(&read_data("tests/data/scale-ai.expected.jsonl"));
    let input = [
        r#"{"cmd": "ownership", "id": "scale-ai", "as_of": "2025-06-15"}"#,
        r#"{"cmd": "ownership", "id": "no-such-co"}"#,
        r#"this is not json"#,
        r#"{"cmd": "frobnicate", "id": "scale-ai"}"#,
        r#"{"cmd": "partnerships", "id": "openai", "as_of": "2025-06-15", "known_at": null}"#,
    ]
    .join("\n");
    let out = l.run_stdin(&["query"], &(input + "\n"));
    let got = out.json_lines();
    assert_eq!(got.len(), 5, "one answer per line:\n{}\n{}", out.stdout, out.stderr);
    assert_match(&expected[1], &got[0]);
    for bad in &got[1..4] {
        assert!(bad["error"].is_string(), "expected {{\"error\": …}}, got {bad}");
    }
    assert!(got[1]["error"].as_str().unwrap().contains("no-such-co"));
    assert_match(&expected[4], &got[4]);
}

#[test]
fn known_at_accepts_rfc3339_timestamp() {
    let l = Ledger::new();
    let lines: Vec<String> = read_data("examples/data/scale-ai.jsonl").lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 18);
    l.append(&(lines[..16].join("\n") + "\n"));
    std::thread::sleep(Duration::from_millis(1100));
    l.append(&(lines[16].clone() + "\n"));
    std::thread::sleep(Duration::from_millis(1100));
    l.append(&(lines[17].clone() + "\n"));
    let log = l.log();
    assert_eq!(log.len(), 18);
    let ts = |seq: usize| log[seq - 1]["recorded_at"].as_str().unwrap().to_string();
    assert!(ts(16) < ts(17) && ts(17) < ts(18), "recorded_at increases across appends");

    let at = |k: &str| l.json(&["ownership", "scale-ai", "--as-of", "2025-06-15", "--known-at", k]);
    assert_match(&json!({"known_at_seq": 16, "holders": [{"holder": "meta", "stake_pct": 49}]}), &at(&ts(16)));
    assert_match(&json!({"known_at_seq": 17, "holders": [], "unattributed_pct": 100}), &at(&ts(17)));
    assert_match(&json!({"known_at_seq": 18, "holders": [{"holder": "meta", "stake_pct": 49}]}), &at(&ts(18)));
    // Before anything was recorded, scale-ai is not known at all.
    l.fail(&["ownership", "scale-ai", "--known-at", "2000-01-01T00:00:00Z", "--json"]);
}

#[test]
fn known_at_seq_is_min_of_known_at_and_last_seq() {
    let l = Ledger::scenario();
    let a = l.json(&["ownership", "scale-ai", "--as-of", "2025-06-15", "--known-at", "100"]);
    assert_match(&json!({"known_at_seq": 18, "holders": [{"holder": "meta", "stake_pct": 49}]}), &a);
    let a = l.json(&["ownership", "scale-ai", "--as-of", "2025-06-15", "--known-at", "5"]);
    assert_match(&json!({"known_at_seq": 5, "holders": [], "unattributed_pct": 100}), &a);
    let a = l.json(&["ownership", "scale-ai", "--as-of", "2025-06-15"]);
    assert_match(&json!({"known_at_seq": 18}), &a);
}

#[test]
fn readable_output_shows_holders_and_partners() {
    let l = Ledger::scenario();
    let out = l.ok(&["ownership", "scale-ai", "--as-of", "2025-06-15"]);
    let text = out.stdout.to_lowercase();
    assert!(text.contains("meta") && text.contains("49"), "{}", out.stdout);
    let out = l.ok(&["partnerships", "openai", "--as-of", "2025-06-15"]);
    assert!(out.stdout.to_lowercase().contains("scale"), "{}", out.stdout);
    let out = l.ok(&["executives", "scale-ai", "--as-of", "2025-06-15"]);
    assert!(out.stdout.to_lowercase().contains("jason"), "{}", out.stdout);
    let out = l.ok(&["career", "alexandr-wang", "--as-of", "2025-07-01"]);
    assert!(out.stdout.to_lowercase().contains("meta"), "{}", out.stdout);
    let out = l.ok(&["holdings", "meta", "--as-of", "2025-07-01"]);
    assert!(out.stdout.to_lowercase().contains("scale"), "{}", out.stdout);
}

#[test]
fn log_has_ledger_fields_and_input_fields() {
    let l = Ledger::scenario();
    let log = l.log();
    let input = parse_json_lines(&read_data("examples/data/scale-ai.jsonl"));
    let mut hashes = std::collections::HashSet::new();
    for (i, (rec, inp)) in log.iter().zip(&input).enumerate() {
        assert_eq!(rec["seq"], json!(i + 1));
        assert!(rec["id"].as_str().is_some_and(|s| s.len() == 36), "{rec}");
        assert!(rec["recorded_at"].as_str().is_some_and(|s| s.contains('T')), "{rec}");
        let hash = rec["hash"].as_str().expect("hash");
        assert!(!hash.is_empty() && hashes.insert(hash.to_string()), "hashes distinct");
        assert!(rec.get("retracted_by").is_some(), "{rec}");
        let mut want = inp.clone();
        let consideration = want.as_object_mut().unwrap().remove("consideration");
        assert_match(&want, rec);
        if let Some(c) = consideration {
            assert_eq!(rec["consideration"]["currency"], c["currency"]);
            let amount = &rec["consideration"]["amount"];
            let amount = amount.as_str().map(str::to_string).unwrap_or_else(|| amount.to_string());
            assert_eq!(amount, c["amount"].as_str().unwrap(), "amount kept exactly");
        }
    }
    assert_eq!(log[10]["retracted_by"], json!(17));
    for (i, rec) in log.iter().enumerate() {
        if i != 10 {
            assert!(rec["retracted_by"].is_null(), "{rec}");
        }
    }
}

#[test]
fn log_entity_keeps_events_naming_it() {
    let l = Ledger::scenario();
    let got = seqs(&l.log_args(&["--entity", "scale-ai"]));
    for s in [4, 6, 7, 11, 12, 13, 14, 15, 16, 18] {
        assert!(got.contains(&s), "seq {s} names scale-ai: {got:?}");
    }
    for s in [1, 2, 3, 5, 8, 9, 10] {
        assert!(!got.contains(&s), "seq {s} does not name scale-ai: {got:?}");
    }
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted, "oldest first");
}

#[test]
fn verify_prints_head_seq_and_hash() {
    let l = Ledger::scenario();
    let head = l.log().last().unwrap()["hash"].as_str().unwrap().to_string();
    let out = l.verify_ok();
    assert!(out.stdout.contains("18"), "{}", out.stdout);
    assert!(out.stdout.contains(&head), "verify should print {head}: {}", out.stdout);
}

#[test]
fn export_import_export_is_byte_identical() {
    let l = Ledger::scenario();
    let export = l.ok(&["export"]).stdout;
    assert!(!parse_json_lines(&export).is_empty());
    let file = l.dir().join("export.jsonl");
    std::fs::write(&file, &export).unwrap();

    let m = Ledger::new();
    m.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(m.ok(&["export"]).stdout, export);
    assert_eq!(m.log(), l.log());
    m.verify_ok();
}

/// Replaces the first string equal to `from` anywhere in `v`.
fn replace_string(v: &mut Value, from: &str, to: &str) -> bool {
    match v {
        Value::String(s) if s == from => {
            *s = to.to_string();
            true
        }
        Value::Array(a) => a.iter_mut().any(|x| replace_string(x, from, to)),
        Value::Object(o) => o.values_mut().any(|x| replace_string(x, from, to)),
        _ => false,
    }
}

#[test]
fn import_refuses_altered_export_and_stores_nothing() {
    let l = Ledger::scenario();
    let export = l.ok(&["export"]).stdout;
    let mut changed = false;
    let altered: Vec<String> = export
        .lines()
        .map(|line| {
            if changed || line.trim().is_empty() {
                return line.to_string();
            }
            let mut v: Value = serde_json::from_str(line).unwrap();
            if replace_string(&mut v, "Scale AI", "Scale AJ") {
                changed = true;
                serde_json::to_string(&v).unwrap()
            } else {
                line.to_string()
            }
        })
        .collect();
    assert!(changed, "export should contain the name Scale AI");
    let file = l.dir().join("altered.jsonl");
    std::fs::write(&file, altered.join("\n") + "\n").unwrap();

    let m = Ledger::new();
    let out = m.run(&["import", file.to_str().unwrap()]);
    out.expect_code(1, "import of an altered export");
    assert_eq!(m.count(), 0, "nothing of a refused import is stored");
}

#[test]
fn import_refuses_a_non_empty_ledger() {
    let l = Ledger::scenario();
    let file = l.dir().join("export.jsonl");
    std::fs::write(&file, l.ok(&["export"]).stdout).unwrap();
    l.fail(&["import", file.to_str().unwrap()]);
    assert_eq!(l.count(), 18);
    l.verify_ok();
}

#[test]
fn env_dealledger_db_selects_the_ledger() {
    let l = Ledger::new();
    let events = jsonl(&companies(&["alpha"]));
    let out = run_cmd(bin(l.dir()).env("DEALLEDGER_DB", &l.db).args(["append", "--json"]), &events);
    out.expect_code(0, "append via DEALLEDGER_DB");
    assert_eq!(l.count(), 1, "the env ledger is the --db ledger");
    let out = run_cmd(bin(l.dir()).env("DEALLEDGER_DB", &l.db).args(["ownership", "alpha", "--json"]), "");
    out.expect_code(0, "ownership via DEALLEDGER_DB");
    // --db wins over the environment.
    let other = l.dir().join("other");
    let out = run_cmd(
        bin(l.dir()).env("DEALLEDGER_DB", &other).arg("--db").arg(&l.db).args(["ownership", "alpha", "--json"]),
        "",
    );
    out.expect_code(0, "--db over DEALLEDGER_DB");
    assert!(!other.exists());
}

#[test]
fn query_on_missing_ledger_fails_and_does_not_create_it() {
    let l = Ledger::new();
    for args in [vec!["ownership", "alpha"], vec!["holdings", "alpha", "--json"], vec!["history", "alpha", "--json"]] {
        l.fail(&args);
        assert!(!l.db.exists(), "{} created the ledger", args.join(" "));
    }
}

#[test]
fn unknown_id_in_query_names_it() {
    let l = Ledger::scenario();
    for cmd in ["ownership", "holdings", "partnerships", "executives", "career"] {
        let out = l.fail(&[cmd, "no-such-id", "--json"]);
        assert!(out.stderr.contains("no-such-id"), "{cmd}: {}", out.stderr);
    }
}

#[test]
fn entity_not_yet_existing_names_registration_date() {
    let l = Ledger::scenario();
    let out = l.fail(&["ownership", "scale-ai", "--as-of", "2015-01-01", "--json"]);
    assert!(out.stderr.contains("2016-06-01"), "{}", out.stderr);
    let out = l.fail(&["career", "jason-droege", "--as-of", "2025-06-11", "--json"]);
    assert!(out.stderr.contains("2025-06-12"), "{}", out.stderr);
}

#[test]
fn wrong_kind_is_an_error_like_unknown_id() {
    let l = Ledger::scenario();
    let out = l.fail(&["career", "meta", "--json"]);
    assert!(out.stderr.contains("meta"), "{}", out.stderr);
    let out = l.fail(&["ownership", "alexandr-wang", "--json"]);
    assert!(out.stderr.contains("alexandr-wang"), "{}", out.stderr);
    // holdings takes either kind.
    let a = l.json(&["holdings", "alexandr-wang"]);
    assert_match(&json!({"holder": "alexandr-wang", "direct": [], "look_through": []}), &a);
}

#[test]
fn usage_errors_exit_2() {
    let l = Ledger::new();
    l.run(&["frobnicate"]).expect_code(2, "unknown subcommand");
    l.run(&["ownership"]).expect_code(2, "missing ID");
    l.run(&["ownership", "alpha", "--no-such-flag"]).expect_code(2, "unknown flag");
}

// ------------------------------------------------------------ hand-made

#[test]
fn append_assigns_a_uuid_v7_when_id_absent() {
    let l = Ledger::new();
    let out = l.append_events(&companies(&["alpha"]));
    assert_eq!(seqs(&out), vec![1]);
    let id = out[0]["id"].as_str().unwrap();
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), vec![8, 4, 4, 4, 12], "{id}");
    assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{id}");
    assert!(parts[2].starts_with('7'), "UUIDv7: {id}");
    assert_eq!(l.log()[0]["id"], json!(id));
}

#[test]
fn append_accepts_one_pretty_printed_object() {
    let l = Ledger::new();
    let pretty = serde_json::to_string_pretty(&reg_co("alpha", "2020-01-01")).unwrap();
    assert!(pretty.lines().count() > 1);
    let out = l.run_stdin(&["append", "--json"], &pretty);
    out.expect_code(0, "append of one pretty-printed object");
    assert_eq!(l.count(), 1);
}

#[test]
fn stake_pct_as_string_with_four_decimals() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta", "gamma"]),
        &[acq("alpha", "beta", "33.3333", "2020-02-01"), acq("gamma", "beta", 12.5, "2020-02-01")],
    ));
    let a = l.json(&["ownership", "beta"]);
    assert_match(
        &json!({"holders": [{"holder": "alpha", "stake_pct": 33.3333}, {"holder": "gamma", "stake_pct": 12.5}],
            "unattributed_pct": 54.1667}),
        &a,
    );
}

#[test]
fn look_through_through_a_chain() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta", "gamma"]),
        &[acq("alpha", "beta", 60, "2020-02-01"), acq("beta", "gamma", 50, "2020-02-01")],
    ));
    let a = l.json(&["holdings", "alpha"]);
    assert_match(
        &json!({"holder": "alpha",
            "direct": [{"company": "beta", "stake_pct": 60, "since": "2020-02-01"}],
            "look_through": [{"company": "beta", "effective_pct": 60}, {"company": "gamma", "effective_pct": 30}]}),
        &a,
    );
    let a = l.json(&["holdings", "alpha", "--as-of", "2020-01-15"]);
    assert_match(&json!({"as_of": "2020-01-15", "direct": [], "look_through": []}), &a);
}

#[test]
fn look_through_sums_paths_and_rounds_to_4_decimals() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta", "gamma", "delta", "eps"]),
        &[
            acq("alpha", "beta", 60, "2020-02-01"),
            acq("alpha", "gamma", 10, "2020-02-01"),
            acq("beta", "gamma", 50, "2020-02-01"),
            acq("alpha", "delta", "33.3333", "2020-02-01"),
            acq("delta", "eps", "33.3333", "2020-02-01"),
        ],
    ));
    let a = l.json(&["holdings", "alpha"]);
    assert_match(
        &json!({"direct": [
                {"company": "beta", "stake_pct": 60},
                {"company": "delta", "stake_pct": 33.3333},
                {"company": "gamma", "stake_pct": 10}],
            "look_through": [
                {"company": "beta", "effective_pct": 60},
                {"company": "gamma", "effective_pct": 40},
                {"company": "delta", "effective_pct": 33.3333},
                {"company": "eps", "effective_pct": 11.1111}]}),
        &a,
    );
}

#[test]
fn look_through_through_a_cycle_terminates() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta", "gamma"]),
        &[
            acq("alpha", "beta", 60, "2020-02-01"),
            acq("beta", "gamma", 50, "2020-02-01"),
            acq("gamma", "beta", 20, "2020-02-01"),
            acq("gamma", "alpha", 10, "2020-02-01"),
        ],
    ));
    // No entity twice in a chain, the holder included: alpha never holds itself.
    let a = l.json(&["holdings", "alpha"]);
    assert_match(
        &json!({"look_through": [{"company": "beta", "effective_pct": 60}, {"company": "gamma", "effective_pct": 30}]}),
        &a,
    );
    // gamma -> beta 20; gamma -> alpha 10; gamma -> alpha -> beta 6.
    let a = l.json(&["holdings", "gamma"]);
    assert_match(
        &json!({"look_through": [{"company": "beta", "effective_pct": 26}, {"company": "alpha", "effective_pct": 10}]}),
        &a,
    );
}

#[test]
fn controlled_by_and_ultimate_controller_up_a_chain() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta", "gamma"]),
        &[
            reg_person("pat", "2020-01-01"),
            acq("pat", "alpha", 51, "2020-02-01"),
            acq("alpha", "beta", 60, "2020-02-01"),
            acq("beta", "gamma", 70, "2020-02-01"),
        ],
    ));
    let own = |c: &str| l.json(&["ownership", c]);
    assert_match(&json!({"controlled_by": "beta", "ultimate_controller": "pat"}), &own("gamma"));
    assert_match(&json!({"controlled_by": "alpha", "ultimate_controller": "pat"}), &own("beta"));
    assert_match(&json!({"controlled_by": "pat", "ultimate_controller": "pat"}), &own("alpha"));
}

#[test]
fn exactly_half_is_not_control() {
    let l = Ledger::new();
    l.append_events(&with(companies(&["alpha", "beta"]), &[acq("alpha", "beta", 50, "2020-02-01")]));
    let a = l.json(&["ownership", "beta"]);
    assert_match(
        &json!({"holders": [{"holder": "alpha", "stake_pct": 50}], "controlled_by": null, "ultimate_controller": null}),
        &a,
    );
}

#[test]
fn ultimate_controller_on_a_control_cycle() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["a", "b", "c", "d"]),
        &[
            acq("b", "a", 60, "2020-02-01"),
            acq("c", "b", 60, "2020-02-01"),
            acq("a", "c", 60, "2020-02-01"),
            acq("a", "d", 60, "2020-02-01"),
        ],
    ));
    // d <- a <- b <- c <- a: a would repeat, so the top is c.
    assert_match(&json!({"controlled_by": "a", "ultimate_controller": "c"}), &l.json(&["ownership", "d"]));
    // a <- b <- c <- a: a (the company itself) would repeat.
    assert_match(&json!({"controlled_by": "b", "ultimate_controller": "c"}), &l.json(&["ownership", "a"]));
}

#[test]
fn pending_deal_then_completed_with_announced_terms() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta"]),
        &[
            json!({"type": "deal_announced", "effective": "2021-01-01", "deal": "d1",
                "acquirer": "alpha", "target": "beta", "stake_pct": 30}),
            json!({"type": "deal_completed", "effective": "2021-03-01", "deal": "d1"}),
        ],
    ));
    let own = |d: &str| l.json(&["ownership", "beta", "--as-of", d]);
    assert_match(&json!({"pending_deals": [], "holders": []}), &own("2020-12-31"));
    assert_match(
        &json!({"holders": [], "unattributed_pct": 100,
            "pending_deals": [{"deal": "d1", "acquirer": "alpha", "stake_pct": 30, "announced": "2021-01-01"}]}),
        &own("2021-02-01"),
    );
    assert_match(
        &json!({"holders": [{"holder": "alpha", "stake_pct": 30, "since": "2021-03-01"}],
            "unattributed_pct": 70, "pending_deals": []}),
        &own("2021-03-01"),
    );
}

#[test]
fn deal_completed_with_overridden_stake() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta"]),
        &[
            json!({"type": "deal_announced", "effective": "2021-01-01", "deal": "d1",
                "acquirer": "alpha", "target": "beta", "stake_pct": 30}),
            json!({"type": "deal_completed", "effective": "2021-03-01", "deal": "d1", "stake_pct": 25}),
        ],
    ));
    assert_match(
        &json!({"holders": [{"holder": "alpha", "stake_pct": 25, "since": "2021-03-01"}],
            "unattributed_pct": 75, "pending_deals": []}),
        &l.json(&["ownership", "beta"]),
    );
}

#[test]
fn deal_completed_takes_the_seller_of_its_announcement() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta", "gamma"]),
        &[
            acq("gamma", "beta", 40, "2020-02-01"),
            json!({"type": "deal_announced", "effective": "2021-01-01", "deal": "d1",
                "acquirer": "alpha", "target": "beta", "stake_pct": 30, "seller": "gamma"}),
            json!({"type": "deal_completed", "effective": "2021-03-01", "deal": "d1"}),
        ],
    ));
    assert_match(
        &json!({"holders": [{"holder": "alpha", "stake_pct": 30}, {"holder": "gamma", "stake_pct": 10}],
            "unattributed_pct": 60}),
        &l.json(&["ownership", "beta"]),
    );
}

#[test]
fn deal_terminated_leaves_ownership_unchanged() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta"]),
        &[
            json!({"type": "deal_announced", "effective": "2021-01-01", "deal": "d1",
                "acquirer": "alpha", "target": "beta", "stake_pct": 30}),
            json!({"type": "deal_terminated", "effective": "2021-02-01", "deal": "d1", "reason": "regulator"}),
        ],
    ));
    assert_match(&json!({"pending_deals": [{"deal": "d1"}]}), &l.json(&["ownership", "beta", "--as-of", "2021-01-15"]));
    assert_match(
        &json!({"holders": [], "unattributed_pct": 100, "pending_deals": []}),
        &l.json(&["ownership", "beta", "--as-of", "2021-02-01"]),
    );
}

#[test]
fn pending_deals_sorted_by_announced() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta", "gamma"]),
        &[
            json!({"type": "deal_announced", "effective": "2021-01-10", "deal": "d-late",
                "acquirer": "alpha", "target": "beta", "stake_pct": 10}),
            json!({"type": "deal_announced", "effective": "2021-01-05", "deal": "d-early",
                "acquirer": "gamma", "target": "beta", "stake_pct": 20}),
        ],
    ));
    assert_match(
        &json!({"pending_deals": [
            {"deal": "d-early", "acquirer": "gamma", "stake_pct": 20, "announced": "2021-01-05"},
            {"deal": "d-late", "acquirer": "alpha", "stake_pct": 10, "announced": "2021-01-10"}]}),
        &l.json(&["ownership", "beta"]),
    );
}

#[test]
fn history_includes_completion_of_a_deal_naming_the_id() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta"]),
        &[
            json!({"type": "deal_announced", "effective": "2021-01-01", "deal": "d1",
                "acquirer": "alpha", "target": "beta", "stake_pct": 30}),
            json!({"type": "deal_completed", "effective": "2021-02-01", "deal": "d1"}),
        ],
    ));
    let h = l.json_lines(&["history", "beta"]);
    assert_eq!(seqs(&h), vec![2, 3, 4]);
    assert_match(
        &json!({"type": "deal_completed", "state": {"holders": [{"holder": "alpha", "stake_pct": 30}]}}),
        &h[2],
    );
}

#[test]
fn stake_sold_to_a_buyer() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta", "gamma"]),
        &[acq("alpha", "beta", 60, "2020-02-01"), {
            let mut e = sold("alpha", "beta", 20, "2020-03-01");
            e["buyer"] = json!("gamma");
            e
        }],
    ));
    assert_match(
        &json!({"holders": [
                {"holder": "alpha", "stake_pct": 40, "since": "2020-02-01"},
                {"holder": "gamma", "stake_pct": 20, "since": "2020-03-01"}],
            "unattributed_pct": 40}),
        &l.json(&["ownership", "beta"]),
    );
}

#[test]
fn stake_sold_without_buyer_goes_to_unattributed() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta"]),
        &[
            acq("alpha", "beta", 60, "2020-02-01"),
            sold("alpha", "beta", 10, "2020-03-01"),
            sold("alpha", "beta", 50, "2020-04-01"),
        ],
    ));
    assert_match(
        &json!({"holders": [{"holder": "alpha", "stake_pct": 50, "since": "2020-02-01"}], "unattributed_pct": 50}),
        &l.json(&["ownership", "beta", "--as-of", "2020-03-01"]),
    );
    assert_match(
        &json!({"holders": [], "unattributed_pct": 100}),
        &l.json(&["ownership", "beta", "--as-of", "2020-04-01"]),
    );
}

#[test]
fn acquisition_from_a_seller() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta", "gamma"]),
        &[acq("alpha", "beta", 60, "2020-02-01"), {
            let mut e = acq("gamma", "beta", 20, "2020-03-01");
            e["seller"] = json!("alpha");
            e
        }],
    ));
    assert_match(
        &json!({"holders": [{"holder": "alpha", "stake_pct": 40}, {"holder": "gamma", "stake_pct": 20}],
            "unattributed_pct": 40}),
        &l.json(&["ownership", "beta"]),
    );
}

#[test]
fn since_resets_after_selling_out_and_buying_back() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta"]),
        &[
            acq("alpha", "beta", 10, "2020-02-01"),
            sold("alpha", "beta", 10, "2020-03-01"),
            acq("alpha", "beta", 5, "2020-04-01"),
        ],
    ));
    assert_match(&json!({"holders": []}), &l.json(&["ownership", "beta", "--as-of", "2020-03-15"]));
    assert_match(
        &json!({"holders": [{"holder": "alpha", "stake_pct": 5, "since": "2020-04-01"}]}),
        &l.json(&["ownership", "beta"]),
    );
    assert_match(
        &json!({"direct": [{"company": "beta", "stake_pct": 5, "since": "2020-04-01"}]}),
        &l.json(&["holdings", "alpha"]),
    );
}

#[test]
fn since_stays_while_the_holding_is_unbroken() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta"]),
        &[
            acq("alpha", "beta", 10, "2020-02-01"),
            acq("alpha", "beta", 5, "2020-03-01"),
            sold("alpha", "beta", 3, "2020-04-01"),
        ],
    ));
    assert_match(
        &json!({"holders": [{"holder": "alpha", "stake_pct": 12, "since": "2020-02-01"}], "unattributed_pct": 88}),
        &l.json(&["ownership", "beta"]),
    );
}

#[test]
fn partnership_formed_then_continued() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta"]),
        &[
            json!({"type": "partnership_formed", "effective": "2020-02-01", "partners": ["alpha", "beta"]}),
            json!({"type": "partnership_continued", "effective": "2020-05-01", "partners": ["beta", "alpha"]}),
        ],
    ));
    assert_match(
        &json!({"company": "alpha", "partnerships": [
            {"partner": "beta", "scope": null, "since": "2020-02-01", "last_affirmed": null}]}),
        &l.json(&["partnerships", "alpha", "--as-of", "2020-03-01"]),
    );
    assert_match(
        &json!({"partnerships": [
            {"partner": "beta", "scope": null, "since": "2020-02-01", "last_affirmed": "2020-05-01"}]}),
        &l.json(&["partnerships", "alpha", "--as-of", "2020-06-01"]),
    );
    assert_match(
        &json!({"company": "beta", "partnerships": [
            {"partner": "alpha", "scope": null, "since": "2020-02-01", "last_affirmed": "2020-05-01"}]}),
        &l.json(&["partnerships", "beta", "--as-of", "2020-06-01"]),
    );
}

#[test]
fn partnership_scopes_sorted_by_partner_then_scope_null_first() {
    let l = Ledger::new();
    let formed = |p: [&str; 2], scope: Value| json!({"type": "partnership_formed", "effective": "2020-02-01", "partners": p, "scope": scope});
    l.append_events(&with(
        companies(&["alpha", "beta", "gamma"]),
        &[
            formed(["alpha", "gamma"], json!("chips")),
            formed(["alpha", "beta"], json!("cloud")),
            formed(["beta", "alpha"], json!("AI")),
            formed(["alpha", "beta"], Value::Null),
        ],
    ));
    assert_match(
        &json!({"partnerships": [
            {"partner": "beta", "scope": null},
            {"partner": "beta", "scope": "AI"},
            {"partner": "beta", "scope": "cloud"},
            {"partner": "gamma", "scope": "chips"}]}),
        &l.json(&["partnerships", "alpha"]),
    );
}

#[test]
fn partnership_ended_and_formed_again_starts_a_new_period() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta"]),
        &[
            json!({"type": "partnership_formed", "effective": "2020-02-01", "partners": ["alpha", "beta"]}),
            json!({"type": "partnership_continued", "effective": "2020-04-01", "partners": ["alpha", "beta"]}),
            json!({"type": "partnership_ended", "effective": "2020-06-01", "partners": ["beta", "alpha"], "scope": null}),
            json!({"type": "partnership_formed", "effective": "2020-08-01", "partners": ["alpha", "beta"]}),
        ],
    ));
    let p = |d: &str| l.json(&["partnerships", "alpha", "--as-of", d]);
    assert_match(&json!({"partnerships": [{"partner": "beta", "last_affirmed": "2020-04-01"}]}), &p("2020-05-01"));
    assert_match(&json!({"partnerships": []}), &p("2020-06-01"));
    assert_match(
        &json!({"partnerships": [{"partner": "beta", "since": "2020-08-01", "last_affirmed": null}]}),
        &p("2020-09-01"),
    );
}

#[test]
fn executive_appointed_twice_updates_interim_only() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha"]),
        &[
            reg_person("pat", "2020-01-01"),
            json!({"type": "executive_appointed", "effective": "2020-02-01", "person": "pat",
                "company": "alpha", "role": "CEO", "interim": true}),
            json!({"type": "executive_appointed", "effective": "2020-06-01", "person": "pat",
                "company": "alpha", "role": "CEO"}),
        ],
    ));
    assert_match(
        &json!({"executives": [{"person": "pat", "name": "pat Person", "role": "CEO", "interim": true, "since": "2020-02-01"}]}),
        &l.json(&["executives", "alpha", "--as-of", "2020-03-01"]),
    );
    assert_match(
        &json!({"executives": [{"person": "pat", "role": "CEO", "interim": false, "since": "2020-02-01"}]}),
        &l.json(&["executives", "alpha", "--as-of", "2020-07-01"]),
    );
}

#[test]
fn executives_sorted_by_role_then_person() {
    let l = Ledger::new();
    let appoint = |p: &str, role: &str| json!({"type": "executive_appointed", "effective": "2020-02-01", "person": p, "company": "alpha", "role": role});
    l.append_events(&with(
        companies(&["alpha"]),
        &[
            reg_person("zoe", "2020-01-01"),
            reg_person("ann", "2020-01-01"),
            appoint("zoe", "CEO"),
            appoint("zoe", "Director"),
            appoint("ann", "Director"),
        ],
    ));
    assert_match(
        &json!({"executives": [
            {"person": "zoe", "role": "CEO"},
            {"person": "ann", "role": "Director"},
            {"person": "zoe", "role": "Director"}]}),
        &l.json(&["executives", "alpha"]),
    );
}

#[test]
fn executive_departed_without_role_ends_all_roles_at_that_company() {
    let l = Ledger::new();
    let appoint = |c: &str, role: &str, d: &str| json!({"type": "executive_appointed", "effective": d, "person": "pat", "company": c, "role": role});
    l.append_events(&with(
        companies(&["alpha", "beta"]),
        &[
            reg_person("pat", "2020-01-01"),
            appoint("alpha", "Director", "2020-02-01"),
            appoint("alpha", "CEO", "2020-02-01"),
            appoint("beta", "CTO", "2020-03-01"),
            json!({"type": "executive_departed", "effective": "2020-06-01", "person": "pat", "company": "alpha"}),
        ],
    ));
    assert_match(
        &json!({"person": "pat", "name": "pat Person",
            "current": [{"company": "beta", "role": "CTO", "interim": false, "since": "2020-03-01"}],
            "past": [
                {"company": "alpha", "role": "CEO", "from": "2020-02-01", "to": "2020-06-01"},
                {"company": "alpha", "role": "Director", "from": "2020-02-01", "to": "2020-06-01"}]}),
        &l.json(&["career", "pat", "--as-of", "2020-07-01"]),
    );
    assert_match(&json!({"executives": []}), &l.json(&["executives", "alpha", "--as-of", "2020-07-01"]));
}

#[test]
fn role_started_and_ended_the_same_day_is_past() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha"]),
        &[
            reg_person("pat", "2020-01-01"),
            json!({"type": "executive_appointed", "effective": "2020-03-01", "person": "pat",
                "company": "alpha", "role": "Advisor"}),
            json!({"type": "executive_departed", "effective": "2020-03-01", "person": "pat",
                "company": "alpha", "role": "Advisor"}),
        ],
    ));
    assert_match(
        &json!({"current": [], "past": [{"company": "alpha", "role": "Advisor", "from": "2020-03-01", "to": "2020-03-01"}]}),
        &l.json(&["career", "pat", "--as-of", "2020-03-01"]),
    );
}

#[test]
fn executive_moved_ends_from_and_starts_to() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta"]),
        &[
            reg_person("pat", "2020-01-01"),
            json!({"type": "executive_appointed", "effective": "2020-02-01", "person": "pat",
                "company": "alpha", "role": "CFO"}),
            json!({"type": "executive_moved", "effective": "2020-05-01", "person": "pat",
                "from": {"company": "alpha", "role": "CFO"},
                "to": {"company": "beta", "role": "CEO", "interim": true}}),
        ],
    ));
    assert_match(
        &json!({"current": [{"company": "beta", "role": "CEO", "interim": true, "since": "2020-05-01"}],
            "past": [{"company": "alpha", "role": "CFO", "from": "2020-02-01", "to": "2020-05-01"}]}),
        &l.json(&["career", "pat"]),
    );
}

#[test]
fn company_renamed_changes_name_as_of_the_date() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha"]),
        &[json!({"type": "company_renamed", "effective": "2021-01-01", "company": "alpha", "name": "Alpha Two"})],
    ));
    assert_match(
        &json!({"company": "alpha", "name": "alpha Inc"}),
        &l.json(&["ownership", "alpha", "--as-of", "2020-12-31"]),
    );
    assert_match(
        &json!({"company": "alpha", "name": "Alpha Two"}),
        &l.json(&["ownership", "alpha", "--as-of", "2021-01-01"]),
    );
}

#[test]
fn retraction_removes_the_event_from_its_seq_on() {
    let l = Ledger::new();
    let id = uuid(1);
    let mut a = acq("alpha", "beta", 30, "2020-02-01");
    a["id"] = json!(id);
    l.append_events(&with(companies(&["alpha", "beta"]), &[a]));
    let s = l.append_seqs(&[json!({"type": "retraction", "retracts": id, "reason": "wrong"})]);
    assert_eq!(s, vec![4]);
    assert_match(&json!({"holders": [], "known_at_seq": 4}), &l.json(&["ownership", "beta"]));
    assert_match(
        &json!({"holders": [{"holder": "alpha", "stake_pct": 30}], "known_at_seq": 3}),
        &l.json(&["ownership", "beta", "--known-at", "3"]),
    );
    let log = l.log();
    assert_eq!(log[2]["retracted_by"], json!(4));
    assert_eq!(seqs(&l.json_lines(&["history", "beta"])), vec![2]);
    assert_eq!(seqs(&l.json_lines(&["history", "beta", "--known-at", "3"])), vec![2, 3]);
}

#[test]
fn retried_identical_event_is_a_noop_answering_the_stored_seq() {
    let l = Ledger::new();
    l.append_events(&companies(&["alpha", "beta"]));
    let mut a = acq("alpha", "beta", 30, "2020-02-01");
    a["id"] = json!(uuid(7));
    let first = l.append_events(&[a.clone()]);
    assert_eq!(first.len(), 1);
    assert_match(&json!({"seq": 3, "id": uuid(7)}), &first[0]);
    let again = l.append_events(&[a]);
    assert_eq!(seqs(&again), vec![3]);
    assert_eq!(again[0]["id"], json!(uuid(7)));
    assert_eq!(l.count(), 3);
    assert_match(&json!({"holders": [{"holder": "alpha", "stake_pct": 30}]}), &l.json(&["ownership", "beta"]));
    l.verify_ok();
}

#[test]
fn late_acquisition_changes_today_but_not_known_at_before_it() {
    let l = Ledger::new();
    l.append_events(&with(
        companies(&["alpha", "beta"]),
        &[json!({"type": "partnership_formed", "effective": "2021-01-01", "partners": ["alpha", "beta"]})],
    ));
    let s = l.append_seqs(&[acq("alpha", "beta", 40, "2020-02-01")]);
    assert_eq!(s, vec![4]);
    assert_match(
        &json!({"known_at_seq": 4, "holders": [{"holder": "alpha", "stake_pct": 40, "since": "2020-02-01"}]}),
        &l.json(&["ownership", "beta"]),
    );
    assert_match(
        &json!({"known_at_seq": 4, "holders": [{"holder": "alpha", "stake_pct": 40}]}),
        &l.json(&["ownership", "beta", "--as-of", "2020-03-01"]),
    );
    assert_match(
        &json!({"known_at_seq": 3, "holders": [], "unattributed_pct": 100}),
        &l.json(&["ownership", "beta", "--as-of", "2020-03-01", "--known-at", "3"]),
    );
    assert_match(&json!({"holders": []}), &l.json(&["ownership", "beta", "--as-of", "2020-01-31"]));
}
