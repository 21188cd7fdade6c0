//! The network-controller API and edgeplane's reference network controller.
//!
//! - [`proto`]: the protocol (`proto/network_controller.proto`, package
//!   `edgeplane.network.v1alpha1`, service `NetworkController`: Discover, Allocate,
//!   Release, Mitigate), every call carrying the rules at stake.
//! - [`NetworkController`]: the four operations as an async trait, with typed questions
//!   and answers and [`NetctlError`]; the planner and the descheduler program against it.
//! - [`GrpcNetworkController`]: a client of a remote controller, with timeouts; every
//!   failure is an error naming the controller.
//! - [`server`]: any controller served over gRPC.
//! - [`discovery`]: the controller registered by a Service labelled
//!   `network.edgeplane.io/controller: enabled`, or an explicit URL.
//! - [`ReferenceController`] and [`reference::serve`]: the reference controller (a
//!   NetworkPathCatalogue of alternate paths with finite capacity, activated in the
//!   NetworkTopology's status); the decisions are in `edgeplane_core::mitigation`.
//! - [`fake`]: scripted answers for tests.
//!
//! docs/netctl.md is the guide.

pub mod authorize;
pub mod client;
pub mod controller;
pub mod discovery;
pub mod fake;
pub mod reference;
pub mod server;
pub mod wire;

/// Code generated from `proto/network_controller.proto` (package
/// `edgeplane.network.v1alpha1`).
pub mod proto {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs)]
    tonic::include_proto!("edgeplane.network.v1alpha1");
}

pub use client::{ClientOptions, GrpcNetworkController};
pub use controller::{
    AllocateRequest, Allocated, Caller, DiscoverRequest, Endpoint, ExpectedMetrics,
    MitigateOutcome, MitigateRequest, NetctlError, NetworkController, PathOffer, PolicyRule,
    ReleaseRequest, Released,
};
pub use reference::{CachedReads, ReferenceConfig, ReferenceController, RefusalReporter};

#[cfg(test)]
mod tests;
