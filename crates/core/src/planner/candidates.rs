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
        if actual.is_infinite() {
            g.actual_violations += 1;
        }
        let v = actual.max(ahead);
        if v.is_infinite() {
            g.violations += 1;
        } else {
            if v > 0.0 {
                g.limit += 1;
            }
            g.cost += v;
        }
    }
    g
}
