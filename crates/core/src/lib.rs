//! edgeplane's decisions, as pure functions of observed state.
//!
//! Nothing here performs I/O or depends on an async runtime: the runtime crate observes the
//! cluster, calls these functions, and turns their answers into API calls. That keeps every
//! decision unit-testable without a cluster and identical on a real cluster and on the
//! embedded one.

pub mod certificates;
pub mod chain;
pub mod clock;
pub mod descheduler;
pub mod evaluate;
pub mod events;
pub mod explain;
pub mod gate;
pub mod gitops;
pub mod hub;
pub mod kubevirt;
pub mod manifests;
pub mod measurement;
pub mod mitigation;
pub mod multus;
pub mod network;
pub mod nf;
pub mod offers;
pub mod outcome;
pub mod placement;
pub mod planner;
pub mod quantity;
pub mod rng;
pub mod rules;
pub mod scheduler;
pub mod selector;
pub mod sites;
pub mod snapshot;
pub mod status;
pub mod validate;
pub mod values;
pub mod workloads;
