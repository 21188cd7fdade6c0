//! The objective and the work budget.
//!
//! A plan is scored by [`Score`]: first no rule in Violation among bindings whose targets
//! are all placed (`violations`, 0 in every plan the planner returns) and no broken
//! required pod rule (`broken`: pod affinity and anti-affinity, DoNotSchedule spread, host
//! ports; 0 too), then most pods placed by priority (`unplaced`, weighted so that one pod
//! of a higher priority outweighs all pods of lower ones), then fewest rules in Limit, then
//! the least soft penalty (`soft`: weights of unmet preferred pod (anti-)affinity terms,
//! and 100 per pod of skew beyond a ScheduleAnyway constraint's maxSkew), then least total
//! normalized cost.

use std::cmp::Ordering;
use std::time::Instant;

use super::Stop;

/// Relative tolerance under which two costs are equal (sums of floats differ in the last
/// bits depending on the order of addition).
const COST_EPSILON: f64 = 1e-9;

/// The score of a plan; smaller is better, compared lexicographically.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Score {
    pub violations: u32,
    /// Required pod rules broken (see `podrules`).
    pub broken: i64,
    /// Unplaced pods, each weighted by its priority rank (1 when all share one priority).
    pub unplaced: u128,
    pub limit: u32,
    /// Unmet preferences between pods.
    pub soft: i64,
    pub cost: f64,
}

impl Score {
    /// Compares two scores; costs within a relative 1e-9 are equal.
    pub fn compare(&self, other: &Score) -> Ordering {
        (
            self.violations,
            self.broken,
            self.unplaced,
            self.limit,
            self.soft,
        )
            .cmp(&(
                other.violations,
                other.broken,
                other.unplaced,
                other.limit,
                other.soft,
            ))
            .then_with(|| {
                let scale = 1.0 + self.cost.abs().max(other.cost.abs());
                if (self.cost - other.cost).abs() <= COST_EPSILON * scale {
                    Ordering::Equal
                } else if self.cost < other.cost {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            })
    }

    /// Strictly better than `other`.
    pub fn better(&self, other: &Score) -> bool {
        self.compare(other) == Ordering::Less
    }

    /// Adds (`sign` 1) or removes (`sign` -1) one rule's value: `None` is Pending (nothing),
    /// infinity Violation, a positive cost Limit, 0 Compliant.
    pub(crate) fn account(&mut self, value: Option<f64>, sign: i32) {
        let Some(v) = value else { return };
        if v.is_infinite() {
            self.violations = self.violations.wrapping_add_signed(sign);
        } else {
            if v > 0.0 {
                self.limit = self.limit.wrapping_add_signed(sign);
            }
            self.cost += f64::from(sign) * v;
        }
    }
}

/// Work allowed: a number of steps (deterministic) and an optional deadline (checked every
/// few thousand steps).
#[derive(Clone, Debug)]
pub struct Budget {
    max: u64,
    used: u64,
    deadline: Option<Instant>,
    next_check: u64,
    out: bool,
    /// What ran out first, once something did.
    stop: Option<Stop>,
}

const CHECK_EVERY: u64 = 2048;

impl Budget {
    pub fn new(max: u64, deadline: Option<Instant>) -> Budget {
        Budget {
            max,
            used: 0,
            deadline,
            next_check: CHECK_EVERY,
            out: max == 0,
            stop: (max == 0).then_some(Stop::Iterations),
        }
    }

    /// Spends `steps`; false once the budget is exhausted.
    #[inline]
    pub fn spend(&mut self, steps: u64) -> bool {
        self.used = self.used.saturating_add(steps);
        if self.used >= self.max {
            self.run_out(Stop::Iterations);
        }
        if self.used >= self.next_check {
            self.next_check = self.used + CHECK_EVERY;
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                self.run_out(Stop::Deadline);
            }
        }
        !self.out
    }

    fn run_out(&mut self, why: Stop) {
        self.out = true;
        self.stop.get_or_insert(why);
    }

    pub fn exhausted(&self) -> bool {
        self.out
    }

    /// What ran out, if anything did.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    /// A budget of at most `steps` more steps within this one (same deadline).
    pub fn slice(&self, steps: u64) -> Budget {
        let mut b = Budget::new(steps.min(self.max.saturating_sub(self.used)), self.deadline);
        if self.out {
            b.out = true;
            b.stop = self.stop;
        }
        b
    }

    /// Charges the steps of a slice to this budget.
    pub fn absorb(&mut self, slice: &Budget) {
        self.spend(slice.used);
        if slice.out && slice.deadline.is_some_and(|d| Instant::now() >= d) {
            self.run_out(Stop::Deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(violations: u32, unplaced: u128, limit: u32, cost: f64) -> Score {
        Score {
            violations,
            unplaced,
            limit,
            cost,
            ..Score::default()
        }
    }

    #[test]
    fn lexicographic_order() {
        // No violation beats any placement; more pods placed beats fewer Limits; fewer
        // Limits beat lower cost.
        assert!(s(0, 5, 9, 9.0).better(&s(1, 0, 0, 0.0)));
        assert!(s(0, 0, 9, 9.0).better(&s(0, 1, 0, 0.0)));
        assert!(s(0, 0, 1, 5.0).better(&s(0, 0, 2, 0.1)));
        assert!(s(0, 0, 1, 0.5).better(&s(0, 0, 1, 0.6)));
        // A broken pod rule weighs like a Violation; preferences come after Limits.
        let broken = Score {
            broken: 1,
            ..s(0, 0, 0, 0.0)
        };
        assert!(s(0, 5, 9, 9.0).better(&broken));
        let soft = Score {
            soft: 50,
            ..s(0, 0, 1, 0.0)
        };
        assert!(soft.better(&s(0, 0, 2, 0.0)));
        assert!(s(0, 0, 1, 5.0).better(&soft));
        assert!(!s(0, 0, 1, 0.5).better(&s(0, 0, 1, 0.5 + 1e-13)));
        assert_eq!(
            s(0, 0, 1, 0.3).compare(&s(0, 0, 1, 0.1 + 0.2)),
            Ordering::Equal
        );
    }

    #[test]
    fn accounting() {
        let mut score = Score::default();
        score.account(Some(0.0), 1);
        score.account(Some(0.5), 1);
        score.account(Some(f64::INFINITY), 1);
        score.account(None, 1);
        assert_eq!(score, s(1, 0, 1, 0.5));
        score.account(Some(0.5), -1);
        score.account(Some(f64::INFINITY), -1);
        assert_eq!(score, s(0, 0, 0, 0.0));
    }

    #[test]
    fn budget_counts_steps() {
        let mut b = Budget::new(10, None);
        assert!(b.spend(9));
        assert!(!b.spend(1));
        assert!(b.exhausted());
        let mut outer = Budget::new(100, None);
        outer.spend(95);
        let mut slice = outer.slice(50);
        assert!(slice.spend(4));
        assert!(!slice.spend(1));
        outer.absorb(&slice);
        assert!(outer.exhausted());
        assert!(Budget::new(0, None).exhausted());
    }
}
