//! The simulator: runs a scenario (a MEC network, workloads, policies, and a script of
//! events: link degradations, node failures, scaling, new objects) on the embedded cluster
//! on virtual time, with edgeplane's controllers plugged in as [`Component`]s, and tells
//! what happened: a timeline, a summary, a JSON report and an HTML report.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use edgeplane_sim::{RunOptions, scenario};
//! let s = scenario::load(std::path::Path::new("examples/scenarios/stadium-ar/scenario.yaml"))?;
//! let report = edgeplane_sim::run(&s, RunOptions::default())?;
//! println!("{} pods placed", report.summary.pods_placed);
//! std::fs::write("report.html", edgeplane_sim::html::render(&report))?;
//! # Ok(()) }
//! ```
//!
//! - [`scenario`]: the scenario format, loading and validation (errors name file and field).
//! - [`component`](mod@component): the seam where controllers plug in; [`controllers`]:
//!   edgeplane's own.
//! - [`run()`]: the run (virtual time, optional serving at a multiple of real time).
//! - [`timeline`]: entry types and the table from Kubernetes Event reasons to them.
//! - [`series`]: what the observer records over time (counts, node states, pods per
//!   node, each binding's compliance and latency, activated paths).
//! - [`report`], [`html`], [`text`]: the outputs.
//! - [`generate`]: scenarios of any size for benchmarks.
//! - [`multicluster`]: scenarios with `spec.clusters`: a hub and its members, each an
//!   embedded cluster, on one clock, with edgeplane's hub placing the applications.
//!
//! See docs/simulator.md.

#![cfg_attr(test, allow(clippy::unwrap_used))] // tests may unwrap what they built

pub mod chains;
pub mod component;
pub mod controllers;
pub mod driver;
pub mod files;
pub mod generate;
pub mod html;
pub mod journal;
pub mod lite;
pub mod multicluster;
pub mod observer;
pub mod report;
pub mod run;
pub mod scenario;
pub mod series;
pub mod simulate;
pub mod text;
pub mod timeline;

pub use component::{Component, ComponentResult, SimContext, component};
pub use journal::Listener;
pub use report::{Report, Summary};
pub use run::{RunOptions, ServeOptions, SimError};
pub use scenario::{Scenario, ScenarioError};
pub use simulate::{run, run_in_runtime};
pub use timeline::{EVENT_REASONS, EntryType};
