//! The planner's internal problem: dense ids, flat resource vectors, eligibility classes,
//! and rules compiled into constraints whose value is a max over cost lookups.
//!
//! Costs are `f64`: 0 is Compliant, a positive finite cost is Limit, `INFINITY` is
//! Violation (or no path). A pairwise rule's cost between two sites is the worse of the two
//! directions, precomputed once per distinct rule (metric, request, limit), so a lookup is
//! O(1); a node rule's cost is precomputed per node.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use edgeplane_api::{Compliance, TargetKind};

use super::feasibility::static_misfit;
use super::lanes::{self, LaneCon};
use super::links::Links;
use super::podrules::Rules;
use super::{PendingPod, PlanInput, PlanNode, RuleProvider};
use crate::evaluate::{BuiltinRule, Score as NodeScore};
use crate::network::{Location, NetworkGraph, NodeId, PathMetric, SiteId};
use crate::placement::amount_fits;
use crate::rules::{Rule, builtin_metric};

pub(crate) const INF: f64 = f64::INFINITY;
pub(crate) use super::NONE;
/// Site tables beyond this many entries in all are not precomputed (costs are then
/// computed on each lookup).
const MAX_TABLE_ENTRIES: usize = 32 << 20;

/// A pairwise rule, with its costs between sites.
pub(crate) struct PairTable {
    metric: PathMetric,
    rule: Rule,
    same_node: f64,
    intra_site: f64,
    /// Row-major sites x sites, symmetric (worse direction); `None`: compute on lookup.
    sites: Option<Vec<f64>>,
}

/// How a constraint's value is computed.
pub(crate) enum ConKind {
    /// Max over every pair of members of the table's cost.
    Pair(u32),
    /// Max over pod members of the node table's cost.
    Node(u32),
    /// Max over pod members of their own table (per pending member position).
    External(Vec<Option<Vec<f64>>>),
    /// Judged along an ordered path (`Problem::lanes`).
    Lane(u32),
}

/// One (binding, policy, rule) triple that the plan can change.
pub(crate) struct Con {
    pub binding: u32,
    pub rule: u32,
    pub kind: ConKind,
    /// Pending pods among the targets.
    pub pods: Vec<u32>,
    /// Locations of targets that do not move (running pods, sites).
    pub fixed: Vec<Location>,
    /// The max over pairs (or nodes) of fixed members alone.
    pub fixed_value: f64,
}

pub(crate) struct PodC {
    pub input: usize,
    /// What leaving it unplaced costs: 1 for the lowest priority, and for each higher
    /// priority more than all pods of lower priorities together.
    pub weight: u128,
    pub req: Vec<i64>,
    pub class: u32,
    pub cons: Vec<u32>,
}

/// Pods with the same selector, affinity and tolerations share their eligible nodes.
pub(crate) struct Class {
    pub eligible: Vec<bool>,
    /// Eligible nodes of each site, in node order.
    pub by_site: Vec<Vec<u32>>,
    /// Sites with at least one eligible node.
    pub sites: Vec<u32>,
}

pub(crate) struct Problem<'a> {
    pub graph: &'a NetworkGraph,
    pub node_site: Vec<u32>,
    /// Resource dimensions: cpu, memory, pods, then extended resources by name.
    pub dims: Vec<String>,
    pub free0: Vec<i64>,
    pub pods: Vec<PodC>,
    pub classes: Vec<Class>,
    pub cons: Vec<Con>,
    pub pairs: Vec<PairTable>,
    pub node_tables: Vec<Vec<f64>>,
    /// Nodes with the same symmetry class are interchangeable while they hold the same
    /// free capacity and no pod of the plan.
    pub sym_class: Vec<u32>,
    /// Index of each graph node in `PlanInput::nodes` (`None`: not usable).
    pub plan_node: Vec<Option<usize>>,
    /// For a pairwise table and a pod class: per site, the least cost from that site to
    /// any site where the class has an eligible node (capacity ignored): a lower bound on
    /// the cost a peer of that class can reach.
    pub reach: HashMap<(u32, u32), Vec<f64>>,
    /// For each constraint, per pending member: the least unary cost over its eligible
    /// nodes (a lower bound).
    pub min_unary: Vec<Vec<f64>>,
    /// Placement rules between pods.
    pub rules: Rules,
    /// Link bandwidth reserved by bandwidth rules.
    pub links: Links,
    /// Rules judged along service chains' lanes.
    pub lanes: Vec<LaneCon>,
    pub warnings: Vec<String>,
}

impl<'a> Problem<'a> {
    pub fn build(input: &'a PlanInput<'a>) -> Problem<'a> {
        let view = input.view;
        let graph = view.graph();
        let n = graph.node_count();
        let mut warnings = Vec::new();
        let node_site: Vec<u32> = graph.nodes().map(|id| graph.site_of(id).0).collect();

        let mut plan_node = vec![None; n];
        for (i, node) in input.nodes.iter().enumerate() {
            match graph.node_id(&node.name) {
                Some(id) => plan_node[id.index()] = Some(i),
                None => warnings.push(format!(
                    "node {} is not in the network graph and receives no pod",
                    node.name
                )),
            }
        }

        // Resource dimensions: only extended resources that some pod asks for matter.
        let mut extended: BTreeSet<&str> = BTreeSet::new();
        for pod in &input.pending {
            extended.extend(
                pod.requests
                    .extended
                    .iter()
                    .filter(|(_, v)| **v > 0)
                    .map(|(k, _)| k.as_str()),
            );
        }
        let mut dims = vec!["cpu".to_string(), "memory".into(), "pods".into()];
        dims.extend(extended.iter().map(|s| s.to_string()));
        let d = dims.len();
        let vector = |r: &super::Resources| -> Vec<i64> {
            let mut v = vec![r.cpu_millis, r.memory_bytes, r.pods];
            v.extend(
                dims[3..]
                    .iter()
                    .map(|k| r.extended.get(k).copied().unwrap_or(0)),
            );
            v
        };
        let mut free0 = vec![0i64; n * d];
        for (id, slot) in plan_node.iter().enumerate() {
            if let Some(i) = slot {
                free0[id * d..(id + 1) * d].copy_from_slice(&vector(&input.nodes[*i].allocatable));
            }
        }
        let mut placed_at: HashMap<&super::PodKey, NodeId> = HashMap::new();
        for pod in &input.placed {
            match graph.node_id(&pod.node) {
                Some(id) => {
                    placed_at.insert(&pod.key, id);
                    let req = vector(&pod.requests);
                    for (k, r) in req.iter().enumerate() {
                        free0[id.index() * d + k] -= r;
                    }
                }
                None => warnings.push(format!(
                    "pod {} runs on node {}, which is not known",
                    pod.key, pod.node
                )),
            }
        }

        // Eligibility classes.
        let mut class_of: HashMap<ClassKey<'_>, u32> = HashMap::new();
        let mut classes: Vec<Class> = Vec::new();
        let mut pods = Vec::with_capacity(input.pending.len());
        let mut pending_index: HashMap<&super::PodKey, u32> = HashMap::new();
        for (i, pod) in input.pending.iter().enumerate() {
            if pending_index.contains_key(&pod.key) {
                warnings.push(format!("pod {} is listed twice; planned once", pod.key));
                continue;
            }
            let key = ClassKey {
                selector: &pod.node_selector,
                affinity: &pod.affinity,
                tolerations: &pod.tolerations,
            };
            let class = *class_of.entry(key).or_insert_with(|| {
                classes.push(eligibility(graph, &input.nodes, &plan_node, pod));
                (classes.len() - 1) as u32
            });
            pending_index.insert(&pod.key, pods.len() as u32);
            pods.push(PodC {
                input: i,
                weight: 1,
                req: vector(&pod.requests),
                class,
                cons: Vec::new(),
            });
        }

        priority_weights(input, &mut pods, &mut warnings);
        let order: Vec<usize> = pods.iter().map(|p| p.input).collect();
        let rules = Rules::build(input, graph, &plan_node, &order);

        // Constraints.
        let mut pair_index: HashMap<String, u32> = HashMap::new();
        let mut pairs: Vec<PairTable> = Vec::new();
        let mut node_index: HashMap<String, u32> = HashMap::new();
        let mut node_tables: Vec<Vec<f64>> = Vec::new();
        let mut cons = Vec::new();
        let mut special = vec![false; n];
        let mut any_external = false;
        let mut lane_cons: Vec<LaneCon> = Vec::new();
        let site_count = graph.site_count();
        for (b, binding) in input.bindings.iter().enumerate() {
            let mut pending_members = Vec::new();
            let mut fixed_nodes = Vec::new();
            let mut sites = Vec::new();
            let mut usable = true;
            for target in binding.targets.values() {
                match target.kind {
                    TargetKind::Pod => {
                        let key = super::PodKey::new(
                            target.namespace.as_deref().unwrap_or("default"),
                            &target.name,
                        );
                        if let Some(p) = pending_index.get(&key) {
                            pending_members.push(*p);
                        } else if let Some(id) = placed_at.get(&key) {
                            fixed_nodes.push(*id);
                        } else {
                            usable = false;
                        }
                    }
                    TargetKind::Site => match graph.site_id(&target.name) {
                        Some(s) => sites.push(s),
                        None => usable = false,
                    },
                    _ => usable = false,
                }
            }
            // Bindings that cannot be judged are only reported.
            if !usable {
                continue;
            }
            for (r, rule) in binding.rules.iter().enumerate() {
                let kind = match &rule.provider {
                    RuleProvider::Broken(_) => continue,
                    RuleProvider::Lane(lane) => {
                        let Some(con) = lanes::compile(
                            graph,
                            rule,
                            lane,
                            &binding.targets,
                            &pending_index,
                            &placed_at,
                        ) else {
                            continue;
                        };
                        lane_cons.push(con);
                        ConKind::Lane(lane_cons.len() as u32 - 1)
                    }
                    RuleProvider::Builtin(compiled) => {
                        if compiled.is_pairwise() {
                            if pending_members.len() + fixed_nodes.len() + sites.len() < 2 {
                                continue;
                            }
                            if pending_members.is_empty() && fixed_nodes.is_empty() {
                                continue;
                            }
                            let key = format!("{:?}", rule.spec);
                            let next = pairs.len() as u32;
                            let id = *pair_index.entry(key).or_insert(next);
                            if id == next {
                                let Some(table) = PairTable::build(
                                    graph,
                                    &rule.spec,
                                    (pairs.len() + 1) * site_count * site_count
                                        <= MAX_TABLE_ENTRIES,
                                ) else {
                                    pair_index.remove(&format!("{:?}", rule.spec));
                                    continue;
                                };
                                pairs.push(table);
                            }
                            ConKind::Pair(id)
                        } else {
                            let key = format!("{:?}", rule.spec);
                            let next = node_tables.len() as u32;
                            let id = *node_index.entry(key).or_insert(next);
                            if id == next {
                                node_tables.push(node_costs(view, compiled));
                            }
                            if pending_members.is_empty() && fixed_nodes.is_empty() {
                                continue;
                            }
                            ConKind::Node(id)
                        }
                    }
                    RuleProvider::External(ext) => {
                        if ext.error.is_some() {
                            continue;
                        }
                        any_external = true;
                        let tables = pending_members
                            .iter()
                            .map(|p| {
                                let key = &input.pending[pods[*p as usize].input].key;
                                ext.costs.get(key).map(|costs| {
                                    let mut t = vec![INF; n];
                                    for (name, c) in costs {
                                        if let Some(id) = graph.node_id(name) {
                                            t[id.index()] =
                                                if *c < 0.0 || c.is_nan() { INF } else { *c };
                                        }
                                    }
                                    t
                                })
                            })
                            .collect();
                        ConKind::External(tables)
                    }
                };
                let mut fixed: Vec<Location> =
                    fixed_nodes.iter().map(|id| Location::Node(*id)).collect();
                if matches!(kind, ConKind::Pair(_)) {
                    fixed.extend(sites.iter().map(|s| Location::Site(*s)));
                }
                for id in &fixed_nodes {
                    special[id.index()] = true;
                }
                let mut con = Con {
                    binding: b as u32,
                    rule: r as u32,
                    kind,
                    pods: pending_members.clone(),
                    fixed,
                    fixed_value: 0.0,
                };
                con.fixed_value = fixed_value(&pairs, &node_tables, graph, &con);
                let index = cons.len() as u32;
                for p in &pending_members {
                    let list = &mut pods[*p as usize].cons;
                    if !list.contains(&index) {
                        list.push(index);
                    }
                }
                cons.push(con);
            }
        }

        // Symmetry classes: nodes of one site that every pod class sees alike and every
        // node rule scores alike are interchangeable (while their free capacity is equal).
        let mut sym_class = vec![0u32; n];
        let mut sym_of: HashMap<SymKey, u32> = HashMap::new();
        for id in 0..n {
            let unique = special[id] || any_external || rules.special[id];
            let key = SymKey {
                unique: unique.then_some(id),
                domains: if rules.active {
                    rules.sym_part(id as u32)
                } else {
                    Vec::new()
                },
                site: node_site[id],
                eligible: classes.iter().map(|c| c.eligible[id]).collect(),
                costs: node_tables.iter().map(|t| t[id].to_bits()).collect(),
            };
            let next = sym_of.len() as u32;
            sym_class[id] = *sym_of.entry(key).or_insert(next);
        }

        let mut reach = HashMap::new();
        let mut min_unary = Vec::with_capacity(cons.len());
        for con in &cons {
            let mut mins = Vec::with_capacity(con.pods.len());
            for (pos, p) in con.pods.iter().enumerate() {
                let class = &classes[pods[*p as usize].class as usize];
                match &con.kind {
                    ConKind::Pair(t) => {
                        reach
                            .entry((*t, pods[*p as usize].class))
                            .or_insert_with(|| reach_table(&pairs[*t as usize], graph, class));
                        mins.push(0.0);
                    }
                    ConKind::Node(t) => {
                        let table = &node_tables[*t as usize];
                        mins.push(min_over(class, |n| table[n]));
                    }
                    ConKind::External(tables) => {
                        let m = match tables.get(pos).and_then(|t| t.as_ref()) {
                            Some(t) => min_over(class, |n| t[n]),
                            None => INF,
                        };
                        mins.push(m);
                    }
                    ConKind::Lane(_) => mins.push(0.0),
                }
            }
            min_unary.push(mins);
        }

        let requests = cons
            .iter()
            .map(|con| match con.kind {
                ConKind::Pair(t) => pairs[t as usize].bandwidth_request(),
                _ => None,
            })
            .collect();
        let fixed: Vec<&[crate::network::Location]> =
            cons.iter().map(|con| con.fixed.as_slice()).collect();
        let links = Links::build(graph, requests, &fixed);
        Problem {
            links,
            lanes: lane_cons,
            graph,
            node_site,
            reach,
            min_unary,
            rules,
            dims,
            free0,
            pods,
            classes,
            cons,
            pairs,
            node_tables,
            sym_class,
            plan_node,
            warnings,
        }
    }

    pub fn d(&self) -> usize {
        self.dims.len()
    }

    pub fn node_count(&self) -> usize {
        self.node_site.len()
    }

    /// Whether `pod`'s requests fit in `free` at `node` (the rule of
    /// [`crate::placement::amount_fits`], dimension by dimension).
    #[inline]
    pub fn fits(&self, pod: u32, node: u32, free: &[i64]) -> bool {
        let d = self.d();
        let req = &self.pods[pod as usize].req;
        let at = &free[node as usize * d..node as usize * d + d];
        req.iter().zip(at).all(|(r, f)| amount_fits(*r, *f))
    }

    /// Cost of a pairwise table between two locations.
    #[inline]
    pub fn pair_cost(&self, table: u32, a: Location, b: Location) -> f64 {
        pair_cost(&self.pairs[table as usize], self.graph, a, b)
    }

    /// Cost of a constraint's unary part for pending member `pos` on `node`.
    #[inline]
    pub fn unary(&self, con: &Con, pos: usize, node: u32) -> f64 {
        match &con.kind {
            ConKind::Pair(_) | ConKind::Lane(_) => 0.0,
            ConKind::Node(t) => self.node_tables[*t as usize][node as usize],
            ConKind::External(tables) => tables
                .get(pos)
                .and_then(|t| t.as_ref())
                .map(|t| t[node as usize])
                .unwrap_or(INF),
        }
    }

    /// The value of constraint `c` with members at `node_of(pod)`; `None` when a pending
    /// member has no node (the rule is Pending).
    #[inline]
    pub fn value(&self, c: u32, node_of: impl Fn(u32) -> u32) -> Option<f64> {
        let con = &self.cons[c as usize];
        let mut worst = con.fixed_value;
        match &con.kind {
            ConKind::Lane(l) => {
                return lanes::value(&self.lanes[*l as usize], self.graph, node_of);
            }
            ConKind::Pair(t) => {
                for (i, p) in con.pods.iter().enumerate() {
                    let node = node_of(*p);
                    if node == NONE {
                        return None;
                    }
                    let here = Location::Node(NodeId(node));
                    for f in &con.fixed {
                        worst = worst.max(self.pair_cost(*t, here, *f));
                    }
                    for q in &con.pods[..i] {
                        let other = Location::Node(NodeId(node_of(*q)));
                        worst = worst.max(self.pair_cost(*t, here, other));
                    }
                }
            }
            _ => {
                for (i, p) in con.pods.iter().enumerate() {
                    let node = node_of(*p);
                    if node == NONE {
                        return None;
                    }
                    worst = worst.max(self.unary(con, i, node));
                }
            }
        }
        Some(worst)
    }
}

pub(crate) fn pair_cost(table: &PairTable, graph: &NetworkGraph, a: Location, b: Location) -> f64 {
    if let (Location::Node(x), Location::Node(y)) = (a, b)
        && x == y
    {
        return table.same_node;
    }
    let site = |l: Location| match l {
        Location::Node(n) => graph.site_of(n),
        Location::Site(s) => s,
    };
    let (sa, sb) = (site(a), site(b));
    if sa == sb {
        return table.intra_site;
    }
    match &table.sites {
        Some(t) => t[sa.index() * graph.site_count() + sb.index()],
        None => table.between_sites(graph, sa, sb),
    }
}

impl PairTable {
    fn build(
        graph: &NetworkGraph,
        spec: &edgeplane_api::ConstraintPolicyRule,
        dense: bool,
    ) -> Option<PairTable> {
        let metric = PathMetric::for_rule(&spec.name)?;
        let rule = Rule::parse(spec, builtin_metric(&spec.name)?).ok()?;
        let mut table = PairTable {
            metric,
            same_node: 0.0,
            intra_site: 0.0,
            sites: None,
            rule,
        };
        table.same_node = table.judge(Some(graph.same_node()));
        table.intra_site = table.judge(Some(graph.intra_site()));
        if dense {
            let s = graph.site_count();
            let mut sites = vec![0.0; s * s];
            for a in 0..s {
                sites[a * s + a] = table.intra_site;
                // Symmetric (the worse direction): each pair judged once.
                for b in a + 1..s {
                    let cost = table.between_sites(graph, SiteId(a as u32), SiteId(b as u32));
                    sites[a * s + b] = cost;
                    sites[b * s + a] = cost;
                }
            }
            table.sites = Some(sites);
        }
        Some(table)
    }

    /// The request of a bandwidth rule in bits per second; `None` for other metrics.
    pub(crate) fn bandwidth_request(&self) -> Option<f64> {
        (self.metric == PathMetric::Bandwidth)
            .then(|| self.rule.request.magnitude())
            .flatten()
            .filter(|r| r.is_finite() && *r > 0.0)
    }

    fn between_sites(&self, graph: &NetworkGraph, a: SiteId, b: SiteId) -> f64 {
        self.judge(graph.site_metrics(a, b))
            .max(self.judge(graph.site_metrics(b, a)))
    }

    fn judge(&self, metrics: Option<crate::network::PathMetrics>) -> f64 {
        let Some(m) = metrics else { return INF };
        let value = m.value(self.metric);
        if self.rule.judge(&value) == Compliance::Violation {
            INF
        } else {
            self.rule.cost(&value)
        }
    }
}

/// Unplaced weights by priority: pods of the lowest priority weigh 1, and each higher
/// priority one more than all pods of lower priorities together, so that placing one
/// more pod of a priority is worth more than anything below it (lexicographic by
/// priority). Too many distinct priorities for 128 bits merge the highest ones.
fn priority_weights(input: &PlanInput<'_>, pods: &mut [PodC], warnings: &mut Vec<String>) {
    let mut counts: BTreeMap<i32, u128> = BTreeMap::new();
    for pod in pods.iter() {
        *counts
            .entry(input.pending[pod.input].pod_rules.priority)
            .or_insert(0) += 1;
    }
    if counts.len() < 2 {
        return;
    }
    let mut weight_of: BTreeMap<i32, u128> = BTreeMap::new();
    let mut weight: u128 = 1;
    let mut below: u128 = 0;
    let mut saturated = false;
    for (priority, count) in &counts {
        weight_of.insert(*priority, weight);
        below = below.saturating_add(weight.saturating_mul(*count));
        match below.checked_add(1) {
            Some(next) if !saturated && next < u128::MAX / 1024 => weight = next,
            _ => saturated = true,
        }
    }
    if saturated {
        warnings.push(
            "too many distinct pod priorities to order every one strictly; the highest share a weight"
                .into(),
        );
    }
    for pod in pods.iter_mut() {
        pod.weight = weight_of[&input.pending[pod.input].pod_rules.priority];
    }
}

fn reach_table(table: &PairTable, graph: &NetworkGraph, class: &Class) -> Vec<f64> {
    let s = graph.site_count();
    (0..s as u32)
        .map(|from| {
            class
                .sites
                .iter()
                .map(|to| {
                    if *to == from {
                        table.intra_site.min(table.same_node)
                    } else {
                        pair_cost(
                            table,
                            graph,
                            Location::Site(SiteId(from)),
                            Location::Site(SiteId(*to)),
                        )
                    }
                })
                .fold(INF, f64::min)
        })
        .collect()
}

fn min_over(class: &Class, cost: impl Fn(usize) -> f64) -> f64 {
    class
        .eligible
        .iter()
        .enumerate()
        .filter(|(_, e)| **e)
        .map(|(n, _)| cost(n))
        .fold(INF, f64::min)
}

fn node_costs(view: &crate::evaluate::ClusterView, rule: &BuiltinRule) -> Vec<f64> {
    view.graph()
        .nodes()
        .map(|id| match rule.score(view, id, &[]) {
            NodeScore::Feasible(c) => c,
            NodeScore::Infeasible => INF,
        })
        .collect()
}

fn fixed_value(pairs: &[PairTable], nodes: &[Vec<f64>], graph: &NetworkGraph, con: &Con) -> f64 {
    let mut worst: f64 = 0.0;
    match &con.kind {
        ConKind::Pair(t) => {
            let table = &pairs[*t as usize];
            for (i, a) in con.fixed.iter().enumerate() {
                for b in &con.fixed[..i] {
                    worst = worst.max(pair_cost(table, graph, *a, *b));
                }
            }
        }
        ConKind::Node(t) => {
            for f in &con.fixed {
                if let Location::Node(id) = f {
                    worst = worst.max(nodes[*t as usize][id.index()]);
                }
            }
        }
        // Running pods are not rescored by external providers here; a lane's value
        // counts its fixed members itself.
        ConKind::External(_) | ConKind::Lane(_) => {}
    }
    worst
}

fn eligibility(
    graph: &NetworkGraph,
    nodes: &[PlanNode],
    plan_node: &[Option<usize>],
    pod: &PendingPod,
) -> Class {
    let n = graph.node_count();
    let mut eligible = vec![false; n];
    let mut by_site = vec![Vec::new(); graph.site_count()];
    for id in 0..n {
        if let Some(i) = plan_node[id]
            && static_misfit(&nodes[i], pod).is_none()
        {
            eligible[id] = true;
            by_site[graph.site_of(NodeId(id as u32)).index()].push(id as u32);
        }
    }
    let sites = (0..by_site.len() as u32)
        .filter(|s| !by_site[*s as usize].is_empty())
        .collect();
    Class {
        eligible,
        by_site,
        sites,
    }
}

#[derive(PartialEq, Eq, Hash)]
struct ClassKey<'a> {
    selector: &'a BTreeMap<String, String>,
    affinity: &'a Vec<super::NodeSelectorTerm>,
    tolerations: &'a Vec<super::Toleration>,
}

#[derive(PartialEq, Eq, Hash)]
struct SymKey {
    unique: Option<usize>,
    domains: Vec<u32>,
    site: u32,
    eligible: Vec<bool>,
    costs: Vec<u64>,
}

/// The metric value of the worse direction between two locations for a pairwise table
/// (`None`: no path), and the table's rule.
pub(crate) fn pair_cost_value<'p>(
    p: &'p Problem<'_>,
    t: u32,
    a: Location,
    b: Location,
) -> (Option<crate::values::Value>, &'p Rule) {
    let table = &p.pairs[t as usize];
    let there = p.graph.metrics(a, b).map(|m| m.value(table.metric));
    let back = p.graph.metrics(b, a).map(|m| m.value(table.metric));
    let value = match (there, back) {
        (Some(x), Some(y)) => {
            if table.rule.cost(&y) > table.rule.cost(&x) {
                Some(y)
            } else {
                Some(x)
            }
        }
        _ => None,
    };
    (value, &table.rule)
}
