//! Every metric edgeplane registers, in one registry: what docs/metrics.md lists and what
//! the chart's dashboards and alerts may name (their tests compare against it). Each
//! component registers through the same functions when it starts.
//!
//! Kept out of `metrics` so that the metrics module does not reach into the components
//! that use it.

use std::sync::Arc;

use prometheus_client::metrics::family::Family;

use crate::metrics::{Metrics, bindings};

/// A registry with the metrics of every component registered.
pub fn all_metrics() -> Metrics {
    let m = Metrics::new();
    crate::scheduler::metrics::SchedulerMetrics::register(&m);
    crate::descheduler::DeschedulerMetrics::register(&m);
    crate::watchdog::WatchdogMetrics::register(&m);
    crate::measurement::AgentMetrics::register(&m);
    crate::metrics::hub::HubMetrics::register(&m);
    crate::webhook::register_admissions(&m, Family::default());
    bindings::BindingMetrics::register(&m, Vec::new, Arc::new(edgeplane_core::clock::SystemClock));
    m.network_controller();
    m.providers();
    m.view_builds();
    m
}
