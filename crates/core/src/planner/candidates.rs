//! A pod's candidate nodes, and the score the constructions (the heuristic's, the greedy
//! baseline's, the exact search's branching order) give to placing it on one.

use super::compile::{ConKind, NONE};
use super::state::State;
use crate::network::{Location, NodeId};

/// For each site where the pod may run, the node it fits best (least node-rule cost, then
/// least cpu left), plus the nodes of its peers and where it is now.
pub(crate) fn candidates(st: &State<'_, '_>, u: u32, out: &mut Vec<u32>) {
    let p = st.p;
    out.clear();
    let pod = &p.pods[u as usize];
    let class = &p.classes[pod.class as usize];
    let unary: Vec<(u32, usize)> = pod
        .cons
        .iter()
        .filter(|c| {
            !matches!(
                p.cons[**c as usize].kind,
                ConKind::Pair(_) | ConKind::Lane(_)
            )
        })
        .map(|c| {
            let pos = p.cons[*c as usize]
                .pods
                .iter()
                .position(|q| *q == u)
                .unwrap_or(0);
            (*c, pos)
        })
        .collect();
    let here = st.node_of[u as usize];
    for s in &class.sites {
        let nodes = &class.by_site[*s as usize];
        // The hot loop of the constructions and the local search: kept free of the rules
        // between pods (they are tried once, on the winner) so that it stays inlined.
        let mut best: Option<(f64, i64, u32)> = None;
        for x in nodes {
            if let Some(key) = node_key(st, u, &unary, *x)
                && best.is_none_or(|b| before(&key, &b))
            {
                best = Some(key);
            }
        }
        if let Some(b) = best
            && !st.allowed(u, b.2)
        {
            best = best_allowed(st, u, &unary, nodes);
        }
        if let Some((_, _, x)) = best {
            out.push(x);
        }
    }
    if here != NONE {
        out.push(here);
    }
    for c in &pod.cons {
        let con = &p.cons[*c as usize];
        let peers =
            con.pods
                .iter()
                .map(|q| st.node_of[*q as usize])
                .chain(con.fixed.iter().filter_map(|f| match f {
                    Location::Node(n) => Some(n.0),
                    Location::Site(_) => None,
                }));
        for node in peers {
            if node != NONE
                && class.eligible[node as usize]
                && st.fits(u, node)
                && st.allowed(u, node)
            {
                out.push(node);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
}

/// A node's rank for a pod within its site (least node-rule cost, then least cpu left,
/// then id); `None` when the pod does not fit or a node rule is in Violation there.
#[inline(always)]
fn node_key(st: &State<'_, '_>, u: u32, unary: &[(u32, usize)], x: u32) -> Option<(f64, i64, u32)> {
    let p = st.p;
    if !st.fits(u, x) {
        return None;
    }
    let cost: f64 = unary
        .iter()
        .map(|(c, pos)| p.unary(&p.cons[*c as usize], *pos, x))
        .sum();
    if cost.is_infinite() {
        return None;
    }
    let pod = &p.pods[u as usize];
    let mut slack = st.free[x as usize * p.d()] - pod.req[0];
    if x == st.node_of[u as usize] {
        slack += pod.req[0];
    }
    Some((cost, slack, x))
}

#[inline(always)]
fn before(a: &(f64, i64, u32), b: &(f64, i64, u32)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && (a.1 < b.1 || (a.1 == b.1 && a.2 < b.2)))
}

/// The site's best node that breaks no rule between pods, when its best node does: the
/// others in order, each tried against the rules (a rule update each, so only then).
#[cold]
fn best_allowed(
    st: &State<'_, '_>,
    u: u32,
    unary: &[(u32, usize)],
    nodes: &[u32],
) -> Option<(f64, i64, u32)> {
    let mut keys: Vec<(f64, i64, u32)> = nodes
        .iter()
        .filter_map(|x| node_key(st, u, unary, *x))
        .collect();
    keys.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    keys.into_iter().find(|k| st.allowed(u, k.2))
}

/// The construction's score of a candidate: actual Violations with placed peers first,
/// then Violations, Limits and cost counting the best reachable cost to unplaced peers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Guided {
    pub actual_violations: u32,
    pub violations: u32,
    pub limit: u32,
    pub cost: f64,
}

impl Guided {
    /// Counts one rule whose cost is `actual` where the pod would go, and at least
    /// `ahead` once its unplaced peers are placed (the look-ahead).
    #[inline(always)]
    fn add(&mut self, actual: f64, ahead: f64) {
        if actual.is_infinite() {
            self.actual_violations += 1;
        }
        let v = actual.max(ahead);
        if v.is_infinite() {
            self.violations += 1;
        } else {
            if v > 0.0 {
                self.limit += 1;
            }
            self.cost += v;
        }
    }

    pub(crate) fn order(&self, o: &Guided) -> std::cmp::Ordering {
        (self.actual_violations, self.violations, self.limit)
            .cmp(&(o.actual_violations, o.violations, o.limit))
            .then(self.cost.total_cmp(&o.cost))
    }

    pub(crate) fn better(&self, o: &Guided) -> bool {
        (self.actual_violations, self.violations, self.limit)
            .cmp(&(o.actual_violations, o.violations, o.limit))
            .then(self.cost.total_cmp(&o.cost))
            .is_lt()
    }
}

pub(crate) fn guided(st: &State<'_, '_>, u: u32, x: u32, lookahead: bool) -> Guided {
    let mut g = guided_rules(st, u, x, lookahead);
    // A link the move would over-subscribe rules the candidate out like a Violation.
    if st.overbooks(u, x) {
        g.actual_violations += 1;
    }
    g
}

/// The candidates without an actual Violation, best first by `key` (then node id), and
/// among them the first whose move over-subscribes no link: the candidate the
/// constructions would pick with [`guided`], found while asking the (costly) link
/// question of as few candidates as possible.
pub(crate) fn first_without_overbooking<K: Copy>(
    st: &State<'_, '_>,
    u: u32,
    scored: &mut [(K, u32)],
    order: impl Fn(&K, &K) -> std::cmp::Ordering,
) -> Option<(K, u32)> {
    scored.sort_by(|a, b| order(&a.0, &b.0).then(a.1.cmp(&b.1)));
    scored.iter().copied().find(|(_, x)| !st.overbooks(u, *x))
}

/// [`guided`] without the link reservations (which only ever add an actual Violation).
pub(crate) fn guided_rules(st: &State<'_, '_>, u: u32, x: u32, lookahead: bool) -> Guided {
    let p = st.p;
    let here = Location::Node(NodeId(x));
    let site = p.node_site[x as usize] as usize;
    let mut g = Guided {
        actual_violations: 0,
        violations: 0,
        limit: 0,
        cost: 0.0,
    };
    for c in &p.pods[u as usize].cons {
        let con = &p.cons[*c as usize];
        let mut actual = con.fixed_value;
        let mut ahead: f64 = 0.0;
        match &con.kind {
            // The placed segments of the lane: adding the others only adds to them.
            ConKind::Lane(l) => {
                let node_of = |q: u32| if q == u { x } else { st.node_of[q as usize] };
                actual = actual.max(super::lanes::bound(&p.lanes[*l as usize], p.graph, node_of));
            }
            ConKind::Pair(t) => {
                for f in &con.fixed {
                    actual = actual.max(p.pair_cost(*t, here, *f));
                }
                for q in &con.pods {
                    if *q == u {
                        continue;
                    }
                    let node = st.node_of[*q as usize];
                    if node != NONE {
                        actual = actual.max(p.pair_cost(*t, here, Location::Node(NodeId(node))));
                    } else if !lookahead {
                    } else if let Some(reach) = p.reach.get(&(*t, p.pods[*q as usize].class)) {
                        ahead = ahead.max(reach[site]);
                    }
                }
            }
            _ => {
                for (pos, q) in con.pods.iter().enumerate() {
                    if *q == u {
                        actual = actual.max(p.unary(con, pos, x));
                    } else if lookahead && st.node_of[*q as usize] == NONE {
                        ahead = ahead.max(p.min_unary[*c as usize][pos]);
                    }
                }
            }
        }
        g.add(actual, ahead);
    }
    g
}

/// Whether the construction may judge `u` site by site: every rule of its bindings is
/// pairwise (a node rule or a lane is judged at the node).
pub(crate) fn judged_by_site(p: &super::compile::Problem<'_>, u: u32) -> bool {
    p.pods[u as usize]
        .cons
        .iter()
        .all(|c| matches!(p.cons[*c as usize].kind, ConKind::Pair(_)))
}

/// A pairwise rule of the pod being placed, with where its other members are.
struct SiteTerm<'p> {
    table: u32,
    fixed_value: f64,
    /// Sites of the targets that do not move and of the placed peers.
    others: Vec<u32>,
    /// For each unplaced peer, the least cost it can reach from each site.
    ahead: Vec<&'p [f64]>,
}

/// A candidate of [`choose_by_site`]: the score, then a site (`node` NONE: the site's
/// node is found when the site's score comes first) or a peer's node.
#[derive(Clone, Copy)]
pub(crate) struct SiteCandidate {
    guided: Guided,
    site: u32,
    node: u32,
}

/// The construction's choice for `u` (which [`judged_by_site`]): the candidate the best by
/// [`guided_rules`] with look-ahead, no actual Violation, no pod rule broken, no link
/// over-subscribed. A pairwise cost depends only on the sites of the two ends, unless they
/// share a node, so the score is computed once per site (for the nodes of the site that
/// host none of `u`'s peers) instead of once per node; the site's node is chosen by
/// capacity (tightest cpu fit) only for the sites whose score comes first. The peers'
/// nodes are candidates of their own, scored with their same-node costs. The choice is
/// the node-by-node construction's: a site's node is its tightest fit, and when that hosts
/// a peer the site offers no other node (the peer's candidate stands for it); of equally
/// scored candidates the lowest node id wins.
pub(crate) fn choose_by_site(
    st: &State<'_, '_>,
    u: u32,
    cands: &mut Vec<SiteCandidate>,
) -> Option<u32> {
    let p = st.p;
    let graph = p.graph;
    let pod = &p.pods[u as usize];
    let class = &p.classes[pod.class as usize];
    let mut terms: Vec<SiteTerm<'_>> = Vec::with_capacity(pod.cons.len());
    for c in &pod.cons {
        let con = &p.cons[*c as usize];
        let ConKind::Pair(t) = con.kind else {
            continue;
        };
        let mut term = SiteTerm {
            table: t,
            fixed_value: con.fixed_value,
            others: Vec::new(),
            ahead: Vec::new(),
        };
        for f in &con.fixed {
            match f {
                Location::Node(n) => term.others.push(graph.site_of(*n).0),
                Location::Site(s) => term.others.push(s.0),
            }
        }
        for q in &con.pods {
            if *q == u {
                continue;
            }
            let node = st.node_of[*q as usize];
            if node != NONE {
                term.others.push(p.node_site[node as usize]);
            } else if let Some(reach) = p.reach.get(&(t, p.pods[*q as usize].class)) {
                term.ahead.push(reach);
            }
        }
        term.others.sort_unstable();
        term.others.dedup();
        terms.push(term);
    }
    let mut peers = Vec::new();
    peer_nodes(st, u, &mut peers);

    cands.clear();
    for s in &class.sites {
        let g = site_guided(p, &terms, *s);
        if g.actual_violations == 0 {
            cands.push(SiteCandidate {
                guided: g,
                site: *s,
                node: NONE,
            });
        }
    }
    for x in &peers {
        if class.eligible[*x as usize] && st.fits(u, *x) && st.allowed(u, *x) {
            let g = guided_rules(st, u, *x, true);
            if g.actual_violations == 0 {
                cands.push(SiteCandidate {
                    guided: g,
                    site: p.node_site[*x as usize],
                    node: *x,
                });
            }
        }
    }
    // The best score first; most pods take a candidate of it. Its candidates' nodes are
    // found (a site's only now), and the lowest id not over-subscribing a link wins.
    let mut tied: Vec<u32> = Vec::new();
    while let Some(first) = cands.first().copied() {
        let best = cands.iter().skip(1).fold(first.guided, |b, c| {
            if c.guided.order(&b).is_lt() {
                c.guided
            } else {
                b
            }
        });
        tied.clear();
        cands.retain(|c| {
            if c.guided.order(&best).is_ne() {
                return true;
            }
            if c.node != NONE {
                tied.push(c.node);
            } else if let Some(x) = site_node(st, u, &class.by_site[c.site as usize], &[])
                && peers.binary_search(&x).is_err()
            {
                tied.push(x);
            }
            false
        });
        tied.sort_unstable();
        tied.dedup();
        if let Some(x) = tied.iter().copied().find(|x| !st.overbooks(u, *x)) {
            return Some(x);
        }
    }
    None
}

/// [`guided_rules`] with look-ahead for a node of site `s` that hosts none of the peers.
#[inline]
fn site_guided(p: &super::compile::Problem<'_>, terms: &[SiteTerm<'_>], s: u32) -> Guided {
    let mut g = Guided {
        actual_violations: 0,
        violations: 0,
        limit: 0,
        cost: 0.0,
    };
    let here = Location::Site(crate::network::SiteId(s));
    for term in terms {
        let mut actual = term.fixed_value;
        for o in &term.others {
            actual = actual.max(p.pair_cost(
                term.table,
                here,
                Location::Site(crate::network::SiteId(*o)),
            ));
        }
        let ahead = term
            .ahead
            .iter()
            .fold(0.0f64, |a, reach| a.max(reach[s as usize]));
        g.add(actual, ahead);
    }
    g
}

/// The node of a site that takes `u` best by capacity (least cpu left, then id) among
/// those hosting none of its peers (`peers` sorted) and breaking no rule between pods.
fn site_node(st: &State<'_, '_>, u: u32, nodes: &[u32], peers: &[u32]) -> Option<u32> {
    let p = st.p;
    let cpu = p.pods[u as usize].req[0];
    let key = |x: u32| -> Option<(i64, u32)> {
        (st.fits(u, x) && peers.binary_search(&x).is_err())
            .then(|| (st.free[x as usize * p.d()] - cpu, x))
    };
    let best = nodes.iter().filter_map(|x| key(*x)).min()?;
    if st.allowed(u, best.1) {
        return Some(best.1);
    }
    let mut keys: Vec<(i64, u32)> = nodes.iter().filter_map(|x| key(*x)).collect();
    keys.sort_unstable();
    keys.into_iter().map(|k| k.1).find(|x| st.allowed(u, *x))
}

/// The sites of a class by their first eligible node: the order in which the node-by-node
/// search meets them (ties between equal moves go to the lowest node id).
pub(crate) fn sites_by_first_node(class: &super::compile::Class) -> Vec<u32> {
    let mut sites = class.sites.clone();
    sites.sort_by_key(|s| class.by_site[*s as usize][0]);
    sites
}

/// The nodes of `u`'s placed peers and of the running pods its bindings target, sorted.
fn peer_nodes(st: &State<'_, '_>, u: u32, out: &mut Vec<u32>) {
    let p = st.p;
    out.clear();
    for c in &p.pods[u as usize].cons {
        let con = &p.cons[*c as usize];
        for f in &con.fixed {
            if let Location::Node(n) = f {
                out.push(n.0);
            }
        }
        for q in &con.pods {
            let node = st.node_of[*q as usize];
            if *q != u && node != NONE {
                out.push(node);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
}

/// The local search's best move of `u` (which [`judged_by_site`] and whose score has a
/// floor, [`State::floor_applies`]) better than `best`, judged site by site: every node of
/// a site hosting none of `u`'s peers gives the move the same score (pairwise costs and
/// link paths depend on sites, and `u` takes part in no rule between pods), so one floor
/// per site says whether the site can win, and only then is a node chosen there by
/// capacity and the move scored. The peers' nodes are tried one by one.
///
/// `sites` are the sites of `u`'s class in the order their moves are tried (the first of
/// equally good moves wins): [`sites_by_first_node`].
pub(crate) fn best_move_by_site(
    st: &State<'_, '_>,
    u: u32,
    sites: &[u32],
    best: &mut (super::objective::Score, u32),
    peers: &mut Vec<u32>,
) {
    let p = st.p;
    let class = &p.classes[p.pods[u as usize].class as usize];
    let here = st.node_of[u as usize];
    peer_nodes(st, u, peers);
    let consider = |x: u32, best: &mut (super::objective::Score, u32)| {
        if let Some(floor) = st.score_floor_if(u, x)
            && !floor.better(&best.0)
        {
            return;
        }
        let s = st.score_if(u, x);
        if s.better(&best.0) {
            *best = (s, x);
        }
    };
    for s in sites {
        let nodes = &class.by_site[*s as usize];
        let Some(any) = nodes.iter().find(|x| peers.binary_search(x).is_err()) else {
            continue;
        };
        if let Some(floor) = st.score_floor_if(u, *any)
            && !floor.better(&best.0)
        {
            continue;
        }
        if let Some(x) = site_node(st, u, nodes, peers)
            && x != here
        {
            consider(x, best);
        }
    }
    for x in peers.iter() {
        if *x != here && class.eligible[*x as usize] && st.fits(u, *x) && st.allowed(u, *x) {
            consider(*x, best);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::compile::Problem;
    use super::super::instances::{self, Rng, Size};
    use super::*;

    /// Generated instances with the benchmark's rules between pods (anti-affinity by
    /// hostname, spread over sites), several nodes a site, enough load that nodes fill.
    fn instance(seed: u64) -> instances::Instance {
        let size = Size {
            pods: 80,
            nodes: 120,
            sites: 10,
            load: 0.8,
        };
        let mut inst = instances::generate(size, seed);
        instances::add_pod_rules(&mut inst);
        inst
    }

    /// The candidate the node-by-node construction picks (every site's best node and the
    /// peers' nodes, each scored): its score and node, `None` when none is allowed.
    fn node_by_node(st: &State<'_, '_>, u: u32) -> Option<(Guided, u32)> {
        let mut cands = Vec::new();
        candidates(st, u, &mut cands);
        let mut scored: Vec<(Guided, u32)> = cands
            .iter()
            .map(|x| (guided_rules(st, u, *x, true), *x))
            .filter(|(g, _)| g.actual_violations == 0)
            .collect();
        first_without_overbooking(st, u, &mut scored, Guided::order)
    }

    /// Judging a pod site by site picks the node the node-by-node construction picks (a
    /// valid candidate: it fits, breaks no rule between pods, no actual Violation, no link
    /// over-subscribed), and finds one whenever that does, at every step of constructions
    /// over generated instances.
    #[test]
    fn judging_by_site_picks_as_well_as_node_by_node() {
        let mut steps = 0;
        for seed in 1..=6 {
            let inst = instance(seed);
            let input = inst.input();
            let p = Problem::build(&input);
            let mut st = State::new(&p);
            let mut scratch = Vec::new();
            for u in 0..p.pods.len() as u32 {
                if !judged_by_site(&p, u) {
                    continue;
                }
                let reference = node_by_node(&st, u);
                let chosen = choose_by_site(&st, u, &mut scratch);
                match (reference, chosen) {
                    (None, None) => {}
                    (Some((r, node)), Some(x)) => {
                        assert!(st.fits(u, x) && st.allowed(u, x) && !st.overbooks(u, x));
                        let g = guided_rules(&st, u, x, true);
                        assert_eq!(g.actual_violations, 0);
                        assert_eq!(
                            x, node,
                            "seed {seed} pod {u}: by site {g:?}, node by node {r:?}"
                        );
                        st.place(u, x);
                        steps += 1;
                    }
                    (r, x) => panic!("seed {seed} pod {u}: node by node {r:?}, by site {x:?}"),
                }
            }
        }
        assert!(steps > 300, "{steps} placements compared");
    }

    /// The local search's move judged by site is at least as good as the best move over
    /// every site's best node and the peers' nodes, and its score is the move's own, from
    /// random partial plans of generated instances.
    #[test]
    fn moves_judged_by_site_are_as_good_as_node_by_node() {
        let mut compared = 0;
        let mut moved = 0;
        for seed in 1..=6 {
            let inst = instance(seed);
            let input = inst.input();
            let p = Problem::build(&input);
            let mut rng = Rng::new(seed);
            let mut st = State::new(&p);
            // A random partial plan: each pod on a random node it fits, or left out.
            for u in 0..p.pods.len() as u32 {
                let class = &p.classes[p.pods[u as usize].class as usize];
                let site = class.sites[rng.below(class.sites.len())];
                let nodes = &class.by_site[site as usize];
                let x = nodes[rng.below(nodes.len())];
                if rng.chance(0.8) && st.fits(u, x) && st.allowed(u, x) {
                    st.place(u, x);
                }
            }
            let mut peers = Vec::new();
            let mut cands = Vec::new();
            for u in 0..p.pods.len() as u32 {
                if !judged_by_site(&p, u) || !st.floor_applies(u) {
                    continue;
                }
                let here = st.node_of[u as usize];
                let mut by_site = (st.score, here);
                let sites = sites_by_first_node(&p.classes[p.pods[u as usize].class as usize]);
                best_move_by_site(&st, u, &sites, &mut by_site, &mut peers);
                candidates(&st, u, &mut cands);
                let mut reference = st.score;
                for x in &cands {
                    if *x != here {
                        let s = st.score_if(u, *x);
                        if s.better(&reference) {
                            reference = s;
                        }
                    }
                }
                assert!(
                    !reference.better(&by_site.0),
                    "seed {seed} pod {u}: by site {:?}, node by node {reference:?}",
                    by_site.0
                );
                if by_site.1 != here {
                    assert!(st.fits(u, by_site.1));
                    assert_eq!(
                        st.score_if(u, by_site.1).compare(&by_site.0),
                        std::cmp::Ordering::Equal
                    );
                    moved += 1;
                }
                compared += 1;
            }
        }
        assert!(
            compared > 300 && moved > 20,
            "{compared} compared, {moved} moved"
        );
    }
}
