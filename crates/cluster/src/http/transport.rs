//! The two ways in: a `tower::Service` for `kube::Client::new` (in process, no sockets)
//! and a plain-HTTP server for kubectl.

use std::convert::Infallible;

use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::BodyExt;

use super::response::error_response;
use super::{Body, Handler};
use crate::error::ApiError;
use edgeplane_serve::{HttpLimits, Refusal};

/// The embedded cluster as a `tower::Service`, for `kube::Client::new`.
#[derive(Debug, Clone)]
pub struct ClusterService {
    handler: Handler,
}

impl ClusterService {
    pub fn new(handler: Handler) -> Self {
        ClusterService { handler }
    }
}

impl tower::Service<Request<kube::client::Body>> for ClusterService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let handler = self.handler.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = match body.collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) => {
                    return Ok(error_response(&ApiError::bad_request(format!(
                        "failed to read the request body: {e}"
                    ))));
                }
            };
            Ok(handler.handle(Request::from_parts(parts, bytes)).await)
        })
    }
}

/// The embedded API's answers over a socket, with its refusals as `Status` objects.
#[derive(Debug, Clone)]
struct Served(Handler);

impl edgeplane_serve::Respond for Served {
    type Body = Body;

    async fn respond(&self, request: Request<bytes::Bytes>) -> Response<Body> {
        self.0.handle(request).await
    }

    fn refuse(&self, refusal: &Refusal) -> Response<Body> {
        let message = refusal.message();
        let error = match refusal {
            Refusal::BodyTooLarge { .. } => ApiError::request_entity_too_large(message),
            Refusal::Timeout { .. } => ApiError::timeout(message),
            Refusal::UnreadableBody(_) => ApiError::bad_request(message),
        };
        error_response(&error)
    }
}

/// Serves the API over plain HTTP/1.1 within `limits` until `shutdown` is cancelled
/// (the body limit, header read and request timeouts, connection cap and accept backoff
/// of `edgeplane_serve`; a watch streams past the request timeout, as on a real API
/// server, where watches are long-running requests).
pub async fn serve(handler: Handler, listener: tokio::net::TcpListener, limits: HttpLimits) {
    let shutdown = handler.shutdown.clone();
    let acceptor = edgeplane_serve::Acceptor::new("cluster", listener, limits.max_connections);
    edgeplane_serve::http::serve(acceptor, limits, Served(handler), shutdown).await;
}
