//! When to plan: the quiet timer and the maximum wait, as a state machine over arrival
//! times (design.md section 5). Pure: the caller says what happened and when, and asks
//! whether a plan is due and when to look again.
//!
//! - A pod *arrives* when it starts waiting for the planner (gated in gate mode, pending for
//!   the `edgeplane` scheduler in bind mode). A plan is due once no pod arrived for
//!   `quiet_period`, or once the oldest waiting pod has waited `max_wait`, so a steady
//!   stream of arrivals cannot starve the queue.
//! - A plan run takes every waiting pod ([`Queue::start_run`]); the pods it could not place
//!   are *parked* ([`Queue::finish_run`]) and do not make plans due by themselves: updates
//!   to them (the planner's own annotation) are not arrivals. [`Queue::replan`] (nodes,
//!   topology, policies or offers changed, capacity was freed, leadership was acquired)
//!   puts them back as if they had just arrived, so a burst of changes costs one plan.
//! - Pods whose write failed come back with [`Queue::retry`] after a backoff, which holds
//!   the whole queue: a struggling API server gets one plan at a time.
//!
//! Generic over the instant type so that tests use `std::time::Instant` and the scheduler
//! uses tokio's (virtual time).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Add;
use std::time::Duration;

use crate::planner::PodKey;

/// The quiet timer and the maximum wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Triggers {
    /// Plan when no pod arrived for this long.
    pub quiet_period: Duration,
    /// Plan when the oldest waiting pod has waited this long.
    pub max_wait: Duration,
}

impl Default for Triggers {
    /// 2 s quiet period, 30 s maximum wait (design.md section 5).
    fn default() -> Self {
        Triggers {
            quiet_period: Duration::from_secs(2),
            max_wait: Duration::from_secs(30),
        }
    }
}

/// Why a plan is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// No pod arrived for the quiet period.
    Quiet,
    /// The oldest waiting pod waited the maximum wait.
    MaxWait,
}

impl Due {
    pub fn as_str(self) -> &'static str {
        match self {
            Due::Quiet => "quiet period",
            Due::MaxWait => "max wait",
        }
    }
}

/// The waiting pods and their arrival times.
#[derive(Clone, Debug)]
pub struct Queue<I> {
    triggers: Triggers,
    /// Pods waiting for the next plan, with the instant each arrived.
    waiting: BTreeMap<PodKey, I>,
    /// Pods the last plan could not place.
    parked: BTreeSet<PodKey>,
    /// The latest arrival among the waiting pods.
    last_arrival: Option<I>,
    /// No plan before this instant (backoff after failed writes).
    hold_until: Option<I>,
}

impl<I> Queue<I>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    pub fn new(triggers: Triggers) -> Queue<I> {
        Queue {
            triggers,
            waiting: BTreeMap::new(),
            parked: BTreeSet::new(),
            last_arrival: None,
            hold_until: None,
        }
    }

    pub fn triggers(&self) -> Triggers {
        self.triggers
    }

    /// A pod started waiting. A pod already waiting or parked is not a new arrival.
    /// Returns whether it was one.
    pub fn arrive(&mut self, pod: PodKey, now: I) -> bool {
        if self.waiting.contains_key(&pod) || self.parked.contains(&pod) {
            return false;
        }
        self.waiting.insert(pod, now);
        self.last_arrival = Some(self.last_arrival.map_or(now, |t| t.max(now)));
        true
    }

    /// A pod stopped waiting (placed by someone else, deleted, no longer gated).
    pub fn depart(&mut self, pod: &PodKey) {
        self.waiting.remove(pod);
        self.parked.remove(pod);
        if self.waiting.is_empty() {
            self.last_arrival = None;
        }
    }

    /// Something changed that may let parked pods fit: they wait again, as new arrivals.
    /// Returns how many came back.
    pub fn replan(&mut self, now: I) -> usize {
        let parked = std::mem::take(&mut self.parked);
        let n = parked.len();
        for pod in parked {
            self.waiting.insert(pod, now);
        }
        if n > 0 {
            self.last_arrival = Some(self.last_arrival.map_or(now, |t| t.max(now)));
        }
        n
    }

    /// Whether a plan is due at `now`, and why.
    pub fn due(&self, now: I) -> Option<Due> {
        if self.waiting.is_empty() || self.hold_until.is_some_and(|h| now < h) {
            return None;
        }
        if self
            .oldest()
            .is_some_and(|t| now >= t + self.triggers.max_wait)
        {
            return Some(Due::MaxWait);
        }
        if self
            .last_arrival
            .is_some_and(|t| now >= t + self.triggers.quiet_period)
        {
            return Some(Due::Quiet);
        }
        None
    }

    /// When a plan becomes due if nothing else happens; `None` when nothing waits.
    pub fn next_deadline(&self) -> Option<I> {
        let quiet = self.last_arrival? + self.triggers.quiet_period;
        let max_wait = self.oldest()? + self.triggers.max_wait;
        let due = quiet.min(max_wait);
        Some(self.hold_until.map_or(due, |h| due.max(h)))
    }

    /// Takes the waiting pods for a plan run. Parked pods stay parked (the run plans them
    /// too, since it plans every pod that waits for the planner, but they do not make runs
    /// due).
    pub fn start_run(&mut self) -> Vec<PodKey> {
        self.last_arrival = None;
        std::mem::take(&mut self.waiting).into_keys().collect()
    }

    /// Records the outcome of a run: `unplaced` pods are parked; placed pods are done.
    pub fn finish_run(&mut self, unplaced: impl IntoIterator<Item = PodKey>) {
        for pod in unplaced {
            if !self.waiting.contains_key(&pod) {
                self.parked.insert(pod);
            }
        }
    }

    /// Pods whose write failed wait again; no plan before `not_before`.
    pub fn retry(&mut self, pods: impl IntoIterator<Item = PodKey>, now: I, not_before: I) {
        let mut any = false;
        for pod in pods {
            self.parked.remove(&pod);
            self.waiting.entry(pod).or_insert(now);
            any = true;
        }
        if any {
            self.last_arrival = Some(self.last_arrival.map_or(now, |t| t.max(now)));
            self.hold_until = Some(self.hold_until.map_or(not_before, |h| h.max(not_before)));
        }
    }

    /// Keeps only the pods (waiting or parked) for which `keep` holds.
    pub fn retain(&mut self, keep: impl Fn(&PodKey) -> bool) {
        self.waiting.retain(|k, _| keep(k));
        self.parked.retain(|k| keep(k));
        if self.waiting.is_empty() {
            self.last_arrival = None;
        }
    }

    /// Clears a backoff hold (after a run that wrote everything).
    pub fn release_hold(&mut self) {
        self.hold_until = None;
    }

    /// Pods waiting for the next plan.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Pods the last plan could not place.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    pub fn is_parked(&self, pod: &PodKey) -> bool {
        self.parked.contains(pod)
    }

    pub fn is_waiting(&self, pod: &PodKey) -> bool {
        self.waiting.contains_key(pod)
    }

    fn oldest(&self) -> Option<I> {
        self.waiting.values().copied().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds since an origin, as a stand-in instant.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct T(Duration);

    impl Add<Duration> for T {
        type Output = T;
        fn add(self, d: Duration) -> T {
            T(self.0 + d)
        }
    }

    fn t(secs: f64) -> T {
        T(Duration::from_secs_f64(secs))
    }

    fn pod(name: &str) -> PodKey {
        PodKey::new("ar", name)
    }

    fn queue() -> Queue<T> {
        Queue::new(Triggers {
            quiet_period: Duration::from_secs(2),
            max_wait: Duration::from_secs(10),
        })
    }

    #[test]
    fn plans_after_the_quiet_period() {
        let mut q = queue();
        assert_eq!(q.due(t(0.0)), None);
        assert_eq!(q.next_deadline(), None);
        assert!(q.arrive(pod("a"), t(0.0)));
        assert!(q.arrive(pod("b"), t(1.0)));
        assert!(!q.arrive(pod("a"), t(1.5)), "an update is not an arrival");
        assert_eq!(q.due(t(2.9)), None);
        assert_eq!(q.next_deadline(), Some(t(3.0)));
        assert_eq!(q.due(t(3.0)), Some(Due::Quiet));
        assert_eq!(q.start_run(), vec![pod("a"), pod("b")]);
        assert_eq!(q.due(t(10.0)), None);
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn continuous_arrivals_are_planned_at_the_max_wait() {
        let mut q = queue();
        for i in 0..20 {
            q.arrive(pod(&format!("p{i}")), t(i as f64));
            if i < 10 {
                assert_eq!(q.due(t(i as f64)), None, "at {i}s");
            }
        }
        // The first pod arrived at 0s: due at 10s though arrivals never paused.
        assert_eq!(q.due(t(10.0)), Some(Due::MaxWait));
        assert_eq!(q.start_run().len(), 20);
        assert_eq!(q.due(t(20.0)), None);
    }

    #[test]
    fn deadline_is_the_earlier_trigger() {
        let mut q = queue();
        q.arrive(pod("a"), t(0.0));
        q.arrive(pod("b"), t(9.0));
        // Quiet at 11s, max wait at 10s.
        assert_eq!(q.next_deadline(), Some(t(10.0)));
        q.depart(&pod("a"));
        assert_eq!(q.next_deadline(), Some(t(11.0)));
        q.depart(&pod("b"));
        assert_eq!(q.next_deadline(), None);
        assert_eq!(q.due(t(100.0)), None);
    }

    #[test]
    fn parked_pods_wait_for_a_replan() {
        let mut q = queue();
        q.arrive(pod("big"), t(0.0));
        q.arrive(pod("small"), t(0.0));
        assert_eq!(q.due(t(2.0)), Some(Due::Quiet));
        q.start_run();
        q.finish_run([pod("big")]);
        assert_eq!(q.parked(), 1);
        // Its annotation update is no arrival.
        assert!(!q.arrive(pod("big"), t(3.0)));
        assert_eq!(q.due(t(100.0)), None);
        // A node was added: it waits again, through the quiet period.
        assert_eq!(q.replan(t(50.0)), 1);
        assert_eq!(q.due(t(51.0)), None);
        assert_eq!(q.due(t(52.0)), Some(Due::Quiet));
        assert_eq!(q.start_run(), vec![pod("big")]);
        q.finish_run([]);
        assert_eq!(q.parked(), 0);
        assert_eq!(q.replan(t(60.0)), 0);
        assert_eq!(q.due(t(100.0)), None);
    }

    #[test]
    fn a_parked_pod_that_leaves_is_forgotten() {
        let mut q = queue();
        q.arrive(pod("a"), t(0.0));
        q.start_run();
        q.finish_run([pod("a")]);
        q.depart(&pod("a"));
        assert_eq!(q.replan(t(5.0)), 0);
        assert!(
            q.arrive(pod("a"), t(6.0)),
            "a new pod with the same name arrives"
        );
    }

    #[test]
    fn failed_writes_retry_after_the_backoff() {
        let mut q = queue();
        q.arrive(pod("a"), t(0.0));
        q.start_run();
        q.retry([pod("a")], t(2.0), t(6.0));
        // Quiet at 4s, but held until 6s.
        assert_eq!(q.due(t(4.0)), None);
        assert_eq!(q.next_deadline(), Some(t(6.0)));
        assert_eq!(q.due(t(6.0)), Some(Due::Quiet));
        q.start_run();
        q.release_hold();
        q.arrive(pod("b"), t(7.0));
        assert_eq!(q.due(t(9.0)), Some(Due::Quiet));
    }
}
