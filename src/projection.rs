//! Folds of events into state: cap tables, partnerships, roles, deals and names.
//!
//! Each fold applies one event at a time, in `(effective, seq)` order, and
//! reports the rule the event breaks, if any. Validation stops at the first
//! report; queries ignore reports and keep folding leniently, because a view
//! at an earlier seq can cut a batch in the middle (a sale whose late-dated
//! purchase came in the same append). These folds are pure: they never touch
//! storage, so they are unit-tested with no ledger at all.

use std::collections::BTreeMap;

use crate::error::Rule;
use crate::event::Event;
use crate::timeline::Fact;
use crate::value::{pct_text, Date, EntityId, WHOLE};

/// A rule an event breaks, found by a fold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breach {
    /// The rule.
    pub rule: Rule,
    /// What is wrong, naming the entities, the date and the amounts.
    pub message: String,
}

fn breach(rule: Rule, message: String) -> Option<Breach> {
    Some(Breach { rule, message })
}

/// One holder's position in a company.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holding {
    /// Millionths of the company (negative only in a lenient view of a cut batch).
    pub millionths: i64,
    /// Start of the current unbroken holding.
    pub since: Date,
}

/// A deal announced for the company and not yet closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingDeal {
    /// Who would gain the stake.
    pub acquirer: EntityId,
    /// The announced stake, in millionths.
    pub millionths: u64,
    /// The announcement's date.
    pub announced: Date,
}

/// The cap table of one company.
#[derive(Clone, Debug, Default)]
pub struct CapTable {
    /// Holders with a non-zero position.
    pub holders: BTreeMap<EntityId, Holding>,
    /// Pending deals for the company, by deal id.
    pub pending: BTreeMap<EntityId, PendingDeal>,
    /// The sum of positive holdings, kept by `add` so that checking rule 3
    /// costs the same with 10 holders or 100,000.
    held: i64,
}

impl CapTable {
    /// The sum of positive holdings, in millionths.
    pub fn held(&self) -> i64 {
        self.held
    }

    /// The share held by nobody named, in millionths (never below 0).
    pub fn unattributed(&self) -> u64 {
        (WHOLE as i64 - self.held()).max(0) as u64
    }

    /// What `holder` holds, in millionths (0 when nothing).
    pub fn of(&self, holder: &EntityId) -> i64 {
        self.holders.get(holder).map_or(0, |h| h.millionths)
    }

    /// The holder with more than 50%, if any.
    pub fn controller(&self) -> Option<&EntityId> {
        self.holders.iter().find(|(_, h)| h.millionths > (WHOLE / 2) as i64).map(|(id, _)| id)
    }

    /// Applies a fact of the company's timeline, checking rule 3.
    pub fn apply(&mut self, company: &EntityId, fact: &Fact) -> Option<Breach> {
        let date = fact.effective;
        match (&fact.event, fact.announcement.as_ref()) {
            (Event::Acquisition { acquirer, target, stake, seller, .. }, _) if target == company => {
                self.transfer(company, date, Some(acquirer), seller.as_ref(), stake.millionths())
            }
            (Event::StakeSold { seller, target, stake, buyer, .. }, _) if target == company => {
                self.transfer(company, date, buyer.as_ref(), Some(seller), stake.millionths())
            }
            (Event::DealAnnounced { deal, acquirer, target, stake, .. }, _) if target == company => {
                let pending =
                    PendingDeal { acquirer: acquirer.clone(), millionths: stake.millionths(), announced: date };
                self.pending.insert(deal.clone(), pending);
                None
            }
            (
                Event::DealCompleted { deal, stake: over, .. },
                Some(Event::DealAnnounced { acquirer, target, stake, seller, .. }),
            ) if target == company => {
                self.pending.remove(deal);
                let stake = over.unwrap_or(*stake).millionths();
                self.transfer(company, date, Some(acquirer), seller.as_ref(), stake)
            }
            (Event::DealTerminated { deal, .. }, Some(Event::DealAnnounced { target, .. })) if target == company => {
                self.pending.remove(deal);
                None
            }
            _ => None,
        }
    }

    /// Moves `x` millionths of `company` from `from` (or the unattributed
    /// remainder) to `to` (or the remainder), checking rule 3.
    fn transfer(
        &mut self,
        company: &EntityId,
        date: Date,
        to: Option<&EntityId>,
        from: Option<&EntityId>,
        x: u64,
    ) -> Option<Breach> {
        let x = x as i64;
        let mut found = None;
        if let Some(to) = to.filter(|to| *to == company) {
            found = breach(Rule::Stakes, format!("{to} cannot hold a stake in itself"));
        }
        match from {
            Some(from) => {
                let held = self.of(from);
                if held < x && found.is_none() {
                    found = breach(
                        Rule::Stakes,
                        format!(
                            "{from} holds {} of {company} on {date}, cannot sell {}",
                            pct_text(held.max(0) as u64),
                            pct_text(x as u64)
                        ),
                    );
                }
                self.add(from, -x, date);
            }
            None if to.is_some() => {
                let total = self.held() + x;
                if total > WHOLE as i64 && found.is_none() {
                    found = breach(
                        Rule::Stakes,
                        format!(
                            "stakes in {company} would add up to {} on {date} (only {} is unattributed)",
                            pct_text(total as u64),
                            pct_text(self.unattributed())
                        ),
                    );
                }
            }
            None => {}
        }
        if let Some(to) = to {
            self.add(to, x, date);
        }
        found
    }

    fn add(&mut self, holder: &EntityId, delta: i64, date: Date) {
        let before = self.of(holder);
        let after = before + delta;
        self.held += after.max(0) - before.max(0);
        if after == 0 {
            self.holders.remove(holder);
        } else {
            let since = match self.holders.get(holder) {
                Some(h) if before > 0 => h.since,
                _ => date,
            };
            self.holders.insert(holder.clone(), Holding { millionths: after, since });
        }
    }
}

/// The state of one partnership (pair and scope).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartnershipState {
    /// Whether it is active.
    pub active: bool,
    /// The `partnership_formed` date of the current period (None when first known from a continuation).
    pub since: Option<Date>,
    /// The latest continuation of the current period.
    pub last_affirmed: Option<Date>,
}

/// The partnerships of one company, by (other partner, scope).
#[derive(Clone, Debug, Default)]
pub struct Partnerships {
    /// State by (other partner, scope); `None` scope sorts first.
    pub by_partner: BTreeMap<(EntityId, Option<String>), PartnershipState>,
}

impl Partnerships {
    /// Applies a fact of the company's timeline, checking rule 5.
    pub fn apply(&mut self, company: &EntityId, fact: &Fact) -> Option<Breach> {
        let date = fact.effective;
        let (partners, scope) = match &fact.event {
            Event::PartnershipFormed { partners, scope }
            | Event::PartnershipContinued { partners, scope }
            | Event::PartnershipEnded { partners, scope, .. } => (partners, scope),
            _ => return None,
        };
        let other = partners.iter().find(|p| *p != company)?;
        let state = self.by_partner.entry((other.clone(), scope.clone())).or_default();
        let name = || format!("the partnership of {} and {}{}", partners[0], partners[1], scope_text(scope.as_deref()));
        match &fact.event {
            Event::PartnershipFormed { .. } => {
                let found = state.active.then(|| Breach {
                    rule: Rule::Relationship,
                    message: format!("{} is already active on {date}", name()),
                });
                *state = PartnershipState { active: true, since: Some(date), last_affirmed: None };
                found
            }
            Event::PartnershipContinued { .. } => {
                if !state.active {
                    *state = PartnershipState { active: true, since: None, last_affirmed: None };
                }
                state.last_affirmed = Some(date);
                None
            }
            _ => {
                let found = (!state.active).then(|| Breach {
                    rule: Rule::Relationship,
                    message: format!("{} is not active on {date}", name()),
                });
                *state = PartnershipState::default();
                found
            }
        }
    }
}

fn scope_text(scope: Option<&str>) -> String {
    scope.map(|s| format!(" (scope `{s}`)")).unwrap_or_default()
}

/// A role held now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldRole {
    /// Whether on an interim basis.
    pub interim: bool,
    /// Since when.
    pub since: Date,
}

/// A role that ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PastRole {
    /// The person.
    pub person: EntityId,
    /// The company.
    pub company: EntityId,
    /// The role.
    pub role: String,
    /// When it started.
    pub from: Date,
    /// When it ended.
    pub to: Date,
}

/// Executive roles, keyed by (person, company, role).
#[derive(Clone, Debug, Default)]
pub struct Roles {
    /// Roles held now.
    pub current: BTreeMap<(EntityId, EntityId, String), HeldRole>,
    /// Roles that ended, in the order they ended.
    pub past: Vec<PastRole>,
}

impl Roles {
    /// Applies a role fact, checking rule 5 (complete only over a person's whole timeline).
    pub fn apply(&mut self, fact: &Fact) -> Option<Breach> {
        let (person, company, role) = self.fold(fact)?;
        let what = role.map_or_else(|| "any role".to_owned(), |r| format!("the role `{r}`"));
        breach(Rule::Relationship, format!("{person} does not hold {what} at {company} on {}", fact.effective))
    }

    /// Applies a role fact as [`Roles::apply`] does, and returns the
    /// (person, company, role) of a departure that matched no held role
    /// instead of a breach: a query folding one company's timeline meets
    /// moves away from other companies, whose roles that timeline never
    /// held, and needs no message for them.
    pub fn fold<'f>(&mut self, fact: &'f Fact) -> Option<(&'f EntityId, &'f EntityId, Option<&'f str>)> {
        let date = fact.effective;
        match &fact.event {
            Event::ExecutiveAppointed { person, company, role, interim } => {
                self.start(person, company, role, *interim, date);
                None
            }
            Event::ExecutiveDeparted { person, company, role } => {
                (!self.end(person, company, role.as_deref(), date)).then_some((person, company, role.as_deref()))
            }
            Event::ExecutiveMoved { person, from, to } => {
                let ended = self.end(person, &from.company, from.role.as_deref(), date);
                self.start(person, &to.company, &to.role, to.interim, date);
                (!ended).then_some((person, &from.company, from.role.as_deref()))
            }
            _ => None,
        }
    }

    fn start(&mut self, person: &EntityId, company: &EntityId, role: &str, interim: bool, date: Date) {
        self.current
            .entry((person.clone(), company.clone(), role.to_owned()))
            .and_modify(|held| held.interim = interim)
            .or_insert(HeldRole { interim, since: date });
    }

    /// Ends the matching held roles; returns whether there was one.
    fn end(&mut self, person: &EntityId, company: &EntityId, role: Option<&str>, date: Date) -> bool {
        let ending: Vec<_> = self
            .current
            .keys()
            .filter(|(p, c, r)| p == person && c == company && role.is_none_or(|role| role == r))
            .cloned()
            .collect();
        let found = !ending.is_empty();
        for key in ending {
            if let Some(held) = self.current.remove(&key) {
                let (person, company, role) = key;
                self.past.push(PastRole { person, company, role, from: held.since, to: date });
            }
        }
        found
    }
}

/// The status of one deal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DealStatus {
    /// Announced, not yet closed.
    Pending,
    /// Closed by a completion.
    Completed,
    /// Ended by a termination.
    Terminated,
}

/// The fold of one deal's timeline.
#[derive(Clone, Debug, Default)]
pub struct DealState {
    /// The status, once announced.
    pub status: Option<DealStatus>,
}

impl DealState {
    /// Applies a fact of the deal's timeline, checking rule 4.
    pub fn apply(&mut self, fact: &Fact) -> Option<Breach> {
        let date = fact.effective;
        let deal = fact.event.deal_id()?;
        match (&fact.event, self.status) {
            (Event::DealAnnounced { .. }, Some(_)) => breach(Rule::Deal, format!("deal {deal} is already announced")),
            (Event::DealAnnounced { .. }, None) => {
                self.status = Some(DealStatus::Pending);
                None
            }
            (_, Some(DealStatus::Pending)) => {
                let closed = matches!(fact.event, Event::DealCompleted { .. });
                self.status = Some(if closed { DealStatus::Completed } else { DealStatus::Terminated });
                None
            }
            (_, status) => {
                let why = match status {
                    None => "not announced on or before that date",
                    Some(DealStatus::Completed) => "already completed",
                    _ => "already terminated",
                };
                breach(Rule::Deal, format!("deal {deal} is not pending on {date}: {why}"))
            }
        }
    }
}

/// A company's display name after a fact, if the fact sets it.
pub fn name_set_by(fact: &Fact) -> Option<&str> {
    match &fact.event {
        Event::CompanyRegistered { name, .. }
        | Event::CompanyRenamed { name, .. }
        | Event::PersonRegistered { name, .. } => Some(name),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RoleEnd;
    use crate::value::Stake;

    fn id(s: &str) -> EntityId {
        EntityId::parse(s).expect("slug")
    }

    fn rec(seq: u64, date: &str, event: Event) -> Fact {
        Fact {
            effective: Date::parse(date).expect("date"),
            seq,
            retracted_by: None,
            event,
            announcement: None,
            stored_body: Default::default(),
        }
    }

    fn buy(seq: u64, date: &str, acquirer: &str, pct: &str, seller: Option<&str>) -> Fact {
        rec(
            seq,
            date,
            Event::Acquisition {
                acquirer: id(acquirer),
                target: id("t"),
                stake: Stake::parse_pct(pct).expect("stake"),
                seller: seller.map(id),
                consideration: None,
                deal: None,
            },
        )
    }

    #[test]
    fn cap_table_tracks_stakes_and_since() {
        let t = id("t");
        let mut cap = CapTable::default();
        assert_eq!(cap.apply(&t, &buy(1, "2020-01-01", "a", "60", None)), None);
        assert_eq!(cap.apply(&t, &buy(2, "2021-01-01", "b", "60", Some("a"))), None);
        assert_eq!(cap.of(&id("a")), 0);
        assert_eq!(cap.holders[&id("b")].since, Date::parse("2021-01-01").expect("date"));
        assert_eq!(cap.controller(), Some(&id("b")));
        assert_eq!(cap.unattributed(), 400_000);
    }

    #[test]
    fn cap_table_refuses_overselling_and_over_100() {
        let t = id("t");
        let mut cap = CapTable::default();
        cap.apply(&t, &buy(1, "2020-01-01", "a", "60", None));
        let over = cap.apply(&t, &buy(2, "2020-01-02", "b", "50", None)).expect("breach");
        assert!(over.message.contains("110%"), "{}", over.message);
        let mut cap = CapTable::default();
        let oversell = cap.apply(&t, &buy(1, "2020-01-01", "b", "5", Some("a"))).expect("breach");
        assert!(oversell.message.contains("a holds 0% of t on 2020-01-01, cannot sell 5%"), "{}", oversell.message);
        let selfish = cap.apply(&t, &buy(2, "2020-01-01", "t", "5", None)).expect("breach");
        assert!(selfish.message.contains("itself"));
    }

    #[test]
    fn the_running_total_is_the_sum_of_positive_holdings() {
        let t = id("t");
        let mut cap = CapTable::default();
        let steps = [
            ("a", "30", None),
            ("b", "20", None),
            ("c", "25", Some("a")),
            ("a", "40", Some("b")), // b oversells: b goes negative, a gains
            ("b", "10", Some("c")),
            ("d", "5", Some("a")),
        ];
        for (seq, (to, pct, from)) in steps.into_iter().enumerate() {
            cap.apply(&t, &buy(seq as u64 + 1, "2020-01-01", to, pct, from));
            let sum: i64 = cap.holders.values().map(|h| h.millionths.max(0)).sum();
            assert_eq!(cap.held(), sum, "after step {seq}");
        }
    }

    #[test]
    fn partnerships_distinguish_formed_and_continued() {
        let a = id("a");
        let p = [id("a"), id("b")];
        let mut ps = Partnerships::default();
        let cont = rec(1, "2020-01-01", Event::PartnershipContinued { partners: p.clone(), scope: None });
        assert_eq!(ps.apply(&a, &cont), None);
        assert_eq!(ps.by_partner[&(id("b"), None)].since, None);
        let form = rec(2, "2020-02-01", Event::PartnershipFormed { partners: p.clone(), scope: None });
        assert!(ps.apply(&a, &form).is_some());
        let end = rec(3, "2020-03-01", Event::PartnershipEnded { partners: p.clone(), scope: None, reason: None });
        assert_eq!(ps.apply(&a, &end), None);
        assert!(ps.apply(&a, &end).is_some());
    }

    #[test]
    fn roles_end_and_move() {
        let mut roles = Roles::default();
        let appoint = |seq, role: &str, interim| {
            rec(
                seq,
                "2020-01-01",
                Event::ExecutiveAppointed { person: id("p"), company: id("c"), role: role.into(), interim },
            )
        };
        roles.apply(&appoint(1, "CEO", false));
        roles.apply(&appoint(2, "CEO", true));
        let key = (id("p"), id("c"), "CEO".to_owned());
        assert_eq!(roles.current[&key], HeldRole { interim: true, since: Date::parse("2020-01-01").expect("date") });
        let moved = rec(
            3,
            "2021-01-01",
            Event::ExecutiveMoved {
                person: id("p"),
                from: RoleEnd { company: id("c"), role: None },
                to: crate::event::RoleStart { company: id("d"), role: "CTO".into(), interim: false },
            },
        );
        assert_eq!(roles.apply(&moved), None);
        assert_eq!(roles.past.len(), 1);
        assert!(roles.apply(&moved).is_some(), "nothing left at c to move from");
    }
}
