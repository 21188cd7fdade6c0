//! Which nodes an agent probes: every other agent node of its own site, and a few
//! representatives of each remote site, so that probe traffic grows linearly with the
//! nodes (each agent probes `own site - 1 + K x (sites - 1)` peers), not with their square.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Pod};

/// A node that runs a ready agent: where its reflector answers, and its site.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AgentNode {
    pub site: String,
    pub name: String,
    pub address: IpAddr,
}

/// The agent nodes: nodes with a site (the value of `site_label`) that run a running,
/// ready agent pod with an IP (the pods are the agent DaemonSet's, selected by the
/// caller). With several agent pods on one node (a rollout), the lowest-named ready one.
/// Sorted by site, then name. Pods with an unreadable IP are skipped with a warning.
pub fn agent_nodes(
    nodes: &[Node],
    pods: &[Pod],
    site_label: &str,
) -> (Vec<AgentNode>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut address_of: BTreeMap<&str, (&str, IpAddr)> = BTreeMap::new();
    for pod in pods {
        let (Some(name), Some(spec), Some(status)) =
            (pod.metadata.name.as_deref(), &pod.spec, &pod.status)
        else {
            continue;
        };
        let Some(node) = spec.node_name.as_deref() else {
            continue;
        };
        let running = status.phase.as_deref() == Some("Running");
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let Some(ip) = status.pod_ip.as_deref() else {
            continue;
        };
        if !running || !ready || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Ok(ip) = ip.parse::<IpAddr>() else {
            warnings.push(format!(
                "pod {name}: status.podIP {ip:?} is not an IP address (ignored)"
            ));
            continue;
        };
        let entry = address_of.entry(node).or_insert((name, ip));
        if name < entry.0 {
            *entry = (name, ip);
        }
    }
    let mut out: Vec<AgentNode> = nodes
        .iter()
        .filter_map(|node| {
            let name = node.metadata.name.as_deref()?;
            let site = node.metadata.labels.as_ref()?.get(site_label)?;
            let (_, address) = address_of.get(name)?;
            Some(AgentNode {
                site: site.clone(),
                name: name.to_string(),
                address: *address,
            })
        })
        .collect();
    out.sort();
    (out, warnings)
}

/// The peers of the agent on node `me` among `nodes` ([`agent_nodes`]): every other node
/// of its own site, and `per_remote_site` nodes of each other site. The representatives
/// are taken in name order starting at `me`'s rank within its own site (wrapping), so that
/// the agents of a site spread their probes over the remote site's nodes instead of all
/// probing the same few, and the site's lowest-named agent (its publisher, see
/// [`publisher`]) probes the first `per_remote_site`. Deterministic; sorted by site, then
/// name. Empty when `me` is not an agent node.
pub fn peers(me: &str, nodes: &[AgentNode], per_remote_site: usize) -> Vec<AgentNode> {
    let mut by_site: BTreeMap<&str, Vec<&AgentNode>> = BTreeMap::new();
    for node in nodes {
        by_site.entry(&node.site).or_default().push(node);
    }
    for members in by_site.values_mut() {
        members.sort_by(|a, b| a.name.cmp(&b.name));
        members.dedup_by(|a, b| a.name == b.name);
    }
    let Some(own) = nodes.iter().find(|n| n.name == me) else {
        return Vec::new();
    };
    let own_members = &by_site[own.site.as_str()];
    let rank = own_members.iter().position(|n| n.name == me).unwrap_or(0);
    let mut out = Vec::new();
    for (site, members) in &by_site {
        if *site == own.site {
            out.extend(
                members
                    .iter()
                    .filter(|n| n.name != me)
                    .map(|n| (*n).clone()),
            );
            continue;
        }
        let take = per_remote_site.min(members.len());
        let mut chosen: Vec<AgentNode> = (0..take)
            .map(|i| members[(rank + i) % members.len()].clone())
            .collect();
        chosen.sort();
        out.extend(chosen);
    }
    out
}

/// The agent that publishes its site's measured links: the lowest-named agent node of
/// `site`. One writer per site, so thousands of agents do not write the same list; when it
/// goes (its pod is no longer ready), the next one takes over.
pub fn publisher<'a>(site: &str, nodes: &'a [AgentNode]) -> Option<&'a str> {
    nodes
        .iter()
        .filter(|n| n.site == site)
        .map(|n| n.name.as_str())
        .min()
}
