//! The webhook's decisions and its AdmissionReview answers.
use super::*;
use edgeplane_api::{ConstraintPolicyOfferSpec, OfferTarget};
use k8s_openapi::api::core::v1::{PodSchedulingGate, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

fn offer(
    namespace: &str,
    name: &str,
    selectors: &[Option<&[(&str, &str)]>],
) -> Arc<ConstraintPolicyOffer> {
    let mut targets: Vec<OfferTarget> = selectors
        .iter()
        .map(|s| OfferTarget {
            name: None,
            api_version: None,
            kind: TargetKind::Pod,
            mode: None,
            label_selector: s.map(|labels| LabelSelector {
                match_labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                match_expressions: None,
            }),
            sites: None,
        })
        .collect();
    targets.push(OfferTarget {
        name: Some("users".into()),
        api_version: None,
        kind: TargetKind::Site,
        mode: None,
        label_selector: None,
        sites: Some(vec!["stadium".into()]),
    });
    let mut o = ConstraintPolicyOffer::new(
        name,
        ConstraintPolicyOfferSpec {
            targets,
            policies: vec!["near".into()],
            period: "10s".into(),
            grace: "1m".into(),
            violation_policy: Default::default(),
            mitigation_grace: None,
        },
    );
    o.metadata.namespace = Some(namespace.into());
    Arc::new(o)
}

fn pod(labels: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("p".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec::default()),
        status: None,
    }
}

fn ops(patch: &json_patch::Patch) -> Value {
    serde_json::to_value(patch).unwrap_or_default()
}

#[test]
fn gates_pods_that_an_offer_targets_in_their_namespace() {
    let offers = [offer("ar", "near-users", &[Some(&[("app", "render")])])];
    let o = GateOptions::default();
    let patch = mutate(&pod(&[("app", "render")]), "ar", &offers, &o);
    assert_eq!(
        patch.as_ref().map(ops),
        Some(json!([{"op": "add", "path": "/spec/schedulingGates",
                     "value": [{"name": "constraint.edgeplane.io/planner"}]}]))
    );
    // Other labels, other namespaces: not targeted.
    assert!(mutate(&pod(&[("app", "web")]), "ar", &offers, &o).is_none());
    assert!(mutate(&pod(&[("app", "render")]), "shop", &offers, &o).is_none());
    // A Pod target without a selector selects every pod of the namespace.
    let all = [offer("ar", "all", &[None])];
    assert!(mutate(&pod(&[]), "ar", &all, &o).is_some());
}

#[test]
fn keeps_other_gates_and_never_gates_twice() {
    let offers = [offer("ar", "near-users", &[Some(&[("app", "render")])])];
    let o = GateOptions::default();
    let mut p = pod(&[("app", "render")]);
    if let Some(spec) = p.spec.as_mut() {
        spec.scheduling_gates = Some(vec![PodSchedulingGate {
            name: "example.com/quota".into(),
        }]);
    }
    let patch = mutate(&p, "ar", &offers, &o);
    assert_eq!(
        patch.as_ref().map(ops),
        Some(json!([{"op": "add", "path": "/spec/schedulingGates/-",
                     "value": {"name": "constraint.edgeplane.io/planner"}}]))
    );
    if let Some(spec) = p.spec.as_mut() {
        spec.scheduling_gates = Some(vec![PodSchedulingGate {
            name: PLANNER_GATE.into(),
        }]);
    }
    assert!(
        mutate(&p, "ar", &offers, &o).is_none(),
        "users may gate pods themselves"
    );
}

#[test]
fn leaves_bound_pods_and_other_schedulers_alone() {
    let offers = [offer("ar", "near-users", &[Some(&[("app", "render")])])];
    let o = GateOptions::default();
    let mut bound = pod(&[("app", "render")]);
    if let Some(spec) = bound.spec.as_mut() {
        spec.node_name = Some("edge-1-a".into());
    }
    assert!(mutate(&bound, "ar", &offers, &o).is_none());
    for (scheduler, gated) in [
        ("default-scheduler", true),
        ("", true),
        ("edgeplane", false),
        ("volcano", false),
    ] {
        let mut p = pod(&[("app", "render")]);
        if let Some(spec) = p.spec.as_mut() {
            spec.scheduler_name = Some(scheduler.into());
        }
        assert_eq!(
            mutate(&p, "ar", &offers, &o).is_some(),
            gated,
            "{scheduler}"
        );
    }
}

#[test]
fn bad_selectors_select_nothing() {
    let mut bad = (*offer("ar", "bad", &[Some(&[("app", "render")])])).clone();
    if let Some(s) = bad.spec.targets[0].label_selector.as_mut() {
        s.match_expressions = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                key: "tier".into(),
                operator: "Near".into(),
                values: None,
            },
        ]);
    }
    let offers = [Arc::new(bad)];
    assert!(
        mutate(
            &pod(&[("app", "render")]),
            "ar",
            &offers,
            &GateOptions::default()
        )
        .is_none()
    );
}

#[test]
fn gate_value_patches_json_in_place() {
    let offers = [offer("ar", "near-users", &[Some(&[("app", "render")])])];
    let mut value = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "r-1", "namespace": "ar", "labels": {"app": "render"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]}
    });
    let options = GateOptions::default();
    assert_eq!(gate_value(&mut value, &offers, &options, None), "gated");
    assert_eq!(value["spec"]["schedulingGates"][0]["name"], PLANNER_GATE);
    assert_eq!(gate_value(&mut value, &offers, &options, None), "unchanged");
    let mut junk = json!({"metadata": {"name": 7}});
    assert_eq!(gate_value(&mut junk, &offers, &options, None), "invalid");
}

fn admission_review(operation: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "ar",
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    }))
    .unwrap_or_default()
}

#[test]
fn reviews_answer_with_a_json_patch_and_the_request_uid() {
    let offers = [offer("ar", "near-users", &[Some(&[("app", "render")])])];
    let body = admission_review(
        "CREATE",
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"generateName": "render-", "labels": {"app": "render"}},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    );
    let (answer, outcome) =
        review(&body, &offers, &GateOptions::default(), None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome, "gated");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    let response = &answer["response"];
    assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    // The patch travels base64-encoded.
    let patch = BASE64
        .decode(response["patch"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let patch: Value = serde_json::from_slice(&patch).unwrap_or_default();
    assert_eq!(
        patch,
        json!([{"op": "add", "path": "/spec/schedulingGates",
                "value": [{"name": "constraint.edgeplane.io/planner"}]}])
    );

    // An update, or a pod nobody targets: allowed, unchanged.
    let update = admission_review(
        "UPDATE",
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "x", "labels": {"app": "render"}}, "spec": {"containers": []}}),
    );
    let (answer, outcome) =
        review(&update, &offers, &GateOptions::default(), None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome, "unchanged");
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none());

    // A pod that does not decode is admitted, not refused.
    let odd = admission_review(
        "CREATE",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
               "spec": {"containers": "not a list"}}),
    );
    let (answer, outcome) =
        review(&odd, &offers, &GateOptions::default(), None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome, "invalid");
    assert_eq!(answer["response"]["allowed"], true);

    // Not a review at all: an error (the API server then applies failurePolicy).
    assert!(review(b"{}", &offers, &GateOptions::default(), None).is_err());
    assert!(review(b"nonsense", &offers, &GateOptions::default(), None).is_err());
}

fn dead() -> Liveness {
    Liveness::Dead {
        since: None,
        why: edgeplane_core::gate::Death::NoLease {
            lease: "edgeplane-system/edgeplane-scheduler".into(),
        },
    }
}

#[test]
fn no_gate_while_no_scheduler_is_alive() {
    let offers = [offer("ar", "near-users", &[Some(&[("app", "render")])])];
    let options = GateOptions::default();
    let alive = Liveness::Alive {
        holder: "s".into(),
        until: jiff::Timestamp::MAX,
    };
    let p = pod(&[("app", "render")]);
    assert!(matches!(
        admit(&p, "ar", &offers, &options, Some(&alive)),
        Admission::Gate(_)
    ));
    // Not known yet (the Lease was not read): gated, as before.
    assert!(matches!(
        admit(&p, "ar", &offers, &options, None),
        Admission::Gate(_)
    ));
    let admission = admit(&p, "ar", &offers, &options, Some(&dead()));
    assert_eq!(
        admission,
        Admission::NoScheduler {
            offer: "ar/near-users".into(),
            why: "the planning scheduler's Lease edgeplane-system/edgeplane-scheduler does not exist (no scheduler with leader election runs)".into()
        }
    );
    assert_eq!(admission.outcome(), "no-scheduler");
    // A pod no offer targets is unchanged either way.
    assert_eq!(
        admit(
            &pod(&[("app", "other")]),
            "ar",
            &offers,
            &options,
            Some(&dead())
        ),
        Admission::Unchanged
    );

    // The admission response says so; kubectl prints warnings.
    let body = admission_review(
        "CREATE",
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "render-1", "labels": {"app": "render"}},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    );
    let (answer, outcome) =
        review(&body, &offers, &options, Some(&dead())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome, "no-scheduler");
    let response = &answer["response"];
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none());
    assert_eq!(
        response["warnings"],
        json!([
            "edgeplane: pod ar/render-1 is not gated for the planner although offer ar/near-users targets it: no planning scheduler is alive (the planning scheduler's Lease edgeplane-system/edgeplane-scheduler does not exist (no scheduler with leader election runs)); kube-scheduler places it without a plan"
        ])
    );
}

#[test]
fn gates_network_function_pods_and_launcher_pods_without_an_offer() {
    let o = GateOptions::default();
    // A VM replica's launcher pod carries the NF's labels (KubeVirt copies the
    // template's): it waits for the planner, which places its lane as a unit.
    let launcher = pod(&[
        ("kubevirt.io", "virt-launcher"),
        ("network.edgeplane.io/network-function", "fw"),
        ("network.edgeplane.io/replica", "0"),
    ]);
    assert_eq!(gating_function(&launcher, &o).as_deref(), Some("fw"));
    assert!(mutate(&launcher, "upf", &[], &o).is_some());
    match admit(&launcher, "upf", &[], &o, Some(&dead())) {
        Admission::NoScheduler { offer, .. } => {
            assert_eq!(offer, "upf/fw (a network function's lane)")
        }
        other => panic!("{other:?}"),
    }
    // Bound, or another scheduler's: left alone; other pods: no offer, no gate.
    let mut bound = launcher.clone();
    if let Some(spec) = bound.spec.as_mut() {
        spec.node_name = Some("e1".into());
    }
    assert!(mutate(&bound, "upf", &[], &o).is_none());
    let mut other = launcher.clone();
    if let Some(spec) = other.spec.as_mut() {
        spec.scheduler_name = Some("volcano".into());
    }
    assert!(mutate(&other, "upf", &[], &o).is_none());
    assert!(mutate(&pod(&[("app", "web")]), "upf", &[], &o).is_none());
}
