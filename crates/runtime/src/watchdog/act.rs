//! Releasing a pod from the planner's gate: one JSON patch through the `Context` (the gate
//! removed, the reason in the annotation `edgeplane.io/gate-removed`) and a Warning Event
//! `GateRemoved` on the pod.

use edgeplane_core::events::{EventSpec, reasons};
use edgeplane_core::gate::{Ungate, ungate_patch};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Patch;

use crate::context::Context;
use crate::descheduler::act::reference;
use crate::error::Error;

/// What became of one release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Released,
    /// The pod changed (the gate moved or went: 422) or is gone (404): looked at again
    /// from the cache at the next look, if it still waits.
    Changed,
    /// Not the leader: nothing was sent.
    NotLeader,
    Failed(String),
}

/// Removes the planner's gate from `pod` and says why.
pub async fn release(ctx: &Context, pod: &Pod, ungate: &Ungate, timeout: &str) -> Outcome {
    let Some(patch) = ungate_patch(pod, &ungate.reason) else {
        return Outcome::Changed;
    };
    let action = format!("removing the planner's gate from pod {}", ungate.pod);
    let written = ctx
        .patch::<Pod, _>(
            Some(&ungate.pod.namespace),
            &ungate.pod.name,
            &Patch::<()>::Json(patch),
            &action,
        )
        .await;
    match written {
        Ok(_) => {}
        Err(Error::NotLeader(_)) => return Outcome::NotLeader,
        Err(e) if matches!(e.status_code(), Some(404 | 409 | 422)) => return Outcome::Changed,
        Err(e) => return Outcome::Failed(e.to_string()),
    }
    let note = format!(
        "the planner's gate is removed so that kube-scheduler places the pod without a plan: {} (--gate-timeout {timeout})",
        ungate.reason
    );
    ctx.events()
        .publish_or_log(
            &reference(pod),
            EventSpec::warning(reasons::GATE_REMOVED, "Ungate", note),
        )
        .await;
    Outcome::Released
}
