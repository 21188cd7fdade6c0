//! Giving back the network paths allocated for pods (design.md section 6; Turnbuckle leaks
//! them on eviction).
//!
//! A pod for which the scheduler allocated a path carries the allocation's id in the
//! annotation `network.edgeplane.io/allocation` and the finalizer
//! `network.edgeplane.io/path-release`, so it cannot disappear before the path is released.
//! When such a pod is deleted (by its owner, by hand, or evicted: an eviction is a
//! deletion) or finishes (Succeeded, Failed), this loop calls the network controller's
//! `Release` and then removes the finalizer (and, for a finished pod that stays, the
//! annotation), with a JSON patch that tests the finalizer is still where it was read.
//!
//! Failures are retried with backoff. If the controller cannot release for
//! [`GIVE_UP_AFTER`] after the pod's deletion, or no controller is registered any more, the
//! finalizer is removed anyway with a Warning event: a pod must not stay Terminating forever
//! because of a path, and the reference controller releases allocations whose binding has
//! been gone for its orphan grace. Only the leader releases.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::names::{ALLOCATION_ANNOTATION, PATH_RELEASE_FINALIZER};
use edgeplane_core::planner::PodKey;
use edgeplane_core::planner::convert::pod_key;
use edgeplane_netctl::ReleaseRequest;
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Patch;
use serde_json::json;
use tokio::time::Instant;

use super::discover::{NetworkDiscovery, allocation_of};
use super::{OutcomeLabels, SchedulerMetrics, pod_ref};
use crate::cache::{Caches, Change};
use crate::context::Context;
use crate::error::{Backoff, Error};
use crate::events::{EventSpec, EventType, reasons};

/// How long after a pod's deletion the finalizer is removed even though the path could
/// not be released.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

/// What a pod needs from this loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing (no finalizer, or the pod still runs).
    Nothing,
    /// Deleted: release, then remove the finalizer.
    Deleted { id: Option<String> },
    /// Finished and kept: release, then remove the finalizer and the annotation.
    Finished { id: Option<String> },
}

/// What the pod needs: it holds the finalizer and is being deleted or has finished.
pub fn need(pod: &Pod) -> Need {
    let holds = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == PATH_RELEASE_FINALIZER);
    if !holds {
        return Need::Nothing;
    }
    let id = allocation_of(pod).map(str::to_string);
    if pod.metadata.deletion_timestamp.is_some() {
        return Need::Deleted { id };
    }
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    if finished {
        Need::Finished { id }
    } else {
        Need::Nothing
    }
}

/// The JSON patch that removes the finalizer (tested in place, so a concurrent change to
/// the list fails with 422 instead of removing someone else's), and the annotation when
/// the pod stays (`keep_annotation` false).
pub fn removal_patch(pod: &Pod, remove_annotation: bool) -> Option<json_patch::Patch> {
    let index = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .position(|f| f == PATH_RELEASE_FINALIZER)?;
    let mut ops = vec![
        json!({"op": "test", "path": format!("/metadata/finalizers/{index}"), "value": PATH_RELEASE_FINALIZER}),
        json!({"op": "remove", "path": format!("/metadata/finalizers/{index}")}),
    ];
    if remove_annotation && allocation_of(pod).is_some() {
        let path = format!(
            "/metadata/annotations/{}",
            ALLOCATION_ANNOTATION.replace('~', "~0").replace('/', "~1")
        );
        ops.push(json!({"op": "remove", "path": path}));
    }
    serde_json::from_value(serde_json::Value::Array(ops)).ok()
}

fn deleted_for(pod: &Pod, now: Timestamp) -> Duration {
    pod.metadata
        .deletion_timestamp
        .as_ref()
        .and_then(|t| Duration::try_from(now.duration_since(t.0)).ok())
        .unwrap_or(Duration::ZERO)
}

/// Runs until the context's shutdown: releases the paths of pods that went away.
pub(crate) async fn run(
    ctx: Context,
    caches: Caches,
    discovery: Arc<dyn NetworkDiscovery>,
    metrics: SchedulerMetrics,
) {
    let shutdown = ctx.shutdown.clone();
    let changes = caches.pods.changes();
    let mut changes = std::pin::pin!(changes);
    let mut role = Some(ctx.leadership.watch());
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = caches.pods.wait_ready() => {}
    }
    let scan = |caches: &Caches| -> BTreeSet<PodKey> {
        caches
            .pods
            .list()
            .iter()
            .filter(|p| need(p) != Need::Nothing)
            .map(|p| pod_key(p))
            .collect()
    };
    let mut pending = scan(&caches);
    let backoff: Backoff<PodKey> = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut retry_at: Option<Instant> = None;
    loop {
        if ctx.leadership.is_leader()
            && !pending.is_empty()
            && retry_at.is_none_or(|t| Instant::now() >= t)
        {
            retry_at = None;
            let keys: Vec<PodKey> = pending.iter().cloned().collect();
            for key in keys {
                let Some(pod) = caches.pods.get(Some(&key.namespace), &key.name) else {
                    pending.remove(&key);
                    continue;
                };
                match release_one(&ctx, &caches, discovery.as_ref(), &metrics, &pod).await {
                    Ok(()) => {
                        backoff.succeed(&key);
                        pending.remove(&key);
                    }
                    Err(wait) => {
                        let wait = wait.unwrap_or_else(|| backoff.fail(key.clone()));
                        let at = Instant::now() + wait;
                        retry_at = Some(retry_at.map_or(at, |r| r.min(at)));
                    }
                }
            }
            continue;
        }
        let deadline = retry_at.filter(|_| !pending.is_empty());
        let wake = async move {
            match deadline {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let role_changed = async {
            match role.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            alive = role_changed => {
                if !alive {
                    // Leadership is fixed (or the elector is gone): roles no longer change.
                    role = None;
                }
                pending = scan(&caches);
                retry_at = None;
            }
            Some(change) = changes.next() => match change {
                Change::Applied { new, .. } => {
                    if need(&new) != Need::Nothing {
                        pending.insert(pod_key(&new));
                    }
                }
                Change::Deleted(old) => {
                    pending.remove(&pod_key(&old));
                }
                Change::Resynced => pending = scan(&caches),
            },
            _ = wake => {}
        }
    }
}

/// Releases one pod's path and removes its finalizer. `Err(Some(wait))` retries after
/// `wait`, `Err(None)` with the backoff.
async fn release_one(
    ctx: &Context,
    caches: &Caches,
    discovery: &dyn NetworkDiscovery,
    metrics: &SchedulerMetrics,
    pod: &Pod,
) -> Result<(), Option<Duration>> {
    let key = pod_key(pod);
    let (id, deleted) = match need(pod) {
        Need::Nothing => return Ok(()),
        Need::Deleted { id } => (id, true),
        Need::Finished { id } => (id, false),
    };
    let count = |outcome: &str| {
        metrics
            .path_releases
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    };
    let how = if deleted { "deleted" } else { "finished" };
    let mut warning = None;
    let note = match &id {
        None => format!("pod {key} was {how}; it holds no allocation"),
        Some(id) => match discovery
            .resolve(&caches.services.list())
            .map(|n| n.timed(&ctx.metrics.network_controller()))
        {
            None => {
                count("no-controller");
                warning = Some(());
                format!(
                    "pod {key} was {how}, but no network controller is registered: allocation {id} was not released (the controller's own clean-up of allocations whose binding is gone will free it)"
                )
            }
            Some(net) => {
                let request = ReleaseRequest {
                    id: id.clone(),
                    binding: None,
                    rules: Vec::new(),
                };
                match net.controller.release(&request).await {
                    Ok(r) => {
                        count("released");
                        match (r.released, r.deactivated) {
                            (true, true) => format!(
                                "pod {key} was {how}: released path allocation {id}; the path is no longer active"
                            ),
                            (true, false) => format!(
                                "pod {key} was {how}: released path allocation {id}; the path stays active for others"
                            ),
                            (false, _) => format!(
                                "pod {key} was {how}: path allocation {id} was released already"
                            ),
                        }
                    }
                    Err(error) => {
                        let gone_for = deleted_for(pod, ctx.clock.now());
                        if !deleted || gone_for < GIVE_UP_AFTER {
                            count("failed");
                            tracing::warn!(pod = %key, allocation = %id, %error, "could not release the path; retrying");
                            return Err(None);
                        }
                        count("abandoned");
                        warning = Some(());
                        format!(
                            "pod {key} was {how} {}s ago and its path allocation {id} could not be released ({error}); the finalizer is removed so the pod can go",
                            gone_for.as_secs()
                        )
                    }
                }
            }
        },
    };
    let Some(patch) = removal_patch(pod, !deleted) else {
        return Ok(());
    };
    let removed = ctx
        .patch::<Pod, ()>(
            Some(&key.namespace),
            &pod.name_any(),
            &Patch::Json(patch),
            &format!("removing the finalizer of pod {key}"),
        )
        .await;
    match removed {
        Ok(_) => {}
        Err(e @ Error::NotLeader(_)) => {
            tracing::debug!(%e, "not releasing");
            return Err(Some(Duration::from_secs(1)));
        }
        Err(e) => {
            return match e.status_code() {
                Some(404) => Ok(()),
                // Changed since read: the cache brings the new state.
                Some(409 | 422) => Err(Some(Duration::from_millis(200))),
                _ => {
                    tracing::warn!(pod = %key, error = %e, "could not remove the finalizer; retrying");
                    Err(None)
                }
            };
        }
    }
    ctx.events()
        .publish_or_log(
            &pod_ref(pod),
            EventSpec {
                type_: if warning.is_some() {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: reasons::PATH_RELEASED,
                action: "Release",
                note,
            },
        )
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn deleted_or_finished_pods_with_the_finalizer_need_a_release() {
        let meta = json!({"name": "r", "namespace": "ar",
            "annotations": {"network.edgeplane.io/allocation": "offer.a.1.x"},
            "finalizers": ["other", "network.edgeplane.io/path-release"]});
        let running = pod(json!({"metadata": meta, "status": {"phase": "Running"}}));
        assert_eq!(need(&running), Need::Nothing);
        let mut deleting = running.clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2025-06-01T00:00:00Z"
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}")),
            ));
        assert_eq!(
            need(&deleting),
            Need::Deleted {
                id: Some("offer.a.1.x".into())
            }
        );
        let finished = pod(json!({"metadata": meta, "status": {"phase": "Succeeded"}}));
        assert_eq!(
            need(&finished),
            Need::Finished {
                id: Some("offer.a.1.x".into())
            }
        );
        let without = pod(json!({"metadata": {"name": "r"}, "status": {"phase": "Failed"}}));
        assert_eq!(need(&without), Need::Nothing);
    }

    #[test]
    fn the_finalizer_is_removed_where_it_is() {
        let p = pod(json!({"metadata": {"name": "r",
            "annotations": {"network.edgeplane.io/allocation": "x"},
            "finalizers": ["other", "network.edgeplane.io/path-release"]}}));
        let patch = removal_patch(&p, true).unwrap_or_else(|| panic!("no patch"));
        assert_eq!(
            serde_json::to_value(&patch).unwrap_or_default(),
            json!([
                {"op": "test", "path": "/metadata/finalizers/1", "value": "network.edgeplane.io/path-release"},
                {"op": "remove", "path": "/metadata/finalizers/1"},
                {"op": "remove", "path": "/metadata/annotations/network.edgeplane.io~1allocation"},
            ])
        );
        let mut doc = serde_json::to_value(&p).unwrap_or_default();
        json_patch::patch(&mut doc, &patch).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(doc["metadata"]["finalizers"], json!(["other"]));
        assert_eq!(doc["metadata"]["annotations"], json!({}));
        assert_eq!(removal_patch(&p, false).map(|p| p.0.len()), Some(2));
        assert!(removal_patch(&pod(json!({"metadata": {"name": "r"}})), true).is_none());
    }
}
