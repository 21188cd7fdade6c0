//! The hub planner: where the components of MEC applications run across member clusters
//! (docs/multicluster.md).
//!
//! A member cluster is a placement target with a capacity vector (allocatable minus
//! requested) at a site of the hub's NetworkTopology. The network between a cluster and a
//! user site, or between two clusters, is the topology's between their sites; within one
//! cluster it is the topology's `intraSite`. A component is a workload with replicas in
//! total, split across clusters within its spread (`minClusters`, `maxClusters`).
//! Constraints are ConstraintPolicies between components and sites, judged with the same
//! rules as inside a cluster (`rules::Rule` for path metrics, `evaluate::BuiltinRule` for
//! node rules, read from the cluster's labels).
//!
//! The objective is the group planner's, per application: most replicas placed, then
//! fewest rules in Limit, then least normalized cost, never a rule in Violation between
//! placed components. Applications are planned one after another in input order, each
//! against the capacity the earlier ones left (`place` has the search). A Prescriptive
//! application's placement is given: it is only judged.
//!
//! [`objects`] reads the input from MemberClusters, MecApplications, ConstraintPolicies
//! and the topology, with errors naming the object and the field.

use std::collections::BTreeMap;

use edgeplane_api::{Compliance, ConstraintPolicyRule};

use crate::evaluate::ClusterView;
use crate::placement::{Taint, Toleration};
use crate::planner::Resources;

pub mod closed_loop;
pub mod direct;
pub mod instances;
mod judge;
pub mod karmada;
pub mod member_offers;
pub mod members;
pub mod objects;
mod place;
pub mod render;
#[cfg(test)]
mod tests;

/// The hub's field manager: in what it applies to members, its own statuses, and what
/// it writes into Karmada's objects.
pub const FIELD_MANAGER: &str = "edgeplane-hub";

pub use objects::{HubObjects, InputError, build_input};

/// A member cluster as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    pub name: String,
    /// Its site in the hub's NetworkTopology.
    pub site: String,
    /// Its labels, which node rules (`node-label`, `node-feature`) read.
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// Only Ready clusters receive components.
    pub ready: bool,
    /// Allocatable minus requested.
    pub free: Resources,
}

/// A workload of an application, with its replicas in total.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    pub name: String,
    pub replicas: u32,
    /// What one replica requests.
    pub requests: Resources,
    /// The pod template's tolerations, against the clusters' taints.
    pub tolerations: Vec<Toleration>,
    /// At least this many clusters (1 or more).
    pub min_clusters: u32,
    /// At most this many clusters.
    pub max_clusters: u32,
}

/// What a constraint binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every replica of the component, wherever it runs.
    Component(String),
    /// The users at a site of the topology.
    Site(String),
}

/// A ConstraintPolicy's rules between targets: pairwise rules between every pair of
/// targets, node rules on every cluster of the component targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    pub policy: String,
    pub targets: Vec<Target>,
    pub rules: Vec<ConstraintPolicyRule>,
}

/// An application to place.
#[derive(Clone, Debug, PartialEq)]
pub struct Application {
    pub namespace: String,
    pub name: String,
    pub components: Vec<Component>,
    pub constraints: Vec<Constraint>,
    /// Prescriptive distribution: replicas of each component by cluster, only judged.
    pub prescribed: Option<BTreeMap<String, BTreeMap<String, u32>>>,
}

/// Everything the hub planner looks at. `view`'s graph has one node per cluster (named
/// like it, at its site; [`objects::view`] builds it).
#[derive(Clone, Debug)]
pub struct HubInput<'a> {
    pub view: &'a ClusterView,
    pub clusters: Vec<Cluster>,
    pub applications: Vec<Application>,
}

/// The replicas of each component on one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub cluster: String,
    pub components: BTreeMap<String, u32>,
}

/// Replicas no cluster took, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unplaced {
    pub replicas: u32,
    pub reason: String,
}

/// The predicted outcome of one rule of one constraint.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleVerdict {
    pub policy: String,
    pub rule: String,
    pub compliance: Compliance,
    /// The worst measured value, for path rules.
    pub value: Option<String>,
    pub cost: f64,
    pub reason: String,
}

/// How many rules are in each compliance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleCounts {
    pub compliant: usize,
    pub limit: usize,
    pub violation: usize,
    /// Rules of constraints with a component that has no replica placed.
    pub pending: usize,
    pub error: usize,
}

/// Where one application runs.
#[derive(Clone, Debug, PartialEq)]
pub struct AppPlan {
    pub namespace: String,
    pub name: String,
    /// By cluster name; only clusters with a replica.
    pub placement: Vec<Share>,
    /// By component; only components with replicas left over.
    pub unplaced: BTreeMap<String, Unplaced>,
    pub rules: Vec<RuleVerdict>,
    /// What a check of a prescribed placement found (capacity exceeded, a cluster not
    /// Ready, a taint not tolerated).
    pub warnings: Vec<String>,
}

impl AppPlan {
    /// Replicas of `component` on `cluster`.
    pub fn replicas_on(&self, component: &str, cluster: &str) -> u32 {
        self.placement
            .iter()
            .find(|s| s.cluster == cluster)
            .and_then(|s| s.components.get(component))
            .copied()
            .unwrap_or(0)
    }

    /// Replicas of `component` on every cluster, by cluster.
    pub fn shares_of(&self, component: &str) -> Vec<(&str, u32)> {
        self.placement
            .iter()
            .filter_map(|s| {
                s.components
                    .get(component)
                    .map(|n| (s.cluster.as_str(), *n))
            })
            .collect()
    }

    pub fn rule_counts(&self) -> RuleCounts {
        let mut counts = RuleCounts::default();
        for rule in &self.rules {
            match rule.compliance {
                Compliance::Compliant => counts.compliant += 1,
                Compliance::Limit => counts.limit += 1,
                Compliance::Violation => counts.violation += 1,
                Compliance::Pending => counts.pending += 1,
                Compliance::Error => counts.error += 1,
            }
        }
        counts
    }

    /// The worst compliance of its rules (`Pending` with none).
    pub fn compliance(&self) -> Compliance {
        crate::rules::worst(self.rules.iter().map(|r| r.compliance))
    }

    /// Whether every component is fully placed and no rule is in Violation or Error.
    pub fn holds(&self) -> bool {
        self.unplaced.is_empty()
            && self
                .rules
                .iter()
                .all(|r| matches!(r.compliance, Compliance::Compliant | Compliance::Limit))
    }
}

/// The plan of every application, in input order.
#[derive(Clone, Debug, PartialEq)]
pub struct HubPlan {
    pub applications: Vec<AppPlan>,
}

/// How hard to search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubOptions {
    /// How many other first clusters of the most anchored component are tried besides
    /// the best one (a look-ahead: the best cluster for one component can leave its peers
    /// nowhere to go).
    pub alternatives: usize,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions { alternatives: 4 }
    }
}

/// Plans every application, in input order, each against the capacity the earlier ones
/// left.
pub fn plan(input: &HubInput<'_>, options: &HubOptions) -> HubPlan {
    let mut free: Vec<Resources> = input.clusters.iter().map(|c| c.free.clone()).collect();
    let context = place::Context::new(input);
    let applications = input
        .applications
        .iter()
        .map(|app| context.plan_application(app, &mut free, options))
        .collect();
    HubPlan { applications }
}

/// 64-bit FNV-1a: a digest that is the same in every process and release (the standard
/// library's hasher is not).
pub(crate) fn digest(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
