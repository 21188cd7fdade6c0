//! The checks of a ServiceChain that its schema cannot make.

use std::collections::BTreeMap;

use edgeplane_api::{ConstraintPolicyRule, NetworkFunction, ServiceChain};

use crate::nf::{FieldError, is_dns_label};
use crate::rules::{Rule, builtin_metric};

/// The longest chain name: port names `<chain>-out` and NAD names stay short.
pub const MAX_NAME: usize = 40;

/// The rules a lane can be judged on end to end or per link.
pub const LANE_RULES: [&str; 4] = ["latency", "jitter", "bandwidth", "packet-loss"];

/// Everything wrong with `chain`, in field order; when empty, `Ok(replicas)`: the replica
/// count every hop's NF has (the lane count). `nfs` looks up NFs of the chain's namespace
/// by name; `site_exists` answers for sites of the NetworkTopology.
pub fn check(
    chain: &ServiceChain,
    nfs: &dyn Fn(&str) -> Option<NetworkFunction>,
    site_exists: &dyn Fn(&str) -> bool,
) -> Result<usize, Vec<FieldError>> {
    let mut errors = Vec::new();
    let namespace = chain.metadata.namespace.as_deref().unwrap_or("default");
    let name = chain.metadata.name.as_deref().unwrap_or_default();
    if !is_dns_label(name, MAX_NAME) {
        errors.push(FieldError::new(
            "metadata.name",
            format!("a service chain's name is a DNS label of at most {MAX_NAME} characters"),
        ));
    }
    if chain.spec.hops.is_empty() {
        errors.push(FieldError::new("spec.hops", "a chain has at least one hop"));
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut functions: BTreeMap<&str, &str> = BTreeMap::new();
    let mut replicas: Option<(usize, &str)> = None;
    for (i, hop) in chain.spec.hops.iter().enumerate() {
        let at = |f: &str| format!("spec.hops[{i}].{f}");
        if !is_dns_label(&hop.name, 20) {
            errors.push(FieldError::new(
                at("name"),
                format!("{:?} is not a DNS label of at most 20 characters", hop.name),
            ));
        }
        if let Some(first) = names.insert(&hop.name, i) {
            errors.push(FieldError::new(
                at("name"),
                format!("hop {:?} appears twice (also spec.hops[{first}])", hop.name),
            ));
        }
        if let Some(other) = functions.insert(&hop.network_function, &hop.name) {
            errors.push(FieldError::new(
                at("networkFunction"),
                format!(
                    "network function {:?} is already hop {other:?}; traffic passes a function once",
                    hop.network_function
                ),
            ));
            continue;
        }
        let Some(nf) = nfs(&hop.network_function) else {
            errors.push(FieldError::new(
                at("networkFunction"),
                format!(
                    "NetworkFunction {namespace}/{} does not exist",
                    hop.network_function
                ),
            ));
            continue;
        };
        let count = usize::try_from(nf.spec.replicas).unwrap_or(0);
        match replicas {
            None => replicas = Some((count, &hop.name)),
            Some((first, first_hop)) if first != count => errors.push(FieldError::new(
                at("networkFunction"),
                format!(
                    "NetworkFunction {} has {count} replicas, hop {first_hop:?}'s has {first}; lane i joins replica i of every hop",
                    hop.network_function
                ),
            )),
            Some(_) => {}
        }
    }
    for (field, end) in [
        ("spec.ingress.site", &chain.spec.ingress),
        ("spec.egress.site", &chain.spec.egress),
    ] {
        if let Some(end) = end
            && !site_exists(&end.site)
        {
            errors.push(FieldError::new(
                field,
                format!("site {:?} is not in the NetworkTopology", end.site),
            ));
        }
    }
    if let Some(network) = &chain.spec.network
        && network.resource_name.is_some()
        && network.type_ != edgeplane_api::LinkType::Sriov
    {
        errors.push(FieldError::new(
            "spec.network.resourceName",
            "only an sriov network has a device plugin resource (set type: sriov, or remove it)",
        ));
    }
    if let Some(constraints) = &chain.spec.constraints {
        for (list, rules) in [
            ("endToEnd", &constraints.end_to_end),
            ("perLink", &constraints.per_link),
        ] {
            for (i, rule) in rules.iter().enumerate() {
                if let Err(message) = lane_rule(rule) {
                    errors.push(FieldError::new(
                        format!("spec.constraints.{list}[{i}]"),
                        message,
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(replicas.map(|(n, _)| n).unwrap_or(0))
    } else {
        Err(errors)
    }
}

/// A rule a lane is judged on: one of [`LANE_RULES`], with values that parse.
pub fn lane_rule(rule: &ConstraintPolicyRule) -> Result<Rule, String> {
    let metric = builtin_metric(&rule.name)
        .filter(|_| LANE_RULES.contains(&rule.name.as_str()))
        .ok_or_else(|| {
            format!(
                "rule {:?} cannot be judged along a lane (one of: {})",
                rule.name,
                LANE_RULES.join(", ")
            )
        })?;
    Rule::parse(rule, metric).map_err(|e| format!("rule {}: {e}", rule.name))
}
