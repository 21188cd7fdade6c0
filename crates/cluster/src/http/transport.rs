//! The two ways in: a `tower::Service` for `kube::Client::new` (in process, no sockets)
//! and a plain-HTTP server for kubectl.

use std::convert::Infallible;

use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::BodyExt;

use super::response::error_response;
use super::{Body, Handler};
use crate::error::ApiError;

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

/// Serves the API over plain HTTP/1.1 until `shutdown` is cancelled.
pub async fn serve(handler: Handler, listener: tokio::net::TcpListener) {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    let shutdown = handler.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let resp = match body.collect().await {
                        Ok(c) => {
                            handler
                                .handle(Request::from_parts(parts, c.to_bytes()))
                                .await
                        }
                        Err(e) => error_response(&ApiError::bad_request(format!(
                            "failed to read the request body: {e}"
                        ))),
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended");
                },
                _ = shutdown.cancelled() => {}
            }
        });
    }
}
