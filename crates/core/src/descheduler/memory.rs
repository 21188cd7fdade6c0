//! What the descheduler remembers between cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use edgeplane_api::Compliance;
use jiff::Timestamp;

use super::action::{Action, SkipReason};
use super::capacity::{Capacity, Claim, REPLACEMENT_TIMEOUT, Replacement, claims};
use super::facts::{BindingFacts, BindingKey, PodFacts};
use super::migration::{MigrationFacts, MigrationPhase};
use crate::planner::PodKey;

/// What the descheduler remembers between cycles (per process; a new leader starts empty
/// and relies on `lastMitigatedTimestamp`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Memory {
    /// This process's last mitigation attempt per binding (its status write may not be in
    /// the cache yet), dry-run ones included.
    pub mitigated: BTreeMap<BindingKey, Timestamp>,
    /// What was reported, per binding, violation episode (`violatingSince`) and kind
    /// (`ignored`, a [`SkipReason::kind`], `eviction-blocked`).
    pub reported: BTreeSet<(BindingKey, Timestamp, String)>,
    /// Pods this process evicted, until they are gone.
    pub evicted: BTreeMap<PodKey, Timestamp>,
    /// The replacements of the pods this process evicted (by evicted pod), until they are
    /// placed or [`REPLACEMENT_TIMEOUT`] has passed: their room is held meanwhile.
    pub replacements: BTreeMap<PodKey, Replacement>,
    /// The migration this process created last per VMI (`namespace/vmi` -> migration
    /// name, when), until it is seen finished: one in flight per VMI, even before the
    /// cache shows it.
    pub migrating: BTreeMap<PodKey, (String, Timestamp)>,
}

/// The report kind of [`Action::Ignore`].
pub const IGNORED: &str = "ignored";

impl Memory {
    /// Whether `kind` was reported for the binding's current episode.
    pub fn was_reported(&self, binding: &BindingKey, episode: Timestamp, kind: &str) -> bool {
        self.reported
            .contains(&(binding.clone(), episode, kind.to_string()))
    }

    pub fn report(&mut self, binding: &BindingKey, episode: Timestamp, kind: &str) {
        self.reported
            .insert((binding.clone(), episode, kind.to_string()));
    }

    /// Whether a binding can lead to an action or to a change of this memory: it is in
    /// Violation or still carries a violation episode, or this process remembers
    /// mitigating it. Facts of the other bindings (normally nearly all of them) change
    /// nothing a cycle decides, so they need not be read.
    /// `key` is asked for only when the answer depends on it (it allocates).
    pub fn concerns(
        &self,
        compliance: Compliance,
        violating_since: Option<Timestamp>,
        key: impl FnOnce() -> BindingKey,
    ) -> bool {
        compliance == Compliance::Violation
            || violating_since.is_some()
            || (!self.mitigated.is_empty() && self.mitigated.contains_key(&key()))
    }

    /// Forgets what no longer matters: reports of episodes that ended, mitigation attempts
    /// of bindings that are gone, evicted pods that are gone or terminating.
    pub fn prune(&mut self, bindings: &[BindingFacts], pods: &BTreeMap<PodKey, PodFacts>) {
        let episodes: BTreeMap<&BindingKey, Timestamp> = bindings
            .iter()
            .filter_map(|b| Some((&b.key, b.violating_since?)))
            .collect();
        self.reported
            .retain(|(b, episode, _)| episodes.get(b) == Some(episode));
        let known: BTreeSet<&BindingKey> = bindings.iter().map(|b| &b.key).collect();
        self.mitigated.retain(|b, _| known.contains(b));
        self.evicted
            .retain(|p, _| pods.get(p).is_some_and(|f| !f.terminating));
    }

    /// Forgets the replacements that have been placed (they hold room as pods now), as far
    /// as `capacity` (when the cycle read it) shows, and those waited for longer than
    /// [`REPLACEMENT_TIMEOUT`] (their workload no longer wants them).
    pub fn settle(&mut self, capacity: Option<&Capacity>, now: Timestamp) {
        self.replacements.retain(|_, r| {
            let waited = Duration::try_from(now.duration_since(r.evicted_at));
            waited.unwrap_or(Duration::ZERO) < REPLACEMENT_TIMEOUT
        });
        if let Some(capacity) = capacity {
            for (evicted, claim) in claims(&self.replacements, &capacity.arrivals) {
                if matches!(claim, Claim::Placed(_)) {
                    self.replacements.remove(&evicted);
                }
            }
        }
    }

    /// Forgets the migrations this process created that have finished (or are gone after
    /// [`REPLACEMENT_TIMEOUT`], deleted by someone), and returns the finished ones: each
    /// is reported once.
    pub fn finish_migrations(
        &mut self,
        migrations: &[MigrationFacts],
        now: Timestamp,
    ) -> Vec<MigrationFacts> {
        let mut finished = Vec::new();
        self.migrating.retain(|vmi, (name, created)| {
            let seen = migrations
                .iter()
                .find(|m| m.key.namespace == vmi.namespace && m.key.name == *name);
            match seen {
                Some(m) if m.phase != MigrationPhase::InFlight => {
                    finished.push(m.clone());
                    false
                }
                Some(_) => true,
                // Not in the cache yet, or deleted: the decisions count it in flight for
                // as long as a replacement is waited for.
                None => {
                    Duration::try_from(now.duration_since(*created)).unwrap_or(Duration::ZERO)
                        < REPLACEMENT_TIMEOUT
                }
            }
        });
        finished
    }

    /// Records what the actions of a cycle imply: Ignore and Skip reported for the episode,
    /// Mitigate (and its dry-run stand-in) attempted at `now`.
    pub fn record(&mut self, actions: &[Action], bindings: &[BindingFacts], now: Timestamp) {
        let episodes: BTreeMap<&BindingKey, Timestamp> = bindings
            .iter()
            .filter_map(|b| Some((&b.key, b.violating_since?)))
            .collect();
        for action in actions {
            let binding = action.binding();
            match action {
                Action::Ignore { .. } => {
                    if let Some(e) = episodes.get(binding) {
                        self.report(binding, *e, IGNORED);
                    }
                }
                Action::Mitigate { .. } => {
                    self.mitigated.insert(binding.clone(), now);
                }
                Action::Skip { reason, .. } => {
                    if let Some(e) = episodes.get(binding) {
                        self.report(binding, *e, &reason.report_key());
                    }
                    if *reason == SkipReason::DryRunMitigation {
                        self.mitigated.insert(binding.clone(), now);
                    }
                }
                // The runtime records what it made of them (the eviction that went
                // through, the migration created).
                Action::Evict { .. } | Action::Migrate { .. } => {}
            }
        }
    }
}
