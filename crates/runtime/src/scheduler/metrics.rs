//! The scheduler's own metrics (all prefixed `edgeplane_scheduler_`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::metrics::{ErrorLabels, Metrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerLabels {
    /// What made the run due: `quiet-period` (no pod arrived for the quiet period) or
    /// `max-wait` (the oldest pod waited the maximum wait).
    pub trigger: String,
}

/// The scheduler's own metrics (all prefixed `edgeplane_scheduler_`).
#[derive(Clone, Debug)]
pub struct SchedulerMetrics {
    /// `edgeplane_scheduler_plan_runs_total{trigger}`.
    pub plan_runs: Family<TriggerLabels, Counter>,
    /// `edgeplane_scheduler_pods_planned_total`: pods whose placement was written.
    pub pods_planned: Counter,
    /// `edgeplane_scheduler_pods_unplaced_total`: pods a run could not place (counted per
    /// run).
    pub pods_unplaced: Counter,
    /// `edgeplane_scheduler_plan_duration_seconds`: time in the planner per run.
    pub plan_duration: Histogram,
    /// `edgeplane_scheduler_queue_depth`: pods waiting for the next plan.
    pub queue_depth: Gauge,
    /// `edgeplane_scheduler_unplaced_pods`: pods left unplaced, waiting for a change.
    pub unplaced_pods: Gauge,
    /// `edgeplane_scheduler_write_errors_total{controller,kind}`: failed pod writes.
    pub write_errors: Family<ErrorLabels, Counter>,
    /// `edgeplane_scheduler_discoveries_total{outcome}`: network controller questions.
    pub discoveries: Family<OutcomeLabels, Counter>,
    /// `edgeplane_scheduler_path_allocations_total{outcome}`: paths allocated for pods
    /// (`allocated`, `failed`, `released`: allocated but the pod was gone).
    pub path_allocations: Family<OutcomeLabels, Counter>,
    /// `edgeplane_scheduler_path_releases_total{outcome}`: paths given back when their pod
    /// went away (`released`, `failed`, `no-controller`, `abandoned`).
    pub path_releases: Family<OutcomeLabels, Counter>,
}

impl SchedulerMetrics {
    /// Creates the metrics and registers them in `metrics`.
    pub fn register(metrics: &Metrics) -> SchedulerMetrics {
        let m = SchedulerMetrics {
            plan_runs: Family::default(),
            pods_planned: Counter::default(),
            pods_unplaced: Counter::default(),
            plan_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            queue_depth: Gauge::default(),
            unplaced_pods: Gauge::default(),
            write_errors: Family::default(),
            discoveries: Family::default(),
            path_allocations: Family::default(),
            path_releases: Family::default(),
        };
        metrics.register(
            "scheduler_plan_runs",
            "Plan runs of the planning scheduler, by what made them due (quiet-period, max-wait)",
            m.plan_runs.clone(),
        );
        metrics.register(
            "scheduler_pods_planned",
            "Pods whose planned placement was written",
            m.pods_planned.clone(),
        );
        metrics.register(
            "scheduler_pods_unplaced",
            "Pods a plan run could not place (counted at every run)",
            m.pods_unplaced.clone(),
        );
        metrics.register(
            "scheduler_plan_duration_seconds",
            "Time spent in the planner per plan run",
            m.plan_duration.clone(),
        );
        metrics.register(
            "scheduler_queue_depth",
            "Pods waiting for the next plan",
            m.queue_depth.clone(),
        );
        metrics.register(
            "scheduler_unplaced_pods",
            "Pods left unplaced, waiting for nodes, topology or policies to change",
            m.unplaced_pods.clone(),
        );
        metrics.register(
            "scheduler_write_errors",
            "Pod writes (placement, binding, annotation) that failed and are retried",
            m.write_errors.clone(),
        );
        metrics.register(
            "scheduler_discoveries",
            "Discover questions to the network controller, by outcome",
            m.discoveries.clone(),
        );
        metrics.register(
            "scheduler_path_allocations",
            "Network paths allocated for pods no node satisfied, by outcome",
            m.path_allocations.clone(),
        );
        metrics.register(
            "scheduler_path_releases",
            "Network paths released when their pod went away, by outcome",
            m.path_releases.clone(),
        );
        m
    }
}

impl SchedulerMetrics {
    /// Counts a failed pod write by the kind of error.
    pub fn write_error(&self, error: &crate::error::Error) {
        self.write_errors
            .get_or_create(&ErrorLabels {
                controller: "scheduler".into(),
                kind: error.kind().into(),
            })
            .inc();
    }

    /// Counts a plan run made due by `due`.
    pub fn plan_run(&self, due: edgeplane_core::scheduler::queue::Due) {
        let trigger = match due {
            edgeplane_core::scheduler::queue::Due::Quiet => "quiet-period",
            edgeplane_core::scheduler::queue::Due::MaxWait => "max-wait",
        };
        self.plan_runs
            .get_or_create(&TriggerLabels {
                trigger: trigger.into(),
            })
            .inc();
    }

    /// Counts `outcome` in one of the outcome families.
    pub fn count(family: &Family<OutcomeLabels, Counter>, outcome: &str) {
        family
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }
}
