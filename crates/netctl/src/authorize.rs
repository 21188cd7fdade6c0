//! Who may ask what of the network controller: pure decisions, taken by the reference
//! controller for remote callers (`Caller::Remote`) before it touches any capacity.
//!
//! - Mitigate and Allocate only for a binding that exists; Mitigate only between places
//!   the binding occupies: a node endpoint must run one of the binding's pods, a site
//!   endpoint must be one of its Site targets.
//! - Release only by id, and only by the identity that allocated.

use std::collections::BTreeSet;

use crate::controller::{Endpoint, NetctlError};

/// What the controller read of the binding a call names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindingFacts {
    /// Nodes its Pod targets run on (pods not placed yet add nothing).
    pub nodes: BTreeSet<String>,
    /// Its Site targets.
    pub sites: BTreeSet<String>,
}

/// Mitigate or Allocate for `binding`, between `endpoints` (field name, endpoint): allowed,
/// or the refusal. `facts` is `None` when no such binding exists.
pub fn binding_call(
    binding: &str,
    facts: Option<&BindingFacts>,
    endpoints: &[(&str, &Endpoint)],
) -> Result<(), NetctlError> {
    if binding.is_empty() {
        return Err(NetctlError::InvalidArgument(
            "binding: empty; name the ConstraintPolicyBinding (namespace/name) the call is for"
                .into(),
        ));
    }
    let Some(facts) = facts else {
        return Err(NetctlError::NotFound(format!(
            "binding {binding} does not exist (ConstraintPolicyBinding {binding}); only existing bindings may hold paths"
        )));
    };
    for (field, endpoint) in endpoints {
        match endpoint {
            Endpoint::Node(node) if !facts.nodes.contains(node) => {
                let placed = if facts.nodes.is_empty() {
                    "none of its pods is on a node".to_string()
                } else {
                    format!(
                        "its pods run on {}",
                        facts.nodes.iter().cloned().collect::<Vec<_>>().join(", ")
                    )
                };
                return Err(NetctlError::PermissionDenied(format!(
                    "{field}: node {node} runs none of binding {binding}'s pods ({placed})"
                )));
            }
            Endpoint::Site(site) if !facts.sites.contains(site) => {
                return Err(NetctlError::PermissionDenied(format!(
                    "{field}: site {site} is not a target of binding {binding}"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Release of the allocation `id`, which `holder` made (`None`: no such allocation, or one
/// without a recorded holder: made in process, or before holders were recorded), by
/// `caller`: allowed, or the refusal. Releasing an unknown id is allowed (it answers
/// `released: false`).
pub fn release(
    id: &str,
    exists: bool,
    holder: Option<&str>,
    caller: &str,
) -> Result<(), NetctlError> {
    if id.is_empty() {
        return Err(NetctlError::InvalidArgument(
            "id: empty; Release frees one allocation, named by the id Allocate or Mitigate answered".into(),
        ));
    }
    match holder {
        _ if !exists => Ok(()),
        Some(holder) if holder == caller => Ok(()),
        Some(holder) => Err(NetctlError::PermissionDenied(format!(
            "allocation {id} was made by {holder}, not by {caller}; only its holder may release it"
        ))),
        None => Err(NetctlError::PermissionDenied(format!(
            "allocation {id} has no recorded holder; the controller frees it when its binding is gone"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> BindingFacts {
        BindingFacts {
            nodes: ["edge-9-a".to_string(), "metro-1-a".to_string()].into(),
            sites: ["stadium".to_string()].into(),
        }
    }

    #[test]
    fn a_made_up_binding_is_not_found() {
        let node = Endpoint::Node("edge-9-a".into());
        assert_eq!(
            binding_call("ar/fake-0", None, &[("source", &node)]),
            Err(NetctlError::NotFound(
                "binding ar/fake-0 does not exist (ConstraintPolicyBinding ar/fake-0); only existing bindings may hold paths".into()
            ))
        );
        assert_eq!(
            binding_call("", Some(&facts()), &[]),
            Err(NetctlError::InvalidArgument(
                "binding: empty; name the ConstraintPolicyBinding (namespace/name) the call is for"
                    .into()
            ))
        );
    }

    #[test]
    fn endpoints_must_be_where_the_bindings_pods_and_sites_are() {
        let (on, off) = (
            Endpoint::Node("edge-9-a".into()),
            Endpoint::Node("edge-2-a".into()),
        );
        let (site, other) = (
            Endpoint::Site("stadium".into()),
            Endpoint::Site("airport".into()),
        );
        assert_eq!(
            binding_call(
                "ar/a",
                Some(&facts()),
                &[("source", &site), ("destination", &on)]
            ),
            Ok(())
        );
        assert_eq!(
            binding_call("ar/a", Some(&facts()), &[("source", &site), ("destination", &off)]),
            Err(NetctlError::PermissionDenied(
                "destination: node edge-2-a runs none of binding ar/a's pods (its pods run on edge-9-a, metro-1-a)".into()
            ))
        );
        assert_eq!(
            binding_call("ar/a", Some(&facts()), &[("source", &other)]),
            Err(NetctlError::PermissionDenied(
                "source: site airport is not a target of binding ar/a".into()
            ))
        );
        assert_eq!(
            binding_call("ar/a", Some(&BindingFacts::default()), &[("source", &on)]),
            Err(NetctlError::PermissionDenied(
                "source: node edge-9-a runs none of binding ar/a's pods (none of its pods is on a node)".into()
            ))
        );
        // Allocate names no endpoint: the binding must exist, nothing more.
        assert_eq!(
            binding_call("ar/a", Some(&BindingFacts::default()), &[]),
            Ok(())
        );
    }

    #[test]
    fn only_the_holder_releases_and_only_by_id() {
        let me = "cert:edgeplane-scheduler";
        assert_eq!(release("offer.a.1.x", true, Some(me), me), Ok(()));
        assert_eq!(release("offer.a.1.x", false, None, me), Ok(()));
        assert_eq!(
            release("offer.a.1.x", true, Some("cert:edgeplane-descheduler"), me),
            Err(NetctlError::PermissionDenied(
                "allocation offer.a.1.x was made by cert:edgeplane-descheduler, not by cert:edgeplane-scheduler; only its holder may release it".into()
            ))
        );
        assert_eq!(
            release("offer.a.1.x", true, None, me),
            Err(NetctlError::PermissionDenied(
                "allocation offer.a.1.x has no recorded holder; the controller frees it when its binding is gone".into()
            ))
        );
        assert_eq!(
            release("", true, Some(me), me),
            Err(NetctlError::InvalidArgument(
                "id: empty; Release frees one allocation, named by the id Allocate or Mitigate answered".into()
            ))
        );
    }
}
