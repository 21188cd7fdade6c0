//! Offers -> bindings on the metro: one binding per combination, counted in the offer's
//! status; pods coming and going; no writes when nothing changed; a restart that neither
//! duplicates nor loses a binding; policy and topology status.

use std::collections::BTreeMap;
use std::time::Duration;

use edgeplane_api::{Compliance, ConstraintPolicy, NetworkTopology};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::harness::{self, Setup};

const OFFERS: [&str; 4] = ["ar-game-state", "ar-video", "ar-render-node", "ar-stadium"];

fn census(bindings: &[edgeplane_api::ConstraintPolicyBinding]) -> BTreeMap<Compliance, usize> {
    let mut counts = BTreeMap::new();
    for b in bindings {
        *counts
            .entry(b.status.as_ref().map(|s| s.compliance).unwrap_or_default())
            .or_default() += 1;
    }
    counts
}

#[tokio::test(start_paused = true)]
async fn one_binding_per_combination_evaluated_and_counted() {
    let cluster = harness::metro().await;
    let client = cluster.client();
    let controller = harness::start_controller(&cluster, Setup::new("replica-a")).await;
    assert!(
        harness::eventually(Duration::from_secs(60), || harness::all_evaluated(
            &client, "ar", 12
        ))
        .await,
        "12 bindings evaluated: {:?}",
        harness::bindings(&client, "ar").await.len()
    );
    // The same figures as `edgeplane check -f examples/metro`.
    let all = harness::bindings(&client, "ar").await;
    assert_eq!(
        census(&all),
        BTreeMap::from([
            (Compliance::Compliant, 5),
            (Compliance::Limit, 4),
            (Compliance::Violation, 3)
        ])
    );
    for b in &all {
        let owner = &b.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("ConstraintPolicyOffer", b.spec.offer.as_str())
        );
        assert_eq!(
            b.labels().get("constraint.edgeplane.io/offer"),
            Some(&b.spec.offer)
        );
    }
    // Offer status counts bindings and compliant bindings (once the counts settle).
    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            let mut compliant = 0;
            for name in OFFERS {
                let status = harness::offer(&client, "ar", name)
                    .await
                    .status
                    .unwrap_or_default();
                if status.binding_count != 3 {
                    return false;
                }
                compliant += status.compliant_binding_count;
            }
            compliant == 5
        })
        .await
    );
    let stadium = harness::offer(&client, "ar", "ar-stadium")
        .await
        .status
        .unwrap();
    assert_eq!(
        stadium.binding_selector,
        "constraint.edgeplane.io/offer=ar-stadium"
    );
    assert_eq!(stadium.conditions[0].type_, "Ready");
    assert_eq!(stadium.conditions[0].status, "True");
    assert_eq!(stadium.conditions[0].message, "3 bindings");

    // The renderer far from the stadium is in Violation, and says why.
    let far = harness::binding_with(&client, "ar", "ar-stadium", "renderer", "ar-render-2")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(far.compliance, Compliance::Violation);
    assert_eq!(
        far.first_reason.as_deref(),
        Some(
            "latency 11.5ms between renderer (edge-9-a) and users (stadium) is worse than the limit 5ms"
        )
    );
    assert!(far.violating_since.is_some());

    // Events tell the story on the offer and on the binding.
    let offer_events =
        harness::events_about(&client, "ar", "ConstraintPolicyOffer", "ar-stadium").await;
    assert_eq!(
        offer_events
            .iter()
            .filter(|(r, _)| r == "BindingCreated")
            .count(),
        3,
        "{offer_events:?}"
    );
    assert!(offer_events.iter().any(|(_, m)| {
        m.starts_with("created binding ar-stadium-")
            && m.contains("renderer=Pod ar/ar-render-2, users=Site stadium")
    }));

    // Policy and topology status.
    let policy = Api::<ConstraintPolicy>::namespaced(client.clone(), "ar")
        .get("near-users")
        .await
        .unwrap();
    let status = policy.status.unwrap();
    assert_eq!(status.rule_count, Some(2));
    assert_eq!(
        (
            status.conditions[0].type_.as_str(),
            status.conditions[0].status.as_str()
        ),
        ("Valid", "True")
    );
    let topology = Api::<NetworkTopology>::all(client.clone())
        .get("default")
        .await
        .unwrap();
    let status = topology.status.unwrap();
    assert_eq!(
        status.link_count,
        Some(i32::try_from(topology.spec.links.len()).unwrap())
    );
    assert_eq!(status.site_count, Some(20));
    assert_eq!(
        status.conditions[0].status, "True",
        "{:?}",
        status.conditions
    );
    controller.stop().await;
}

#[tokio::test(start_paused = true)]
async fn pods_coming_and_going_create_and_delete_their_bindings() {
    let cluster = harness::metro().await;
    let client = cluster.client();
    let controller = harness::start_controller(&cluster, Setup::new("replica-a")).await;
    assert!(
        harness::eventually(Duration::from_secs(60), || harness::all_evaluated(
            &client, "ar", 12
        ))
        .await
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ar");
    pods.delete("ar-render-2", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        harness::eventually(Duration::from_secs(60), || async {
            let all = harness::bindings(&client, "ar").await;
            all.len() == 8
                && all.iter().all(|b| {
                    b.spec
                        .targets
                        .get("renderer")
                        .is_none_or(|t| t.name != "ar-render-2")
                })
        })
        .await,
        "the 4 bindings of ar-render-2 are deleted"
    );
    let events = harness::events_about(&client, "ar", "ConstraintPolicyOffer", "ar-stadium").await;
    assert!(
        events.iter().any(|(r, m)| r == "BindingDeleted"
            && m.contains("renderer (Pod ar/ar-render-2) no longer exists or no longer matches")),
        "{events:?}"
    );
    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            harness::offer(&client, "ar", "ar-stadium")
                .await
                .status
                .is_some_and(|s| s.binding_count == 2)
        })
        .await
    );

    // A new renderer, placed near the stadium: four new bindings, evaluated.
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "ar-render-3", "namespace": "ar", "labels": {"app": "ar-render"}},
        "spec": {"nodeName": "edge-1-b", "containers": [{"name": "render", "image": "ar/render:1"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    assert!(
        harness::eventually(Duration::from_secs(60), || harness::all_evaluated(
            &client, "ar", 12
        ))
        .await
    );
    let near = harness::binding_with(&client, "ar", "ar-stadium", "renderer", "ar-render-3")
        .await
        .unwrap();
    assert_eq!(near.status.unwrap().compliance, Compliance::Compliant);
    controller.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_offer_naming_a_site_the_topology_lacks_says_which_and_binds_the_others() {
    let cluster = harness::metro().await;
    let client = cluster.client();
    let controller = harness::start_controller(&cluster, Setup::new("replica-a")).await;
    let offer: edgeplane_api::ConstraintPolicyOffer = serde_json::from_value(json!({
        "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicyOffer",
        "metadata": {"name": "ar-fans", "namespace": "ar"},
        "spec": {
            "targets": [
                {"name": "renderer", "kind": "Pod", "labelSelector": {"matchLabels": {"app": "ar-render"}}},
                {"name": "users", "kind": "Site", "sites": ["stadium", "fan-zone"]}
            ],
            "policies": ["near-users"], "period": "10s", "grace": "1m", "violationPolicy": "Ignore"
        }
    }))
    .unwrap();
    Api::<edgeplane_api::ConstraintPolicyOffer>::namespaced(client.clone(), "ar")
        .create(&PostParams::default(), &offer)
        .await
        .unwrap();
    let said = |status: &edgeplane_api::ConstraintPolicyOfferStatus| {
        status.conditions.first().map(|c| {
            (
                c.status.clone(),
                c.reason.clone(),
                c.message.clone(),
                status.binding_count,
            )
        })
    };
    let want = (
        "False".to_string(),
        "SiteNotFound".to_string(),
        "not in the network topology: spec.targets[1].sites: fan-zone (3 bindings for the sites it has)"
            .to_string(),
        3,
    );
    assert!(
        harness::eventually(Duration::from_secs(60), || async {
            harness::offer(&client, "ar", "ar-fans")
                .await
                .status
                .as_ref()
                .and_then(said)
                == Some(want.clone())
        })
        .await,
        "{:?}",
        harness::offer(&client, "ar", "ar-fans").await.status
    );
    controller.stop().await;
}

#[tokio::test(start_paused = true)]
async fn nothing_changed_no_writes_and_a_restart_duplicates_and_loses_nothing() {
    let cluster = harness::metro().await;
    let client = cluster.client();
    let first = harness::start_controller(&cluster, Setup::new("replica-a")).await;
    assert!(
        harness::eventually(Duration::from_secs(60), || harness::all_evaluated(
            &client, "ar", 12
        ))
        .await
    );
    // Let the offer counts settle and the graces of the bindings in Violation (at most 5m,
    // then up to a 1m period) elapse, which changes their GraceElapsed condition; then
    // watch for 10 minutes: every binding is looked at at least twice, every offer
    // resynced twice, and nothing is written.
    tokio::time::sleep(Duration::from_secs(420)).await;
    let settled = first.writes.count();
    assert!(
        settled > 12,
        "the first replica wrote bindings and statuses"
    );
    let evaluations_before = evaluations(&first);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(
        first.writes.since(settled),
        Vec::<String>::new(),
        "no writes when nothing changed"
    );
    // Every binding is still looked at (at least every 5 minutes once nothing changes);
    // with nothing changed and only built-in rules, those evaluations are skipped.
    assert!(
        evaluations(&first) >= evaluations_before + 12 * 2,
        "bindings kept being looked at"
    );
    assert!(skipped(&first) > 0, "unchanged evaluations were skipped");

    let identity = |all: Vec<edgeplane_api::ConstraintPolicyBinding>| {
        let mut ids: Vec<(String, String, String)> = all
            .into_iter()
            .map(|b| {
                (
                    b.name_any(),
                    b.uid().unwrap_or_default(),
                    b.resource_version().unwrap_or_default(),
                )
            })
            .collect();
        ids.sort();
        ids
    };
    let before = identity(harness::bindings(&client, "ar").await);
    first.stop().await;

    let second = harness::start_controller(&cluster, Setup::new("replica-b")).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        second.writes.entries(),
        Vec::<String>::new(),
        "a restart writes nothing"
    );
    assert_eq!(
        identity(harness::bindings(&client, "ar").await),
        before,
        "same bindings, same uids, untouched"
    );
    second.stop().await;
}

/// Evaluations, skipped ones included.
fn evaluations(component: &harness::Component) -> u64 {
    counter(component, "edgeplane_binding_evaluations_total ")
        + counter(component, "edgeplane_binding_evaluations_skipped_total ")
}

fn skipped(component: &harness::Component) -> u64 {
    counter(component, "edgeplane_binding_evaluations_skipped_total ")
}

fn counter(component: &harness::Component, prefix: &str) -> u64 {
    component
        .base
        .ctx
        .metrics
        .encode()
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or_default() as u64
}
