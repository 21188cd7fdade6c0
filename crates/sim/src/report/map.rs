//! The map of sites and links: the sites with their nodes and pods at the end, the links
//! of the topology's spec and the paths the network controller activated, and the map at
//! each moment of the run (`moments`).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use super::moments::Moment;
use crate::lite;
use crate::observer;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SiteMap {
    pub sites: Vec<MapSite>,
    pub links: Vec<MapLink>,
    /// The map at each incident of the run, and at its end.
    pub moments: Vec<Moment>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MapSite {
    pub name: String,
    /// `regional`, `metro`, `edge`, `users`, ... (from the site's `tier` label, `kind:
    /// users` or `transit: false`; `sites` when unknown).
    pub tier: String,
    pub labels: BTreeMap<String, String>,
    pub nodes: Vec<MapNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapNode {
    pub name: String,
    pub ready: bool,
    /// `namespace/name` of the pods placed on it at the end.
    pub pods: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MapLink {
    pub from: String,
    pub to: String,
    pub one_way: bool,
    pub latency: String,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<String>,
    /// The link's latency changed during the run.
    pub changed: bool,
    /// For a path the network controller activated (from the topology's
    /// `status.activatedPaths`, not its spec): `catalogue/entry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activated: Option<String>,
    /// The bindings whose allocations keep an activated path up, `namespace/name`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<String>,
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(super) fn site_map(
    topology: Option<&Value>,
    nodes: &[lite::Node],
    on_node: &HashMap<String, Vec<String>>,
) -> SiteMap {
    let site_label = topology
        .map(|t| s(t, "/spec/siteLabel"))
        .filter(|l| !l.is_empty())
        .unwrap_or(edgeplane_api::network::DEFAULT_SITE_LABEL)
        .to_string();
    let mut sites: BTreeMap<String, MapSite> = BTreeMap::new();
    let declared: Vec<Value> = topology
        .and_then(|t| t.pointer("/spec/sites"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for d in &declared {
        let labels: BTreeMap<String, String> = d
            .get("labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let users = labels.get("kind").map(String::as_str) == Some("users")
            || d.get("transit").and_then(Value::as_bool) == Some(false);
        let tier = labels.get("tier").cloned().unwrap_or_else(|| {
            if users {
                "users".into()
            } else {
                "sites".into()
            }
        });
        let name = s(d, "/name").to_string();
        sites.insert(
            name.clone(),
            MapSite {
                name,
                tier,
                labels,
                nodes: Vec::new(),
            },
        );
    }
    for n in nodes {
        let name = n.metadata.name.clone();
        let site = n
            .metadata
            .labels
            .get(&site_label)
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| name.clone());
        let mut pods = on_node.get(&name).cloned().unwrap_or_default();
        pods.sort();
        let entry = sites.entry(site.clone()).or_insert_with(|| MapSite {
            name: site.clone(),
            tier: "sites".into(),
            labels: BTreeMap::new(),
            nodes: Vec::new(),
        });
        entry.nodes.push(MapNode {
            name,
            ready: n.ready(),
            pods,
        });
    }
    for site in sites.values_mut() {
        site.nodes.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    }
    let links = topology
        .and_then(|t| t.pointer("/spec/links"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|l| {
            let latency = s(l, "/latency").to_string();
            MapLink {
                from: s(l, "/from").to_string(),
                to: s(l, "/to").to_string(),
                one_way: l.get("oneWay").and_then(Value::as_bool) == Some(true),
                latency_ms: observer::latency_ms(&latency).unwrap_or(0.0),
                latency,
                bandwidth: l
                    .get("bandwidth")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                changed: false,
                activated: None,
                bindings: Vec::new(),
            }
        })
        .chain(activated_paths(topology))
        .collect();
    let mut sites: Vec<MapSite> = sites.into_values().collect();
    sites.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    SiteMap {
        sites,
        links,
        moments: Vec::new(),
    }
}

/// The paths the network controller has activated, as links of the map.
fn activated_paths(topology: Option<&Value>) -> Vec<MapLink> {
    topology
        .map(observer::activated_paths)
        .unwrap_or_default()
        .into_iter()
        .map(|p| MapLink {
            latency_ms: p.latency_ms,
            from: p.from,
            to: p.to,
            one_way: p.one_way,
            latency: p.latency,
            bandwidth: p.bandwidth,
            changed: false,
            activated: Some(p.activated),
            bindings: p.bindings,
        })
        .collect()
}

/// Compares names with embedded numbers by value: `edge-2` before `edge-10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(cb.iter()) {
        let ord = match (x, y) {
            ((true, p), (true, q)) => {
                let (p, q) = (p.trim_start_matches('0'), q.trim_start_matches('0'));
                p.len().cmp(&q.len()).then(p.cmp(q))
            }
            ((_, p), (_, q)) => p.cmp(q),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    ca.len().cmp(&cb.len()).then(a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec![
            "edge-10", "edge-2", "edge-1", "metro-1", "edge-2-b", "edge-2-a",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "edge-1", "edge-2", "edge-2-a", "edge-2-b", "edge-10", "metro-1"
            ]
        );
    }
}
