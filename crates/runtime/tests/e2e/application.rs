//! The whole control plane on one application: `edgeplane controller` (offers, bindings)
//! and `edgeplane scheduler` (gate mode, with the webhook's mutation as the embedded
//! cluster's pod admission) run side by side on examples/metro-plan, as they would on a
//! real cluster. The application's pods are gated on creation, planned together after the
//! quiet period, ungated and bound by the default-scheduler stand-in; the binding
//! controller then finds the bindings the planner promised; a topology change turns some
//! of them into Violation and their status says why.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{Compliance, ConstraintPolicyOffer};
use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, PodAdmission};
use edgeplane_runtime::component::{Base, BaseConfig};
use edgeplane_runtime::scheduler::queue::Triggers;
use edgeplane_runtime::scheduler::{self, Mode, Scheduler, SchedulerConfig};
use edgeplane_runtime::webhook::{self, GateAdmission, GateOptions};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use crate::harness::{self, Setup};

const NODES: &str = include_str!("../../../../examples/metro-plan/nodes.yaml");
const TOPOLOGY: &str = include_str!("../../../../examples/metro-plan/topology.yaml");
const POLICIES: &str = include_str!("../../../../examples/metro-plan/policies.yaml");
const OFFERS: &str = include_str!("../../../../examples/metro-plan/offers.yaml");

/// The AR application of examples/metro-plan without its KubeVirt router and video pods
/// (the embedded cluster runs no KubeVirt): four renderers and the game state.
const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: ar-render, namespace: ar}
spec:
  replicas: 4
  selector: {matchLabels: {app: ar-render}}
  template:
    metadata: {labels: {app: ar-render}}
    spec:
      containers:
      - {name: render, image: ar/render:1.4, resources: {requests: {cpu: "3", memory: 8Gi}}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: game-state, namespace: ar}
spec:
  serviceName: game-state
  replicas: 1
  selector: {matchLabels: {app: game-state}}
  template:
    metadata: {labels: {app: game-state}}
    spec:
      containers:
      - {name: state, image: ar/game-state:2.0, resources: {requests: {cpu: "2", memory: 4Gi}}}
"#;

/// A cluster whose pod creates go through the gate webhook's mutation, as they would
/// with the chart's MutatingWebhookConfiguration.
async fn gated_cluster(gate: &GateAdmission) -> EmbeddedCluster {
    let hook = gate.clone();
    let config = ClusterConfig::default()
        .start_time(harness::START.parse().unwrap())
        .admission(PodAdmission::new(move |pod| {
            hook.admit(pod);
        }));
    let cluster = EmbeddedCluster::start(config).await;
    let crds: Vec<serde_json::Value> = edgeplane_api::crdgen::all()
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    cluster.apply_objects(crds).await.unwrap();
    cluster
        .load_yaml(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {}}}\n",
            harness::LEASE_NAMESPACE
        ))
        .await
        .unwrap();
    cluster
}

/// `edgeplane scheduler` in gate mode, quiet period 2 s, max wait 30 s.
async fn start_scheduler(cluster: &EmbeddedCluster, gate: &GateAdmission) -> Base {
    let config = BaseConfig::new(scheduler::COMPONENT).clock(Arc::new(cluster.clock()));
    let mut base = Base::start(cluster.client(), config).await.unwrap();
    // The webhook serves from the scheduler's offer cache.
    gate.attach(&base.caches.offers);
    let scheduler = Scheduler::new(
        base.ctx.clone(),
        base.caches.clone(),
        base.views.clone(),
        SchedulerConfig {
            mode: Mode::Gate,
            triggers: Triggers {
                quiet_period: Duration::from_secs(2),
                max_wait: Duration::from_secs(30),
            },
            lease_namespace: harness::LEASE_NAMESPACE.into(),
            ..SchedulerConfig::default()
        },
    );
    base.spawn(scheduler.run());
    base
}

async fn pods(client: &kube::Client) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), "ar")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

fn node_of(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

fn running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// Bindings of the namespace by offer, then compliance.
async fn census(client: &kube::Client) -> BTreeMap<(String, Compliance), usize> {
    let mut out = BTreeMap::new();
    for binding in harness::bindings(client, "ar").await {
        if let Some(status) = &binding.status {
            *out.entry((binding.spec.offer.clone(), status.compliance))
                .or_default() += 1;
        }
    }
    out
}

async fn plan_runs(client: &kube::Client) -> usize {
    Api::<Event>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("PlanRun"))
        .count()
}

#[tokio::test(start_paused = true)]
async fn an_application_is_gated_planned_together_and_its_bindings_hold_until_the_network_changes()
{
    let gate = GateAdmission::new(GateOptions::default());
    let cluster = gated_cluster(&gate).await;
    let client = cluster.client();
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ar}\n";
    for yaml in [namespace, NODES, TOPOLOGY, POLICIES, OFFERS] {
        cluster.load_yaml(yaml).await.unwrap();
    }
    let controller = harness::start_controller(&cluster, Setup::new("controller-a")).await;
    let scheduler = start_scheduler(&cluster, &gate).await;
    // The gate is only added for pods some offer targets: wait until the webhook's cache
    // has the three offers before the application arrives.
    assert!(
        harness::eventually(Duration::from_secs(10), || async {
            scheduler.caches.offers.list().len() == 3
        })
        .await
    );

    cluster.load_yaml(APP).await.unwrap();
    assert!(
        harness::eventually(Duration::from_secs(1), || async {
            let pods = pods(&client).await;
            pods.len() == 5 && pods.iter().all(webhook::has_gate)
        })
        .await,
        "every pod of the application is gated on creation"
    );

    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            let pods = pods(&client).await;
            pods.len() == 5 && pods.iter().all(|p| running(p) && !webhook::has_gate(p))
        })
        .await,
        "planned, ungated, bound and running"
    );
    assert_eq!(
        plan_runs(&client).await,
        1,
        "the group is planned in one run"
    );
    // The optimal plan (`edgeplane plan -f examples/metro-plan` gives the same): the state
    // and two renderers on edge-2-a, two renderers on edge-3-a next to the stadium.
    let mut placement: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pod in pods(&client).await {
        placement
            .entry(node_of(&pod))
            .or_default()
            .push(pod.labels()["app"].clone());
    }
    for apps in placement.values_mut() {
        apps.sort();
    }
    assert_eq!(
        placement,
        BTreeMap::from([
            (
                "edge-2-a".to_string(),
                vec!["ar-render".into(), "ar-render".into(), "game-state".into()]
            ),
            (
                "edge-3-a".to_string(),
                vec!["ar-render".to_string(), "ar-render".into()]
            ),
        ])
    );

    // The binding controller agrees with the planner: near the users every renderer is
    // Compliant; to the state, the two renderers one hop away are in Limit (2ms > 1ms).
    let expected = BTreeMap::from([
        (("ar-latency".to_string(), Compliance::Compliant), 4),
        (("ar-state".to_string(), Compliance::Compliant), 2),
        (("ar-state".to_string(), Compliance::Limit), 2),
    ]);
    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            census(&client).await == expected
        })
        .await,
        "{:?}",
        census(&client).await
    );
    let offers = Api::<ConstraintPolicyOffer>::namespaced(client.clone(), "ar");
    let counts = |name: &'static str| {
        let offers = offers.clone();
        async move {
            let status = offers.get(name).await.unwrap().status.unwrap_or_default();
            (status.binding_count, status.compliant_binding_count)
        }
    };
    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            counts("ar-latency").await == (4, 4) && counts("ar-state").await == (4, 2)
        })
        .await
    );
    assert_eq!(
        counts("ar-router").await,
        (0, 0),
        "no router pod, no binding"
    );

    // The stadium's link to edge-2 and edge-2's link to edge-3 degrade to 20 ms: the
    // renderers on edge-2 are now at least 20 ms from the users (limit 5 ms); those on
    // edge-3 are unaffected.
    let degraded = TOPOLOGY
        .replace(
            "{from: stadium, to: edge-2, latency: 1ms",
            "{from: stadium, to: edge-2, latency: 20ms",
        )
        .replace(
            "{from: edge-2, to: edge-3, latency: 2ms",
            "{from: edge-2, to: edge-3, latency: 20ms",
        );
    assert_eq!(degraded.matches("20ms").count(), 2);
    cluster.load_yaml(&degraded).await.unwrap();
    assert!(
        harness::eventually(Duration::from_secs(15), || async {
            let c = census(&client).await;
            c.get(&("ar-latency".to_string(), Compliance::Violation)) == Some(&2)
                && c.get(&("ar-latency".to_string(), Compliance::Compliant)) == Some(&2)
        })
        .await,
        "{:?}",
        census(&client).await
    );
    for binding in harness::bindings_of(&client, "ar", "ar-latency").await {
        let status = binding.status.clone().unwrap();
        if status.compliance != Compliance::Violation {
            continue;
        }
        let reason = status.first_reason.clone().unwrap_or_default();
        assert!(
            reason.starts_with("latency 2")
                && reason.contains("(edge-2-a) and users (stadium) is worse than the limit 5ms"),
            "{reason}"
        );
        assert!(status.violating_since.is_some());
    }
    // Running pods are not re-planned by the scheduler: moving them is the descheduler's
    // decision.
    assert_eq!(plan_runs(&client).await, 1);
    assert!(pods(&client).await.iter().all(running));

    controller.stop().await;
    scheduler.stop().await;
}
