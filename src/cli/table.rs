//! Readable output of the answers: a heading line and plain tables.
//!
//! Only presentation lives here: every figure comes from the library's
//! answer types unchanged.

use std::io::Write;

use anyhow::Result;
use comfy_table::{presets, Table};
use dealledger::answer::{Career, Executives, HistoryLine, Holdings, Ownership, PartnershipsAnswer, Pct, State};

fn pct(p: Pct) -> String {
    dealledger::pct_text(p.0)
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN).set_header(header.to_vec());
    for row in rows {
        t.add_row(row);
    }
    t
}

fn section(out: &mut dyn Write, title: &str, header: &[&str], rows: Vec<Vec<String>>) -> Result<()> {
    if rows.is_empty() {
        writeln!(out, "{title}: none")?;
    } else {
        writeln!(out, "{title}:\n{}", table(header, rows))?;
    }
    Ok(())
}

/// `ownership` without `--json`.
pub fn ownership(out: &mut dyn Write, o: &Ownership) -> Result<()> {
    writeln!(out, "{} ({}) as of {}, known at seq {}", o.name, o.company, o.as_of, o.known_at_seq)?;
    let rows = o.holders.iter().map(|h| vec![h.holder.to_string(), pct(h.stake_pct), h.since.to_string()]).collect();
    section(out, "Holders", &["holder", "stake", "since"], rows)?;
    writeln!(out, "Unattributed: {}", pct(o.unattributed_pct))?;
    writeln!(out, "Controlled by: {}", opt(o.controlled_by.as_ref()))?;
    writeln!(out, "Ultimate controller: {}", opt(o.ultimate_controller.as_ref()))?;
    let rows = o
        .pending_deals
        .iter()
        .map(|d| vec![d.deal.to_string(), d.acquirer.to_string(), pct(d.stake_pct), d.announced.to_string()])
        .collect();
    section(out, "Pending deals", &["deal", "acquirer", "stake", "announced"], rows)
}

/// `holdings` without `--json`.
pub fn holdings(out: &mut dyn Write, h: &Holdings) -> Result<()> {
    writeln!(out, "Holdings of {} as of {}, known at seq {}", h.holder, h.as_of, h.known_at_seq)?;
    let rows = h.direct.iter().map(|d| vec![d.company.to_string(), pct(d.stake_pct), d.since.to_string()]).collect();
    section(out, "Direct", &["company", "stake", "since"], rows)?;
    let rows = h.look_through.iter().map(|l| vec![l.company.to_string(), pct(l.effective_pct)]).collect();
    section(out, "Look-through", &["company", "effective stake"], rows)
}

/// `partnerships` without `--json`.
pub fn partnerships(out: &mut dyn Write, p: &PartnershipsAnswer) -> Result<()> {
    writeln!(out, "Partnerships of {} as of {}, known at seq {}", p.company, p.as_of, p.known_at_seq)?;
    let rows = p
        .partnerships
        .iter()
        .map(|r| vec![r.partner.to_string(), opt(r.scope.as_ref()), opt(r.since), opt(r.last_affirmed)])
        .collect();
    section(out, "Active", &["partner", "scope", "since", "last affirmed"], rows)
}

/// `executives` without `--json`.
pub fn executives(out: &mut dyn Write, e: &Executives) -> Result<()> {
    writeln!(out, "Executives of {} as of {}, known at seq {}", e.company, e.as_of, e.known_at_seq)?;
    let rows = e
        .executives
        .iter()
        .map(|r| {
            let interim = if r.interim { "yes" } else { "no" };
            vec![r.role.clone(), r.person.to_string(), r.name.clone(), interim.to_owned(), r.since.to_string()]
        })
        .collect();
    section(out, "Roles", &["role", "person", "name", "interim", "since"], rows)
}

/// `career` without `--json`.
pub fn career(out: &mut dyn Write, c: &Career) -> Result<()> {
    writeln!(out, "Career of {} ({}) as of {}, known at seq {}", c.name, c.person, c.as_of, c.known_at_seq)?;
    let rows = c
        .current
        .iter()
        .map(|r| {
            let interim = if r.interim { "yes" } else { "no" };
            vec![r.company.to_string(), r.role.clone(), interim.to_owned(), r.since.to_string()]
        })
        .collect();
    section(out, "Current", &["company", "role", "interim", "since"], rows)?;
    let rows = c
        .past
        .iter()
        .map(|r| vec![r.company.to_string(), r.role.clone(), r.from.to_string(), r.to.to_string()])
        .collect();
    section(out, "Past", &["company", "role", "from", "to"], rows)
}

/// `history` without `--json`: one line per event with its key change.
pub fn history(out: &mut dyn Write, id: &str, lines: &[HistoryLine]) -> Result<()> {
    let known = lines.first().map(|l| match &l.state {
        State::Ownership(o) => o.known_at_seq,
        State::Career(c) => c.known_at_seq,
    });
    writeln!(out, "History of {id}{}", known.map(|k| format!(", known at seq {k}")).unwrap_or_default())?;
    let rows = lines
        .iter()
        .map(|l| vec![l.effective.to_string(), l.seq.to_string(), l.summary.clone(), l.change.clone()])
        .collect();
    section(out, "Events", &["effective", "seq", "event", "change"], rows)
}
