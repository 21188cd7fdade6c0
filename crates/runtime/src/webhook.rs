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
//!   read from `tls.crt` and `tls.key` in a directory (a mounted Secret).
//!
//! The webhook never refuses a pod: anything it cannot read is admitted unchanged, and the
//! chart registers it with `failurePolicy: Ignore`, so an outage of the webhook never
//! blocks pod creation (those pods are then scheduled by kube-scheduler without a plan).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use edgeplane_api::ConstraintPolicyOffer;
use edgeplane_api::TargetKind;
use edgeplane_api::names::PLANNER_GATE;
use edgeplane_core::selector::Selector;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview, Operation};
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::metrics::Metrics;

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
    gating_offer(pod, namespace, offers, options)?;
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

/// [`mutate`] applied to a pod's JSON in place (the shape of the embedded cluster's pod
/// admission hook). Returns whether the pod was gated. A pod that does not decode is left
/// alone.
pub fn gate_value(
    pod: &mut Value,
    offers: &[Arc<ConstraintPolicyOffer>],
    options: &GateOptions,
) -> bool {
    let Ok(typed) = serde_json::from_value::<Pod>(pod.clone()) else {
        return false;
    };
    let namespace = typed
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    match mutate(&typed, &namespace, offers, options) {
        Some(patch) => json_patch::patch(pod, &patch).is_ok(),
        None => false,
    }
}

/// The webhook as an in-process admission step: gates pods by the offers of an attached
/// cache. Until a cache is attached it gates nothing, like a webhook that is not up yet
/// (`failurePolicy: Ignore`). Cheap to clone; clones share the attachment.
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
    options: GateOptions,
}

impl std::fmt::Debug for GateAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateAdmission")
            .field("attached", &self.offers.get().is_some())
            .field("options", &self.options)
            .finish()
    }
}

impl GateAdmission {
    pub fn new(options: GateOptions) -> GateAdmission {
        GateAdmission {
            offers: Arc::new(OnceLock::new()),
            options,
        }
    }

    /// Reads offers from `cache` from now on (the first attachment wins).
    pub fn attach(&self, cache: &Cache<ConstraintPolicyOffer>) {
        let _ = self.offers.set(cache.store().clone());
    }

    /// Gates `pod` (JSON, as stored) if an offer targets it. Returns whether it did.
    pub fn admit(&self, pod: &mut Value) -> bool {
        match self.offers.get() {
            Some(store) => gate_value(pod, &store.state(), &self.options),
            None => false,
        }
    }
}

/// Admissions answered, by outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// `gated`, `unchanged`, `invalid`.
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

/// Answers an AdmissionReview. Pods are gated by [`mutate`]; everything else (other
/// operations and kinds, pods that do not decode) is allowed unchanged: the webhook never
/// refuses a request. Returns the `admission.k8s.io/v1` AdmissionReview to send back
/// (the patch base64-encoded, as the API server expects) and the outcome label; an error
/// when the body is not an AdmissionReview with a request.
pub fn review(
    body: &[u8],
    offers: &[Arc<ConstraintPolicyOffer>],
    options: &GateOptions,
) -> Result<(Value, &'static str), ReviewError> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)?;
    let request: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| ReviewError::NoRequest)?;
    let allow = |patch: Option<&json_patch::Patch>| {
        let mut response = json!({"uid": request.uid, "allowed": true});
        if let Some(patch) = patch
            && let Ok(bytes) = serde_json::to_vec(patch)
        {
            response["patchType"] = json!("JSONPatch");
            response["patch"] = json!(BASE64.encode(bytes));
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
        return Ok((allow(None), "unchanged"));
    }
    let pod = request
        .object
        .as_ref()
        .map(|o| serde_json::to_value(o).and_then(serde_json::from_value::<Pod>));
    let pod = match pod {
        Some(Ok(pod)) => pod,
        Some(Err(error)) => {
            tracing::warn!(%error, uid = %request.uid, "admission: the pod does not decode; admitted unchanged");
            return Ok((allow(None), "invalid"));
        }
        None => return Ok((allow(None), "invalid")),
    };
    let namespace = request
        .namespace
        .clone()
        .or_else(|| pod.metadata.namespace.clone())
        .unwrap_or_else(|| "default".into());
    match mutate(&pod, &namespace, offers, options) {
        Some(patch) => {
            let name = pod
                .metadata
                .name
                .clone()
                .or(pod.metadata.generate_name.clone())
                .unwrap_or_default();
            tracing::debug!(pod = %format!("{namespace}/{name}"), "admission: gated for the planner");
            Ok((allow(Some(&patch)), "gated"))
        }
        None => Ok((allow(None), "unchanged")),
    }
}

#[derive(Clone)]
struct AppState {
    offers: Store<ConstraintPolicyOffer>,
    options: GateOptions,
    admissions: Family<AdmissionLabels, Counter>,
}

/// The webhook's routes: `POST /mutate-pods` and `GET /healthz`.
pub fn router(
    offers: Store<ConstraintPolicyOffer>,
    options: GateOptions,
    admissions: Family<AdmissionLabels, Counter>,
) -> Router {
    Router::new()
        .route(MUTATE_PATH, post(handle))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(AppState {
            offers,
            options,
            admissions,
        })
}

async fn handle(State(state): State<AppState>, body: Bytes) -> Response {
    let offers = state.offers.state();
    match review(&body, &offers, &state.options) {
        Ok((answer, outcome)) => {
            state
                .admissions
                .get_or_create(&AdmissionLabels {
                    outcome: outcome.into(),
                })
                .inc();
            match serde_json::to_vec(&answer) {
                Ok(bytes) => (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    bytes,
                )
                    .into_response(),
                Err(error) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
                }
            }
        }
        Err(message) => {
            state
                .admissions
                .get_or_create(&AdmissionLabels {
                    outcome: "invalid".into(),
                })
                .inc();
            // The API server counts this as a webhook failure and, with failurePolicy
            // Ignore, admits the pod.
            (StatusCode::BAD_REQUEST, message.to_string()).into_response()
        }
    }
}

/// Why the webhook could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A rustls server configuration (ring, TLS 1.2 and 1.3, HTTP/1.1) from PEM text: a
/// certificate chain and its private key (PKCS#8, PKCS#1 or SEC1).
pub fn tls_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<rustls::ServerConfig, WebhookError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WebhookError::Pem {
            path: cert_path.to_path_buf(),
            message: format!("not a PEM certificate chain: {e}"),
        })?;
    if certs.is_empty() {
        return Err(WebhookError::Pem {
            path: cert_path.to_path_buf(),
            message: "holds no certificate".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| WebhookError::Pem {
        path: key_path.to_path_buf(),
        message: format!("not a PEM private key: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Where and how the webhook serves.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// `0.0.0.0:9443` in the chart; port 0 picks one.
    pub addr: SocketAddr,
    /// Holds `tls.crt` and `tls.key`. They are read once at start; a new certificate takes
    /// effect when the pod restarts (the chart rolls the Deployment when the Secret
    /// changes).
    pub cert_dir: PathBuf,
    pub options: GateOptions,
}

/// Serves the webhook over HTTPS until `shutdown` is cancelled. Returns the bound address
/// and the task. Counts admissions in `edgeplane_webhook_admissions_total{outcome}`.
pub async fn serve(
    config: WebhookConfig,
    offers: &Cache<ConstraintPolicyOffer>,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), WebhookError> {
    let cert_path = config.cert_dir.join(CERT_FILE);
    let key_path = config.cert_dir.join(KEY_FILE);
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| WebhookError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let tls = tls_config(&read(&cert_path)?, &read(&key_path)?, &cert_path, &key_path)?;
    let admissions = Family::<AdmissionLabels, Counter>::default();
    metrics.register(
        "webhook_admissions",
        "Pod admissions answered by the gate webhook, by outcome",
        admissions.clone(),
    );
    let app = router(offers.store().clone(), config.options, admissions);
    serve_tls(config.addr, tls, app, shutdown).await
}

/// Serves `app` over HTTPS with `tls` until `shutdown` is cancelled; connections in
/// flight finish their current request.
pub async fn serve_tls(
    addr: SocketAddr,
    tls: rustls::ServerConfig,
    app: Router,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), WebhookError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| WebhookError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| WebhookError::Listen { addr, source })?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let task = tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        tracing::warn!(%error, "webhook: accept failed");
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let tls =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => {
                            tracing::debug!(%error, %peer, "webhook: TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "webhook: TLS handshake timed out");
                            return;
                        }
                    };
                let service = TowerToHyperService::new(app);
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service);
                let mut conn = std::pin::pin!(conn);
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%error, %peer, "webhook: connection ended with an error");
                        }
                    }
                    _ = shutdown.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            });
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_api::{ConstraintPolicyOfferSpec, OfferTarget};
    use k8s_openapi::api::core::v1::{PodSchedulingGate, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
    use std::collections::BTreeMap;

    fn offer(
        namespace: &str,
        name: &str,
        selectors: &[Option<&[(&str, &str)]>],
    ) -> Arc<ConstraintPolicyOffer> {
        let mut targets: Vec<OfferTarget> = selectors
            .iter()
            .map(|s| OfferTarget {
                name: None,
                api_version: None,
                kind: TargetKind::Pod,
                mode: None,
                label_selector: s.map(|labels| LabelSelector {
                    match_labels: Some(
                        labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    ),
                    match_expressions: None,
                }),
                sites: None,
            })
            .collect();
        targets.push(OfferTarget {
            name: Some("users".into()),
            api_version: None,
            kind: TargetKind::Site,
            mode: None,
            label_selector: None,
            sites: Some(vec!["stadium".into()]),
        });
        let mut o = ConstraintPolicyOffer::new(
            name,
            ConstraintPolicyOfferSpec {
                targets,
                policies: vec!["near".into()],
                period: "10s".into(),
                grace: "1m".into(),
                violation_policy: Default::default(),
                mitigation_grace: None,
            },
        );
        o.metadata.namespace = Some(namespace.into());
        Arc::new(o)
    }

    fn pod(labels: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec::default()),
            status: None,
        }
    }

    fn ops(patch: &json_patch::Patch) -> Value {
        serde_json::to_value(patch).unwrap_or_default()
    }

    #[test]
    fn gates_pods_that_an_offer_targets_in_their_namespace() {
        let offers = [offer("ar", "near-users", &[Some(&[("app", "render")])])];
        let o = GateOptions::default();
        let patch = mutate(&pod(&[("app", "render")]), "ar", &offers, &o);
        assert_eq!(
            patch.as_ref().map(ops),
            Some(json!([{"op": "add", "path": "/spec/schedulingGates",
                         "value": [{"name": "constraint.edgeplane.io/planner"}]}]))
        );
        // Other labels, other namespaces: not targeted.
        assert!(mutate(&pod(&[("app", "web")]), "ar", &offers, &o).is_none());
        assert!(mutate(&pod(&[("app", "render")]), "shop", &offers, &o).is_none());
        // A Pod target without a selector selects every pod of the namespace.
        let all = [offer("ar", "all", &[None])];
        assert!(mutate(&pod(&[]), "ar", &all, &o).is_some());
    }

    #[test]
    fn keeps_other_gates_and_never_gates_twice() {
        let offers = [offer("ar", "near-users", &[Some(&[("app", "render")])])];
        let o = GateOptions::default();
        let mut p = pod(&[("app", "render")]);
        if let Some(spec) = p.spec.as_mut() {
            spec.scheduling_gates = Some(vec![PodSchedulingGate {
                name: "example.com/quota".into(),
            }]);
        }
        let patch = mutate(&p, "ar", &offers, &o);
        assert_eq!(
            patch.as_ref().map(ops),
            Some(json!([{"op": "add", "path": "/spec/schedulingGates/-",
                         "value": {"name": "constraint.edgeplane.io/planner"}}]))
        );
        if let Some(spec) = p.spec.as_mut() {
            spec.scheduling_gates = Some(vec![PodSchedulingGate {
                name: PLANNER_GATE.into(),
            }]);
        }
        assert!(
            mutate(&p, "ar", &offers, &o).is_none(),
            "users may gate pods themselves"
        );
    }

    #[test]
    fn leaves_bound_pods_and_other_schedulers_alone() {
        let offers = [offer("ar", "near-users", &[Some(&[("app", "render")])])];
        let o = GateOptions::default();
        let mut bound = pod(&[("app", "render")]);
        if let Some(spec) = bound.spec.as_mut() {
            spec.node_name = Some("edge-1-a".into());
        }
        assert!(mutate(&bound, "ar", &offers, &o).is_none());
        for (scheduler, gated) in [
            ("default-scheduler", true),
            ("", true),
            ("edgeplane", false),
            ("volcano", false),
        ] {
            let mut p = pod(&[("app", "render")]);
            if let Some(spec) = p.spec.as_mut() {
                spec.scheduler_name = Some(scheduler.into());
            }
            assert_eq!(
                mutate(&p, "ar", &offers, &o).is_some(),
                gated,
                "{scheduler}"
            );
        }
    }

    #[test]
    fn bad_selectors_select_nothing() {
        let mut bad = (*offer("ar", "bad", &[Some(&[("app", "render")])])).clone();
        if let Some(s) = bad.spec.targets[0].label_selector.as_mut() {
            s.match_expressions = Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "Near".into(),
                    values: None,
                },
            ]);
        }
        let offers = [Arc::new(bad)];
        assert!(
            mutate(
                &pod(&[("app", "render")]),
                "ar",
                &offers,
                &GateOptions::default()
            )
            .is_none()
        );
    }

    #[test]
    fn gate_value_patches_json_in_place() {
        let offers = [offer("ar", "near-users", &[Some(&[("app", "render")])])];
        let mut value = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "r-1", "namespace": "ar", "labels": {"app": "render"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        });
        assert!(gate_value(&mut value, &offers, &GateOptions::default()));
        assert_eq!(value["spec"]["schedulingGates"][0]["name"], PLANNER_GATE);
        assert!(!gate_value(&mut value, &offers, &GateOptions::default()));
        let mut junk = json!({"metadata": {"name": 7}});
        assert!(!gate_value(&mut junk, &offers, &GateOptions::default()));
    }

    fn admission_review(operation: &str, object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
                "requestResource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "ar",
                "operation": operation,
                "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                "object": object,
                "oldObject": null,
                "dryRun": false,
                "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
            }
        }))
        .unwrap_or_default()
    }

    #[test]
    fn reviews_answer_with_a_json_patch_and_the_request_uid() {
        let offers = [offer("ar", "near-users", &[Some(&[("app", "render")])])];
        let body = admission_review(
            "CREATE",
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"generateName": "render-", "labels": {"app": "render"}},
                   "spec": {"containers": [{"name": "c", "image": "i"}]}}),
        );
        let (answer, outcome) =
            review(&body, &offers, &GateOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(outcome, "gated");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        let response = &answer["response"];
        assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(response["allowed"], true);
        assert_eq!(response["patchType"], "JSONPatch");
        // The patch travels base64-encoded.
        let patch = BASE64
            .decode(response["patch"].as_str().unwrap_or_default())
            .unwrap_or_default();
        let patch: Value = serde_json::from_slice(&patch).unwrap_or_default();
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/spec/schedulingGates",
                    "value": [{"name": "constraint.edgeplane.io/planner"}]}])
        );

        // An update, or a pod nobody targets: allowed, unchanged.
        let update = admission_review(
            "UPDATE",
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "x", "labels": {"app": "render"}}, "spec": {"containers": []}}),
        );
        let (answer, outcome) =
            review(&update, &offers, &GateOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(outcome, "unchanged");
        assert_eq!(answer["response"]["allowed"], true);
        assert!(answer["response"].get("patch").is_none());

        // A pod that does not decode is admitted, not refused.
        let odd = admission_review(
            "CREATE",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                   "spec": {"containers": "not a list"}}),
        );
        let (answer, outcome) =
            review(&odd, &offers, &GateOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(outcome, "invalid");
        assert_eq!(answer["response"]["allowed"], true);

        // Not a review at all: an error (the API server then applies failurePolicy).
        assert!(review(b"{}", &offers, &GateOptions::default()).is_err());
        assert!(review(b"nonsense", &offers, &GateOptions::default()).is_err());
    }
}
