//! `placement.colocate` as pod affinity: hop k of lane i asks to run on the node of hop
//! k-1 of the same lane (required for `Required`, preferred for `Preferred`), so the
//! planner, which judges pod affinity for the whole group it plans, keeps a lane together.
//! It does not plan the lane against its end-to-end budget: that is a separate step.

use std::collections::BTreeMap;

use edgeplane_api::{Colocate, NetworkFunction, ServiceChain};
use k8s_openapi::api::core::v1::{PodAffinity, PodAffinityTerm, WeightedPodAffinityTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::nf::{NF_LABEL, REPLICA_LABEL};

/// The node label pod affinity co-locates on.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The pod affinity a valid chain gives each replica of `nf` (`None`: none, as for the
/// first hop or `colocate: None`).
pub fn colocation(chain: &ServiceChain, nf: &str, replicas: usize) -> Vec<Option<PodAffinity>> {
    let colocate = chain.spec.colocate();
    let hops = &chain.spec.hops;
    let previous = hops
        .iter()
        .position(|h| h.network_function == nf)
        .filter(|&k| k > 0)
        .map(|k| &hops[k - 1].network_function);
    (0..replicas)
        .map(|i| {
            let previous = previous?;
            let term = PodAffinityTerm {
                label_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([
                        (NF_LABEL.to_string(), previous.clone()),
                        (REPLICA_LABEL.to_string(), i.to_string()),
                    ])),
                    match_expressions: None,
                }),
                topology_key: HOSTNAME_LABEL.into(),
                ..PodAffinityTerm::default()
            };
            match colocate {
                Colocate::Required => Some(PodAffinity {
                    required_during_scheduling_ignored_during_execution: Some(vec![term]),
                    preferred_during_scheduling_ignored_during_execution: None,
                }),
                Colocate::Preferred => Some(PodAffinity {
                    required_during_scheduling_ignored_during_execution: None,
                    preferred_during_scheduling_ignored_during_execution: Some(vec![
                        WeightedPodAffinityTerm {
                            weight: 100,
                            pod_affinity_term: term,
                        },
                    ]),
                }),
                Colocate::None => None,
            }
        })
        .collect()
}

/// The pod affinity of every valid chain of `chains` for the replicas of `nf`, merged per
/// replica (an NF in two chains follows both).
pub fn colocation_of(
    nf: &NetworkFunction,
    chains: &[&ServiceChain],
    valid: &dyn Fn(&ServiceChain) -> bool,
) -> Vec<Option<PodAffinity>> {
    let name = nf.metadata.name.as_deref().unwrap_or_default();
    let replicas = usize::try_from(nf.spec.replicas).unwrap_or(0);
    let mut merged: Vec<Option<PodAffinity>> = vec![None; replicas];
    for chain in chains {
        if chain.metadata.namespace != nf.metadata.namespace || !valid(chain) {
            continue;
        }
        for (i, affinity) in colocation(chain, name, replicas).into_iter().enumerate() {
            let Some(add) = affinity else { continue };
            let into = merged[i].get_or_insert_with(PodAffinity::default);
            if let Some(terms) = add.required_during_scheduling_ignored_during_execution {
                into.required_during_scheduling_ignored_during_execution
                    .get_or_insert_with(Vec::new)
                    .extend(terms);
            }
            if let Some(terms) = add.preferred_during_scheduling_ignored_during_execution {
                into.preferred_during_scheduling_ignored_during_execution
                    .get_or_insert_with(Vec::new)
                    .extend(terms);
            }
        }
    }
    merged
}
