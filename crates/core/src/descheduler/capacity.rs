//! Room for replacements: the capacity ledger that keeps one cycle's evictions (and those of
//! earlier cycles whose replacements have not been placed yet) from promising the same room
//! twice.
//!
//! The ledger starts from what the nodes offer minus what the pods holding capacity request
//! ([`Capacity`], observed), then holds room for:
//!
//! - every pod waiting at the planner's gate, on the node the scheduler's next plan gives it
//!   ([`WaitingPod::planned`]; a pod no node takes holds nothing);
//! - every replacement this process expects ([`Replacement`], remembered from its
//!   evictions) that has not shown up yet (see [`claims`]);
//! - every replacement of an eviction decided this cycle, on the node the planner expects
//!   it.
//!
//! The arithmetic and the rules are [`crate::placement`]'s (exact requests, taints,
//! cordons, `nodeSelector`, required affinity), the ones kube-scheduler applies.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use jiff::Timestamp;

use crate::placement::{
    self, NodeFacts, NodeSelectorTerm, PodRules, ResourceList, Taint, Toleration,
};
use crate::planner::PodKey;
use crate::quantity::format_amount;

/// How much earlier than the eviction a pod of the same controller may be created and still
/// count as its replacement: the API server's clock (creationTimestamp) and the
/// descheduler's may differ a little.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// How long a replacement is waited for before it is forgotten (its workload was scaled
/// down or deleted, so it never comes).
pub const REPLACEMENT_TIMEOUT: Duration = Duration::from_secs(600);

/// What a pod asks of a node: its requests ([`placement::effective_pod_requests`]) and the
/// rules that keep it off nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    pub requests: ResourceList,
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity (for a replacement: without the scheduler's pin).
    pub affinity: Vec<NodeSelectorTerm>,
    pub tolerations: Vec<Toleration>,
}

/// A node: what it offers and what the pods holding capacity on it (bound and not
/// finished or terminating, or pinned to it and waiting for kube-scheduler) request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeRoom {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// Cordoned.
    pub unschedulable: bool,
    pub allocatable: ResourceList,
    pub used: ResourceList,
}

/// A pod waiting at the planner's gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitingPod {
    pub key: PodKey,
    /// The uid of its controller (a ReplicaSet, a StatefulSet), if any.
    pub controller: Option<String>,
    pub created: Option<Timestamp>,
    pub requests: ResourceList,
    /// The node the scheduler's next plan would give it; `None`: no node takes it now.
    pub planned: Option<String>,
}

/// A pod of a controller this process expects a replacement from, created around or after
/// the eviction: waiting at the gate, or already holding capacity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub key: PodKey,
    pub controller: String,
    pub created: Timestamp,
    /// Still at the gate (else it holds capacity, counted in [`NodeRoom::used`]).
    pub waiting: bool,
}

/// The room the descheduler reads from the cluster (observed once per cycle, when a
/// binding reaches the eviction stage).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    pub nodes: Vec<NodeRoom>,
    pub waiting: Vec<WaitingPod>,
    /// The pods of the controllers of [`Replacement`]s this process waits for.
    pub arrivals: Vec<Arrival>,
}

/// A replacement this process expects after an eviction it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replacement {
    /// The uid of the evicted pod's controller, which creates the replacement.
    pub controller: String,
    /// Where the planner expected it.
    pub node: String,
    pub demand: Demand,
    pub evicted_at: Timestamp,
    /// When the evicted pod was created: its replacement is younger.
    pub evicted_created: Option<Timestamp>,
}

/// What became of an expected replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Not created yet: its room is held on the expected node.
    ToCome,
    /// Waiting at the gate as this pod (its room is held where the scheduler will put it).
    Waiting(PodKey),
    /// Placed as this pod (its room is in the node's use): nothing more to wait for.
    Placed(PodKey),
}

/// Which pod (if any) each expected replacement (by evicted pod) has become: the oldest
/// unclaimed pod of its controller created at or after its eviction (less [`CLOCK_SKEW`])
/// and after the evicted pod, the oldest evictions first. (A StatefulSet's replacement has
/// the evicted pod's name; the evicted pod, terminating, is no arrival.)
pub fn claims(
    expected: &BTreeMap<PodKey, Replacement>,
    arrivals: &[Arrival],
) -> BTreeMap<PodKey, Claim> {
    let mut order: Vec<(&PodKey, &Replacement)> = expected.iter().collect();
    order.sort_by(|a, b| (a.1.evicted_at, a.0).cmp(&(b.1.evicted_at, b.0)));
    let mut pods: Vec<&Arrival> = arrivals.iter().collect();
    pods.sort_by(|a, b| (a.created, &a.key).cmp(&(b.created, &b.key)));
    let mut taken: BTreeSet<&PodKey> = BTreeSet::new();
    let mut out = BTreeMap::new();
    for (evicted, replacement) in order {
        let since = replacement
            .evicted_at
            .checked_sub(CLOCK_SKEW)
            .unwrap_or(replacement.evicted_at);
        let claim = pods.iter().find(|a| {
            a.controller == replacement.controller
                && a.created >= since
                && replacement.evicted_created.is_none_or(|c| a.created > c)
                && !taken.contains(&a.key)
        });
        let claim = match claim {
            Some(a) => {
                taken.insert(&a.key);
                if a.waiting {
                    Claim::Waiting(a.key.clone())
                } else {
                    Claim::Placed(a.key.clone())
                }
            }
            None => Claim::ToCome,
        };
        out.insert(evicted.clone(), claim);
    }
    out
}

/// Whose room a reservation holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Holder {
    /// A pod waiting at the gate.
    Waiting(PodKey),
    /// The replacement of this evicted pod, not created yet.
    ToCome(PodKey),
    /// The replacement of this pod, evicted (or to be) this cycle.
    ThisCycle(PodKey),
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Waiting(p) => write!(f, "{p} (waiting at the gate)"),
            Holder::ToCome(p) => write!(f, "the replacement of {p} (evicted, not created yet)"),
            Holder::ThisCycle(p) => write!(f, "the replacement of {p} (evicted this cycle)"),
        }
    }
}

/// Room held on a node for a pod that is not there yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub node: String,
    pub requests: ResourceList,
    pub holder: Holder,
}

/// Why a replacement does not fit on a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoFit {
    /// The node is not in the cluster (any more).
    NoNode,
    /// A placement rule keeps it off, whatever the room.
    Rule(placement::Misfit),
    /// Not enough of `resource` is left.
    Room {
        resource: String,
        allocatable: i128,
        used: i128,
        reserved: i128,
        wanted: i128,
        holders: Vec<Holder>,
    },
}

/// Why a placement rule keeps a pod off a node.
fn rule(misfit: &placement::Misfit) -> String {
    match misfit {
        placement::Misfit::Unschedulable => "the node is cordoned".into(),
        placement::Misfit::NodeSelector => "its nodeSelector does not match the node".into(),
        placement::Misfit::Affinity => "its required node affinity does not match the node".into(),
        placement::Misfit::Taint(t) => format!("it does not tolerate the node's taint {t}"),
    }
}

impl fmt::Display for NoFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoFit::NoNode => f.write_str("the node does not exist"),
            NoFit::Rule(m) => f.write_str(&rule(m)),
            NoFit::Room {
                resource,
                allocatable,
                used,
                reserved,
                wanted,
                holders,
            } => {
                let a = |m| format_amount(resource, m);
                write!(
                    f,
                    "it needs {} {resource} and the node has {} allocatable, {} requested by the pods on it",
                    a(*wanted),
                    a(*allocatable),
                    a(*used)
                )?;
                if !holders.is_empty() {
                    let list: Vec<String> = holders.iter().map(Holder::to_string).collect();
                    write!(f, " and {} held for {}", a(*reserved), list.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

/// The capacity ledger of one cycle.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ledger {
    nodes: BTreeMap<String, NodeRoom>,
    reservations: Vec<Reservation>,
}

fn add(total: &mut ResourceList, requests: &ResourceList) {
    for (resource, amount) in requests {
        *total.entry(resource.clone()).or_default() += amount;
    }
}

impl Ledger {
    /// The room of `capacity`, with the waiting pods held where the scheduler will put
    /// them and the expected replacements that have not been created yet held where the
    /// planner expected them.
    pub fn new(capacity: &Capacity, expected: &BTreeMap<PodKey, Replacement>) -> Ledger {
        let mut ledger = Ledger {
            nodes: capacity
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.clone()))
                .collect(),
            reservations: Vec::new(),
        };
        for pod in &capacity.waiting {
            if let Some(node) = &pod.planned {
                ledger.hold(node, &pod.requests, Holder::Waiting(pod.key.clone()));
            }
        }
        for (evicted, claim) in claims(expected, &capacity.arrivals) {
            if claim == Claim::ToCome
                && let Some(r) = expected.get(&evicted)
            {
                ledger.hold(&r.node, &r.demand.requests, Holder::ToCome(evicted));
            }
        }
        ledger
    }

    fn hold(&mut self, node: &str, requests: &ResourceList, holder: Holder) {
        self.reservations.push(Reservation {
            node: node.to_string(),
            requests: requests.clone(),
            holder,
        });
    }

    /// Holds room on `node` for the replacement of `pod`, evicted this cycle.
    pub fn reserve(&mut self, node: &str, demand: &Demand, pod: &PodKey) {
        self.hold(node, &demand.requests, Holder::ThisCycle(pod.clone()));
    }

    /// The room held so far.
    pub fn reservations(&self) -> &[Reservation] {
        &self.reservations
    }

    /// Whether a pod asking `demand` fits on `node` with the pods there and the room held.
    pub fn fits(&self, demand: &Demand, node: &str) -> Result<(), NoFit> {
        let room = self.nodes.get(node).ok_or(NoFit::NoNode)?;
        let facts = NodeFacts {
            name: &room.name,
            labels: &room.labels,
            taints: &room.taints,
            unschedulable: room.unschedulable,
        };
        let rules = PodRules {
            node_selector: &demand.node_selector,
            affinity: &demand.affinity,
            tolerations: &demand.tolerations,
        };
        if let Some(m) = placement::misfit(facts, rules) {
            return Err(NoFit::Rule(m));
        }
        let held: Vec<&Reservation> = self
            .reservations
            .iter()
            .filter(|r| r.node == node)
            .collect();
        let mut taken = room.used.clone();
        for r in &held {
            add(&mut taken, &r.requests);
        }
        let Some(resource) = placement::insufficient(&demand.requests, &room.allocatable, &taken)
        else {
            return Ok(());
        };
        let get = |list: &ResourceList| list.get(resource).copied().unwrap_or(0);
        let holders: Vec<&Reservation> =
            held.into_iter().filter(|r| get(&r.requests) > 0).collect();
        Err(NoFit::Room {
            resource: resource.to_string(),
            allocatable: get(&room.allocatable),
            used: get(&room.used),
            reserved: holders.iter().map(|r| get(&r.requests)).sum(),
            wanted: get(&demand.requests),
            holders: holders.iter().map(|r| r.holder.clone()).collect(),
        })
    }
}
