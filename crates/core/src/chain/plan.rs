//! A chain's lanes as the planner sees them: one [`PlanBinding`] per lane whose targets
//! are the lane's pods (a container replica's pod, a VM replica's virt-launcher pod: both
//! carry the NF's `network-function` and `replica` labels) and its ingress and egress
//! sites, with the chain's rules judged along the lane ([`crate::planner::lanes`]). The
//! scheduler adds them to what it plans, so a lane's pods are placed together against
//! the lane's summed budget, not pairwise.
//!
//! The binding has the lane binding's name (`<chain>-lane-<i>`), so the plan's predicted
//! compliance reads as the binding the chain controller writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use edgeplane_api::{ConstraintPolicyRule, ServiceChain, TargetRef};
use k8s_openapi::api::core::v1::Pod;

use super::{END_TO_END_POLICY, PER_LINK_POLICY, lane_rule};
use crate::nf::{NF_LABEL, REPLICA_LABEL};
use crate::planner::convert::pod_key;
use crate::planner::lanes::{Along, LaneRule};
use crate::planner::{PlanBinding, PlanRule, PodKey, RuleProvider};
use crate::scheduler::input::is_finished_or_terminating;

/// The role of hop `hop` in a lane binding (as in [`super::lane_binding`]).
pub fn hop_role(hop: &str) -> String {
    format!("hop-{hop}")
}

/// The lanes as the planner sees them.
#[derive(Clone, Debug, Default)]
pub struct LanePlan {
    /// One binding per lane that has a pod in `pending`.
    pub bindings: Vec<PlanBinding>,
    /// Pending pods of lanes some hop of which has no pod yet (a VM not started yet, a
    /// pod not created yet), with why: they wait, because their lane's budget cannot be
    /// judged as a unit before every hop is there; the missing pod triggers the next plan.
    pub waiting: BTreeMap<PodKey, String>,
}

/// The planner's view of the lanes of `chains`: see [`LanePlan`].
pub fn lane_plan_bindings(
    chains: &[Arc<ServiceChain>],
    pods: &[Arc<Pod>],
    pending: &BTreeSet<PodKey>,
) -> LanePlan {
    // (namespace, nf, replica) -> the live pods, the pending one first.
    let mut by_replica: BTreeMap<(&str, &str, &str), Vec<PodKey>> = BTreeMap::new();
    for pod in pods {
        if is_finished_or_terminating(pod) {
            continue;
        }
        let Some(labels) = pod.metadata.labels.as_ref() else {
            continue;
        };
        let (Some(nf), Some(replica)) = (labels.get(NF_LABEL), labels.get(REPLICA_LABEL)) else {
            continue;
        };
        let key = pod_key(pod);
        let list = by_replica
            .entry((
                pod.metadata.namespace.as_deref().unwrap_or("default"),
                nf.as_str(),
                replica.as_str(),
            ))
            .or_default();
        if pending.contains(&key) {
            list.insert(0, key);
        } else {
            list.push(key);
        }
    }
    let mut sorted: Vec<&Arc<ServiceChain>> = chains.iter().collect();
    sorted.sort_by_key(|c| (c.metadata.namespace.clone(), c.metadata.name.clone()));
    let mut out = LanePlan::default();
    for chain in sorted {
        let namespace = chain.metadata.namespace.as_deref().unwrap_or("default");
        let name = chain.metadata.name.as_deref().unwrap_or_default();
        if chain.spec.hops.is_empty() {
            continue;
        }
        let rules = lane_rules(chain);
        let order = lane_order(chain);
        // A lane is known from a pod of any hop, not only of the first: a VM first hop has
        // no pod until the VM is started (its networks exist), and the other hops' pods
        // must wait for it rather than be planned as if no lane held them.
        let lanes: BTreeSet<&str> = by_replica
            .keys()
            .filter(|(ns, nf, _)| {
                *ns == namespace && chain.spec.hops.iter().any(|h| h.network_function == *nf)
            })
            .map(|(_, _, replica)| *replica)
            .collect();
        for lane in lanes {
            let mut targets = BTreeMap::new();
            let mut missing = Vec::new();
            let mut waiting = Vec::new();
            for hop in &chain.spec.hops {
                match by_replica
                    .get(&(namespace, hop.network_function.as_str(), lane))
                    .and_then(|l| l.first())
                {
                    Some(key) => {
                        if pending.contains(key) {
                            waiting.push(key.clone());
                        }
                        targets.insert(hop_role(&hop.name), TargetRef::pod(namespace, &key.name));
                    }
                    None => missing.push(hop.name.as_str()),
                }
            }
            if !missing.is_empty() {
                let why = format!(
                    "lane {lane} of service chain {namespace}/{name} waits for a pod of hop {}",
                    missing.join(", ")
                );
                out.waiting
                    .extend(waiting.into_iter().map(|k| (k, why.clone())));
                continue;
            }
            if waiting.is_empty() || rules.is_empty() {
                continue;
            }
            if let Some(ingress) = &chain.spec.ingress {
                targets.insert("ingress".into(), TargetRef::site(&ingress.site));
            }
            if let Some(egress) = &chain.spec.egress {
                targets.insert("egress".into(), TargetRef::site(&egress.site));
            }
            out.bindings.push(PlanBinding {
                name: super::lane_binding_name(name, lane),
                offer: format!("{namespace}/{name}"),
                targets,
                rules: rules
                    .iter()
                    .map(|(policy, spec, along)| lane_plan_rule(policy, spec, &order, *along))
                    .collect(),
            });
        }
    }
    out
}

/// The roles of a lane in path order: ingress, the hops, egress.
fn lane_order(chain: &ServiceChain) -> Vec<String> {
    let mut order = Vec::new();
    if chain.spec.ingress.is_some() {
        order.push("ingress".to_string());
    }
    order.extend(chain.spec.hops.iter().map(|h| hop_role(&h.name)));
    if chain.spec.egress.is_some() {
        order.push("egress".to_string());
    }
    order
}

fn lane_rules(chain: &ServiceChain) -> Vec<(&'static str, ConstraintPolicyRule, Along)> {
    let Some(c) = chain.spec.constraints.as_ref() else {
        return Vec::new();
    };
    let end = c
        .end_to_end
        .iter()
        .map(|r| (END_TO_END_POLICY, r.clone(), Along::Sum));
    let link = c
        .per_link
        .iter()
        .map(|r| (PER_LINK_POLICY, r.clone(), Along::EachLink));
    end.chain(link).collect()
}

fn lane_plan_rule(
    policy: &str,
    spec: &ConstraintPolicyRule,
    order: &[String],
    along: Along,
) -> PlanRule {
    PlanRule {
        policy: policy.into(),
        spec: spec.clone(),
        provider: match lane_rule(spec) {
            Ok(_) => RuleProvider::Lane(LaneRule {
                order: order.to_vec(),
                along,
            }),
            Err(e) => RuleProvider::Broken(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain() -> Arc<ServiceChain> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "network.edgeplane.io/v1alpha1", "kind": "ServiceChain",
                "metadata": {"name": "up", "namespace": "upf"},
                "spec": {
                    "hops": [{"name": "fw", "networkFunction": "fw"}, {"name": "dpi", "networkFunction": "dpi"}],
                    "ingress": {"site": "ran"}, "egress": {"site": "core"},
                    "constraints": {
                        "endToEnd": [{"name": "latency", "request": "1ms", "limit": "2ms"}],
                        "perLink": [{"name": "cpu", "request": "1"}],
                    },
                },
            }))
            .expect("a valid object"),
        )
    }

    fn pod(name: &str, nf: &str, replica: &str, node: Option<&str>) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "upf",
                    "labels": {NF_LABEL: nf, REPLICA_LABEL: replica}},
                "spec": {"containers": [{"name": "c"}], "nodeName": node},
            }))
            .expect("a valid object"),
        )
    }

    #[test]
    fn each_lane_with_a_pending_pod_becomes_one_binding_along_the_chain() {
        let pods = vec![
            // Lane 0: the VM's launcher pod waits, dpi-0 runs.
            pod("virt-launcher-fw-0-abcde", "fw", "0", None),
            pod("dpi-0", "dpi", "0", Some("e1")),
            // Lane 1: everything runs: not planned.
            pod("virt-launcher-fw-1-fghij", "fw", "1", Some("e2")),
            pod("dpi-1", "dpi", "1", Some("e2")),
            // Lane 2: dpi has no pod yet: not judged as a unit.
            pod("virt-launcher-fw-2-klmno", "fw", "2", None),
        ];
        let mut pods = pods;
        // Lane 3: the VM is not started yet (no launcher pod), dpi-3 is pending: it waits
        // for the first hop too, not planned as a pod no lane holds.
        pods.push(pod("dpi-3", "dpi", "3", None));
        let pending = BTreeSet::from([
            PodKey::new("upf", "virt-launcher-fw-0-abcde"),
            PodKey::new("upf", "virt-launcher-fw-2-klmno"),
            PodKey::new("upf", "dpi-3"),
        ]);
        let lanes = lane_plan_bindings(&[chain()], &pods, &pending);
        // Lane 2's launcher pod waits for dpi-2, lane 3's dpi-3 for fw-3's launcher pod.
        assert_eq!(
            lanes.waiting,
            BTreeMap::from([
                (
                    PodKey::new("upf", "virt-launcher-fw-2-klmno"),
                    "lane 2 of service chain upf/up waits for a pod of hop dpi".to_string()
                ),
                (
                    PodKey::new("upf", "dpi-3"),
                    "lane 3 of service chain upf/up waits for a pod of hop fw".to_string()
                )
            ])
        );
        let bindings = lanes.bindings;
        assert_eq!(bindings.len(), 1);
        let b = &bindings[0];
        assert_eq!(b.name, "up-lane-0");
        assert_eq!(b.offer, "upf/up");
        assert_eq!(
            b.targets,
            BTreeMap::from([
                ("egress".to_string(), TargetRef::site("core")),
                ("hop-dpi".to_string(), TargetRef::pod("upf", "dpi-0")),
                (
                    "hop-fw".to_string(),
                    TargetRef::pod("upf", "virt-launcher-fw-0-abcde")
                ),
                ("ingress".to_string(), TargetRef::site("ran")),
            ])
        );
        assert_eq!(b.rules.len(), 2);
        assert_eq!(b.rules[0].policy, "endToEnd");
        match &b.rules[0].provider {
            RuleProvider::Lane(lane) => {
                assert_eq!(lane.order, ["ingress", "hop-fw", "hop-dpi", "egress"]);
                assert_eq!(lane.along, Along::Sum);
            }
            other => panic!("{other:?}"),
        }
        // A rule that cannot be judged along a lane is reported, not planned.
        match &b.rules[1].provider {
            RuleProvider::Broken(why) => {
                assert!(why.contains("cannot be judged along a lane"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}
