//! edgeplane on Kubernetes: the runtime pieces every component shares, and the controllers
//! that keep offers, bindings, policies and the topology up to date.
//!
//! Infrastructure (reused by the scheduler, the descheduler and the simulator):
//! - [`context::Context`]: client, clock, component and replica identity, leadership,
//!   metrics, readiness, shutdown; every write goes through it ([`Context::apply`],
//!   [`Context::apply_status`], [`Context::delete`], [`Context::events`]) and is refused
//!   on a replica that does not hold the Lease.
//! - [`leader`]: leader election over a `coordination.k8s.io/v1` Lease.
//! - [`cache`]: reflector-backed caches of every kind, with change notifications.
//! - [`view`]: the [`ClusterView`](edgeplane_core::evaluate::ClusterView) built from the
//!   caches, rebuilt only when nodes, the topology or pod placement change.
//! - [`http`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`metrics`]: the Prometheus registry and shared metrics.
//! - [`events`]: stable event reasons and a clock-stamped recorder.
//! - [`error`]: the error type and the per-object exponential backoff.
//!
//! Controllers: [`controllers`] (offers -> bindings, binding evaluation, policy and
//! topology status). docs/runtime.md describes all of it.
//!
//! The planning scheduler: [`scheduler`] (gate and bind modes; docs/scheduler.md), and the
//! mutating admission webhook that gates pods for it: [`webhook`]. The descheduler:
//! [`descheduler`] (mitigate, then evict; docs/descheduler.md), and [`netctl`], how both
//! find the network controller. The hub over many clusters: [`hub`] (direct, karmada and
//! karmada-policy modes; docs/multicluster.md). [`rbac`] lists the API calls of each component, which the
//! Helm chart's RBAC must grant.

pub mod cache;
pub mod catalogue;
pub mod certificates;
pub mod component;
pub mod context;
pub mod controllers;
pub mod descheduler;
pub mod error;
pub mod events;
pub mod foreign;
pub mod http;
pub mod hub;
pub mod leader;
pub mod measurement;
pub mod metrics;
pub mod netctl;
pub mod providers;
pub mod rbac;
pub mod scheduler;
pub mod snapshot;
pub mod view;
pub mod watchdog;
pub mod webhook;

pub use cache::{Cache, Caches, Change};
pub use component::{Base, BaseConfig};
pub use context::Context;
pub use error::Error;
pub use leader::{Leadership, LeaseConfig, Role, unique_identity};
pub use view::{ViewCache, ViewChange};
