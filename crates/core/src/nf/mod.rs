//! Network functions: what a `NetworkFunction` renders into and what its status says.
//!
//! - [`check`]: the checks the CRD schema cannot make (quantities, `requires` terms,
//!   interfaces naming networks that exist, templates that merge into a valid object),
//!   each error naming the field. A spec with any error renders nothing, so a bad NF is
//!   never half-created.
//! - [`render`]: replica i becomes `<nf>-<i>`: a Pod held at the planner's gate
//!   (`Container`), or a KubeVirt VirtualMachine created halted (`VirtualMachine`), both
//!   owned by the NF, both with the `requires` labels as required node affinity and the
//!   secondary interfaces on Multus networks (the spec's, then the ports chains add).
//! - [`status`]: the NF's status from the pods, VMIs and Multus' `network-status`.
//! - [`targets`]: the pods an offer's NetworkFunction or ServiceChain target stands for.

mod check;
mod render;
mod status;
pub mod targets;
#[cfg(test)]
mod tests;

pub use check::*;
pub use render::*;
pub use status::*;

use edgeplane_api::InterfaceBinding;

/// Label on every object rendered for a network function: the NF's name.
pub const NF_LABEL: &str = "network.edgeplane.io/network-function";
/// Label on every object rendered for a network function: the replica's index.
pub const REPLICA_LABEL: &str = "network.edgeplane.io/replica";

/// A problem with an object's spec, at a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field, `spec.interfaces[1].network`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Errors joined for a condition message: `a: x; b: y`.
pub fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// An interface a replica gets from outside its spec: a ServiceChain's link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// The interface's name (unique in the replica).
    pub name: String,
    /// The NetworkAttachmentDefinition, `namespace/name`.
    pub network: String,
    pub binding: InterfaceBinding,
}

/// The name of replica `index` of the NF `nf`.
pub fn replica_name(nf: &str, index: usize) -> String {
    format!("{nf}-{index}")
}

/// The name of a new pod for replica `index`: `<nf>-<index>`, or `<nf>-<index>-r<k>` with
/// the smallest k free when the first name is `taken` (its pod is stuck terminating on a
/// failed node, say). Deterministic, so two reconciles that see the same pods create the
/// same pod, never two.
pub fn pod_name(nf: &str, index: usize, taken: &dyn Fn(&str) -> bool) -> String {
    pod_name_for(&replica_name(nf, index), taken)
}

/// [`pod_name`] for the replica named `replica` (`<nf>-<index>`).
pub fn pod_name_for(replica: &str, taken: &dyn Fn(&str) -> bool) -> String {
    if !taken(replica) {
        return replica.to_string();
    }
    (1..)
        .map(|k| format!("{replica}-r{k}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| replica.to_string())
}

/// Whether `name` is a pod name [`pod_name`] gives replica `replica` (`<nf>-<index>`).
pub fn is_pod_of(name: &str, replica: &str) -> bool {
    name == replica
        || name
            .strip_prefix(replica)
            .and_then(|rest| rest.strip_prefix("-r"))
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
}
