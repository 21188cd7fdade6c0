//! A member's API server as the hub reaches it: the embedded cluster's in-process service,
//! refusing every request while the scenario has the member failed (`failCluster`), as a
//! server behind a cut link would. What runs inside the member goes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::future::BoxFuture;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a member answers; shared by the driver (which fails and recovers it) and the
/// clients of the hub and of the simulated Karmada.
#[derive(Clone, Default, Debug)]
pub struct Reach(Arc<AtomicBool>);

impl Reach {
    pub fn set_down(&self, down: bool) {
        self.0.store(down, Ordering::SeqCst);
    }

    pub fn is_down(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A service that fails every call while its member is down.
#[derive(Clone)]
pub struct Reachable<S> {
    pub inner: S,
    pub reach: Reach,
}

impl<S, Req> tower::Service<Req> for Reachable<S>
where
    S: tower::Service<Req>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if self.reach.is_down() {
            return Box::pin(futures::future::ready(Err(
                "connection refused (the simulated member is down)".into(),
            )));
        }
        let call = self.inner.call(request);
        Box::pin(async move { call.await.map_err(Into::into) })
    }
}
