//! Placement rules between pods (kube-scheduler's InterPodAffinity, PodTopologySpread and
//! NodePorts), compiled into *groups* whose state is a few counters per topology domain,
//! so that placing or removing a pod costs O(rules of that pod), never a scan of the
//! cluster's pods.
//!
//! Semantics: a plan is valid when every planned pod, judged against all the other pods of
//! the plan and the running pods as existing pods, passes kube-scheduler's filters:
//! - required pod affinity: on a node with every term's topology key, some other pod
//!   matching *all* the terms in the same domain of each term's key; or, as for the first
//!   pod of a group that has affinity to itself, no other pod matches them all and the pod
//!   matches its own terms;
//! - required pod anti-affinity: no other pod matching the term in the node's domain (a
//!   node without the key passes); and symmetry: no pod (running or planned) whose
//!   required anti-affinity term matches the pod in that pod's domain;
//! - topology spread with `DoNotSchedule`: the node has the key, and the count of matching
//!   pods (of the pod's namespace, on nodes that pass the policies) in the node's domain
//!   minus the least count over the eligible domains (0 when there are fewer than
//!   `minDomains`) is at most `maxSkew`;
//! - host ports: no two pods on a node with the same port and protocol on overlapping
//!   addresses.
//!
//! Each group keeps whether it is broken; the state's `broken` count enters the objective
//! with the binding Violations (a plan never has one). Preferred terms and
//! `ScheduleAnyway` give `soft` penalties (the objective level after rules in Limit).

use std::collections::{BTreeMap, HashMap};

use super::NONE;
use super::{PlanInput, PlanNode};
use crate::network::NetworkGraph;
use crate::placement::{
    HostPort, Namespaces, NodeFacts, PodAffinityTerm, SpreadConstraint, spread_counts_node,
};
use crate::selector::Selector;

/// What one unit of skew beyond a `ScheduleAnyway` constraint's `maxSkew` costs in the
/// soft level: as much as an unmet preferred term of the largest weight (100).
pub(crate) const SKEW_WEIGHT: i64 = 100;

#[derive(Clone, Debug)]
enum Kind {
    /// Required affinity; a pod is counted when it matches every term.
    Affinity,
    Anti,
    Spread {
        max_skew: u32,
        min_domains: u32,
        hard: bool,
    },
    Prefer {
        weight: i64,
        anti: bool,
    },
}

/// Conditions a pod must meet to be counted: each a selector (`None` matches nothing) and
/// the namespaces it looks at.
type Conds = Vec<(Option<Selector>, Namespaces)>;

struct Group {
    kind: Kind,
    conds: Conds,
    /// Topology key of each term (one but for joint affinity terms).
    keys: Vec<u32>,
    /// Spread: the nodes whose pods are counted (policies and keys); `None`: all.
    nodes_ok: Option<Vec<bool>>,
    /// Spread: domains with an eligible node.
    domains: u32,
    /// For messages: `required pod anti-affinity (topologyKey kubernetes.io/hostname)`.
    label: String,
}

impl Group {
    fn matches(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.conds
            .iter()
            .all(|(s, ns)| ns.contains(namespace) && s.as_ref().is_some_and(|s| s.matches(labels)))
    }
}

/// The part of a pod the rules look at.
#[derive(Clone, Debug, Default)]
pub(crate) struct PodInc {
    /// Groups that count the pod.
    counted: Vec<u32>,
    /// Groups whose rule the pod carries, and whether it is counted by it too.
    holds: Vec<(u32, bool)>,
    ports: Vec<HostPort>,
    /// Takes part in some rule: its moves must go through the rule state.
    pub involved: bool,
    /// Carries required pod affinity (best placed after the pods it wants).
    pub affine: bool,
    /// A rule it breaks now may be repaired by pods placed later (affinity, spread).
    pub repairable: bool,
}

pub(crate) struct Rules {
    pub active: bool,
    key_names: Vec<String>,
    /// Per topology key, per graph node: the domain (`NONE`: no such label).
    domain: Vec<Vec<u32>>,
    /// Per topology key, per domain: how many nodes it has.
    domain_size: Vec<Vec<u32>>,
    groups: Vec<Group>,
    pub pods: Vec<PodInc>,
    /// The state with the running pods.
    pub base: RuleState,
    /// Nodes where a running pod takes part in a rule.
    pub special: Vec<bool>,
}

#[derive(Clone, Debug, Default)]
struct GroupState {
    c: Vec<Vec<u32>>,
    hs: Vec<Vec<u32>>,
    hn: Vec<Vec<u32>>,
    total: u32,
    holders: u32,
    nokey_holders: u32,
    bad_a: i64,
    bad_b: i64,
    domain_soft: i64,
    /// Spread: count -> number of eligible domains with that count.
    hist: BTreeMap<u32, u32>,
    /// Spread: count -> number of domains holding a holder.
    hist_h: BTreeMap<u32, u32>,
    /// How broken: 0 or 1, or for anti-affinity the pairs that break it.
    broken: i64,
    soft: i64,
}

/// The rules' view of a placement: counters per group and domain, host ports per node.
#[derive(Clone, Debug, Default)]
pub(crate) struct RuleState {
    groups: Vec<GroupState>,
    ports: HashMap<u32, Vec<HostPort>>,
    port_conflicts: i64,
    /// The sum of the groups' `broken`, kept as they change.
    groups_broken: i64,
    /// Broken groups plus host port conflicts.
    pub broken: i64,
    pub soft: i64,
}

impl Rules {
    pub fn build(
        input: &PlanInput<'_>,
        graph: &NetworkGraph,
        plan_node: &[Option<usize>],
        pending: &[usize],
    ) -> Rules {
        let n = graph.node_count();
        let node_of = |id: usize| plan_node[id].map(|i| &input.nodes[i]);
        let mut rules = Rules {
            active: false,
            key_names: Vec::new(),
            domain: Vec::new(),
            domain_size: Vec::new(),
            groups: Vec::new(),
            pods: vec![PodInc::default(); pending.len()],
            base: RuleState::default(),
            special: vec![false; n],
        };
        let any = pending
            .iter()
            .any(|i| !input.pending[*i].pod_rules.is_empty())
            || input.placed.iter().any(|p| !p.pod_rules.is_empty());
        if !any {
            return rules;
        }
        rules.active = true;
        let mut key_index: HashMap<String, u32> = HashMap::new();
        let mut key = |rules: &mut Rules, name: &str| -> u32 {
            if let Some(k) = key_index.get(name) {
                return *k;
            }
            let mut values: HashMap<&str, u32> = HashMap::new();
            let mut domain = vec![NONE; n];
            let mut sizes = Vec::new();
            for (id, slot) in domain.iter_mut().enumerate() {
                if let Some(value) = node_of(id).and_then(|node| node.labels.get(name)) {
                    let next = values.len() as u32;
                    let d = *values.entry(value.as_str()).or_insert(next);
                    if d == next {
                        sizes.push(0);
                    }
                    sizes[d as usize] += 1;
                    *slot = d;
                }
            }
            let k = rules.key_names.len() as u32;
            rules.key_names.push(name.to_string());
            rules.domain.push(domain);
            rules.domain_size.push(sizes);
            key_index.insert(name.to_string(), k);
            k
        };

        // Groups, deduplicated by what they count and how they judge.
        let mut group_index: HashMap<String, u32> = HashMap::new();
        let mut nodes_ok_cache: HashMap<String, (Vec<bool>, u32)> = HashMap::new();
        let mut holds: Vec<Vec<u32>> = vec![Vec::new(); pending.len()];
        let mut running_holds: Vec<Vec<u32>> = vec![Vec::new(); input.placed.len()];
        let mut add = |rules: &mut Rules,
                       fingerprint: String,
                       make: &mut dyn FnMut(&mut Rules) -> Group|
         -> u32 {
            if let Some(g) = group_index.get(&fingerprint) {
                return *g;
            }
            let group = make(rules);
            rules.groups.push(group);
            let g = rules.groups.len() as u32 - 1;
            group_index.insert(fingerprint, g);
            g
        };
        let term_cond = |t: &PodAffinityTerm| (t.selector.clone(), t.namespaces.clone());
        for (u, i) in pending.iter().enumerate() {
            let pod = &input.pending[*i];
            let r = &pod.pod_rules;
            if !r.affinity.is_empty() {
                let conds: Conds = r.affinity.iter().map(term_cond).collect();
                let names: Vec<&str> = r.affinity.iter().map(|t| t.topology_key.as_str()).collect();
                let g = add(&mut rules, format!("A{conds:?}{names:?}"), &mut |rules| {
                    Group {
                        kind: Kind::Affinity,
                        conds: conds.clone(),
                        keys: names.iter().map(|k| key(rules, k)).collect(),
                        nodes_ok: None,
                        domains: 0,
                        label: format!("required pod affinity (topologyKey {})", names.join(", ")),
                    }
                });
                holds[u].push(g);
            }
            for t in &r.anti_affinity {
                holds[u].push(anti_group(&mut rules, &mut add, &mut key, t));
            }
            for (weighted, anti) in r
                .preferred_affinity
                .iter()
                .map(|w| (w, false))
                .chain(r.preferred_anti_affinity.iter().map(|w| (w, true)))
            {
                let t = &weighted.term;
                let g = add(
                    &mut rules,
                    format!("P{anti}{}{t:?}", weighted.weight),
                    &mut |rules| Group {
                        kind: Kind::Prefer {
                            weight: i64::from(weighted.weight),
                            anti,
                        },
                        conds: vec![term_cond(t)],
                        keys: vec![key(rules, &t.topology_key)],
                        nodes_ok: None,
                        domains: 0,
                        label: format!("preferred pod affinity (topologyKey {})", t.topology_key),
                    },
                );
                holds[u].push(g);
            }
            for c in &r.spread {
                let same: Vec<&str> = r
                    .spread
                    .iter()
                    .filter(|o| o.hard == c.hard)
                    .map(|o| o.topology_key.as_str())
                    .collect();
                let filter = format!(
                    "{:?}{:?}{:?}{}{}{same:?}",
                    pod.node_selector,
                    pod.affinity,
                    pod.tolerations,
                    c.honor_node_affinity,
                    c.honor_node_taints
                );
                let k = key(&mut rules, &c.topology_key);
                let (ok, domains) = nodes_ok_cache
                    .entry(format!("{filter}{k}"))
                    .or_insert_with(|| {
                        let ok: Vec<bool> = (0..n)
                            .map(|id| {
                                node_of(id).is_some_and(|node| {
                                    same.iter().all(|k| node.labels.contains_key(*k))
                                        && spread_counts_node(
                                            c,
                                            facts(node),
                                            &pod.node_selector,
                                            &pod.affinity,
                                            &pod.tolerations,
                                        )
                                })
                            })
                            .collect();
                        let mut seen: Vec<u32> = (0..n)
                            .filter(|id| ok[*id])
                            .map(|id| rules.domain[k as usize][id])
                            .collect();
                        seen.sort_unstable();
                        seen.dedup();
                        (ok, seen.len() as u32)
                    })
                    .clone();
                let cond: Conds = vec![(
                    c.selector.clone(),
                    Namespaces::Only([pod.key.namespace.clone()].into()),
                )];
                let g = add(&mut rules, format!("S{c:?}{cond:?}{filter}"), &mut |_| {
                    spread_group(c, cond.clone(), k, ok.clone(), domains)
                });
                holds[u].push(g);
            }
        }
        for (r, pod) in input.placed.iter().enumerate() {
            for t in &pod.pod_rules.anti_affinity {
                running_holds[r].push(anti_group(&mut rules, &mut add, &mut key, t));
            }
        }

        // Who each group counts.
        let mut base = RuleState {
            groups: rules
                .groups
                .iter()
                .map(|g| {
                    let sizes = |k: &u32| vec![0u32; rules.domain_size[*k as usize].len()];
                    let mut st = GroupState {
                        c: g.keys.iter().map(sizes).collect(),
                        hs: g.keys.iter().map(sizes).collect(),
                        hn: g.keys.iter().map(sizes).collect(),
                        ..GroupState::default()
                    };
                    if let Kind::Spread { .. } = g.kind {
                        st.hist.insert(0, g.domains);
                    }
                    st
                })
                .collect(),
            ..RuleState::default()
        };
        for (u, i) in pending.iter().enumerate() {
            let pod = &input.pending[*i];
            let inc = &mut rules.pods[u];
            for (g, group) in rules.groups.iter().enumerate() {
                if group.matches(&pod.key.namespace, &pod.labels) {
                    inc.counted.push(g as u32);
                }
            }
            for g in &holds[u] {
                let own = inc.counted.contains(g);
                if !inc.holds.contains(&(*g, own)) {
                    inc.holds.push((*g, own));
                }
            }
            inc.ports = pod.pod_rules.host_ports.clone();
            inc.affine = !pod.pod_rules.affinity.is_empty();
            inc.involved =
                !inc.counted.is_empty() || !inc.holds.is_empty() || !inc.ports.is_empty();
            inc.repairable = inc
                .counted
                .iter()
                .chain(inc.holds.iter().map(|(g, _)| g))
                .any(|g| {
                    matches!(
                        rules.groups[*g as usize].kind,
                        Kind::Affinity | Kind::Spread { .. }
                    )
                });
        }
        for (r, pod) in input.placed.iter().enumerate() {
            let Some(id) = graph.node_id(&pod.node) else {
                continue;
            };
            let mut inc = PodInc {
                ports: pod.pod_rules.host_ports.clone(),
                ..PodInc::default()
            };
            for (g, group) in rules.groups.iter().enumerate() {
                if group.matches(&pod.key.namespace, &pod.labels) {
                    inc.counted.push(g as u32);
                }
            }
            for g in &running_holds[r] {
                let own = inc.counted.contains(g);
                inc.holds.push((*g, own));
            }
            if !inc.counted.is_empty() || !inc.holds.is_empty() || !inc.ports.is_empty() {
                rules.special[id.index()] = true;
                base.apply(&rules, &inc, id.0, 1);
            }
        }
        rules.base = base;
        rules
    }

    /// The domain of `node` for topology key `k`.
    #[inline]
    fn dom(&self, k: u32, node: u32) -> u32 {
        self.domain[k as usize][node as usize]
    }

    /// What makes nodes differ for the rules: each key's domain, unless the node is alone
    /// in it (empty nodes alone in their domains are alike).
    pub fn sym_part(&self, node: u32) -> Vec<u32> {
        (0..self.domain.len() as u32)
            .map(|k| {
                let d = self.dom(k, node);
                if d == NONE {
                    NONE - 1
                } else if self.domain_size[k as usize][d as usize] == 1 {
                    NONE
                } else {
                    d
                }
            })
            .collect()
    }

    /// Why placing `u` on `node` breaks a rule, given the state before (`None`: it does
    /// not).
    pub fn explain(&self, rs: &mut RuleState, u: u32, node: u32) -> Option<String> {
        let before: Vec<i64> = rs.groups.iter().map(|g| g.broken).collect();
        let conflicts = rs.port_conflicts;
        let inc = &self.pods[u as usize];
        rs.apply(self, inc, node, 1);
        let mut why = None;
        if rs.port_conflicts > conflicts {
            let port = inc.ports.iter().find(|p| {
                rs.ports
                    .get(&node)
                    .is_some_and(|list| list.iter().filter(|q| q.conflicts(p)).count() > 1)
            });
            why = port.map(|p| format!("hostPort {}/{} is taken", p.port, p.protocol));
        }
        if why.is_none() {
            why = rs
                .groups
                .iter()
                .zip(&before)
                .position(|(g, was)| g.broken > *was)
                .map(|g| self.groups[g].label.clone());
        }
        rs.apply(self, inc, node, -1);
        why
    }
}

/// Why each node of `input` breaks a rule between pods for `input.pending[pod]`, the other
/// pending pods on the nodes `others` names (`edgeplane explain`): node name -> the rule it
/// breaks. Nodes that break none are absent.
pub(crate) fn pod_rule_verdicts(
    input: &PlanInput<'_>,
    others: &BTreeMap<super::PodKey, String>,
    pod: usize,
) -> BTreeMap<String, String> {
    let graph = input.view.graph();
    let mut plan_node = vec![None; graph.node_count()];
    for (i, node) in input.nodes.iter().enumerate() {
        if let Some(id) = graph.node_id(&node.name) {
            plan_node[id.index()] = Some(i);
        }
    }
    let pending: Vec<usize> = (0..input.pending.len()).collect();
    let rules = Rules::build(input, graph, &plan_node, &pending);
    let mut verdicts = BTreeMap::new();
    if !rules.active || pod >= input.pending.len() {
        return verdicts;
    }
    let mut state = rules.base.clone();
    for (j, other) in input.pending.iter().enumerate() {
        let node = others.get(&other.key).and_then(|n| graph.node_id(n));
        if let (true, Some(node)) = (j != pod, node) {
            state.apply(&rules, &rules.pods[j], node.index() as u32, 1);
        }
    }
    for node in &input.nodes {
        let Some(id) = graph.node_id(&node.name) else {
            continue;
        };
        if let Some(why) = rules.explain(&mut state, pod as u32, id.index() as u32) {
            verdicts.insert(node.name.clone(), why);
        }
    }
    verdicts
}

fn facts(node: &PlanNode) -> NodeFacts<'_> {
    NodeFacts {
        name: &node.name,
        labels: &node.labels,
        taints: &node.taints,
        unschedulable: !node.schedulable,
    }
}

fn anti_group(
    rules: &mut Rules,
    add: &mut impl FnMut(&mut Rules, String, &mut dyn FnMut(&mut Rules) -> Group) -> u32,
    key: &mut impl FnMut(&mut Rules, &str) -> u32,
    t: &PodAffinityTerm,
) -> u32 {
    add(rules, format!("N{t:?}"), &mut |rules| Group {
        kind: Kind::Anti,
        conds: vec![(t.selector.clone(), t.namespaces.clone())],
        keys: vec![key(rules, &t.topology_key)],
        nodes_ok: None,
        domains: 0,
        label: format!(
            "required pod anti-affinity (topologyKey {})",
            t.topology_key
        ),
    })
}

fn spread_group(c: &SpreadConstraint, conds: Conds, k: u32, ok: Vec<bool>, domains: u32) -> Group {
    Group {
        kind: Kind::Spread {
            max_skew: c.max_skew.max(1) as u32,
            min_domains: c.min_domains.unwrap_or(0).max(0) as u32,
            hard: c.hard,
        },
        conds,
        keys: vec![k],
        nodes_ok: Some(ok),
        domains,
        label: format!(
            "topology spread constraint (topologyKey {}, maxSkew {}{})",
            c.topology_key,
            c.max_skew,
            if c.hard { "" } else { ", ScheduleAnyway" }
        ),
    }
}

fn hist_move(hist: &mut BTreeMap<u32, u32>, from: Option<u32>, to: Option<u32>) {
    if from == to {
        return;
    }
    if let Some(f) = from
        && let Some(m) = hist.get_mut(&f)
    {
        *m -= 1;
        if *m == 0 {
            hist.remove(&f);
        }
    }
    if let Some(t) = to {
        *hist.entry(t).or_insert(0) += 1;
    }
}

impl RuleState {
    /// Adds (`sign` 1) or removes (-1) a pod on `node`, updating every group it touches.
    pub(crate) fn apply(&mut self, rules: &Rules, inc: &PodInc, node: u32, sign: i32) {
        if !inc.ports.is_empty() {
            let list = self.ports.entry(node).or_default();
            for port in &inc.ports {
                if sign > 0 {
                    self.port_conflicts += list.iter().filter(|q| q.conflicts(port)).count() as i64;
                    list.push(port.clone());
                } else if let Some(at) = list.iter().position(|q| q == port) {
                    list.swap_remove(at);
                    self.port_conflicts -= list.iter().filter(|q| q.conflicts(port)).count() as i64;
                }
            }
        }
        // A pod both counted and holding a group touches it once.
        for g in &inc.counted {
            let holder = inc.holds.iter().find(|(h, _)| h == g).map(|(_, own)| *own);
            self.touch(rules, *g, node, true, holder, sign);
        }
        for (g, own) in &inc.holds {
            if !*own {
                self.touch(rules, *g, node, false, Some(false), sign);
            }
        }
        self.broken = self.port_conflicts + self.groups_broken;
    }

    fn touch(
        &mut self,
        rules: &Rules,
        g: u32,
        node: u32,
        counted: bool,
        holder: Option<bool>,
        sign: i32,
    ) {
        let group = &rules.groups[g as usize];
        let gs = &mut self.groups[g as usize];
        let counted = counted && group.nodes_ok.as_ref().is_none_or(|ok| ok[node as usize]);
        let mut any_key = false;
        let mut missing_key = false;
        for (i, k) in group.keys.iter().enumerate() {
            let d = rules.dom(*k, node);
            if d == NONE {
                missing_key = true;
                continue;
            }
            any_key = true;
            let d = d as usize;
            let old = (gs.c[i][d], gs.hs[i][d], gs.hn[i][d]);
            let step = |v: u32| v.wrapping_add_signed(sign);
            if counted {
                gs.c[i][d] = step(gs.c[i][d]);
            }
            match holder {
                Some(true) => gs.hs[i][d] = step(gs.hs[i][d]),
                Some(false) => gs.hn[i][d] = step(gs.hn[i][d]),
                None => {}
            }
            let new = (gs.c[i][d], gs.hs[i][d], gs.hn[i][d]);
            match group.kind {
                Kind::Affinity => {
                    let a = |(c, _, hn): (u32, u32, u32)| i64::from(hn > 0 && c < 1);
                    let b = |(c, hs, _): (u32, u32, u32)| i64::from(hs > 0 && c < 2);
                    gs.bad_a += a(new) - a(old);
                    gs.bad_b += b(new) - b(old);
                }
                Kind::Anti => {
                    // Pairs (holder, other matching pod) in the domain: running pods may
                    // break a rule already, and a plan must not add to it.
                    let bad = |(c, hs, hn): (u32, u32, u32)| {
                        let c = i64::from(c);
                        i64::from(hn) * c + i64::from(hs) * (c - 1).max(0)
                    };
                    gs.bad_a += bad(new) - bad(old);
                }
                Kind::Prefer { weight, anti } => {
                    let unmet = |n: i64| if anti { n > 0 } else { n <= 0 };
                    let pen = |(c, hs, hn): (u32, u32, u32)| {
                        let c = i64::from(c);
                        weight
                            * (i64::from(hn) * i64::from(unmet(c))
                                + i64::from(hs) * i64::from(unmet(c - 1)))
                    };
                    gs.domain_soft += pen(new) - pen(old);
                }
                Kind::Spread { .. } => {
                    if old.0 != new.0 && group.nodes_ok.is_some() {
                        hist_move(&mut gs.hist, Some(old.0), Some(new.0));
                    }
                    let held = |(c, hs, hn): (u32, u32, u32)| (hs + hn > 0).then_some(c);
                    hist_move(&mut gs.hist_h, held(old), held(new));
                }
            }
        }
        if counted && any_key {
            gs.total = gs.total.wrapping_add_signed(sign);
        }
        if holder.is_some() {
            gs.holders = gs.holders.wrapping_add_signed(sign);
            if missing_key {
                gs.nokey_holders = gs.nokey_holders.wrapping_add_signed(sign);
            }
        }
        let (broken, soft) = judge(group, gs);
        self.groups_broken += broken - gs.broken;
        gs.broken = broken;
        self.soft += soft - gs.soft;
        gs.soft = soft;
    }
}

/// How broken a group is, and its soft penalty, from its counters.
fn judge(group: &Group, gs: &GroupState) -> (i64, i64) {
    match group.kind {
        Kind::Affinity => (
            i64::from(gs.nokey_holders > 0 || gs.bad_a > 0 || (gs.bad_b > 0 && gs.total != 1)),
            0,
        ),
        Kind::Anti => (gs.bad_a, 0),
        Kind::Prefer { weight, anti } => {
            let nokey = if anti {
                0
            } else {
                weight * i64::from(gs.nokey_holders)
            };
            (0, gs.domain_soft + nokey)
        }
        Kind::Spread {
            max_skew,
            min_domains,
            hard,
        } => {
            if gs.holders == 0 {
                return (0, 0);
            }
            let least = if group.domains < min_domains {
                0
            } else {
                gs.hist.keys().next().copied().unwrap_or(0)
            };
            if hard {
                let most = gs.hist_h.keys().next_back().copied().unwrap_or(0);
                (
                    i64::from(gs.nokey_holders > 0 || most > least + max_skew),
                    0,
                )
            } else {
                let most = gs.hist.keys().next_back().copied().unwrap_or(0);
                let excess = i64::from(most) - i64::from(least) - i64::from(max_skew);
                (0, SKEW_WEIGHT * excess.max(0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hist_moves_keep_counts() {
        let mut h = BTreeMap::from([(0, 3)]);
        hist_move(&mut h, Some(0), Some(1));
        hist_move(&mut h, None, Some(1));
        assert_eq!(h, BTreeMap::from([(0, 2), (1, 2)]));
        hist_move(&mut h, Some(1), None);
        hist_move(&mut h, Some(1), Some(0));
        assert_eq!(h, BTreeMap::from([(0, 3)]));
    }
}
