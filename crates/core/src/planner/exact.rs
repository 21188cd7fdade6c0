//! Branch and bound: the exact optimum over a set of free pods, the others fixed.
//!
//! Used on the whole group to prove optimality on small groups, and on small
//! neighbourhoods by the large-neighbourhood search.
//!
//! - **Branching**: pods in most-constrained order (pods with required pod affinity last,
//!   after the pods they want; then most rules already anchored to placed members, then
//!   fewest candidate nodes); for each pod its candidate nodes, best score
//!   first, then "unplaced".
//! - **Symmetry**: candidate nodes of one symmetry class (same site, eligibility, node-rule
//!   costs) holding no pod of the plan and the same free capacity are interchangeable; only
//!   the first is tried.
//! - **Bounds** (admissible): pods that fit nowhere and bindings that can no longer avoid
//!   Violation (counted over disjoint sets of pods) must leave a pod unplaced each; when the
//!   branch can only tie the incumbent's placed count, every remaining binding becomes
//!   active, and its value is at least the worst of its placed pairs and, for each pod
//!   still to place, the least cost that pod's class can reach from its placed peers.
//! - **Incumbent**: the assignment given (the heuristic's plan); only strictly better
//!   plans replace it.

use std::collections::BTreeSet;

use super::candidates::{Guided, guided};
use super::compile::{ConKind, INF, NONE, Problem};
use super::objective::{Budget, Score};
use super::state::State;
use crate::network::{Location, NodeId};

/// Sites per pod in a restricted (neighbourhood) search.
const HOOD_SITES: usize = 8;

/// Solves the whole problem from an incumbent; returns the best assignment and whether it
/// is proven optimal.
pub(crate) fn solve(p: &Problem<'_>, incumbent: Vec<u32>, budget: &mut Budget) -> (Vec<u32>, bool) {
    let mut st = State::from_assignment(p, &incumbent);
    let all: Vec<u32> = (0..p.pods.len() as u32).collect();
    let (_, complete) = reoptimize(&mut st, &all, None, budget);
    (st.node_of, complete)
}

/// Re-optimizes `free` pods exactly, the others staying where they are. `per_site` keeps
/// only that many candidate nodes per site for each pod (a heuristic restriction; `None`
/// keeps all, which makes the result exact). Returns (improved, search complete).
pub(crate) fn reoptimize(
    st: &mut State<'_, '_>,
    free: &[u32],
    per_site: Option<usize>,
    budget: &mut Budget,
) -> (bool, bool) {
    let p = st.p;
    let incumbent_score = st.score;
    let incumbent: Vec<u32> = free.iter().map(|u| st.node_of[*u as usize]).collect();
    for u in free {
        st.remove(*u);
    }
    let order = branching_order(st, free);
    let cands: Vec<Vec<u32>> = order
        .iter()
        .map(|u| candidates(st, *u, per_site, &incumbent, free))
        .collect();
    // Constraints touching the pods of each level and below.
    let mut level_cons: Vec<Vec<u32>> = vec![Vec::new(); order.len() + 1];
    let mut acc: BTreeSet<u32> = BTreeSet::new();
    for level in (0..order.len()).rev() {
        acc.extend(p.pods[order[level] as usize].cons.iter().copied());
        level_cons[level] = acc.iter().copied().collect();
    }
    let mut in_rest = vec![false; p.pods.len()];
    for u in &order {
        in_rest[*u as usize] = true;
    }
    let mut search = Search {
        order,
        cands,
        level_cons,
        in_rest,
        mark: vec![false; p.pods.len()],
        best: incumbent_score,
        best_assign: None,
        complete: true,
    };
    search.dfs(st, 0, budget);
    let improved = search.best_assign.is_some();
    let assign: Vec<(u32, u32)> = match search.best_assign {
        Some(best) => search.order.iter().copied().zip(best).collect(),
        None => free.iter().copied().zip(incumbent).collect(),
    };
    for (u, node) in assign {
        if node != NONE {
            st.place(u, node);
        }
    }
    (improved, search.complete)
}

struct Search {
    order: Vec<u32>,
    cands: Vec<Vec<u32>>,
    level_cons: Vec<Vec<u32>>,
    /// Pods not yet decided at the current level.
    in_rest: Vec<bool>,
    mark: Vec<bool>,
    best: Score,
    best_assign: Option<Vec<u32>>,
    complete: bool,
}

impl Search {
    fn dfs(&mut self, st: &mut State<'_, '_>, level: usize, budget: &mut Budget) {
        if !budget.spend(1) {
            self.complete = false;
            return;
        }
        if level == self.order.len() {
            if st.score.better(&self.best) {
                self.best = st.score;
                self.best_assign =
                    Some(self.order.iter().map(|u| st.node_of[*u as usize]).collect());
            }
            return;
        }
        if self.prune(st, level) {
            return;
        }
        let p = st.p;
        let d = p.d();
        let u = self.order[level];
        let mut kids: Vec<(Score, u32)> = Vec::new();
        let mut seen: Vec<u32> = Vec::new();
        for x in &self.cands[level] {
            let x = *x;
            if !p.fits(u, x, &st.free) {
                continue;
            }
            if st.hosted[x as usize] == 0 {
                let same = seen.iter().any(|y| {
                    p.sym_class[*y as usize] == p.sym_class[x as usize]
                        && st.free[*y as usize * d..*y as usize * d + d]
                            == st.free[x as usize * d..x as usize * d + d]
                });
                if same {
                    continue;
                }
                seen.push(x);
            }
            if !budget.spend(1) {
                self.complete = false;
                return;
            }
            let score = st.score_if(u, x);
            // A broken pod rule that later pods cannot mend (anti-affinity, host ports)
            // ends the branch; affinity and spread may be mended by the pods to come,
            // and only complete plans with nothing broken replace the incumbent.
            if score.violations > 0
                || (score.broken > st.score.broken && !p.rules.pods[u as usize].repairable)
            {
                continue;
            }
            kids.push((score, x));
        }
        kids.sort_by(|a, b| a.0.compare(&b.0).then(a.1.cmp(&b.1)));
        self.in_rest[u as usize] = false;
        for (_, x) in kids {
            st.place(u, x);
            self.dfs(st, level + 1, budget);
            st.remove(u);
            if budget.exhausted() {
                self.complete = false;
                self.in_rest[u as usize] = true;
                return;
            }
        }
        self.dfs(st, level + 1, budget);
        self.in_rest[u as usize] = true;
    }

    /// Whether no completion of this branch can beat the incumbent.
    fn prune(&mut self, st: &State<'_, '_>, level: usize) -> bool {
        let p = st.p;
        let rest = &self.order[level..];
        let rest_weight: u128 = rest.iter().map(|u| p.pods[*u as usize].weight).sum();
        let decided_unplaced = st.score.unplaced - rest_weight;
        if decided_unplaced > self.best.unplaced {
            return true;
        }
        for u in rest {
            self.mark[*u as usize] = false;
        }
        let mut forced: u128 = 0;
        for (i, u) in rest.iter().enumerate() {
            if !self.cands[level + i]
                .iter()
                .any(|x| p.fits(*u, *x, &st.free))
            {
                forced += p.pods[*u as usize].weight;
                self.mark[*u as usize] = true;
            }
        }
        let mut limit = st.score.limit;
        let mut cost = st.score.cost;
        for c in &self.level_cons[level] {
            let con = &p.cons[*c as usize];
            // A member outside the search and unplaced: the rule stays Pending.
            if con
                .pods
                .iter()
                .any(|q| st.node_of[*q as usize] == NONE && !self.in_rest[*q as usize])
            {
                continue;
            }
            let lb = self.lower_bound(st, *c);
            if lb.is_infinite() {
                let fresh = con
                    .pods
                    .iter()
                    .filter(|q| st.node_of[**q as usize] == NONE)
                    .all(|q| !self.mark[*q as usize]);
                if fresh {
                    // One of its unplaced members stays out: at least the lightest.
                    forced += con
                        .pods
                        .iter()
                        .filter(|q| st.node_of[**q as usize] == NONE)
                        .map(|q| p.pods[*q as usize].weight)
                        .min()
                        .unwrap_or(0);
                    for q in &con.pods {
                        if st.node_of[*q as usize] == NONE {
                            self.mark[*q as usize] = true;
                        }
                    }
                }
            } else if lb > 0.0 {
                limit += 1;
                cost += lb;
            }
        }
        let unplaced_lb = decided_unplaced + forced;
        if unplaced_lb > self.best.unplaced {
            return true;
        }
        if unplaced_lb < self.best.unplaced {
            return false;
        }
        // Soft penalties may still fall to 0 (and broken pod rules be mended).
        let bound = if forced == 0 {
            Score {
                unplaced: unplaced_lb,
                limit,
                cost,
                ..Score::default()
            }
        } else {
            Score {
                unplaced: unplaced_lb,
                limit: st.score.limit,
                cost: st.score.cost,
                ..Score::default()
            }
        };
        !bound.better(&self.best)
    }

    /// A lower bound on constraint `c`'s value once all its members are placed.
    fn lower_bound(&self, st: &State<'_, '_>, c: u32) -> f64 {
        let p = st.p;
        let con = &p.cons[c as usize];
        let mut worst = con.fixed_value;
        match &con.kind {
            ConKind::Lane(l) => {
                worst = worst.max(super::lanes::bound(&p.lanes[*l as usize], p.graph, |q| {
                    st.node_of[q as usize]
                }));
            }
            ConKind::Pair(t) => {
                let placed: Vec<Location> = con
                    .pods
                    .iter()
                    .filter(|q| st.node_of[**q as usize] != NONE)
                    .map(|q| Location::Node(NodeId(st.node_of[*q as usize])))
                    .collect();
                for (i, a) in placed.iter().enumerate() {
                    for f in &con.fixed {
                        worst = worst.max(p.pair_cost(*t, *a, *f));
                    }
                    for b in &placed[..i] {
                        worst = worst.max(p.pair_cost(*t, *a, *b));
                    }
                }
                for q in &con.pods {
                    if st.node_of[*q as usize] != NONE {
                        continue;
                    }
                    let class = p.pods[*q as usize].class;
                    let Some(reach) = p.reach.get(&(*t, class)) else {
                        continue;
                    };
                    for l in placed.iter().chain(con.fixed.iter()) {
                        let site = match l {
                            Location::Node(n) => p.node_site[n.index()],
                            Location::Site(s) => s.0,
                        };
                        worst = worst.max(reach[site as usize]);
                    }
                }
            }
            _ => {
                for (pos, q) in con.pods.iter().enumerate() {
                    let node = st.node_of[*q as usize];
                    let v = if node == NONE {
                        p.min_unary[c as usize][pos]
                    } else {
                        p.unary(con, pos, node)
                    };
                    worst = worst.max(v);
                }
            }
        }
        if worst.is_nan() { INF } else { worst }
    }
}

/// Most-constrained first: pods whose rules already have placed members, then fewest
/// eligible sites, then most rules.
fn branching_order(st: &State<'_, '_>, free: &[u32]) -> Vec<u32> {
    let p = st.p;
    let mut decided = vec![false; p.pods.len()];
    for (q, node) in st.node_of.iter().enumerate() {
        decided[q] = *node != NONE;
    }
    let mut left: Vec<u32> = free.to_vec();
    let mut order = Vec::with_capacity(free.len());
    while !left.is_empty() {
        let key = |u: u32| {
            let pod = &p.pods[u as usize];
            let anchored = pod
                .cons
                .iter()
                .filter(|c| {
                    let con = &p.cons[**c as usize];
                    !con.fixed.is_empty() || con.pods.iter().any(|q| decided[*q as usize])
                })
                .count();
            let sites = p.classes[pod.class as usize].sites.len();
            (
                p.rules.pods[u as usize].affine,
                std::cmp::Reverse(anchored),
                sites,
                std::cmp::Reverse(pod.cons.len()),
                u,
            )
        };
        let (i, _) = left
            .iter()
            .enumerate()
            .min_by_key(|(_, u)| key(**u))
            .unwrap_or((0, &0));
        let u = left.swap_remove(i);
        decided[u as usize] = true;
        order.push(u);
    }
    order
}

/// The nodes a free pod may take in the search.
fn candidates(
    st: &State<'_, '_>,
    u: u32,
    per_site: Option<usize>,
    incumbent: &[u32],
    free: &[u32],
) -> Vec<u32> {
    let p = st.p;
    let class = &p.classes[p.pods[u as usize].class as usize];
    let d = p.d();
    let mut out: Vec<u32> = Vec::new();
    match per_site {
        None => {
            for s in &class.sites {
                out.extend(&class.by_site[*s as usize]);
            }
        }
        Some(k) => {
            // The sites that look best for the pod (peers where they are, look-ahead to
            // the others), then up to `k` nodes of each that fit, least node-rule cost
            // and tightest fit first. Symmetric nodes are collapsed during the search.
            let mut ranked: Vec<(Guided, u32)> = class
                .sites
                .iter()
                .filter_map(|s| {
                    let x = *class.by_site[*s as usize].first()?;
                    Some((guided(st, u, x, true), *s))
                })
                .collect();
            ranked.sort_by(|a, b| {
                if a.0.better(&b.0) {
                    std::cmp::Ordering::Less
                } else if b.0.better(&a.0) {
                    std::cmp::Ordering::Greater
                } else {
                    a.1.cmp(&b.1)
                }
            });
            for (_, s) in ranked.iter().take(HOOD_SITES) {
                let mut site: Vec<(f64, i64, u32)> = class.by_site[*s as usize]
                    .iter()
                    .filter(|x| p.fits(u, **x, &st.free))
                    .map(|x| {
                        let unary: f64 = p.pods[u as usize]
                            .cons
                            .iter()
                            .map(|c| {
                                let con = &p.cons[*c as usize];
                                let pos = con.pods.iter().position(|q| *q == u).unwrap_or(0);
                                p.unary(con, pos, *x)
                            })
                            .sum();
                        (unary, st.free[*x as usize * d], *x)
                    })
                    .filter(|(unary, _, _)| unary.is_finite())
                    .collect();
                site.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
                out.extend(site.iter().take(k).map(|(_, _, x)| *x));
            }
            // Where it was, and next to its peers (same node).
            if let Some(i) = free.iter().position(|q| *q == u)
                && incumbent[i] != NONE
            {
                out.push(incumbent[i]);
            }
            for c in &p.pods[u as usize].cons {
                let con = &p.cons[*c as usize];
                for q in &con.pods {
                    let node = st.node_of[*q as usize];
                    if node != NONE && class.eligible[node as usize] {
                        out.push(node);
                    }
                    if let Some(i) = free.iter().position(|f| f == q)
                        && incumbent[i] != NONE
                        && class.eligible[incumbent[i] as usize]
                    {
                        out.push(incumbent[i]);
                    }
                }
                for f in &con.fixed {
                    if let Location::Node(n) = f
                        && class.eligible[n.index()]
                    {
                        out.push(n.0);
                    }
                }
            }
            out.sort_unstable();
            out.dedup();
        }
    }
    out
}
