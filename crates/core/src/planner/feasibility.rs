//! Whether a pod may run on a node at all, as kube-scheduler decides it: taints against
//! tolerations, `nodeSelector`, required node affinity, schedulability, and resources.
//! The rules are [`crate::placement`]'s, which the embedded cluster's scheduler shares;
//! this module applies them to the planner's model.

pub use crate::placement::{
    Misfit, affinity_matches, matches_node_selector, requirement_holds, term_matches, tolerates,
    untolerated,
};
use crate::placement::{NodeFacts, PodRules, amount_fits, misfit};

use super::{PendingPod, PlanNode, Resources};

/// The names of the nodes that may take `pod` (resources aside), sorted: the candidate
/// nodes of a network controller's or an external provider's question.
pub fn eligible_node_names(nodes: &[PlanNode], pod: &PendingPod) -> Vec<String> {
    let mut names: Vec<String> = nodes
        .iter()
        .filter(|n| static_misfit(n, pod).is_none())
        .map(|n| n.name.clone())
        .collect();
    names.sort();
    names
}

/// The first static reason a node cannot take a pod, or `None` when it can (resources
/// aside).
pub fn static_misfit(node: &PlanNode, pod: &PendingPod) -> Option<Misfit> {
    misfit(
        NodeFacts {
            name: &node.name,
            labels: &node.labels,
            taints: &node.taints,
            unschedulable: !node.schedulable,
        },
        PodRules {
            node_selector: &pod.node_selector,
            affinity: &pod.affinity,
            tolerations: &pod.tolerations,
        },
    )
}

/// Whether `requests` fit in `free`, resource by resource ([`amount_fits`]: a resource
/// the pod does not request never keeps it off).
pub fn fits(requests: &Resources, free: &Resources) -> bool {
    amount_fits(requests.cpu_millis, free.cpu_millis)
        && amount_fits(requests.memory_bytes, free.memory_bytes)
        && amount_fits(requests.pods, free.pods)
        && requests
            .extended
            .iter()
            .all(|(k, v)| amount_fits(*v, free.extended.get(k).copied().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::placement::testing::{taint, toleration};
    use crate::placement::{ResourceList, insufficient};
    use crate::planner::convert::resources;
    use crate::planner::{TaintEffect, TolerationOperator};

    /// A pod asking for nothing in particular.
    fn plain_pod() -> PendingPod {
        PendingPod {
            key: super::super::PodKey::new("default", "p"),
            requests: Resources::pod(1, 1),
            node_selector: BTreeMap::new(),
            affinity: vec![],
            tolerations: vec![],
            labels: BTreeMap::new(),
            pod_rules: Default::default(),
        }
    }

    #[test]
    fn resources_fit_dimension_by_dimension() {
        let mut free = Resources::pod(4000, 8 << 30);
        free.pods = 2;
        free.extended.insert("nvidia.com/gpu".into(), 1);
        assert!(fits(&Resources::pod(4000, 8 << 30), &free));
        assert!(!fits(&Resources::pod(4001, 1), &free));
        assert!(!fits(&Resources::pod(1, (8 << 30) + 1), &free));
        let mut gpu = Resources::pod(1, 1);
        gpu.extended.insert("nvidia.com/gpu".into(), 1);
        assert!(fits(&gpu, &free));
        gpu.extended.insert("nvidia.com/gpu".into(), 2);
        assert!(!fits(&gpu, &free));
        let mut fpga = Resources::pod(1, 1);
        fpga.extended.insert("example.com/fpga".into(), 1);
        assert!(!fits(&fpga, &free));
        free.pods = 0;
        assert!(!fits(&Resources::pod(0, 0), &free));
    }

    #[test]
    fn static_misfits_in_order() {
        let node = PlanNode {
            name: "n1".into(),
            allocatable: Resources::pod(1000, 1000),
            labels: BTreeMap::from([("zone".to_string(), "edge-1".to_string())]),
            taints: vec![taint("dedicated", "gpu", TaintEffect::NoSchedule)],
            schedulable: true,
        };
        let mut pod = plain_pod();
        assert!(matches!(static_misfit(&node, &pod), Some(Misfit::Taint(_))));
        pod.tolerations.push(toleration(
            "dedicated",
            TolerationOperator::Exists,
            "",
            None,
        ));
        assert_eq!(static_misfit(&node, &pod), None);
        pod.node_selector.insert("zone".into(), "metro".into());
        assert_eq!(static_misfit(&node, &pod), Some(Misfit::NodeSelector));
        let mut cordoned = node.clone();
        cordoned.schedulable = false;
        assert_eq!(static_misfit(&cordoned, &pod), Some(Misfit::Unschedulable));
    }

    /// A cordoned node takes a pod that tolerates `node.kubernetes.io/unschedulable`, as
    /// kube-scheduler and the embedded cluster's scheduler decide; the planner used to
    /// refuse it whatever its tolerations.
    #[test]
    fn cordoned_nodes_take_pods_that_tolerate_the_cordon() {
        let node = PlanNode {
            name: "n1".into(),
            allocatable: Resources::pod(1000, 1000),
            labels: BTreeMap::new(),
            taints: vec![],
            schedulable: false,
        };
        let mut pod = plain_pod();
        assert_eq!(static_misfit(&node, &pod), Some(Misfit::Unschedulable));
        pod.tolerations.push(toleration(
            crate::placement::UNSCHEDULABLE_TAINT_KEY,
            TolerationOperator::Exists,
            "",
            Some(TaintEffect::NoSchedule),
        ));
        assert_eq!(static_misfit(&node, &pod), None);
    }

    fn resource_list() -> impl Strategy<Value = ResourceList> {
        let name = prop::sample::select(vec!["cpu", "memory", "pods", "nvidia.com/gpu"]);
        prop::collection::btree_map(name.prop_map(str::to_string), 0i128..5_000, 0..4).prop_map(
            |mut list| {
                // Amounts as the placement rules produce them: millicores, whole units.
                for (name, v) in list.iter_mut() {
                    if name != "cpu" {
                        *v *= 1000;
                    }
                }
                list
            },
        )
    }

    proptest! {
        /// The planner's fit on its compact resource vectors (kept apart from
        /// `placement::insufficient` because it runs in the search's inner loops) agrees
        /// with the embedded cluster's, on nodes free, full and overcommitted.
        #[test]
        fn planner_fit_agrees_with_the_cluster_scheduler(
            requests in resource_list(),
            allocatable in resource_list(),
            used in resource_list(),
        ) {
            let (req, alloc, taken) = (resources(&requests), resources(&allocatable), resources(&used));
            let mut free = alloc.clone();
            free.cpu_millis -= taken.cpu_millis;
            free.memory_bytes -= taken.memory_bytes;
            free.pods -= taken.pods;
            for (k, v) in &taken.extended {
                *free.extended.entry(k.clone()).or_default() -= v;
            }
            prop_assert_eq!(
                fits(&req, &free),
                insufficient(&requests, &allocatable, &used).is_none()
            );
        }
    }
}
