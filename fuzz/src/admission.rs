//! The webhook's AdmissionReview handling: any body is answered or refused with an error,
//! never a panic; an answer allows the request, carries the request's uid, and a patch it
//! returns applies cleanly to the pod it was asked about.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use edgeplane_api::ConstraintPolicyOffer;
use edgeplane_core::gate::Liveness;
use edgeplane_runtime::webhook::{GateOptions, review};
use serde_json::{Value, json};

pub fn run(data: &[u8]) {
    let offers = offers();
    let alive = Liveness::Alive {
        holder: "scheduler-0".into(),
        until: jiff::Timestamp::MAX,
    };
    let options = GateOptions::default();
    for scheduler in [None, Some(&alive)] {
        let Ok((answer, outcome)) = review(data, &offers, &options, scheduler) else {
            continue;
        };
        // serde skips the fields AdmissionReview does not have without checking that they
        // are UTF-8 (found by this target: a byte 0xfb in an unknown field), so an answered
        // body may not parse as a whole; the API server never sends such a body.
        let Ok(request) = serde_json::from_slice::<Value>(data) else {
            continue;
        };
        let response = &answer["response"];
        assert_eq!(response["allowed"], true, "the webhook never refuses");
        assert_eq!(
            response["uid"], request["request"]["uid"],
            "the answer names another request"
        );
        let Some(patch) = response["patch"].as_str() else {
            assert_ne!(outcome, "gated", "gated without a patch");
            continue;
        };
        let bytes = BASE64.decode(patch).expect("the patch is base64");
        let patch: json_patch::Patch =
            serde_json::from_slice(&bytes).expect("the patch is a JSON patch");
        let mut pod = request["request"]["object"].clone();
        json_patch::patch(&mut pod, &patch)
            .unwrap_or_else(|e| panic!("the patch does not apply to the pod: {e}"));
        let gates = pod["spec"]["schedulingGates"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            gates
                .iter()
                .any(|g| g["name"] == edgeplane_api::names::PLANNER_GATE),
            "a patch that does not gate the pod: {pod}"
        );
    }
}

/// One offer whose pod target selects `app=web` in namespace `default`.
fn offers() -> Vec<Arc<ConstraintPolicyOffer>> {
    let offer: ConstraintPolicyOffer = serde_json::from_value(json!({
        "apiVersion": "constraint.edgeplane.io/v1alpha1",
        "kind": "ConstraintPolicyOffer",
        "metadata": {"name": "near-users", "namespace": "default"},
        "spec": {
            "targets": [
                {"name": "app", "kind": "Pod", "labelSelector": {"matchLabels": {"app": "web"}}},
                {"name": "users", "kind": "Site", "sites": ["stadium"]}
            ],
            "policies": ["latency"]
        }
    }))
    .expect("the fixed offer decodes");
    vec![Arc::new(offer)]
}
