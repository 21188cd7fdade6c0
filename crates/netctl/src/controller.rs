//! The network-controller API in Rust: the [`NetworkController`] trait, the questions and
//! answers of its four operations, and [`NetctlError`]. The gRPC client, the gRPC server,
//! the reference controller and the test fake all speak it, so the planner and the
//! descheduler can use any of them.

use edgeplane_api::{Compliance, ConstraintPolicyRule};
use edgeplane_core::network::PathMetric;
use edgeplane_core::network::PathMetrics;
use jiff::Timestamp;

/// A rule as carried in every call: name, request, limit (none: a hard threshold).
pub type PolicyRule = ConstraintPolicyRule;

/// One end of a path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A node, by name: where a pod runs.
    Node(String),
    /// A site of the NetworkTopology, by name: where users are.
    Site(String),
}

impl Endpoint {
    pub fn name(&self) -> &str {
        match self {
            Endpoint::Node(n) | Endpoint::Site(n) => n,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Node(n) => write!(f, "node {n}"),
            Endpoint::Site(s) => write!(f, "site {s}"),
        }
    }
}

/// Metrics of a path as text in edgeplane's units (`5ms`, `1Gbps`, `0.01%`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpectedMetrics {
    pub latency: String,
    pub jitter: String,
    /// Empty when no link on the path states a bandwidth (unlimited).
    pub bandwidth: String,
    pub loss: String,
}

impl ExpectedMetrics {
    pub fn from_path(m: &PathMetrics) -> ExpectedMetrics {
        ExpectedMetrics {
            latency: m.value(PathMetric::Latency).to_string(),
            jitter: m.value(PathMetric::Jitter).to_string(),
            bandwidth: if m.bandwidth_bps.is_infinite() {
                String::new()
            } else {
                m.value(PathMetric::Bandwidth).to_string()
            },
            loss: m.value(PathMetric::PacketLoss).to_string(),
        }
    }
}

/// Discover: which paths would make `rules` hold between `source` and each candidate node.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoverRequest {
    pub rules: Vec<PolicyRule>,
    pub source: Endpoint,
    pub candidate_nodes: Vec<String>,
    /// `namespace/name` of the binding asked for (informational; may be empty).
    pub binding: String,
}

/// A path that would make the rules hold between the source and one node.
#[derive(Clone, Debug, PartialEq)]
pub struct PathOffer {
    /// Allocate it by this id; it becomes the allocation's id.
    pub id: String,
    pub node: String,
    /// Sites from the source to the node, both ends included.
    pub path: Vec<String>,
    pub expected: ExpectedMetrics,
    /// Relative cost, lower is better.
    pub cost: f64,
    pub expires: Timestamp,
    /// The controller's name for the path.
    pub entry: String,
    /// How the rules would fare: Compliant or Limit.
    pub compliance: Compliance,
}

/// Allocate: turn the offer `id` into an allocation for `binding`.
#[derive(Clone, Debug, PartialEq)]
pub struct AllocateRequest {
    pub id: String,
    pub binding: String,
    pub rules: Vec<PolicyRule>,
}

/// What Allocate did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocated {
    pub id: String,
    pub entry: String,
    /// False when the id was allocated already.
    pub created: bool,
}

/// Release: free the allocation `id`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReleaseRequest {
    pub id: String,
    /// When given, the allocation is released only if this binding holds it.
    pub binding: Option<String>,
    pub rules: Vec<PolicyRule>,
}

/// What Release did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Released {
    /// False when there was no such allocation.
    pub released: bool,
    /// The path is no longer active: no other allocation uses it.
    pub deactivated: bool,
}

/// Mitigate: repair the network between the two endpoints of a binding in Violation.
#[derive(Clone, Debug, PartialEq)]
pub struct MitigateRequest {
    /// `namespace/name`.
    pub binding: String,
    pub source: Endpoint,
    pub destination: Endpoint,
    pub rules: Vec<PolicyRule>,
}

/// What Mitigate did. A refusal is an outcome (`accepted: false` with the reason), not an
/// error.
#[derive(Clone, Debug, PartialEq)]
pub struct MitigateOutcome {
    /// The rules hold (at least Limit) with the answer's path active.
    pub accepted: bool,
    /// Metrics from source to destination with the path active.
    pub expected: Option<ExpectedMetrics>,
    pub reason: String,
    /// The allocation holding the path; `None` when nothing was allocated.
    pub allocation_id: Option<String>,
    pub entry: Option<String>,
    /// Sites from source to destination.
    pub path: Vec<String>,
    /// How the rules fare with the path; `None` when unknown.
    pub compliance: Option<Compliance>,
}

/// Why a call failed. Each variant has its gRPC status code (see the proto).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetctlError {
    /// A field is missing or does not parse, an endpoint is unknown (INVALID_ARGUMENT).
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// What the call names does not exist (NOT_FOUND).
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller may not do this: the binding's pods are elsewhere, or another identity
    /// holds the allocation (PERMISSION_DENIED).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The call cannot be served in this state: an expired offer, no catalogue, an
    /// allocation held by another binding (FAILED_PRECONDITION).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The path is at capacity (RESOURCE_EXHAUSTED).
    #[error("{0}")]
    AtCapacity(String),
    /// The controller, or what it manages, cannot be reached (UNAVAILABLE).
    #[error("{0}")]
    Unavailable(String),
    /// No answer in time (DEADLINE_EXCEEDED).
    #[error("{0}")]
    Timeout(String),
    /// Writes kept conflicting with concurrent writers; retry (ABORTED).
    #[error("{0}")]
    Aborted(String),
    /// Anything else, with the cause.
    #[error("{0}")]
    Failed(String),
}

impl NetctlError {
    /// The gRPC status of the error.
    pub fn to_status(&self) -> tonic::Status {
        let message = self.to_string();
        match self {
            NetctlError::InvalidArgument(_) => tonic::Status::invalid_argument(message),
            NetctlError::NotFound(_) => tonic::Status::not_found(message),
            NetctlError::PermissionDenied(_) => tonic::Status::permission_denied(message),
            NetctlError::FailedPrecondition(_) => tonic::Status::failed_precondition(message),
            NetctlError::AtCapacity(_) => tonic::Status::resource_exhausted(message),
            NetctlError::Unavailable(_) => tonic::Status::unavailable(message),
            NetctlError::Timeout(_) => tonic::Status::deadline_exceeded(message),
            NetctlError::Aborted(_) => tonic::Status::aborted(message),
            NetctlError::Failed(_) => tonic::Status::internal(message),
        }
    }
}

/// A network controller: the four operations of the protocol.
///
/// Implemented by [`crate::GrpcNetworkController`] (a remote controller),
/// [`crate::ReferenceController`] (edgeplane's own, in process) and
/// [`crate::fake::FakeNetworkController`] (scripted answers for tests).
#[tonic::async_trait]
pub trait NetworkController: Send + Sync {
    /// Offers of paths that would make the rules hold between the source and each
    /// candidate node, best first. Offers reserve nothing.
    async fn discover(&self, request: &DiscoverRequest) -> Result<Vec<PathOffer>, NetctlError>;

    /// Turns an offer into an allocation and activates its path. Idempotent.
    async fn allocate(&self, request: &AllocateRequest) -> Result<Allocated, NetctlError>;

    /// Frees an allocation; deactivates its path when unused. Idempotent.
    async fn release(&self, request: &ReleaseRequest) -> Result<Released, NetctlError>;

    /// Repairs the network for a binding, or says why it cannot.
    async fn mitigate(&self, request: &MitigateRequest) -> Result<MitigateOutcome, NetctlError>;

    /// [`allocate`](Self::allocate) on behalf of `caller`: the gRPC server calls these
    /// `_as` forms so that a controller can authorise the call. A controller that does not
    /// authorise keeps the defaults; a wrapper must forward them.
    async fn allocate_as(
        &self,
        request: &AllocateRequest,
        caller: &Caller,
    ) -> Result<Allocated, NetctlError> {
        let _ = caller;
        self.allocate(request).await
    }

    /// [`release`](Self::release) on behalf of `caller`.
    async fn release_as(
        &self,
        request: &ReleaseRequest,
        caller: &Caller,
    ) -> Result<Released, NetctlError> {
        let _ = caller;
        self.release(request).await
    }

    /// [`mitigate`](Self::mitigate) on behalf of `caller`.
    async fn mitigate_as(
        &self,
        request: &MitigateRequest,
        caller: &Caller,
    ) -> Result<MitigateOutcome, NetctlError> {
        let _ = caller;
        self.mitigate(request).await
    }
}

/// Who makes a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Code in the controller's own process (the simulator, tests): trusted.
    InProcess,
    /// A gRPC client, by identity: its mutual-TLS certificate's name
    /// (`cert:<URI or DNS SAN, else subject CN>`), else its connection
    /// (`connection:<address:port>`).
    Remote(String),
}
