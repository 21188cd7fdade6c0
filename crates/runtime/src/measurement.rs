//! The measurement agent's API side (`edgeplane agent run`): the peers it probes, from the
//! Nodes and the agent pods it watches; the publication of its site's measured links into
//! the `default` NetworkTopology's `status.measured`; and its per-peer metrics. The
//! decisions are in `edgeplane_core::measurement`, the probing in `edgeplane-agent`.
//!
//! One agent per site publishes (the lowest-named agent node of the site,
//! [`edgeplane_core::measurement::publisher`]), by server-side apply on the status
//! subresource as the field manager [`field_manager`] of its site: the list is keyed by
//! `from`/`to`, so each site owns its own entries, and an entry the publisher drops (a
//! remote site gone stale) is removed from the list by the API server.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use edgeplane_agent::monitor::PeerFigures;
use edgeplane_api::{MeasuredLink, NetworkTopology};
use edgeplane_core::measurement::{
    AgentNode, PairFigures, Publish, PublishPolicy, Published, agent_nodes, measured_links,
    publish_due, site_links,
};
use edgeplane_core::snapshot::DEFAULT_TOPOLOGY;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use kube::runtime::watcher;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::context::Context;
use crate::error::Error;
use crate::metrics::Metrics;

/// The component's name (metrics, logs).
pub const COMPONENT: &str = "agent";

/// The field manager of the agent that publishes `site`'s links.
pub fn field_manager(site: &str) -> String {
    format!("edgeplane-agent-{site}")
}

/// The part of a topology's status a site's agent applies.
#[derive(Serialize)]
struct MeasuredStatus<'a> {
    measured: &'a [MeasuredLink],
}

/// Applies `links` (all from `site`) as `site`'s entries of the `default` topology's
/// `status.measured`; entries of `site` not in `links` are removed, other sites' kept.
pub async fn publish(ctx: &Context, site: &str, links: &[MeasuredLink]) -> Result<(), Error> {
    ctx.apply_status_as::<NetworkTopology, _>(
        &field_manager(site),
        None,
        DEFAULT_TOPOLOGY,
        &MeasuredStatus { measured: links },
    )
    .await
    .map(|_| ())
}

/// The figures of one peer of the monitor, as the aggregation reads them: `site` is the
/// peer's site, `bandwidth` its latest train estimate.
pub fn pair_figures(f: &PeerFigures, site: &str, bandwidth: Option<f64>) -> PairFigures {
    let s = &f.summary;
    PairFigures {
        peer: f.peer.name.clone(),
        peer_site: site.to_string(),
        rtt_p50_ns: s.rtt.map(|d| d.p50_ns as f64),
        rtt_p90_ns: s.rtt.map(|d| d.p90_ns as f64),
        rtt_p99_ns: s.rtt.map(|d| d.p99_ns as f64),
        forward_ns: s.one_way.filter(|o| !o.estimated).map(|o| o.forward_p90_ns),
        jitter_ns: s.interarrival_jitter_ns,
        ipdv_ns: s.ipdv_ns,
        settled: s.settled,
        received: s.received,
        bandwidth_bps: bandwidth,
        stale: f.stale,
    }
}

/// The publishing step of a site's agent: aggregates its peers' figures into links and
/// applies them when [`publish_due`] says so, remembering what it published.
#[derive(Clone, Debug)]
pub struct Publisher {
    site: String,
    policy: PublishPolicy,
    last: Option<Published>,
}

impl Publisher {
    pub fn new(site: impl Into<String>, policy: PublishPolicy) -> Publisher {
        Publisher {
            site: site.into(),
            policy,
            last: None,
        }
    }

    pub fn site(&self) -> &str {
        &self.site
    }

    /// What was last published, if anything.
    pub fn last(&self) -> Option<&Published> {
        self.last.as_ref()
    }

    /// Publishes the links `pairs` give if a publication is due at the context's clock's
    /// now; returns why it published, `None` when it did not need to. On an error nothing
    /// is remembered, so the next step tries again.
    pub async fn step(
        &mut self,
        ctx: &Context,
        pairs: &[PairFigures],
    ) -> Result<Option<Publish>, Error> {
        let now = ctx.clock.now();
        let links = site_links(&self.site, pairs);
        let Some(why) = publish_due(&self.policy, self.last.as_ref(), &links, now) else {
            return Ok(None);
        };
        publish(ctx, &self.site, &measured_links(&self.site, &links, now)).await?;
        self.last = Some(Published { links, at: now });
        Ok(Some(why))
    }

    /// Forgets what was published (this agent is no longer its site's publisher).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

/// What the agent watches: Nodes, the agent pods (by label, in their namespace) and the
/// topologies (for the site label). Cheap to clone.
#[derive(Clone, Debug)]
pub struct AgentCaches {
    pub nodes: Cache<Node>,
    pub pods: Cache<Pod>,
    pub topologies: Cache<NetworkTopology>,
}

impl AgentCaches {
    /// Starts watching; `pod_selector` is a label selector (`app.kubernetes.io/name=...`)
    /// of the agent pods in `namespace`.
    pub fn start(
        client: &kube::Client,
        namespace: &str,
        pod_selector: &str,
        shutdown: &CancellationToken,
    ) -> AgentCaches {
        AgentCaches {
            nodes: Cache::spawn(
                Api::all(client.clone()),
                watcher::Config::default(),
                shutdown.clone(),
            ),
            pods: Cache::spawn(
                Api::namespaced(client.clone(), namespace),
                watcher::Config::default().labels(pod_selector),
                shutdown.clone(),
            ),
            topologies: Cache::spawn(
                Api::all(client.clone()),
                watcher::Config::default(),
                shutdown.clone(),
            ),
        }
    }

    pub async fn wait_ready(&self) {
        self.nodes.wait_ready().await;
        self.pods.wait_ready().await;
        self.topologies.wait_ready().await;
    }

    /// The site label of the `default` topology (the default one without it).
    pub fn site_label(&self) -> String {
        self.topologies
            .get(None, DEFAULT_TOPOLOGY)
            .map(|t| t.spec.site_label.clone())
            .unwrap_or_else(|| edgeplane_api::network::DEFAULT_SITE_LABEL.to_string())
    }

    /// The agent nodes now, and warnings about pods that could not be used.
    pub fn agent_nodes(&self) -> (Vec<AgentNode>, Vec<String>) {
        let nodes: Vec<Node> = self.nodes.list().iter().map(|n| (**n).clone()).collect();
        let pods: Vec<Pod> = self.pods.list().iter().map(|p| (**p).clone()).collect();
        agent_nodes(&nodes, &pods, &self.site_label())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub source: String,
    pub source_site: String,
    pub destination: String,
    pub destination_site: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuantileLabels {
    pub source: String,
    pub source_site: String,
    pub destination: String,
    pub destination_site: String,
    /// `0.5`, `0.9`, `0.99`.
    pub quantile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JitterLabels {
    pub source: String,
    pub source_site: String,
    pub destination: String,
    pub destination_site: String,
    /// `ipdv` (mean |IPDV|, RFC 3393) or `interarrival` (RFC 3550).
    pub estimator: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PublicationLabels {
    /// `first`, `refresh`, `changed`, `error`.
    pub reason: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The agent's metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AgentMetrics {
    pub rtt: Family<QuantileLabels, FloatGauge>,
    pub jitter: Family<JitterLabels, FloatGauge>,
    pub loss: Family<PeerLabels, FloatGauge>,
    pub stale: Family<PeerLabels, Gauge>,
    pub peers: Gauge,
    pub probes_sent: Counter,
    pub replies_ignored: Counter,
    pub publications: Family<PublicationLabels, Counter>,
    /// The peers (name, site) set last, so that peers that left lose their series.
    shown: Arc<std::sync::Mutex<BTreeSet<(String, String)>>>,
}

impl AgentMetrics {
    pub fn register(metrics: &Metrics) -> AgentMetrics {
        let m = AgentMetrics {
            rtt: Family::default(),
            jitter: Family::default(),
            loss: Family::default(),
            stale: Family::default(),
            peers: Gauge::default(),
            probes_sent: Counter::default(),
            replies_ignored: Counter::default(),
            publications: Family::default(),
            shown: Arc::default(),
        };
        metrics.register(
            "agent_rtt_seconds",
            "Round-trip delay to a peer over the agent's window (reflector processing removed), by quantile",
            m.rtt.clone(),
        );
        metrics.register(
            "agent_jitter_seconds",
            "Forward-direction jitter to a peer over the agent's window, by estimator",
            m.jitter.clone(),
        );
        metrics.register(
            "agent_loss_ratio",
            "Lost over settled probes to a peer over the agent's window",
            m.loss.clone(),
        );
        metrics.register(
            "agent_peer_stale",
            "1 while a peer has answered nothing for the stale timeout (its figures are not published)",
            m.stale.clone(),
        );
        metrics.register("agent_peers", "Peers the agent probes", m.peers.clone());
        metrics.register(
            "agent_probes_sent",
            "STAMP test packets the agent sent",
            m.probes_sent.clone(),
        );
        metrics.register(
            "agent_replies_ignored",
            "Answers the agent did not measure (malformed, unknown, duplicate, inconsistent)",
            m.replies_ignored.clone(),
        );
        metrics.register(
            "agent_publications",
            "Writes of the site's measured links to the topology status, by reason",
            m.publications.clone(),
        );
        m
    }

    /// Sets the per-peer figures of the agent on `source` (in `source_site`); peers no
    /// longer given lose their series. Figures not measured (no answer yet) are not set.
    pub fn update(&self, source: &str, source_site: &str, pairs: &[PairFigures]) {
        let labels = |d: &str, ds: &str| PeerLabels {
            source: source.to_string(),
            source_site: source_site.to_string(),
            destination: d.to_string(),
            destination_site: ds.to_string(),
        };
        let quantile = |d: &str, ds: &str, q: &str| QuantileLabels {
            source: source.to_string(),
            source_site: source_site.to_string(),
            destination: d.to_string(),
            destination_site: ds.to_string(),
            quantile: q.to_string(),
        };
        let jitter = |d: &str, ds: &str, e: &str| JitterLabels {
            source: source.to_string(),
            source_site: source_site.to_string(),
            destination: d.to_string(),
            destination_site: ds.to_string(),
            estimator: e.to_string(),
        };
        let Ok(mut shown) = self.shown.lock() else {
            return;
        };
        let now: BTreeSet<(String, String)> = pairs
            .iter()
            .map(|p| (p.peer.clone(), p.peer_site.clone()))
            .collect();
        for (d, ds) in shown.difference(&now) {
            for q in QUANTILES {
                self.rtt.remove(&quantile(d, ds, q));
            }
            for e in ESTIMATORS {
                self.jitter.remove(&jitter(d, ds, e));
            }
            self.loss.remove(&labels(d, ds));
            self.stale.remove(&labels(d, ds));
        }
        for p in pairs {
            let (d, ds) = (p.peer.as_str(), p.peer_site.as_str());
            for (q, v) in QUANTILES
                .iter()
                .zip([p.rtt_p50_ns, p.rtt_p90_ns, p.rtt_p99_ns])
            {
                if let Some(v) = v {
                    self.rtt.get_or_create(&quantile(d, ds, q)).set(v / 1e9);
                }
            }
            for (e, v) in ESTIMATORS.iter().zip([p.ipdv_ns, p.jitter_ns]) {
                if let Some(v) = v {
                    self.jitter.get_or_create(&jitter(d, ds, e)).set(v / 1e9);
                }
            }
            if p.settled > 0 {
                let lost = p.settled.saturating_sub(p.received) as f64;
                self.loss
                    .get_or_create(&labels(d, ds))
                    .set(lost / p.settled as f64);
            }
            self.stale
                .get_or_create(&labels(d, ds))
                .set(i64::from(p.stale));
        }
        self.peers.set(pairs.len() as i64);
        *shown = now;
    }
}

const QUANTILES: [&str; 3] = ["0.5", "0.9", "0.99"];
const ESTIMATORS: [&str; 2] = ["ipdv", "interarrival"];
