//! End-to-end tests: the real controllers against the embedded cluster, on virtual time.
//! `harness` starts clusters and components; the other modules are the scenarios.

// Tests unwrap what they built and the errors they expect.
#![allow(clippy::unwrap_used)]

mod harness;

mod bindings;
mod leader;
mod offers;
