//! Topology status: `siteCount`, `linkCount`, `measuredLinkCount`, `observedGeneration`
//! and a `Valid` condition with the first problem, so `kubectl get ntop` tells whether the
//! network model is usable. `status.measured` belongs to the measurement agent and is never
//! applied here.

use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{NetworkTopology, NetworkTopologyStatus};
use edgeplane_core::status::{
    CONDITION_VALID, TopologySummary, link_bandwidth, same_summary, topology_status,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::{Shared, all_refs, drive, instrumented, reconcile_everything};
use crate::cache::{Caches, Change};
use crate::context::Context;
use crate::error::Error;
use crate::events::{EventSpec, EventType, reasons};
use crate::view::{MEASUREMENT_REFRESH, ViewCache, ViewChange};

type TopologyShared = Shared<NetworkTopology, ViewCache>;

pub async fn run(ctx: Context, caches: Caches, views: ViewCache) {
    let c = caches.clone();
    let topologies = caches.topologies.changes().map(move |change| match change {
        Change::Applied { old, new } => {
            let measured = |t: &NetworkTopology| t.status.as_ref().map(|s| s.measured.clone());
            if old.is_none_or(|o| o.spec != new.spec || measured(&o) != measured(&new)) {
                vec![ObjectRef::from_obj(&*new)]
            } else {
                vec![]
            }
        }
        Change::Deleted(_) => vec![],
        Change::Resynced => all_refs(&c.topologies),
    });
    let c = caches.clone();
    // A pod that moves changes the bandwidth reservations, when the view keeps them.
    let v = views.clone();
    let nodes = crate::cache::changes_of(views.subscribe()).map(move |change| match change {
        Ok(ViewChange::PodMoved { .. }) if !v.reserving_now() => vec![],
        _ => all_refs(&c.topologies),
    });
    let c = caches.clone();
    let reserved =
        crate::cache::changes_of(views.reservation_changes()).map(move |_| all_refs(&c.topologies));
    let c = caches.clone();
    let everything = reconcile_everything(&ctx, &caches).map(move |()| all_refs(&c.topologies));
    let triggers = futures::stream::select_all([
        topologies.boxed(),
        nodes.boxed(),
        reserved.boxed(),
        everything.boxed(),
    ])
    .flat_map(futures::stream::iter);
    let shared = Arc::new(Shared {
        ctx,
        caches: caches.clone(),
        backoff: Default::default(),
        name: "topology-status",
        extra: views.clone(),
    });
    drive(
        shared,
        &caches.topologies,
        triggers,
        1,
        Duration::ZERO,
        |t, shared| {
            let s = shared.clone();
            instrumented(t.clone(), shared, async move { reconcile(t, s).await })
        },
    )
    .await;
}

async fn reconcile(
    topology: Arc<NetworkTopology>,
    shared: Arc<TopologyShared>,
) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    if !ctx.leadership.is_leader() || topology.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let nodes: Vec<Node> = shared
        .caches
        .nodes
        .list()
        .iter()
        .map(|n| (**n).clone())
        .collect();
    let previous = topology.status.clone().unwrap_or_default();
    let mut status = topology_status(&topology, &nodes, &previous, ctx.clock.now());
    // What bandwidth rules reserve, from the shared view (the one providers read).
    // Only once every cache it reads has listed: a partial figure would be written, then
    // corrected (a restart must write nothing).
    if shared.extra.reservations_ready()
        && let Ok(view) = shared.extra.view()
    {
        status.bandwidth = link_bandwidth(&view);
    }
    // Measurements age out: look again while there are some.
    let next = if previous.measured.is_empty() {
        Action::await_change()
    } else {
        Action::requeue(MEASUREMENT_REFRESH.max(Duration::from_secs(1)))
    };
    if same_summary(&previous, &status) {
        return Ok(next);
    }
    let name = topology.name_any();
    ctx.apply_status(None, &name, &TopologySummary::of(&status))
        .await?;
    let invalid = |s: &NetworkTopologyStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == CONDITION_VALID && c.status == "False")
            .map(|c| c.message.clone())
    };
    if let Some(message) = invalid(&status)
        && invalid(&previous).as_ref() != Some(&message)
    {
        ctx.events()
            .publish_or_log(
                &topology.object_ref(&()),
                EventSpec {
                    type_: EventType::Warning,
                    reason: reasons::TOPOLOGY_INVALID,
                    action: "Validate",
                    note: message.to_string(),
                },
            )
            .await;
    }
    Ok(next)
}
