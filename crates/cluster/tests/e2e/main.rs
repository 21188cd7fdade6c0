//! End-to-end tests: kube-rs clients, watchers, reflectors and controllers against the
//! embedded cluster, exactly as they would run against a real one.

// Tests unwrap the errors they expect (`unwrap_err`) and what they built.
#![allow(clippy::unwrap_used)]

mod support;

mod admission;
mod crud;
mod errors;
mod faithfulness;
mod load;
mod machinery;
mod migration;
mod openapi;
mod protobuf;
mod serving;
mod smoke;
mod subresources;
mod watching;
