//! The descheduler's Prometheus metrics, registered in the component's registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// The descheduler's metrics. Cheap to clone (the families are shared).
#[derive(Clone, Debug, Default)]
pub struct DeschedulerMetrics {
    /// `edgeplane_descheduler_cycles_total`: cycles run by the leader.
    pub cycles: Counter,
    /// `edgeplane_descheduler_mitigations_total{outcome}`: `accepted`, `refused` (the
    /// network controller answered that it cannot), `failed` (the call failed), `invalid`
    /// (no request could be made from the binding: a pod or rule is missing).
    pub mitigations: Family<OutcomeLabels, Counter>,
    /// `edgeplane_descheduler_evictions_total{outcome}`: `evicted`, `blocked` (a
    /// PodDisruptionBudget, 429), `failed`.
    pub evictions: Family<OutcomeLabels, Counter>,
    /// `edgeplane_descheduler_skipped_total{reason}`: bindings left alone, by the reason's
    /// kind (`limit-cycle`, `min-pod-age`, `no-candidate`, `dry-run`, ...); ignored
    /// violations count as `ignored`.
    pub skipped: Family<ReasonLabels, Counter>,
    /// `edgeplane_descheduler_migrations_total{outcome}`: live migrations of VM hops,
    /// `started` (the VirtualMachineInstanceMigration was created), `succeeded`, `failed`
    /// (as KubeVirt reports them), `error` (the create call failed).
    pub migrations: Family<OutcomeLabels, Counter>,
}

impl DeschedulerMetrics {
    pub fn register(metrics: &Metrics) -> DeschedulerMetrics {
        let m = DeschedulerMetrics::default();
        metrics.register(
            "descheduler_cycles",
            "Descheduler cycles run by the leader",
            m.cycles.clone(),
        );
        metrics.register(
            "descheduler_mitigations",
            "Mitigations of bindings in Violation, by outcome (accepted, refused, failed, invalid)",
            m.mitigations.clone(),
        );
        metrics.register(
            "descheduler_evictions",
            "Evictions through the Eviction API, by outcome (evicted, blocked, failed)",
            m.evictions.clone(),
        );
        metrics.register(
            "descheduler_skipped",
            "Bindings in Violation past their grace left alone, by reason",
            m.skipped.clone(),
        );
        metrics.register(
            "descheduler_migrations",
            "Live migrations of VMs by VirtualMachineInstanceMigration, by outcome (started, succeeded, failed, error)",
            m.migrations.clone(),
        );
        m
    }

    pub fn migration(&self, outcome: &str) {
        self.migrations
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn mitigation(&self, outcome: &str) {
        self.mitigations
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn eviction(&self, outcome: &str) {
        self.evictions
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn skip(&self, reason: &str) {
        self.skipped
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }
}
