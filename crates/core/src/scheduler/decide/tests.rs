//! Facts in, exact writes, events and retries out: no cluster, no clock.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use serde_json::json;

use super::*;
use crate::events::EventType;
use crate::manifests::{Object, decode, parse_documents};
use crate::planner::{Assignment, Summary, Unplaced};

fn object(yaml: &str) -> Object {
    let docs = parse_documents("test.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
    decode(&docs[0]).unwrap_or_else(|e| panic!("{e}"))
}

fn pod(name: &str, extra_metadata: &str, spec: &str) -> Arc<Pod> {
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: ar{extra_metadata}}}\nspec:\n  containers: [{{name: c, image: i}}]\n{spec}"
    );
    match object(&yaml) {
        Object::Pod(p) => Arc::new(*p),
        other => panic!("not a pod: {other:?}"),
    }
}

fn gated(name: &str) -> Arc<Pod> {
    pod(
        name,
        "",
        "  schedulingGates: [{name: constraint.edgeplane.io/planner}]\n",
    )
}

fn key(name: &str) -> PodKey {
    PodKey::new("ar", name)
}

fn node(name: &str) -> Node {
    match object(&format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\nstatus: {{allocatable: {{cpu: '4', memory: 8Gi, pods: '10'}}}}\n"
    )) {
        Object::Node(n) => *n,
        other => panic!("not a node: {other:?}"),
    }
}

fn view() -> ClusterView {
    ClusterView::build(None, &[node("n1"), node("n2")], &[], Timestamp::UNIX_EPOCH)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn plan(assignments: &[(&str, &str)], unplaced: &[(&str, &str)]) -> Plan {
    Plan {
        assignments: assignments
            .iter()
            .map(|(p, n)| Assignment {
                pod: key(p),
                node: n.to_string(),
            })
            .collect(),
        unplaced: unplaced
            .iter()
            .map(|(p, r)| Unplaced {
                pod: key(p),
                reason: r.to_string(),
            })
            .collect(),
        bindings: Vec::new(),
        summary: Summary::default(),
        warnings: Vec::new(),
    }
}

fn by_key(pods: &[Arc<Pod>]) -> HashMap<PodKey, Arc<Pod>> {
    pods.iter()
        .map(|p| (crate::planner::convert::pod_key(p), p.clone()))
        .collect()
}

fn ops(write: &Result<Write, String>) -> Value {
    match write {
        Ok(Write::Pin(patch)) => serde_json::to_value(patch).unwrap_or_default(),
        other => panic!("not a pin: {other:?}"),
    }
}

#[test]
fn gate_mode_pins_each_waiting_pod_and_leaves_out_pods_that_stopped_waiting() {
    let pinned_by_user = pod(
        "c",
        "",
        "  schedulingGates: [{name: constraint.edgeplane.io/planner}]\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In, values: [z1]}]}]}}}\n",
    );
    let pods = by_key(&[gated("a"), pod("b", "", ""), pinned_by_user]);
    let p = plan(
        &[("a", "n1"), ("b", "n1"), ("c", "n2"), ("gone", "n2")],
        &[],
    );
    let writes = placements(&p, Mode::Gate, &pods, &HashMap::new());

    let names: Vec<&str> = writes.iter().map(|w| w.pod.name.as_str()).collect();
    assert_eq!(
        names,
        ["a", "c"],
        "b lost its gate, gone is not in the cache"
    );
    assert_eq!(
        ops(&writes[0].write),
        json!([
            {"op": "test", "path": "/spec/schedulingGates/0/name", "value": "constraint.edgeplane.io/planner"},
            {"op": "add", "path": "/spec/affinity", "value": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}},
            {"op": "remove", "path": "/spec/schedulingGates/0"},
        ])
    );
    // Its own terms may only gain label requirements, and n2 has no hostname label.
    assert_eq!(
        writes[1].write,
        Err("it has required node affinity terms, to which a gated pod may only add label requirements, and node n2 has no kubernetes.io/hostname label to require".to_string())
    );

    let hostnames = HashMap::from([("n2", "host-2")]);
    let writes = placements(&p, Mode::Gate, &pods, &hostnames);
    assert_eq!(
        ops(&writes[1].write),
        json!([
            {"op": "test", "path": "/spec/schedulingGates/0/name", "value": "constraint.edgeplane.io/planner"},
            {"op": "add", "path": "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchExpressions/-",
             "value": {"key": "kubernetes.io/hostname", "operator": "In", "values": ["host-2"]}},
            {"op": "remove", "path": "/spec/schedulingGates/0"},
        ])
    );
}

#[test]
fn bind_mode_binds_and_clears_an_earlier_reason_first() {
    let annotated = pod(
        "a",
        ", uid: u-1, annotations: {constraint.edgeplane.io/unplaced-reason: no room}",
        "  schedulerName: edgeplane\n",
    );
    let pods = by_key(&[annotated, pod("b", "", "  schedulerName: edgeplane\n")]);
    let p = plan(&[("a", "n1"), ("b", "n2")], &[]);
    let writes = placements(&p, Mode::Bind, &pods, &HashMap::new());
    let bodies: Vec<(Value, bool)> = writes
        .iter()
        .map(|w| match &w.write {
            Ok(Write::Bind {
                binding,
                clear_reason,
            }) => (
                serde_json::to_value(binding).unwrap_or_default(),
                *clear_reason,
            ),
            other => panic!("not a binding: {other:?}"),
        })
        .collect();
    assert_eq!(
        bodies,
        [
            (
                json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "a", "namespace": "ar", "uid": "u-1"},
                       "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}),
                true
            ),
            (
                json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b", "namespace": "ar"},
                       "target": {"apiVersion": "v1", "kind": "Node", "name": "n2"}}),
                false
            ),
        ]
    );
}

#[test]
fn answers_become_events_retries_and_unplaced_reasons_in_order() {
    let pods = by_key(&[gated("a"), gated("b"), gated("c"), gated("d"), gated("e")]);
    let p = plan(
        &[("a", "n1"), ("b", "n1"), ("c", "n2"), ("d", "n2")],
        &[("e", "no node has room for 4 cpu")],
    );
    let view = view();
    let writes = placements(&p, Mode::Gate, &pods, &HashMap::new());
    let mut settlement = Settlement::new(&p, &view);
    let answers = [
        Some(Written::Done),
        Some(Written::Changed),
        Some(Written::Failed),
        None,
    ];
    let mut unpinnable = writes[3].clone();
    unpinnable.write = Err("it is special".into());
    let events: Vec<Option<EventSpec>> = writes[..3]
        .iter()
        .chain([&unpinnable])
        .zip(answers)
        .map(|(w, a)| settlement.placement(w, a))
        .collect();
    assert_eq!(
        events,
        [
            Some(EventSpec {
                type_: EventType::Normal,
                reason: "Planned",
                action: "Plan",
                note: "planned onto n1 with 3 other pods; no binding constrains it".into(),
            }),
            None,
            None,
            Some(EventSpec {
                type_: EventType::Warning,
                reason: "FailedPlanning",
                action: "Plan",
                note: "planned onto n2 but cannot be pinned there: it is special".into(),
            }),
        ]
    );
    settlement.unplaced_by_plan(
        &p,
        &[(key("f"), "spec.containers[0].resources: bad".into())],
    );
    assert_eq!(settlement.placed, [(key("a"), "n1".to_string())]);
    assert_eq!(settlement.changed, [key("b")]);
    assert_eq!(settlement.failed, [key("c")]);
    assert_eq!(
        settlement.unplaced,
        [
            (
                key("d"),
                "cannot be pinned to n2: it is special".to_string()
            ),
            (key("e"), "no node has room for 4 cpu".to_string()),
            (
                key("f"),
                "its spec cannot be planned: spec.containers[0].resources: bad".to_string()
            ),
        ]
    );
    // One failure holds the queue for everyone to retry; the changed pod comes along.
    assert_eq!(
        settlement.requeue(),
        Requeue::Backoff(vec![key("c"), key("b")])
    );
}

#[test]
fn unplaced_reasons_are_written_only_when_they_change() {
    let same = pod(
        "same",
        ", annotations: {constraint.edgeplane.io/unplaced-reason: no room}",
        "",
    );
    let pods = by_key(&[gated("new"), same, gated("other")]);
    let p = plan(
        &[],
        &[("new", "no room"), ("same", "no room"), ("other", "taints")],
    );
    let view = view();
    let mut settlement = Settlement::new(&p, &view);
    settlement.unplaced_by_plan(&p, &[]);
    let annotations = settlement.annotations(&pods);
    let written: Vec<(&str, &Value)> = annotations
        .iter()
        .map(|a| (a.pod.name.as_str(), &a.patch))
        .collect();
    assert_eq!(
        written,
        [
            (
                "new",
                &json!({"metadata": {"annotations": {"constraint.edgeplane.io/unplaced-reason": "no room"}}})
            ),
            (
                "other",
                &json!({"metadata": {"annotations": {"constraint.edgeplane.io/unplaced-reason": "taints"}}})
            ),
        ]
    );
    assert_eq!(
        settlement.annotated(&annotations[0], Written::Done),
        Some(EventSpec {
            type_: EventType::Warning,
            reason: "Unplaceable",
            action: "Plan",
            note: "no room".into(),
        })
    );
    assert_eq!(
        settlement.annotated(&annotations[1], Written::Changed),
        None
    );
    assert_eq!(
        settlement.requeue(),
        Requeue::Settled {
            changed: vec![key("other")]
        }
    );
    assert_eq!(CHANGED_RETRY, Duration::from_millis(200));
}

#[test]
fn a_lost_lease_stops_the_writes_and_replans_the_pod() {
    let pods = by_key(&[gated("a"), gated("b")]);
    let p = plan(&[("a", "n1")], &[("b", "no room")]);
    let view = view();
    let writes = placements(&p, Mode::Gate, &pods, &HashMap::new());
    let mut settlement = Settlement::new(&p, &view);
    assert_eq!(
        settlement.placement(&writes[0], Some(Written::NotLeader)),
        None
    );
    settlement.unplaced_by_plan(&p, &[]);
    assert!(settlement.lost_lease);
    assert!(settlement.annotations(&pods).is_empty());
    assert_eq!(
        settlement.requeue(),
        Requeue::Settled {
            changed: vec![key("a")]
        }
    );
}

#[test]
fn refusals_are_classified_by_status() {
    assert_eq!(Written::refused(Some(404)), Written::Gone);
    assert_eq!(Written::refused(Some(409)), Written::Changed);
    assert_eq!(Written::refused(Some(422)), Written::Changed);
    assert_eq!(Written::refused(Some(429)), Written::Failed);
    assert_eq!(Written::refused(None), Written::Failed);
}
