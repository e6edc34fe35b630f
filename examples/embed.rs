//! Embedding dealledger in another program: build events as typed values,
//! append them, handle a refusal, and ask a question.
//!
//! Run: `cargo run --example embed`

use dealledger::{At, Date, Error, Ledger};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let ledger = Ledger::open_or_create(dir.path().join("ledger"))?;

    // Events can come from any JSON source: here, serde_json values.
    let events = [
        serde_json::json!({"type": "company_registered", "effective": "2015-10-02", "company": "alphabet", "name": "Alphabet Inc."}),
        serde_json::json!({"type": "company_registered", "effective": "1998-09-04", "company": "google", "name": "Google LLC"}),
        serde_json::json!({"type": "acquisition", "effective": "2015-10-02", "acquirer": "alphabet", "target": "google", "stake_pct": 100}),
    ];
    let text: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    ledger.append_text(&text.join("\n"))?;

    // A refused append names the line and the rule, and stores nothing.
    let oversell =
        r#"{"type":"stake_sold","effective":"2016-01-01","seller":"alphabet","target":"google","stake_pct":120}"#;
    match ledger.append_text(oversell) {
        Err(Error::Refused { line, rule, message, .. }) => {
            println!("refused (rule {}): line {line}: {message}", rule.name())
        }
        other => println!("unexpected: {other:?}"),
    }
    println!("still {} events stored", ledger.last_seq());

    let h = ledger.holdings("alphabet", At::date(Date::parse("2025-01-01")?))?;
    println!("{}", serde_json::to_string_pretty(&h)?);
    Ok(())
}
