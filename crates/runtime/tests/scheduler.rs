//! End to end: the planning scheduler on the embedded cluster, on virtual time.
//!
//! The pods are gated by the real webhook mutation (`webhook::GateAdmission` as the
//! embedded cluster's pod admission hook), planned by the real scheduler loop, and bound
//! by the embedded cluster's default-scheduler stand-in (gate mode) or through
//! `pods/binding` (bind mode). The binding controller is not on this branch: the tests
//! judge the resulting bindings with the built-in providers directly (`evaluate_rule` on
//! the final state), which is what that controller does.

#[path = "support/chart.rs"]
mod chart;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::names::{PLANNER_GATE, UNPLACED_ANNOTATION};
use edgeplane_api::{Compliance, ConstraintPolicy, ConstraintPolicyOffer, NetworkTopology};
use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, NodeSpec, PodAdmission, UserInfo};
use edgeplane_core::evaluate::{ClusterView, evaluate_rule};
use edgeplane_core::offers::{Candidate, Inventory};
use edgeplane_runtime::leader::{self, LeaseConfig};
use edgeplane_runtime::metrics::Metrics;
use edgeplane_runtime::scheduler::queue::Triggers;
use edgeplane_runtime::scheduler::{self, Mode, Scheduler, SchedulerConfig};
use edgeplane_runtime::webhook::{self, GateAdmission, GateOptions};
use edgeplane_runtime::{Caches, Context, ViewCache};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const LEASE_NAMESPACE: &str = "edgeplane-system";
const ZONE: &str = "topology.kubernetes.io/zone";

/// A small metro: users at the stadium, two edge sites next to it, a metro and a region
/// behind. edge-1 is closest to the stadium and has room for the whole application.
const WORLD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ar}
---
apiVersion: v1
kind: Namespace
metadata: {name: edgeplane-system}
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  siteLabel: topology.kubernetes.io/zone
  sites: [{name: stadium, labels: {kind: users}}]
  links:
  - {from: stadium, to: edge-1, latency: 1ms, jitter: 100us, bandwidth: 10Gbps}
  - {from: stadium, to: edge-2, latency: 1500us, jitter: 100us, bandwidth: 10Gbps}
  - {from: edge-1, to: metro-1, latency: 3ms, jitter: 300us, bandwidth: 10Gbps}
  - {from: edge-2, to: metro-1, latency: 3ms, jitter: 300us, bandwidth: 10Gbps}
  - {from: metro-1, to: region-1, latency: 8ms, jitter: 800us, bandwidth: 100Gbps}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: near-users, namespace: ar}
spec:
  rules:
  - {name: latency, request: 2ms, limit: 5ms}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: near-state, namespace: ar}
spec:
  rules:
  - {name: latency, request: 1ms, limit: 4ms}
  - {name: bandwidth, request: 5Gbps, limit: 1Gbps}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: ar-latency, namespace: ar}
spec:
  targets:
  - {name: renderer, kind: Pod, labelSelector: {matchLabels: {app: ar-render}}}
  - {name: users, kind: Site, sites: [stadium]}
  policies: [near-users]
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: ar-state, namespace: ar}
spec:
  targets:
  - {name: renderer, kind: Pod, labelSelector: {matchLabels: {app: ar-render}}}
  - {name: state, kind: Pod, labelSelector: {matchLabels: {app: game-state}}}
  policies: [near-state]
"#;

/// The AR application: four renderers (a Deployment) and the game state (a StatefulSet
/// that must stay off the region: existing required affinity, which the planner's node is
/// ANDed into). The users' site is the stadium.
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
      containers: [{name: render, image: ar/render:1.4, resources: {requests: {cpu: "2", memory: 1Gi}}}]
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
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: topology.kubernetes.io/zone, operator: NotIn, values: [region-1]}]
      containers: [{name: state, image: ar/state:2.0, resources: {requests: {cpu: "2", memory: 1Gi}}}]
"#;

fn node(name: &str, site: &str, cpu: &str) -> NodeSpec {
    NodeSpec::new(name)
        .cpu(cpu)
        .memory("32Gi")
        .label(ZONE, site)
}

fn metro_nodes() -> Vec<NodeSpec> {
    vec![
        node("edge-1-a", "edge-1", "8"),
        node("edge-1-b", "edge-1", "4"),
        node("edge-2-a", "edge-2", "4"),
        node("metro-1-a", "metro-1", "16"),
        node("region-1-a", "region-1", "64"),
    ]
}

struct Env {
    cluster: EmbeddedCluster,
    client: Client,
    caches: Caches,
    shutdown: CancellationToken,
}

impl Env {
    /// A cluster with the metro nodes, the edgeplane CRDs, the world, and caches whose
    /// offers feed the gate admission (so pods created from now on are gated as the
    /// webhook would gate them).
    async fn start(nodes: Vec<NodeSpec>) -> Env {
        let gate = GateAdmission::new(GateOptions::default());
        let hook = gate.clone();
        let mut config = ClusterConfig::default().admission(PodAdmission::new(move |pod| {
            hook.admit(pod);
        }));
        for n in nodes {
            config = config.with_node(n);
        }
        let cluster = EmbeddedCluster::start(config).await;
        let crds = edgeplane_api::crdgen::all()
            .into_iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        cluster
            .apply_objects(crds)
            .await
            .unwrap_or_else(|e| panic!("installing CRDs: {e}"));
        cluster
            .load_yaml(WORLD)
            .await
            .unwrap_or_else(|e| panic!("loading the world: {e}"));
        let client = cluster.client();
        let shutdown = CancellationToken::new();
        let caches = Caches::start(&client, &shutdown);
        gate.attach(&caches.offers);
        caches.wait_ready().await;
        let env = Env {
            cluster,
            client,
            caches,
            shutdown,
        };
        let offers = env.caches.offers.clone();
        wait_for("the offers in the cache", Duration::from_secs(10), || {
            let offers = offers.clone();
            async move { offers.list().len() == 2 }
        })
        .await;
        env
    }

    fn context(&self, metrics: Arc<Metrics>, shutdown: CancellationToken) -> Context {
        Context::new(self.client.clone(), scheduler::COMPONENT)
            .with_clock(Arc::new(self.cluster.clock()))
            .with_metrics(metrics)
            .with_shutdown(shutdown)
    }

    /// A scheduler on the shared caches (always the leader).
    fn start_scheduler(&self, config: SchedulerConfig) -> Arc<Metrics> {
        self.start_scheduler_with(config, self.client.clone())
    }

    /// A scheduler that writes through `client` (one acting as its service account).
    fn start_scheduler_with(&self, config: SchedulerConfig, client: Client) -> Arc<Metrics> {
        let metrics = Arc::new(Metrics::new());
        let ctx = Context::new(client, scheduler::COMPONENT)
            .with_clock(Arc::new(self.cluster.clock()))
            .with_metrics(metrics.clone())
            .with_shutdown(self.shutdown.clone());
        let views = ViewCache::start(
            &self.caches.nodes,
            &self.caches.pods,
            &self.caches.topologies,
            ctx.clock.clone(),
            metrics.clone(),
            self.shutdown.clone(),
        );
        let scheduler = Scheduler::new(ctx, self.caches.clone(), views, config);
        tokio::spawn(scheduler.run());
        metrics
    }

    async fn pods(&self) -> Vec<Pod> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), "ar");
        api.list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    async fn events(&self, reason: &str) -> Vec<Event> {
        let api: Api<Event> = Api::all(self.client.clone());
        let mut events: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .collect();
        events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        events
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.cluster.shutdown().await;
    }
}

fn config(mode: Mode, quiet: u64, max_wait: u64) -> SchedulerConfig {
    SchedulerConfig {
        mode,
        triggers: Triggers {
            quiet_period: Duration::from_secs(quiet),
            max_wait: Duration::from_secs(max_wait),
        },
        lease_namespace: LEASE_NAMESPACE.into(),
        ..SchedulerConfig::default()
    }
}

/// Polls `check` every 100 ms of virtual time until it holds; panics after `limit`.
async fn wait_for<F, Fut>(what: &str, limit: Duration, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_gated(pod: &Pod) -> bool {
    webhook::has_gate(pod)
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

fn is_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

fn site_of(nodes: &[Node], name: &str) -> String {
    nodes
        .iter()
        .find(|n| n.name_any() == name)
        .and_then(|n| n.labels().get(ZONE).cloned())
        .unwrap_or_default()
}

/// Judges every binding the offers have in the cluster now, with the built-in providers:
/// binding name -> compliance.
async fn judge_bindings(client: &Client, clock: jiff::Timestamp) -> BTreeMap<String, Compliance> {
    let nodes: Vec<Node> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let pods: Vec<Pod> = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let topology = Api::<NetworkTopology>::all(client.clone())
        .get("default")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let policies: Vec<ConstraintPolicy> = Api::<ConstraintPolicy>::namespaced(client.clone(), "ar")
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let offers: Vec<ConstraintPolicyOffer> =
        Api::<ConstraintPolicyOffer>::namespaced(client.clone(), "ar")
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
    let view =
        ClusterView::build(Some(&topology), &nodes, &pods, clock).unwrap_or_else(|e| panic!("{e}"));
    let inventory = Inventory {
        pods: pods.iter().filter_map(Candidate::from_pod).collect(),
        sites: edgeplane_core::sites::site_candidates(Some(&topology), &nodes),
        functions: Default::default(),
    };
    let mut out = BTreeMap::new();
    for offer in &offers {
        let rules: Vec<_> = offer
            .spec
            .policies
            .iter()
            .flat_map(|p| {
                policies
                    .iter()
                    .find(|q| q.name_any() == *p)
                    .map(|q| q.spec.rules.clone())
                    .unwrap_or_default()
            })
            .collect();
        for binding in
            edgeplane_core::offers::expand(offer, &inventory).unwrap_or_else(|e| panic!("{e}"))
        {
            let outcomes: Vec<_> = rules
                .iter()
                .map(|r| evaluate_rule(&view, &binding.targets, r))
                .collect();
            let worst = outcomes
                .iter()
                .map(|o| o.compliance)
                .max_by_key(|c| match c {
                    Compliance::Pending => 0,
                    Compliance::Compliant => 1,
                    Compliance::Limit => 2,
                    Compliance::Violation => 3,
                    Compliance::Error => 4,
                })
                .unwrap_or(Compliance::Pending);
            out.insert(binding.name, worst);
        }
    }
    out
}

fn required_terms(pod: &Pod) -> serde_json::Value {
    serde_json::to_value(
        pod.spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
    )
    .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn gated_pods_are_planned_together_after_the_quiet_period() {
    let env = Env::start(metro_nodes()).await;
    let metrics = env.start_scheduler(config(Mode::Gate, 2, 30));
    let started = env.cluster.clock().now();
    env.cluster
        .load_yaml(APP)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // A pod no offer targets is not gated: the stand-in binds it at once.
    env.cluster
        .load_yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: ar, labels: {app: web}}\nspec: {containers: [{name: c, image: nginx}]}\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Within the quiet period: five gated pods, nothing planned.
    wait_for("five gated pods", Duration::from_secs(1), || async {
        env.pods().await.iter().filter(|p| is_gated(p)).count() == 5
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pods = env.pods().await;
    assert_eq!(pods.iter().filter(|p| is_gated(p)).count(), 5);
    assert!(
        pods.iter()
            .filter(|p| p.labels().get("app").is_some_and(|a| a != "web"))
            .all(|p| node_of(p).is_none()),
        "nothing is bound before the quiet period"
    );
    let web = pods.iter().find(|p| p.name_any() == "web");
    assert!(web.is_some_and(|p| !is_gated(p) && node_of(p).is_some()));
    assert!(env.events("PlanRun").await.is_empty());

    // After it: one plan run, every pod ungated with its node in its affinity, bound by
    // the stand-in and running.
    wait_for(
        "the application running",
        Duration::from_secs(30),
        || async {
            let pods = env.pods().await;
            pods.len() == 6 && pods.iter().all(is_running)
        },
    )
    .await;
    let runs = env.events("PlanRun").await;
    assert_eq!(runs.len(), 1, "one plan run for the whole group: {runs:?}");
    let run_at = runs[0].event_time.as_ref().map(|t| t.0).unwrap_or(started);
    let pods = env.pods().await;
    // The pods were created at `started` (creation timestamps have whole seconds only):
    // planned once the quiet period had passed without another arrival.
    let waited = run_at.as_millisecond() - started.as_millisecond();
    assert!(
        (2000..2500).contains(&waited),
        "planned {waited} ms after the last arrival"
    );
    let note = runs[0].note.clone().unwrap_or_default();
    assert!(
        note.starts_with("plan run 1 (quiet period): 5 pods, 5 placed, 0 unplaced"),
        "{note}"
    );

    let nodes: Vec<Node> = Api::<Node>::all(env.client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    for pod in pods.iter().filter(|p| p.name_any() != "web") {
        let node = node_of(pod).unwrap_or_default();
        // The whole application fits next to the stadium, with the state.
        assert_eq!(
            site_of(&nodes, node),
            "edge-1",
            "{} on {node}",
            pod.name_any()
        );
        assert!(!is_gated(pod));
        let terms = required_terms(pod);
        if pod.labels().get("app").map(String::as_str) == Some("game-state") {
            // Existing terms keep theirs and gain the node's hostname.
            assert_eq!(
                terms,
                json!({"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": ZONE, "operator": "NotIn", "values": ["region-1"]},
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]})
            );
        } else {
            assert_eq!(
                terms,
                json!({"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [node]}]}]})
            );
        }
    }
    let planned = env.events("Planned").await;
    assert_eq!(planned.len(), 5);
    let renderer_note = planned
        .iter()
        .filter_map(|e| e.note.clone())
        .find(|n| n.contains("ar-latency-"))
        .unwrap_or_default();
    assert!(
        renderer_note.starts_with("planned onto edge-1-")
            && renderer_note.contains("(site edge-1) with 4 other pods:"),
        "{renderer_note}"
    );
    assert!(
        renderer_note.contains("latency 1ms (Compliant)"),
        "{renderer_note}"
    );

    // The bindings of the application are Compliant where the pods run.
    let bindings = judge_bindings(&env.client, env.cluster.clock().now()).await;
    assert_eq!(bindings.len(), 8, "{bindings:?}");
    assert!(
        bindings.values().all(|c| *c == Compliance::Compliant),
        "{bindings:?}"
    );
    let text = metrics.encode();
    assert_eq!(plan_runs(&text), 1.0, "{text}");
    assert!(
        text.contains("edgeplane_scheduler_plan_runs_total{trigger=\"quiet-period\"} 1"),
        "five pods at once: planned after the quiet period\n{text}"
    );
    assert!(
        text.contains("edgeplane_scheduler_pods_planned_total 5"),
        "{text}"
    );
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn continuous_arrivals_are_planned_at_the_max_wait() {
    let env = Env::start(metro_nodes()).await;
    env.start_scheduler(config(Mode::Gate, 2, 10));
    let api: Api<Pod> = Api::namespaced(env.client.clone(), "ar");
    let started = env.cluster.clock().now();
    // A renderer every second or so for 15 s (at 0 s, 1.5 s, 2.5 s, ... 14.5 s): the
    // quiet period never passes.
    for i in 0..15 {
        let pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("r-{i}"), "namespace": "ar", "labels": {"app": "ar-render"}},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        api.create(&PostParams::default(), &pod)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let pause = if i == 0 { 1500 } else { 1000 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    wait_for("every renderer placed", Duration::from_secs(30), || async {
        env.pods().await.iter().all(|p| node_of(p).is_some())
    })
    .await;
    let runs = env.events("PlanRun").await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    let first = runs[0].event_time.as_ref().map(|t| t.0).unwrap_or(started);
    let after = first.as_millisecond() - started.as_millisecond();
    // The first pod arrived at 0 s: the max wait forced a plan at 10 s, while pods kept
    // arriving; the rest were planned after the quiet period that followed the last one.
    assert!(
        (10_000..10_500).contains(&after),
        "first plan at {after} ms"
    );
    let note = runs[0].note.clone().unwrap_or_default();
    assert!(
        note.starts_with("plan run 1 (max wait): 10 pods, 10 placed"),
        "{note}"
    );
    let note = runs[1].note.clone().unwrap_or_default();
    assert!(
        note.starts_with("plan run 2 (quiet period): 5 pods, 5 placed"),
        "{note}"
    );
    let second = runs[1].event_time.as_ref().map(|t| t.0).unwrap_or(started);
    let after = second.as_millisecond() - started.as_millisecond();
    assert!(
        (16_500..17_000).contains(&after),
        "second plan at {after} ms"
    );
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unplaceable_pod_stays_gated_until_a_node_is_added() {
    let env = Env::start(metro_nodes()).await;
    env.start_scheduler(config(Mode::Gate, 2, 30));
    env.cluster
        .load_yaml(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: big, namespace: ar, labels: {app: ar-render}}\nspec: {containers: [{name: c, image: i, resources: {requests: {cpu: \"24\"}}}]}\n",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("the reason on the pod", Duration::from_secs(10), || async {
        env.pods()
            .await
            .iter()
            .any(|p| p.annotations().contains_key(UNPLACED_ANNOTATION))
    })
    .await;
    let pods = env.pods().await;
    let big = &pods[0];
    assert!(is_gated(big) && node_of(big).is_none());
    // The only nodes with 24 CPU are in the region, which breaks the latency to the users.
    let reason = big.annotations()[UNPLACED_ANNOTATION].clone();
    assert!(
        reason.starts_with("every feasible node puts binding ar-latency-")
            && reason.contains("rule latency in Violation"),
        "{reason}"
    );
    let unplaceable = env.events("Unplaceable").await;
    assert_eq!(unplaceable.len(), 1);
    assert_eq!(unplaceable[0].note.as_deref(), Some(reason.as_str()));

    // Nothing changes: no replan, no new event, however long.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(env.events("PlanRun").await.len(), 1);
    assert_eq!(env.events("Unplaceable").await.len(), 1);

    // A big node at the edge: planned there after the quiet period.
    env.cluster
        .add_node(node("edge-2-big", "edge-2", "32"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("the pod bound", Duration::from_secs(10), || async {
        env.pods().await.iter().all(|p| node_of(p).is_some())
    })
    .await;
    let pods = env.pods().await;
    assert_eq!(node_of(&pods[0]), Some("edge-2-big"));
    assert!(!is_gated(&pods[0]));
    assert!(
        !pods[0].annotations().contains_key(UNPLACED_ANNOTATION),
        "the reason is removed with the gate"
    );
    assert_eq!(env.events("PlanRun").await.len(), 2);
    env.stop().await;
}

/// The chart's ValidatingAdmissionPolicy lets the scheduler's service account do all that
/// planning writes (node affinity, lifting its gate, the unplaced reason and removing it)
/// and nothing else.
#[tokio::test(start_paused = true)]
async fn the_charts_admission_policy_admits_planning_and_refuses_the_rest() {
    let env = Env::start(metro_nodes()).await;
    let docs = chart::render(&chart::helm(), &[]);
    let policy: Vec<serde_json::Value> = docs
        .into_iter()
        .filter(|d| {
            d["kind"] == "ValidatingAdmissionPolicy"
                || d["kind"] == "ValidatingAdmissionPolicyBinding"
        })
        .collect();
    assert_eq!(
        policy.len(),
        2,
        "the chart ships the policy and its binding"
    );
    env.cluster
        .apply_objects(policy)
        .await
        .unwrap_or_else(|e| panic!("the chart's policy is refused: {e}"));
    let account = UserInfo::service_account(chart::NAMESPACE, "edgeplane-scheduler");
    let as_scheduler = env.cluster.client_as(&account);
    env.start_scheduler_with(config(Mode::Gate, 2, 30), as_scheduler.clone());
    env.cluster
        .load_yaml(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: big, namespace: ar, labels: {app: ar-render}, annotations: {team: ar}}\nspec: {containers: [{name: c, image: i, resources: {requests: {cpu: \"24\"}}}]}\n",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("the reason on the pod", Duration::from_secs(10), || async {
        env.pods()
            .await
            .iter()
            .any(|p| p.annotations().contains_key(UNPLACED_ANNOTATION))
    })
    .await;
    env.cluster
        .add_node(node("edge-2-big", "edge-2", "32"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("the pod bound", Duration::from_secs(10), || async {
        env.pods().await.iter().all(|p| node_of(p).is_some())
    })
    .await;
    let pod = &env.pods().await[0];
    assert_eq!(node_of(pod), Some("edge-2-big"));
    assert!(!is_gated(pod) && !pod.annotations().contains_key(UNPLACED_ANNOTATION));

    // What planning never does is refused, with the policy's message.
    let pods: Api<Pod> = Api::namespaced(as_scheduler, "ar");
    let refused = |patch: serde_json::Value| {
        let pods = pods.clone();
        async move {
            match pods
                .patch(
                    "big",
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Strategic(patch),
                )
                .await
            {
                Err(kube::Error::Api(status)) => (status.code, status.message),
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    };
    let prefix = "pods \"big\" is forbidden: ValidatingAdmissionPolicy 'edgeplane-scheduler-pod-changes' with binding 'edgeplane-scheduler-pod-changes' denied request: the edgeplane scheduler may";
    for (patch, says) in [
        (
            json!({"spec": {"containers": [{"name": "c", "image": "evil"}]}}),
            " not change a pod's containers",
        ),
        (
            json!({"metadata": {"labels": {"app": "other"}}}),
            " not change a pod's labels, owners or finalizers",
        ),
        (
            json!({"metadata": {"annotations": {"team": "other"}}}),
            " change only edgeplane annotations, not team",
        ),
        (
            json!({"metadata": {"annotations": {"team": null}}}),
            " change only edgeplane annotations, not team",
        ),
    ] {
        assert_eq!(
            refused(patch.clone()).await,
            (403, format!("{prefix}{says}")),
            "{patch}"
        );
    }
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn bind_mode_binds_through_pods_binding() {
    let env = Env::start(metro_nodes()).await;
    env.start_scheduler(config(Mode::Bind, 2, 30));
    // Bind mode: pods ask for the edgeplane scheduler; the webhook leaves them alone.
    let app = APP.replace(
        "      containers:",
        "      schedulerName: edgeplane\n      containers:",
    );
    env.cluster
        .load_yaml(&app)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        "the application running",
        Duration::from_secs(30),
        || async {
            let pods = env.pods().await;
            pods.len() == 5 && pods.iter().all(is_running)
        },
    )
    .await;
    let nodes: Vec<Node> = Api::<Node>::all(env.client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    for pod in env.pods().await {
        assert!(!is_gated(&pod));
        let node = node_of(&pod).unwrap_or_default().to_string();
        assert_eq!(site_of(&nodes, &node), "edge-1");
        // Bound directly: the pod's own affinity is untouched.
        let terms = required_terms(&pod);
        if pod.labels().get("app").map(String::as_str) == Some("game-state") {
            assert_eq!(
                terms["nodeSelectorTerms"][0]["matchExpressions"]
                    .as_array()
                    .map(Vec::len),
                Some(1)
            );
        } else {
            assert_eq!(terms, serde_json::Value::Null);
        }
    }
    assert_eq!(env.events("PlanRun").await.len(), 1);
    assert_eq!(env.events("Planned").await.len(), 5);
    let bindings = judge_bindings(&env.client, env.cluster.clock().now()).await;
    assert!(
        bindings.values().all(|c| *c == Compliance::Compliant),
        "{bindings:?}"
    );
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn only_the_leader_writes_and_a_standby_takes_over() {
    let env = Env::start(metro_nodes()).await;
    // Two replicas with leader election on one Lease, each with its own metrics.
    let mut replicas = Vec::new();
    for identity in ["scheduler-a", "scheduler-b"] {
        let metrics = Arc::new(Metrics::new());
        let shutdown = env.shutdown.child_token();
        let lease = LeaseConfig::new(LEASE_NAMESPACE, scheduler::LEASE_NAME, identity);
        let (leadership, elector) = leader::spawn(
            env.client.clone(),
            Arc::new(env.cluster.clock()),
            lease,
            shutdown.clone(),
        );
        let ctx = env
            .context(metrics.clone(), shutdown.clone())
            .with_identity(identity)
            .with_leadership(leadership.clone());
        let task = scheduler::spawn(ctx, config(Mode::Gate, 2, 30));
        // The first one takes the Lease before the second starts.
        if identity == "scheduler-a" {
            leadership.wait_leader().await;
        }
        replicas.push((identity, metrics, shutdown, leadership, elector, task));
    }
    env.cluster
        .load_yaml(APP)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        "the application running",
        Duration::from_secs(30),
        || async {
            let pods = env.pods().await;
            pods.len() == 5 && pods.iter().all(is_running)
        },
    )
    .await;
    let (_, a_metrics, a_shutdown, a_leadership, a_elector, a_task) = replicas.remove(0);
    let (_, b_metrics, _, b_leadership, _, _) = &replicas[0];
    assert!(a_leadership.is_leader() && !b_leadership.is_leader());
    assert!(
        a_metrics.writes_by(scheduler::COMPONENT) >= 6,
        "5 placements + events"
    );
    assert_eq!(
        b_metrics.writes_by(scheduler::COMPONENT),
        0,
        "the standby writes nothing"
    );
    assert_eq!(plan_runs(&b_metrics.encode()), 0.0);
    let planned: BTreeSet<String> = env
        .events("Planned")
        .await
        .iter()
        .filter_map(|e| e.regarding.as_ref()?.name.clone())
        .collect();
    assert_eq!(planned.len(), 5, "each pod planned once");

    // The leader stops (releasing the Lease); the standby takes over and plans new pods.
    a_shutdown.cancel();
    let _ = a_elector.await;
    let _ = a_task.await;
    b_leadership.wait_leader().await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(env.client.clone(), "ar");
    deployments
        .patch(
            "ar-render",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        "the new renderer running",
        Duration::from_secs(30),
        || async {
            let pods = env.pods().await;
            pods.len() == 6 && pods.iter().all(is_running)
        },
    )
    .await;
    assert!(b_metrics.writes_by(scheduler::COMPONENT) >= 2);
    assert_eq!(plan_runs(&b_metrics.encode()), 1.0);
    env.stop().await;
}

/// The webhook over HTTPS: a self-signed certificate from files, an AdmissionReview in,
/// the gate patch out. Real sockets, so real time.
#[tokio::test]
async fn webhook_serves_admission_reviews_over_tls() {
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let env = Env::start(vec![node("edge-1-a", "edge-1", "8")]).await;
    let dir = std::env::temp_dir().join(format!("edgeplane-webhook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem())
        .unwrap_or_else(|e| panic!("{e}"));
    let metrics = Metrics::new();
    let (addr, _task) = webhook::serve(
        webhook::WebhookConfig {
            addr: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
            cert_dir: dir.clone(),
            options: GateOptions::default(),
            limits: edgeplane_serve::HttpLimits::default(),
        },
        &env.caches.offers,
        // The scheduler of this Env runs in process, without a Lease.
        edgeplane_runtime::watchdog::SchedulerWatch::InProcess,
        &metrics,
        env.shutdown.clone(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(cert.cert.der().clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap_or_else(|e| panic!("{e}"))
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let body = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "b1f0", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "ar", "operation": "CREATE", "userInfo": {"username": "u"},
            "object": {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"generateName": "ar-render-", "labels": {"app": "ar-render"}},
                       "spec": {"containers": [{"name": "c", "image": "i"}]}},
            "oldObject": null, "dryRun": false
        }
    }))
    .unwrap_or_default();
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let name =
        rustls_pki_types::ServerName::try_from("localhost").unwrap_or_else(|e| panic!("{e}"));
    let mut tls = connector
        .connect(name, tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS: {e}"));
    let head = format!(
        "POST /mutate-pods HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tls.write_all(&body).await.unwrap_or_else(|e| panic!("{e}"));
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let json_start = text.find('{').unwrap_or(0);
    let answer: serde_json::Value =
        serde_json::from_str(&text[json_start..]).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(answer["response"]["uid"], "b1f0");
    assert_eq!(answer["response"]["allowed"], true);
    let patch = base64::engine::general_purpose::STANDARD
        .decode(answer["response"]["patch"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let patch: serde_json::Value = serde_json::from_slice(&patch).unwrap_or_default();
    assert_eq!(patch[0]["value"][0]["name"], PLANNER_GATE);
    assert!(
        metrics
            .encode()
            .contains("edgeplane_webhook_admissions_total{outcome=\"gated\"} 1")
    );
    // A body over the limit (3 MiB) is refused from its Content-Length, unread.
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let name =
        rustls_pki_types::ServerName::try_from("localhost").unwrap_or_else(|e| panic!("{e}"));
    let mut tls = connector
        .connect(name, tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS: {e}"));
    tls.write_all(
        b"POST /mutate-pods HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.ends_with("Request entity too large: limit is 3145728\n"),
        "{text}"
    );

    // A renewed certificate (the kubelet swaps the mounted Secret's files) is served to
    // the next connection, with no restart; the old one is no longer presented.
    let renewed = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    for (file, text) in [
        ("tls.crt", renewed.cert.pem()),
        ("tls.key", renewed.signing_key.serialize_pem()),
    ] {
        let staged = dir.join(format!("{file}.new"));
        std::fs::write(&staged, text).unwrap_or_else(|e| panic!("{e}"));
        std::fs::rename(&staged, dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
    }
    let handshake = |trusted: &rcgen::Certificate| {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(trusted.der().clone())
            .unwrap_or_else(|e| panic!("{e}"));
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        async move {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let name = rustls_pki_types::ServerName::try_from("localhost")
                .unwrap_or_else(|e| panic!("{e}"));
            connector.connect(name, tcp).await.is_ok()
        }
    };
    assert!(
        handshake(&renewed.cert).await,
        "the renewed certificate is served"
    );
    assert!(!handshake(&cert.cert).await, "the old certificate is not");
    let _ = std::fs::remove_dir_all(&dir);
    env.stop().await;
}

/// Plan runs in a metrics text, whatever their trigger.
fn plan_runs(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("edgeplane_scheduler_plan_runs_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
