//! The directed edges between sites and the single-source search over them (least
//! latency, then fewest hops, then site names) that both the all-pairs table and what-if
//! routes use.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};

use super::metrics::{LINK_DEFAULTS, LinkMetrics};

/// A directed edge of the graph, in compressed adjacency form.
#[derive(Clone, Copy, Debug)]
pub(super) struct Edge {
    pub(super) to: u32,
    pub(super) metrics: LinkMetrics,
}

/// The directed edges of every site, in compressed form: the edges of site `s` are
/// `edges[start[s]..start[s + 1]]`, sorted by target.
#[derive(Clone, Debug, Default)]
pub(super) struct Adjacency {
    pub(super) start: Vec<u32>,
    pub(super) edges: Vec<Edge>,
}

impl Adjacency {
    /// From directed edges keyed `(from, to)`; BTreeMap order groups them by source and
    /// sorts them by target.
    pub(super) fn from_directed(
        site_count: usize,
        directed: &BTreeMap<(u32, u32), LinkMetrics>,
    ) -> Self {
        let mut start = vec![0u32; site_count + 1];
        for (a, _) in directed.keys() {
            start[*a as usize + 1] += 1;
        }
        for i in 0..site_count {
            start[i + 1] += start[i];
        }
        let edges = directed
            .iter()
            .map(|((_, b), m)| Edge {
                to: *b,
                metrics: *m,
            })
            .collect();
        Adjacency { start, edges }
    }

    pub(super) fn directed(&self) -> BTreeMap<(u32, u32), LinkMetrics> {
        let mut out = BTreeMap::new();
        for a in 0..self.start.len().saturating_sub(1) {
            for e in self.of(a) {
                out.insert((a as u32, e.to), e.metrics);
            }
        }
        out
    }

    pub(super) fn of(&self, site: usize) -> &[Edge] {
        match (self.start.get(site), self.start.get(site + 1)) {
            (Some(a), Some(b)) => &self.edges[*a as usize..*b as usize],
            _ => &[],
        }
    }

    /// The metrics of the directed edge `a -> b`, which exists when called from the search.
    pub(super) fn edge(&self, a: u32, b: u32) -> LinkMetrics {
        let edges = self.of(a as usize);
        match edges.binary_search_by_key(&b, |e| e.to) {
            Ok(i) => edges[i].metrics,
            Err(_) => LINK_DEFAULTS,
        }
    }
}

/// Reusable state of one single-source search.
pub(super) struct Search {
    /// (latency, hops) of the best path found so far.
    pub(super) dist: Vec<(u64, u32)>,
    pub(super) pred: Vec<u32>,
    pub(super) metrics: Vec<LinkMetrics>,
    pub(super) settled: Vec<bool>,
    /// Sites in the order they were settled; the source first.
    pub(super) order: Vec<u32>,
    pub(super) heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
}

impl Search {
    pub(super) fn new(n: usize) -> Search {
        Search {
            dist: vec![(u64::MAX, u32::MAX); n],
            pred: vec![u32::MAX; n],
            metrics: vec![LINK_DEFAULTS; n],
            settled: vec![false; n],
            order: Vec::with_capacity(n),
            heap: BinaryHeap::new(),
        }
    }

    pub(super) fn run(&mut self, adjacency: &Adjacency, transit: &[bool], source: u32) {
        // Reset only what the previous run touched: every site that got a distance was
        // settled, since the heap is always drained.
        for v in self.order.drain(..) {
            let v = v as usize;
            self.dist[v] = (u64::MAX, u32::MAX);
            self.pred[v] = u32::MAX;
            self.settled[v] = false;
        }
        self.heap.clear();
        let s = source as usize;
        self.dist[s] = (0, 0);
        self.metrics[s] = LinkMetrics {
            latency_ns: 0,
            jitter_ns: 0.0,
            bandwidth_bps: f64::INFINITY,
            loss: 0.0,
        };
        self.heap.push(Reverse((0, 0, source)));
        while let Some(Reverse((latency, hops, u))) = self.heap.pop() {
            let ui = u as usize;
            if self.settled[ui] || (latency, hops) != self.dist[ui] {
                continue;
            }
            self.settled[ui] = true;
            self.order.push(u);
            if ui != s {
                let p = self.pred[ui] as usize;
                let edge = adjacency.edge(self.pred[ui], u);
                let before = self.metrics[p];
                self.metrics[ui] = LinkMetrics {
                    latency_ns: latency,
                    jitter_ns: before.jitter_ns + edge.jitter_ns,
                    bandwidth_bps: before.bandwidth_bps.min(edge.bandwidth_bps),
                    loss: 1.0 - (1.0 - before.loss) * (1.0 - edge.loss),
                };
            }
            // Paths end at a site that carries no transit; they do not pass through it.
            if ui != s && !transit.get(ui).copied().unwrap_or(true) {
                continue;
            }
            for e in adjacency.of(ui) {
                let v = e.to as usize;
                if self.settled[v] {
                    continue;
                }
                let candidate = (
                    latency.saturating_add(e.metrics.latency_ns),
                    hops.saturating_add(1),
                );
                let better = match candidate.cmp(&self.dist[v]) {
                    Ordering::Less => true,
                    Ordering::Equal => self.names_before(u, self.pred[v]),
                    Ordering::Greater => false,
                };
                if better {
                    self.dist[v] = candidate;
                    self.pred[v] = u;
                    self.heap.push(Reverse((candidate.0, candidate.1, e.to)));
                }
            }
        }
    }

    /// Whether the path to `a` comes before the path to `b` in site-name order. Both are
    /// settled and have the same number of hops; site ids are in name order, so the first
    /// differing site from the source decides, which is the last one found walking back.
    fn names_before(&self, a: u32, b: u32) -> bool {
        if b == u32::MAX {
            return true;
        }
        let (mut x, mut y) = (a, b);
        let mut decision = x < y;
        while x != y && x != u32::MAX && y != u32::MAX {
            decision = x < y;
            x = self.pred[x as usize];
            y = self.pred[y as usize];
        }
        decision
    }
}
