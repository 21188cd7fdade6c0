//! The heuristic for large groups: a group-aware greedy construction, then local search
//! (insert, relocate) and large-neighbourhood search (small groups of connected pods
//! re-optimized exactly), until a whole round finds nothing better or the budget ends.
//!
//! Candidates are sites, not nodes: a pod's network costs depend only on its site (and on
//! sharing a node with a peer), so each site contributes its best node for the pod (least
//! node-rule cost, then tightest fit), and the nodes of the pod's peers are added.

use std::collections::{HashSet, VecDeque};

use super::candidates::{
    Guided, best_move_by_site, candidates, choose_by_site, first_without_overbooking, guided,
    guided_rules, judged_by_site, sites_by_first_node,
};
use super::compile::{NONE, Problem};
use super::exact;
use super::instances::Rng;
use super::objective::Budget;
use super::state::State;

/// Pods per neighbourhood of the large-neighbourhood search.
const HOOD: usize = 8;
/// Steps one neighbourhood search may take.
const HOOD_STEPS: u64 = 20_000;

pub(crate) fn solve(p: &Problem<'_>, seed: u64, budget: &mut Budget) -> Vec<u32> {
    let mut st = State::new(p);
    construct(&mut st, budget);
    improve(&mut st, seed, budget);
    st.node_of
}

/// Places pods component by component, breadth first from the most anchored pod, each on
/// the candidate with the best score counting a look-ahead to its peers still to place.
fn construct(st: &mut State<'_, '_>, budget: &mut Budget) {
    let p = st.p;
    let mut cands = Vec::new();
    let mut scored: Vec<(Guided, u32)> = Vec::new();
    let mut by_site = Vec::new();
    for u in construction_order(p) {
        if judged_by_site(p, u) {
            budget.spend(p.classes[p.pods[u as usize].class as usize].sites.len() as u64 + 1);
            if let Some(x) = choose_by_site(st, u, &mut by_site) {
                st.place(u, x);
            }
            continue;
        }
        candidates(st, u, &mut cands);
        budget.spend(cands.len() as u64 + 1);
        // The best candidate with no actual Violation (a link over-subscribed is one, asked
        // of the best candidates only).
        scored.clear();
        for x in &cands {
            let g = guided_rules(st, u, *x, true);
            if g.actual_violations == 0 {
                scored.push((g, *x));
            }
        }
        if let Some((_, x)) = first_without_overbooking(st, u, &mut scored, Guided::order) {
            st.place(u, x);
        }
    }
}

/// Insert and relocate moves until none improves, then neighbourhood searches; repeated
/// while either finds something.
pub(crate) fn improve(st: &mut State<'_, '_>, seed: u64, budget: &mut Budget) {
    let p = st.p;
    let mut rng = Rng::new(seed);
    let mut cands = Vec::new();
    let mut peers = Vec::new();
    let site_order: Vec<Vec<u32>> = p.classes.iter().map(sites_by_first_node).collect();
    let mut order: Vec<u32> = (0..p.pods.len() as u32).collect();
    let mut tried: HashSet<Vec<u32>> = HashSet::new();
    // Neighbourhoods are drawn at random: small groups may try a few rounds in vain.
    let patience = if p.pods.len() <= 64 { 6 } else { 1 };
    let mut stalled = 0;
    loop {
        let mut improved = false;
        rng.shuffle(&mut order);
        for u in &order {
            if budget.exhausted() {
                return;
            }
            let here = st.node_of[*u as usize];
            let mut best = (st.score, here);
            if judged_by_site(p, *u) && st.floor_applies(*u) {
                budget.spend(p.classes[p.pods[*u as usize].class as usize].sites.len() as u64 + 1);
                let class = p.pods[*u as usize].class as usize;
                best_move_by_site(st, *u, &site_order[class], &mut best, &mut peers);
                if best.1 != here {
                    st.relocate(*u, best.1);
                    improved = true;
                }
                continue;
            }
            candidates(st, *u, &mut cands);
            budget.spend(cands.len() as u64 + 1);
            for x in &cands {
                if *x == here {
                    continue;
                }
                if let Some(floor) = st.score_floor_if(*u, *x)
                    && !floor.better(&best.0)
                {
                    continue;
                }
                let s = st.score_if(*u, *x);
                if s.better(&best.0) {
                    best = (s, *x);
                }
            }
            if best.1 != here {
                st.relocate(*u, best.1);
                improved = true;
            }
        }
        if improved {
            continue;
        }
        // Large neighbourhoods around pods that are unplaced or in a rule at Limit.
        rng.shuffle(&mut order);
        for u in &order {
            if budget.exhausted() {
                return;
            }
            if !interesting(st, *u) {
                continue;
            }
            let hood = neighbourhood(st, *u, &mut rng);
            if hood.len() < 2 && st.node_of[*u as usize] != NONE {
                continue;
            }
            let mut key = hood.clone();
            key.sort_unstable();
            if !tried.insert(key) {
                continue;
            }
            let mut slice = budget.slice(HOOD_STEPS);
            let (better, _) = exact::reoptimize(st, &hood, Some(hood.len()), &mut slice);
            budget.absorb(&slice);
            if better {
                improved = true;
                tried.clear();
            }
        }
        if improved {
            stalled = 0;
        } else {
            stalled += 1;
            tried.clear();
            if stalled >= patience {
                return;
            }
        }
    }
}

fn interesting(st: &State<'_, '_>, u: u32) -> bool {
    st.node_of[u as usize] == NONE
        || st.p.pods[u as usize]
            .cons
            .iter()
            .any(|c| st.values[*c as usize].is_some_and(|v| v > 0.0))
}

/// The pod and its peers, then, as long as there is room, the pods (with their peers) that
/// hold the nodes members of the neighbourhood would like best: nodes where they would fit
/// if the node were empty, best sites first, chosen at random within a site so that
/// different rounds try different swaps (an ejection chain).
fn neighbourhood(st: &State<'_, '_>, seed: u32, rng: &mut Rng) -> Vec<u32> {
    let p = st.p;
    let mut hood = vec![seed];
    let mut queue = VecDeque::from([seed]);
    bfs(p, &mut hood, &mut queue, HOOD);
    let mut wishers: VecDeque<u32> = hood.iter().copied().collect();
    while let Some(w) = wishers.pop_front() {
        if hood.len() >= HOOD {
            break;
        }
        for x in wished(st, w, &hood, rng) {
            for (q, node) in st.node_of.iter().enumerate() {
                let q = q as u32;
                if *node != x || hood.contains(&q) {
                    continue;
                }
                let mut group = vec![q];
                let mut queue = VecDeque::from([q]);
                bfs(p, &mut group, &mut queue, HOOD);
                group.retain(|g| !hood.contains(g));
                if hood.len() + group.len() <= HOOD {
                    hood.extend(&group);
                    wishers.extend(group);
                }
            }
        }
    }
    // Room left: unplaced pods might take what the others free.
    let mut unplaced: Vec<u32> = (0..p.pods.len() as u32)
        .filter(|q| st.node_of[*q as usize] == NONE && !hood.contains(q))
        .collect();
    rng.shuffle(&mut unplaced);
    for q in unplaced {
        if hood.len() >= HOOD {
            break;
        }
        if hood.contains(&q) {
            continue;
        }
        let mut group = vec![q];
        let mut queue = VecDeque::from([q]);
        bfs(p, &mut group, &mut queue, HOOD);
        group.retain(|g| !hood.contains(g));
        if hood.len() + group.len() <= HOOD {
            hood.extend(group);
        }
    }
    hood
}

/// Up to three nodes a pod would like: it fits there if the node is emptied, the node
/// holds pods outside the neighbourhood; best sites first, random order within a site.
fn wished(st: &State<'_, '_>, w: u32, hood: &[u32], rng: &mut Rng) -> Vec<u32> {
    let p = st.p;
    let here = st.node_of[w as usize];
    let class = &p.classes[p.pods[w as usize].class as usize];
    let mut sites: Vec<(Guided, u32)> = class
        .sites
        .iter()
        .filter_map(|s| {
            let x = *class.by_site[*s as usize].first()?;
            Some((guided(st, w, x, true), *s))
        })
        .collect();
    sites.sort_by(|a, b| {
        if a.0.better(&b.0) {
            std::cmp::Ordering::Less
        } else if b.0.better(&a.0) {
            std::cmp::Ordering::Greater
        } else {
            a.1.cmp(&b.1)
        }
    });
    let mut wished: Vec<u32> = Vec::new();
    for (_, s) in &sites {
        let mut nodes: Vec<u32> = class.by_site[*s as usize]
            .iter()
            .copied()
            .filter(|x| {
                let in_hood = hood
                    .iter()
                    .filter(|q| st.node_of[**q as usize] == *x)
                    .count() as u32;
                *x != here && st.hosted[*x as usize] > in_hood && p.fits(w, *x, &p.free0)
            })
            .collect();
        rng.shuffle(&mut nodes);
        wished.extend(nodes);
        if wished.len() >= 3 {
            break;
        }
    }
    wished.truncate(3);
    wished
}

/// Adds peers of the queued pods, breadth first, until the hood holds `cap` pods.
fn bfs(p: &Problem<'_>, hood: &mut Vec<u32>, queue: &mut VecDeque<u32>, cap: usize) {
    while let Some(u) = queue.pop_front() {
        for c in &p.pods[u as usize].cons {
            for q in &p.cons[*c as usize].pods {
                if hood.len() >= cap {
                    return;
                }
                if !hood.contains(q) {
                    hood.push(*q);
                    queue.push_back(*q);
                }
            }
        }
    }
}

/// Breadth first over the rules' graph, starting each component at its most anchored pod
/// (rules with sites or running pods), then fewest eligible sites; then stably by
/// priority (highest first) and required pod affinity (last).
fn construction_order(p: &Problem<'_>) -> Vec<u32> {
    let n = p.pods.len();
    let mut seeds: Vec<u32> = (0..n as u32).collect();
    let key = |u: &u32| {
        let pod = &p.pods[*u as usize];
        let anchored = pod
            .cons
            .iter()
            .filter(|c| !p.cons[**c as usize].fixed.is_empty())
            .count();
        (
            std::cmp::Reverse(anchored.min(1)),
            p.classes[pod.class as usize].sites.len(),
            std::cmp::Reverse(pod.cons.len()),
            *u,
        )
    };
    seeds.sort_by_key(key);
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for s in seeds {
        if seen[s as usize] {
            continue;
        }
        seen[s as usize] = true;
        let mut queue = VecDeque::from([s]);
        while let Some(u) = queue.pop_front() {
            order.push(u);
            for c in &p.pods[u as usize].cons {
                for q in &p.cons[*c as usize].pods {
                    if !seen[*q as usize] {
                        seen[*q as usize] = true;
                        queue.push_back(*q);
                    }
                }
            }
        }
    }
    // Higher priorities first (kube-scheduler's queue order), and pods with required pod
    // affinity after the pods they may want.
    order.sort_by_key(|u| {
        (
            std::cmp::Reverse(p.pods[*u as usize].weight),
            p.rules.pods[*u as usize].affine,
        )
    });
    order
}
