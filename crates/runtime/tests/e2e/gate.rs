//! Issue 17, item 5: gated pods must not wait forever. The gate webhook gates only while a
//! planning scheduler holds a fresh Lease; the gate watchdog of `edgeplane controller`
//! releases pods that have waited at the gate for its timeout with no scheduler alive, so
//! that kube-scheduler (the embedded cluster's stand-in) places them. Everything on the
//! cluster's virtual clock; the scheduler elects itself through the Lease
//! `edgeplane-scheduler` and "dies" by crashing (its Lease then expires 15s after its last
//! renewal).

use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::names::{GATE_REMOVED_ANNOTATION, PLANNER_GATE};
use edgeplane_cluster::EmbeddedCluster;
use edgeplane_runtime::Caches;
use edgeplane_runtime::watchdog::{SchedulerWatch, WatchdogConfig};
use edgeplane_runtime::webhook::GateAdmission;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Setup};

/// Users at the stadium, 1ms from edge-1 and 3ms from edge-2. `web` pods must reach them
/// within 5ms (any node will do); `far` pods within 100us (no node does: the planner
/// leaves them at the gate, Unplaceable, while kube-scheduler would place them anywhere).
const WORLD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ar}
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  siteLabel: topology.kubernetes.io/zone
  sites: [{name: stadium}]
  links:
  - {from: stadium, to: edge-1, latency: 1ms}
  - {from: stadium, to: edge-2, latency: 3ms}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: near, namespace: ar}
spec:
  rules: [{name: latency, request: 2ms, limit: 5ms}]
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: impossible, namespace: ar}
spec:
  rules: [{name: latency, request: 50us, limit: 100us}]
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: web, namespace: ar}
spec:
  targets:
  - {name: app, kind: Pod, labelSelector: {matchLabels: {app: web}}}
  - {name: users, kind: Site, sites: [stadium]}
  policies: [near]
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: far, namespace: ar}
spec:
  targets:
  - {name: app, kind: Pod, labelSelector: {matchLabels: {app: far}}}
  - {name: users, kind: Site, sites: [stadium]}
  policies: [impossible]
"#;

/// The cluster, with pod creates going through the webhook's mutation, which reads the
/// scheduler's Lease as the webhook of `edgeplane controller` does.
struct Env {
    cluster: EmbeddedCluster,
    client: Client,
    gate: GateAdmission,
    shutdown: CancellationToken,
}

impl Env {
    async fn start() -> Env {
        let (cluster, gate) = harness::gated_cluster(vec![
            harness::site_node("edge-1-a", "edge-1"),
            harness::site_node("edge-2-a", "edge-2"),
        ])
        .await;
        cluster.load_yaml(WORLD).await.unwrap();
        let client = cluster.client();
        let shutdown = CancellationToken::new();
        let caches = Caches::start(&client, &shutdown);
        gate.attach(&caches.offers);
        let watch = SchedulerWatch::start(
            &client,
            harness::LEASE_NAMESPACE,
            "edgeplane-scheduler",
            Arc::new(cluster.clock()),
            shutdown.clone(),
        );
        caches.wait_ready().await;
        watch.wait_ready().await;
        gate.attach_scheduler(watch);
        let offers = caches.offers.clone();
        assert!(
            harness::eventually(Duration::from_secs(10), || {
                let offers = offers.clone();
                async move { offers.list().len() == 2 }
            })
            .await
        );
        Env {
            cluster,
            client,
            gate,
            shutdown,
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "ar")
    }

    /// Creates a bare pod `name` with label `app`; `gated`: with the planner's gate in its
    /// own spec (as a template may carry it).
    async fn create(&self, name: &str, app: &str, gated: bool) -> Pod {
        let mut spec = json!({"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": "1"}}}]});
        if gated {
            spec["schedulingGates"] = json!([{"name": PLANNER_GATE}]);
        }
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ar", "labels": {"app": app}},
            "spec": spec
        }))
        .unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .unwrap()
    }

    async fn get(&self, name: &str) -> Pod {
        self.pods().get(name).await.unwrap()
    }

    async fn gated(&self, name: &str) -> bool {
        self.get(name)
            .await
            .spec
            .and_then(|s| s.scheduling_gates)
            .is_some_and(|g| g.iter().any(|g| g.name == PLANNER_GATE))
    }

    async fn running_on(&self, name: &str) -> Option<String> {
        let pod = self.get(name).await;
        let running = pod.status.as_ref()?.phase.as_deref() == Some("Running");
        running.then(|| pod.spec?.node_name).flatten()
    }

    /// `(reason, note)` of the events about pod `name`, oldest first.
    async fn events_of(&self, name: &str) -> Vec<(String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), "ar");
        let mut events = api.list(&ListParams::default()).await.unwrap().items;
        events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        events
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }

    /// When the scheduler's Lease expires (its last renewal + its duration).
    async fn lease_expiry(&self) -> jiff::Timestamp {
        let lease: Lease = Api::namespaced(self.client.clone(), harness::LEASE_NAMESPACE)
            .get("edgeplane-scheduler")
            .await
            .unwrap();
        let spec = lease.spec.unwrap();
        let seconds = i64::from(spec.lease_duration_seconds.unwrap());
        spec.renew_time
            .unwrap()
            .0
            .checked_add(jiff::SignedDuration::from_secs(seconds))
            .unwrap()
    }

    fn now(&self) -> jiff::Timestamp {
        edgeplane_core::clock::Clock::now(&self.cluster.clock())
    }

    /// Sleeps (virtual time) until `at`.
    async fn sleep_until(&self, at: jiff::Timestamp) {
        let wait = at.duration_since(self.now());
        if let Ok(wait) = Duration::try_from(wait) {
            tokio::time::sleep(wait).await;
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.cluster.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_webhook_gates_only_while_a_scheduler_holds_a_fresh_lease() {
    let env = Env::start().await;

    // No scheduler has ever run (no Lease): not gated, placed by kube-scheduler.
    env.create("web-0", "web", false).await;
    assert!(!env.gated("web-0").await);
    assert!(
        harness::eventually(Duration::from_secs(10), || async {
            env.running_on("web-0").await.is_some()
        })
        .await
    );
    assert_eq!(env.gate.admitted("no-scheduler"), 1);

    // A scheduler takes the Lease: pods are gated and planned.
    let scheduler = harness::start_elected_scheduler(&env.cluster, "scheduler-a").await;
    assert!(harness::eventually(Duration::from_secs(10), || async { scheduler.is_leader() }).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.create("web-1", "web", false).await;
    assert!(
        env.gated("web-1").await,
        "gated while the scheduler is alive"
    );
    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            env.running_on("web-1").await.as_deref() == Some("edge-1-a")
        })
        .await
    );
    assert!(
        env.events_of("web-1")
            .await
            .iter()
            .any(|(reason, _)| reason == "Planned")
    );
    assert_eq!(env.gate.admitted("gated"), 1);

    // It crashes. Until its Lease expires (15s after its last renewal) pods are still
    // gated (a new leader could take over); after, they are not.
    scheduler.crash();
    let expiry = env.lease_expiry().await;
    env.create("web-2", "web", false).await;
    assert!(env.gated("web-2").await);
    env.sleep_until(expiry).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    env.create("web-3", "web", false).await;
    assert!(!env.gated("web-3").await, "no live scheduler: not gated");
    assert!(
        harness::eventually(Duration::from_secs(10), || async {
            env.running_on("web-3").await.is_some()
        })
        .await
    );
    assert_eq!(env.gate.admitted("no-scheduler"), 2);
    assert_eq!(env.gate.admitted("gated"), 2);
    // A pod that no offer targets is no business of the gate either way.
    env.create("other", "other", false).await;
    assert_eq!(env.gate.admitted("unchanged"), 1);

    // Another scheduler takes over: gating resumes, and the pod gated meanwhile is planned.
    let scheduler = harness::start_elected_scheduler(&env.cluster, "scheduler-b").await;
    assert!(harness::eventually(Duration::from_secs(30), || async { scheduler.is_leader() }).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.create("web-4", "web", false).await;
    assert!(env.gated("web-4").await);
    for name in ["web-2", "web-4"] {
        assert!(
            harness::eventually(Duration::from_secs(30), || async {
                env.running_on(name).await.is_some()
            })
            .await,
            "{name}"
        );
    }
    scheduler.stop().await;
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_watchdog_releases_gated_pods_when_no_scheduler_is_alive() {
    let env = Env::start().await;
    let controller = harness::start_controller(
        &env.cluster,
        Setup::new("controller").watchdog(WatchdogConfig::default()),
    )
    .await;
    let scheduler = harness::start_elected_scheduler(&env.cluster, "scheduler-a").await;
    assert!(harness::eventually(Duration::from_secs(10), || async { scheduler.is_leader() }).await);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A pod the planner cannot place waits at the gate, Unplaceable. While the scheduler
    // is alive, it waits as long as it takes: ten minutes, twice the timeout.
    env.create("far-0", "far", false).await;
    assert!(env.gated("far-0").await);
    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            env.events_of("far-0")
                .await
                .iter()
                .any(|(reason, _)| reason == "Unplaceable")
        })
        .await
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(env.gated("far-0").await);
    assert!(env.running_on("far-0").await.is_none());
    assert!(
        !env.events_of("far-0")
            .await
            .iter()
            .any(|(reason, _)| reason == "GateRemoved")
    );

    // The scheduler crashes. far-0 is released 5 minutes after its Lease expired, not
    // before; a pod gated by its own spec after the crash, 5 minutes after its creation.
    scheduler.crash();
    let expiry = env.lease_expiry().await;
    env.sleep_until(
        expiry
            .checked_add(jiff::SignedDuration::from_secs(60))
            .unwrap(),
    )
    .await;
    env.create("self-gated", "web", true).await;
    let created = env.now();
    env.sleep_until(
        expiry
            .checked_add(jiff::SignedDuration::from_secs(299))
            .unwrap(),
    )
    .await;
    assert!(env.gated("far-0").await, "released before the timeout");
    assert!(
        harness::eventually(Duration::from_secs(2), || async {
            !env.gated("far-0").await
        })
        .await,
        "not released at the timeout"
    );
    let pod = env.get("far-0").await;
    let reason = pod.annotations().get(GATE_REMOVED_ANNOTATION).cloned();
    let reason = reason.expect("the annotation says why");
    assert!(
        reason.starts_with("no planning scheduler alive for 5m while the pod waited at the gate: the planning scheduler's Lease edgeplane-system/edgeplane-scheduler was last renewed by scheduler-a at "),
        "{reason}"
    );
    let events = env.events_of("far-0").await;
    let removed: Vec<&(String, String)> = events
        .iter()
        .filter(|(reason, _)| reason == "GateRemoved")
        .collect();
    assert_eq!(removed.len(), 1, "{events:?}");
    assert!(
        removed[0].1.starts_with(
            "the planner's gate is removed so that kube-scheduler places the pod without a plan: no planning scheduler alive for 5m"
        ) && removed[0].1.ends_with("(--gate-timeout 5m)"),
        "{}",
        removed[0].1
    );
    // kube-scheduler places it.
    assert!(
        harness::eventually(Duration::from_secs(10), || async {
            env.running_on("far-0").await.is_some()
        })
        .await
    );
    // The pod gated by its own spec: 5 minutes after its creation.
    assert!(env.gated("self-gated").await);
    env.sleep_until(
        created
            .checked_add(jiff::SignedDuration::from_secs(299))
            .unwrap(),
    )
    .await;
    assert!(env.gated("self-gated").await);
    assert!(
        harness::eventually(Duration::from_secs(2), || async {
            !env.gated("self-gated").await
        })
        .await
    );
    assert!(
        harness::eventually(Duration::from_secs(10), || async {
            env.running_on("self-gated").await.is_some()
        })
        .await
    );
    let metrics = controller.base.ctx.metrics.encode();
    assert!(
        metrics.contains("edgeplane_gate_watchdog_released_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edgeplane_gate_scheduler_alive 0"),
        "{metrics}"
    );
    // The watchdog wrote two patches and two events, nothing else.
    let pod_writes: Vec<String> = controller
        .writes
        .entries()
        .into_iter()
        .filter(|w| w.contains("/pods/"))
        .collect();
    assert_eq!(pod_writes.len(), 2, "{pod_writes:?}");
    controller.stop().await;
    env.stop().await;
}
