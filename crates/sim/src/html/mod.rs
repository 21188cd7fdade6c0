//! The HTML report: one self-contained page (inline CSS and SVG, no scripts, nothing
//! fetched) with the summary, a map of sites and links with the placements at the end,
//! charts over time (bindings by compliance, pods, latency of the links that changed,
//! and a strip of repairs and failures), the workloads and the timeline.
//!
//! The map is laid out in layers by site tier (regional, metro, edge, users: from the
//! sites' `tier` label, `kind: users` or `transit: false`); within a layer sites follow
//! the average position of the sites they link to above them, so edge sites sit under
//! their metro site and users under their edge sites. Everything is deterministic.

mod charts;
mod escape;
mod map;
mod page;
mod tables;

#[cfg(test)]
mod tests;

pub use escape::esc;
pub use map::latency_colour;
pub use page::render;
