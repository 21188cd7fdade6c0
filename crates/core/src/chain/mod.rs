//! Service chains: network functions that traffic passes in order, one lane per replica.
//!
//! - [`check`]: what the schema cannot say (the NFs exist, have the same number of
//!   replicas, the sites exist, the rules parse), each error naming the field. A chain with
//!   any error gives no ports, no NetworkAttachmentDefinitions and no bindings.
//! - [`lanes`] and [`ports`]: lane i joins replica i of every hop; hop k of a lane gets
//!   the port `<chain>-in` on the link from hop k-1 and `<chain>-out` on the link to hop
//!   k+1, each link its own NetworkAttachmentDefinition ([`nad`]).
//! - [`colocate`]: `placement.colocate` as pod affinity of hop k to hop k-1 of its lane.
//! - [`lane`]: per-link readiness (both ends report the port attached), the metrics along
//!   the lane from the NetworkTopology (ingress site -> hop 1 -> ... -> egress site), the
//!   lane's ConstraintPolicyBinding and its status, and the chain's status.
//! - [`plan`]: each lane as one group for the planner, its budget summed along the lane.

mod check;
pub mod colocate;
pub mod lane;
pub mod nad;
pub mod plan;
#[cfg(test)]
mod tests;

pub use check::*;
pub use colocate::*;
pub use lane::*;
pub use nad::*;

use edgeplane_api::{InterfaceBinding, LinkType, NetworkFunction, ServiceChain};
use sha2::{Digest, Sha256};

use crate::nf::{Port, replica_name};

/// Label on the objects a chain owns (NADs, lane bindings): the chain's name.
pub const CHAIN_LABEL: &str = "network.edgeplane.io/service-chain";
/// Label on the objects of one lane: its index.
pub const LANE_LABEL: &str = "network.edgeplane.io/lane";

/// One hop of one lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneMember {
    /// The hop's name in the chain.
    pub hop: String,
    pub network_function: String,
    /// The replica's Pod or VirtualMachine.
    pub replica: String,
}

/// The lanes of a valid chain: `lanes[i][k]` is replica i of hop k. `replicas` is the
/// replica count every hop's NF has (see [`check`]).
pub fn lanes(chain: &ServiceChain, replicas: usize) -> Vec<Vec<LaneMember>> {
    (0..replicas)
        .map(|i| {
            chain
                .spec
                .hops
                .iter()
                .map(|h| LaneMember {
                    hop: h.name.clone(),
                    network_function: h.network_function.clone(),
                    replica: replica_name(&h.network_function, i),
                })
                .collect()
        })
        .collect()
}

/// The name of the interface a hop has on the link from the previous hop.
pub fn in_port(chain: &str) -> String {
    format!("{chain}-in")
}

/// The name of the interface a hop has on the link to the next hop.
pub fn out_port(chain: &str) -> String {
    format!("{chain}-out")
}

/// The NetworkAttachmentDefinition of the link from hop `from` to hop `to` in lane `lane`:
/// `<chain>-<lane>-<from>-<to>`, shortened with a hash when longer than 63 characters.
pub fn link_network(chain: &str, lane: usize, from: &str, to: &str) -> String {
    let name = format!("{chain}-{lane}-{from}-{to}");
    if name.len() <= 63 {
        return name;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", name[..52].trim_end_matches('-'))
}

/// The ports a valid chain gives each replica of `nf`: `ports[i]` for replica i. Empty
/// when the NF is not a hop of the chain.
pub fn ports(chain: &ServiceChain, nf: &str, replicas: usize) -> Vec<Vec<Port>> {
    let name = chain.metadata.name.as_deref().unwrap_or_default();
    let namespace = chain.metadata.namespace.as_deref().unwrap_or("default");
    let hops = &chain.spec.hops;
    let Some(k) = hops.iter().position(|h| h.network_function == nf) else {
        return Vec::new();
    };
    let binding = match chain.spec.link_type() {
        LinkType::Sriov => InterfaceBinding::Sriov,
        _ => InterfaceBinding::Bridge,
    };
    (0..replicas)
        .map(|i| {
            let mut own = Vec::new();
            if k > 0 {
                own.push(Port {
                    name: in_port(name),
                    network: format!(
                        "{namespace}/{}",
                        link_network(name, i, &hops[k - 1].name, &hops[k].name)
                    ),
                    binding,
                });
            }
            if k + 1 < hops.len() {
                own.push(Port {
                    name: out_port(name),
                    network: format!(
                        "{namespace}/{}",
                        link_network(name, i, &hops[k].name, &hops[k + 1].name)
                    ),
                    binding,
                });
            }
            own
        })
        .collect()
}

/// The ports every valid chain of `chains` gives the replicas of `nf`, merged per
/// replica. `valid` says whether a chain passed [`check`]: an invalid chain wires nothing.
pub fn ports_of(
    nf: &NetworkFunction,
    chains: &[&ServiceChain],
    valid: &dyn Fn(&ServiceChain) -> bool,
) -> Vec<Vec<Port>> {
    let name = nf.metadata.name.as_deref().unwrap_or_default();
    let replicas = usize::try_from(nf.spec.replicas).unwrap_or(0);
    let mut merged: Vec<Vec<Port>> = vec![Vec::new(); replicas];
    let mut sorted: Vec<&&ServiceChain> = chains.iter().collect();
    sorted.sort_by_key(|c| c.metadata.name.clone());
    for chain in sorted {
        if chain.metadata.namespace != nf.metadata.namespace || !valid(chain) {
            continue;
        }
        for (i, own) in ports(chain, name, replicas).into_iter().enumerate() {
            merged[i].extend(own);
        }
    }
    merged
}
