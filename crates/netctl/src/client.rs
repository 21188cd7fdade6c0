//! A client of a network controller over gRPC, with a timeout per call. Every failure is a
//! [`NetctlError`] whose message names the controller: an unreachable controller is a
//! clear error, never a panic.

use std::sync::Arc;
use std::time::Duration;

use edgeplane_core::values::format_duration;
use edgeplane_serve::tls::ClientTls;
use tonic::transport::Channel;

use crate::controller::{
    AllocateRequest, Allocated, DiscoverRequest, MitigateOutcome, MitigateRequest, NetctlError,
    NetworkController, PathOffer, ReleaseRequest, Released,
};
use crate::proto::network_controller_client::NetworkControllerClient;
use crate::wire;

/// How a client talks to a network controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// The longest a call may take, connecting included.
    pub timeout: Duration,
    /// The longest connecting may take.
    pub connect_timeout: Duration,
    /// For `https://` URLs: the CA to trust and the client's certificate (`--grpc-ca`,
    /// `--grpc-cert`, `--grpc-key`), re-read when the files change.
    pub tls: Option<Arc<ClientTls>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            tls: None,
        }
    }
}

/// A network controller at a URL (`http://host:port`).
#[derive(Clone, Debug)]
pub struct GrpcNetworkController {
    url: String,
    client: NetworkControllerClient<Channel>,
    timeout: Duration,
}

impl GrpcNetworkController {
    /// A client that connects on first use (and reconnects after failures): `http://` in
    /// plain text, `https://` over TLS with `options.tls`. Must be called inside a Tokio
    /// runtime. Fails only on a URL that is not one, or an `https://` URL without TLS
    /// options.
    pub fn new(url: &str, options: &ClientOptions) -> Result<GrpcNetworkController, NetctlError> {
        let channel =
            edgeplane_serve::tls::channel(url, options.connect_timeout, options.tls.as_ref())
                .map_err(NetctlError::InvalidArgument)?;
        Ok(GrpcNetworkController {
            url: url.to_string(),
            client: NetworkControllerClient::new(channel),
            timeout: options.timeout,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs one call under the timeout, turning every failure into an error that names
    /// the controller.
    async fn call<T, F>(&self, call: F) -> Result<T, NetctlError>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(from_status(&self.url, &status)),
            Err(_) => Err(NetctlError::Timeout(format!(
                "network controller at {} did not answer within {}",
                self.url,
                format_duration(self.timeout)
            ))),
        }
    }
}

/// The error of a gRPC status, with its causes: `network controller at URL is unreachable:
/// tcp connect error: Connection refused (os error 111)`.
pub fn from_status(url: &str, status: &tonic::Status) -> NetctlError {
    let mut causes = Vec::new();
    if !status.message().is_empty() {
        causes.push(status.message().to_string());
    }
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.iter().any(|c| c.contains(&text)) {
            causes.push(text);
        }
        source = cause.source();
    }
    let detail = causes.join(": ");
    let at = format!("network controller at {url}");
    use tonic::Code;
    match status.code() {
        Code::Unavailable => NetctlError::Unavailable(format!("{at} is unreachable: {detail}")),
        Code::DeadlineExceeded => NetctlError::Timeout(format!("{at} timed out: {detail}")),
        Code::InvalidArgument => NetctlError::InvalidArgument(format!("{at}: {detail}")),
        Code::NotFound => NetctlError::NotFound(format!("{at}: {detail}")),
        Code::PermissionDenied => NetctlError::PermissionDenied(format!("{at}: {detail}")),
        Code::FailedPrecondition => NetctlError::FailedPrecondition(format!("{at}: {detail}")),
        Code::ResourceExhausted => NetctlError::AtCapacity(format!("{at}: {detail}")),
        Code::Aborted => NetctlError::Aborted(format!("{at}: {detail}")),
        code => NetctlError::Failed(format!("{at} failed: {code:?}: {detail}")),
    }
}

#[tonic::async_trait]
impl NetworkController for GrpcNetworkController {
    async fn discover(&self, request: &DiscoverRequest) -> Result<Vec<PathOffer>, NetctlError> {
        let mut client = self.client.clone();
        let answer = self
            .call(client.discover(wire::discover_to_proto(request)))
            .await?;
        answer
            .offers
            .iter()
            .enumerate()
            .map(|(i, o)| wire::offer_from_proto(i, o))
            .collect::<Result<_, _>>()
            .map_err(|e| NetctlError::Failed(format!("network controller at {}: {e}", self.url)))
    }

    async fn allocate(&self, request: &AllocateRequest) -> Result<Allocated, NetctlError> {
        let mut client = self.client.clone();
        let answer = self
            .call(client.allocate(wire::allocate_to_proto(request)))
            .await?;
        Ok(wire::allocated_from_proto(&answer))
    }

    async fn release(&self, request: &ReleaseRequest) -> Result<Released, NetctlError> {
        let mut client = self.client.clone();
        let answer = self
            .call(client.release(wire::release_to_proto(request)))
            .await?;
        Ok(wire::released_from_proto(&answer))
    }

    async fn mitigate(&self, request: &MitigateRequest) -> Result<MitigateOutcome, NetctlError> {
        let mut client = self.client.clone();
        let answer = self
            .call(client.mitigate(wire::mitigate_to_proto(request)))
            .await?;
        Ok(wire::outcome_from_proto(&answer))
    }
}
