//! The gate watchdog (a component of `edgeplane controller`): pods must not wait at the
//! planner's gate forever when no planning scheduler is alive to lift it.
//!
//! - observe ([`observe`]): the pods at the gate from the shared pod cache; whether a
//!   scheduler is alive from its Lease ([`SchedulerWatch`]);
//! - decide (`edgeplane_core::gate::decide`, pure): which pods have waited `timeout`
//!   with no scheduler alive;
//! - act ([`act`]): one JSON patch per pod through the `Context` (gate removed, annotation
//!   `edgeplane.io/gate-removed` with the reason) and a Warning Event `GateRemoved`, so
//!   that kube-scheduler places the pod without a plan.
//!
//! Only the leader of `edgeplane-controller` writes. It looks every `check` (30s) and,
//! when a pod's time runs out sooner, at that moment. docs/scheduler.md describes it for
//! operators.

pub mod act;
pub mod liveness;
pub mod observe;

use std::time::Duration;

use edgeplane_core::gate::{self, DEFAULT_TIMEOUT, Liveness};
use k8s_openapi::api::core::v1::Pod;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::cache::Cache;
use crate::context::Context;
use crate::metrics::Metrics;
pub use liveness::SchedulerWatch;

/// The longest time between two looks.
pub const CHECK: Duration = Duration::from_secs(30);

/// How the watchdog works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// How long a pod may wait at the gate with no scheduler alive (`--gate-timeout`).
    pub timeout: Duration,
    /// The longest time between two looks.
    pub check: Duration,
}

impl Default for WatchdogConfig {
    /// 5 minutes; a look at least every 30s.
    fn default() -> Self {
        WatchdogConfig {
            timeout: DEFAULT_TIMEOUT,
            check: CHECK,
        }
    }
}

/// The watchdog's metrics.
#[derive(Clone, Debug, Default)]
pub struct WatchdogMetrics {
    /// `edgeplane_gate_watchdog_released_total`: pods released from the gate.
    pub released: Counter,
    /// `edgeplane_gate_watchdog_gated_pods`: pods at the gate at the last look.
    pub gated: Gauge,
    /// `edgeplane_gate_scheduler_alive`: 1 when the last look found a live scheduler.
    pub alive: Gauge,
    /// `edgeplane_gate_watchdog_oldest_gated_seconds`: how long the longest-waiting pod
    /// at the gate has waited (0: none waits); what the "gated for long" alert reads.
    pub oldest_gated: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl WatchdogMetrics {
    pub fn register(metrics: &Metrics) -> WatchdogMetrics {
        let m = WatchdogMetrics::default();
        metrics.register(
            "gate_watchdog_released",
            "Pods whose planner gate the watchdog removed because no planning scheduler was alive",
            m.released.clone(),
        );
        metrics.register(
            "gate_watchdog_gated_pods",
            "Pods waiting at the planner's gate at the watchdog's last look",
            m.gated.clone(),
        );
        metrics.register(
            "gate_scheduler_alive",
            "1 when the watchdog's last look found a planning scheduler holding a fresh Lease",
            m.alive.clone(),
        );
        metrics.register(
            "gate_watchdog_oldest_gated_seconds",
            "How long the pod waiting longest at the planner's gate has waited, at the watchdog's last look (0: none waits)",
            m.oldest_gated.clone(),
        );
        m
    }
}

/// `5m`, `90s`.
fn flag(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(60) && s > 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// The gate watchdog.
pub struct Watchdog {
    ctx: Context,
    pods: Cache<Pod>,
    watch: SchedulerWatch,
    config: WatchdogConfig,
    metrics: WatchdogMetrics,
    /// Whether the last look found a scheduler alive (logged on change).
    was_alive: Option<bool>,
}

impl Watchdog {
    pub fn new(
        ctx: Context,
        pods: Cache<Pod>,
        watch: SchedulerWatch,
        config: WatchdogConfig,
    ) -> Watchdog {
        let metrics = WatchdogMetrics::register(&ctx.metrics);
        Watchdog {
            ctx,
            pods,
            watch,
            config,
            metrics,
            was_alive: None,
        }
    }

    /// Runs until the context's shutdown is cancelled.
    pub async fn run(mut self) {
        let shutdown = self.ctx.shutdown.clone();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = async { self.pods.wait_ready().await; self.watch.wait_ready().await } => {}
        }
        tracing::info!(timeout = ?self.config.timeout, scheduler = ?self.watch, "gate watchdog started");
        loop {
            let wait = self.look().await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One look: observe, decide, act. Returns how long to wait before the next.
    pub async fn look(&mut self) -> Duration {
        let Some(liveness) = self.watch.liveness() else {
            return self.config.check;
        };
        let alive = liveness.is_alive();
        self.metrics.alive.set(i64::from(alive));
        if self.was_alive != Some(alive) {
            match &liveness {
                Liveness::Alive { holder, .. } => {
                    tracing::info!(%holder, "a planning scheduler is alive")
                }
                Liveness::Dead { why, .. } => {
                    tracing::warn!(%why, timeout = ?self.config.timeout, "no planning scheduler is alive: pods at the planner's gate are released after the timeout")
                }
            }
            self.was_alive = Some(alive);
        }
        let pods = self.pods.list();
        let gated = observe::gated_pods(&pods);
        self.metrics
            .gated
            .set(i64::try_from(gated.len()).unwrap_or(i64::MAX));
        let now = self.ctx.clock.now();
        let oldest = gated
            .iter()
            .filter_map(|g| g.since)
            .min()
            .map(|since| now.duration_since(since).as_secs_f64().max(0.0))
            .unwrap_or(0.0);
        self.metrics.oldest_gated.set(oldest);
        let decision = gate::decide(&gated, &liveness, now, self.config.timeout);
        if !self.ctx.leadership.is_leader() {
            return self.config.check;
        }
        let timeout = flag(self.config.timeout);
        for ungate in &decision.ungate {
            let Some(pod) = self.pods.get(Some(&ungate.pod.namespace), &ungate.pod.name) else {
                continue;
            };
            match act::release(&self.ctx, &pod, ungate, &timeout).await {
                act::Outcome::Released => {
                    self.metrics.released.inc();
                    tracing::warn!(pod = %ungate.pod, reason = %ungate.reason, "removed the planner's gate");
                }
                act::Outcome::Changed | act::Outcome::NotLeader => {}
                act::Outcome::Failed(error) => {
                    tracing::warn!(pod = %ungate.pod, %error, "could not remove the planner's gate; retrying at the next look")
                }
            }
        }
        let until_next = decision
            .next
            .map(|next| Duration::try_from(next.duration_since(now)).unwrap_or(Duration::ZERO));
        until_next
            .map_or(self.config.check, |d| d.min(self.config.check))
            .max(Duration::from_millis(100))
    }
}

/// A watch of the planning scheduler's Lease `lease_namespace/edgeplane-scheduler` on the
/// context's client and clock, for the watchdog and the webhook of one process.
pub fn watch_scheduler(ctx: &Context, lease_namespace: &str) -> SchedulerWatch {
    SchedulerWatch::start(
        &ctx.client,
        lease_namespace,
        edgeplane_api::names::SCHEDULER_LEASE,
        ctx.clock.clone(),
        ctx.shutdown.clone(),
    )
}
