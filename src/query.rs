//! The as-of queries: folds of the few timelines an answer needs, never a
//! replay of the whole log.
//!
//! A [`Query`] fixes one point of valid time (`as_of`) and one of transaction
//! time (the view's seq bound), and memoizes the cap tables it folds, so a
//! look-through over many companies folds each company once. This module
//! must never write, and never read events outside the timelines it names.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use crate::answer::*;
use crate::error::{Error, Result};
use crate::event::{Kind, Part};
use crate::projection::{name_set_by, CapTable, Partnerships, Roles};
use crate::store::Ns;
use crate::timeline::{Fact, Registration, Topics, View};
use crate::value::{Date, EntityId, WHOLE};

/// One as-of query context over a view.
pub struct Query<'a> {
    view: &'a View<'a>,
    as_of: Date,
    caps: RefCell<HashMap<EntityId, Rc<CapTable>>>,
    direct: RefCell<HashMap<EntityId, Rc<DirectHoldings>>>,
}

/// Direct holdings of one holder: (company, millionths > 0).
type DirectHoldings = Vec<(EntityId, u64, Date)>;

/// The most chain steps a look-through may walk before it is refused.
pub const LOOK_THROUGH_LIMIT: usize = 2_000_000;

/// Look-through values are fixed-point fractions of a whole with 30 decimals.
const ONE: u128 = 1_000_000_000_000_000_000_000_000_000_000;
const PER_MILLIONTH: u128 = ONE / WHOLE as u128;

impl<'a> Query<'a> {
    /// A query context as of `as_of` over `view`.
    pub fn new(view: &'a View<'a>, as_of: Date) -> Self {
        Self { view, as_of, caps: RefCell::default(), direct: RefCell::default() }
    }

    fn known_at_seq(&self) -> u64 {
        self.view.upto()
    }

    /// Resolves an id that must exist on `as_of`, of the expected kind (any when `None`).
    fn entity(&self, id: &str, expected: Option<Kind>) -> Result<(EntityId, Registration)> {
        let expected_name = expected.map_or("company or person", Kind::name);
        let unknown = || Error::UnknownEntity { id: id.to_owned(), expected: expected_name };
        let slug = EntityId::parse(id).map_err(|_| unknown())?;
        // From the entity's own timeline: every answer folds it next, and the
        // view keeps what it read.
        let reg = self.view.registration_in(Ns::Entity, &slug)?.ok_or_else(unknown)?;
        if let Some(kind) = expected.filter(|k| *k != reg.kind) {
            return Err(Error::WrongKind { id: id.to_owned(), expected: kind.name(), found: reg.kind.name() });
        }
        if reg.effective > self.as_of {
            return Err(Error::NotYetExisting { id: id.to_owned(), as_of: self.as_of, since: reg.effective });
        }
        Ok((slug, reg))
    }

    /// The facts of an entity's timeline effective on or before `as_of`
    /// that have one of `topics`.
    fn events_until(&self, slug: &EntityId, topics: Topics) -> Result<Vec<std::sync::Arc<Fact>>> {
        self.view.facts_of(Ns::Entity, slug, Some(self.as_of), topics)
    }

    /// The cap table of a company as of the date (memoized).
    fn cap_table(&self, company: &EntityId) -> Result<Rc<CapTable>> {
        if let Some(cap) = self.caps.borrow().get(company) {
            return Ok(Rc::clone(cap));
        }
        let mut cap = CapTable::default();
        for fact in self.events_until(company, Topics::STAKE)? {
            let _ = cap.apply(company, &fact);
        }
        let cap = Rc::new(cap);
        self.caps.borrow_mut().insert(company.clone(), Rc::clone(&cap));
        Ok(cap)
    }

    /// `ownership COMPANY`.
    ///
    /// # Errors
    /// Unknown id, not a company, not existing yet, or a storage failure.
    pub fn ownership(&self, id: &str) -> Result<Ownership> {
        let (company, reg) = self.entity(id, Some(Kind::Company))?;
        let names = self.events_until(&company, Topics::NAME)?;
        let name = names.iter().rev().find_map(|r| name_set_by(r)).map_or(reg.name, str::to_owned);
        let cap = self.cap_table(&company)?;
        let mut holders: Vec<HolderRow> = cap
            .holders
            .iter()
            .filter(|(_, h)| h.millionths > 0)
            .map(|(holder, h)| HolderRow {
                holder: holder.clone(),
                stake_pct: Pct(h.millionths as u64),
                since: h.since,
            })
            .collect();
        holders.sort_by(|a, b| b.stake_pct.cmp(&a.stake_pct).then_with(|| a.holder.cmp(&b.holder)));
        let mut pending_deals: Vec<PendingRow> = cap
            .pending
            .iter()
            .map(|(deal, p)| PendingRow {
                deal: deal.clone(),
                acquirer: p.acquirer.clone(),
                stake_pct: Pct(p.millionths),
                announced: p.announced,
            })
            .collect();
        pending_deals.sort_by(|a, b| a.announced.cmp(&b.announced).then_with(|| a.deal.cmp(&b.deal)));
        let controlled_by = cap.controller().cloned();
        let ultimate_controller = match &controlled_by {
            Some(first) => Some(self.ultimate(&company, first)?),
            None => None,
        };
        Ok(Ownership {
            company,
            name,
            as_of: self.as_of,
            known_at_seq: self.known_at_seq(),
            holders,
            unattributed_pct: Pct(cap.unattributed()),
            controlled_by,
            ultimate_controller,
            pending_deals,
        })
    }

    /// Follows controllers upward from `first` (which controls `company`) to the
    /// top; on a cycle, stops at the last holder before an id would repeat.
    fn ultimate(&self, company: &EntityId, first: &EntityId) -> Result<EntityId> {
        let mut chain = HashSet::from([company.clone()]);
        let mut current = first.clone();
        loop {
            let next = self.cap_table(&current)?.controller().cloned();
            match next {
                Some(next) if !chain.contains(&next) && next != current => {
                    chain.insert(std::mem::replace(&mut current, next));
                }
                _ => return Ok(current),
            }
        }
    }

    /// What `holder` holds directly on the date: (company, millionths > 0,
    /// since), memoized. Folded from the holder's own timeline alone: every
    /// fact that moves its stake in a company names it as a holder, so the
    /// cap-table fold of just those facts gives its position (and `since`)
    /// exactly, without folding each company's whole timeline.
    fn direct_of(&self, holder: &EntityId) -> Result<Rc<DirectHoldings>> {
        if let Some(found) = self.direct.borrow().get(holder) {
            return Ok(Rc::clone(found));
        }
        let mut positions: Vec<(EntityId, CapTable)> = Vec::new();
        for fact in self.events_until(holder, Topics::HELD)? {
            let parties = fact.parties();
            if !parties.iter().any(|(id, part)| *id == holder && *part == Part::Holder) {
                continue;
            }
            for (company, part) in parties {
                if part != Part::Target {
                    continue;
                }
                let at = match positions.iter().position(|(c, _)| c == company) {
                    Some(at) => at,
                    None => {
                        positions.push((company.clone(), CapTable::default()));
                        positions.len() - 1
                    }
                };
                let _ = positions[at].1.apply(company, &fact);
            }
        }
        let out: DirectHoldings = positions
            .into_iter()
            .filter_map(|(company, partial)| {
                let held = partial.holders.get(holder).filter(|h| h.millionths > 0)?;
                Some((company, held.millionths as u64, held.since))
            })
            .collect();
        let out = Rc::new(out);
        self.direct.borrow_mut().insert(holder.clone(), Rc::clone(&out));
        Ok(out)
    }

    /// `holdings HOLDER`.
    ///
    /// # Errors
    /// Unknown id, not existing yet, a look-through over [`LOOK_THROUGH_LIMIT`]
    /// chain steps, or a storage failure.
    pub fn holdings(&self, id: &str) -> Result<Holdings> {
        let (holder, _) = self.entity(id, None)?;
        let mut direct = Vec::new();
        for (company, millionths, since) in self.direct_of(&holder)?.iter() {
            direct.push(DirectRow { company: company.clone(), stake_pct: Pct(*millionths), since: *since });
        }
        direct.sort_by(|a, b| b.stake_pct.cmp(&a.stake_pct).then_with(|| a.company.cmp(&b.company)));
        let mut look_through: Vec<LookThroughRow> = self
            .look_through(&holder)?
            .into_iter()
            .map(|(company, sum)| LookThroughRow { company, effective_pct: Pct(round_to_millionths(sum)) })
            .collect();
        look_through.sort_by(|a, b| b.effective_pct.cmp(&a.effective_pct).then_with(|| a.company.cmp(&b.company)));
        Ok(Holdings { holder, as_of: self.as_of, known_at_seq: self.known_at_seq(), direct, look_through })
    }

    /// Sums, over every chain from `holder` (no entity twice, `holder` included),
    /// the product of the stakes, as fixed-point fractions of [`ONE`].
    fn look_through(&self, holder: &EntityId) -> Result<BTreeMap<EntityId, u128>> {
        // An explicit stack, not recursion: a chain of ten thousand holdings
        // must not overflow the thread's stack.
        let mut sums = BTreeMap::new();
        let mut on_path: HashSet<EntityId> = HashSet::from([holder.clone()]);
        let mut path: Vec<EntityId> = Vec::new();
        let mut stack: Vec<(Rc<DirectHoldings>, usize, u128)> = vec![(self.direct_of(holder)?, 0, ONE)];
        let mut steps = 0usize;
        while let Some(top) = stack.last_mut() {
            let Some((company, millionths, _)) = top.0.get(top.1).cloned() else {
                stack.pop();
                if let Some(done) = path.pop() {
                    on_path.remove(&done);
                }
                continue;
            };
            top.1 += 1;
            let value = top.2;
            if on_path.contains(&company) {
                continue;
            }
            steps += 1;
            if steps > LOOK_THROUGH_LIMIT {
                return Err(Error::LimitExceeded(format!(
                    "look-through of {holder} walks more than {LOOK_THROUGH_LIMIT} chains of holdings"
                )));
            }
            let v = value / WHOLE as u128 * u128::from(millionths)
                + value % WHOLE as u128 * u128::from(millionths) / WHOLE as u128;
            let sum = sums.entry(company.clone()).or_insert(0u128);
            *sum = sum.saturating_add(v);
            let below = self.direct_of(&company)?;
            on_path.insert(company.clone());
            path.push(company);
            stack.push((below, 0, v));
        }
        Ok(sums)
    }

    /// `partnerships COMPANY`.
    ///
    /// # Errors
    /// Unknown id, not a company, not existing yet, or a storage failure.
    pub fn partnerships(&self, id: &str) -> Result<PartnershipsAnswer> {
        let (company, _) = self.entity(id, Some(Kind::Company))?;
        let mut state = Partnerships::default();
        for rec in self.events_until(&company, Topics::PARTNER)? {
            let _ = state.apply(&company, &rec);
        }
        let partnerships = state
            .by_partner
            .into_iter()
            .filter(|(_, s)| s.active)
            .map(|((partner, scope), s)| PartnerRow { partner, scope, since: s.since, last_affirmed: s.last_affirmed })
            .collect();
        Ok(PartnershipsAnswer { company, as_of: self.as_of, known_at_seq: self.known_at_seq(), partnerships })
    }

    /// Folds the role events of an entity's timeline up to the date.
    fn roles_of(&self, slug: &EntityId) -> Result<Roles> {
        let mut roles = Roles::default();
        for rec in self.events_until(slug, Topics::ROLE)? {
            let _ = roles.fold(&rec);
        }
        Ok(roles)
    }

    /// `executives COMPANY`.
    ///
    /// # Errors
    /// Unknown id, not a company, not existing yet, or a storage failure.
    pub fn executives(&self, id: &str) -> Result<Executives> {
        let (company, _) = self.entity(id, Some(Kind::Company))?;
        let mut executives = Vec::new();
        for ((person, at, role), held) in self.roles_of(&company)?.current {
            if at != company {
                continue;
            }
            let name = self.view.registration(&person)?.map(|r| r.name).unwrap_or_default();
            executives.push(ExecutiveRow { person, name, role, interim: held.interim, since: held.since });
        }
        executives.sort_by(|a, b| a.role.cmp(&b.role).then_with(|| a.person.cmp(&b.person)));
        Ok(Executives { company, as_of: self.as_of, known_at_seq: self.known_at_seq(), executives })
    }

    /// `career PERSON`.
    ///
    /// # Errors
    /// Unknown id, not a person, not existing yet, or a storage failure.
    pub fn career(&self, id: &str) -> Result<Career> {
        let (person, reg) = self.entity(id, Some(Kind::Person))?;
        let roles = self.roles_of(&person)?;
        let mut current: Vec<CurrentRole> = roles
            .current
            .into_iter()
            .filter(|((p, _, _), _)| *p == person)
            .map(|((_, company, role), held)| CurrentRole { company, role, interim: held.interim, since: held.since })
            .collect();
        current.sort_by(|a, b| (a.since, &a.company, &a.role).cmp(&(b.since, &b.company, &b.role)));
        let mut past: Vec<PastRoleRow> = roles
            .past
            .into_iter()
            .filter(|p| p.person == person)
            .map(|p| PastRoleRow { company: p.company, role: p.role, from: p.from, to: p.to })
            .collect();
        past.sort_by(|a, b| (a.to, &a.company, &a.role, a.from).cmp(&(b.to, &b.company, &b.role, b.from)));
        Ok(Career { person, name: reg.name, as_of: self.as_of, known_at_seq: self.known_at_seq(), current, past })
    }

    /// The state of an entity as of the date: ownership for a company, career for a person.
    ///
    /// # Errors
    /// As [`Query::ownership`] / [`Query::career`].
    pub fn state(&self, id: &str, kind: Kind) -> Result<State> {
        Ok(match kind {
            Kind::Company => State::Ownership(self.ownership(id)?),
            Kind::Person => State::Career(self.career(id)?),
        })
    }
}

/// Rounds a fixed-point fraction of [`ONE`] half up to millionths (4 decimals of percent).
fn round_to_millionths(value: u128) -> u64 {
    let (q, r) = (value / PER_MILLIONTH, value % PER_MILLIONTH);
    let rounded = if r * 2 >= PER_MILLIONTH { q + 1 } else { q };
    u64::try_from(rounded).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_up() {
        assert_eq!(round_to_millionths(ONE), 1_000_000);
        assert_eq!(round_to_millionths(PER_MILLIONTH / 2), 1);
        assert_eq!(round_to_millionths(PER_MILLIONTH / 2 - 1), 0);
        // 50% of 33.3333% = 16.66665% -> 16.6667%
        let v = ONE / 2 / WHOLE as u128 * 333_333;
        assert_eq!(round_to_millionths(v), 166_667);
    }
}
