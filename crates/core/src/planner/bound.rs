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
    /// Regions (sets of sites) whose capacity cannot hold every pod that can only run
    /// there, and that lowered `placed` below the groups' sum (see [`regional`]).
    pub regions: usize,
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
    let fixed_limits = bound.limit;
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
    let (placed, regions) = regional(&search, &room);
    if placed < bound.placed {
        // The groups' Limits hold only for plans placing every group's most, which no
        // plan does now: what is left is the Limits of rules whose targets do not move.
        bound.placed = placed;
        bound.regions = regions;
        bound.limit = fixed_limits;
    }
    bound
}

/// The bound from capacity shared between groups. A pod bound alone to targets that do
/// not move (a users site, a running pod) by a rule that must not end in Violation can
/// only run at the sites where that rule allows it (and where it fits alone): its
/// *region*. For a region R, the pods whose region lies within R must all fit in the
/// free capacity of R's nodes before the plan, so at most as many of them as the
/// smallest requests fit in that total, resource by resource, are placed. Disjoint
/// regions hold disjoint sets of such pods, so their shortfalls add up; pods with an
/// empty region are never placed. Returns the pods placeable at most and how many regions
/// fell short. Every relaxation here only loosens (other pods' use of the region,
/// packing into nodes, rules between pods are ignored), so it is a bound.
fn regional(search: &Search<'_, '_>, room: &[Vec<i64>]) -> (usize, usize) {
    let p = search.p;
    let d = p.d();
    let n = p.pods.len();
    let sites = p.graph.site_count();
    let mut region_of: Vec<Option<Vec<u32>>> = vec![None; n];
    let mut never = 0;
    for (u, pod) in p.pods.iter().enumerate() {
        let alone: Vec<u32> = pod
            .cons
            .iter()
            .copied()
            .filter(|c| {
                let con = &p.cons[*c as usize];
                con.pods.len() == 1 && !con.fixed.is_empty() && con.fixed_value.is_finite()
            })
            .collect();
        if alone.is_empty() {
            continue;
        }
        let r = &room[pod.class as usize];
        let region: Vec<u32> = p.classes[pod.class as usize]
            .sites
            .iter()
            .copied()
            .filter(|s| {
                pod.req
                    .iter()
                    .enumerate()
                    .all(|(k, q)| *q <= 0 || *q <= r[*s as usize * d + k])
            })
            .filter(|s| {
                alone.iter().all(|c| {
                    let con = &p.cons[*c as usize];
                    match con.kind {
                        ConKind::Pair(t) => {
                            con.fixed.iter().all(|f| search.pair(t, *s, *f).is_finite())
                        }
                        ConKind::Lane(_) => true,
                        _ => p.classes[pod.class as usize].by_site[*s as usize]
                            .iter()
                            .any(|x| p.unary(con, 0, *x).is_finite()),
                    }
                })
            })
            .collect();
        if region.is_empty() {
            never += 1;
        } else if region.len() < p.classes[pod.class as usize].sites.len() {
            region_of[u] = Some(region);
        }
    }
    // Free capacity of each site before the plan (usable nodes only; overcommitted
    // nodes count nothing).
    let mut site_free = vec![0i64; sites * d];
    for (x, slot) in p.plan_node.iter().enumerate() {
        if slot.is_none() {
            continue;
        }
        let s = p.node_site[x] as usize;
        for k in 0..d {
            site_free[s * d + k] = site_free[s * d + k].saturating_add(p.free0[x * d + k].max(0));
        }
    }
    let mut distinct: Vec<&Vec<u32>> = region_of.iter().flatten().collect();
    distinct.sort();
    distinct.dedup();
    // Pods by the first site of their region: a region holds a pod's region only if it
    // holds that site.
    let mut by_first: Vec<Vec<usize>> = vec![Vec::new(); sites];
    for (u, r) in region_of.iter().enumerate() {
        if let Some(first) = r.as_ref().and_then(|r| r.first()) {
            by_first[*first as usize].push(u);
        }
    }
    let mut shortfalls: Vec<(usize, &Vec<u32>)> = Vec::new();
    for region in distinct {
        let inside: Vec<usize> = region
            .iter()
            .flat_map(|s| &by_first[*s as usize])
            .copied()
            .filter(|u| {
                region_of[*u]
                    .as_ref()
                    .is_some_and(|r| r.iter().all(|s| region.binary_search(s).is_ok()))
            })
            .collect();
        let mut most = inside.len();
        for k in 0..d {
            let capacity: i64 = region.iter().map(|s| site_free[*s as usize * d + k]).sum();
            let mut asks: Vec<i64> = inside.iter().map(|u| p.pods[*u].req[k].max(0)).collect();
            asks.sort_unstable();
            let mut total = 0i64;
            let fit = asks
                .iter()
                .take_while(|q| {
                    total = total.saturating_add(**q);
                    total <= capacity
                })
                .count();
            most = most.min(fit);
        }
        if most < inside.len() {
            shortfalls.push((inside.len() - most, region));
        }
    }
    // The largest shortfalls first, over regions that share no site.
    shortfalls.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut taken = vec![false; sites];
    let (mut short, mut regions) = (0, 0);
    for (lack, region) in shortfalls {
        if region.iter().any(|s| taken[*s as usize]) {
            continue;
        }
        for s in region {
            taken[*s as usize] = true;
        }
        short += lack;
        regions += 1;
    }
    (n.saturating_sub(never + short), regions)
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
