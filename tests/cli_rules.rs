//! Every rule of CONTRACT.md §4, tried with hand-made bad input through the
//! real binary: the append exits 1, stderr names the offending input line
//! (`line N`) or, for a late event that breaks a later stored one, that
//! event's `seq S`, and nothing of the append is stored.

mod common;

use common::*;
use serde_json::{json, Value};

/// Ids of the base ledger's events.
const ALPHA_REG: u32 = 101;
const BETA_REG: u32 = 102;
const LATE_REG: u32 = 105;
const ALPHA_BETA_ACQ: u32 = 1;

/// seq 1-5: companies alpha, beta, gamma and person pat on 2020-01-01,
/// company late-co on 2022-01-01; seq 6: alpha holds 60% of beta from
/// 2020-02-01.
fn base() -> Ledger {
    let l = Ledger::new();
    let mut events = vec![
        reg_co("alpha", "2020-01-01"),
        reg_co("beta", "2020-01-01"),
        reg_co("gamma", "2020-01-01"),
        reg_person("pat", "2020-01-01"),
        reg_co("late-co", "2022-01-01"),
        acq("alpha", "beta", 60, "2020-02-01"),
    ];
    for (e, id) in events.iter_mut().zip([ALPHA_REG, BETA_REG, 103, 104, LATE_REG, ALPHA_BETA_ACQ]) {
        e["id"] = json!(uuid(id));
    }
    assert_eq!(l.append_seqs(&events), vec![1, 2, 3, 4, 5, 6]);
    l
}

/// A harmless valid event, put first so that the bad one is line 2.
fn filler() -> Value {
    json!({"type": "company_renamed", "effective": "2021-01-01", "company": "gamma", "name": "Gamma Two"})
}

/// Appends `[filler, bad]` and expects it refused at line 2.
fn refused_at_line_2(bad: Value) {
    let l = base();
    l.refuse_events(&[filler(), bad], "line 2");
}

fn retraction(id: &str) -> Value {
    json!({"type": "retraction", "retracts": id, "reason": "test"})
}

// ---------------------------------------------------------------- rule 1

#[test]
fn rule1_unknown_type() {
    refused_at_line_2(json!({"type": "merger", "effective": "2021-01-01", "company": "alpha"}));
}

#[test]
fn rule1_missing_field() {
    refused_at_line_2(json!({"type": "acquisition", "effective": "2021-01-01", "acquirer": "alpha", "stake_pct": 10}));
}

#[test]
fn rule1_missing_effective() {
    refused_at_line_2(json!({"type": "company_registered", "company": "delta", "name": "Delta"}));
}

#[test]
fn rule1_unknown_field() {
    refused_at_line_2(json!({"type": "company_renamed", "effective": "2021-01-01", "company": "alpha",
        "name": "Alpha Two", "colour": "red"}));
}

#[test]
fn rule1_id_not_a_slug() {
    refused_at_line_2(
        json!({"type": "company_registered", "effective": "2021-01-01", "company": "Meta", "name": "Meta"}),
    );
}

#[test]
fn rule1_impossible_date() {
    refused_at_line_2(
        json!({"type": "company_registered", "effective": "2025-02-30", "company": "delta", "name": "Delta"}),
    );
}

#[test]
fn rule1_empty_name() {
    refused_at_line_2(json!({"type": "company_registered", "effective": "2021-01-01", "company": "delta", "name": ""}));
}

#[test]
fn rule1_stake_zero() {
    refused_at_line_2(acq("alpha", "gamma", 0, "2021-01-01"));
}

#[test]
fn rule1_stake_over_100() {
    refused_at_line_2(acq("alpha", "gamma", 100.5, "2021-01-01"));
}

#[test]
fn rule1_stake_with_5_decimals() {
    refused_at_line_2(acq("alpha", "gamma", 12.34567, "2021-01-01"));
}

#[test]
fn rule1_stake_string_with_5_decimals() {
    refused_at_line_2(acq("alpha", "gamma", "12.34567", "2021-01-01"));
}

#[test]
fn stake_of_exactly_100_is_accepted() {
    let l = base();
    l.append_events(&[acq("alpha", "gamma", 100, "2021-01-01")]);
    assert_match(
        &json!({"holders": [{"holder": "alpha", "stake_pct": 100}], "unattributed_pct": 0, "controlled_by": "alpha"}),
        &l.json(&["ownership", "gamma"]),
    );
}

#[test]
fn rule1_currency_not_iso_upper_case() {
    let mut e = acq("alpha", "gamma", 10, "2021-01-01");
    e["consideration"] = json!({"amount": "1000", "currency": "usd"});
    refused_at_line_2(e);
}

#[test]
fn rule1_amount_with_5_decimals() {
    let mut e = acq("alpha", "gamma", 10, "2021-01-01");
    e["consideration"] = json!({"amount": "1000.12345", "currency": "USD"});
    refused_at_line_2(e);
}

#[test]
fn rule1_seller_equal_to_acquirer() {
    let mut e = acq("alpha", "beta", 10, "2021-01-01");
    e["seller"] = json!("alpha");
    refused_at_line_2(e);
}

#[test]
fn rule1_buyer_equal_to_seller() {
    let mut e = sold("alpha", "beta", 10, "2021-01-01");
    e["buyer"] = json!("alpha");
    refused_at_line_2(e);
}

#[test]
fn rule1_partners_not_distinct() {
    refused_at_line_2(json!({"type": "partnership_formed", "effective": "2021-01-01", "partners": ["alpha", "alpha"]}));
}

#[test]
fn rule1_retraction_without_reason() {
    refused_at_line_2(json!({"type": "retraction", "retracts": uuid(ALPHA_BETA_ACQ)}));
}

// ---------------------------------------------------------------- rule 9

#[test]
fn rule9_event_sets_seq() {
    let mut e = reg_co("delta", "2021-01-01");
    e["seq"] = json!(8);
    refused_at_line_2(e);
}

#[test]
fn rule9_event_sets_recorded_at() {
    let mut e = reg_co("delta", "2021-01-01");
    e["recorded_at"] = json!("2021-01-01T00:00:00Z");
    refused_at_line_2(e);
}

#[test]
fn rule9_event_sets_hash() {
    let mut e = reg_co("delta", "2021-01-01");
    e["hash"] = json!("00".repeat(32));
    refused_at_line_2(e);
}

// ---------------------------------------------------------------- rule 2

#[test]
fn rule2_entity_referenced_before_its_registration() {
    refused_at_line_2(acq("alpha", "late-co", 10, "2021-06-01"));
}

#[test]
fn rule2_holder_referenced_before_its_registration() {
    refused_at_line_2(acq("late-co", "gamma", 10, "2021-06-01"));
}

#[test]
fn rule2_entity_never_registered() {
    refused_at_line_2(acq("nobody", "gamma", 10, "2021-06-01"));
}

#[test]
fn rule2_company_and_person_under_the_same_id() {
    refused_at_line_2(reg_person("alpha", "2021-01-01"));
}

#[test]
fn rule2_entity_registered_twice() {
    refused_at_line_2(
        json!({"type": "company_registered", "effective": "2021-01-01", "company": "beta", "name": "Beta Again"}),
    );
}

#[test]
fn rule2_target_is_a_person() {
    refused_at_line_2(acq("alpha", "pat", 10, "2021-01-01"));
}

#[test]
fn rule2_partner_is_a_person() {
    refused_at_line_2(json!({"type": "partnership_formed", "effective": "2021-01-01", "partners": ["alpha", "pat"]}));
}

#[test]
fn rule2_role_person_is_a_company() {
    refused_at_line_2(json!({"type": "executive_appointed", "effective": "2021-01-01", "person": "beta",
        "company": "alpha", "role": "CEO"}));
}

#[test]
fn rule2_role_company_is_a_person() {
    refused_at_line_2(json!({"type": "executive_appointed", "effective": "2021-01-01", "person": "pat",
        "company": "pat", "role": "CEO"}));
}

// ---------------------------------------------------------------- rule 3

#[test]
fn rule3_stakes_over_100_percent() {
    // beta: alpha 60, unattributed 40.
    refused_at_line_2(acq("gamma", "beta", 50, "2021-01-01"));
}

#[test]
fn rule3_selling_more_than_held() {
    refused_at_line_2(sold("alpha", "beta", 70, "2021-01-01"));
}

#[test]
fn rule3_acquisition_from_seller_holding_too_little() {
    let mut e = acq("gamma", "beta", 70, "2021-01-01");
    e["seller"] = json!("alpha");
    refused_at_line_2(e);
}

#[test]
fn rule3_same_day_sale_before_the_purchase_is_refused() {
    let l = base();
    // The sale gets the smaller seq, so it folds before the purchase.
    l.refuse_events(
        &[filler(), sold("gamma", "beta", 10, "2021-03-01"), acq("gamma", "beta", 20, "2021-03-01")],
        "line 2",
    );
}

#[test]
fn rule3_same_day_sale_after_the_purchase_is_accepted() {
    let l = base();
    l.append_events(&[filler(), acq("gamma", "beta", 20, "2021-03-01"), sold("gamma", "beta", 10, "2021-03-01")]);
    assert_match(
        &json!({"holders": [{"holder": "alpha", "stake_pct": 60}, {"holder": "gamma", "stake_pct": 10}],
            "unattributed_pct": 30}),
        &l.json(&["ownership", "beta", "--as-of", "2021-03-01"]),
    );
}

#[test]
fn rule3_holding_a_stake_in_itself() {
    refused_at_line_2(acq("beta", "beta", 10, "2021-01-01"));
}

// ---------------------------------------------------------------- rule 4

fn announce(deal: &str, date: &str) -> Value {
    json!({"type": "deal_announced", "effective": date, "deal": deal,
        "acquirer": "alpha", "target": "gamma", "stake_pct": 30})
}

fn complete(deal: &str, date: &str) -> Value {
    json!({"type": "deal_completed", "effective": date, "deal": deal})
}

#[test]
fn rule4_deal_completed_of_an_unknown_deal() {
    refused_at_line_2(complete("no-such-deal", "2021-03-01"));
}

#[test]
fn rule4_deal_terminated_of_an_unknown_deal() {
    refused_at_line_2(json!({"type": "deal_terminated", "effective": "2021-03-01", "deal": "no-such-deal"}));
}

#[test]
fn rule4_deal_completed_of_a_terminated_deal() {
    let l = base();
    l.append_events(&[
        announce("d1", "2021-01-01"),
        json!({"type": "deal_terminated", "effective": "2021-02-01", "deal": "d1"}),
    ]);
    l.refuse_events(&[filler(), complete("d1", "2021-03-01")], "line 2");
}

#[test]
fn rule4_deal_completed_twice() {
    let l = base();
    l.append_events(&[announce("d1", "2021-01-01"), complete("d1", "2021-02-01")]);
    l.refuse_events(&[filler(), complete("d1", "2021-03-01")], "line 2");
}

#[test]
fn rule4_deal_completed_before_its_announcement() {
    let l = base();
    l.append_events(&[announce("d1", "2021-05-01")]);
    l.refuse_events(&[filler(), complete("d1", "2021-04-01")], "line 2");
}

#[test]
fn rule4_deal_announced_twice() {
    let l = base();
    l.append_events(&[announce("d1", "2021-01-01")]);
    l.refuse_events(&[filler(), announce("d1", "2021-02-01")], "line 2");
}

// ---------------------------------------------------------------- rule 5

fn partnership(kind: &str, date: &str) -> Value {
    json!({"type": kind, "effective": date, "partners": ["alpha", "beta"]})
}

#[test]
fn rule5_partnership_ended_not_active() {
    refused_at_line_2(partnership("partnership_ended", "2021-01-01"));
}

#[test]
fn rule5_partnership_ended_before_it_was_formed() {
    let l = base();
    l.append_events(&[partnership("partnership_formed", "2021-06-01")]);
    l.refuse_events(&[filler(), partnership("partnership_ended", "2021-03-01")], "line 2");
}

#[test]
fn partnership_formed_of_an_active_one_is_refused() {
    let l = base();
    l.append_events(&[partnership("partnership_formed", "2021-01-01")]);
    l.refuse_events(&[filler(), partnership("partnership_formed", "2021-06-01")], "line 2");
}

#[test]
fn rule5_executive_departed_of_a_role_not_held() {
    refused_at_line_2(json!({"type": "executive_departed", "effective": "2021-01-01", "person": "pat",
        "company": "alpha", "role": "CFO"}));
}

#[test]
fn executive_moved_from_a_role_not_held_is_refused() {
    refused_at_line_2(json!({"type": "executive_moved", "effective": "2021-01-01", "person": "pat",
        "from": {"company": "alpha", "role": "CFO"}, "to": {"company": "beta", "role": "CEO"}}));
}

// ---------------------------------------------------------------- rule 6

#[test]
fn rule6_late_sale_that_breaks_a_later_stored_sale_names_its_seq() {
    let l = base();
    let s = l.append_seqs(&[sold("alpha", "beta", 50, "2021-06-01")]);
    assert_eq!(s, vec![7]);
    // After a late sale of 20 on 2021-01-01, alpha holds 40 on 2021-06-01.
    l.refuse_events(&[sold("alpha", "beta", 20, "2021-01-01")], "seq 7");
}

#[test]
fn rule6_late_acquisition_that_overflows_a_later_one_names_its_seq() {
    let l = base();
    let s = l.append_seqs(&[acq("gamma", "beta", 40, "2021-06-01")]);
    assert_eq!(s, vec![7]);
    l.refuse_events(&[filler(), acq("gamma", "beta", 10, "2021-01-01")], "seq 7");
}

#[test]
fn rule6_names_the_line_that_breaks_the_later_event_not_the_first_line() {
    let l = base();
    let s = l.append_seqs(&[acq("gamma", "beta", 30, "2024-01-01")]);
    assert_eq!(s, vec![7]);
    // Line 1 alone is fine (95% in 2025); line 2 makes seq 7 overflow (110% in 2024).
    let err = l.refuse_events(&[acq("pat", "beta", 5, "2025-06-01"), acq("pat", "beta", 20, "2020-06-01")], "seq 7");
    assert!(err.contains("line 2"), "{err}");
}

// ----------------------------------------------------- all or nothing

#[test]
fn multi_line_append_with_bad_line_3_stores_nothing() {
    let l = base();
    l.refuse_events(
        &[reg_co("delta", "2021-01-01"), reg_co("epsilon", "2021-01-01"), acq("delta", "nobody", 10, "2021-02-01")],
        "line 3",
    );
    let out = l.fail(&["ownership", "delta", "--json"]);
    assert!(out.stderr.contains("delta"), "{}", out.stderr);
}

// ---------------------------------------------------------------- rule 7

#[test]
fn rule7_retraction_of_an_unknown_event() {
    refused_at_line_2(retraction(&uuid(999)));
}

#[test]
fn rule7_retraction_of_a_retraction() {
    let l = base();
    let mut r = retraction(&uuid(ALPHA_BETA_ACQ));
    r["id"] = json!(uuid(50));
    assert_eq!(l.append_seqs(&[r]), vec![7]);
    l.refuse_events(&[filler(), retraction(&uuid(50))], "line 2");
}

#[test]
fn rule7_retraction_of_an_already_retracted_event() {
    let l = base();
    l.append_events(&[retraction(&uuid(ALPHA_BETA_ACQ))]);
    l.refuse_events(&[filler(), retraction(&uuid(ALPHA_BETA_ACQ))], "line 2");
}

#[test]
fn rule7_retraction_that_breaks_a_later_sale() {
    let l = base();
    l.append_events(&[sold("alpha", "beta", 10, "2021-01-01")]);
    l.refuse_events(&[filler(), retraction(&uuid(ALPHA_BETA_ACQ))], "line 2");
}

#[test]
fn rule7_retraction_of_a_registration_still_named() {
    // beta is named by alpha's acquisition.
    refused_at_line_2(retraction(&uuid(BETA_REG)));
}

#[test]
fn rule7_retraction_of_an_unnamed_registration_frees_the_id() {
    let l = base();
    l.append_events(&[retraction(&uuid(LATE_REG))]);
    l.fail(&["ownership", "late-co", "--json"]);
    l.append_events(&[reg_co("late-co", "2023-01-01")]);
    assert_match(
        &json!({"company": "late-co", "holders": []}),
        &l.json(&["ownership", "late-co", "--as-of", "2023-06-01"]),
    );
    let out = l.fail(&["ownership", "late-co", "--as-of", "2022-06-01", "--json"]);
    assert!(out.stderr.contains("2023-01-01"), "{}", out.stderr);
}

#[test]
fn rule7_retraction_of_a_registration_whose_naming_events_are_retracted() {
    let l = base();
    let mut reg = reg_co("delta", "2021-01-01");
    reg["id"] = json!(uuid(60));
    let mut a = acq("alpha", "delta", 10, "2021-02-01");
    a["id"] = json!(uuid(61));
    l.append_events(&[reg, a]);
    l.refuse_events(&[retraction(&uuid(60))], "line 1");
    l.append_events(&[retraction(&uuid(61))]);
    l.append_events(&[retraction(&uuid(60))]);
    l.fail(&["ownership", "delta", "--json"]);
    l.verify_ok();
}

// ---------------------------------------------------------------- rule 8

#[test]
fn rule8_same_id_with_different_content_is_refused() {
    let mut e = acq("alpha", "beta", 50, "2020-02-01");
    e["id"] = json!(uuid(ALPHA_BETA_ACQ));
    refused_at_line_2(e);
}

#[test]
fn rule8_same_id_with_same_content_is_a_noop() {
    let l = base();
    let mut e = acq("alpha", "beta", 60, "2020-02-01");
    e["id"] = json!(uuid(ALPHA_BETA_ACQ));
    let out = l.append_events(&[e]);
    assert_eq!(seqs(&out), vec![6]);
    assert_eq!(out[0]["id"], json!(uuid(ALPHA_BETA_ACQ)));
    assert_eq!(l.count(), 6);
    assert_match(&json!({"holders": [{"holder": "alpha", "stake_pct": 60}]}), &l.json(&["ownership", "beta"]));
    l.verify_ok();
}
