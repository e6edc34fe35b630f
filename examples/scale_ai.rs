//! The main job on the embedded default data: the Meta / Scale AI story of
//! June 2025, appended through the library into a ledger in a temporary
//! directory, then asked as of several dates and as known at several moments.
//!
//! Run: `cargo run --release --example scale_ai`

use dealledger::answer::Ownership;
use dealledger::{At, Date, KnownAt, Ledger};

const STORY: &str = include_str!("data/scale-ai.jsonl");

fn date(text: &str) -> Result<Date, Box<dyn std::error::Error>> {
    Ok(Date::parse(text)?)
}

fn holders(o: &Ownership) -> String {
    let list: Vec<String> = o
        .holders
        .iter()
        .map(|h| format!("{} {} since {}", h.holder, dealledger::pct_text(h.stake_pct.0), h.since))
        .collect();
    if list.is_empty() {
        "nobody named".to_owned()
    } else {
        list.join(", ")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let ledger = Ledger::open_or_create(dir.path().join("ledger"))?;
    let stored = ledger.append_text(STORY)?;
    println!("appended {} events (seq 1..{}) to {}", stored.len(), ledger.last_seq(), dir.path().display());

    println!("\n== Who owns Scale AI?");
    for day in ["2025-06-11", "2025-06-15"] {
        let o = ledger.ownership("scale-ai", At::date(date(day)?))?;
        println!("as of {day}: {} (unattributed {})", holders(&o), dealledger::pct_text(o.unattributed_pct.0));
    }

    println!("\n== What did the ledger believe, and when? (the $14.8B price was retracted at seq 17, re-recorded at $14.3B at seq 18)");
    for (k, why) in
        [(16, "before the retraction"), (17, "after the retraction, before the re-recording"), (18, "today")]
    {
        let at = At { as_of: date("2025-06-15")?, known_at: KnownAt::Seq(k) };
        let o = ledger.ownership("scale-ai", at)?;
        let price = ledger
            .history("scale-ai", KnownAt::Seq(k), None, None)?
            .into_iter()
            .filter(|l| l.kind == "acquisition")
            .filter_map(|l| l.event.get("consideration").cloned())
            .map(|c| format!("{} {}", c["amount"].as_str().unwrap_or("?"), c["currency"].as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "known at seq {k} ({why}): {}; price on record: {}",
            holders(&o),
            if price.is_empty() { "none" } else { &price }
        );
    }

    println!("\n== Partnerships of OpenAI");
    for day in ["2025-06-15", "2025-06-20"] {
        let p = ledger.partnerships("openai", At::date(date(day)?))?;
        let list: Vec<String> = p
            .partnerships
            .iter()
            .map(|r| {
                format!(
                    "{} ({}), last affirmed {}",
                    r.partner,
                    r.scope.as_deref().unwrap_or("any scope"),
                    r.last_affirmed.map_or("-".into(), |d| d.to_string())
                )
            })
            .collect();
        println!("as of {day}: {}", if list.is_empty() { "none".to_owned() } else { list.join("; ") });
    }

    println!("\n== Executives of Scale AI");
    for day in ["2025-06-01", "2025-06-15"] {
        let e = ledger.executives("scale-ai", At::date(date(day)?))?;
        let list: Vec<String> = e
            .executives
            .iter()
            .map(|r| format!("{} {}{} since {}", r.role, r.name, if r.interim { " (interim)" } else { "" }, r.since))
            .collect();
        println!("as of {day}: {}", list.join("; "));
    }

    println!("\n== Meta's name over time");
    for day in ["2020-01-01", "2022-01-01"] {
        println!("as of {day}: {}", ledger.ownership("meta", At::date(date(day)?))?.name);
    }

    let verified = ledger.verify()?;
    println!("\nverify: {} events, hash chain intact, head hash {}", verified.last_seq, verified.hash);
    Ok(())
}
