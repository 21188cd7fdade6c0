//! The embedded cluster: an in-process Kubernetes API server with simulated nodes, on
//! virtual time.
//!
//! edgeplane's controllers are ordinary kube-rs code (clients, watchers, reflectors,
//! `kube::runtime::Controller`s). The embedded cluster lets that code run unchanged where
//! no Kubernetes API server exists: in tests, in the simulator and in the demo.
//!
//! - [`EmbeddedCluster::start`] starts it; [`EmbeddedCluster::client`] is a
//!   `kube::Client` backed by an in-process `tower::Service` (no sockets).
//! - The API is the subset edgeplane uses, with a real API server's semantics: discovery,
//!   CRUD with resourceVersion conflicts, selectors, pagination, watches with bookmarks
//!   and 410 Gone, merge / JSON / strategic merge patches and server-side apply, the status
//!   and scale subresources, pods/binding, pods/eviction with PodDisruptionBudgets,
//!   finalizers and owner-reference garbage collection, scheduling gates, CRDs with
//!   schema validation, and `Status` errors with the right codes.
//! - Simulated machinery: kubelets, a default-scheduler stand-in, Deployment, ReplicaSet,
//!   StatefulSet and DaemonSet controllers, the disruption controller, node failure,
//!   KubeVirt ([`kubevirt`]: VMs, VMIs, launcher pods) and Multus ([`multus`]: secondary
//!   interfaces attached by the kubelet).
//! - Virtual time: all timers are tokio timers and all timestamps come from one
//!   [`VirtualClock`], so paused tokio time advances hours instantly.
//! - [`EmbeddedCluster::serve`] serves it over HTTP so kubectl works against it.
//!
//! See docs/embedded-cluster.md for a tour.

#![cfg_attr(test, allow(clippy::unwrap_used))] // tests may unwrap what they built

pub mod admission_policy;
pub mod api;
pub mod builtin;
pub mod cel;
pub mod clock;
mod cluster;
mod controller;
pub mod crd_rules;
pub mod disruption;
pub mod error;
pub mod events;
pub mod http;
pub mod kubelet;
pub mod kubevirt;
pub mod lifecycle;
pub mod multus;
pub mod nodes;
pub mod object;
pub mod patch;
pub mod pdb;
pub mod protobuf;
pub mod resources;
pub mod scheduler;
pub mod schema;
pub mod selector;
pub mod store;
pub mod table;
pub mod watch;
pub mod workloads;

pub use api::{PodAdmission, UserInfo};
pub use clock::VirtualClock;
pub use cluster::{ClusterConfig, ClusterError, EmbeddedCluster, kubeconfig, parse_yaml_documents};
/// Resource quantities in exact milli-units (`edgeplane_core::quantity`, which the
/// planner shares).
pub use edgeplane_core::quantity;
pub use error::ApiError;
pub use kubelet::KubeletConfig;
pub use lifecycle::LifecycleConfig;
pub use nodes::NodeSpec;
