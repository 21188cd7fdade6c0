//! The sites offers can target: those declared in the NetworkTopology and those that nodes
//! are in, named and labelled as the network graph names them.

use std::collections::BTreeMap;

use edgeplane_api::NetworkTopology;
use k8s_openapi::api::core::v1::Node;

use crate::evaluate::site_label;
use crate::offers::Candidate;

/// Every site, in name order, with the labels it is declared with (sites known only from
/// node labels have none). Without a topology, sites come from the default site label.
/// Agrees with [`crate::network::NetworkGraph`]: a node without the site label is a site
/// of its own, named like the node.
///
/// Takes nodes or shared nodes (`&[Node]`, `&[Arc<Node>]`), so callers that hold a cache's
/// `Arc`s need not clone every node for it.
pub fn site_candidates<N: std::borrow::Borrow<Node>>(
    topology: Option<&NetworkTopology>,
    nodes: &[N],
) -> Vec<Candidate> {
    let label = site_label(topology);
    let mut sites: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for site in topology.iter().flat_map(|t| t.spec.sites.iter()) {
        sites
            .entry(site.name.clone())
            .or_insert_with(|| site.labels.clone());
    }
    for node in nodes {
        let node = node.borrow();
        let Some(name) = node.metadata.name.as_ref() else {
            continue;
        };
        let site = node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(label))
            .filter(|v| !v.is_empty())
            .unwrap_or(name);
        // Most nodes share a site already seen: look up before allocating its name.
        if !sites.contains_key(site) {
            sites.insert(site.clone(), BTreeMap::new());
        }
    }
    sites
        .into_iter()
        .map(|(name, labels)| Candidate::site(&name, labels))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_api::{NetworkTopologySpec, TopologySite};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, zone: Option<&str>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: zone.map(|z| {
                    BTreeMap::from([("topology.kubernetes.io/zone".to_string(), z.to_string())])
                }),
                ..ObjectMeta::default()
            },
            ..Node::default()
        }
    }

    #[test]
    fn declared_sites_keep_their_labels_and_node_sites_join_them() {
        let topology = NetworkTopology::new(
            "default",
            NetworkTopologySpec {
                site_label: "topology.kubernetes.io/zone".into(),
                same_node: None,
                intra_site: None,
                sites: vec![TopologySite {
                    name: "stadium".into(),
                    labels: BTreeMap::from([("kind".to_string(), "users".to_string())]),
                    transit: Some(false),
                }],
                links: vec![],
                measurement_max_age: None,
            },
        );
        let nodes = [
            node("n1", Some("edge-1")),
            node("n2", Some("edge-1")),
            node("n3", None),
        ];
        let sites = site_candidates(Some(&topology), &nodes);
        let names: Vec<&str> = sites.iter().map(|c| c.reference.name.as_str()).collect();
        assert_eq!(names, ["edge-1", "n3", "stadium"]);
        assert_eq!(
            sites[2].labels.get("kind").map(String::as_str),
            Some("users")
        );
        assert_eq!(site_candidates(None, &nodes).len(), 2);
    }
}
