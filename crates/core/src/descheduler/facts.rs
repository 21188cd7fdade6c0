//! What the descheduler reads from offers, bindings and pods, and the limits it keeps.

use std::fmt;
use std::time::Duration;

use edgeplane_api::{Compliance, ViolationPolicy};
use jiff::Timestamp;

use super::capacity::Demand;
use crate::planner::PodKey;

/// `namespace/name` of a binding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingKey {
    pub namespace: String,
    pub name: String,
}

impl BindingKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> BindingKey {
        BindingKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for BindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// How many evictions one cycle may make, and how old a pod must be to be evicted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Evictions per cycle, in all.
    pub per_cycle: usize,
    /// Evictions per cycle in one namespace.
    pub per_namespace: usize,
    /// Evictions per cycle for the bindings of one offer.
    pub per_offer: usize,
    /// Pods younger than this are not evicted.
    pub min_pod_age: Duration,
}

impl Default for Limits {
    /// 5 per cycle, 2 per namespace, 1 per offer, pods at least 60s old.
    fn default() -> Self {
        Limits {
            per_cycle: 5,
            per_namespace: 2,
            per_offer: 1,
            min_pod_age: Duration::from_secs(60),
        }
    }
}

/// What the descheduler reads from an offer.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferFacts {
    pub policy: ViolationPolicy,
    pub grace: Duration,
    /// Defaults to the grace when the offer does not give it.
    pub mitigation_grace: Duration,
}

/// What the descheduler reads from a binding.
#[derive(Clone, Debug, PartialEq)]
pub struct BindingFacts {
    pub key: BindingKey,
    /// The offer's name (same namespace).
    pub offer: String,
    pub compliance: Compliance,
    pub violating_since: Option<Timestamp>,
    pub last_mitigated: Option<Timestamp>,
    /// The Pod targets, in role order. Sites are not movable.
    pub pods: Vec<PodKey>,
}

impl BindingFacts {
    /// `namespace/offer`.
    pub fn offer_key(&self) -> String {
        format!("{}/{}", self.key.namespace, self.offer)
    }
}

/// Who owns a pod, as far as moving it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A controller that recreates it (ReplicaSet, StatefulSet, ...): it comes back and is
    /// planned again.
    Controller(String),
    /// No controller: once evicted it is gone.
    Bare,
    /// Recreated on the same node (DaemonSet) or not evictable at all (a mirror pod):
    /// moving it cannot help.
    Unmovable(String),
}

/// What the descheduler reads from a pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodFacts {
    pub key: PodKey,
    pub created: Option<Timestamp>,
    pub owner: Owner,
    /// The uid of its controller owner (which creates its replacement), if any.
    pub controller: Option<String>,
    /// What its replacement will ask of a node (the scheduler's pin removed).
    pub demand: Demand,
    /// Bound to a node and not finished.
    pub running: bool,
    /// Has a deletionTimestamp.
    pub terminating: bool,
    /// The VMI it runs, when it is a virt-launcher pod (`kubevirt.io: virt-launcher`,
    /// `vm.kubevirt.io/name`): it is live-migrated, never evicted.
    pub vmi: Option<String>,
}
