//! End to end: the descheduler with the real controllers, the planning scheduler and the
//! reference network controller (in process), on the embedded cluster, on virtual time.
//!
//! The world: users at the stadium, two edge sites next to it and a metro behind them.
//! The renderer (a Deployment, gated by the real webhook mutation) must reach the stadium
//! within 5ms (2ms preferred). Each scenario degrades the stadium <-> edge-1 link so that
//! the renderer planned on edge-1 falls into Violation, and checks what the descheduler
//! does about it, and what it does not do.

// Tests unwrap what they built and the errors they expect.
#![allow(clippy::unwrap_used)]

#[path = "e2e/harness.rs"]
mod harness;

#[path = "descheduler/bandwidth.rs"]
mod bandwidth;
#[path = "descheduler/capacity.rs"]
mod capacity;
#[path = "descheduler/env.rs"]
mod env;
#[path = "descheduler/repair.rs"]
mod repair;

use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{Compliance, NetworkPathCatalogue, NetworkTopology};
use env::{Env, Options, RENDERER, WORLD, catalogue, degraded_topology, evictions};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
