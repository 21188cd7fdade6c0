//! The reference network controller: a catalogue of alternate paths and slices
//! (`NetworkPathCatalogue`) with finite capacity, activated by writing the topology's
//! `status.activatedPaths`, so that the binding controller sees the repair in the graph.
//!
//! The decisions are pure (`edgeplane_core::mitigation`); this module reads the cluster,
//! calls them, and writes their answers:
//!
//! - **State lives in the API.** Allocations are the catalogue's `status.allocations`;
//!   capacity is counted from them, so a restarted controller (or another replica) picks
//!   up where the last one stopped. Offers reserve nothing, and their ids name their entry
//!   and expiry, so Allocate needs no memory of them either.
//! - **Writes** are server-side apply on the status subresource with the field manager
//!   `edgeplane-netctl`: the catalogue's status (with its resourceVersion as a
//!   precondition, so two writers never both take the last unit of capacity: the loser
//!   re-reads and decides again), then the topology's `status.activatedPaths` (derived from
//!   the allocations, written whole). The topology's other status fields belong to other
//!   managers and are left alone.
//! - **One writer at a time** in a process (a mutex). Several replicas stay correct
//!   (the resourceVersion precondition), but the controller is meant to run as a single
//!   replica; running only while holding a Lease is the seam for leader election
//!   ([`ReferenceController::reconcile`] and the four operations are what a leader runs).
//! - **Reconciling** (at start and every `resync`): rewrites the catalogue's status
//!   (counts, the `Valid` condition with the located problems of invalid entries),
//!   releases allocations whose binding is gone (after `orphan_grace`), and re-applies the
//!   activated paths (repairing a crash between the two writes, or a topology recreated).

mod config;
mod operations;
mod serve;
mod state;
mod status;

pub use config::{CachedReads, ReferenceConfig, RefusalReporter};
pub use serve::{serve, serve_as};
pub use state::ReferenceController;
#[cfg(test)]
pub(crate) use state::WriteError;
