//! A generated planner instance written as Kubernetes manifests (`edgeplane bench planner
//! --write-instance`), so that the whole `edgeplane plan -f FILE` command (reading,
//! decoding, expanding offers, planning, rendering) can be measured on it.
//!
//! What is written: the NetworkTopology, one Node per node (allocatable as capacity too,
//! taints, cordon), one ConstraintPolicy per (namespace, policy) the bindings use, one Pod
//! per pod to place (requests, nodeSelector, required node affinity, tolerations, and the
//! rules between pods that `instances::add_pod_rules` gives), and one
//! ConstraintPolicyOffer per binding of the instance, whose Pod targets select their one
//! pod by the label `edgeplane.io/bench-pod` (so the offer expands into exactly that
//! binding) and whose Site targets list the site. Rules between pods are written only in
//! the shapes the generator makes (required anti-affinity, ScheduleAnyway spread, both
//! selecting the pod's `app` label); [`manifests`] refuses others rather than write them
//! wrongly.

use std::collections::BTreeMap;

use edgeplane_api::TargetKind;
use edgeplane_core::planner::instances::Instance;
use edgeplane_core::planner::{NodeOperator, Resources, TaintEffect, TolerationOperator};
use serde_json::{Map, Value, json};

/// The label by which an offer's Pod target selects its pod.
pub const POD_LABEL: &str = "edgeplane.io/bench-pod";

fn quantities(r: &Resources) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("cpu".into(), json!(format!("{}m", r.cpu_millis)));
    m.insert("memory".into(), json!(r.memory_bytes.to_string()));
    for (k, v) in &r.extended {
        m.insert(k.clone(), json!(v.to_string()));
    }
    m
}

/// The instance's objects, in the order `edgeplane plan` reads them best (inventory first).
pub fn manifests(inst: &Instance) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    out.push(serde_json::to_value(&inst.topology).map_err(|e| e.to_string())?);
    for n in &inst.nodes {
        let mut allocatable = quantities(&n.allocatable);
        allocatable.insert("pods".into(), json!(n.allocatable.pods.to_string()));
        let taints: Vec<Value> = n
            .taints
            .iter()
            .map(|t| {
                json!({"key": t.key, "value": t.value, "effect": match t.effect {
                    TaintEffect::NoSchedule => "NoSchedule",
                    TaintEffect::PreferNoSchedule => "PreferNoSchedule",
                    TaintEffect::NoExecute => "NoExecute",
                }})
            })
            .collect();
        let mut spec = Map::new();
        if !taints.is_empty() {
            spec.insert("taints".into(), json!(taints));
        }
        if !n.schedulable {
            spec.insert("unschedulable".into(), json!(true));
        }
        out.push(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n.name, "labels": n.labels},
            "spec": spec,
            "status": {"allocatable": allocatable, "capacity": allocatable},
        }));
    }
    // Policies: one per (namespace, name), from the bindings' rules.
    let mut policies: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for b in &inst.bindings {
        let namespace = b.offer.split_once('/').map_or("default", |(ns, _)| ns);
        for r in &b.rules {
            let rules = policies
                .entry((namespace.to_string(), r.policy.clone()))
                .or_default();
            let rule = serde_json::to_value(&r.spec).map_err(|e| e.to_string())?;
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    }
    for ((namespace, name), rules) in &policies {
        out.push(json!({
            "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"rules": rules},
        }));
    }
    for pod in &inst.pending {
        out.push(pod_manifest(pod)?);
    }
    for b in &inst.bindings {
        let namespace = b.offer.split_once('/').map_or("default", |(ns, _)| ns);
        let mut names: Vec<&str> = b.rules.iter().map(|r| r.policy.as_str()).collect();
        names.dedup();
        let targets: Vec<Value> = b
            .targets
            .iter()
            .map(|(role, t)| match t.kind {
                TargetKind::Site => json!({"name": role, "kind": "Site", "sites": [t.name]}),
                _ => json!({"name": role, "kind": "Pod",
                    "labelSelector": {"matchLabels": {POD_LABEL: t.name}}}),
            })
            .collect();
        out.push(json!({
            "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicyOffer",
            "metadata": {"name": b.name, "namespace": namespace},
            "spec": {"targets": targets, "policies": names},
        }));
    }
    Ok(out)
}

/// One pod to place as a v1 Pod.
pub fn pod_manifest(pod: &edgeplane_core::planner::PendingPod) -> Result<Value, String> {
    let rules = &pod.pod_rules;
    let mut labels = pod.labels.clone();
    labels.insert(POD_LABEL.into(), pod.key.name.clone());
    let app = pod.labels.get("app").cloned().unwrap_or_default();
    let mut spec = Map::new();
    let mut requests = quantities(&pod.requests);
    requests.remove("pods");
    let limits: Map<String, Value> = pod
        .requests
        .extended
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.to_string())))
        .collect();
    spec.insert(
        "containers".into(),
        json!([{"name": "app", "image": "registry.example/app:1",
            "resources": {"requests": requests, "limits": limits}}]),
    );
    if rules.priority != 0 {
        spec.insert("priority".into(), json!(rules.priority));
    }
    if !pod.node_selector.is_empty() {
        spec.insert("nodeSelector".into(), json!(pod.node_selector));
    }
    let mut affinity = Map::new();
    if !pod.affinity.is_empty() {
        let mut terms = Vec::new();
        for t in &pod.affinity {
            if !t.match_fields.is_empty() {
                return Err(format!("{}: matchFields are not written", pod.key.name));
            }
            let exprs: Vec<Value> = t
                .match_expressions
                .iter()
                .map(|e| {
                    let op = match e.operator {
                        NodeOperator::In => "In",
                        NodeOperator::NotIn => "NotIn",
                        NodeOperator::Exists => "Exists",
                        NodeOperator::DoesNotExist => "DoesNotExist",
                        NodeOperator::Gt => "Gt",
                        NodeOperator::Lt => "Lt",
                    };
                    json!({"key": e.key, "operator": op, "values": e.values})
                })
                .collect();
            terms.push(json!({"matchExpressions": exprs}));
        }
        affinity.insert(
            "nodeAffinity".into(),
            json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}),
        );
    }
    if !rules.affinity.is_empty()
        || !rules.preferred_affinity.is_empty()
        || !rules.preferred_anti_affinity.is_empty()
        || !rules.host_ports.is_empty()
        || rules.anti_affinity.len() > 1
        || rules.spread.len() > 1
        || rules.spread.iter().any(|s| s.hard)
    {
        return Err(format!(
            "{}: only the rules instances::add_pod_rules gives are written",
            pod.key.name
        ));
    }
    let by_app = json!({"matchLabels": {"app": app}});
    if let Some(t) = rules.anti_affinity.first() {
        affinity.insert(
            "podAntiAffinity".into(),
            json!({"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": by_app, "topologyKey": t.topology_key}]}),
        );
    }
    if !affinity.is_empty() {
        spec.insert("affinity".into(), Value::Object(affinity));
    }
    if let Some(s) = rules.spread.first() {
        spec.insert(
            "topologySpreadConstraints".into(),
            json!([{"maxSkew": s.max_skew, "topologyKey": s.topology_key,
                "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": by_app}]),
        );
    }
    if !pod.tolerations.is_empty() {
        let tolerations: Vec<Value> = pod
            .tolerations
            .iter()
            .map(|t| {
                let mut m = Map::new();
                m.insert("key".into(), json!(t.key));
                match t.operator {
                    TolerationOperator::Exists => {
                        m.insert("operator".into(), json!("Exists"));
                    }
                    TolerationOperator::Equal => {
                        m.insert("operator".into(), json!("Equal"));
                        m.insert("value".into(), json!(t.value));
                    }
                }
                if let Some(e) = t.effect {
                    m.insert(
                        "effect".into(),
                        json!(match e {
                            TaintEffect::NoSchedule => "NoSchedule",
                            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
                            TaintEffect::NoExecute => "NoExecute",
                        }),
                    );
                }
                Value::Object(m)
            })
            .collect();
        spec.insert("tolerations".into(), json!(tolerations));
    }
    Ok(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod.key.name, "namespace": pod.key.namespace, "labels": labels},
        "spec": spec,
    }))
}

/// The manifests as one multi-document YAML text.
pub fn yaml(objects: &[Value]) -> Result<String, String> {
    let mut text = String::new();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            text.push_str("---\n");
        }
        text.push_str(&serde_saphyr::to_string(o).map_err(|e| e.to_string())?);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::plan::PlanParts;
    use edgeplane_core::manifests::{decode, parse_documents};
    use edgeplane_core::planner::instances::{self, Size};
    use edgeplane_core::snapshot::Snapshot;

    /// The written instance, read back as `edgeplane plan` reads it, is the instance: the
    /// same nodes, pods (with their rules between pods) and bindings with their rules.
    #[test]
    fn a_written_instance_reads_back_as_the_same_problem() {
        let mut inst = instances::generate(Size::M, 3);
        instances::add_pod_rules(&mut inst);
        let objects = manifests(&inst).unwrap_or_else(|e| panic!("{e}"));
        let text = yaml(&objects).unwrap_or_else(|e| panic!("{e}"));
        let docs = parse_documents("instance.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
        let objects: Vec<_> = docs
            .iter()
            .map(|d| decode(d).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let snapshot = Snapshot::from_objects(objects);
        let parts = PlanParts::build(&snapshot, &[], jiff::Timestamp::UNIX_EPOCH)
            .unwrap_or_else(|e| panic!("{e}"));
        let input = parts.input();
        assert_eq!(input.nodes, inst.nodes);
        assert_eq!(input.pending.len(), inst.pending.len());
        for (read, made) in input.pending.iter().zip(&inst.pending) {
            assert_eq!(read.key, made.key);
            assert_eq!(read.requests, made.requests);
            assert_eq!(read.node_selector, made.node_selector);
            assert_eq!(read.affinity, made.affinity);
            assert_eq!(read.tolerations, made.tolerations);
            assert_eq!(read.pod_rules, made.pod_rules, "{}", made.key.name);
        }
        let rules = |b: &[edgeplane_core::planner::PlanBinding]| {
            let mut v: Vec<(Vec<String>, Vec<String>)> = b
                .iter()
                .map(|b| {
                    (
                        b.targets.values().map(|t| t.to_string()).collect(),
                        b.rules
                            .iter()
                            .map(|r| format!("{}/{:?}", r.policy, r.spec))
                            .collect(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(rules(&input.bindings), rules(&inst.bindings));
    }
}
