//! A scenario as it loaded: settings and events in time order.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// `apiVersion` of scenario files.
pub const API_VERSION: &str = "sim.edgeplane.io/v1alpha1";
/// `kind` of scenario files.
pub const KIND: &str = "Scenario";

/// A scenario that loaded and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// `metadata.name`.
    pub name: String,
    /// `spec.description`: what the scenario shows, for the header of the run.
    pub description: String,
    /// The scenario file (as given).
    pub source: PathBuf,
    /// How much simulated time the run covers.
    pub duration: Duration,
    /// `spec.duration` as written (`45m`).
    pub duration_text: String,
    pub settings: Settings,
    /// Objects present from the start: included files in order, then `spec.resources`.
    pub objects: Vec<Value>,
    /// Events in time order (ties keep the order of the file).
    pub events: Vec<Event>,
    /// `spec.expect`: the final counts the run must end with.
    pub expect: Vec<super::expect::Expectation>,
    /// Fields of the objects their kind does not have, under `--validate=warn`.
    pub warnings: Vec<String>,
    /// `spec.clusters`: a hub and its members; `objects` and the events are then the
    /// hub's.
    pub multicluster: Option<MultiCluster>,
}

/// A scenario of several clusters: one embedded cluster per member and one for the hub,
/// on one virtual clock, with edgeplane's hub placing the applications.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiCluster {
    pub hub: HubSettings,
    pub clusters: Vec<MemberSpec>,
}

/// `spec.hub`.
#[derive(Debug, Clone, PartialEq)]
pub struct HubSettings {
    pub mode: HubMode,
    /// Time between the hub's rounds.
    pub interval: Duration,
    /// How long an application's rules may be in Violation before it is placed again.
    pub grace: Duration,
    pub probe_timeout: Duration,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            mode: HubMode::Direct,
            interval: Duration::from_secs(10),
            grace: Duration::from_secs(60),
            probe_timeout: Duration::from_secs(5),
        }
    }
}

/// How the hub carries its decisions out in the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubMode {
    /// The hub applies each member's share by the member's kubeconfig.
    Direct,
    /// The hub fills Karmada's ResourceBindings; the simulator plays Karmada.
    Karmada,
    /// The hub writes the applications' resources and plain PropagationPolicies (cluster
    /// affinity, static weights); the simulator plays Karmada, its scheduler included.
    KarmadaPolicy,
}

impl HubMode {
    pub fn as_str(self) -> &'static str {
        match self {
            HubMode::Direct => "direct",
            HubMode::Karmada => "karmada",
            HubMode::KarmadaPolicy => "karmada-policy",
        }
    }

    /// Whether the simulator plays Karmada.
    pub fn is_karmada(self) -> bool {
        matches!(self, HubMode::Karmada | HubMode::KarmadaPolicy)
    }
}

/// One member cluster of `spec.clusters`.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSpec {
    pub name: String,
    /// Its site in the hub's NetworkTopology.
    pub site: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its name in Karmada (the member's name when not given).
    pub karmada_cluster: Option<String>,
    /// Its own objects: included files in order, then `resources`.
    pub objects: Vec<Value>,
}

/// Timing knobs. Components (the planner, the binding controller) read theirs from the
/// simulation context; the embedded cluster's kubelets use `pod_startup`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The planner plans when no new gated pod arrived for this long.
    pub quiet_period: Duration,
    /// ... or when the oldest waiting pod has waited this long.
    pub max_wait: Duration,
    /// How long a simulated kubelet takes to start a pod.
    pub pod_startup: Duration,
    /// Default re-evaluation period of bindings whose offer gives none.
    pub period: Duration,
    /// Seed of the embedded cluster's uids and generated names.
    pub seed: u64,
    /// How long a failed node goes unnoticed before it is NotReady and tainted
    /// (kube-controller-manager's `--node-monitor-grace-period`).
    pub node_monitor_grace_period: Duration,
    /// `tolerationSeconds` the API server gives pods for the `not-ready` and
    /// `unreachable` taints (`--default-not-ready-toleration-seconds`,
    /// `--default-unreachable-toleration-seconds`).
    pub default_toleration_seconds: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            quiet_period: Duration::from_secs(2),
            max_wait: Duration::from_secs(30),
            pod_startup: Duration::from_secs(3),
            period: Duration::from_secs(30),
            seed: 1,
            node_monitor_grace_period: Duration::from_secs(50),
            default_toleration_seconds: 300,
        }
    }
}

/// One thing that happens at a point of simulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Simulated time since the start.
    pub at: Duration,
    /// Position in `spec.events` (for messages).
    pub index: usize,
    /// A sentence for the timeline ("fibre cut between metro-1 and edge-1").
    pub note: Option<String>,
    pub action: Action,
    /// With `spec.clusters`: the member a `failNode` or `recoverNode` acts in (`None`:
    /// the hub, or the one cluster).
    pub cluster: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create or update objects (server-side apply).
    Apply(Vec<Value>),
    /// Delete objects.
    Delete(Vec<ObjectRef>),
    /// Change (or add) the link between two sites of the NetworkTopology `default`.
    SetLink(LinkChange),
    FailNode(String),
    RecoverNode(String),
    /// Set the replicas of a Deployment, StatefulSet or ReplicaSet.
    Scale(ScaleTarget),
    /// A member cluster stops answering (its API server is unreachable from the hub;
    /// what runs in it keeps running).
    FailCluster(String),
    RecoverCluster(String),
}

impl Action {
    /// The key the action is written under.
    pub fn key(&self) -> &'static str {
        match self {
            Action::Apply(_) => "apply",
            Action::Delete(_) => "delete",
            Action::SetLink(_) => "setLink",
            Action::FailNode(_) => "failNode",
            Action::RecoverNode(_) => "recoverNode",
            Action::Scale(_) => "scale",
            Action::FailCluster(_) => "failCluster",
            Action::RecoverCluster(_) => "recoverCluster",
        }
    }
}

/// An object named by kind and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// New metrics of a link; metrics not given keep their value.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkChange {
    pub from: String,
    pub to: String,
    pub latency: Option<String>,
    pub jitter: Option<String>,
    pub bandwidth: Option<String>,
    pub loss: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScaleTarget {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub replicas: i32,
}

impl ScaleTarget {
    pub fn api_version(&self) -> &'static str {
        "apps/v1"
    }
}
