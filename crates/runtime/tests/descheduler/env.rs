//! Shared by the descheduler's end-to-end scenarios: the world, the environment (the
//! embedded cluster with the real controllers, the planning scheduler, the reference
//! network controller and the descheduler, in process) and helpers to read it.

#![allow(dead_code)] // not every scenario uses every helper

use std::sync::Arc;
use std::time::Duration;

use crate::harness::{self, Component, Setup};
use edgeplane_api::{Compliance, ConstraintPolicyBinding};
use edgeplane_cluster::{EmbeddedCluster, NodeSpec};
use edgeplane_netctl::{NetworkController, ReferenceConfig, ReferenceController};
use edgeplane_runtime::descheduler::{self, Descheduler, DeschedulerConfig, Limits};
use edgeplane_runtime::metrics::Metrics;
use edgeplane_runtime::providers::UrlRewrite;
use edgeplane_runtime::scheduler::queue::Triggers;
use edgeplane_runtime::scheduler::{self, Scheduler, SchedulerConfig};
use edgeplane_runtime::{Caches, Context, ViewCache};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub const ZONE: &str = "topology.kubernetes.io/zone";

/// The stadium's users are 1ms from edge-1 and 1.5ms from edge-2; the metro joins the
/// edges. `{policy}`, `{grace}` and `{mitigation_grace}` are the offer's.
pub const WORLD: &str = r#"
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
pub const RENDERER: &str = r#"
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
pub fn catalogue(bindings: u32) -> String {
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
pub fn degraded_topology() -> String {
    topology_of(WORLD).replace(
        "{from: stadium, to: edge-1, latency: 1ms}",
        "{from: stadium, to: edge-1, latency: 12ms}",
    )
}

/// The NetworkTopology document of a world.
pub fn topology_of(world: &str) -> String {
    world
        .split("---")
        .find(|d| d.contains("kind: NetworkTopology"))
        .unwrap()
        .to_string()
}

pub struct Env {
    pub cluster: EmbeddedCluster,
    pub client: Client,
    pub controller: Component,
    pub shutdown: CancellationToken,
    pub descheduler_metrics: Arc<Metrics>,
}

pub struct Options {
    pub policy: &'static str,
    /// The world loaded first (`WORLD` unless a scenario needs another).
    pub world: String,
    /// Extra manifests before anything starts.
    pub extra: Vec<String>,
    pub limits: Limits,
    /// Where the controller's provider registry sends external providers.
    pub rewrite: Option<UrlRewrite>,
    /// The descheduler's cycle.
    pub interval: Duration,
    /// The scheduler's quiet period and maximum wait.
    pub triggers: Triggers,
}

impl Options {
    pub fn new(policy: &'static str) -> Options {
        Options {
            policy,
            world: WORLD.to_string(),
            extra: Vec::new(),
            limits: Limits {
                min_pod_age: Duration::from_secs(10),
                ..Limits::default()
            },
            rewrite: None,
            interval: Duration::from_secs(1),
            triggers: Triggers {
                quiet_period: Duration::from_secs(1),
                max_wait: Duration::from_secs(5),
            },
        }
    }
}

pub fn node(name: &str, site: &str) -> NodeSpec {
    harness::site_node(name, site)
}

impl Env {
    pub async fn start(options: Options) -> Env {
        let (cluster, gate) = harness::gated_cluster(vec![
            node("edge-1-a", "edge-1"),
            node("edge-2-a", "edge-2"),
            node("metro-1-a", "metro-1"),
        ])
        .await;
        cluster
            .load_yaml(&options.world.replace("POLICY", options.policy))
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
                triggers: options.triggers,
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
            interval: options.interval,
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

    pub async fn pods(&self) -> Vec<Pod> {
        Api::<Pod>::namespaced(self.client.clone(), "ar")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    /// The one running renderer and its node.
    pub async fn running(&self) -> Option<(Pod, String)> {
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
    pub async fn binding_of(&self, pod: &str) -> Option<ConstraintPolicyBinding> {
        harness::binding_with(&self.client, "ar", "ar-latency", "renderer", pod).await
    }

    pub async fn compliance_of(&self, pod: &str) -> Option<Compliance> {
        self.binding_of(pod)
            .await
            .and_then(|b| b.status)
            .map(|s| s.compliance)
    }

    /// The reasons of the events about any binding of the namespace, oldest first.
    pub async fn binding_events(&self) -> Vec<(String, String)> {
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
    pub async fn events(&self, reason: &str) -> Vec<(String, String)> {
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

    pub fn metric(&self, line_prefix: &str) -> f64 {
        self.descheduler_metrics
            .encode()
            .lines()
            .find(|l| l.starts_with(line_prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// Cordons (or uncordons) a node: the planner places nothing there.
    pub async fn cordon(&self, node: &str, unschedulable: bool) {
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
    pub async fn place_renderer(&self) -> (Pod, String) {
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
    pub async fn degrade(&self, pod: &str) -> jiff::Timestamp {
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

    /// Waits for the renderer `pod`'s binding, in Violation since `since`, to be Compliant
    /// again through a mitigation past the offer's 30s grace: one Mitigated event, about
    /// that binding, naming the activated `entry`.
    pub async fn assert_mitigated_by(&self, pod: &str, since: jiff::Timestamp, entry: &str) {
        assert!(
            harness::eventually(Duration::from_secs(60), || async {
                self.compliance_of(pod).await == Some(Compliance::Compliant)
            })
            .await,
            "{:#?}\n{:#?}",
            self.binding_of(pod).await,
            self.binding_events().await
        );
        let binding = self.binding_of(pod).await.unwrap();
        let mitigated = binding
            .status
            .as_ref()
            .and_then(|s| s.last_mitigated_timestamp.clone())
            .expect("lastMitigatedTimestamp")
            .0;
        let waited = mitigated.duration_since(since).as_secs();
        assert!(
            (30..=32).contains(&waited),
            "mitigated {waited}s after the violation"
        );
        let events = self.events("Mitigated").await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].0, binding.name_any());
        assert!(
            events[0].1.contains(&format!("activated {entry}")),
            "{}",
            events[0].1
        );
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.controller.stop().await;
        self.cluster.shutdown().await;
    }
}

pub fn evictions(env: &Env) -> f64 {
    env.metric("edgeplane_descheduler_evictions_total{outcome=\"evicted\"}")
}
