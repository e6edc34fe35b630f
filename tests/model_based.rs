//! Model-based test: random sequences of valid AND invalid events, appended
//! one call at a time through the library, against the reference model of
//! `tests/model` (queries by brute force; acceptance by re-checking every
//! rule of contract §4 over the whole timeline with the candidate in it,
//! `tests/model/rules.rs`).
//!
//! For every append the ledger and the model must agree on accepted vs
//! refused (and, when refused, the ledger's `Rule` must be one the model found
//! broken; an idempotent retry must answer the stored seq). After every
//! append, every query of every entity is compared at two dates; at the end,
//! every query at every known-at seq and several as-of dates; then the ledger
//! is closed, reopened, verified and compared again.
//!
//! The generator works on a handful of entities and eight dates, so late
//! events, same-day ordering, oversold stakes, stakes over 100%, deals closed
//! while not pending, partnerships and roles ended while not active,
//! retractions (of unknown events, of retractions, twice, and ones that break
//! a later event), duplicate ids with the same and with different content,
//! entities used before their registration, kind clashes, malformed events and
//! ledger-owned fields all come up often.
//!
//! Knobs: `PROPTEST_CASES=N` (default 32) and `MODEL_BASED_STEPS=N` (events per
//! sequence, default 30), e.g. `PROPTEST_CASES=2000 cargo test --release --test
//! model_based` for a soak.

mod model;

use dealledger::{At, Date, Error, KnownAt, Ledger, QueryKind};
use model::{parse_pct, Model, Verdict};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Map, Value};

const COS: [&str; 4] = ["co-a", "co-b", "co-c", "co-d"];
const PEOPLE: [&str; 2] = ["pa", "pb"];
const ALL: [&str; 6] = ["co-a", "co-b", "co-c", "co-d", "pa", "pb"];
const DAYS: [&str; 8] =
    ["2020-01-01", "2020-01-11", "2020-01-21", "2020-01-31", "2020-02-10", "2020-02-20", "2020-03-01", "2020-03-11"];
const DEALS: [&str; 3] = ["d1", "d2", "d3"];
const ROLES: [&str; 2] = ["CEO", "CTO"];
const COMMANDS: [&str; 5] = ["ownership", "holdings", "partnerships", "executives", "career"];
/// As-of dates of the final comparison (before, inside and after the story).
const FINAL_DATES: [&str; 5] = ["2019-12-31", "2020-01-11", "2020-01-31", "2020-02-20", "2020-12-31"];

fn stakes(i: u8) -> Value {
    [json!(10), json!(25), json!(30), json!(40), json!(50), json!(60), json!(100), json!(33.3333)][i as usize % 8]
        .clone()
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32);
    ProptestConfig { cases, max_shrink_iters: 200, ..ProptestConfig::default() }
}

fn steps_len() -> usize {
    std::env::var("MODEL_BASED_STEPS").ok().and_then(|c| c.parse().ok()).unwrap_or(30)
}

/// One generated step: six bytes, read against the model's current state.
type Step = [u8; 6];

/// Turns steps into event lines.
#[derive(Default)]
struct Gen {
    next_id: u32,
}

impl Gen {
    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("01970000-0000-7000-8000-{:012}", self.next_id)
    }

    /// The event of step `i`, as one JSON line.
    fn line(&mut self, i: usize, s: Step, model: &Model) -> String {
        let [op, _, b, c, d, e] = s;
        let mut ev = if i < ALL.len() && op % 8 != 0 {
            // Mostly every entity registered first, so that later events have
            // someone to name (step i registers ALL[i]).
            let mut s = s;
            s[1] = i as u8;
            shaped(if i < COS.len() { 0 } else { 1 }, s, model)
        } else {
            match op % 32 {
                0..=4 => shaped(0, s, model),
                5..=6 => shaped(1, s, model),
                7 => shaped(2, s, model),
                8..=11 => shaped(3, s, model),
                12..=14 => shaped(4, s, model),
                15..=16 => shaped(5, s, model),
                17..=18 => shaped(6, s, model),
                19 => shaped(7, s, model),
                20..=21 => shaped(8, s, model),
                22 => shaped(9, s, model),
                23 => shaped(10, s, model),
                24..=25 => shaped(11, s, model),
                26 => shaped(12, s, model),
                27 => shaped(13, s, model),
                28..=29 => {
                    let stored = model.events();
                    let retracts = if stored.is_empty() || c % 6 == 0 {
                        self.fresh_id()
                    } else {
                        stored[b as usize % stored.len()].id.clone().expect("every model event has an id")
                    };
                    json!({"type": "retraction", "retracts": retracts, "reason": "wrong"})
                }
                30 => {
                    let stored = model.events();
                    if stored.is_empty() {
                        shaped(d, s, model)
                    } else {
                        let old = &stored[b as usize % stored.len()];
                        let id = old.id.clone().expect("every model event has an id");
                        let mut ev = if c % 2 == 0 { old.event.clone() } else { shaped(d, s, model) };
                        ev["id"] = json!(id);
                        return ev.to_string();
                    }
                }
                _ => defective(s, model),
            }
        };
        if e % 10 != 0 {
            ev["id"] = json!(self.fresh_id());
        }
        ev.to_string()
    }
}

/// Holders of `company` on `date` as the model sees it: (holder, millionths).
fn holders(model: &Model, company: &str, date: &str) -> Vec<(String, u64)> {
    let Ok(answer) = model.answer("ownership", company, date, None) else { return Vec::new() };
    answer["holders"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .map(|h| (h["holder"].as_str().unwrap_or_default().to_owned(), parse_pct(&h["stake_pct"]).unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// Millionths as a decimal string with 4 decimals (`"12.5000"`).
fn pct_text(m: u64) -> Value {
    json!(format!("{}.{:04}", m / 10_000, m % 10_000))
}

/// A well-formed event of one of 14 kinds (valid or not against the timeline).
fn shaped(kind: u8, s: Step, model: &Model) -> Value {
    let [_, a, b, c, d, e] = s;
    let (a, b, c, d, e) = (a as usize, b as usize, c as usize, d as usize, e as usize);
    let date = DAYS[d % 8];
    let reg_date = if e % 4 == 0 { date } else { DAYS[usize::from(b % 4 == 0)] };
    match kind % 14 {
        0 => {
            let company = if e % 8 == 1 { PEOPLE[a % 2] } else { COS[a % 4] };
            json!({"type": "company_registered", "effective": reg_date, "company": company, "name": format!("{company} Inc")})
        }
        1 => {
            let person = if e % 8 == 1 { COS[a % 4] } else { PEOPLE[a % 2] };
            json!({"type": "person_registered", "effective": reg_date, "person": person, "name": format!("{person} Person")})
        }
        2 => json!({"type": "company_renamed", "effective": date, "company": COS[a % 4], "name": format!("Name {b}")}),
        3 => {
            let target = COS[b % 4];
            let mut ev = json!({"type": "acquisition", "effective": date, "acquirer": ALL[a % 6], "target": target, "stake_pct": stakes(c as u8)});
            if e % 3 == 0 {
                let hs = holders(model, target, date);
                let seller = if hs.is_empty() || e % 2 == 1 {
                    ALL[(a + 1 + e) % 6].to_owned()
                } else {
                    hs[e % hs.len()].0.clone()
                };
                if seller != ALL[a % 6] {
                    ev["seller"] = json!(seller);
                }
            }
            ev
        }
        4 => {
            let target = COS[b % 4];
            let hs = holders(model, target, date);
            let (seller, stake) = if hs.is_empty() || e % 4 == 0 {
                (ALL[a % 6].to_owned(), stakes(c as u8))
            } else {
                let (h, held) = hs[a % hs.len()].clone();
                let stake = match c % 3 {
                    0 => pct_text(held),
                    1 => pct_text((held / 2 / 100).max(1) * 100),
                    _ => stakes(c as u8),
                };
                (h, stake)
            };
            let mut ev = json!({"type": "stake_sold", "effective": date, "seller": seller, "target": target, "stake_pct": stake});
            let buyer = ALL[(a + e) % 6];
            if e % 3 == 0 && buyer != seller {
                ev["buyer"] = json!(buyer);
            }
            ev
        }
        5 => {
            let mut ev = json!({"type": "deal_announced", "effective": date, "deal": DEALS[a % 3], "acquirer": ALL[b % 6], "target": COS[c % 4], "stake_pct": stakes(e as u8)});
            let seller = ALL[(b + 1 + e) % 6];
            if e % 3 == 0 {
                ev["seller"] = json!(seller);
            }
            ev
        }
        6 => {
            let mut ev = json!({"type": "deal_completed", "effective": date, "deal": DEALS[a % 3]});
            if e % 4 == 0 {
                ev["stake_pct"] = stakes(c as u8);
            }
            ev
        }
        7 => json!({"type": "deal_terminated", "effective": date, "deal": DEALS[a % 3], "reason": "called off"}),
        8..=10 => {
            let kind = ["partnership_formed", "partnership_continued", "partnership_ended"][(kind % 14 - 8) as usize];
            let (mut x, mut y, mut scope) = (COS[a % 4].to_owned(), COS[(a + 1 + b % 3) % 4].to_owned(), None);
            if kind == "partnership_ended" && e % 4 != 0 {
                // Mostly end one that is active.
                if let Ok(p) = model.answer("partnerships", &x, date, None) {
                    if let Some(rows) = p["partnerships"].as_array().filter(|r| !r.is_empty()) {
                        let row = &rows[b % rows.len()];
                        y = row["partner"].as_str().unwrap_or_default().to_owned();
                        scope = row["scope"].as_str().map(str::to_owned);
                    }
                }
            } else if c % 3 == 0 {
                scope = Some("ai".to_owned());
            }
            if e % 2 == 1 {
                std::mem::swap(&mut x, &mut y);
            }
            let mut ev = json!({"type": kind, "effective": date, "partners": [x, y]});
            if let Some(scope) = scope {
                ev["scope"] = json!(scope);
            }
            ev
        }
        11 => {
            let mut ev = json!({"type": "executive_appointed", "effective": date, "person": PEOPLE[a % 2], "company": COS[b % 4], "role": ROLES[c % 2]});
            if e % 3 != 0 {
                ev["interim"] = json!(e % 2 == 1);
            }
            ev
        }
        12 | 13 => {
            let person = PEOPLE[a % 2];
            let (mut company, mut role) = (COS[b % 4].to_owned(), Some(ROLES[c % 2].to_owned()));
            if e % 4 != 0 {
                // Mostly a role the person holds on that date.
                if let Ok(career) = model.answer("career", person, date, None) {
                    if let Some(rows) = career["current"].as_array().filter(|r| !r.is_empty()) {
                        let row = &rows[b % rows.len()];
                        company = row["company"].as_str().unwrap_or_default().to_owned();
                        role = row["role"].as_str().map(str::to_owned);
                    }
                }
            }
            if e % 5 == 1 {
                role = None;
            }
            if kind % 14 == 12 {
                let mut ev =
                    json!({"type": "executive_departed", "effective": date, "person": person, "company": company});
                if let Some(role) = role {
                    ev["role"] = json!(role);
                }
                ev
            } else {
                let mut from = json!({"company": company});
                if let Some(role) = role {
                    from["role"] = json!(role);
                }
                let to = json!({"company": COS[(b + e) % 4], "role": ROLES[(c + e) % 2], "interim": e % 2 == 0});
                json!({"type": "executive_moved", "effective": date, "person": person, "from": from, "to": to})
            }
        }
        _ => unreachable!(),
    }
}

/// A malformed event (rule 1) or one setting a ledger-owned field (rule 9).
fn defective(s: Step, model: &Model) -> Value {
    let [_, a, _, c, d, e] = s;
    if e % 3 == 0 {
        let mut ev = shaped(d, s, model);
        let field = ["seq", "recorded_at", "hash"][a as usize % 3];
        ev[field] = [json!(7), json!("2020-01-01T00:00:00Z"), json!("00".repeat(32))][a as usize % 3].clone();
        return ev;
    }
    match c % 9 {
        0 => {
            let mut ev = shaped(d, s, model);
            ev["colour"] = json!("red");
            ev
        }
        1 => json!({"type": "company_merged", "effective": DAYS[0], "company": "co-a"}),
        2 => {
            let mut ev = shaped(d, s, model);
            ev["effective"] = json!(["2021-02-30", "2020-13-01", "20200101", "yesterday"][a as usize % 4]);
            ev
        }
        3 => {
            let mut ev = shaped(3, s, model);
            ev["stake_pct"] = [json!(0), json!(100.5), json!(12.34567), json!("-5"), json!("abc"), json!(null)]
                [a as usize % 6]
                .clone();
            ev
        }
        4 => {
            let mut ev = shaped(0, s, model);
            ev["company"] = json!(["Bad_Slug", "-x", "", "a b"][a as usize % 4]);
            ev
        }
        5 => {
            let mut ev = shaped(d, s, model);
            let map: &mut Map<String, Value> = ev.as_object_mut().expect("object");
            map.shift_remove("effective");
            ev
        }
        6 => {
            let mut ev = shaped(3, s, model);
            ev["seller"] = ev["acquirer"].clone();
            ev
        }
        7 => {
            json!({"type": "partnership_formed", "effective": DAYS[1], "partners": [COS[a as usize % 4], COS[a as usize % 4]]})
        }
        _ => {
            let mut ev = shaped(0, s, model);
            ev["name"] = json!("");
            ev
        }
    }
}

// ------------------------------------------------------------------ comparing

/// The model's answer with its error reduced to a category.
fn model_answer(model: &Model, cmd: &str, id: &str, as_of: &str, k: Option<u64>) -> Result<Value, String> {
    model.answer(cmd, id, as_of, k).map_err(|e| {
        if e.starts_with("unknown entity") {
            "unknown".into()
        } else if e.contains("is not a") {
            "wrong kind".into()
        } else if e.contains("exists from") {
            "not yet".into()
        } else {
            e
        }
    })
}

fn ledger_answer(ledger: &Ledger, cmd: &str, id: &str, as_of: &str, k: Option<u64>) -> Result<Value, String> {
    let kind = QueryKind::parse(cmd).expect("a query kind");
    let at = At { as_of: Date::parse(as_of).expect("date"), known_at: k.map_or(KnownAt::Latest, KnownAt::Seq) };
    ledger.answer(kind, id, at).map_err(|e| match e {
        Error::UnknownEntity { .. } => "unknown".into(),
        Error::WrongKind { .. } => "wrong kind".into(),
        Error::NotYetExisting { .. } => "not yet".into(),
        other => format!("unexpected error: {other}"),
    })
}

/// The model's stored events, for failure messages.
fn story(model: &Model) -> String {
    model.events().iter().map(|e| format!("  seq {}: {}\n", e.seq, e.event)).collect()
}

fn compare(ledger: &Ledger, model: &Model, as_of: &str, k: Option<u64>, context: &str) -> Result<(), TestCaseError> {
    for id in ALL {
        for cmd in COMMANDS {
            let want = model_answer(model, cmd, id, as_of, k);
            let got = ledger_answer(ledger, cmd, id, as_of, k);
            let agree = match (&want, &got) {
                (Ok(w), Ok(g)) => model::same(w, g, false),
                (w, g) => w == g,
            };
            prop_assert!(
                agree,
                "{context}: {cmd} {id} as of {as_of}, known at {k:?}\n  model  {want:?}\n  ledger {got:?}\nevents:\n{}",
                story(model)
            );
        }
    }
    Ok(())
}

/// Every query at every known-at seq and every final date.
fn compare_all(ledger: &Ledger, model: &Model, context: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(ledger.last_seq(), model.last_seq(), "{}: last seq", context);
    for k in 0..=model.last_seq() {
        for as_of in FINAL_DATES {
            compare(ledger, model, as_of, Some(k), context)?;
        }
    }
    Ok(())
}

fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let ledger = Ledger::open_or_create(&path).expect("open");
    let mut model = Model::new();
    let mut gen = Gen::default();
    let mut tally: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for (i, step) in steps.iter().enumerate() {
        let line = gen.line(i, *step, &model);
        let verdict = model.verdict(&line);
        let got = ledger.append_text(&line);
        let context = format!("step {i}: {line}");
        let outcome = match &got {
            Ok(_) if matches!(verdict, Verdict::Retry(_)) => "retry".to_owned(),
            Ok(_) => "stored".to_owned(),
            Err(Error::Refused { rule, .. }) => rule.name().to_owned(),
            Err(_) => "error".to_owned(),
        };
        *tally.entry(outcome).or_default() += 1;
        match (&verdict, &got) {
            (Verdict::New, Ok(stored)) => {
                prop_assert_eq!(stored.len(), 1, "{}", context);
                prop_assert_eq!(stored[0].seq, model.last_seq() + 1, "{}", context);
                model.append_with_id(&line, Some(&stored[0].id.to_string()));
            }
            (Verdict::Retry(seq), Ok(stored)) => {
                prop_assert_eq!(stored.len(), 1, "{}", context);
                prop_assert_eq!(stored[0].seq, *seq, "{}: a retry answers the stored seq", context);
            }
            (Verdict::Refused(rules), Err(Error::Refused { rule, .. })) => {
                prop_assert!(
                    rules.contains(rule.name()),
                    "{context}\nthe ledger refused it under `{}` ({}), the model found {rules:?}\nevents:\n{}",
                    rule.name(),
                    got.as_ref().err().map(ToString::to_string).unwrap_or_default(),
                    story(&model)
                );
            }
            _ => prop_assert!(
                false,
                "{context}\nmodel: {verdict:?}\nledger: {}\nevents:\n{}",
                match &got {
                    Ok(a) => format!("accepted as seq {:?}", a.iter().map(|a| a.seq).collect::<Vec<_>>()),
                    Err(e) => format!("{e:?}"),
                },
                story(&model)
            ),
        }
        prop_assert_eq!(ledger.last_seq(), model.last_seq(), "{}", context);
        compare(&ledger, &model, DAYS[i % 8], None, &context)?;
        compare(&ledger, &model, "2020-12-31", None, &context)?;
    }
    compare_all(&ledger, &model, "end")?;
    drop(ledger);
    let ledger = Ledger::open(&path).expect("reopen");
    prop_assert_eq!(ledger.verify().expect("verify after reopen").last_seq, model.last_seq());
    compare_all(&ledger, &model, "after reopen")?;
    eprintln!("{} steps: {tally:?}", steps.len());
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// The ledger agrees with the model on every append and every answer.
    #[test]
    fn ledger_agrees_with_the_model(steps in prop::collection::vec(any::<Step>(), steps_len() / 3..=steps_len())) {
        run(&steps)?;
    }
}

/// Found by `ledger_agrees_with_the_model`: a completion dated before its
/// deal's announcement is refused under the deal rule (it is not pending),
/// not under the stakes rule for what it would do to a later acquisition.
#[test]
fn a_completion_before_its_announcement_names_the_deal_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open_or_create(dir.path().join("db")).expect("open");
    ledger
        .append_text(concat!(
            r#"{"type":"company_registered","effective":"2020-01-01","company":"co-c","name":"C"}"#,
            "\n",
            r#"{"type":"company_registered","effective":"2020-01-01","company":"co-d","name":"D"}"#,
            "\n",
            r#"{"type":"person_registered","effective":"2020-01-11","person":"pa","name":"A"}"#,
            "\n",
            r#"{"type":"acquisition","effective":"2020-01-31","acquirer":"co-c","target":"co-d","stake_pct":40}"#,
            "\n",
            r#"{"type":"acquisition","effective":"2020-03-11","acquirer":"co-c","target":"co-d","stake_pct":30}"#,
            "\n",
            r#"{"type":"deal_announced","effective":"2020-01-21","deal":"d3","acquirer":"pa","target":"co-d","stake_pct":50}"#,
        ))
        .expect("a valid story");
    let early = r#"{"type":"deal_completed","effective":"2020-01-11","deal":"d3"}"#;
    match ledger.append_text(early) {
        Err(Error::Refused { rule, message, .. }) => {
            assert_eq!(rule.name(), "deal", "{message}");
            assert!(message.contains("d3") && message.contains("not pending"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(ledger.last_seq(), 6);
}
