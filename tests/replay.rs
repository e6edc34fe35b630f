//! The replay API through the library: one entity's history step by step,
//! and the whole ledger in fold order.

use dealledger::answer::State;
use dealledger::{Date, Error, KnownAt, Ledger};

const STORY: &str = include_str!("../examples/data/scale-ai.jsonl");

fn story() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open_or_create(dir.path().join("db")).expect("open");
    ledger.append_text(STORY).expect("append");
    (dir, ledger)
}

fn seqs(ledger: &Ledger, id: &str, known_at: KnownAt, from: Option<&str>, to: Option<&str>) -> Vec<u64> {
    let date = |d: Option<&str>| d.map(|d| Date::parse(d).expect("date"));
    ledger.history(id, known_at, date(from), date(to)).expect("history").iter().map(|l| l.seq).collect()
}

#[test]
fn company_history_is_in_fold_order_with_the_day_closing_state() {
    let (_dir, ledger) = story();
    assert_eq!(seqs(&ledger, "scale-ai", KnownAt::Latest, None, None), [4, 6, 7, 12, 13, 14, 18, 15, 16]);
    let lines = ledger.history("scale-ai", KnownAt::Latest, None, None).expect("history");
    for line in lines.iter().filter(|l| l.effective == Date::parse("2025-06-12").expect("date")) {
        let State::Ownership(o) = &line.state else { panic!("a company's state is its ownership") };
        assert_eq!(o.holders.len(), 1, "seq {}: that day's closing state", line.seq);
        assert_eq!(o.holders[0].stake_pct.0, 490_000);
    }
    let acquisition = lines.iter().find(|l| l.seq == 18).expect("seq 18");
    assert_eq!(acquisition.change, "meta 0% → 49%");
    assert!(acquisition.summary.contains("meta acquires 49% of scale-ai"), "{}", acquisition.summary);
    assert_eq!(
        lines.iter().find(|l| l.seq == 12).expect("seq 12").change,
        "",
        "the change shows on the day's last event"
    );
}

#[test]
fn known_at_before_and_after_the_retraction() {
    let (_dir, ledger) = story();
    assert_eq!(seqs(&ledger, "scale-ai", KnownAt::Seq(16), None, None), [4, 6, 7, 11, 12, 13, 14, 15, 16]);
    assert_eq!(seqs(&ledger, "scale-ai", KnownAt::Seq(17), None, None), [4, 6, 7, 12, 13, 14, 15, 16]);
    let at16 = ledger.history("scale-ai", KnownAt::Seq(16), None, None).expect("history");
    assert_eq!(at16.iter().find(|l| l.seq == 11).expect("seq 11").event["retracted_by"], serde_json::Value::Null);
}

#[test]
fn a_late_fact_is_absent_when_known_at_is_before_it() {
    let (_dir, ledger) = story();
    let late = r#"{"type":"company_renamed","effective":"2020-01-01","company":"scale-ai","name":"Scale"}"#;
    let seq = ledger.append_text(late).expect("append")[0].seq;
    let now = seqs(&ledger, "scale-ai", KnownAt::Latest, None, None);
    assert_eq!(now[3], seq, "the late rename sorts by its effective date");
    assert!(!seqs(&ledger, "scale-ai", KnownAt::Seq(seq - 1), None, None).contains(&seq));
    let renamed = ledger.history("scale-ai", KnownAt::Latest, None, None).expect("history");
    assert_eq!(renamed[3].change, "name \"Scale AI\" → \"Scale\"");
}

#[test]
fn a_person_history_shows_the_career() {
    let (_dir, ledger) = story();
    let lines = ledger.history("alexandr-wang", KnownAt::Latest, None, None).expect("history");
    assert_eq!(lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [5, 6, 7, 13]);
    let State::Career(c) = &lines[3].state else { panic!("a person's state is the career") };
    assert_eq!(c.past.len(), 1);
    assert_eq!(lines[3].change, "ends CEO at scale-ai, starts Head of superintelligence effort at meta");
}

#[test]
fn from_and_to_bound_the_effective_dates() {
    let (_dir, ledger) = story();
    assert_eq!(
        seqs(&ledger, "scale-ai", KnownAt::Latest, Some("2025-06-12"), Some("2025-06-13")),
        [12, 13, 14, 18, 15]
    );
    assert_eq!(seqs(&ledger, "scale-ai", KnownAt::Latest, Some("2025-06-19"), None), Vec::<u64>::new());
}

#[test]
fn an_unknown_id_is_an_error() {
    let (_dir, ledger) = story();
    assert!(matches!(ledger.history("nobody", KnownAt::Latest, None, None), Err(Error::UnknownEntity { .. })));
    assert!(matches!(ledger.replay("Not A Slug", KnownAt::Latest, None, None), Err(Error::UnknownEntity { .. })));
}

#[test]
fn replay_steps_equal_the_history() {
    let (_dir, ledger) = story();
    let stepped: Vec<_> = ledger
        .replay("scale-ai", KnownAt::Latest, None, None)
        .expect("replay")
        .collect::<Result<_, _>>()
        .expect("steps");
    assert_eq!(stepped, ledger.history("scale-ai", KnownAt::Latest, None, None).expect("history"));
}

#[test]
fn the_whole_ledger_in_fold_order() {
    let (_dir, ledger) = story();
    let order = |k| -> Vec<u64> { ledger.fold_order(k).expect("fold order").map(|r| r.expect("record").seq).collect() };
    let all = order(KnownAt::Latest);
    assert_eq!(all.len(), 16, "18 events less the retraction and the retracted one");
    assert!(!all.contains(&11) && !all.contains(&17) && all.contains(&18));
    let records: Vec<_> = ledger.fold_order(KnownAt::Latest).expect("fold order").map(|r| r.expect("record")).collect();
    assert!(records.windows(2).all(|w| (w[0].effective, w[0].seq) < (w[1].effective, w[1].seq)));
    let at16 = order(KnownAt::Seq(16));
    assert!(at16.contains(&11) && !at16.contains(&18));
}
