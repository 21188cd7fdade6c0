//! The all-pairs search agrees with enumerating every simple path.
use super::*;
use std::collections::{BTreeMap, BTreeSet};

use edgeplane_api::NetworkTopology;
use edgeplane_api::network::DEFAULT_SITE_LABEL;
use edgeplane_api::{Link, NetworkTopologySpec, TopologySite};
use jiff::Timestamp;
use proptest::prelude::*;

/// The best path by (latency, hops, names) among all simple paths from `s` to `t`.
fn best(
    adjacency: &BTreeMap<usize, Vec<(usize, u64)>>,
    transit: &[bool],
    s: usize,
    t: usize,
) -> Option<(u64, Vec<usize>)> {
    fn walk(
        adjacency: &BTreeMap<usize, Vec<(usize, u64)>>,
        transit: &[bool],
        path: &mut Vec<usize>,
        latency: u64,
        t: usize,
        best: &mut Option<(u64, Vec<usize>)>,
    ) {
        let at = *path.last().unwrap_or(&0);
        if at == t {
            let better = best.as_ref().is_none_or(|(l, p)| {
                (latency, path.len(), path.as_slice()) < (*l, p.len(), p.as_slice())
            });
            if better {
                *best = Some((latency, path.clone()));
            }
            return;
        }
        if path.len() > 1 && !transit[at] {
            return;
        }
        for (next, l) in adjacency.get(&at).into_iter().flatten() {
            if !path.contains(next) {
                path.push(*next);
                walk(adjacency, transit, path, latency + l, t, best);
                path.pop();
            }
        }
    }
    let mut result = None;
    walk(adjacency, transit, &mut vec![s], 0, t, &mut result);
    result
}

proptest! {
    /// Asking what an extra link would change (`route_with`) gives what the graph says
    /// once the link is activated in the topology's status, and nothing changes
    /// without one.
    #[test]
    fn what_if_routes_match_the_graph_with_the_path_activated(
        links in prop::collection::vec((0usize..5, 0usize..5, 1u64..6, 1u64..900), 0..10),
        extra in (0usize..5, 0usize..5, 1u64..6, 1u64..900, any::<bool>()),
    ) {
        let names: Vec<String> = (0..5).map(|i| format!("s{i}")).collect();
        let mut spec_links = Vec::new();
        let mut seen = BTreeSet::new();
        for (a, b, ms, mbps) in links {
            if a == b || seen.contains(&(a, b)) || seen.contains(&(b, a)) {
                continue;
            }
            seen.insert((a, b));
            spec_links.push(Link {
                from: names[a].clone(),
                to: names[b].clone(),
                latency: format!("{ms}ms"),
                jitter: Some(format!("{}us", mbps % 50)),
                bandwidth: Some(format!("{mbps}Mbps")),
                loss: None,
                one_way: false,
            });
        }
        let (ea, eb, ems, embps, one_way) = extra;
        prop_assume!(ea != eb);
        let mut topology = NetworkTopology::new("t", NetworkTopologySpec {
            site_label: DEFAULT_SITE_LABEL.into(),
            same_node: None,
            intra_site: None,
            sites: names.iter().map(|n| TopologySite { name: n.clone(), labels: BTreeMap::new(), transit: None }).collect(),
            links: spec_links,
            measurement_max_age: None,
        });
        let before = NetworkGraph::build(Some(&topology), &[], Timestamp::UNIX_EPOCH)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (latency, jitter, bandwidth) = (format!("{ems}ms"), format!("{}us", embps % 70), format!("{embps}Mbps"));
        topology.status = Some(edgeplane_api::NetworkTopologyStatus {
            activated_paths: vec![edgeplane_api::ActivatedPath {
                from: names[ea].clone(),
                to: names[eb].clone(),
                one_way,
                latency: latency.clone(),
                jitter: Some(jitter.clone()),
                bandwidth: Some(bandwidth.clone()),
                loss: None,
                catalogue: "c".into(),
                entry: "e".into(),
                bindings: vec![],
            }],
            ..Default::default()
        });
        let after = NetworkGraph::build(Some(&topology), &[], Timestamp::UNIX_EPOCH)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let link = ExtraLink {
            from: SiteId(ea as u32),
            to: SiteId(eb as u32),
            metrics: LinkMetrics::parse("", &latency, Some(&jitter), Some(&bandwidth), None)
                .map_err(|_| TestCaseError::fail("extra link"))?,
            one_way,
        };
        for s in 0..5u32 {
            for t in 0..5u32 {
                let (a, b) = (Location::Site(SiteId(s)), Location::Site(SiteId(t)));
                let plain = before.route_with(a, b, &[]);
                prop_assert_eq!(plain.as_ref().map(|r| r.metrics), before.metrics(a, b));
                if s != t {
                    prop_assert_eq!(plain.map(|r| r.sites), before.path(SiteId(s), SiteId(t)));
                }
                let what_if = before.route_with(a, b, &[link]);
                prop_assert_eq!(what_if.as_ref().map(|r| r.metrics), after.metrics(a, b), "{} -> {}", s, t);
                if s != t {
                    prop_assert_eq!(what_if.map(|r| r.sites), after.path(SiteId(s), SiteId(t)));
                }
            }
        }
    }

    #[test]
    fn shortest_paths_match_exhaustive_search(
        links in prop::collection::vec((0usize..6, 0usize..6, 0u64..4, any::<bool>()), 0..14),
        transit in prop::collection::vec(prop::bool::weighted(0.8), 6),
    ) {
        let names: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
        let mut spec_links = Vec::new();
        let mut adjacency: BTreeMap<usize, Vec<(usize, u64)>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (a, b, ms, one_way) in links {
            if a == b || seen.contains(&(a, b)) || (!one_way && seen.contains(&(b, a))) {
                continue;
            }
            seen.insert((a, b));
            adjacency.entry(a).or_default().push((b, ms * 1_000_000));
            if !one_way {
                seen.insert((b, a));
                adjacency.entry(b).or_default().push((a, ms * 1_000_000));
            }
            spec_links.push(Link {
                from: names[a].clone(),
                to: names[b].clone(),
                latency: format!("{ms}ms"),
                jitter: None,
                bandwidth: None,
                loss: None,
                one_way,
            });
        }
        let topology = NetworkTopology::new("t", NetworkTopologySpec {
            site_label: DEFAULT_SITE_LABEL.into(),
            same_node: None,
            intra_site: None,
            sites: names.iter().zip(&transit).map(|(n, t)| TopologySite { name: n.clone(), labels: BTreeMap::new(), transit: Some(*t) }).collect(),
            links: spec_links,
            measurement_max_age: None,
        });
        let g = NetworkGraph::build(Some(&topology), &[], Timestamp::UNIX_EPOCH)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for s in 0..6 {
            for t in 0..6 {
                if s == t { continue; }
                let expected = best(&adjacency, &transit, s, t);
                let got = g.path(SiteId(s as u32), SiteId(t as u32))
                    .map(|p| p.iter().map(|id| id.index()).collect::<Vec<_>>());
                prop_assert_eq!(got.clone(), expected.as_ref().map(|(_, p)| p.clone()), "{} -> {}", s, t);
                let latency = g.site_metrics(SiteId(s as u32), SiteId(t as u32)).map(|m| m.latency_ns as u64);
                prop_assert_eq!(latency, expected.as_ref().map(|(l, _)| *l));
            }
        }
    }
}
