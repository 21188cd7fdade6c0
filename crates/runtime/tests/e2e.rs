//! End-to-end tests: the real controllers against the embedded cluster, on virtual time.
//! `harness` starts clusters and components; the other modules are the scenarios.

// Tests unwrap what they built and the errors they expect.
#![allow(clippy::unwrap_used)]

#[path = "e2e/harness.rs"]
mod harness;

#[path = "e2e/application.rs"]
mod application;
#[path = "e2e/bandwidth.rs"]
mod bandwidth;
#[path = "e2e/bindings.rs"]
mod bindings;
#[path = "e2e/gate.rs"]
mod gate;
#[path = "e2e/leader.rs"]
mod leader;
#[path = "e2e/measurement.rs"]
mod measurement;
#[path = "e2e/offers.rs"]
mod offers;
