//! HTTP/1 connections with limits: a request body limit, a header read timeout and a
//! per-request timeout. What to answer, and how a refusal looks, is the server's
//! ([`Respond`]); the limits are the same for every server.

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::accept::Acceptor;

/// The limits of an HTTP server. `Default` is what the embedded API server uses, after
/// kube-apiserver's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request body, in bytes (kube-apiserver: 3 MiB, answered 413).
    pub max_body_bytes: usize,
    /// A client must send a request's headers within this (kube-apiserver: 32s). It also
    /// closes a kept-alive connection that sends nothing for this long.
    pub header_read_timeout: Duration,
    /// A request must be read and answered (up to its response headers) within this
    /// (kube-apiserver: 60s, answered 504). Streamed responses (watches) go on after.
    pub request_timeout: Duration,
    /// Open connections at most; past it the server stops accepting until one closes.
    pub max_connections: usize,
}

/// kube-apiserver's body limit: 3 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// kube-apiserver's header read timeout.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);
/// kube-apiserver's `--request-timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Well under the usual 1024 file descriptors of a process.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Why a request was refused before the server's handler answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The body (its Content-Length, or what was read) is over the limit.
    BodyTooLarge { limit: usize },
    /// The request was not read and answered within the request timeout.
    Timeout { limit: Duration },
    /// The body could not be read (the connection broke, bad chunking).
    UnreadableBody(String),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Refusal::UnreadableBody(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The API server's wording (`Request entity too large: limit is 3145728`).
    pub fn message(&self) -> String {
        match self {
            Refusal::BodyTooLarge { limit } => {
                format!("Request entity too large: limit is {limit}")
            }
            Refusal::Timeout { limit } => format!(
                "Timeout: request did not complete within the allotted timeout of {}s",
                limit.as_secs_f64()
            ),
            Refusal::UnreadableBody(why) => format!("failed to read the request body: {why}"),
        }
    }

    /// A plain-text response, for servers without an error format of their own.
    pub fn plain_text<B: From<String>>(&self) -> Response<B> {
        let mut response = Response::new(B::from(format!("{}\n", self.message())));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// A server's answers: to a request whose body was read within the limits, and to a
/// refused one.
pub trait Respond: Clone + Send + Sync + 'static {
    type Body: http_body::Body<Data = Bytes, Error: Into<Box<dyn StdError + Send + Sync>>>
        + Send
        + 'static;
    fn respond(&self, request: Request<Bytes>)
    -> impl Future<Output = Response<Self::Body>> + Send;
    fn refuse(&self, refusal: &Refusal) -> Response<Self::Body>;
}

/// Reads `request`'s body within the limits and asks `server` for the answer, all within
/// the request timeout; a refusal otherwise.
pub async fn answer<S, B>(server: &S, limits: &HttpLimits, request: Request<B>) -> Response<S::Body>
where
    S: Respond,
    B: http_body::Body<Data = Bytes, Error: Into<Box<dyn StdError + Send + Sync>>> + Send,
{
    let limit = limits.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Refused before reading a byte of it.
        return server.refuse(&Refusal::BodyTooLarge { limit });
    }
    let work = async {
        let (parts, body) = request.into_parts();
        let bytes = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                let refusal = if error.is::<http_body_util::LengthLimitError>() {
                    Refusal::BodyTooLarge { limit }
                } else {
                    Refusal::UnreadableBody(error.to_string())
                };
                return server.refuse(&refusal);
            }
        };
        server.respond(Request::from_parts(parts, bytes)).await
    };
    match tokio::time::timeout(limits.request_timeout, work).await {
        Ok(response) => response,
        Err(_) => server.refuse(&Refusal::Timeout {
            limit: limits.request_timeout,
        }),
    }
}

/// Serves HTTP/1 on one connection (plain or already through TLS) until the client
/// closes it, a limit cuts it, or `shutdown` is cancelled (the request in flight is
/// finished first).
pub async fn serve_connection<IO, S>(
    io: IO,
    limits: HttpLimits,
    server: S,
    shutdown: CancellationToken,
) -> Result<(), hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Respond,
{
    let header_read_timeout = limits.header_read_timeout;
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let server = server.clone();
        let limits = limits.clone();
        async move { Ok::<_, std::convert::Infallible>(answer(&server, &limits, request).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => result,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// Accepts connections from `acceptor` and serves each with [`serve_connection`] until
/// `shutdown` is cancelled.
pub async fn serve<S: Respond>(
    mut acceptor: Acceptor<tokio::net::TcpListener>,
    limits: HttpLimits,
    server: S,
    shutdown: CancellationToken,
) {
    while let Some(accepted) = acceptor.accept(&shutdown).await {
        let (limits, server, shutdown) = (limits.clone(), server.clone(), shutdown.clone());
        tokio::spawn(async move {
            let slot = accepted.slot;
            if let Err(error) = serve_connection(accepted.stream, limits, server, shutdown).await {
                tracing::debug!(%error, peer = %accepted.peer, "connection ended");
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests;
