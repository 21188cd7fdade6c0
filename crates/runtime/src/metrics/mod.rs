//! Prometheus metrics: one registry per process, served at `/metrics` in the text format.
//!
//! Metrics every component shares are fields of [`Metrics`]; components register their own
//! with [`Metrics::register`] or, for values computed at scrape time from a cache,
//! [`Metrics::register_collector`]. Every name starts with `edgeplane_`, except the
//! standard `process_*` metrics ([`process`]). docs/metrics.md lists every metric, and
//! `tests/metrics_doc.rs` fails when one registered here is missing from it.
//!
//! Conventions: a counter counts one thing, its results told apart by an `outcome` label;
//! unlabelled series are registered only by the component that moves them (no series that
//! is always zero), labelled families show a series once it has a value.

pub mod bindings;
pub mod hub;
pub mod network;
pub mod process;
pub mod providers;

use std::sync::{Mutex, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub component: String,
    /// `apply`, `apply_status`, `create`, `delete`, `event`.
    pub verb: String,
    /// The resource's kind.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `offer`, `binding`, `policy-status`, `topology-status`, `scheduler`, ...
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    /// [`crate::Error::kind`]: `conflict`, `throttled`, `server`, `transport`, ...
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    pub component: String,
}

/// The process's registry and the metrics shared by components.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// The `process_*` metrics, outside the `edgeplane_` prefix.
    process: Registry,
    /// What [`Metrics::registered`] answers.
    registered: Mutex<Vec<(String, &'static str)>>,
    /// Registered by the first component that calls a network controller.
    network_controller: OnceLock<network::NetworkControllerMetrics>,
    /// Registered by the first component that calls external providers.
    providers: OnceLock<providers::ProviderMetrics>,
    /// `edgeplane_api_writes_total{component,verb,kind}`: writes sent to the API server.
    pub api_writes: Family<WriteLabels, Counter>,
    /// `edgeplane_reconciles_total{controller}`.
    pub reconciles: Family<ControllerLabels, Counter>,
    /// `edgeplane_reconcile_errors_total{controller,kind}`.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// `edgeplane_reconcile_duration_seconds{controller}`.
    pub reconcile_duration: Family<ControllerLabels, Histogram>,
    /// `edgeplane_leader{component}`: 1 while this replica holds the component's Lease.
    pub leader: Family<ComponentLabels, Gauge>,
    /// `edgeplane_provider_errors_total{rule}`: rule outcomes in Error.
    pub provider_errors: Family<RuleLabels, Counter>,
    /// `edgeplane_compliance_changes_total{from,to}`.
    pub compliance_changes: Family<TransitionLabels, Counter>,
    /// `edgeplane_cluster_view_builds_total`: network graph rebuilds (nodes or topology
    /// changed); registered by the first view cache (`netctl serve` has none).
    view_builds: OnceLock<Counter>,
}

/// The buckets of every latency histogram: 100us .. ~26s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

/// `edgeplane_build_info`'s labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version (the chart's appVersion).
    pub version: String,
    /// `release` or `debug`: a debug build is slow, worth seeing on a dashboard.
    pub profile: String,
    pub os: String,
    pub arch: String,
}

impl BuildLabels {
    pub fn current() -> BuildLabels {
        BuildLabels {
            version: env!("CARGO_PKG_VERSION").into(),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .into(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
        }
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("edgeplane")),
            process: process::registry(),
            registered: Mutex::new(
                process::FAMILIES
                    .iter()
                    .map(|(name, kind)| (name.to_string(), *kind))
                    .collect(),
            ),
            network_controller: OnceLock::new(),
            providers: OnceLock::new(),
            api_writes: Family::default(),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(latency_histogram as _),
            leader: Family::default(),
            provider_errors: Family::default(),
            compliance_changes: Family::default(),
            view_builds: OnceLock::new(),
        };
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info.get_or_create(&BuildLabels::current()).set(1);
        m.register(
            "build_info",
            "1, labelled with the version and build of the running binary",
            build_info,
        );
        m.register(
            "api_writes",
            "Writes sent to the Kubernetes API server",
            m.api_writes.clone(),
        );
        m.register("reconciles", "Reconciliations run", m.reconciles.clone());
        m.register(
            "reconcile_errors",
            "Reconciliations that failed and were requeued with backoff",
            m.reconcile_errors.clone(),
        );
        m.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation",
            m.reconcile_duration.clone(),
        );
        m.register(
            "leader",
            "1 while this replica holds the component's Lease",
            m.leader.clone(),
        );
        m.register(
            "provider_errors",
            "Rule evaluations that ended in Error (provider unreachable, bad value, no provider)",
            m.provider_errors.clone(),
        );
        m.register(
            "compliance_changes",
            "Binding compliance transitions",
            m.compliance_changes.clone(),
        );
        m
    }

    /// `edgeplane_cluster_view_builds_total`, registered on first use.
    pub fn view_builds(&self) -> Counter {
        self.view_builds
            .get_or_init(|| {
                let counter = Counter::default();
                self.register(
                    "cluster_view_builds",
                    "Network graph rebuilds after node or topology changes",
                    counter.clone(),
                );
                counter
            })
            .clone()
    }

    /// The network-controller call metrics, registered on first use (one set per
    /// process, whichever components share it).
    pub fn network_controller(&self) -> network::NetworkControllerMetrics {
        self.network_controller
            .get_or_init(|| network::NetworkControllerMetrics::register(self))
            .clone()
    }

    /// The external provider call metrics, registered on first use.
    pub fn providers(&self) -> providers::ProviderMetrics {
        self.providers
            .get_or_init(|| providers::ProviderMetrics::register(self))
            .clone()
    }

    /// Registers a component's own metric (`name` without the `edgeplane_` prefix).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.remember(name, metric.metric_type());
        self.lock().register(name, help, metric);
    }

    /// Registers a collector, asked for its values at every scrape, with the families it
    /// encodes (names without the prefix, and their types).
    pub fn register_collector(
        &self,
        families: &[(&str, MetricType)],
        collector: Box<dyn Collector>,
    ) {
        for (name, metric_type) in families {
            self.remember(name, *metric_type);
        }
        self.lock().register_collector(collector);
    }

    /// The metric families registered so far, as PromQL names them (counters with
    /// `_total`, histograms by their base name: `_bucket`, `_sum`, `_count` follow), with
    /// their type (`counter`, `gauge`, `histogram`), whether or not they have a series yet
    /// (an empty family shows nothing when scraped).
    pub fn registered(&self) -> Vec<(String, &'static str)> {
        self.registered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn remember(&self, name: &str, metric_type: MetricType) {
        let (suffix, kind) = match metric_type {
            MetricType::Counter => ("_total", "counter"),
            MetricType::Gauge => ("", "gauge"),
            MetricType::Histogram => ("", "histogram"),
            _ => ("", "unknown"),
        };
        self.registered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((format!("edgeplane_{name}{suffix}"), kind));
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        let encoded = encode_registry(&mut out, &self.lock())
            .and_then(|()| encode_registry(&mut out, &self.process))
            .and_then(|()| encode_eof(&mut out));
        if let Err(e) = encoded {
            tracing::warn!(error = %e, "encoding metrics");
        }
        out
    }

    /// Counts one write.
    pub fn count_write(&self, component: &str, verb: &str, kind: &str) {
        self.api_writes
            .get_or_create(&WriteLabels {
                component: component.into(),
                verb: verb.into(),
                kind: kind.into(),
            })
            .inc();
    }

    /// Writes counted so far by `component` (all verbs and kinds).
    pub fn writes_by(&self, component: &str) -> u64 {
        // Family has no iteration; encode and sum, which is fine for tests and debugging.
        let text = self.encode();
        text.lines()
            .filter(|l| {
                l.starts_with("edgeplane_api_writes_total{")
                    && l.contains(&format!("component=\"{component}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_and_write_counts() {
        let m = Metrics::new();
        m.count_write("edgeplane-controller", "apply", "ConstraintPolicyBinding");
        m.count_write("edgeplane-controller", "delete", "ConstraintPolicyBinding");
        m.count_write("other", "apply", "Pod");
        let text = m.encode();
        assert!(text.contains("edgeplane_api_writes_total{component=\"edgeplane-controller\",verb=\"apply\",kind=\"ConstraintPolicyBinding\"} 1"), "{text}");
        // An empty family shows nothing, but it is known as registered.
        assert!(
            !text.contains("edgeplane_reconcile_duration_seconds"),
            "{text}"
        );
        let registered = m.registered();
        for name in [
            "edgeplane_reconcile_duration_seconds",
            "edgeplane_api_writes_total",
            "edgeplane_build_info",
            "process_cpu_seconds_total",
        ] {
            assert!(
                registered.iter().any(|(r, _)| r == name),
                "{name} in {registered:?}"
            );
        }
        assert_eq!(m.writes_by("edgeplane-controller"), 2);
        assert_eq!(m.writes_by("nobody"), 0);
    }

    #[test]
    fn a_fresh_registry_shows_no_series_that_nothing_moved() {
        // A process that registered nothing of its own shows what it is and how it runs,
        // and no zero counter of some other component.
        let text = Metrics::new().encode();
        let samples: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        assert!(!samples.is_empty());
        for name in samples {
            assert!(
                name == "edgeplane_build_info" || name.starts_with("process_"),
                "{name} in a fresh registry:\n{text}"
            );
        }
    }

    #[test]
    fn build_info_process_metrics_and_one_eof() {
        let text = Metrics::new().encode();
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            text.contains(&format!("edgeplane_build_info{{version=\"{version}\",")),
            "{text}"
        );
        assert!(
            text.contains("# TYPE process_cpu_seconds counter"),
            "{text}"
        );
        assert!(!text.contains("edgeplane_process_"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
