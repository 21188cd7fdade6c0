//! The HTML report: one self-contained page (inline CSS, SVG and one small script, nothing
//! fetched) with the summary, the time each offer's bindings spent out of compliance, a
//! map of sites and links at the end and, with a slider, at each moment of the run,
//! charts over time (bindings by compliance, pods, the latency of the links that changed
//! and of the bindings they carried, the bandwidth reserved on links where bindings reserve
//! any, a strip of failures and repairs by lane), the
//! workloads and the timeline (filters, folded long messages, a row per chart mark); for a
//! scenario with clusters, the clusters (drawn on the map at their sites as well), the
//! applications' placements and the members' workloads over time; for a scenario with
//! service chains, their lanes on the map and a section of lanes and migrations.
//!
//! Files: `page` (the sections in order), `style`, `script`, `chart` (the frame charts
//! share), `charts` (bindings, pods), `latency`, `bandwidth`, `marks` (the strip), `map/`, `tables`
//! (by offer, workloads), `clusters`, `chains`, `timeline`. Everything is deterministic.

mod bandwidth;
mod chains;
mod chart;
mod charts;
mod clusters;
mod escape;
mod latency;
mod map;
mod marks;
mod page;
mod script;
mod style;
mod tables;
mod timeline;

#[cfg(test)]
mod tests;

pub use escape::esc;
pub use map::latency_colour;
pub use page::render;
