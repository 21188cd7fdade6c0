//! The network graph: sites, the nodes in them, and the metrics of the path between any
//! two locations, precomputed so that a lookup is O(1).
//!
//! # Model
//!
//! - **Sites.** Every site declared in `spec.sites`, and every site a node is in. A node's
//!   site is the value of its `spec.siteLabel` label; a node without that label (or with
//!   an empty value) is in the site named like the node, usually a site of its own.
//!   Sites are numbered in name order ([`SiteId`]); nodes in input order ([`NodeId`]).
//! - **Links** join two known sites (declared, or the site of a node: a link never
//!   introduces a site, so a misspelt name is an error). A link carries traffic both ways
//!   with the same metrics unless `oneWay`. Omitted metrics: jitter 0, loss 0, bandwidth
//!   unlimited; latency is required.
//! - **Measurements** (`status.measured`) override the metrics they carry on the link with
//!   the same ends and direction, or add that link, when they are at most
//!   `spec.measurementMaxAge` (default 5m) older than the `now` given to
//!   [`NetworkGraph::build`]; older ones are ignored, as are measurements naming unknown
//!   sites (those are reported by [`NetworkGraph::warnings`], since the status is written
//!   by an agent and must not make the whole topology unusable).
//! - **Transit.** A declared site with `transit: false` (a site of users) can be the end of
//!   a path but is never passed through.
//! - **Paths.** Between two sites traffic follows the path of least latency; among equal
//!   latencies the one with fewer hops; among those, the one whose sequence of site names
//!   is first in lexicographic order. Along the path latency and jitter add up, bandwidth
//!   is the smallest link bandwidth, and loss is `1 - Π(1 - loss_i)`. Latencies are summed
//!   in whole nanoseconds, so equal sums compare equal.
//!
//! # Locations
//!
//! A [`Location`] is a node or a site ("the users at that site"). [`NetworkGraph::metrics`]
//! of two locations is:
//!
//! | a, b | metrics |
//! | --- | --- |
//! | the same node twice | `sameNode` |
//! | two nodes of one site | `intraSite` |
//! | a node and the site it is in | `intraSite` |
//! | a site and itself | `intraSite` |
//! | anything else | the path from a's site to b's site (`None` when there is none) |
//!
//! The path is directed: with one-way links `metrics(a, b)` and `metrics(b, a)` may
//! differ. No `intraSite` leg is added at the ends of an inter-site path.
//!
//! Stored metrics are `f32` (about 7 significant digits), 16 bytes per site pair: 16 MB for
//! 1,000 sites, plus 4 MB of predecessors to recover the paths themselves.

mod graph;
mod location;
mod metrics;
mod overlay;
pub mod reservation;
mod route;
mod search;
mod spec;

#[cfg(test)]
mod brute_force;
#[cfg(test)]
mod tests;

pub use graph::{NetworkGraph, NodeInfo};
pub use location::{Location, NodeId, SiteId};
pub use metrics::{DEFAULT_INTRA_SITE, DEFAULT_SAME_NODE, LinkMetrics, PathMetric, PathMetrics};
pub use overlay::{HopSource, MeasuredEdge};
pub use reservation::{Demand, LinkLoad, Reservations};
pub use route::{ExtraLink, Route};
pub use spec::{TopologyError, check_topology, is_site_name};
