//! End to end: the descheduler with the real controllers, the planning scheduler and the
//! reference network controller (in process), on the embedded cluster, on virtual time.
//!
//! The world: users at the stadium, two edge sites next to it and a metro behind them.
//! The renderer (a Deployment, gated by the real webhook mutation) must reach the stadium
//! within 5ms (2ms preferred). Each scenario degrades the stadium <-> edge-1 link so that
//! the renderer planned on edge-1 falls into Violation, and checks what the descheduler
//! does about it, and what it does not do.

// Tests unwrap what they built and the errors they expect.
#![allow(clippy::unwrap_used)]

#[path = "e2e/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{Compliance, ConstraintPolicyBinding, NetworkPathCatalogue, NetworkTopology};
use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, NodeSpec, PodAdmission};
use edgeplane_netctl::{NetworkController, ReferenceConfig, ReferenceController};
use edgeplane_runtime::descheduler::{self, Descheduler, DeschedulerConfig, Limits};
use edgeplane_runtime::metrics::Metrics;
use edgeplane_runtime::providers::UrlRewrite;
use edgeplane_runtime::scheduler::queue::Triggers;
use edgeplane_runtime::scheduler::{self, Scheduler, SchedulerConfig};
use edgeplane_runtime::webhook::{GateAdmission, GateOptions};
use edgeplane_runtime::{Caches, Context, ViewCache};
use harness::{Component, Setup};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const ZONE: &str = "topology.kubernetes.io/zone";

/// The stadium's users are 1ms from edge-1 and 1.5ms from edge-2; the metro joins the
/// edges. `{policy}`, `{grace}` and `{mitigation_grace}` are the offer's.
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
  - {from: stadium, to: edge-2, latency: 1500us}
  - {from: edge-1, to: metro-1, latency: 3ms}
  - {from: edge-2, to: metro-1, latency: 3ms}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: near-users, namespace: ar}
spec:
  rules:
  - {name: latency, request: 2ms, limit: 5ms}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: ar-latency, namespace: ar}
spec:
  targets:
  - {name: renderer, kind: Pod, labelSelector: {matchLabels: {app: ar-render}}}
  - {name: users, kind: Site, sites: [stadium]}
  policies: [near-users]
  period: 5s
  grace: 30s
  violationPolicy: POLICY
  mitigationGrace: 20s
"#;

/// The renderer: one replica, gated by the webhook mutation, planned by the scheduler.
const RENDERER: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: ar-render, namespace: ar}
spec:
  replicas: 1
  selector: {matchLabels: {app: ar-render}}
  template:
    metadata: {labels: {app: ar-render}}
    spec:
      containers: [{name: render, image: ar/render:1.4, resources: {requests: {cpu: "2", memory: 1Gi}}}]
"#;

/// One alternate path from edge-1 to the stadium, with room for `{bindings}` bindings.
fn catalogue(bindings: u32) -> String {
    format!(
        r#"
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkPathCatalogue
metadata: {{name: default}}
spec:
  entries:
  - {{name: express-1, from: edge-1, to: stadium, latency: 2ms, capacity: {{bindings: {bindings}}}}}
"#
    )
}

/// The stadium <-> edge-1 link at 12ms: from edge-1 the users are now 7.5ms away (through
/// the metro and edge-2), worse than the 5ms limit.
fn degraded_topology() -> String {
    WORLD
        .split("---")
        .find(|d| d.contains("kind: NetworkTopology"))
        .unwrap()
        .replace(
            "{from: stadium, to: edge-1, latency: 1ms}",
            "{from: stadium, to: edge-1, latency: 12ms}",
        )
}

struct Env {
    cluster: EmbeddedCluster,
    client: Client,
    controller: Component,
    shutdown: CancellationToken,
    descheduler_metrics: Arc<Metrics>,
}

struct Options {
    policy: &'static str,
    /// Extra manifests before anything starts.
    extra: Vec<String>,
    limits: Limits,
    /// Where the controller's provider registry sends external providers.
    rewrite: Option<UrlRewrite>,
}

impl Options {
    fn new(policy: &'static str) -> Options {
        Options {
            policy,
            extra: Vec::new(),
            limits: Limits {
                min_pod_age: Duration::from_secs(10),
                ..Limits::default()
            },
            rewrite: None,
        }
    }
}

fn node(name: &str, site: &str) -> NodeSpec {
    NodeSpec::new(name)
        .cpu("8")
        .memory("32Gi")
        .label(ZONE, site)
}

impl Env {
    async fn start(options: Options) -> Env {
        let gate = GateAdmission::new(GateOptions::default());
        let hook = gate.clone();
        let config = ClusterConfig::default()
            .start_time(harness::START.parse().unwrap())
            .admission(PodAdmission::new(move |pod| {
                hook.admit(pod);
            }))
            .with_node(node("edge-1-a", "edge-1"))
            .with_node(node("edge-2-a", "edge-2"))
            .with_node(node("metro-1-a", "metro-1"));
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
            .load_yaml(&WORLD.replace("POLICY", options.policy))
            .await
            .unwrap();
        for yaml in &options.extra {
            cluster.load_yaml(yaml).await.unwrap();
        }
        let client = cluster.client();
        let clock = Arc::new(cluster.clock());
        let network = Arc::new(ReferenceController::new(
            client.clone(),
            clock.clone(),
            ReferenceConfig::default(),
        ));

        let mut setup = Setup::new("controller");
        if let Some(rewrite) = options.rewrite {
            setup = setup.rewrite(rewrite);
        }
        let controller = harness::start_controller(&cluster, setup).await;

        let shutdown = CancellationToken::new();
        let caches = Caches::start(&client, &shutdown);
        gate.attach(&caches.offers);
        caches.wait_ready().await;
        let offers = caches.offers.clone();
        assert!(
            harness::eventually(Duration::from_secs(10), || {
                let offers = offers.clone();
                async move { offers.list().len() == 1 }
            })
            .await
        );

        let metrics = Arc::new(Metrics::new());
        let views = ViewCache::start(
            &caches.nodes,
            &caches.pods,
            &caches.topologies,
            clock.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        let ctx = Context::new(client.clone(), scheduler::COMPONENT)
            .with_clock(clock.clone())
            .with_metrics(metrics.clone())
            .with_shutdown(shutdown.clone());
        let mut planner = Scheduler::new(
            ctx,
            caches.clone(),
            views.clone(),
            SchedulerConfig {
                triggers: Triggers {
                    quiet_period: Duration::from_secs(1),
                    max_wait: Duration::from_secs(5),
                },
                lease_namespace: harness::LEASE_NAMESPACE.into(),
                ..SchedulerConfig::default()
            },
        );
        planner = planner.with_network_controller(network.clone() as Arc<dyn NetworkController>);
        tokio::spawn(planner.run());

        let descheduler_metrics = Arc::new(Metrics::new());
        let ctx = Context::new(client.clone(), descheduler::COMPONENT)
            .with_clock(clock)
            .with_metrics(descheduler_metrics.clone())
            .with_shutdown(shutdown.clone());
        let config = DeschedulerConfig {
            interval: Duration::from_secs(1),
            limits: options.limits,
            ..DeschedulerConfig::default()
        };
        let deschedule = Descheduler::new(ctx, caches, views, config)
            .with_network_controller(network.clone() as Arc<dyn NetworkController>);
        tokio::spawn(deschedule.run());

        Env {
            cluster,
            client,
            controller,
            shutdown,
            descheduler_metrics,
        }
    }

    async fn pods(&self) -> Vec<Pod> {
        Api::<Pod>::namespaced(self.client.clone(), "ar")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    /// The one running renderer and its node.
    async fn running(&self) -> Option<(Pod, String)> {
        let pods: Vec<(Pod, String)> = self
            .pods()
            .await
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| {
                let node = p.spec.as_ref()?.node_name.clone()?;
                let running = p.status.as_ref()?.phase.as_deref() == Some("Running");
                running.then_some((p, node))
            })
            .collect();
        (pods.len() == 1).then(|| pods.into_iter().next()).flatten()
    }

    /// The binding of the renderer pod `pod`.
    async fn binding_of(&self, pod: &str) -> Option<ConstraintPolicyBinding> {
        harness::binding_with(&self.client, "ar", "ar-latency", "renderer", pod).await
    }

    async fn compliance_of(&self, pod: &str) -> Option<Compliance> {
        self.binding_of(pod)
            .await
            .and_then(|b| b.status)
            .map(|s| s.compliance)
    }

    /// The reasons of the events about any binding of the namespace, oldest first.
    async fn binding_events(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        for b in harness::bindings(&self.client, "ar").await {
            all.extend(
                harness::events_about(&self.client, "ar", "ConstraintPolicyBinding", &b.name_any())
                    .await,
            );
        }
        all
    }

    /// Every event of the namespace with `reason`: (object name, note).
    async fn events(&self, reason: &str) -> Vec<(String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), "ar");
        let mut events = api.list(&ListParams::default()).await.unwrap().items;
        events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        events
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .map(|e| {
                (
                    e.regarding.and_then(|r| r.name).unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }

    fn metric(&self, line_prefix: &str) -> f64 {
        self.descheduler_metrics
            .encode()
            .lines()
            .find(|l| l.starts_with(line_prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// Cordons (or uncordons) a node: the planner places nothing there.
    async fn cordon(&self, node: &str, unschedulable: bool) {
        Api::<k8s_openapi::api::core::v1::Node>::all(self.client.clone())
            .patch(
                node,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"unschedulable": unschedulable}})),
            )
            .await
            .unwrap();
    }

    /// Creates the renderer and waits until it runs on edge-1 with its binding Compliant.
    /// edge-2 (1.5ms from the users, as Compliant as edge-1's 1ms) is cordoned meanwhile,
    /// so that the placement does not depend on how the planner breaks the tie.
    async fn place_renderer(&self) -> (Pod, String) {
        self.cordon("edge-2-a", true).await;
        self.cluster.load_yaml(RENDERER).await.unwrap();
        assert!(
            harness::eventually(Duration::from_secs(60), || async {
                match self.running().await {
                    Some((p, _)) => {
                        self.compliance_of(&p.name_any()).await == Some(Compliance::Compliant)
                    }
                    None => false,
                }
            })
            .await,
            "the renderer is not running with a Compliant binding: {:#?}",
            self.pods().await
        );
        let (pod, node) = self.running().await.unwrap();
        assert_eq!(node, "edge-1-a");
        self.cordon("edge-2-a", false).await;
        (pod, node)
    }

    /// Degrades the stadium <-> edge-1 link, waits for the renderer's binding to be in
    /// Violation, and returns its `violatingSince`.
    async fn degrade(&self, pod: &str) -> jiff::Timestamp {
        self.cluster.load_yaml(&degraded_topology()).await.unwrap();
        assert!(
            harness::eventually(Duration::from_secs(10), || async {
                self.compliance_of(pod).await == Some(Compliance::Violation)
            })
            .await,
            "{:#?}",
            self.binding_of(pod).await
        );
        self.binding_of(pod)
            .await
            .and_then(|b| b.status?.violating_since)
            .unwrap()
            .0
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.controller.stop().await;
        self.cluster.shutdown().await;
    }
}

fn evictions(env: &Env) -> f64 {
    env.metric("edgeplane_descheduler_evictions_total{outcome=\"evicted\"}")
}

#[tokio::test(start_paused = true)]
async fn mediate_activates_an_alternate_path_and_evicts_nothing() {
    let mut options = Options::new("Mediate");
    options.extra.push(catalogue(1));
    let env = Env::start(options).await;
    let (pod, _) = env.place_renderer().await;
    let name = pod.name_any();
    let uid = pod.uid();
    let degraded_at = env.degrade(&name).await;

    // Past the grace (30s), the network controller activates express-1 and the binding
    // comes back to Compliant (2ms), with the renderer where it was.
    assert!(
        harness::eventually(Duration::from_secs(60), || async {
            env.compliance_of(&name).await == Some(Compliance::Compliant)
        })
        .await,
        "{:#?}\n{:#?}",
        env.binding_of(&name).await,
        env.binding_events().await
    );
    let binding = env.binding_of(&name).await.unwrap();
    let status = binding.status.clone().unwrap();
    let mitigated = status
        .last_mitigated_timestamp
        .expect("lastMitigatedTimestamp")
        .0;
    let waited = mitigated.duration_since(degraded_at).as_secs();
    assert!(
        (30..=32).contains(&waited),
        "mitigated {waited}s after the violation"
    );
    let mitigated_events = env.events("Mitigated").await;
    assert_eq!(mitigated_events.len(), 1, "{mitigated_events:?}");
    assert_eq!(mitigated_events[0].0, binding.name_any());
    assert!(
        mitigated_events[0].1.contains("activated express-1"),
        "{}",
        mitigated_events[0].1
    );
    let topology: NetworkTopology = Api::all(env.client.clone()).get("default").await.unwrap();
    let activated = topology.status.unwrap().activated_paths;
    assert_eq!(activated.len(), 1);
    assert_eq!(activated[0].entry, "express-1");

    // Long after: still there, never evicted, not mitigated again.
    tokio::time::sleep(Duration::from_secs(180)).await;
    let (now_pod, node) = env.running().await.unwrap();
    assert_eq!((now_pod.uid(), node.as_str()), (uid, "edge-1-a"));
    assert_eq!(evictions(&env), 0.0);
    assert!(env.events("Evicted").await.is_empty());
    assert_eq!(env.events("Mitigated").await.len(), 1);
    assert_eq!(
        env.metric("edgeplane_descheduler_mitigations_succeeded_total"),
        1.0
    );
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn evict_moves_one_pod_when_the_catalogue_is_exhausted() {
    let mut options = Options::new("Evict");
    options.extra.push(catalogue(0));
    let env = Env::start(options).await;
    let (pod, _) = env.place_renderer().await;
    let name = pod.name_any();
    let degraded_at = env.degrade(&name).await;

    // Past the grace the network is asked and cannot help; past mitigationGrace (20s
    // more) the renderer is evicted, and its replacement is planned onto edge-2 (1.5ms).
    assert!(
        harness::eventually(Duration::from_secs(120), || async {
            match env.running().await {
                Some((p, node)) => {
                    p.name_any() != name
                        && node == "edge-2-a"
                        && env.compliance_of(&p.name_any()).await == Some(Compliance::Compliant)
                }
                None => false,
            }
        })
        .await,
        "{:#?}\n{:#?}",
        env.pods().await,
        env.binding_events().await
    );
    let failed = env.events("MitigationFailed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].1.contains("cannot mitigate"), "{}", failed[0].1);
    let evicted = env.events("Evicted").await;
    // One on the pod, one on the binding.
    assert_eq!(evicted.len(), 2, "{evicted:?}");
    assert!(evicted.iter().any(|(object, note)| *object == name
        && note.contains("the planner expects the replacement on edge-2-a")));
    let evicted_at = {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(env.client.clone(), "ar");
        let events = api.list(&ListParams::default()).await.unwrap().items;
        events
            .iter()
            .find(|e| e.reason.as_deref() == Some("Evicted"))
            .and_then(|e| e.event_time.as_ref())
            .unwrap()
            .0
    };
    let waited = evicted_at.duration_since(degraded_at).as_secs();
    assert!(
        (50..=53).contains(&waited),
        "evicted {waited}s after the violation"
    );

    // Exactly one eviction, however long we wait.
    tokio::time::sleep(Duration::from_secs(180)).await;
    assert_eq!(evictions(&env), 1.0);
    assert_eq!(env.events("Evicted").await.len(), 2);
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_disruption_budget_blocks_the_eviction_and_says_why() {
    let mut options = Options::new("Evict");
    options.extra.push(catalogue(0));
    options.extra.push(
        r#"
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: ar-render, namespace: ar}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: ar-render}}
"#
        .into(),
    );
    let env = Env::start(options).await;
    let (pod, _) = env.place_renderer().await;
    let name = pod.name_any();
    let _ = env.degrade(&name).await;

    assert!(
        harness::eventually(Duration::from_secs(120), || async {
            !env.events("EvictionBlocked").await.is_empty()
        })
        .await,
        "{:#?}",
        env.binding_events().await
    );
    let blocked = env.events("EvictionBlocked").await;
    assert!(
        blocked[0]
            .1
            .contains("disruption budget ar-render needs 1 healthy pods"),
        "{}",
        blocked[0].1
    );
    // Retried every cycle, reported once, never forced.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let (still, node) = env.running().await.unwrap();
    assert_eq!((still.uid(), node.as_str()), (pod.uid(), "edge-1-a"));
    assert_eq!(env.events("EvictionBlocked").await.len(), 1);
    assert!(env.events("Evicted").await.is_empty());
    assert!(env.metric("edgeplane_descheduler_evictions_total{outcome=\"blocked\"}") > 10.0);
    assert_eq!(evictions(&env), 0.0);
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn nothing_is_done_while_the_provider_is_down() {
    let mut options = Options::new("Evict");
    options.extra.push(catalogue(1));
    // A port nothing listens on: the latency provider that registers below is down.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    options.rewrite = Some(Arc::new(move |_| url.clone()));
    let env = Env::start(options).await;
    let (pod, _) = env.place_renderer().await;
    let name = pod.name_any();
    // In Violation, then, well within the grace, the provider registers and is down.
    let _ = env.degrade(&name).await;
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "latency-probe", "namespace": "ar",
                     "labels": {"constraint.edgeplane.io/provider-latency": "enabled"}},
        "spec": {"ports": [{"name": "grpc", "port": 50051}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(env.client.clone(), "ar")
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    assert!(
        harness::eventually(Duration::from_secs(10), || async {
            env.compliance_of(&name).await == Some(Compliance::Error)
        })
        .await,
        "{:#?}",
        env.binding_of(&name).await
    );
    // Far past grace and mitigationGrace: no mitigation, no eviction.
    tokio::time::sleep(Duration::from_secs(300)).await;
    let binding = env.binding_of(&name).await.unwrap();
    let status = binding.status.unwrap();
    assert_eq!(status.compliance, Compliance::Error);
    assert!(status.last_mitigated_timestamp.is_none());
    let (still, _) = env.running().await.unwrap();
    assert_eq!(still.uid(), pod.uid());
    for reason in [
        "Mitigated",
        "MitigationFailed",
        "Evicted",
        "EvictionSkipped",
    ] {
        assert!(env.events(reason).await.is_empty(), "{reason}");
    }
    assert_eq!(
        env.metric("edgeplane_descheduler_mitigations_attempted_total"),
        0.0
    );
    // The descheduler was running all along.
    assert!(env.metric("edgeplane_descheduler_cycles_total") > 300.0);
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_flapping_link_shorter_than_the_grace_changes_nothing() {
    let mut options = Options::new("Evict");
    options.extra.push(catalogue(1));
    let env = Env::start(options).await;
    let (pod, _) = env.place_renderer().await;
    let name = pod.name_any();
    let healthy = WORLD
        .split("---")
        .find(|d| d.contains("kind: NetworkTopology"))
        .unwrap()
        .to_string();
    for _ in 0..5 {
        let _ = env.degrade(&name).await;
        // 20s in Violation, less than the 30s grace.
        tokio::time::sleep(Duration::from_secs(20)).await;
        env.cluster.load_yaml(&healthy).await.unwrap();
        assert!(
            harness::eventually(Duration::from_secs(10), || async {
                env.compliance_of(&name).await == Some(Compliance::Compliant)
            })
            .await
        );
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    let (still, node) = env.running().await.unwrap();
    assert_eq!((still.uid(), node.as_str()), (pod.uid(), "edge-1-a"));
    let binding = env.binding_of(&name).await.unwrap();
    assert!(binding.status.unwrap().last_mitigated_timestamp.is_none());
    for reason in [
        "Mitigated",
        "MitigationFailed",
        "Evicted",
        "EvictionSkipped",
    ] {
        assert!(env.events(reason).await.is_empty(), "{reason}");
    }
    assert!(env.metric("edgeplane_descheduler_cycles_total") > 100.0);
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_path_allocated_for_a_pod_is_released_when_the_pod_goes() {
    let mut options = Options::new("Ignore");
    options.extra.push(catalogue(1));
    // The link is degraded from the start and edge-2 and metro-1 take no pods: no node
    // reaches the stadium within 5ms (edge-1 is 7.5ms away), so the scheduler asks the
    // network.
    options.extra.push(degraded_topology());
    let env = Env::start(options).await;
    for node in ["edge-2-a", "metro-1-a"] {
        env.cordon(node, true).await;
    }
    env.cluster.load_yaml(RENDERER).await.unwrap();
    // Discover, Allocate, annotation and finalizer; the activation replans the pod onto
    // edge-1, now 2ms from the stadium.
    assert!(
        harness::eventually(Duration::from_secs(60), || async {
            match env.running().await {
                Some((p, node)) => {
                    node == "edge-1-a"
                        && env.compliance_of(&p.name_any()).await == Some(Compliance::Compliant)
                }
                None => false,
            }
        })
        .await,
        "{:#?}",
        env.pods().await
    );
    let (pod, _) = env.running().await.unwrap();
    let name = pod.name_any();
    let allocation = pod
        .annotations()
        .get("network.edgeplane.io/allocation")
        .cloned()
        .expect("the allocation annotation");
    assert!(
        pod.finalizers()
            .iter()
            .any(|f| f == "network.edgeplane.io/path-release")
    );
    assert_eq!(env.events("PathAllocated").await.len(), 1);
    let catalogue: Api<NetworkPathCatalogue> = Api::all(env.client.clone());
    let held = catalogue
        .get("default")
        .await
        .unwrap()
        .status
        .unwrap()
        .allocations;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].id, allocation);

    // Deleted (as an eviction does): released, the finalizer goes, and so does the pod.
    Api::<Pod>::namespaced(env.client.clone(), "ar")
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            !env.pods().await.iter().any(|p| p.name_any() == name)
        })
        .await,
        "{:#?}",
        env.pods().await
    );
    let released = env.events("PathReleased").await;
    assert!(
        released
            .iter()
            .any(|(object, note)| *object == name && note.contains(&allocation)),
        "{released:?}"
    );
    let held = catalogue
        .get("default")
        .await
        .unwrap()
        .status
        .unwrap()
        .allocations;
    assert!(held.iter().all(|a| a.id != allocation), "{held:?}");
    env.stop().await;
}
