//! Constraint providers: what evaluates a rule for a binding and scores candidate nodes for
//! the planner.
//!
//! - [`Provider`] is the two operations of Turnbuckle's rule-provider protocol, `evaluate`
//!   and `endpoint_cost`, as an async trait.
//! - [`BuiltinProvider`] answers for the built-in rules (latency, jitter, bandwidth,
//!   packet-loss, cpu, memory, node-label, node-feature) from a
//!   [`ClusterView`](edgeplane_core::evaluate::ClusterView); the logic is in
//!   `edgeplane_core::evaluate`, this is the adapter.
//! - [`GrpcProvider`] is a client of an external provider, with a timeout and a bound on
//!   calls in flight; every failure becomes an Error outcome with its cause.
//! - [`server`] serves any provider over the same protocol, so Turnbuckle-compatible
//!   clients can use edgeplane's built-ins.
//! - [`Providers`] routes each rule to its provider (external first, then built-in) and
//!   evaluates whole bindings with bounded concurrency.
//! - [`discovery`] finds external providers from Services labelled
//!   `constraint.edgeplane.io/provider-<rule>: enabled`.

pub mod builtin;
pub mod client;
pub mod discovery;
pub mod provider;
pub mod registry;
pub mod server;
mod wire;

/// Code generated from `proto/ruleprovider.proto` (package `ruleprovider`).
pub mod proto {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs)]
    tonic::include_proto!("ruleprovider");
}

pub use builtin::BuiltinProvider;
pub use client::{ClientOptions, GrpcProvider};
pub use provider::{
    COST_SCALE, CostRequest, INFEASIBLE_COST, NodeCost, Provider, ProviderError, cost_from_wire,
    cost_to_wire, planner_costs,
};
pub use registry::{PolicyInput, Providers};

#[cfg(test)]
mod tests;
