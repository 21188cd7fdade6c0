//! The end-to-end harness: an embedded cluster with the edgeplane CRDs, components started
//! against it on its virtual clock with a client that records every write, and waiting for
//! conditions on virtual time.
//!
//! ```ignore
//! let cluster = harness::metro().await;                // CRDs + examples/metro
//! let controller = harness::start_controller(&cluster, Setup::new("replica-a")).await;
//! assert!(harness::eventually(Duration::from_secs(60), || async { ... }).await);
//! assert_eq!(controller.writes.count(), 0);
//! controller.stop().await;
//! ```

#![allow(dead_code)] // not every scenario uses every helper

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use edgeplane_api::{ConstraintPolicyBinding, ConstraintPolicyOffer};
use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, NodeSpec, PodAdmission};
use edgeplane_providers::ClientOptions;
use edgeplane_runtime::component::{Base, BaseConfig};
use edgeplane_runtime::controllers::{self, Options};
use edgeplane_runtime::providers::{ProviderRegistry, UrlRewrite};
use edgeplane_runtime::scheduler::queue::Triggers;
use edgeplane_runtime::scheduler::{self, Mode, Scheduler, SchedulerConfig};
use edgeplane_runtime::watchdog::{self, Watchdog, WatchdogConfig};
use edgeplane_runtime::webhook::{GateAdmission, GateOptions};
use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use kube::{Api, Client};

/// Virtual start of every test cluster.
pub const START: &str = "2025-06-01T00:00:00Z";
/// The namespace of the Leases.
pub const LEASE_NAMESPACE: &str = "edgeplane-system";

pub const METRO_NODES: &str = include_str!("../../../../examples/metro/nodes.yaml");
pub const METRO_TOPOLOGY: &str = include_str!("../../../../examples/metro/topology.yaml");
pub const METRO_POLICIES: &str = include_str!("../../../../examples/metro/policies.yaml");
pub const METRO_WORKLOADS: &str = include_str!("../../../../examples/metro/workloads.yaml");
pub const METRO_OFFERS: &str = include_str!("../../../../examples/metro/offers.yaml");

/// An embedded cluster with the edgeplane CRDs, the Lease namespace and `nodes`.
pub async fn cluster(nodes: Vec<NodeSpec>) -> EmbeddedCluster {
    prepared(ClusterConfig::default(), nodes).await
}

/// The same, with pod creates going through the gate webhook's mutation (what `edgeplane
/// controller` serves in gate mode); the webhook is returned to attach caches to.
pub async fn gated_cluster(nodes: Vec<NodeSpec>) -> (EmbeddedCluster, GateAdmission) {
    let gate = GateAdmission::new(GateOptions::default());
    let hook = gate.clone();
    let config = ClusterConfig::default().admission(PodAdmission::new(move |pod| {
        hook.admit(pod);
    }));
    (prepared(config, nodes).await, gate)
}

/// A node of `site` (the zone label) with 8 CPUs and 32Gi.
pub fn site_node(name: &str, site: &str) -> NodeSpec {
    NodeSpec::new(name)
        .cpu("8")
        .memory("32Gi")
        .label("topology.kubernetes.io/zone", site)
}

async fn prepared(config: ClusterConfig, nodes: Vec<NodeSpec>) -> EmbeddedCluster {
    let mut config = config.start_time(START.parse().unwrap());
    for node in nodes {
        config = config.with_node(node);
    }
    let cluster = EmbeddedCluster::start(config).await;
    let crds: Vec<serde_json::Value> = edgeplane_api::crdgen::all()
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    cluster.apply_objects(crds).await.unwrap();
    cluster
        .load_yaml(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {LEASE_NAMESPACE}}}\n"
        ))
        .await
        .unwrap();
    cluster
}

/// examples/metro: 19 nodes, the topology, the AR application placed, its policies and
/// offers (12 bindings: 5 Compliant, 4 Limit, 3 Violation).
pub async fn metro() -> EmbeddedCluster {
    let cluster = cluster(Vec::new()).await;
    for yaml in [
        METRO_NODES,
        METRO_TOPOLOGY,
        METRO_WORKLOADS,
        METRO_POLICIES,
        METRO_OFFERS,
    ] {
        cluster.load_yaml(yaml).await.unwrap();
    }
    cluster
}

/// Every write (method and path) a component sent.
#[derive(Clone, Debug, Default)]
pub struct WriteLog(Arc<Mutex<Vec<String>>>);

impl WriteLog {
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The writes after the first `n`.
    pub fn since(&self, n: usize) -> Vec<String> {
        self.0.lock().unwrap().iter().skip(n).cloned().collect()
    }

    fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }
}

/// A `tower::Service` that records every request that is not a read.
#[derive(Clone)]
pub struct Recording<S> {
    inner: S,
    log: WriteLog,
}

impl<S> tower::Service<http::Request<kube::client::Body>> for Recording<S>
where
    S: tower::Service<http::Request<kube::client::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<kube::client::Body>) -> S::Future {
        if !matches!(*request.method(), http::Method::GET | http::Method::HEAD) {
            self.log
                .push(format!("{} {}", request.method(), request.uri().path()));
        }
        self.inner.call(request)
    }
}

/// A client of `cluster` recording its writes in `log`.
pub fn recording_client(cluster: &EmbeddedCluster, log: &WriteLog) -> Client {
    Client::new(
        Recording {
            inner: cluster.service(),
            log: log.clone(),
        },
        "default",
    )
}

/// How to start a controller replica.
pub struct Setup {
    pub identity: String,
    pub leader_election: bool,
    pub rewrite: Option<UrlRewrite>,
    pub options: Options,
    /// Runs the gate watchdog too (as `edgeplane controller` does), watching the
    /// scheduler's Lease in the Lease namespace.
    pub watchdog: Option<WatchdogConfig>,
}

impl Setup {
    /// A single replica without leader election.
    pub fn new(identity: &str) -> Setup {
        Setup {
            identity: identity.into(),
            leader_election: false,
            rewrite: None,
            options: Options::default(),
            watchdog: None,
        }
    }

    pub fn watchdog(mut self, config: WatchdogConfig) -> Setup {
        self.watchdog = Some(config);
        self
    }

    pub fn elected(mut self) -> Setup {
        self.leader_election = true;
        self
    }

    pub fn rewrite(mut self, rewrite: UrlRewrite) -> Setup {
        self.rewrite = Some(rewrite);
        self
    }
}

/// A running component and what it wrote.
pub struct Component {
    pub base: Base,
    pub writes: WriteLog,
}

impl Component {
    /// Graceful stop (releases the Lease).
    pub async fn stop(self) {
        self.base.stop().await
    }

    /// Crash (keeps the Lease until it expires).
    pub fn crash(self) {
        self.base.abort()
    }

    pub fn is_leader(&self) -> bool {
        self.base.ctx.leadership.is_leader()
    }
}

/// Starts `edgeplane controller` (offer, binding, policy and topology controllers) on the
/// cluster's clock.
pub async fn start_controller(cluster: &EmbeddedCluster, setup: Setup) -> Component {
    let writes = WriteLog::default();
    let client = recording_client(cluster, &writes);
    let mut config = BaseConfig::new("edgeplane-controller")
        .identity(setup.identity)
        .clock(Arc::new(cluster.clock()));
    if setup.leader_election {
        config = config.leader_election(LEASE_NAMESPACE);
    }
    let mut base = Base::start(client, config).await.unwrap();
    let options = ClientOptions {
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        max_in_flight: 16,
        tls: None,
    };
    let mut registry = ProviderRegistry::new(base.views.builtin_provider(), options);
    if let Some(rewrite) = setup.rewrite {
        registry = registry.with_url_rewrite(rewrite);
    }
    base.spawn(controllers::run(
        base.ctx.clone(),
        base.caches.clone(),
        base.views.clone(),
        Arc::new(registry),
        setup.options,
    ));
    if let Some(config) = setup.watchdog {
        let watch = watchdog::watch_scheduler(&base.ctx, LEASE_NAMESPACE);
        base.spawn(Watchdog::new(base.ctx.clone(), base.caches.pods.clone(), watch, config).run());
    }
    Component { base, writes }
}

/// Starts `edgeplane scheduler` in gate mode with leader election (the Lease
/// `edgeplane-scheduler` in the Lease namespace), quiet period 1s, on the cluster's clock.
pub async fn start_elected_scheduler(cluster: &EmbeddedCluster, identity: &str) -> Component {
    let writes = WriteLog::default();
    let client = recording_client(cluster, &writes);
    let config = BaseConfig::new(scheduler::COMPONENT)
        .identity(identity)
        .clock(Arc::new(cluster.clock()))
        .leader_election(LEASE_NAMESPACE);
    let mut base = Base::start(client, config).await.unwrap();
    let scheduler = Scheduler::new(
        base.ctx.clone(),
        base.caches.clone(),
        base.views.clone(),
        SchedulerConfig {
            mode: Mode::Gate,
            triggers: Triggers {
                quiet_period: Duration::from_secs(1),
                max_wait: Duration::from_secs(5),
            },
            lease_namespace: LEASE_NAMESPACE.into(),
            ..SchedulerConfig::default()
        },
    );
    base.spawn(scheduler.run());
    Component { base, writes }
}

/// Polls `check` every 100ms of virtual time until it holds or `limit` has passed.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The bindings of a namespace.
pub async fn bindings(client: &Client, namespace: &str) -> Vec<ConstraintPolicyBinding> {
    Api::<ConstraintPolicyBinding>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

/// The bindings of an offer.
pub async fn bindings_of(
    client: &Client,
    namespace: &str,
    offer: &str,
) -> Vec<ConstraintPolicyBinding> {
    bindings(client, namespace)
        .await
        .into_iter()
        .filter(|b| b.spec.offer == offer)
        .collect()
}

pub async fn offer(client: &Client, namespace: &str, name: &str) -> ConstraintPolicyOffer {
    Api::<ConstraintPolicyOffer>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap()
}

/// The binding of `offer` whose role `role` is filled by the object named `target`.
pub async fn binding_with(
    client: &Client,
    namespace: &str,
    offer: &str,
    role: &str,
    target: &str,
) -> Option<ConstraintPolicyBinding> {
    bindings_of(client, namespace, offer)
        .await
        .into_iter()
        .find(|b| b.spec.targets.get(role).is_some_and(|t| t.name == target))
}

/// `(reason, message)` of the events about an object, oldest first.
pub async fn events_about(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Vec<(String, String)> {
    let selector = format!("involvedObject.kind={kind},involvedObject.name={name}");
    let mut events = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().fields(&selector))
        .await
        .unwrap()
        .items;
    events.sort_by_key(|e| (e.event_time.as_ref().map(|t| t.0), e.metadata.name.clone()));
    events
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

/// Whether every binding of the namespace has been evaluated (has a status).
pub async fn all_evaluated(client: &Client, namespace: &str, expected: usize) -> bool {
    let all = bindings(client, namespace).await;
    all.len() == expected && all.iter().all(|b| b.status.is_some())
}
