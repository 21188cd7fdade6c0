//! Running a scenario: the embedded cluster on virtual time, the components, the
//! observer, the driver, and the report at the end.
//!
//! Virtual time: the simulation runs on a current-thread tokio runtime whose clock is
//! paused. Tokio advances a paused clock to the next timer whenever every task is idle,
//! so 45 simulated minutes in which little happens take a fraction of a second, while
//! everything that happens at one instant (a controller reacting to a change, and the
//! reactions to its writes) completes before time moves on.
//!
//! Serving (`ServeOptions`): the cluster is also served over HTTP, and a pacer keeps time
//! moving at `speed` times real time: it alternates a short real sleep with
//! `tokio::time::advance` by the real time elapsed times `speed`, and is always ready to
//! run, so the runtime never jumps ahead on its own; between two ticks the runtime polls
//! its sockets, so kubectl's requests are answered within a tick.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, LifecycleConfig, kubeconfig};
use jiff::Timestamp;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::component::{Component, SimContext};
use crate::driver::{self, SETTLE, makes_pods};
use crate::journal::{Listener, SharedJournal, Silent};
use crate::observer::Observer;
use crate::report::{self, Report, ReportInput};
use crate::scenario::Scenario;
use crate::timeline::{Entry, EntryType, Source};

/// How long the pacer sleeps between two advances of virtual time (real time).
pub const PACER_TICK: Duration = Duration::from_millis(10);
/// Changes of each resource the simulation's cluster keeps for watches (the observer
/// reads them; it re-reads the state in the rare case it falls behind).
pub const WATCH_HISTORY: usize = 10_000;

/// Serve the cluster while the scenario runs, at `speed` times real time.
pub struct ServeOptions {
    pub addr: SocketAddr,
    /// Where to write a kubeconfig for kubectl.
    pub kubeconfig: Option<PathBuf>,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Called with the bound address once the server listens.
    pub on_ready: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
}

/// How to run a scenario.
pub struct RunOptions {
    /// Controllers and other components, started before the scenario's objects are
    /// applied.
    pub components: Vec<Box<dyn Component>>,
    /// Hears the timeline and progress as the run goes.
    pub listener: Box<dyn Listener>,
    pub serve: Option<ServeOptions>,
    /// What the virtual clock reads at the start (the wall clock by default).
    pub start_time: Option<Timestamp>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            components: Vec::new(),
            listener: Box::new(Silent),
            serve: None,
            start_time: None,
        }
    }
}

/// A run that could not happen.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("starting the simulation runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("loading the scenario's objects into the cluster: {0}")]
    Load(String),
    #[error("installing the edgeplane CRDs: {0}")]
    Crds(String),
    #[error("serving the cluster: {0}")]
    Serve(String),
    #[error("writing the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs a one-cluster scenario inside the current runtime, which must be a current-thread
/// runtime with paused time ([`crate::simulate::run_in_runtime`] picks it or the
/// multi-cluster run).
pub async fn single(scenario: &Scenario, options: RunOptions) -> Result<Report, SimError> {
    let wall = std::time::Instant::now();
    let RunOptions {
        components,
        listener,
        serve,
        start_time,
    } = options;
    let mut config = cluster_config(scenario, start_time);
    for c in &components {
        if let Some(hook) = c.pod_admission() {
            config = config.admission(hook);
        }
    }
    let cluster = EmbeddedCluster::start(config).await;
    let start = Instant::now();
    let crds = crds()?;
    cluster
        .apply_objects(crds)
        .await
        .map_err(|e| SimError::Crds(e.to_string()))?;
    // The scenario's CRDs (KubeVirt's and Multus' for network functions) before the
    // components start, so that their caches of those kinds start on served kinds.
    let (scenario_crds, objects): (Vec<Value>, Vec<Value>) = scenario
        .objects
        .iter()
        .cloned()
        .partition(crate::scenario::is_crd);
    let mut loaded = cluster
        .apply_objects(scenario_crds)
        .await
        .map_err(|e| SimError::Crds(e.to_string()))?;
    if scenario.kubevirt() {
        // KubeVirt's VirtualMachineInstanceMigration: upstream builds its CRD at run time
        // and ships no file (../shared/crds/README.md); the embedded cluster's copy.
        cluster
            .load_yaml(edgeplane_cluster::kubevirt::MIGRATION_CRD)
            .await
            .map_err(|e| SimError::Crds(format!("VirtualMachineInstanceMigration: {e}")))?;
    }

    let journal = SharedJournal::new(listener);
    let stop_observer = CancellationToken::new();
    let observer = tokio::spawn(
        Observer::new(cluster.api().clone(), journal.clone()).run(stop_observer.clone()),
    );

    // Components, on the cluster's client and clock.
    let shutdown = CancellationToken::new();
    let clock = cluster.clock();
    let mut running = Vec::new();
    let names: Vec<String> = components.iter().map(|c| c.name().to_string()).collect();
    for c in &components {
        let ctx = SimContext {
            client: cluster.client(),
            clock: Arc::new(clock),
            virtual_clock: clock,
            settings: scenario.settings.clone(),
            functions: scenario.functions(),
            shutdown: shutdown.clone(),
        };
        let name = c.name().to_string();
        let fut = c.start(ctx);
        let journal = journal.clone();
        running.push(tokio::spawn(async move {
            if let Err(e) = fut.await {
                let mut entry = Entry::new(
                    clock.elapsed(),
                    EntryType::Info,
                    format!("Component {name}"),
                    format!("stopped with an error: {e}"),
                    Source::Driver,
                );
                entry.component = Some(name);
                journal.push(entry);
            }
        }));
    }

    // The scenario's objects: first everything but the pods and the workloads that make
    // pods, then, once the components have seen them (every task idle: virtual time moves
    // on by SETTLE), the pods. So an admission step that reads offers from a cache (the
    // scheduler's gate) sees the offers before the pods they target arrive, as it would on
    // a cluster where the offers were applied first.
    let (workloads, setup): (Vec<Value>, Vec<Value>) = objects.into_iter().partition(makes_pods);
    loaded.extend(
        cluster
            .apply_objects(setup)
            .await
            .map_err(|e| SimError::Load(e.to_string()))?,
    );
    if !workloads.is_empty() {
        tokio::time::sleep(SETTLE).await;
        loaded.extend(
            cluster
                .apply_objects(workloads)
                .await
                .map_err(|e| SimError::Load(e.to_string()))?,
        );
    }
    journal.push(Entry::new(
        clock.elapsed(),
        EntryType::Applied,
        format!("Scenario {}", scenario.name),
        loaded_summary(&loaded),
        Source::Driver,
    ));

    // Serving and pacing.
    let pacer_stop = CancellationToken::new();
    let mut pacer = None;
    if let Some(serve) = serve {
        let addr = cluster
            .serve(serve.addr)
            .await
            .map_err(|e| SimError::Serve(e.to_string()))?;
        if let Some(path) = &serve.kubeconfig {
            std::fs::write(path, kubeconfig(addr, "default")).map_err(|source| {
                SimError::Kubeconfig {
                    path: path.clone(),
                    source,
                }
            })?;
        }
        if let Some(ready) = serve.on_ready {
            ready(addr);
        }
        let speed = if serve.speed.is_finite() && serve.speed > 0.0 {
            serve.speed
        } else {
            1.0
        };
        pacer = Some(tokio::spawn(pace(
            speed,
            journal.clone(),
            pacer_stop.clone(),
        )));
    }

    // Progress, about every 5% of the run.
    let progress_stop = CancellationToken::new();
    let progress = {
        let journal = journal.clone();
        let total = scenario.duration;
        let api = cluster.api().clone();
        let stop = progress_stop.clone();
        let step = (total / 20).max(Duration::from_secs(30));
        tokio::spawn(async move {
            let mut next = start + step;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep_until(next) => {}
                }
                if next >= start + total {
                    return;
                }
                let pods = api.lock().store.len(crate::observer::PODS);
                journal.lock().progress(next - start, total, pods);
                next += step;
            }
        })
    };

    // The events.
    for event in &scenario.events {
        tokio::time::sleep_until(start + event.at).await;
        driver::perform(&cluster, &journal, &scenario.name, event).await;
    }
    tokio::time::sleep_until(start + scenario.duration).await;

    // The end: read the state first, at the end instant exactly.
    let end = report::final_state(cluster.api());
    let simulated = start.elapsed();
    progress_stop.cancel();
    pacer_stop.cancel();
    stop_observer.cancel();
    let _ = progress.await;
    if let Some(p) = pacer {
        let _ = p.await;
    }
    let observer = observer.await;
    shutdown.cancel();
    driver::stop_all(running).await;
    cluster.shutdown().await;
    drop(observer);
    let (entries, series) = journal.take_recorded();
    Ok(report::build(ReportInput {
        scenario,
        entries: &entries,
        series,
        end,
        components: names,
        simulated,
        wall: wall.elapsed(),
    }))
}

/// edgeplane's CRDs, as objects to apply to a cluster of the run.
pub(crate) fn crds() -> Result<Vec<Value>, SimError> {
    edgeplane_api::crdgen::all()
        .into_iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SimError::Crds(e.to_string()))
}

/// The embedded cluster a scenario runs on: its seed, its node lifecycle and kubelet
/// timing, its clock starting at `start_time` (the wall clock's whole second by default).
pub(crate) fn cluster_config(scenario: &Scenario, start_time: Option<Timestamp>) -> ClusterConfig {
    let mut config = ClusterConfig {
        seed: scenario.settings.seed,
        watch_history: WATCH_HISTORY,
        lifecycle: LifecycleConfig {
            node_monitor_grace_period: scenario.settings.node_monitor_grace_period,
            default_not_ready_toleration_seconds: scenario.settings.default_toleration_seconds,
            default_unreachable_toleration_seconds: scenario.settings.default_toleration_seconds,
            ..LifecycleConfig::default()
        },
        ..ClusterConfig::default()
    }
    .pod_start_delay(scenario.settings.pod_startup);
    // Whole seconds: Kubernetes timestamps have no fraction, so deadlines computed from
    // them (a taint's timeAdded + tolerationSeconds) land on the timeline's seconds.
    config.start_time = Some(start_time.unwrap_or_else(|| {
        let now = jiff::Timestamp::now();
        jiff::Timestamp::from_second(now.as_second()).unwrap_or(now)
    }));
    config
}

/// `43 objects: 19 Nodes, 4 ConstraintPolicies, ...` in order of first appearance.
pub(crate) fn loaded_summary(objects: &[serde_json::Value]) -> String {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for o in objects {
        let kind = o
            .get("kind")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("object")
            .to_string();
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    let parts: Vec<String> = kinds
        .iter()
        .map(|(k, n)| format!("{n} {}", plural(k, *n)))
        .collect();
    format!(
        "loaded {} object{}: {}",
        objects.len(),
        if objects.len() == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

/// `Node` -> `Nodes`, `ConstraintPolicy` -> `ConstraintPolicies`.
pub fn plural(kind: &str, n: usize) -> String {
    if n == 1 {
        kind.to_string()
    } else if let Some(stem) = kind.strip_suffix('y') {
        format!("{stem}ies")
    } else if kind.ends_with('s') {
        format!("{kind}es")
    } else {
        format!("{kind}s")
    }
}

/// Moves virtual time at `speed` times real time until stopped. Always ready to run, so
/// the paused clock never jumps on its own.
async fn pace(speed: f64, journal: SharedJournal, stop: CancellationToken) {
    let mut last = std::time::Instant::now();
    while !stop.is_cancelled() {
        // A short real sleep on the runtime's thread: nothing else runs meanwhile, and
        // requests that arrive wait at most this long.
        std::thread::sleep(PACER_TICK);
        let now = std::time::Instant::now();
        let real = now.duration_since(last);
        last = now;
        tokio::time::advance(real.mul_f64(speed)).await;
        // Tell what happened without waiting for the next entry.
        journal.lock().flush();
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(plural("ConstraintPolicy", 2), "ConstraintPolicies");
        assert_eq!(plural("Node", 19), "Nodes");
        assert_eq!(plural("NetworkTopology", 1), "NetworkTopology");
        assert_eq!(plural("Ingress", 2), "Ingresses");
    }
}
