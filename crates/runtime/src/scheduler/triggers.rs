//! What brings unplaced pods back: the changes of the caches that may let them fit.
//!
//! An unplaced pod stays where it is (gated in gate mode, pending in bind mode) with the
//! planner's reason in the annotation `constraint.edgeplane.io/unplaced-reason` and an
//! `Unplaceable` Event, both written only when the reason changed, so that replanning a
//! pod that still does not fit writes nothing. It is planned again when something that may
//! let it fit changes ([`Trigger`]); the queue then waits the quiet period, so a burst of
//! changes costs one plan.

use edgeplane_api::{ConstraintPolicy, ConstraintPolicyOffer, NetworkTopology};
use k8s_openapi::api::core::v1::{Node, Pod};

use edgeplane_core::scheduler::input::is_running;

use crate::cache::Change;
use crate::view::{ViewChange, topology_notice};

/// What may let an unplaced pod fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A node came or went, or its labels, taints, schedulability or allocatable changed.
    Nodes,
    /// The topology (spec, measurements or activated paths) changed.
    Topology,
    /// A policy's rules changed.
    Policies,
    /// An offer's spec changed.
    Offers,
    /// A pod stopped holding capacity (deleted, finished).
    CapacityFreed,
    /// This replica became the leader, or a cache relisted.
    Resync,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Nodes => "nodes changed",
            Trigger::Topology => "topology changed",
            Trigger::Policies => "policies changed",
            Trigger::Offers => "offers changed",
            Trigger::CapacityFreed => "capacity freed",
            Trigger::Resync => "resync",
        }
    }
}

/// What the planner reads from a node.
fn node_facts(n: &Node) -> impl PartialEq + '_ {
    let spec = n.spec.as_ref();
    (
        n.metadata.labels.as_ref(),
        spec.and_then(|s| s.taints.as_ref()),
        spec.and_then(|s| s.unschedulable),
        n.status.as_ref().and_then(|s| s.allocatable.as_ref()),
    )
}

pub fn node_trigger(change: &Change<Node>) -> Option<Trigger> {
    match change {
        Change::Applied {
            old: Some(old),
            new,
        } => (node_facts(old) != node_facts(new)).then_some(Trigger::Nodes),
        Change::Applied { old: None, .. } | Change::Deleted(_) => Some(Trigger::Nodes),
        Change::Resynced => Some(Trigger::Resync),
    }
}

/// The default topology's network changed (a path allocated for an unplaced pod replans
/// it), the same changes that rebuild the view.
pub fn topology_trigger(change: &Change<NetworkTopology>) -> Option<Trigger> {
    topology_notice(change).map(|notice| match notice {
        ViewChange::Resynced => Trigger::Resync,
        _ => Trigger::Topology,
    })
}

/// A spec change: the generation moved (status writes do not move it), or the object came
/// or went.
fn spec_changed<K: kube::Resource>(change: &Change<K>) -> bool {
    match change {
        Change::Applied {
            old: Some(old),
            new,
        } => old
            .meta()
            .generation
            .is_none_or(|g| Some(g) != new.meta().generation),
        Change::Applied { old: None, .. } | Change::Deleted(_) | Change::Resynced => true,
    }
}

pub fn policy_trigger(change: &Change<ConstraintPolicy>) -> Option<Trigger> {
    spec_changed(change).then_some(Trigger::Policies)
}

pub fn offer_trigger(change: &Change<ConstraintPolicyOffer>) -> Option<Trigger> {
    spec_changed(change).then_some(Trigger::Offers)
}

/// A pod that held capacity no longer does.
pub fn pod_trigger(change: &Change<Pod>) -> Option<Trigger> {
    match change {
        Change::Applied {
            old: Some(old),
            new,
        } => (is_running(old) && !is_running(new)).then_some(Trigger::CapacityFreed),
        Change::Applied { old: None, .. } => None,
        Change::Deleted(p) => is_running(p).then_some(Trigger::CapacityFreed),
        Change::Resynced => Some(Trigger::Resync),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use edgeplane_core::scheduler::patches::needs_update;
    use k8s_openapi::api::core::v1::{NodeSpec, PodSpec, PodStatus, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn node(taint: bool, heartbeat: &str) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some("n".into()),
                annotations: Some(BTreeMap::from([("beat".into(), heartbeat.into())])),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: taint.then(|| {
                    vec![Taint {
                        key: "k".into(),
                        effect: "NoSchedule".into(),
                        ..Taint::default()
                    }]
                }),
                ..NodeSpec::default()
            }),
            status: None,
        })
    }

    #[test]
    fn node_changes_that_matter() {
        let changed = Change::Applied {
            old: Some(node(false, "1")),
            new: node(true, "1"),
        };
        assert_eq!(node_trigger(&changed), Some(Trigger::Nodes));
        let heartbeat = Change::Applied {
            old: Some(node(false, "1")),
            new: node(false, "2"),
        };
        assert_eq!(node_trigger(&heartbeat), None);
        assert_eq!(
            node_trigger(&Change::Deleted(node(false, "1"))),
            Some(Trigger::Nodes)
        );
    }

    fn pod(node: Option<&str>, phase: &str, reason: Option<&str>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                annotations: reason.map(|r| {
                    BTreeMap::from([(
                        edgeplane_api::names::UNPLACED_ANNOTATION.to_string(),
                        r.to_string(),
                    )])
                }),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(String::from),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..PodStatus::default()
            }),
        })
    }

    #[test]
    fn freed_capacity_and_reasons() {
        let finished = Change::Applied {
            old: Some(pod(Some("n"), "Running", None)),
            new: pod(Some("n"), "Succeeded", None),
        };
        assert_eq!(pod_trigger(&finished), Some(Trigger::CapacityFreed));
        let gone = Change::Deleted(pod(Some("n"), "Running", None));
        assert_eq!(pod_trigger(&gone), Some(Trigger::CapacityFreed));
        let pending_gone = Change::Deleted(pod(None, "Pending", None));
        assert_eq!(pod_trigger(&pending_gone), None);

        assert!(needs_update(&pod(None, "Pending", None), "no room"));
        assert!(!needs_update(
            &pod(None, "Pending", Some("no room")),
            "no room"
        ));
        assert!(needs_update(
            &pod(None, "Pending", Some("no room")),
            "taints"
        ));
    }

    #[test]
    fn status_writes_do_not_trigger() {
        let mut a = ConstraintPolicyOffer::new(
            "o",
            serde_json::from_value(serde_json::json!({
                "targets": [{"kind": "Pod"}], "policies": ["p"]
            }))
            .unwrap_or_else(|e| panic!("{e}")),
        );
        a.metadata.generation = Some(1);
        let b = a.clone();
        let status_only = Change::Applied {
            old: Some(Arc::new(a.clone())),
            new: Arc::new(b),
        };
        assert_eq!(offer_trigger(&status_only), None);
        let mut c = a.clone();
        c.metadata.generation = Some(2);
        let spec = Change::Applied {
            old: Some(Arc::new(a)),
            new: Arc::new(c),
        };
        assert_eq!(offer_trigger(&spec), Some(Trigger::Offers));
    }
}
