//! The planner on random small instances: it never panics, and no plan, from any strategy,
//! breaks a hard constraint. The first 8 bytes seed a generated instance
//! (`instances::small`); each following pair of bytes changes it (cordons a node, taints
//! it, pins a pod to a node's label, shrinks a node, grows a pod, adds a GPU), so that
//! the fuzzer can steer towards tight instances.
//!
//! The hard constraints are checked here, written out again rather than calling the
//! planner's own filters: capacity of every resource on every node (pods already running
//! included), `nodeSelector`, cordons, NoSchedule taints (the generated pods tolerate none),
//! every pod either placed or unplaced exactly once, and no rule in Violation in a binding
//! whose pods are all placed.

use std::collections::BTreeMap;

use edgeplane_api::{Compliance, TargetKind};
use edgeplane_core::planner::instances::{Instance, small};
use edgeplane_core::planner::{
    self, Plan, PlanOptions, PodKey, Resources, Strategy, Taint, TaintEffect,
};

const GPU: &str = "example.com/gpu";

pub fn run(data: &[u8]) {
    let Some((seed, ops)) = data.split_first_chunk::<8>() else {
        return;
    };
    let mut instance = small(u64::from_le_bytes(*seed));
    for op in ops.chunks_exact(2).take(16) {
        mutate(&mut instance, op[0], op[1]);
    }
    for strategy in [Strategy::Optimal, Strategy::Greedy] {
        let options = PlanOptions {
            strategy,
            max_iterations: 20_000,
            ..PlanOptions::default()
        };
        let plan = planner::plan(&instance.input(), &options);
        check(&instance, &plan, strategy);
    }
}

fn mutate(instance: &mut Instance, op: u8, arg: u8) {
    let nodes = instance.nodes.len();
    let pods = instance.pending.len();
    if nodes == 0 || pods == 0 {
        return;
    }
    let node = arg as usize % nodes;
    let pod = arg as usize % pods;
    match op % 6 {
        0 => instance.nodes[node].schedulable = false,
        1 => instance.nodes[node].taints.push(Taint {
            key: "fuzz".into(),
            value: String::new(),
            effect: TaintEffect::NoSchedule,
        }),
        2 => {
            let target = (arg as usize / 7) % nodes;
            if let Some((k, v)) = instance.nodes[target].labels.iter().next() {
                let (k, v) = (k.clone(), v.clone());
                instance.pending[pod].node_selector.insert(k, v);
            }
        }
        3 => instance.nodes[node].allocatable.cpu_millis = i64::from(arg) * 50,
        4 => instance.pending[pod].requests.cpu_millis += i64::from(arg) * 100,
        _ => {
            instance.nodes[node]
                .allocatable
                .extended
                .insert(GPU.into(), i64::from(arg % 3));
            instance.pending[pod]
                .requests
                .extended
                .insert(GPU.into(), 1);
        }
    }
}

fn check(instance: &Instance, plan: &Plan, strategy: Strategy) {
    let context = || format!("{strategy:?} on {}", describe(instance));
    // Every pod once.
    let mut seen: BTreeMap<&PodKey, usize> = BTreeMap::new();
    for pod in plan
        .assignments
        .iter()
        .map(|a| &a.pod)
        .chain(plan.unplaced.iter().map(|u| &u.pod))
    {
        *seen.entry(pod).or_default() += 1;
    }
    for pod in &instance.pending {
        assert_eq!(
            seen.get(&pod.key),
            Some(&1),
            "{} is not accounted once: {}",
            pod.key,
            context()
        );
    }
    assert_eq!(
        seen.len(),
        instance.pending.len(),
        "the plan names pods it was not given: {}",
        context()
    );

    // Each node: its rules and its capacity.
    let mut used: BTreeMap<&str, Resources> = BTreeMap::new();
    for placed in &instance.placed {
        add(
            used.entry(placed.node.as_str()).or_default(),
            &placed.requests,
        );
    }
    for assignment in &plan.assignments {
        let node = instance
            .nodes
            .iter()
            .find(|n| n.name == assignment.node)
            .unwrap_or_else(|| {
                panic!(
                    "{} planned on unknown node {}: {}",
                    assignment.pod,
                    assignment.node,
                    context()
                )
            });
        let pod = instance
            .pending
            .iter()
            .find(|p| p.key == assignment.pod)
            .expect("accounted above");
        assert!(
            node.schedulable,
            "{} on cordoned {}: {}",
            pod.key,
            node.name,
            context()
        );
        if pod.tolerations.is_empty() {
            assert!(
                !node
                    .taints
                    .iter()
                    .any(|t| matches!(t.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute)),
                "{} on tainted {}: {}",
                pod.key,
                node.name,
                context()
            );
        }
        for (k, v) in &pod.node_selector {
            assert_eq!(
                node.labels.get(k),
                Some(v),
                "{} on {} against its nodeSelector: {}",
                pod.key,
                node.name,
                context()
            );
        }
        add(used.entry(node.name.as_str()).or_default(), &pod.requests);
    }
    for node in &instance.nodes {
        let Some(used) = used.get(node.name.as_str()) else {
            continue;
        };
        let free = &node.allocatable;
        let over = used.cpu_millis > free.cpu_millis
            || used.memory_bytes > free.memory_bytes
            || used.pods > free.pods
            || used
                .extended
                .iter()
                .any(|(k, v)| *v > free.extended.get(k).copied().unwrap_or(0));
        // Pods already running may overfill a node the fuzzer shrank; new ones may not add to it.
        let new_there = plan.assignments.iter().any(|a| a.node == node.name);
        assert!(
            !(over && new_there),
            "{} over capacity: {used:?} of {free:?}: {}",
            node.name,
            context()
        );
    }

    // No Violation where every pod of the binding is placed, one of them by this plan.
    let planned = |key: &PodKey| plan.assignments.iter().any(|a| &a.pod == key);
    let running = |key: &PodKey| instance.placed.iter().any(|p| &p.key == key);
    for binding in &plan.bindings {
        let pods: Vec<PodKey> = binding
            .targets
            .values()
            .filter(|t| t.kind == TargetKind::Pod)
            .map(|t| PodKey::new(t.namespace.clone().unwrap_or_default(), t.name.clone()))
            .collect();
        if pods.iter().any(|k| !planned(k) && !running(k)) || !pods.iter().any(planned) {
            continue;
        }
        for rule in &binding.rules {
            assert_ne!(
                rule.compliance,
                Compliance::Violation,
                "{} rule {} in Violation: {}",
                binding.name,
                rule.rule,
                context()
            );
        }
    }
}

fn add(total: &mut Resources, requests: &Resources) {
    total.cpu_millis += requests.cpu_millis;
    total.memory_bytes += requests.memory_bytes;
    total.pods += requests.pods;
    for (k, v) in &requests.extended {
        *total.extended.entry(k.clone()).or_default() += v;
    }
}

fn describe(instance: &Instance) -> String {
    format!(
        "{} pods, {} nodes, {} running, {} bindings",
        instance.pending.len(),
        instance.nodes.len(),
        instance.placed.len(),
        instance.bindings.len()
    )
}
