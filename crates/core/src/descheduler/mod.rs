//! The descheduler's decisions (design.md section 6): what to do about bindings in
//! Violation, as a pure function of what was observed.
//!
//! For each binding that has been in Violation **continuously** for at least its offer's
//! `grace` (`status.violatingSince` set; a binding in Error or Pending never has it, so
//! they are never acted on), by the offer's `violationPolicy`:
//!
//! - **Ignore**: one [`Action::Ignore`] per violation episode (an episode is identified by
//!   its `violatingSince`), never more.
//! - **Mediate**: [`Action::Mitigate`] when a network controller exists and the last
//!   mitigation (the binding's `lastMitigatedTimestamp`, or this process's own more recent
//!   attempt) is at least `mitigation_period` old. Never evicts. Without a controller:
//!   [`SkipReason::NoController`], once per episode.
//! - **Evict**: with a network controller, mitigate first (once per episode, subject to the
//!   mitigation period); once `mitigationGrace` has passed since that mitigation and the
//!   binding is still in Violation, evict. Without a controller, evict once the grace has
//!   passed.
//!
//! Eviction chooses **which pod**: each Pod target of the binding that can move (it runs,
//! is not being deleted, is not owned by a DaemonSet or a node, has not just been evicted,
//! and is at least `min_pod_age` old) is put to the `predict` callback (the runtime asks
//! the planner where its replacement would go with every other pod where it is). The
//! candidates whose re-placement restores compliance are kept and ordered: pods with a
//! controller owner first (a bare pod does not come back once evicted), then fewest rules
//! in Limit, then least cost, then name. None: [`SkipReason::NoCandidate`] with the
//! planner's reasons; a pod is never picked at random.
//!
//! Limits are per cycle: at most `per_cycle` evictions in all, `per_namespace` per
//! namespace and `per_offer` per offer; bindings are considered oldest violation first, so
//! the longest-suffering binding gets the slot. In dry-run nothing is mitigated or evicted:
//! the would-be actions come out as [`SkipReason::DryRunMitigation`] and
//! [`SkipReason::DryRun`], counted against the limits as if they happened.
//!
//! A pod that must move and is a VM's virt-launcher pod is never evicted: the decision is
//! [`Action::Migrate`], a live migration to the planner's node (see [`migration`]: one in
//! flight per VMI, a failed one reported and retried after a backoff).
//!
//! Skips are reported once per binding, violation episode and kind ([`Memory::reported`]),
//! so a binding held back by a limit for an hour gets one Event, not 360.

mod action;
mod capacity;
mod decide;
mod facts;
mod memory;
mod migration;
mod replacement;

#[cfg(test)]
mod tests;

pub use action::{Action, BackingOff, Candidate, Predicted, Prediction, SkipReason};
pub use capacity::{
    Arrival, CLOCK_SKEW, Capacity, Claim, Demand, Holder, Ledger, NoFit, NodeRoom,
    REPLACEMENT_TIMEOUT, Replacement, Reservation, WaitingPod, claims,
};
pub use decide::{Input, Questions, decide};
pub use facts::{BindingFacts, BindingKey, Limits, OfferFacts, Owner, PodFacts};
pub use memory::{IGNORED, Memory};
pub use migration::{
    KUBEVIRT_LABEL, MAX_MIGRATION_BACKOFF, MIGRATION_BACKOFF, MIGRATION_BINDING_LABEL,
    MIGRATION_JOB_LABEL, MigrationFacts, MigrationPhase, MigrationState, VIRT_LAUNCHER,
    VM_NAME_LABEL, backoff, migration_state,
};
pub use replacement::{ReplacementQuestion, predict_replacement, unpinned};
