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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use edgeplane_core::clock::Clock;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::error::Error;
use crate::leader::Leadership;
use crate::metrics::Metrics;

/// Event reasons. Stable: tools match on them.
pub mod reasons {
    /// Offer controller: a binding was created for a new combination of objects.
    pub const BINDING_CREATED: &str = "BindingCreated";
    /// Offer controller: a binding was deleted because one of its objects is gone or no
    /// longer matches.
    pub const BINDING_DELETED: &str = "BindingDeleted";
    /// Offer controller: a binding whose spec had been edited was put back.
    pub const BINDING_RESTORED: &str = "BindingRestored";
    /// Offer controller: the offer cannot be expanded (unsupported kind, bad selector,
    /// too many combinations).
    pub const OFFER_INVALID: &str = "OfferInvalid";
    /// Binding controller: the binding's compliance changed (`from -> to: reason`).
    pub const COMPLIANCE_CHANGED: &str = "ComplianceChanged";
    /// Binding controller: a provider failed for a rule (unreachable, timeout, bad
    /// answer); the rule is in Error, never in Violation.
    pub const PROVIDER_ERROR: &str = "ProviderError";
    /// Policy status: a rule does not parse for its provider, or has no provider.
    pub const POLICY_INVALID: &str = "PolicyInvalid";
    /// Topology status: the topology does not build into a graph.
    pub const TOPOLOGY_INVALID: &str = "TopologyInvalid";
    /// Scheduler, on a pod: the plan placed it (`planned onto edge-2-a with 5 other pods:
    /// ...`); gate mode then sets its node affinity and removes the gate, bind mode binds.
    pub const PLANNED: &str = "Planned";
    /// Scheduler, on a pod: the plan could not place it; the note is the planner's reason
    /// (also in the pod's `constraint.edgeplane.io/unplaced-reason` annotation). Emitted
    /// when the reason changes, not at every replan.
    pub const UNPLACEABLE: &str = "Unplaceable";
    /// Scheduler, on a pod: the plan placed it but the placement cannot be written (its
    /// affinity cannot be narrowed to the node).
    pub const FAILED_PLANNING: &str = "FailedPlanning";
    /// Scheduler, on its Lease (`coordination.k8s.io/v1 Lease edgeplane-scheduler`): one
    /// per plan run, with the run's summary; count them to count plan runs.
    pub const PLAN_RUN: &str = "PlanRun";
    /// Descheduler, on a binding: the network controller repaired (or found no need to
    /// repair) the path of a binding in Violation; the note names the path or catalogue
    /// entry and the metrics it expects.
    pub const MITIGATED: &str = "Mitigated";
    /// Descheduler, on a binding: the network controller could not repair the binding
    /// (its reason), or could not be reached.
    pub const MITIGATION_FAILED: &str = "MitigationFailed";
    /// Descheduler, on the evicted pod and on the binding: why this pod, and where the
    /// planner expects its replacement to go.
    pub const EVICTED: &str = "Evicted";
    /// Descheduler, on a binding: the Eviction API refused (a PodDisruptionBudget, 429);
    /// retried at a later cycle, never forced.
    pub const EVICTION_BLOCKED: &str = "EvictionBlocked";
    /// Descheduler, on a binding: in Violation past its grace with violationPolicy Ignore
    /// (once per violation episode).
    pub const VIOLATION_IGNORED: &str = "ViolationIgnored";
    /// Descheduler, on a binding: no eviction (or mitigation) this time: a limit, pods too
    /// young, no pod whose move restores compliance, no network controller, or dry run.
    pub const EVICTION_SKIPPED: &str = "EvictionSkipped";
    /// Scheduler, on a pod: no node satisfied a binding, so a network path was discovered
    /// and allocated for it.
    pub const PATH_ALLOCATED: &str = "PathAllocated";
    /// Scheduler, on a pod: the path allocated for it was released (the pod was deleted,
    /// evicted or finished).
    pub const PATH_RELEASED: &str = "PathReleased";
}

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    pub type_: EventType,
    /// One of [`reasons`].
    pub reason: &'static str,
    /// What the component did: `Evaluate`, `Reconcile`, `Plan`, ...
    pub action: &'static str,
    /// A sentence, at most 1 kB (longer notes are cut).
    pub note: String,
}

/// Publishes `events.k8s.io/v1` Events for one component. Cheap to clone.
#[derive(Clone)]
pub struct EventRecorder {
    client: Client,
    clock: Arc<dyn Clock>,
    /// `reportingController`: the component (`edgeplane-controller`).
    controller: Arc<str>,
    /// `reportingInstance`: the replica.
    instance: Arc<str>,
    leadership: Leadership,
    metrics: Arc<Metrics>,
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
            .field("controller", &self.controller)
            .field("instance", &self.instance)
            .finish()
    }
}

/// The longest note events.k8s.io accepts.
const MAX_NOTE: usize = 1024;

impl EventRecorder {
    pub fn new(
        client: Client,
        clock: Arc<dyn Clock>,
        controller: Arc<str>,
        instance: Arc<str>,
        leadership: Leadership,
        metrics: Arc<Metrics>,
    ) -> EventRecorder {
        EventRecorder {
            client,
            clock,
            controller,
            instance,
            leadership,
            metrics,
        }
    }

    /// Publishes `event` about `regarding`. Cluster-scoped objects get their events in
    /// `default`, as kube's recorder does. Does nothing but return [`Error::NotLeader`]
    /// on a follower.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        event: EventSpec,
    ) -> Result<(), Error> {
        let what = format!("event {}", event.reason);
        if !self.leadership.is_leader() {
            return Err(Error::NotLeader(what));
        }
        let now = self.clock.now();
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let object = regarding.name.as_deref().unwrap_or(&self.controller);
        let mut note = event.note;
        if note.len() > MAX_NOTE {
            let mut cut = MAX_NOTE - 3;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
            note.push_str("...");
        }
        let body = Event {
            metadata: ObjectMeta {
                // Unique across recorders and restarts; only the leader writes.
                name: Some(event_name(object, now.as_nanosecond(), sequence)),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            action: Some(event.action.to_string()),
            reason: Some(event.reason.to_string()),
            note: Some(note),
            type_: Some(event.type_.as_str().to_string()),
            regarding: Some(regarding.clone()),
            event_time: Some(MicroTime(now)),
            reporting_controller: Some(self.controller.to_string()),
            reporting_instance: Some(self.instance.to_string()),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        self.metrics.count_write(&self.controller, "event", "Event");
        api.create(&PostParams::default(), &body)
            .await
            .map(|_| ())
            .map_err(|e| Error::kube(format!("creating {what} in {namespace}"), e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_cluster::{ClusterConfig, EmbeddedCluster};
    use k8s_openapi::api::core::v1::Event as CoreEvent;

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
