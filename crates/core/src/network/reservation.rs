//! Bandwidth as a reserved resource: what the bandwidth rules of placed bindings reserve on
//! the links of their paths, and what each of them gets when a link is over-subscribed.
//!
//! - A **demand** is one direction of one pair of a binding's targets under a bandwidth
//!   rule: from a location to another, asking for the rule's `request` and accepting its
//!   `limit`. It uses the links of the path between the two sites, each in its direction.
//!   Two locations of one site use no link (the `intraSite` and `sameNode` figures are
//!   not shared resources here).
//! - A **link**'s capacity is the bandwidth of its directed edge in the graph: the spec's,
//!   a fresh measurement's, or an activated path's when that carries the traffic
//!   (unlimited when none states one).
//! - **Fair share**: when the requests over a link exceed its capacity, the link is shared
//!   max-min fairly (water filling): demands asking less than the share get what they ask,
//!   the others the share. A demand gets the least of its request and the share of every
//!   link on its path.
//! - A demand **reserves** on each link of its path what it gets, at least its limit (and
//!   never more than its request): one that is met reserves its request. A link's
//!   reserved total is the sum over the demands routed over it, its available bandwidth
//!   the capacity less that (never below 0). A reserved total above the capacity says the
//!   link is over-subscribed: some binding there is below its limit.

use std::collections::{BTreeMap, HashMap};

use super::graph::NetworkGraph;
use super::location::{Location, SiteId};

/// One direction of a pair under a bandwidth rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Demand {
    /// Who reserves (`namespace/binding`), for the status and messages.
    pub owner: String,
    pub from: Location,
    pub to: Location,
    /// What the rule asks for (its request), in bits per second.
    pub request_bps: f64,
    /// The least the rule accepts (its limit; the request for a hard rule).
    pub limit_bps: f64,
}

/// The use of one directed link.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkLoad {
    pub from: SiteId,
    pub to: SiteId,
    /// `INFINITY` when no bandwidth is stated for the link.
    pub capacity_bps: f64,
    /// The sum of the requests of the demands over it.
    pub requested_bps: f64,
    /// The sum of what they reserve.
    pub reserved_bps: f64,
    /// The most one demand gets on it: `INFINITY` while every request fits.
    pub share_bps: f64,
    /// How many demands use it.
    pub demands: u32,
}

impl LinkLoad {
    /// What is left for a new demand: the capacity less the reserved total, at least 0.
    pub fn available_bps(&self) -> f64 {
        (self.capacity_bps - self.reserved_bps).max(0.0)
    }

    /// Whether what is reserved exceeds the capacity.
    pub fn oversubscribed(&self) -> bool {
        self.reserved_bps > self.capacity_bps * (1.0 + 1e-9)
    }
}

/// The reservations of a set of demands over a graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reservations {
    /// Links that carry a demand, ordered by (from, to).
    links: Vec<LinkLoad>,
    index: HashMap<(u32, u32), usize>,
    /// Per demand: what it gets (`None`: no path between its ends).
    granted: Vec<Option<f64>>,
}

impl Reservations {
    /// No demand: every link has its whole capacity.
    pub fn none() -> Reservations {
        Reservations::default()
    }

    /// Routes every demand and shares every link. O(demands x path length + links x
    /// demands per link x log).
    pub fn compute(graph: &NetworkGraph, demands: &[Demand]) -> Reservations {
        let routes: Vec<Option<Vec<(SiteId, SiteId)>>> = demands
            .iter()
            .map(|d| route_links(graph, d.from, d.to))
            .collect();
        // Requests per link, in (from, to) order.
        let mut per_link: BTreeMap<(u32, u32), Vec<f64>> = BTreeMap::new();
        for (d, route) in demands.iter().zip(&routes) {
            for (a, b) in route.iter().flatten() {
                per_link
                    .entry((a.0, b.0))
                    .or_default()
                    .push(d.request_bps.max(0.0));
            }
        }
        let mut links = Vec::with_capacity(per_link.len());
        let mut index = HashMap::with_capacity(per_link.len());
        for ((a, b), mut requests) in per_link {
            let capacity = graph
                .link_bandwidth(SiteId(a), SiteId(b))
                .unwrap_or(f64::INFINITY);
            index.insert((a, b), links.len());
            links.push(LinkLoad {
                from: SiteId(a),
                to: SiteId(b),
                capacity_bps: capacity,
                requested_bps: requests.iter().sum(),
                reserved_bps: 0.0,
                share_bps: fair_share(capacity, &mut requests),
                demands: requests.len() as u32,
            });
        }
        let mut granted = Vec::with_capacity(demands.len());
        for (d, route) in demands.iter().zip(&routes) {
            let Some(route) = route else {
                granted.push(None);
                continue;
            };
            let got = route
                .iter()
                .filter_map(|(a, b)| index.get(&(a.0, b.0)))
                .map(|i| links[*i].share_bps)
                .fold(d.request_bps.max(0.0), f64::min);
            let reserve = got.max(d.limit_bps).min(d.request_bps).max(0.0);
            for (a, b) in route {
                if let Some(i) = index.get(&(a.0, b.0)) {
                    links[*i].reserved_bps += reserve;
                }
            }
            granted.push(Some(got));
        }
        Reservations {
            links,
            index,
            granted,
        }
    }

    /// Every link that carries a demand, ordered by (from, to).
    pub fn links(&self) -> &[LinkLoad] {
        &self.links
    }

    /// The use of the link `from -> to`, when a demand crosses it.
    pub fn link(&self, from: SiteId, to: SiteId) -> Option<&LinkLoad> {
        self.index.get(&(from.0, to.0)).map(|i| &self.links[*i])
    }

    /// What demand `i` (in the order given to [`Reservations::compute`]) gets: `None` when
    /// its ends have no path or there is no such demand.
    pub fn granted(&self, i: usize) -> Option<f64> {
        self.granted.get(i).copied().flatten()
    }

    /// What a pair asking `request_bps` from `from` to `to` gets given the reservations:
    /// the least of its request, the path's bottleneck capacity and the fair share of
    /// each link on the path (a demand already counted gets what it was granted), and the
    /// most over-subscribed link it shares when that is what limits it. `None` when no
    /// path leads there.
    pub fn available(
        &self,
        graph: &NetworkGraph,
        from: Location,
        to: Location,
        request_bps: f64,
    ) -> Option<(f64, Option<(SiteId, SiteId)>)> {
        let path = graph.metrics(from, to)?;
        let mut got = f64::from(path.bandwidth_bps).min(request_bps);
        let mut limited_by = None;
        if self.links.is_empty() {
            return Some((got, None));
        }
        for (a, b) in route_links(graph, from, to)? {
            if let Some(link) = self.link(a, b)
                && link.share_bps < got
            {
                got = link.share_bps;
                limited_by = Some((a, b));
            }
        }
        Some((got, limited_by))
    }
}

/// The directed links between sites on the path from `from` to `to`, in order: empty
/// within one site, `None` when there is no path.
pub fn route_links(
    graph: &NetworkGraph,
    from: Location,
    to: Location,
) -> Option<Vec<(SiteId, SiteId)>> {
    let a = graph.site_of_location(from)?;
    let b = graph.site_of_location(to)?;
    if a == b {
        return Some(Vec::new());
    }
    let sites = graph.path(a, b)?;
    Some(sites.windows(2).map(|w| (w[0], w[1])).collect())
}

/// The max-min fair share of a link of `capacity` among `requests` (reordered): the
/// most one demand gets, `INFINITY` when every request fits.
pub fn fair_share(capacity: f64, requests: &mut [f64]) -> f64 {
    if requests.iter().sum::<f64>() <= capacity {
        return f64::INFINITY;
    }
    requests.sort_by(f64::total_cmp);
    let mut left = capacity.max(0.0);
    let n = requests.len();
    for (i, r) in requests.iter().enumerate() {
        let share = left / (n - i) as f64;
        if *r > share {
            return share;
        }
        left -= r;
    }
    // Rounding only: every request fitted after all.
    f64::INFINITY
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::NodeInfo;
    use edgeplane_api::NetworkTopology;

    const G: f64 = 1e9;

    /// edge-a and edge-b reach the users at stadium over a 2Gbps and a 10Gbps link, and
    /// each other over metro (1Gbps one way, unlimited back).
    fn graph() -> NetworkGraph {
        let topology: NetworkTopology = serde_saphyr::from_str(
            r#"
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites: [{name: stadium, transit: false}, {name: island}]
  links:
  - {from: edge-a, to: stadium, latency: 1ms, bandwidth: 2Gbps}
  - {from: edge-b, to: stadium, latency: 3ms, bandwidth: 10Gbps}
  - {from: edge-a, to: metro, latency: 2ms, bandwidth: 1Gbps, oneWay: true}
  - {from: metro, to: edge-a, latency: 2ms, oneWay: true}
  - {from: edge-b, to: metro, latency: 2ms}
"#,
        )
        .expect("topology");
        let node = |name: &str, site: &str| NodeInfo {
            name: name.into(),
            labels: [("topology.kubernetes.io/zone".to_string(), site.to_string())].into(),
        };
        NetworkGraph::build(
            Some(&topology),
            &[
                node("a1", "edge-a"),
                node("a2", "edge-a"),
                node("b1", "edge-b"),
                node("m1", "metro"),
            ],
            jiff::Timestamp::UNIX_EPOCH,
        )
        .expect("graph")
    }

    fn demand(
        g: &NetworkGraph,
        owner: &str,
        from: &str,
        to: &str,
        request: f64,
        limit: f64,
    ) -> Demand {
        let at = |name: &str| match g.node_id(name) {
            Some(n) => Location::Node(n),
            None => Location::Site(g.site_id(name).expect("site")),
        };
        Demand {
            owner: owner.into(),
            from: at(from),
            to: at(to),
            request_bps: request,
            limit_bps: limit,
        }
    }

    fn site(g: &NetworkGraph, name: &str) -> SiteId {
        g.site_id(name).expect("site")
    }

    #[test]
    fn fair_share_fills_the_small_requests_first() {
        assert_eq!(fair_share(2.0 * G, &mut [G, G]), f64::INFINITY);
        assert_eq!(fair_share(3.0 * G, &mut [G, G, G, G]), 0.75 * G);
        // 0.5 fits; the other two share the remaining 2.5.
        assert_eq!(
            fair_share(3.0 * G, &mut [2.0 * G, 0.5 * G, 4.0 * G]),
            1.25 * G
        );
        assert_eq!(fair_share(0.0, &mut [G]), 0.0);
        assert_eq!(fair_share(G, &mut []), f64::INFINITY);
    }

    #[test]
    fn requests_that_fit_are_reserved_whole() {
        let g = graph();
        let demands = [
            demand(&g, "ar/one", "a1", "stadium", G, 0.5 * G),
            demand(&g, "ar/two", "a2", "stadium", G, 0.5 * G),
        ];
        let r = Reservations::compute(&g, &demands);
        let link = r
            .link(site(&g, "edge-a"), site(&g, "stadium"))
            .expect("link");
        assert_eq!(link.capacity_bps, 2.0 * G);
        assert_eq!(link.requested_bps, 2.0 * G);
        assert_eq!(link.reserved_bps, 2.0 * G);
        assert_eq!(link.available_bps(), 0.0);
        assert_eq!(link.share_bps, f64::INFINITY);
        assert_eq!(link.demands, 2);
        assert!(!link.oversubscribed());
        assert_eq!(r.granted(0), Some(G));
        assert_eq!(r.granted(1), Some(G));
        assert_eq!(r.links().len(), 1);
        // A third asking 1Gbps gets a third of the link.
        let (got, by) = r
            .available(&g, demands[0].from, demands[0].to, G)
            .expect("path");
        assert_eq!(got, G);
        assert_eq!(by, None);
    }

    #[test]
    fn an_oversubscribed_link_is_shared_and_each_reserves_at_least_its_limit() {
        let g = graph();
        let demands = [
            demand(&g, "ar/one", "a1", "stadium", G, 0.5 * G),
            demand(&g, "ar/two", "a2", "stadium", G, 0.5 * G),
            demand(&g, "ar/three", "a1", "stadium", G, 0.8 * G),
        ];
        let r = Reservations::compute(&g, &demands);
        let (a, s) = (site(&g, "edge-a"), site(&g, "stadium"));
        let link = r.link(a, s).expect("link");
        assert_eq!(link.requested_bps, 3.0 * G);
        assert_eq!(link.share_bps, 2.0 * G / 3.0);
        // Two reserve their share (above their limit), the third its limit 0.8Gbps.
        assert!((link.reserved_bps - (4.0 * G / 3.0 + 0.8 * G)).abs() < 1.0);
        assert!(link.oversubscribed());
        assert_eq!(link.available_bps(), 0.0);
        assert_eq!(r.granted(2), Some(2.0 * G / 3.0));
        let (got, by) = r
            .available(&g, demands[0].from, demands[0].to, G)
            .expect("path");
        assert_eq!(got, 2.0 * G / 3.0);
        assert_eq!(by, Some((a, s)));
        // The other direction is another link, untouched.
        assert!(r.link(s, a).is_none());
    }

    #[test]
    fn a_demand_uses_every_link_of_its_path_in_its_direction() {
        let g = graph();
        // a1 -> b1: edge-a -> metro (1Gbps) -> edge-b; back: edge-b -> metro -> edge-a.
        let demands = [
            demand(&g, "x/there", "a1", "b1", 3.0 * G, G),
            demand(&g, "x/back", "b1", "a1", 3.0 * G, G),
        ];
        let r = Reservations::compute(&g, &demands);
        let (a, m, b) = (site(&g, "edge-a"), site(&g, "metro"), site(&g, "edge-b"));
        let first = r.link(a, m).expect("edge-a -> metro");
        assert_eq!(first.capacity_bps, G);
        // Alone on a 1Gbps link it gets 1Gbps and reserves it (its limit).
        assert_eq!(first.reserved_bps, G);
        assert_eq!(r.granted(0), Some(G));
        let second = r.link(m, b).expect("metro -> edge-b");
        assert_eq!(second.capacity_bps, f64::INFINITY);
        assert_eq!(second.reserved_bps, G);
        // Back is unlimited: the whole request.
        assert_eq!(r.granted(1), Some(3.0 * G));
        assert_eq!(r.link(b, m).expect("back").reserved_bps, 3.0 * G);
        assert_eq!(r.links().len(), 4);
        // Within one site nothing is reserved.
        let local = Reservations::compute(&g, &[demand(&g, "x/local", "a1", "a2", G, G)]);
        assert!(local.links().is_empty());
        assert_eq!(local.granted(0), Some(G));
    }

    #[test]
    fn no_path_grants_nothing() {
        let g = graph();
        // island has no link at all.
        let r = Reservations::compute(&g, &[demand(&g, "x/none", "island", "m1", G, G)]);
        assert_eq!(r.granted(0), None);
        assert!(r.links().is_empty());
        assert_eq!(
            r.available(
                &g,
                demand(&g, "", "island", "m1", G, G).from,
                Location::Site(site(&g, "metro")),
                G
            ),
            None
        );
    }
}
