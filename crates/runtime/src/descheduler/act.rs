//! Turning the descheduler's decisions into API calls: Mitigate through the network
//! controller, `status.lastMitigatedTimestamp` by server-side apply as
//! `edgeplane-descheduler`, evictions through `pods/eviction`, and Events. Every write is
//! gated on leadership and counted.

use std::collections::HashMap;
use std::sync::Arc;

use edgeplane_api::{
    ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyOffer, ServiceChain,
};
use edgeplane_core::descheduler::{
    Action, BindingKey, Candidate, IGNORED, MIGRATION_BINDING_LABEL, Memory, MigrationFacts,
    MigrationPhase, SkipReason,
};
use edgeplane_core::kubevirt::KUBEVIRT_API_VERSION;
use edgeplane_core::planner::PodKey;
use edgeplane_core::planner::convert::pod_key;
use edgeplane_core::status::MitigationStamp;
use edgeplane_netctl::MitigateOutcome;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;

use super::metrics::DeschedulerMetrics;
use super::observe;
use crate::context::Context;
use crate::error::Error;
use crate::events::{EventSpec, EventType, reasons};
use crate::foreign::VirtualMachineInstanceMigration;
use crate::netctl::Resolved;

/// The report kind of a blocked eviction (once per violation episode).
pub const EVICTION_BLOCKED_KIND: &str = "eviction-blocked";

/// What a cycle observed, for acting on its decisions.
pub struct Observed<'a> {
    pub bindings: &'a [Arc<ConstraintPolicyBinding>],
    pub offers: &'a [Arc<ConstraintPolicyOffer>],
    pub pods: &'a [Arc<Pod>],
    pub policies: &'a [Arc<ConstraintPolicy>],
    pub nodes: &'a [Arc<Node>],
    /// The service chains (empty when lanes are not repaired).
    pub chains: &'a [Arc<ServiceChain>],
    pub controller: Option<&'a Resolved>,
    pub now: Timestamp,
}

impl Observed<'_> {
    fn binding(&self, key: &BindingKey) -> Option<&Arc<ConstraintPolicyBinding>> {
        self.bindings.iter().find(|b| {
            b.metadata.namespace.as_deref().unwrap_or("default") == key.namespace
                && b.metadata.name.as_deref() == Some(key.name.as_str())
        })
    }

    fn pod(&self, key: &PodKey) -> Option<&Arc<Pod>> {
        self.pods.iter().find(|p| pod_key(p) == *key)
    }
}

/// The reference of an object for events.
pub fn reference<K: Resource<DynamicType = ()>>(object: &K) -> ObjectReference {
    let meta = object.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        ..ObjectReference::default()
    }
}

/// `in Violation since 2025-06-01T00:01:00Z: latency 12ms ... is worse than the limit 5ms`.
fn violation(binding: &ConstraintPolicyBinding) -> String {
    let status = binding.status.clone().unwrap_or_default();
    let since = status
        .violating_since
        .map(|t| format!(" since {}", t.0))
        .unwrap_or_default();
    match status.first_reason {
        Some(reason) => format!("in Violation{since}: {reason}"),
        None => format!("in Violation{since}"),
    }
}

async fn event<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    type_: EventType,
    reason: &'static str,
    action: &'static str,
    note: String,
) {
    ctx.events()
        .publish_or_log(
            &reference(object),
            EventSpec {
                type_,
                reason,
                action,
                note,
            },
        )
        .await;
}

/// Carries out one decision.
pub async fn act(
    ctx: &Context,
    metrics: &DeschedulerMetrics,
    memory: &mut Memory,
    observed: &Observed<'_>,
    action: Action,
) {
    let key = action.binding().clone();
    let Some(binding) = observed.binding(&key) else {
        return;
    };
    match action {
        Action::Ignore { .. } => {
            metrics.skip(IGNORED);
            event(
                ctx,
                &**binding,
                EventType::Normal,
                reasons::VIOLATION_IGNORED,
                "Ignore",
                format!(
                    "{}, longer than the grace of offer {}; violationPolicy Ignore: nothing is done",
                    violation(binding),
                    binding.spec.offer
                ),
            )
            .await;
        }
        Action::Skip { reason, .. } => {
            metrics.skip(reason.kind());
            let type_ = match reason {
                SkipReason::DryRun { .. } | SkipReason::DryRunMitigation => EventType::Normal,
                _ => EventType::Warning,
            };
            event(
                ctx,
                &**binding,
                type_,
                reasons::EVICTION_SKIPPED,
                "Deschedule",
                reason.to_string(),
            )
            .await;
        }
        Action::Mitigate { .. } => mitigate(ctx, metrics, observed, binding, &key).await,
        Action::Evict { candidates, .. } => {
            evict(ctx, metrics, memory, observed, binding, &key, candidates).await
        }
        Action::Migrate { candidate, .. } => {
            migrate(ctx, metrics, memory, observed, binding, &key, *candidate).await
        }
    }
}

/// The reference of a VMI (for its events) from its launcher pod's owner.
fn vmi_reference(pod: &Pod, vmi: &str) -> ObjectReference {
    let uid = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "VirtualMachineInstance" && o.name == vmi)
        .map(|o| o.uid.clone());
    ObjectReference {
        api_version: Some(KUBEVIRT_API_VERSION.into()),
        kind: Some("VirtualMachineInstance".into()),
        namespace: pod.metadata.namespace.clone(),
        name: Some(vmi.to_string()),
        uid,
        ..ObjectReference::default()
    }
}

/// The value of `kubernetes.io/hostname` on `node` (what `addedNodeSelector` selects on),
/// the node's name when it has no such label.
fn hostname(nodes: &[Arc<Node>], node: &str) -> String {
    nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))
        .and_then(|n| n.metadata.labels.as_ref()?.get(HOSTNAME_LABEL).cloned())
        .unwrap_or_else(|| node.to_string())
}

const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The migration of `vmi` to the node whose hostname is `hostname`, for `binding`.
pub fn migration_object(
    namespace: &str,
    vmi: &str,
    hostname: &str,
    binding: &str,
) -> VirtualMachineInstanceMigration {
    let mut object = VirtualMachineInstanceMigration::default();
    object.metadata.generate_name = Some(format!("{vmi}-edgeplane-"));
    object.metadata.namespace = Some(namespace.to_string());
    object.metadata.labels = Some(
        [(MIGRATION_BINDING_LABEL.to_string(), binding.to_string())]
            .into_iter()
            .collect(),
    );
    // The body sent on create is the struct as it serializes: apiVersion and kind with it.
    object
        .rest
        .insert("apiVersion".into(), serde_json::json!(KUBEVIRT_API_VERSION));
    object.rest.insert(
        "kind".into(),
        serde_json::json!("VirtualMachineInstanceMigration"),
    );
    object.rest.insert(
        "spec".into(),
        serde_json::json!({"vmiName": vmi, "addedNodeSelector": {HOSTNAME_LABEL: hostname}}),
    );
    object
}

/// Live-migrates the candidate's VMI to the planner's node: a
/// VirtualMachineInstanceMigration with `addedNodeSelector`, never an eviction.
async fn migrate(
    ctx: &Context,
    metrics: &DeschedulerMetrics,
    memory: &mut Memory,
    observed: &Observed<'_>,
    binding: &ConstraintPolicyBinding,
    key: &BindingKey,
    candidate: Candidate,
) {
    let (Some(pod), Some(vmi)) = (observed.pod(&candidate.pod), candidate.vmi.as_deref()) else {
        return;
    };
    let target = &candidate.prediction.node;
    let object = migration_object(
        &candidate.pod.namespace,
        vmi,
        &hostname(observed.nodes, target),
        &key.name,
    );
    let created = match ctx.create(&object).await {
        Ok(created) => created,
        Err(Error::NotLeader(_)) => return,
        Err(error) => {
            metrics.migration("error");
            tracing::warn!(binding = %key, %vmi, %error,
                "creating the migration failed; retrying at a later cycle");
            return;
        }
    };
    metrics.migration("started");
    let name = created.metadata.name.clone().unwrap_or_default();
    let vmi_key = PodKey::new(&candidate.pod.namespace, vmi);
    memory
        .migrating
        .insert(vmi_key.clone(), (name.clone(), observed.now));
    // The target launcher pod (the VMI's, like the replacement of an eviction) holds its
    // room on the target until it is placed.
    if let Some(replacement) = candidate.replacement(observed.now) {
        memory
            .replacements
            .insert(candidate.pod.clone(), replacement);
    }
    let to = candidate.prediction.describe();
    ctx.events()
        .publish_or_log(
            &vmi_reference(pod, vmi),
            EventSpec {
                type_: EventType::Normal,
                reason: reasons::MIGRATION_STARTED,
                action: "Migrate",
                note: format!(
                    "live migration {name} to {to}, to restore binding {key} ({})",
                    violation(binding)
                ),
            },
        )
        .await;
    event(
        ctx,
        binding,
        EventType::Normal,
        reasons::MIGRATION_STARTED,
        "Migrate",
        format!(
            "{}; live-migrating VMI {vmi_key} (pod {}) by migration {name} to {to}",
            violation(binding),
            candidate.pod
        ),
    )
    .await;
}

/// Reports a migration this process created that finished: the metric, and an Event on the
/// binding it was for (or on the migration, when the binding is gone).
pub async fn migration_finished(
    ctx: &Context,
    metrics: &DeschedulerMetrics,
    bindings: &[Arc<ConstraintPolicyBinding>],
    migrations: &[Arc<VirtualMachineInstanceMigration>],
    finished: &MigrationFacts,
) {
    let object = migrations.iter().find(|m| {
        m.metadata.namespace.as_deref().unwrap_or("default") == finished.key.namespace
            && m.metadata.name.as_deref() == Some(finished.key.name.as_str())
    });
    let node = object
        .and_then(|m| m.rest.get("status")?.pointer("/migrationState/targetNode"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("?");
    let (outcome, type_, reason, note) = match finished.phase {
        MigrationPhase::Succeeded => (
            "succeeded",
            EventType::Normal,
            reasons::MIGRATED,
            format!(
                "migration {} succeeded: VMI {}/{} runs on {node}",
                finished.key.name, finished.key.namespace, finished.vmi
            ),
        ),
        _ => (
            "failed",
            EventType::Warning,
            reasons::MIGRATION_FAILED,
            format!(
                "migration {} of VMI {}/{} failed{}; retried after a backoff",
                finished.key.name,
                finished.key.namespace,
                finished.vmi,
                finished
                    .reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        ),
    };
    metrics.migration(outcome);
    let binding_name =
        object.and_then(|m| m.metadata.labels.as_ref()?.get(MIGRATION_BINDING_LABEL));
    let binding = binding_name.and_then(|name| {
        bindings.iter().find(|b| {
            b.metadata.namespace.as_deref().unwrap_or("default") == finished.key.namespace
                && b.metadata.name.as_ref() == Some(name)
        })
    });
    let spec = EventSpec {
        type_,
        reason,
        action: "Migrate",
        note,
    };
    match (binding, object) {
        (Some(b), _) => ctx.events().publish_or_log(&reference(&**b), spec).await,
        (None, Some(m)) => ctx.events().publish_or_log(&reference(&**m), spec).await,
        (None, None) => {}
    }
}

async fn mitigate(
    ctx: &Context,
    metrics: &DeschedulerMetrics,
    observed: &Observed<'_>,
    binding: &ConstraintPolicyBinding,
    key: &BindingKey,
) {
    let failed = |note: String| {
        event(
            ctx,
            binding,
            EventType::Warning,
            reasons::MITIGATION_FAILED,
            "Mitigate",
            note,
        )
    };
    let Some(net) = observed.controller else {
        // The decisions only mitigate when a controller resolved; it went in between.
        return;
    };
    let offer = observed.offers.iter().find(|o| {
        o.metadata.namespace.as_deref().unwrap_or("default") == key.namespace
            && o.metadata.name.as_deref() == Some(binding.spec.offer.as_str())
    });
    let chain = observed.chains.iter().find(|c| {
        c.metadata.namespace.as_deref().unwrap_or("default") == key.namespace
            && c.metadata.name.as_deref() == Some(binding.spec.offer.as_str())
    });
    let (rules, problems) = match (offer, chain) {
        (Some(offer), _) => observe::offer_rules(offer, observed.policies),
        // A lane of a chain: its rules are the chain's.
        (None, Some(_)) => (Vec::new(), Vec::new()),
        (None, None) => return,
    };
    // Only the binding's own pods: keying every pod of the cluster for each mitigation
    // cost more than the mitigation.
    let targets: Vec<(&str, &str)> = binding
        .spec
        .targets
        .values()
        .map(|t| (t.namespace.as_deref().unwrap_or("default"), t.name.as_str()))
        .collect();
    let pods: HashMap<PodKey, Arc<Pod>> = observed
        .pods
        .iter()
        .filter(|p| {
            let namespace = p.metadata.namespace.as_deref().unwrap_or("default");
            let name = p.metadata.name.as_deref().unwrap_or_default();
            targets.contains(&(namespace, name))
        })
        .map(|p| (pod_key(p), p.clone()))
        .collect();
    let request = match (offer, chain) {
        (None, Some(chain)) => {
            let lane_pods: HashMap<PodKey, Arc<Pod>> = observe::lane_pods(binding, observed.pods)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|k| Some((k.clone(), observed.pod(&k)?.clone())))
                .collect();
            observe::lane_mitigate_request(binding, chain, &lane_pods)
        }
        _ => observe::mitigate_request(binding, &rules, &pods),
    };
    let request = match request {
        Ok(r) => r,
        Err(problem) => {
            metrics.mitigation("invalid");
            failed(format!(
                "{}; cannot ask the network controller to mitigate: {problem}",
                violation(binding)
            ))
            .await;
            return;
        }
    };
    if !problems.is_empty() {
        tracing::warn!(binding = %key, problems = ?problems, "mitigating with the rules that exist");
    }
    if ctx
        .ensure_leader(|| format!("mitigation of binding {key}"))
        .is_err()
    {
        return;
    }
    let outcome = net.controller.mitigate(&request).await;
    // The attempt counts, whatever its outcome: at most one per mitigation period, and the
    // eviction stage waits mitigationGrace after it.
    if let Err(error) = record_mitigation(ctx, binding, observed.now).await {
        tracing::warn!(binding = %key, %error, "could not record lastMitigatedTimestamp");
    }
    match outcome {
        Ok(outcome) if outcome.accepted => {
            metrics.mitigation("accepted");
            event(
                ctx,
                binding,
                EventType::Normal,
                reasons::MITIGATED,
                "Mitigate",
                format!(
                    "{}; the network controller ({}) {}",
                    violation(binding),
                    net.location,
                    describe(&outcome)
                ),
            )
            .await;
        }
        Ok(outcome) => {
            metrics.mitigation("refused");
            failed(format!(
                "{}; the network controller ({}) cannot mitigate: {}",
                violation(binding),
                net.location,
                outcome.reason
            ))
            .await
        }
        Err(error) => {
            metrics.mitigation("failed");
            failed(format!(
                "{}; asking the network controller to mitigate failed: {error}",
                violation(binding)
            ))
            .await
        }
    }
}

/// `activated slice-a (path edge-9, metro-1, stadium; expected latency 5ms, Limit)`.
fn describe(outcome: &MitigateOutcome) -> String {
    let mut out = match (&outcome.entry, &outcome.allocation_id) {
        (Some(entry), Some(id)) => format!("activated {entry} (allocation {id}"),
        _ => format!("accepted ({}", outcome.reason),
    };
    if !outcome.path.is_empty() {
        out.push_str(&format!("; path {}", outcome.path.join(", ")));
    }
    if let Some(e) = &outcome.expected {
        out.push_str(&format!("; expected latency {}", e.latency));
        if !e.jitter.is_empty() {
            out.push_str(&format!(", jitter {}", e.jitter));
        }
        if !e.bandwidth.is_empty() {
            out.push_str(&format!(", bandwidth {}", e.bandwidth));
        }
        if !e.loss.is_empty() {
            out.push_str(&format!(", loss {}", e.loss));
        }
    }
    if let Some(c) = outcome.compliance {
        out.push_str(&format!("; {c}"));
    }
    out.push(')');
    out
}

/// Server-side apply of `status.lastMitigatedTimestamp` alone, as `edgeplane-descheduler`.
pub async fn record_mitigation(
    ctx: &Context,
    binding: &ConstraintPolicyBinding,
    now: Timestamp,
) -> Result<(), Error> {
    let name = binding.metadata.name.clone().unwrap_or_default();
    let namespace = binding.metadata.namespace.as_deref().unwrap_or("default");
    let stamp = MitigationStamp {
        last_mitigated_timestamp: Time(now),
    };
    ctx.apply_status(Some(namespace), &name, &stamp)
        .await
        .map(|_| ())
}

/// Why the API server refused an eviction: the budget's own message when it gives one.
fn refusal(error: &Error) -> String {
    match error {
        Error::Kube {
            source: kube::Error::Api(status),
            ..
        } => {
            let causes: Vec<&str> = status
                .details
                .iter()
                .flat_map(|d| &d.causes)
                .map(|c| c.message.as_str())
                .filter(|m| !m.is_empty())
                .collect();
            if causes.is_empty() {
                status.message.clone()
            } else {
                format!("{} ({})", status.message, causes.join("; "))
            }
        }
        other => other.to_string(),
    }
}

async fn evict(
    ctx: &Context,
    metrics: &DeschedulerMetrics,
    memory: &mut Memory,
    observed: &Observed<'_>,
    binding: &ConstraintPolicyBinding,
    key: &BindingKey,
    candidates: Vec<Candidate>,
) {
    let mut blocked = Vec::new();
    for candidate in candidates {
        let Some(pod) = observed.pod(&candidate.pod) else {
            continue;
        };
        match ctx
            .evict(
                &candidate.pod.namespace,
                &candidate.pod.name,
                // Guards against evicting a replacement that took the same name.
                pod.metadata.uid.clone(),
            )
            .await
        {
            Ok(_) => {
                metrics.eviction("evicted");
                memory.evicted.insert(candidate.pod.clone(), observed.now);
                // Its replacement's room is held until it is placed.
                if let Some(replacement) = candidate.replacement(observed.now) {
                    memory
                        .replacements
                        .insert(candidate.pod.clone(), replacement);
                }
                let to = candidate.prediction.describe();
                event(
                    ctx,
                    &**pod,
                    EventType::Normal,
                    reasons::EVICTED,
                    "Evict",
                    format!(
                        "evicted to restore binding {key} ({}); the planner expects the replacement on {to}",
                        violation(binding)
                    ),
                )
                .await;
                event(
                    ctx,
                    binding,
                    EventType::Normal,
                    reasons::EVICTED,
                    "Evict",
                    format!(
                        "{}; evicted pod {} (the planner expects its replacement on {to})",
                        violation(binding),
                        candidate.pod
                    ),
                )
                .await;
                return;
            }
            Err(Error::NotLeader(_)) => return,
            Err(error) => {
                match error.status_code() {
                    // Gone already: nothing to evict.
                    Some(404) => continue,
                    // A PodDisruptionBudget forbids it now: the next candidate, or a later
                    // cycle. Never a delete instead.
                    Some(429) => {
                        metrics.eviction("blocked");
                        blocked.push(format!("pod {}: {}", candidate.pod, refusal(&error)));
                    }
                    _ => {
                        metrics.eviction("failed");
                        tracing::warn!(binding = %key, pod = %candidate.pod, %error,
                            "eviction failed; retrying at a later cycle");
                        return;
                    }
                }
            }
        }
    }
    if blocked.is_empty() {
        return;
    }
    let episode = binding
        .status
        .as_ref()
        .and_then(|s| s.violating_since.as_ref())
        .map(|t| t.0);
    if let Some(episode) = episode {
        if memory.was_reported(key, episode, EVICTION_BLOCKED_KIND) {
            return;
        }
        memory.report(key, episode, EVICTION_BLOCKED_KIND);
    }
    event(
        ctx,
        binding,
        EventType::Warning,
        reasons::EVICTION_BLOCKED,
        "Evict",
        format!(
            "{}; the eviction was refused, retrying at a later cycle: {}",
            violation(binding),
            blocked.join("; ")
        ),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_netctl::ExpectedMetrics;

    #[test]
    fn mitigations_read_well() {
        let outcome = MitigateOutcome {
            accepted: true,
            expected: Some(ExpectedMetrics {
                latency: "5ms".into(),
                jitter: String::new(),
                bandwidth: String::new(),
                loss: String::new(),
            }),
            reason: "restores".into(),
            allocation_id: Some("mitigate.slice-a.1".into()),
            entry: Some("slice-a".into()),
            path: vec!["edge-9".into(), "metro-1".into()],
            compliance: Some(edgeplane_api::Compliance::Limit),
        };
        assert_eq!(
            describe(&outcome),
            "activated slice-a (allocation mitigate.slice-a.1; path edge-9, metro-1; expected latency 5ms; Limit)"
        );
    }

    #[test]
    fn refusals_give_the_budgets_reason() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 429, "reason": "TooManyRequests",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "details": {"causes": [{"reason": "DisruptionBudget",
                "message": "The disruption budget r needs 1 healthy pods and has 1 currently"}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            refusal(&Error::kube(
                "evicting pod ns/r",
                kube::Error::Api(Box::new(status))
            )),
            "Cannot evict pod as it would violate the pod's disruption budget. (The disruption budget r needs 1 healthy pods and has 1 currently)"
        );
    }
}
