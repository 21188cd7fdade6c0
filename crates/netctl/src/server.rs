//! Serves any [`NetworkController`] over gRPC.

use std::sync::Arc;

use edgeplane_serve::grpc::WorkSlots;
use edgeplane_serve::tls::ServerTls;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use crate::controller::{Caller, NetworkController};
use crate::proto;
use crate::proto::network_controller_server::{
    NetworkController as NetworkControllerRpc, NetworkControllerServer,
};
use crate::wire;

/// How much the server does at once (`edgeplane netctl serve` flags in parentheses).
/// Each operation reads and writes the API and is cancelled when its caller goes away or
/// its deadline passes (tonic drops it); these bound the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Calls at work at once; past it calls are refused with RESOURCE_EXHAUSTED
    /// (`--max-concurrent-requests`).
    pub max_concurrent_requests: usize,
    /// Open connections (`--max-connections`).
    pub max_connections: usize,
    /// Largest request message, in bytes (`--max-message-bytes`).
    pub max_message_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_concurrent_requests: 16,
            max_connections: 256,
            max_message_bytes: 1024 * 1024,
        }
    }
}

/// The gRPC service around a controller.
pub struct NetworkControllerService {
    controller: Arc<dyn NetworkController>,
    limits: ServerLimits,
    slots: WorkSlots,
}

impl NetworkControllerService {
    /// With the default [`ServerLimits`].
    pub fn new(controller: Arc<dyn NetworkController>) -> NetworkControllerService {
        NetworkControllerService::with_limits(controller, ServerLimits::default())
    }

    pub fn with_limits(
        controller: Arc<dyn NetworkController>,
        limits: ServerLimits,
    ) -> NetworkControllerService {
        let slots = WorkSlots::new(limits.max_concurrent_requests, "--max-concurrent-requests");
        NetworkControllerService {
            controller,
            limits,
            slots,
        }
    }

    /// The service, ready for `tonic::transport::Server::add_service`, refusing messages
    /// over the limit.
    pub fn into_server(self) -> NetworkControllerServer<NetworkControllerService> {
        let max = self.limits.max_message_bytes;
        NetworkControllerServer::new(self).max_decoding_message_size(max)
    }
}

#[tonic::async_trait]
impl NetworkControllerRpc for NetworkControllerService {
    async fn discover(
        &self,
        request: Request<proto::DiscoverRequest>,
    ) -> Result<Response<proto::DiscoverResponse>, Status> {
        let _slot = self.slots.try_enter()?;
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
        let _slot = self.slots.try_enter()?;
        let question = wire::allocate_from_proto(request.get_ref()).map_err(|e| e.to_status())?;
        let answer = self
            .controller
            .allocate_as(&question, &caller(&request))
            .await
            .map_err(|e| e.to_status())?;
        Ok(Response::new(wire::allocated_to_proto(&answer)))
    }

    async fn release(
        &self,
        request: Request<proto::ReleaseRequest>,
    ) -> Result<Response<proto::ReleaseResponse>, Status> {
        let _slot = self.slots.try_enter()?;
        let question = wire::release_from_proto(request.get_ref()).map_err(|e| e.to_status())?;
        let answer = self
            .controller
            .release_as(&question, &caller(&request))
            .await
            .map_err(|e| e.to_status())?;
        Ok(Response::new(wire::released_to_proto(&answer)))
    }

    async fn mitigate(
        &self,
        request: Request<proto::MitigateRequest>,
    ) -> Result<Response<proto::MitigateResponse>, Status> {
        let _slot = self.slots.try_enter()?;
        let question = wire::mitigate_from_proto(request.get_ref()).map_err(|e| e.to_status())?;
        let answer = self
            .controller
            .mitigate_as(&question, &caller(&request))
            .await
            .map_err(|e| e.to_status())?;
        Ok(Response::new(wire::outcome_to_proto(&answer)))
    }
}

/// Who calls: the name in the client's certificate when it presented one (mutual TLS),
/// else its connection (address and port), so that what one connection allocated another
/// cannot release.
pub fn caller<T>(request: &Request<T>) -> Caller {
    let named = request
        .peer_certs()
        .and_then(|certs| certs.first().and_then(|c| certificate_name(c)));
    match (named, request.remote_addr()) {
        (Some(name), _) => Caller::Remote(format!("cert:{name}")),
        (None, Some(addr)) => Caller::Remote(format!("connection:{addr}")),
        (None, None) => Caller::Remote("connection:unknown".into()),
    }
}

/// A certificate's name: its first URI subject alternative name (a SPIFFE id, say), else
/// its first DNS name, else its subject's common name.
pub fn certificate_name(der: &[u8]) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        let names = &san.value.general_names;
        let uri = names.iter().find_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        });
        let dns = names.iter().find_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        });
        if let Some(name) = uri.or(dns) {
            return Some(name);
        }
    }
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

/// Serves `controller` on `listener` with the default [`ServerLimits`] until `shutdown`
/// completes.
pub async fn serve(
    listener: TcpListener,
    controller: Arc<dyn NetworkController>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    serve_with_limits(
        listener,
        controller,
        ServerLimits::default(),
        None,
        shutdown,
    )
    .await
}

/// Serves `controller` on `listener` within `limits` until `shutdown` completes, over TLS
/// when `tls` is given (mutual TLS when it names a client CA), else in plain text (with a
/// warning when the address is not a loopback one).
pub async fn serve_with_limits(
    listener: TcpListener,
    controller: Arc<dyn NetworkController>,
    limits: ServerLimits,
    tls: Option<Arc<ServerTls>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let max_connections = limits.max_connections;
    let router = tonic::transport::Server::builder()
        .add_service(NetworkControllerService::with_limits(controller, limits).into_server());
    edgeplane_serve::tls::serve_router(
        "the network controller",
        listener,
        max_connections,
        router,
        tls,
        shutdown,
    )
    .await
}
