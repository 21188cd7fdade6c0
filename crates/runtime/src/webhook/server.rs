//! The webhook's HTTPS server: axum over rustls (ring), `POST /mutate-pods` answered by
//! [`super::review`] with the offers of a cache and the scheduler's liveness.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use edgeplane_api::ConstraintPolicyOffer;
use edgeplane_serve::tls::{ServerTls, ServerTlsFiles, TlsError};
use edgeplane_serve::{Acceptor, HttpLimits};
use kube::runtime::reflector::Store;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    AdmissionLabels, CERT_FILE, GateOptions, HANDSHAKE_TIMEOUT, KEY_FILE, MUTATE_PATH,
    register_admissions, review,
};
use crate::cache::Cache;
use crate::http::App;
use crate::metrics::Metrics;
use crate::watchdog::SchedulerWatch;

#[derive(Clone)]
struct AppState {
    offers: Store<ConstraintPolicyOffer>,
    scheduler: SchedulerWatch,
    options: GateOptions,
    admissions: Family<AdmissionLabels, Counter>,
}

/// The webhook's routes: `POST /mutate-pods` and `GET /healthz`.
pub fn router(
    offers: Store<ConstraintPolicyOffer>,
    scheduler: SchedulerWatch,
    options: GateOptions,
    admissions: Family<AdmissionLabels, Counter>,
) -> Router {
    Router::new()
        .route(MUTATE_PATH, post(handle))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(AppState {
            offers,
            scheduler,
            options,
            admissions,
        })
}

async fn handle(State(state): State<AppState>, body: Bytes) -> Response {
    let offers = state.offers.state();
    let liveness = state.scheduler.liveness();
    match review(&body, &offers, &state.options, liveness.as_ref()) {
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
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Where and how the webhook serves.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// `0.0.0.0:9443` in the chart; port 0 picks one.
    pub addr: SocketAddr,
    /// Holds `tls.crt` and `tls.key`, re-read when they change (a renewed certificate
    /// takes effect for new connections without a restart).
    pub cert_dir: PathBuf,
    pub options: GateOptions,
    /// Body limit, timeouts and connection cap (`HttpLimits::default()`: the API
    /// server's own 3 MiB, 32s, 60s).
    pub limits: HttpLimits,
}

/// Serves the webhook over HTTPS until `shutdown` is cancelled, gating while `scheduler`
/// shows a live planning scheduler. Returns the bound address and the task. Counts
/// admissions in `edgeplane_webhook_admissions_total{outcome}`.
pub async fn serve(
    config: WebhookConfig,
    offers: &Cache<ConstraintPolicyOffer>,
    scheduler: SchedulerWatch,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), WebhookError> {
    // Re-read when the mounted Secret changes (a renewal), so no restart is needed.
    let tls = ServerTls::load_http1(ServerTlsFiles {
        cert: config.cert_dir.join(CERT_FILE),
        key: config.cert_dir.join(KEY_FILE),
        client_ca: None,
    })?;
    let admissions = Family::<AdmissionLabels, Counter>::default();
    register_admissions(metrics, admissions.clone());
    let app = router(
        offers.store().clone(),
        scheduler,
        config.options,
        admissions,
    );
    serve_tls(config.addr, Arc::new(tls), app, config.limits, shutdown).await
}

/// Serves `app` over HTTPS with `tls` (its current certificate for each new connection)
/// within `limits` until `shutdown` is cancelled; connections in flight finish their
/// current request.
pub async fn serve_tls(
    addr: SocketAddr,
    tls: Arc<ServerTls>,
    app: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), WebhookError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| WebhookError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| WebhookError::Listen { addr, source })?;

    let mut connections = Acceptor::new("webhook", listener, limits.max_connections);
    let app = App(app);
    let task = tokio::spawn(async move {
        while let Some(accepted) = connections.accept(&shutdown).await {
            let (acceptor, app, limits, shutdown) = (
                tokio_rustls::TlsAcceptor::from(tls.current()),
                app.clone(),
                limits.clone(),
                shutdown.clone(),
            );
            tokio::spawn(async move {
                let (stream, peer, slot) = (accepted.stream, accepted.peer, accepted.slot);
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
                if let Err(error) =
                    edgeplane_serve::http::serve_connection(tls, limits, app, shutdown).await
                {
                    tracing::debug!(%error, %peer, "webhook: connection ended with an error");
                }
                drop(slot);
            });
        }
    });
    Ok((bound, task))
}
