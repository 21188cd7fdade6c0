//! What-if routes: the path between two locations if extra links were activated.

use std::collections::BTreeMap;

use super::graph::NetworkGraph;
use super::location::{Location, SiteId};
use super::metrics::{LinkMetrics, PathMetrics};
use super::overlay::takes_over;
use super::search::{Adjacency, Search};

/// A link added to the graph for a what-if question ([`NetworkGraph::route_with`]): the
/// network controller asking what a catalogue entry would change once activated. It joins
/// its sites beside their other links exactly as an activated path does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExtraLink {
    pub from: SiteId,
    pub to: SiteId,
    pub metrics: LinkMetrics,
    pub one_way: bool,
}

/// A path between two locations: its metrics, the sites it passes (both ends included;
/// one site for two locations in the same site), and which extra links it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub metrics: PathMetrics,
    pub sites: Vec<SiteId>,
    /// Indices (into the `extra` given to [`NetworkGraph::route_with`]) of the extra links
    /// on the route, sorted.
    pub extras: Vec<usize>,
}

impl Route {
    /// Whether the route takes the extra link `index`.
    pub fn uses(&self, index: usize) -> bool {
        self.extras.binary_search(&index).is_ok()
    }
}

impl NetworkGraph {
    /// The route from `a` to `b` if the `extra` links were added to the graph as activated
    /// paths are (beside the existing links; the lower latency carries the traffic, an
    /// extra link on a tie). With no extra links it is the route the graph already has.
    /// One single-source search over a copy of the edges: O(E log S).
    pub fn route_with(&self, a: Location, b: Location, extra: &[ExtraLink]) -> Option<Route> {
        if let (Location::Node(x), Location::Node(y)) = (a, b)
            && x == y
        {
            let site = self.node_site.get(x.index()).copied()?;
            return Some(Route {
                metrics: self.same_node,
                sites: vec![site],
                extras: Vec::new(),
            });
        }
        let sa = self.site_of_location(a)?;
        let sb = self.site_of_location(b)?;
        if sa == sb {
            return Some(Route {
                metrics: self.intra_site,
                sites: vec![sa],
                extras: Vec::new(),
            });
        }
        let n = self.site_names.len();
        let mut directed = self.adjacency.directed();
        // Direction -> the extra link that carries it.
        let mut extra_dirs: BTreeMap<(u32, u32), usize> = BTreeMap::new();
        for (index, link) in extra.iter().enumerate() {
            if link.from == link.to || link.from.index() >= n || link.to.index() >= n {
                continue;
            }
            let mut dirs = vec![(link.from.0, link.to.0)];
            if !link.one_way {
                dirs.push((link.to.0, link.from.0));
            }
            for dir in dirs {
                let replace = directed
                    .get(&dir)
                    .is_none_or(|current| takes_over(&link.metrics, current));
                if replace {
                    directed.insert(dir, link.metrics);
                    extra_dirs.insert(dir, index);
                }
            }
        }
        let adjacency = Adjacency::from_directed(n, &directed);
        let mut search = Search::new(n);
        search.run(&adjacency, &self.site_transit, sa.0);
        let target = sb.index();
        if !search.settled[target] {
            return None;
        }
        let mut sites = vec![sb];
        let mut at = sb.0;
        let mut extras = Vec::new();
        while at != sa.0 {
            let p = search.pred[at as usize];
            if p == u32::MAX || sites.len() > n {
                return None;
            }
            extras.extend(extra_dirs.get(&(p, at)).copied());
            at = p;
            sites.push(SiteId(p));
        }
        sites.reverse();
        extras.sort_unstable();
        extras.dedup();
        Some(Route {
            metrics: search.metrics[target].compact(),
            sites,
            extras,
        })
    }
}
