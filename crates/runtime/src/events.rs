//! Kubernetes Events: stable reasons and a recorder stamped by the component's clock.
//!
//! The simulator builds its timeline from Events, so reasons are constants that do not
//! change, and notes are whole sentences that name the object and say what happened and
//! why: `binding ar-stadium-1b5b: Compliant -> Violation: latency 12ms between renderer
//! (edge-3-a) and users (stadium) is worse than the limit 10ms`.
//!
//! Why not kube's `Recorder`: it stamps `eventTime` with the wall clock (the simulator and
//! the embedded cluster run on virtual time), and it folds repeated events with the same
//! reason on one object into a series that keeps the *first* note, so a binding's second
//! `ComplianceChanged` would read like its first. [`EventRecorder`] writes the same
//! `events.k8s.io/v1` objects (so `kubectl describe` lists them), one per occurrence, with
//! times from the [`Clock`], and only when this replica is the leader.

use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::ObjectMeta;

use crate::context::Context;
use crate::error::Error;

pub use edgeplane_core::events::{EventSpec, EventType, reasons};

/// Publishes `events.k8s.io/v1` Events for one component. Cheap to clone.
#[derive(Clone)]
pub struct EventRecorder {
    /// Its component is the `reportingController`, its identity the `reportingInstance`;
    /// it writes the events.
    ctx: Context,
}

/// Numbers the events of this process. Process-wide, not per recorder: components make a
/// recorder per reconcile, and on virtual time two events about one object can carry the
/// same instant (time stands still while there is work to do), so a per-recorder counter
/// starting at 0 gave both the same name and the second was refused as AlreadyExists.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// `regarding`'s name, the event's time, then the process-wide sequence.
fn event_name(object: &str, nanos: i128, sequence: u64) -> String {
    format!("{object}.{nanos:x}{sequence:04x}")
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder")
            .field("controller", &self.ctx.component)
            .field("instance", &self.ctx.identity)
            .finish()
    }
}

/// The longest note events.k8s.io accepts.
const MAX_NOTE: usize = 1024;

impl Context {
    /// The component's event recorder (clock-stamped, leader-gated).
    pub fn events(&self) -> EventRecorder {
        EventRecorder { ctx: self.clone() }
    }
}

impl EventRecorder {
    /// Publishes `event` about `regarding`. Cluster-scoped objects get their events in
    /// `default`, as kube's recorder does. Does nothing but return [`Error::NotLeader`]
    /// on a follower.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        event: EventSpec,
    ) -> Result<(), Error> {
        // Checked before a sequence number is taken, so followers do not use them up.
        self.ctx
            .ensure_leader(|| format!("event {}", event.reason))?;
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let body = event_object(&self.ctx, regarding, event, self.ctx.clock.now(), sequence);
        self.ctx.create_event(&body).await
    }

    /// [`publish`](Self::publish), logging failures instead of returning them: events
    /// are informative, and a failed one must not undo or repeat the write it reports.
    pub async fn publish_or_log(&self, regarding: &ObjectReference, event: EventSpec) {
        let reason = event.reason;
        match self.publish(regarding, event).await {
            Ok(()) | Err(Error::NotLeader(_)) => {}
            Err(error) => {
                tracing::warn!(%error, reason, object = ?regarding.name, "could not publish an event")
            }
        }
    }
}

/// The `events.k8s.io/v1` Event for `event` about `regarding` at `now`.
fn event_object(
    ctx: &Context,
    regarding: &ObjectReference,
    event: EventSpec,
    now: Timestamp,
    sequence: u64,
) -> Event {
    let namespace = regarding
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let object = regarding.name.as_deref().unwrap_or(&ctx.component);
    let mut note = event.note;
    if note.len() > MAX_NOTE {
        let mut cut = MAX_NOTE - 3;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    Event {
        metadata: ObjectMeta {
            // Unique across recorders and restarts; only the leader writes.
            name: Some(event_name(object, now.as_nanosecond(), sequence)),
            namespace: Some(namespace),
            ..ObjectMeta::default()
        },
        action: Some(event.action.to_string()),
        reason: Some(event.reason.to_string()),
        note: Some(note),
        type_: Some(event.type_.as_str().to_string()),
        regarding: Some(regarding.clone()),
        event_time: Some(MicroTime(now)),
        reporting_controller: Some(ctx.component.to_string()),
        reporting_instance: Some(ctx.identity.to_string()),
        ..Event::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use edgeplane_cluster::{ClusterConfig, EmbeddedCluster};
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use kube::Api;

    #[test]
    fn names_differ_by_sequence_at_one_instant() {
        assert_eq!(event_name("b", 0x10, 1), "b.100001");
        assert_ne!(event_name("b", 0x10, 1), event_name("b", 0x10, 2));
    }

    /// Two recorders (two reconciles) publishing about one object at one virtual instant:
    /// both events are kept.
    #[tokio::test(start_paused = true)]
    async fn recorders_at_one_instant_do_not_collide() {
        let cluster = EmbeddedCluster::start(ClusterConfig::default()).await;
        let context = crate::context::Context::new(cluster.client(), "edgeplane-controller")
            .with_clock(Arc::new(cluster.clock()));
        let regarding = ObjectReference {
            kind: Some("ConstraintPolicyBinding".into()),
            name: Some("b".into()),
            namespace: Some("default".into()),
            ..ObjectReference::default()
        };
        for note in ["first", "second"] {
            let spec = EventSpec {
                type_: EventType::Normal,
                reason: reasons::COMPLIANCE_CHANGED,
                action: "Evaluate",
                note: note.to_string(),
            };
            let published = context.events().publish(&regarding, spec).await;
            published.unwrap_or_else(|e| panic!("{note}: {e}"));
        }
        let mut notes: Vec<String> = Api::<CoreEvent>::namespaced(cluster.client(), "default")
            .list(&Default::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .items
            .into_iter()
            .filter_map(|e| e.message)
            .collect();
        notes.sort();
        assert_eq!(notes, ["first", "second"]);
    }
}
