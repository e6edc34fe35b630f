//! Limits: long chains, many holders, many cycles, an exploding look-through
//! and very long strings. Answers stay correct, the look-through is bounded
//! (refused with a clear error rather than hanging), nothing overflows.

use dealledger::{At, Date, Error, Ledger};

fn ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open_or_create(dir.path().join("db")).expect("open");
    (dir, ledger)
}

fn company(id: &str) -> String {
    format!(r#"{{"type":"company_registered","effective":"2000-01-01","company":"{id}","name":"{id}"}}"#)
}

fn buy(acquirer: &str, target: &str, pct: &str) -> String {
    format!(
        r#"{{"type":"acquisition","effective":"2001-01-01","acquirer":"{acquirer}","target":"{target}","stake_pct":{pct}}}"#
    )
}

fn at() -> At {
    At::date(Date::parse("2020-01-01").expect("date"))
}

#[test]
fn a_chain_of_ten_thousand_holdings() {
    let (_dir, ledger) = ledger();
    let n = 10_000;
    let mut lines: Vec<String> = (0..n).map(|i| company(&format!("c{i}"))).collect();
    lines.extend((1..n).map(|i| buy(&format!("c{}", i - 1), &format!("c{i}"), "60")));
    ledger.append_text(&lines.join("\n")).expect("append");
    let h = ledger.holdings("c0", at()).expect("holdings");
    assert_eq!(h.look_through.len(), n - 1, "every company down the chain, even where it rounds to 0");
    assert_eq!(h.look_through[0].effective_pct.0, 600_000);
    assert_eq!(h.look_through[1].effective_pct.0, 360_000);
    let bottom = ledger.ownership(&format!("c{}", n - 1), at()).expect("ownership");
    assert_eq!(bottom.ultimate_controller.as_ref().map(|c| c.as_str()), Some("c0"));
}

#[test]
fn a_company_with_a_hundred_thousand_holders() {
    let (_dir, ledger) = ledger();
    let n = 100_000; // 0.001% each: exactly 100%
    let mut lines = vec![company("big")];
    for i in 0..n {
        lines
            .push(format!(r#"{{"type":"person_registered","effective":"2000-01-01","person":"p{i}","name":"P {i}"}}"#));
        lines.push(buy(&format!("p{i}"), "big", "0.001"));
    }
    ledger.append_text(&lines.join("\n")).expect("append");
    let o = ledger.ownership("big", at()).expect("ownership");
    assert_eq!(o.holders.len(), n);
    assert_eq!(o.unattributed_pct.0, 1_000_000 - 10 * n as u64);
    assert!(o.holders.windows(2).all(|w| w[0].holder < w[1].holder), "equal stakes sort by id");
    let one_more = [
        r#"{"type":"person_registered","effective":"2000-01-01","person":"late","name":"Late"}"#.to_owned(),
        buy("late", "big", "0.001"),
    ];
    assert!(ledger.append_text(&one_more.join("\n")).is_err(), "100,000 × 0.001% is all of it: one more is refused");
}

#[test]
fn a_thousand_cross_holding_cycles() {
    let (_dir, ledger) = ledger();
    let mut lines = Vec::new();
    for i in 0..1_000 {
        lines.push(company(&format!("a{i}")));
        lines.push(company(&format!("b{i}")));
        lines.push(buy(&format!("a{i}"), &format!("b{i}"), "60"));
        lines.push(buy(&format!("b{i}"), &format!("a{i}"), "60"));
    }
    ledger.append_text(&lines.join("\n")).expect("append");
    let h = ledger.holdings("a7", at()).expect("holdings");
    assert_eq!(h.look_through.len(), 1, "a7 itself never appears in its own look-through");
    assert_eq!(h.look_through[0].effective_pct.0, 600_000);
    let o = ledger.ownership("a7", at()).expect("ownership");
    assert_eq!(o.controlled_by.as_ref().map(|c| c.as_str()), Some("b7"));
    assert_eq!(o.ultimate_controller.as_ref().map(|c| c.as_str()), Some("b7"), "the last holder before a7 repeats");
}

#[test]
fn an_exploding_look_through_is_refused_not_hung() {
    // A ladder of 40 levels, two companies each, each holding 1% of both
    // companies of the next level: 2^40 chains.
    let (_dir, ledger) = ledger();
    let mut lines = vec![company("top")];
    for level in 0..40 {
        for side in ["l", "r"] {
            lines.push(company(&format!("{side}{level}")));
        }
    }
    for side in ["l", "r"] {
        lines.push(buy("top", &format!("{side}0"), "1"));
    }
    for level in 1..40 {
        for from in ["l", "r"] {
            for to in ["l", "r"] {
                lines.push(buy(&format!("{from}{}", level - 1), &format!("{to}{level}"), "1"));
            }
        }
    }
    ledger.append_text(&lines.join("\n")).expect("append");
    match ledger.holdings("top", at()) {
        Err(Error::LimitExceeded(message)) => assert!(message.contains("top"), "{message}"),
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert_eq!(ledger.holdings("l38", at()).expect("a small look-through still answers").look_through.len(), 2);
}

#[test]
fn long_strings_are_kept_up_to_the_limit_and_refused_beyond() {
    let (_dir, ledger) = ledger();
    let long = "x".repeat(dealledger::MAX_TEXT);
    let ok =
        format!(r#"{{"type":"company_registered","effective":"2000-01-01","company":"c","name":"C","note":"{long}"}}"#);
    ledger.append_text(&ok).expect("a note at the limit is kept");
    let too_long = format!(r#"{{"type":"company_renamed","effective":"2001-01-01","company":"c","name":"{long}y"}}"#);
    match ledger.append_text(&too_long) {
        Err(Error::Refused { line: 1, message, .. }) => assert!(message.contains("`name`"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(ledger.last_seq(), 1);
    assert_eq!(ledger.verify().expect("verify").last_seq, 1);
}
