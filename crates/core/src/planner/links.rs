//! Link bandwidth as a resource of the plan (`network::reservation` holds the semantics).
//!
//! A bandwidth rule of a binding reserves, on every link of the path between each pair of
//! its targets and in each direction, its request, or the path's capacity when that is
//! less (the most it can be granted, and at least its limit, since a path below the limit
//! puts the rule in Violation). The plan never over-subscribes a link: a move that would
//! take a link's reservations over its capacity counts as a Violation in the score, so no
//! search accepts it and the constructions skip it. Links that running bindings already
//! over-subscribe take nothing more.
//!
//! Only links with a finite bandwidth are tracked, and only when some rule of the plan is
//! a bandwidth rule: otherwise `active` is false and nothing here runs.

use super::NONE;
use crate::network::{Location, NetworkGraph, NodeId, SiteId};

pub(crate) struct Links {
    pub active: bool,
    sites: usize,
    /// Per tracked link: what the plan may reserve on it, at least what running
    /// bindings reserve already.
    pub cap: Vec<f64>,
    /// Per tracked link: what the bindings with nothing to place reserve.
    pub base: Vec<f64>,
    /// The tracked links of the path from site `a` to site `b`:
    /// `edges[start[a * S + b]..start[a * S + b + 1]]`.
    start: Vec<u32>,
    edges: Vec<u32>,
    /// Per constraint: the request of its bandwidth rule (`None`: not a bandwidth rule).
    pub request: Vec<Option<f64>>,
}

impl Links {
    pub fn inactive(cons: usize) -> Links {
        Links {
            active: false,
            sites: 0,
            cap: Vec::new(),
            base: Vec::new(),
            start: Vec::new(),
            edges: Vec::new(),
            request: vec![None; cons],
        }
    }

    /// `request[c]`: the bandwidth constraint `c` asks for each pair of its members, if
    /// it has a bandwidth rule; `fixed[c]`: its members that do not move (running pods,
    /// sites).
    pub fn build(graph: &NetworkGraph, request: Vec<Option<f64>>, fixed: &[&[Location]]) -> Links {
        let s = graph.site_count();
        // Tracked links: directed edges with a finite bandwidth.
        let mut id_of = std::collections::HashMap::new();
        let mut cap = Vec::new();
        for a in graph.sites() {
            for b in graph.sites() {
                if let Some(bw) = graph.link_bandwidth(a, b)
                    && bw.is_finite()
                {
                    id_of.insert((a.0, b.0), cap.len() as u32);
                    cap.push(bw);
                }
            }
        }
        if request.iter().all(Option::is_none) || cap.is_empty() {
            return Links::inactive(request.len());
        }
        // Paths of every site pair, row by row: the path to b is the path to b's
        // predecessor plus the last link.
        let mut start = Vec::with_capacity(s * s + 1);
        let mut edges: Vec<u32> = Vec::new();
        let mut row: Vec<Option<Vec<u32>>> = vec![None; s];
        for a in 0..s {
            row.iter_mut().for_each(|r| *r = None);
            row[a] = Some(Vec::new());
            for b in 0..s {
                let _ = path_into(graph, &id_of, a, b, &mut row);
            }
            for r in &row {
                start.push(edges.len() as u32);
                edges.extend(r.iter().flatten());
            }
        }
        start.push(edges.len() as u32);
        let mut links = Links {
            active: true,
            sites: s,
            base: vec![0.0; cap.len()],
            cap,
            start,
            edges,
            request,
        };
        // What bindings with running pods reserve between those pods already.
        let mut base = vec![0.0; links.cap.len()];
        for (c, fixed) in fixed.iter().enumerate() {
            if let Some(r) = links.request[c] {
                for (i, x) in fixed.iter().enumerate() {
                    for y in &fixed[i + 1..] {
                        for (from, to) in [(*x, *y), (*y, *x)] {
                            links.reserve(graph, r, from, to, &mut |e, amount| {
                                base[e as usize] += amount
                            });
                        }
                    }
                }
            }
        }
        for (e, b) in base.iter().enumerate() {
            links.cap[e] = links.cap[e].max(*b);
        }
        links.base = base;
        links
    }

    /// The tracked links from site `a` to site `b`.
    #[inline]
    fn path(&self, a: SiteId, b: SiteId) -> &[u32] {
        let i = a.index() * self.sites + b.index();
        &self.edges[self.start[i] as usize..self.start[i + 1] as usize]
    }

    /// Calls `f(link, amount)` for what a pair asking `request` from `from` to `to`
    /// reserves: the request, or the path's capacity when less, on each tracked link.
    fn reserve(
        &self,
        graph: &NetworkGraph,
        request: f64,
        from: Location,
        to: Location,
        f: &mut impl FnMut(u32, f64),
    ) {
        let site = |l: Location| match l {
            Location::Node(n) => graph.site_of(n),
            Location::Site(s) => s,
        };
        let (a, b) = (site(from), site(to));
        if a == b {
            return;
        }
        let Some(m) = graph.site_metrics(a, b) else {
            return;
        };
        let amount = request.min(f64::from(m.bandwidth_bps));
        for e in self.path(a, b) {
            f(*e, amount);
        }
    }

    /// Calls `f(link, amount)` for what constraint `c` reserves between a pending pod
    /// (of `pods`) and every other member (pods placed by `node_of`, the running pods and
    /// sites of `fixed`), when all its pending pods are placed. Pairs of running pods and
    /// sites are in `base`.
    pub fn con_reservations(
        &self,
        graph: &NetworkGraph,
        pods: &[u32],
        fixed: &[Location],
        c: usize,
        node_of: impl Fn(u32) -> u32,
        f: &mut impl FnMut(u32, f64),
    ) {
        let Some(r) = self.request[c] else {
            return;
        };
        if pods.iter().any(|q| node_of(*q) == NONE) {
            return;
        }
        for (i, q) in pods.iter().enumerate() {
            let here = Location::Node(NodeId(node_of(*q)));
            let others = pods[..i]
                .iter()
                .map(|o| Location::Node(NodeId(node_of(*o))))
                .chain(fixed.iter().copied());
            for other in others {
                self.reserve(graph, r, here, other, f);
                self.reserve(graph, r, other, here, f);
            }
        }
    }

    /// Whether `load` is over the capacity of link `e`.
    #[inline]
    pub fn over(&self, e: u32, load: f64) -> bool {
        load > self.cap[e as usize] * (1.0 + 1e-9)
    }
}

/// Fills `row[b]` with the tracked links of the path from the row's site to `b`
/// (`None` stays when unreachable). Iterative: walks up the predecessors to a computed
/// site, then back down.
fn path_into(
    graph: &NetworkGraph,
    id_of: &std::collections::HashMap<(u32, u32), u32>,
    a: usize,
    b: usize,
    row: &mut [Option<Vec<u32>>],
) -> Option<()> {
    if row[b].is_some() {
        return Some(());
    }
    let mut chain = vec![b];
    let mut at = b;
    loop {
        let p = graph
            .predecessor(SiteId(a as u32), SiteId(at as u32))?
            .index();
        if row[p].is_some() {
            chain.push(p);
            break;
        }
        if chain.len() > row.len() {
            return None;
        }
        chain.push(p);
        at = p;
    }
    // chain: b, ..., p (computed); fill from the computed end down to b.
    for w in (0..chain.len() - 1).rev() {
        let (from, to) = (chain[w + 1], chain[w]);
        let mut edges = row[from].clone().unwrap_or_default();
        if let Some(e) = id_of.get(&(from as u32, to as u32)) {
            edges.push(*e);
        }
        row[to] = Some(edges);
    }
    Some(())
}
