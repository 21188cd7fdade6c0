//! The measurement agent's decisions, pure: which peers an agent probes ([`peers`]), how
//! node-to-node figures become site-to-site links in `NetworkTopology.status.measured`
//! ([`links`]), and when a new publication is due.
//! The agent's I/O (STAMP sockets, the API server) is in `edgeplane-agent`,
//! `edgeplane_runtime::measurement` and `edgeplane agent run`; docs/measurement.md tells why
//! each choice was made.

mod links;
mod peers;

pub use links::*;
pub use peers::*;

#[cfg(test)]
mod tests;
