//! The status of every edgeplane kind, computed from what was observed: one module per
//! kind, one condition builder, and which writer owns which status.
//!
//! Controllers compare the computed status with the stored one and apply it only when it
//! differs; the runtime's `Context::apply_status` takes an [`OwnedStatus`], whose type says
//! which object it belongs to and which field manager writes it.

mod application;
mod binding;
mod offer;
mod policy;
mod topology;

pub use application::*;
pub use binding::*;
pub use offer::*;
pub use policy::*;
pub use topology::*;

use edgeplane_api::names::{DESCHEDULER_FIELD_MANAGER, FIELD_MANAGER};
use edgeplane_api::{
    ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyBindingStatus,
    ConstraintPolicyOffer, ConstraintPolicyOfferStatus, ConstraintPolicyStatus,
};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::Serialize;

/// A status (or the part of one) that one writer owns: applied by server-side apply on the
/// status subresource of `Object`, as `FIELD_MANAGER`.
pub trait OwnedStatus: Serialize {
    /// The kind whose status this is.
    type Object;
    /// Who owns the fields it sets.
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;
}

impl OwnedStatus for ConstraintPolicyBindingStatus {
    type Object = ConstraintPolicyBinding;
}

impl OwnedStatus for ConstraintPolicyOfferStatus {
    type Object = ConstraintPolicyOffer;
}

impl OwnedStatus for ConstraintPolicyStatus {
    type Object = ConstraintPolicy;
}

impl OwnedStatus for edgeplane_api::NetworkFunctionStatus {
    type Object = edgeplane_api::NetworkFunction;
}

impl OwnedStatus for edgeplane_api::ServiceChainStatus {
    type Object = edgeplane_api::ServiceChain;
}

/// The descheduler's one field of a binding's status: when it last asked the network
/// controller to mitigate (the binding controller owns the rest).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MitigationStamp {
    pub last_mitigated_timestamp: Time,
}

impl OwnedStatus for MitigationStamp {
    type Object = ConstraintPolicyBinding;
    const FIELD_MANAGER: &'static str = DESCHEDULER_FIELD_MANAGER;
}

/// A condition whose lastTransitionTime moves only when its status changes.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
    generation: Option<i64>,
) -> Condition {
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time,
        observed_generation: generation,
    }
}
