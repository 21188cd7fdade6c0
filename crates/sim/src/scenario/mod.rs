//! Scenarios: what a simulation starts from and what happens to it.
//!
//! ```yaml
//! apiVersion: sim.edgeplane.io/v1alpha1
//! kind: Scenario
//! metadata: {name: stadium-ar}
//! spec:
//!   description: AR renderers near the users of a stadium ...
//!   duration: 45m
//!   settings: {quietPeriod: 2s, maxWait: 30s, podStartup: 3s, period: 30s, seed: 1}
//!   include: [topology.yaml, nodes.yaml, app.yaml]   # relative to the scenario file
//!   resources: []                                     # inline Kubernetes objects
//!   events:
//!   - {at: 5m,  apply: [ ...objects... ]}
//!   - {at: 10m, delete: [{apiVersion: v1, kind: Pod, namespace: default, name: x}]}
//!   - {at: 12m, setLink: {from: metro-1, to: edge-3, latency: 30ms}, note: fibre cut}
//!   - {at: 20m, failNode: edge-3-a}
//!   - {at: 25m, recoverNode: edge-3-a}
//!   - {at: 30m, scale: {kind: Deployment, namespace: default, name: ar, replicas: 8}}
//!   expect:                                           # final counts, exact or ">= n" / "<= n"
//!     podsPlaced: 8
//!     mitigations: ">= 1"
//!     bindings: {Compliant: 19, Violation: 0}
//! ```
//!
//! [`load`] reads and validates a scenario completely before anything runs: every object
//! (included or inline) is decoded and validated by `edgeplane_core::manifests::decode`,
//! must be of a kind the embedded cluster serves and live in a namespace that exists, the
//! topology must build with the scenario's nodes, and every event must make sense at its
//! time (the node it fails exists and is up, the link it changes joins known sites, the
//! workload it scales was created before). Errors name the file and the field:
//!
//! `stadium-ar.yaml: spec.events[3].setLink.latency: "fast" is not a duration (...)`
//! `examples/metro/topology.yaml[0] NetworkTopology default: spec.links[2].to: unknown site ...`

mod error;
mod events;
mod expect;
mod functions;
mod load;
mod members;
mod model;
mod raw;
mod sources;
mod world;

#[cfg(test)]
mod tests;

pub use error::ScenarioError;
pub use events::link_matches;
pub use expect::{Bound, Expectation, ExpectationResult, Measure};
pub use functions::{FUNCTION_CRDS, is_crd, is_function, is_kubevirt_crd};
pub use load::{load, load_with, parse, parse_with};
pub use members::{SECRET_NAMESPACE, secret_name};
pub use model::{
    API_VERSION, Action, Event, HubMode, HubSettings, KIND, LinkChange, MemberSpec, MultiCluster,
    ObjectRef, ScaleTarget, Scenario, Settings,
};
pub use sources::normalize;
