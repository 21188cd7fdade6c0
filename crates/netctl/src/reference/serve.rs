//! The reference controller behind gRPC, with its reconciler.

use std::sync::Arc;

use tokio::net::TcpListener;

use super::state::ReferenceController;
use crate::server::ServerLimits;

/// Runs the reference controller on `listener` until `shutdown` completes: the gRPC
/// service, and the reconciler (at start and every `resync`). This is the in-process form
/// of `edgeplane netctl serve`; with the embedded cluster's client and clock it runs on
/// virtual time.
pub async fn serve(
    listener: TcpListener,
    controller: Arc<ReferenceController>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    serve_as(
        listener,
        controller.clone(),
        controller,
        ServerLimits::default(),
        None,
        shutdown,
    )
    .await
}

/// [`serve`] within `limits` (over TLS when `tls` is given), with gRPC calls answered by `served`: the controller wrapped
/// by the caller (`netctl serve` times and counts the calls), while the reconciler runs on
/// `controller`.
pub async fn serve_as(
    listener: TcpListener,
    controller: Arc<ReferenceController>,
    served: Arc<dyn crate::NetworkController>,
    limits: ServerLimits,
    tls: Option<Arc<edgeplane_serve::tls::ServerTls>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let reconciler = {
        let controller = controller.clone();
        tokio::spawn(async move {
            controller
                .run_reconciler(async move {
                    // Also completes when the sender is dropped (the server stopped).
                    let _ = stopped.changed().await;
                })
                .await;
        })
    };
    let result = crate::server::serve_with_limits(listener, served, limits, tls, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    let _ = reconciler.await;
    result
}
