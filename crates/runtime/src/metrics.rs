//! Prometheus metrics: one registry per process, served at `/metrics` in the text format.
//!
//! Metrics every component shares are fields of [`Metrics`]; components register their own
//! with [`Metrics::register`] or, for values computed at scrape time from a cache,
//! [`Metrics::register_collector`]. Every name starts with `edgeplane_`.

use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
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
    /// `edgeplane_binding_evaluation_duration_seconds`: one binding through its providers.
    pub evaluation_duration: Histogram,
    /// `edgeplane_binding_evaluations_total`.
    pub evaluations: Counter,
    /// `edgeplane_binding_evaluations_skipped_total`: periodic evaluations skipped because
    /// nothing they read had changed.
    pub evaluations_skipped: Counter,
    /// `edgeplane_provider_errors_total{rule}`: rule outcomes in Error.
    pub provider_errors: Family<RuleLabels, Counter>,
    /// `edgeplane_compliance_changes_total{from,to}`.
    pub compliance_changes: Family<TransitionLabels, Counter>,
    /// `edgeplane_cluster_view_builds_total`: network graph rebuilds (nodes or topology
    /// changed).
    pub view_builds: Counter,
}

fn latency_histogram() -> Histogram {
    // 100us .. ~26s
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("edgeplane");
        let api_writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "api_writes",
            "Writes sent to the Kubernetes API server",
            api_writes.clone(),
        );
        let reconciles = Family::<ControllerLabels, Counter>::default();
        registry.register("reconciles", "Reconciliations run", reconciles.clone());
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed and were requeued with backoff",
            reconcile_errors.clone(),
        );
        let reconcile_duration =
            Family::<ControllerLabels, Histogram>::new_with_constructor(latency_histogram as _);
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation",
            reconcile_duration.clone(),
        );
        let leader = Family::<ComponentLabels, Gauge>::default();
        registry.register(
            "leader",
            "1 while this replica holds the component's Lease",
            leader.clone(),
        );
        let evaluation_duration = latency_histogram();
        registry.register(
            "binding_evaluation_duration_seconds",
            "Time to evaluate one binding through its providers",
            evaluation_duration.clone(),
        );
        let evaluations = Counter::default();
        registry.register(
            "binding_evaluations",
            "Bindings evaluated",
            evaluations.clone(),
        );
        let evaluations_skipped = Counter::default();
        registry.register(
            "binding_evaluations_skipped",
            "Periodic binding evaluations skipped: the binding, its offer and policies and the cluster view were unchanged and every rule is built in",
            evaluations_skipped.clone(),
        );
        let provider_errors = Family::<RuleLabels, Counter>::default();
        registry.register(
            "provider_errors",
            "Rule evaluations that ended in Error (provider unreachable, bad value, no provider)",
            provider_errors.clone(),
        );
        let compliance_changes = Family::<TransitionLabels, Counter>::default();
        registry.register(
            "compliance_changes",
            "Binding compliance transitions",
            compliance_changes.clone(),
        );
        let view_builds = Counter::default();
        registry.register(
            "cluster_view_builds",
            "Network graph rebuilds after node or topology changes",
            view_builds.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            api_writes,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            leader,
            evaluation_duration,
            evaluations,
            evaluations_skipped,
            provider_errors,
            compliance_changes,
            view_builds,
        }
    }

    /// Registers a component's own metric (`name` without the `edgeplane_` prefix).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock().register(name, help, metric);
    }

    /// Registers a collector, asked for its values at every scrape.
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        self.lock().register_collector(collector);
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.lock()) {
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
        assert!(text.contains("# TYPE edgeplane_binding_evaluation_duration_seconds histogram"));
        assert_eq!(m.writes_by("edgeplane-controller"), 2);
        assert_eq!(m.writes_by("nobody"), 0);
    }
}
