//! Serves any [`NetworkController`] over gRPC.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::controller::NetworkController;
use crate::proto;
use crate::proto::network_controller_server::{
    NetworkController as NetworkControllerRpc, NetworkControllerServer,
};
use crate::wire;

/// The gRPC service around a controller.
pub struct NetworkControllerService {
    controller: Arc<dyn NetworkController>,
}

impl NetworkControllerService {
    pub fn new(controller: Arc<dyn NetworkController>) -> NetworkControllerService {
        NetworkControllerService { controller }
    }

    /// The service, ready for `tonic::transport::Server::add_service`.
    pub fn into_server(self) -> NetworkControllerServer<NetworkControllerService> {
        NetworkControllerServer::new(self)
    }
}

#[tonic::async_trait]
impl NetworkControllerRpc for NetworkControllerService {
    async fn discover(
        &self,
        request: Request<proto::DiscoverRequest>,
    ) -> Result<Response<proto::DiscoverResponse>, Status> {
        let question = wire::discover_from_proto(request.get_ref()).map_err(|e| e.to_status())?;
        let offers = self
            .controller
            .discover(&question)
            .await
            .map_err(|e| e.to_status())?;
        Ok(Response::new(proto::DiscoverResponse {
            offers: offers.iter().map(wire::offer_to_proto).collect(),
        }))
    }

    async fn allocate(
        &self,
        request: Request<proto::AllocateRequest>,
    ) -> Result<Response<proto::AllocateResponse>, Status> {
        let question = wire::allocate_from_proto(request.get_ref()).map_err(|e| e.to_status())?;
        let answer = self
            .controller
            .allocate(&question)
            .await
            .map_err(|e| e.to_status())?;
        Ok(Response::new(wire::allocated_to_proto(&answer)))
    }

    async fn release(
        &self,
        request: Request<proto::ReleaseRequest>,
    ) -> Result<Response<proto::ReleaseResponse>, Status> {
        let question = wire::release_from_proto(request.get_ref()).map_err(|e| e.to_status())?;
        let answer = self
            .controller
            .release(&question)
            .await
            .map_err(|e| e.to_status())?;
        Ok(Response::new(wire::released_to_proto(&answer)))
    }

    async fn mitigate(
        &self,
        request: Request<proto::MitigateRequest>,
    ) -> Result<Response<proto::MitigateResponse>, Status> {
        let question = wire::mitigate_from_proto(request.get_ref()).map_err(|e| e.to_status())?;
        let answer = self
            .controller
            .mitigate(&question)
            .await
            .map_err(|e| e.to_status())?;
        Ok(Response::new(wire::outcome_to_proto(&answer)))
    }
}

/// Serves `controller` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    controller: Arc<dyn NetworkController>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(NetworkControllerService::new(controller).into_server())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}
