//! Binding evaluation: topology and policy changes re-evaluate, a provider outage is an
//! Error (never a Violation), and the descheduler's mitigation timestamp survives.

use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{Compliance, ConstraintPolicy, ConstraintPolicyBinding};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::harness::{self, Setup};

#[tokio::test(start_paused = true)]
async fn a_slower_link_turns_a_compliant_binding_into_violation() {
    let cluster = harness::metro().await;
    let client = cluster.client();
    let controller = harness::start_controller(&cluster, Setup::new("replica-a")).await;
    let near = || harness::binding_with(&client, "ar", "ar-stadium", "renderer", "ar-render-0");
    assert!(
        harness::eventually(Duration::from_secs(60), || async {
            near()
                .await
                .and_then(|b| b.status)
                .is_some_and(|s| s.compliance == Compliance::Compliant)
        })
        .await
    );
    let before = near().await.unwrap();

    // The stadium's link to edge-1 degrades from 1ms to 12ms: the best path is now through
    // edge-2 and metro-1 (3 + 3 + 2 = 8ms), past the 5ms limit.
    let degraded = harness::METRO_TOPOLOGY.replace(
        "{from: stadium, to: edge-1, latency: 1ms",
        "{from: stadium, to: edge-1, latency: 12ms",
    );
    assert_ne!(degraded, harness::METRO_TOPOLOGY);
    let changed_at = cluster.clock().now();
    cluster.load_yaml(&degraded).await.unwrap();
    assert!(
        harness::eventually(Duration::from_secs(5), || async {
            near()
                .await
                .and_then(|b| b.status)
                .is_some_and(|s| s.compliance == Compliance::Violation)
        })
        .await,
        "re-evaluated on the topology change, well before the 10s period"
    );
    let after = near().await.unwrap();
    assert_eq!(after.uid(), before.uid());
    let status = after.status.clone().unwrap();
    let reason =
        "latency 8ms between renderer (edge-1-a) and users (stadium) is worse than the limit 5ms";
    assert_eq!(status.first_reason.as_deref(), Some(reason));
    let since = status.violating_since.clone().unwrap().0;
    assert!(
        since
            >= changed_at
                .checked_sub(jiff::SignedDuration::from_secs(1))
                .unwrap()
    );
    assert_eq!(
        status.last_compliance_change_timestamp.map(|t| t.0),
        Some(since)
    );
    let compliant = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Compliant")
        .unwrap();
    assert_eq!(
        (compliant.status.as_str(), compliant.reason.as_str()),
        ("False", "Violation")
    );

    // The Event follows the status write: wait for it rather than race it.
    // The Event is on the binding: its note does not name it again.
    let note = format!("Compliant -> Violation: {reason}");
    let expected = ("ComplianceChanged".to_string(), note);
    assert!(
        harness::eventually(Duration::from_secs(5), || async {
            harness::events_about(&client, "ar", "ConstraintPolicyBinding", &after.name_any())
                .await
                .contains(&expected)
        })
        .await,
        "{:?}",
        harness::events_about(&client, "ar", "ConstraintPolicyBinding", &after.name_any()).await
    );
    // The renderer hears of it too, with its role: `kubectl describe pod` tells the story.
    let pod_note = format!(
        "binding {} (renderer): Compliant -> Violation: {reason}",
        after.name_any()
    );
    let on_pod = ("ComplianceChanged".to_string(), pod_note);
    assert!(
        harness::eventually(Duration::from_secs(5), || async {
            harness::events_about(&client, "ar", "Pod", "ar-render-0")
                .await
                .contains(&on_pod)
        })
        .await,
        "{:?}",
        harness::events_about(&client, "ar", "Pod", "ar-render-0").await
    );

    // Repaired: back to Compliant, violatingSince cleared.
    cluster.load_yaml(harness::METRO_TOPOLOGY).await.unwrap();
    assert!(
        harness::eventually(Duration::from_secs(5), || async {
            near().await.and_then(|b| b.status).is_some_and(|s| {
                s.compliance == Compliance::Compliant && s.violating_since.is_none()
            })
        })
        .await
    );
    controller.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_policy_change_reevaluates_its_bindings() {
    let cluster = harness::metro().await;
    let client = cluster.client();
    let controller = harness::start_controller(&cluster, Setup::new("replica-a")).await;
    let far = || harness::binding_with(&client, "ar", "ar-stadium", "renderer", "ar-render-2");
    assert!(
        harness::eventually(Duration::from_secs(60), || async {
            far()
                .await
                .and_then(|b| b.status)
                .is_some_and(|s| s.compliance == Compliance::Violation)
        })
        .await
    );
    // 11.5ms is within a 20ms limit: Limit.
    Api::<ConstraintPolicy>::namespaced(client.clone(), "ar")
        .patch(
            "near-users",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"rules": [
                {"name": "latency", "request": "2ms", "limit": "20ms"},
                {"name": "jitter", "request": "1ms", "limit": "2ms"}
            ]}})),
        )
        .await
        .unwrap();
    assert!(
        harness::eventually(Duration::from_secs(5), || async {
            far()
                .await
                .and_then(|b| b.status)
                .is_some_and(|s| s.compliance == Compliance::Limit)
        })
        .await,
        "re-evaluated on the policy change, before the 10s period"
    );

    // A rule no provider knows: the policy says so, and its bindings are in Error.
    Api::<ConstraintPolicy>::namespaced(client.clone(), "ar")
        .patch(
            "near-users",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"rules": [{"name": "gpu-temperature", "request": "70"}]}}),
            ),
        )
        .await
        .unwrap();
    assert!(
        harness::eventually(Duration::from_secs(5), || async {
            let policy = Api::<ConstraintPolicy>::namespaced(client.clone(), "ar")
                .get("near-users")
                .await
                .unwrap();
            policy.status.is_some_and(|s| {
                s.conditions.first().is_some_and(|c| {
                    c.status == "False"
                        && c.message
                            .starts_with("spec.rules[0].name: no provider for rule gpu-temperature")
                })
            })
        })
        .await
    );
    assert!(
        harness::eventually(Duration::from_secs(5), || async {
            far().await.and_then(|b| b.status).is_some_and(|s| {
                s.compliance == Compliance::Error
                    && s.first_reason.as_deref() == Some("no provider for rule gpu-temperature")
            })
        })
        .await
    );
    controller.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_provider_outage_leaves_bindings_in_error_never_violation() {
    let cluster = harness::metro().await;
    let client = cluster.client();
    // A port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let rewrite_to = url.clone();
    let setup = Setup::new("replica-a").rewrite(Arc::new(move |_| rewrite_to.clone()));
    let controller = harness::start_controller(&cluster, setup).await;
    assert!(
        harness::eventually(Duration::from_secs(60), || harness::all_evaluated(
            &client, "ar", 12
        ))
        .await
    );

    // An external latency provider registers itself, and is down.
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "latency-probe", "namespace": "ar",
                     "labels": {"constraint.edgeplane.io/provider-latency": "enabled"}},
        "spec": {"ports": [{"name": "grpc", "port": 50051}]}
    }))
    .unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), "ar");
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let latency_offers = ["ar-game-state", "ar-stadium"];
    let errored = || async {
        let all = harness::bindings(&client, "ar").await;
        all.iter()
            .filter(|b| latency_offers.contains(&b.spec.offer.as_str()))
            .all(|b| {
                b.status.as_ref().is_some_and(|s| {
                    s.compliance == Compliance::Error
                        && s.first_reason
                            .as_deref()
                            .is_some_and(|r| r.starts_with(&format!("provider at {url}")))
                })
            })
    };
    assert!(
        harness::eventually(Duration::from_secs(30), errored).await,
        "{:#?}",
        harness::bindings(&client, "ar").await
    );
    // Error, not Violation, however long it lasts; other offers are untouched.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let all = harness::bindings(&client, "ar").await;
    for b in &all {
        let status = b.status.as_ref().unwrap();
        if latency_offers.contains(&b.spec.offer.as_str()) {
            assert_eq!(status.compliance, Compliance::Error, "{}", b.name_any());
            assert!(status.violating_since.is_none());
        } else {
            assert_ne!(status.compliance, Compliance::Error, "{}", b.name_any());
        }
    }
    let one = all.iter().find(|b| b.spec.offer == "ar-stadium").unwrap();
    let events =
        harness::events_about(&client, "ar", "ConstraintPolicyBinding", &one.name_any()).await;
    assert!(
        events.iter().any(|(r, m)| r == "ProviderError"
            && m.contains("rule latency of policy near-users: provider at")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "ComplianceChanged" && m.contains("-> Error: provider at")),
        "{events:?}"
    );

    // The provider deregisters: back to the built-in answers.
    services
        .delete("latency-probe", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            harness::bindings(&client, "ar").await.iter().all(|b| {
                b.status
                    .as_ref()
                    .is_some_and(|s| s.compliance != Compliance::Error)
            })
        })
        .await
    );
    controller.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_descheduler_s_mitigation_timestamp_survives_status_writes() {
    let cluster = harness::metro().await;
    let client = cluster.client();
    let controller = harness::start_controller(&cluster, Setup::new("replica-a")).await;
    assert!(
        harness::eventually(Duration::from_secs(60), || harness::all_evaluated(
            &client, "ar", 12
        ))
        .await
    );
    let b = harness::binding_with(&client, "ar", "ar-stadium", "renderer", "ar-render-0")
        .await
        .unwrap();
    let api: Api<ConstraintPolicyBinding> = Api::namespaced(client.clone(), "ar");
    api.patch_status(
        &b.name_any(),
        &PatchParams::apply("edgeplane-descheduler").force(),
        &Patch::Apply(json!({
            "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicyBinding",
            "metadata": {"name": b.name_any()},
            "status": {"lastMitigatedTimestamp": "2025-06-01T00:00:05Z"}
        })),
    )
    .await
    .unwrap();
    let degraded = harness::METRO_TOPOLOGY.replace(
        "{from: stadium, to: edge-1, latency: 1ms",
        "{from: stadium, to: edge-1, latency: 12ms",
    );
    cluster.load_yaml(&degraded).await.unwrap();
    assert!(
        harness::eventually(Duration::from_secs(5), || async {
            api.get(&b.name_any())
                .await
                .unwrap()
                .status
                .is_some_and(|s| s.compliance == Compliance::Violation)
        })
        .await
    );
    let status = api.get(&b.name_any()).await.unwrap().status.unwrap();
    assert_eq!(
        status
            .last_mitigated_timestamp
            .map(|t| t.0.to_string())
            .as_deref(),
        Some("2025-06-01T00:00:05Z")
    );
    controller.stop().await;
}
