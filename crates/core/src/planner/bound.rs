//! A cheap bound on what any plan can achieve: at most `placed` pods placed, and, for a
//! plan that places that many, at least `limit` rules in Limit.
//!
//! How: the pods are split into groups (connected by the rules of their bindings), and each
//! group is solved exactly *alone*, on a relaxation of the problem that only loosens it:
//! - a pod may go to any site where some eligible node could hold it alone in the free
//!   capacity before the plan (per resource, the most any eligible node of the site has
//!   free: the other pods of the plan, other groups and the group's own, take nothing);
//! - two pods in one site cost the less of the rule's same-node and intra-site values;
//!   node rules cost their least value over the site's eligible nodes;
//! - rules between pods (affinity, anti-affinity, spread, host ports) and link bandwidth
//!   reservations are left out.
//!
//! Every plan, restricted to a group, is a solution of that group's relaxation, so the sum
//! over groups of the most pods each can place bounds the plan's pods placed from above;
//! and a plan placing that many places each group's most, so its Limits are at least the
//! sum of the fewest each group needs at its most (plus the rules whose targets do not
//! move). A group whose search runs out of steps counts all its pods that have a site and
//! no Limit: still a bound, only a weaker one (`exact_groups` < `groups` says so).
//!
//! Cost: per group a depth-first search over sites (not nodes), pods in breadth-first order
//! from the anchored ones, best sites first, cut when it can no longer beat the best found;
//! at most [`GROUP_STEPS`] site evaluations per group.

use super::compile::{ConKind, INF, NONE, Problem};
use crate::network::{Location, NodeId, SiteId};

/// Site evaluations one group's search may take.
pub(crate) const GROUP_STEPS: u64 = 20_000;

/// The bound of a problem (see the module's documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bound {
    /// No plan places more pods than this.
    pub placed: usize,
    /// A plan that places `placed` pods has at least this many rules in Limit.
    pub limit: usize,
    /// Groups of pods (connected by their bindings' rules).
    pub groups: usize,
    /// Groups whose relaxation was solved to the end (the others count all their pods).
    pub exact_groups: usize,
}

pub(crate) fn compute(p: &Problem<'_>) -> Bound {
    let n = p.pods.len();
    let mut bound = Bound::default();
    // Rules whose targets do not move are what they are.
    for con in &p.cons {
        if con.pods.is_empty() && con.fixed_value.is_finite() && con.fixed_value > 0.0 {
            bound.limit += 1;
        }
    }
    let sites = p.graph.site_count();
    // Per class and site, per resource: the most any eligible node has free.
    let d = p.d();
    let mut room: Vec<Vec<i64>> = Vec::with_capacity(p.classes.len());
    for class in &p.classes {
        let mut r = vec![i64::MIN; sites * d];
        for s in &class.sites {
            for x in &class.by_site[*s as usize] {
                for k in 0..d {
                    let at = &mut r[*s as usize * d + k];
                    *at = (*at).max(p.free0[*x as usize * d + k]);
                }
            }
        }
        room.push(r);
    }
    let mut seen = vec![false; n];
    let mut search = Search {
        p,
        order: Vec::new(),
        domain: Vec::new(),
        site_of: vec![NONE; n],
        decided: vec![false; n],
        steps: 0,
        best: (0, usize::MAX),
        placed: 0,
        limit: 0,
        complete: true,
    };
    for start in 0..n as u32 {
        if seen[start as usize] {
            continue;
        }
        // The group, breadth first from its first pod (anchored pods first among them).
        let mut group = vec![start];
        seen[start as usize] = true;
        let mut i = 0;
        while i < group.len() {
            let u = group[i];
            i += 1;
            for c in &p.pods[u as usize].cons {
                for q in &p.cons[*c as usize].pods {
                    if !seen[*q as usize] {
                        seen[*q as usize] = true;
                        group.push(*q);
                    }
                }
            }
        }
        bound.groups += 1;
        let anchored = |u: &u32| {
            p.pods[*u as usize]
                .cons
                .iter()
                .any(|c| !p.cons[*c as usize].fixed.is_empty())
        };
        if let Some(k) = group.iter().position(anchored) {
            // Re-rooted at an anchored pod: its peers then follow it.
            let root = group[k];
            let mut order = vec![root];
            let mut i = 0;
            while i < order.len() {
                let u = order[i];
                i += 1;
                for c in &p.pods[u as usize].cons {
                    for q in &p.cons[*c as usize].pods {
                        if !order.contains(q) {
                            order.push(*q);
                        }
                    }
                }
            }
            group = order;
        }
        let domain: Vec<Vec<u32>> = group
            .iter()
            .map(|u| {
                let pod = &p.pods[*u as usize];
                let r = &room[pod.class as usize];
                p.classes[pod.class as usize]
                    .sites
                    .iter()
                    .copied()
                    .filter(|s| {
                        pod.req
                            .iter()
                            .enumerate()
                            .all(|(k, q)| *q <= 0 || *q <= r[*s as usize * d + k])
                    })
                    .filter(|s| search.unary(*u, *s).is_finite())
                    .collect()
            })
            .collect();
        search.order = group;
        search.domain = domain;
        search.steps = 0;
        search.best = (0, usize::MAX);
        search.placed = 0;
        search.limit = 0;
        search.complete = true;
        search.dfs(0);
        for u in &search.order {
            search.decided[*u as usize] = false;
            search.site_of[*u as usize] = NONE;
        }
        if search.complete {
            bound.exact_groups += 1;
            bound.placed += search.best.0;
            bound.limit += search.best.1;
        } else {
            bound.placed += search.domain.iter().filter(|d| !d.is_empty()).count();
        }
    }
    bound
}

struct Search<'p, 'a> {
    p: &'p Problem<'a>,
    order: Vec<u32>,
    domain: Vec<Vec<u32>>,
    site_of: Vec<u32>,
    decided: Vec<bool>,
    steps: u64,
    /// Most pods placed, fewest Limits at that.
    best: (usize, usize),
    placed: usize,
    limit: usize,
    complete: bool,
}

impl Search<'_, '_> {
    /// The least value of `u`'s node rules over the eligible nodes of site `s` (0 without).
    fn unary(&self, u: u32, s: u32) -> f64 {
        let p = self.p;
        let pod = &p.pods[u as usize];
        let mut worst: f64 = 0.0;
        for c in &pod.cons {
            let con = &p.cons[*c as usize];
            if matches!(con.kind, ConKind::Pair(_)) {
                continue;
            }
            let pos = con.pods.iter().position(|q| *q == u).unwrap_or(0);
            let least = p.classes[pod.class as usize].by_site[s as usize]
                .iter()
                .map(|x| p.unary(con, pos, *x))
                .fold(INF, f64::min);
            worst = worst.max(least);
        }
        worst
    }

    /// A pairwise table's least cost between a pod at site `a` and a target that does not
    /// move (a node: the pod may share it; a site).
    fn pair(&self, t: u32, a: u32, b: Location) -> f64 {
        let p = self.p;
        let (sb, node) = match b {
            Location::Node(n) => (p.node_site[n.index()], true),
            Location::Site(s) => (s.0, false),
        };
        let v = p.pair_cost(t, Location::Site(SiteId(a)), Location::Site(SiteId(sb)));
        if node && a == sb {
            v.min(self.same_node(t))
        } else {
            v
        }
    }

    /// Two pods on one node (any node: the value does not depend on which).
    fn same_node(&self, t: u32) -> f64 {
        self.p
            .pair_cost(t, Location::Node(NodeId(0)), Location::Node(NodeId(0)))
    }

    /// The value of a rule all of whose pods are decided and placed, with `u` at `s`.
    fn value(&self, c: u32) -> f64 {
        let p = self.p;
        let con = &p.cons[c as usize];
        let mut worst = con.fixed_value;
        if let ConKind::Pair(t) = con.kind {
            for (i, q) in con.pods.iter().enumerate() {
                let a = self.site_of[*q as usize];
                for f in &con.fixed {
                    worst = worst.max(self.pair(t, a, *f));
                }
                for r in &con.pods[..i] {
                    let b = self.site_of[*r as usize];
                    let same = if a == b { self.same_node(t) } else { INF };
                    let v = p
                        .pair_cost(t, Location::Site(SiteId(a)), Location::Site(SiteId(b)))
                        .min(same);
                    worst = worst.max(v);
                }
            }
        } else {
            for (pos, q) in con.pods.iter().enumerate() {
                let s = self.site_of[*q as usize];
                let least = p.classes[p.pods[*q as usize].class as usize].by_site[s as usize]
                    .iter()
                    .map(|x| p.unary(con, pos, *x))
                    .fold(INF, f64::min);
                worst = worst.max(least);
            }
        }
        if worst.is_nan() { INF } else { worst }
    }

    /// Rules of `u` that are complete once `u` is decided: `None` if one is in Violation,
    /// else how many of them are in Limit.
    fn closing(&self, u: u32) -> Option<usize> {
        let p = self.p;
        let mut limit = 0;
        for c in &p.pods[u as usize].cons {
            let con = &p.cons[*c as usize];
            if !con.pods.iter().all(|q| self.decided[*q as usize]) {
                continue;
            }
            if con.pods.iter().any(|q| self.site_of[*q as usize] == NONE) {
                continue; // Pending.
            }
            let v = self.value(*c);
            if v.is_infinite() {
                return None;
            }
            if v > 0.0 {
                limit += 1;
            }
        }
        Some(limit)
    }

    fn better(&self, placed: usize, limit: usize) -> bool {
        placed > self.best.0 || (placed == self.best.0 && limit < self.best.1)
    }

    fn dfs(&mut self, level: usize) {
        if level == self.order.len() {
            if self.better(self.placed, self.limit) {
                self.best = (self.placed, self.limit);
            }
            return;
        }
        // Even placing every pod left without a Limit more cannot beat the best.
        let left = self.order.len() - level;
        if !self.better(self.placed + left, self.limit) {
            return;
        }
        let u = self.order[level];
        self.decided[u as usize] = true;
        let mut kids: Vec<(usize, u32)> = Vec::new();
        for i in 0..self.domain[level].len() {
            self.steps += 1;
            if self.steps > GROUP_STEPS {
                self.complete = false;
                break;
            }
            let s = self.domain[level][i];
            self.site_of[u as usize] = s;
            if let Some(l) = self.closing(u) {
                kids.push((l, s));
            }
        }
        kids.sort_unstable();
        for (l, s) in kids {
            if !self.complete {
                break;
            }
            self.site_of[u as usize] = s;
            self.placed += 1;
            self.limit += l;
            self.dfs(level + 1);
            self.placed -= 1;
            self.limit -= l;
        }
        // Unplaced: its complete rules become Pending.
        self.site_of[u as usize] = NONE;
        if self.complete {
            self.dfs(level + 1);
        }
        self.decided[u as usize] = false;
    }
}
