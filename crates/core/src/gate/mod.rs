//! The planner's gate (`constraint.edgeplane.io/planner`) when no planning scheduler is
//! there to lift it: whether one is alive ([`liveness`], read from its Lease), and which
//! gated pods to release to kube-scheduler after a timeout ([`watchdog`]). The gate webhook
//! gates only while a scheduler is alive; the watchdog (a controller of `edgeplane
//! controller`) releases the pods gated before it died or by their own templates.

pub mod liveness;
pub mod watchdog;

pub use liveness::{DEFAULT_LEASE_DURATION, Death, LeaseFacts, Liveness, liveness};
pub use watchdog::{DEFAULT_TIMEOUT, Decision, GatedPod, Ungate, decide, ungate_patch};
