//! The mutating admission webhook that holds pods for the planner (gate mode).
//!
//! When a pod is created that a Pod target of some offer in its namespace selects, the
//! webhook adds the scheduling gate `constraint.edgeplane.io/planner`, so kube-scheduler
//! leaves it alone until the planner has chosen its node (see [`crate::scheduler`]).
//!
//! - [`mutate`] is the decision, pure: a pod, its namespace and the offers in, a JSON
//!   patch (or nothing) out. The embedded cluster's pod admission hook and the HTTPS
//!   server both call it, so the end-to-end tests exercise the real mutation.
//! - [`GateAdmission`] adapts it to a hook over a pod's JSON (the embedded cluster, the
//!   simulator), reading offers from a cache attached once it exists.
//! - [`review`] answers an `admission.k8s.io/v1` AdmissionReview.
//! - [`serve`] is the HTTPS server (axum + rustls with ring), with the certificate and key
//!   read from `tls.crt` and `tls.key` in a directory (a mounted Secret), re-read when
//!   they change.
//!   [`crate::certificates`] keeps that Secret and the webhook configuration's `caBundle`
//!   renewed.
//!
//! The webhook never refuses a pod: anything it cannot read is admitted unchanged, and the
//! chart registers it with `failurePolicy: Ignore`, so an outage of the webhook never
//! blocks pod creation (those pods are then scheduled by kube-scheduler without a plan).
//!
//! It gates only while a planning scheduler is alive to lift the gate: a holder renewed
//! the scheduler's Lease within its `leaseDurationSeconds`, judged on the component's
//! clock ([`crate::watchdog::SchedulerWatch`]). Otherwise the pod is admitted ungated with
//! a warning in the admission response (kubectl prints it), a log line and the outcome
//! `no-scheduler`, and kube-scheduler places it without a plan. Pods gated before the
//! scheduler died are released by the gate watchdog ([`crate::watchdog`]).

mod server;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use edgeplane_api::ConstraintPolicyOffer;
use edgeplane_api::TargetKind;
use edgeplane_api::names::PLANNER_GATE;
use edgeplane_core::gate::Liveness;
use edgeplane_core::selector::Selector;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview, Operation};
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::{Value, json};

use crate::cache::Cache;
use crate::metrics::Metrics;
use crate::watchdog::SchedulerWatch;
pub use server::{WebhookConfig, WebhookError, router, serve, serve_tls};

/// kube-scheduler's name, the default `schedulerName`.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// The path the webhook answers on.
pub const MUTATE_PATH: &str = "/mutate-pods";
/// The port the webhook listens on in the chart (the Service maps 443 to it).
pub const DEFAULT_PORT: u16 = 9443;
/// The certificate and key file names in the certificate directory (a `kubernetes.io/tls`
/// Secret mounted as a volume).
pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";
/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which pods the webhook gates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateOptions {
    /// Pods of these schedulers are gated (an empty `schedulerName` is kube-scheduler's).
    /// Pods of other schedulers, the `edgeplane` secondary scheduler (bind mode) included,
    /// are left alone: the gate is for pods that kube-scheduler binds after the plan.
    pub scheduler_names: Vec<String>,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            scheduler_names: vec![DEFAULT_SCHEDULER.to_string()],
        }
    }
}

/// Whether `pod` would be gated, and by which offer: the pod is not bound, belongs to a
/// gated scheduler, does not carry the gate yet, and a Pod target of an offer in
/// `namespace` selects its labels. Offers whose selectors do not compile select nothing.
pub fn gating_offer<'a>(
    pod: &Pod,
    namespace: &str,
    offers: &'a [Arc<ConstraintPolicyOffer>],
    options: &GateOptions,
) -> Option<&'a ConstraintPolicyOffer> {
    let spec = pod.spec.as_ref()?;
    if spec.node_name.as_deref().is_some_and(|n| !n.is_empty()) {
        return None;
    }
    let scheduler = spec
        .scheduler_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SCHEDULER);
    if !options.scheduler_names.iter().any(|s| s == scheduler) {
        return None;
    }
    if has_gate(pod) {
        return None;
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    offers
        .iter()
        .filter(|o| o.metadata.namespace.as_deref().unwrap_or("default") == namespace)
        .find(|o| {
            o.spec.targets.iter().any(|t| {
                t.kind == TargetKind::Pod
                    && match &t.label_selector {
                        None => true,
                        Some(s) => Selector::compile(s).is_ok_and(|s| s.matches(&labels)),
                    }
            })
        })
        .map(|o| &**o)
}

/// The network function a pod being created is a replica of (a container replica's pod,
/// or the virt-launcher pod of a VM replica: both carry the NF's labels), when it would be
/// gated: not bound, of a gated scheduler, not gated yet. Its lane is planned as a unit
/// (docs/network-functions.md), so it waits for the planner like an offer's pod.
pub fn gating_function(pod: &Pod, options: &GateOptions) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if spec.node_name.as_deref().is_some_and(|n| !n.is_empty()) || has_gate(pod) {
        return None;
    }
    let scheduler = spec
        .scheduler_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SCHEDULER);
    if !options.scheduler_names.iter().any(|s| s == scheduler) {
        return None;
    }
    let labels = pod.metadata.labels.as_ref()?;
    // The target pod of a live migration: the migration chose its node (the descheduler
    // asked the planner first), and holding it at the gate would stall the migration.
    if labels.contains_key(edgeplane_core::descheduler::MIGRATION_JOB_LABEL) {
        return None;
    }
    labels.get(edgeplane_core::nf::NF_LABEL).cloned()
}

/// Whether the pod carries the planner's gate.
pub fn has_gate(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|gates| gates.iter().any(|g| g.name == PLANNER_GATE))
}

/// The JSON patch that gates `pod` for the planner, or `None` when it must not be gated
/// (see [`gating_offer`]). Other gates are kept.
pub fn mutate(
    pod: &Pod,
    namespace: &str,
    offers: &[Arc<ConstraintPolicyOffer>],
    options: &GateOptions,
) -> Option<json_patch::Patch> {
    if gating_offer(pod, namespace, offers, options).is_none()
        && gating_function(pod, options).is_none()
    {
        return None;
    }
    let has_list = pod
        .spec
        .as_ref()
        .is_some_and(|s| s.scheduling_gates.is_some());
    let op = if has_list {
        json!({"op": "add", "path": "/spec/schedulingGates/-", "value": {"name": PLANNER_GATE}})
    } else {
        json!({"op": "add", "path": "/spec/schedulingGates", "value": [{"name": PLANNER_GATE}]})
    };
    serde_json::from_value(json!([op])).ok()
}

/// What the webhook does with a pod being created.
#[derive(Clone, Debug, PartialEq)]
pub enum Admission {
    /// Gated for the planner with this patch.
    Gate(json_patch::Patch),
    /// Left alone: no offer targets it, it is bound, another scheduler's, already gated.
    Unchanged,
    /// An offer targets it, but no planning scheduler is alive to lift the gate: admitted
    /// ungated, so that kube-scheduler places it (without a plan).
    NoScheduler { offer: String, why: String },
}

impl Admission {
    /// The metric label: `gated`, `unchanged`, `no-scheduler`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Admission::Gate(_) => "gated",
            Admission::Unchanged => "unchanged",
            Admission::NoScheduler { .. } => "no-scheduler",
        }
    }

    /// The warning for the admission response (kubectl prints it), if any.
    pub fn warning(&self, pod: &str) -> Option<String> {
        match self {
            Admission::NoScheduler { offer, why } => Some(format!(
                "edgeplane: pod {pod} is not gated for the planner although offer {offer} targets it: no planning scheduler is alive ({why}); kube-scheduler places it without a plan"
            )),
            _ => None,
        }
    }
}

/// The decision, pure: [`mutate`] while a planning scheduler is alive; when none is
/// ([`Liveness::Dead`]), a pod the gate would hold is admitted ungated instead. `None`:
/// not known yet (the Lease has not been read): gated as before.
pub fn admit(
    pod: &Pod,
    namespace: &str,
    offers: &[Arc<ConstraintPolicyOffer>],
    options: &GateOptions,
    scheduler: Option<&Liveness>,
) -> Admission {
    let holder = match gating_offer(pod, namespace, offers, options) {
        Some(offer) => format!(
            "{namespace}/{}",
            offer.metadata.name.as_deref().unwrap_or_default()
        ),
        None => match gating_function(pod, options) {
            Some(nf) => format!("{namespace}/{nf} (a network function's lane)"),
            None => return Admission::Unchanged,
        },
    };
    if let Some(Liveness::Dead { why, .. }) = scheduler {
        return Admission::NoScheduler {
            offer: holder,
            why: why.to_string(),
        };
    }
    match mutate(pod, namespace, offers, options) {
        Some(patch) => Admission::Gate(patch),
        None => Admission::Unchanged,
    }
}

/// `namespace/name` of a pod being created (its `generateName` when it has no name yet).
fn pod_name(pod: &Pod, namespace: &str) -> String {
    let name = pod
        .metadata
        .name
        .clone()
        .or(pod.metadata.generate_name.clone())
        .unwrap_or_default();
    format!("{namespace}/{name}")
}

fn log(admission: &Admission, pod: &str) {
    match admission {
        Admission::Gate(_) => tracing::debug!(%pod, "admission: gated for the planner"),
        Admission::NoScheduler { offer, why } => {
            tracing::warn!(%pod, %offer, %why, "admission: not gated, no planning scheduler is alive; kube-scheduler places it without a plan")
        }
        Admission::Unchanged => {}
    }
}

/// [`admit`] applied to a pod's JSON in place (the shape of the embedded cluster's pod
/// admission hook). Returns the outcome label (`invalid` for a pod that does not decode,
/// left alone).
pub fn gate_value(
    pod: &mut Value,
    offers: &[Arc<ConstraintPolicyOffer>],
    options: &GateOptions,
    scheduler: Option<&Liveness>,
) -> &'static str {
    let Ok(typed) = serde_json::from_value::<Pod>(pod.clone()) else {
        return "invalid";
    };
    let namespace = typed
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let admission = admit(&typed, &namespace, offers, options, scheduler);
    log(&admission, &pod_name(&typed, &namespace));
    match &admission {
        Admission::Gate(patch) if json_patch::patch(pod, patch).is_err() => "invalid",
        other => other.outcome(),
    }
}

/// The webhook as an in-process admission step: gates pods by the offers of an attached
/// cache. Until a cache is attached it gates nothing, like a webhook that is not up yet
/// (`failurePolicy: Ignore`). Whether a scheduler is alive comes from an attached
/// [`SchedulerWatch`]; until one is attached the scheduler is taken to run in this process
/// (the simulator, tests that start it without leader election). Cheap to clone; clones
/// share the attachments and the counts.
///
/// ```no_run
/// # async fn start() {
/// use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, PodAdmission};
/// use edgeplane_runtime::Caches;
/// use edgeplane_runtime::webhook::GateAdmission;
///
/// let gate = GateAdmission::default();
/// let hook = gate.clone();
/// let cluster = EmbeddedCluster::start(ClusterConfig::default().admission(PodAdmission::new(
///     move |pod| {
///         hook.admit(pod);
///     },
/// )))
/// .await;
/// let shutdown = tokio_util::sync::CancellationToken::new();
/// let caches = Caches::start(&cluster.client(), &shutdown);
/// gate.attach(&caches.offers);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct GateAdmission {
    offers: Arc<OnceLock<Store<ConstraintPolicyOffer>>>,
    scheduler: Arc<OnceLock<SchedulerWatch>>,
    options: GateOptions,
    admissions: Family<AdmissionLabels, Counter>,
}

impl std::fmt::Debug for GateAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateAdmission")
            .field("attached", &self.offers.get().is_some())
            .field("scheduler", &self.scheduler.get())
            .field("options", &self.options)
            .finish()
    }
}

impl GateAdmission {
    pub fn new(options: GateOptions) -> GateAdmission {
        GateAdmission {
            options,
            ..GateAdmission::default()
        }
    }

    /// Reads offers from `cache` from now on (the first attachment wins).
    pub fn attach(&self, cache: &Cache<ConstraintPolicyOffer>) {
        let _ = self.offers.set(cache.store().clone());
    }

    /// Reads whether a scheduler is alive from `watch` from now on (the first attachment
    /// wins).
    pub fn attach_scheduler(&self, watch: SchedulerWatch) {
        let _ = self.scheduler.set(watch);
    }

    /// Counts admissions in `edgeplane_webhook_admissions_total{outcome}` of `metrics`.
    pub fn register(&self, metrics: &Metrics) {
        register_admissions(metrics, self.admissions.clone());
    }

    /// How many admissions had `outcome` (`gated`, `unchanged`, `no-scheduler`, `invalid`).
    pub fn admitted(&self, outcome: &str) -> u64 {
        self.admissions
            .get_or_create(&AdmissionLabels {
                outcome: outcome.into(),
            })
            .get()
    }

    /// Gates `pod` (JSON, as stored) if an offer targets it and a scheduler is alive.
    /// Returns whether it did.
    pub fn admit(&self, pod: &mut Value) -> bool {
        let Some(store) = self.offers.get() else {
            return false;
        };
        let scheduler = self.scheduler.get().and_then(SchedulerWatch::liveness);
        let outcome = gate_value(pod, &store.state(), &self.options, scheduler.as_ref());
        self.admissions
            .get_or_create(&AdmissionLabels {
                outcome: outcome.into(),
            })
            .inc();
        outcome == "gated"
    }
}

/// Registers the admission counts as `edgeplane_webhook_admissions_total{outcome}`.
pub fn register_admissions(metrics: &Metrics, admissions: Family<AdmissionLabels, Counter>) {
    metrics.register(
        "webhook_admissions",
        "Pod admissions answered by the gate webhook, by outcome",
        admissions,
    );
}

/// Admissions answered, by outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// `gated`, `unchanged`, `no-scheduler`, `invalid`.
    pub outcome: String,
}

/// Why a request body is not an admission review the webhook can answer.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("not an AdmissionReview: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

/// Answers an AdmissionReview. Pods are decided by [`admit`]; everything else (other
/// operations and kinds, pods that do not decode) is allowed unchanged: the webhook never
/// refuses a request. Returns the `admission.k8s.io/v1` AdmissionReview to send back
/// (the patch base64-encoded, as the API server expects; a pod left ungated for want of a
/// scheduler gets a warning) and the outcome label; an error when the body is not an
/// AdmissionReview with a request.
pub fn review(
    body: &[u8],
    offers: &[Arc<ConstraintPolicyOffer>],
    options: &GateOptions,
    scheduler: Option<&Liveness>,
) -> Result<(Value, &'static str), ReviewError> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)?;
    let request: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| ReviewError::NoRequest)?;
    let answer = |patch: Option<&json_patch::Patch>, warning: Option<String>| {
        let mut response = json!({"uid": request.uid, "allowed": true});
        if let Some(patch) = patch
            && let Ok(bytes) = serde_json::to_vec(patch)
        {
            response["patchType"] = json!("JSONPatch");
            response["patch"] = json!(BASE64.encode(bytes));
        }
        if let Some(warning) = warning {
            response["warnings"] = json!([warning]);
        }
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        })
    };
    if request.operation != Operation::Create
        || request.kind.kind != "Pod"
        || request.sub_resource.is_some()
    {
        return Ok((answer(None, None), "unchanged"));
    }
    let pod = request
        .object
        .as_ref()
        .map(|o| serde_json::to_value(o).and_then(serde_json::from_value::<Pod>));
    let pod = match pod {
        Some(Ok(pod)) => pod,
        Some(Err(error)) => {
            tracing::warn!(%error, uid = %request.uid, "admission: the pod does not decode; admitted unchanged");
            return Ok((answer(None, None), "invalid"));
        }
        None => return Ok((answer(None, None), "invalid")),
    };
    let namespace = request
        .namespace
        .clone()
        .or_else(|| pod.metadata.namespace.clone())
        .unwrap_or_else(|| "default".into());
    let admission = admit(&pod, &namespace, offers, options, scheduler);
    let name = pod_name(&pod, &namespace);
    log(&admission, &name);
    let patch = match &admission {
        Admission::Gate(patch) => Some(patch),
        _ => None,
    };
    Ok((answer(patch, admission.warning(&name)), admission.outcome()))
}

#[cfg(test)]
mod tests;
