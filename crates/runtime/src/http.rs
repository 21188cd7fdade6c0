//! The operational HTTP endpoints: `/healthz` (the process is alive), `/readyz` (every
//! readiness check holds: caches synced, leader or standby known, ...) and `/metrics`
//! (OpenMetrics text format).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use edgeplane_serve::{Acceptor, HttpLimits, Refusal, Respond};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

type Check = Arc<dyn Fn() -> bool + Send + Sync>;

/// Named readiness checks; `/readyz` answers 200 when all hold. Cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<(String, Check)>>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ready, report) = self.report();
        f.debug_struct("Readiness")
            .field("ready", &ready)
            .field("report", &report)
            .finish()
    }
}

impl Readiness {
    /// Adds a check (`caches`, `leader-election`, ...).
    pub fn add(&self, name: impl Into<String>, check: impl Fn() -> bool + Send + Sync + 'static) {
        self.checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.into(), Arc::new(check)));
    }

    /// Whether every check holds, and one line per check (`[+]caches ok`, `[-]caches not ready`),
    /// in the API server's `/readyz?verbose` style.
    pub fn report(&self) -> (bool, String) {
        let checks = self
            .checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut ready = true;
        let mut text = String::new();
        for (name, check) in checks {
            if check() {
                text.push_str(&format!("[+]{name} ok\n"));
            } else {
                ready = false;
                text.push_str(&format!("[-]{name} not ready\n"));
            }
        }
        (ready, text)
    }

    pub fn is_ready(&self) -> bool {
        self.report().0
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

/// The router, for embedding or testing without a socket.
pub fn router(metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { metrics, readiness })
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (ready, report) = state.readiness.report();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, report)
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// The limits of `/healthz`, `/readyz` and `/metrics`: GETs from the kubelet and
/// Prometheus, with no body to speak of, answered at once.
pub const ENDPOINT_LIMITS: HttpLimits = HttpLimits {
    max_body_bytes: 64 * 1024,
    header_read_timeout: Duration::from_secs(10),
    request_timeout: Duration::from_secs(30),
    max_connections: 64,
};

/// An axum app served with `edgeplane_serve`'s limits; refusals are plain text.
#[derive(Clone)]
pub struct App(pub Router);

impl Respond for App {
    type Body = axum::body::Body;

    async fn respond(&self, request: http::Request<bytes::Bytes>) -> http::Response<Self::Body> {
        use tower::ServiceExt;
        match self
            .0
            .clone()
            .oneshot(request.map(axum::body::Body::from))
            .await
        {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    fn refuse(&self, refusal: &Refusal) -> http::Response<Self::Body> {
        refusal.plain_text()
    }
}

/// Binds `addr` (port 0 picks one) and returns the bound address and the serving task,
/// which ends when `shutdown` is cancelled. Served within [`ENDPOINT_LIMITS`], so that
/// slow or numerous clients, or running out of file descriptors, cannot stop `/readyz`
/// from answering once they are gone.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = App(router(metrics, readiness));
    let acceptor = Acceptor::new("health", listener, ENDPOINT_LIMITS.max_connections);
    let task = tokio::spawn(async move {
        edgeplane_serve::http::serve(acceptor, ENDPOINT_LIMITS, app, shutdown).await;
        Ok(())
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let mut answer = String::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            stream.read_to_string(&mut answer),
        )
        .await;
        assert!(read.is_ok(), "the server never closed the connection");
        answer
    }

    #[tokio::test]
    async fn the_endpoints_refuse_bodies_over_their_limit_and_still_answer() {
        let shutdown = CancellationToken::new();
        let readiness = Readiness::default();
        readiness.add("caches", || true);
        let (addr, _task) = serve(
            "127.0.0.1:0".parse().expect("address"),
            Arc::new(Metrics::new()),
            readiness,
            shutdown.clone(),
        )
        .await
        .expect("serve");
        let refused = exchange(
            addr,
            b"POST /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(refused.starts_with("HTTP/1.1 413"), "{refused}");
        assert!(
            refused.ends_with("Request entity too large: limit is 65536\n"),
            "{refused}"
        );
        let ready = exchange(
            addr,
            b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
        assert!(ready.ends_with("[+]caches ok\n"), "{ready}");
        shutdown.cancel();
    }
}
