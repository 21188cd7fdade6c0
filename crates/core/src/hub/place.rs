//! The search of one application's placement.
//!
//! Components are placed one at a time, the most anchored first (those bound to user
//! sites, then their peers breadth first). For each, every cluster that is Ready,
//! tolerated and has room for a replica is scored by what adding it does to the rules
//! of the component, given the peers placed before it: a rule in Violation rules the
//! cluster out; otherwise fewer rules in Limit, then less cost, then more room win. The
//! replicas go to the best clusters, at least `minClusters` of them with one replica each
//! and the rest filling the best first, at most `maxClusters`. Because the best cluster
//! for the first component can leave its peers nowhere, the next few best first clusters
//! are tried too (`HubOptions::alternatives`), and the placement with the most replicas,
//! then fewest Limit rules, then least cost, wins.

use std::collections::{BTreeMap, HashMap};

use edgeplane_api::Compliance;

use super::judge::{self, Judge, Worst};
use super::{AppPlan, Application, HubInput, HubOptions, RuleVerdict, Share, Target, Unplaced};
use crate::evaluate::ClusterView;
use crate::network::{Location, NodeId, PathMetric, SiteId};
use crate::placement::untolerated;
use crate::planner::Resources;
use crate::quantity::format_amount;
use crate::rules::{Direction, Rule};
use crate::values::Value;

/// What every application's search shares: the view and the clusters by index.
pub(super) struct Context<'a> {
    view: &'a ClusterView,
    clusters: &'a [super::Cluster],
    /// The graph node of each cluster (`None`: not in the graph, receives nothing).
    node_of: Vec<Option<NodeId>>,
    by_name: HashMap<&'a str, usize>,
    /// Per site of the graph: the clusters by latency from it (the worse direction),
    /// nearest first, so that the clusters within a latency rule's limit of an anchor
    /// (a user site, a placed peer) are a prefix and the rest is never looked at.
    near: Vec<Vec<(f32, usize)>>,
}

/// One target of a compiled rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Component(usize),
    /// `None`: a site the topology does not have (no path to anything).
    Site(Option<SiteId>),
}

/// One rule of one constraint.
struct RuleC<'a> {
    policy: &'a str,
    name: &'a str,
    judge: Judge,
    targets: Vec<Place>,
}

struct AppC<'a> {
    app: &'a Application,
    rules: Vec<RuleC<'a>>,
    /// The rules each component is a target of.
    rules_of: Vec<Vec<usize>>,
}

/// A (partial) placement of one application.
#[derive(Clone)]
struct State {
    /// Per component: (cluster, replicas), in the order they were chosen.
    counts: Vec<Vec<(usize, u32)>>,
    /// Per rule: the worst of the pairs judged so far.
    worst: Vec<Worst>,
    /// What this application uses of each cluster so far.
    used: HashMap<usize, Resources>,
    reasons: Vec<Option<String>>,
}

/// How good a placement is: compared lexicographically, smaller is better.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
struct Objective {
    unplaced: u64,
    violation: usize,
    limit: usize,
    cost: f64,
}

impl<'a> Context<'a> {
    pub(super) fn new(input: &'a HubInput<'a>) -> Context<'a> {
        let graph = input.view.graph();
        let node_of: Vec<Option<NodeId>> = input
            .clusters
            .iter()
            .map(|c| graph.node_id(&c.name))
            .collect();
        let near = graph
            .sites()
            .map(|site| {
                let mut list: Vec<(f32, usize)> = node_of
                    .iter()
                    .enumerate()
                    .filter_map(|(k, node)| {
                        let (a, b) = (Location::Site(site), Location::Node((*node)?));
                        let there = judge::between(graph, a, b)?.latency_ns;
                        let back = judge::between(graph, b, a)?.latency_ns;
                        Some((there.max(back), k))
                    })
                    .collect();
                list.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                list
            })
            .collect();
        Context {
            view: input.view,
            clusters: &input.clusters,
            near,
            node_of,
            by_name: input
                .clusters
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.as_str(), i))
                .collect(),
        }
    }

    pub(super) fn plan_application(
        &self,
        app: &Application,
        free: &mut [Resources],
        options: &HubOptions,
    ) -> AppPlan {
        let compiled = self.compile(app);
        let mut warnings = Vec::new();
        let state = match &app.prescribed {
            Some(given) => self.prescribed(&compiled, given, free, &mut warnings),
            None => self.search(&compiled, free, options),
        };
        // Commit what the application uses, so later applications plan around it.
        for (k, used) in &state.used {
            subtract(&mut free[*k], used);
        }
        self.report(&compiled, state, warnings)
    }

    fn compile<'b>(&self, app: &'b Application) -> AppC<'b> {
        let graph = self.view.graph();
        let index: HashMap<&str, usize> = app
            .components
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect();
        let mut rules = Vec::new();
        let mut rules_of = vec![Vec::new(); app.components.len()];
        for constraint in &app.constraints {
            let targets: Vec<Place> = constraint
                .targets
                .iter()
                .filter_map(|t| match t {
                    Target::Component(name) => {
                        index.get(name.as_str()).map(|i| Place::Component(*i))
                    }
                    Target::Site(name) => Some(Place::Site(graph.site_id(name))),
                })
                .collect();
            for spec in &constraint.rules {
                let r = rules.len();
                for t in &targets {
                    if let Place::Component(c) = t
                        && !rules_of[*c].contains(&r)
                    {
                        rules_of[*c].push(r);
                    }
                }
                rules.push(RuleC {
                    policy: &constraint.policy,
                    name: &spec.name,
                    judge: Judge::compile(spec),
                    targets: targets.clone(),
                });
            }
        }
        AppC {
            app,
            rules,
            rules_of,
        }
    }

    /// Components in the order they are placed: those bound to a site first, then their
    /// peers breadth first, then the rest; input order among equals.
    fn order(&self, app: &AppC<'_>) -> Vec<usize> {
        let n = app.app.components.len();
        let anchored = |c: usize| {
            app.rules_of[c].iter().any(|r| {
                app.rules[*r]
                    .targets
                    .iter()
                    .any(|t| matches!(t, Place::Site(_)))
            })
        };
        let peers = |a: usize, b: usize| {
            app.rules_of[a]
                .iter()
                .any(|r| app.rules[*r].targets.contains(&Place::Component(b)))
        };
        let mut order: Vec<usize> = (0..n).filter(|c| anchored(*c)).collect();
        while order.len() < n {
            let next = (0..n)
                .filter(|c| !order.contains(c))
                .find(|c| order.iter().any(|o| peers(*c, *o)))
                .or_else(|| (0..n).find(|c| !order.contains(c)));
            match next {
                Some(c) => order.push(c),
                None => break,
            }
        }
        order
    }

    /// The clusters a component may use at all (Ready, in the graph, tolerated, room for
    /// one replica before this application), or why there are none.
    fn eligible(
        &self,
        component: &super::Component,
        free: &[Resources],
    ) -> Result<Vec<usize>, String> {
        let mut ready = false;
        let mut tolerated = false;
        let mut taint_example = None;
        let mut out = Vec::new();
        for (k, cluster) in self.clusters.iter().enumerate() {
            if !cluster.ready || self.node_of[k].is_none() {
                continue;
            }
            ready = true;
            if let Some(taint) = untolerated(&cluster.taints, &component.tolerations) {
                taint_example.get_or_insert_with(|| format!("{taint} on {}", cluster.name));
                continue;
            }
            tolerated = true;
            if fits(&free[k], None, &component.requests) > 0 {
                out.push(k);
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
        Err(if !ready {
            "no member cluster is Ready".to_string()
        } else if !tolerated {
            format!(
                "every Ready cluster has a taint it does not tolerate (for example {})",
                taint_example.unwrap_or_default()
            )
        } else {
            self.no_room(component, free)
        })
    }

    fn no_room(&self, component: &super::Component, free: &[Resources]) -> String {
        let req = &component.requests;
        // Name the first resource no cluster has enough of, with the largest free amount.
        let dims: [(&str, i64, Amount); 3] = [
            ("cpu", req.cpu_millis, |r| r.cpu_millis),
            ("memory", req.memory_bytes, |r| r.memory_bytes),
            ("pods", req.pods, |r| r.pods),
        ];
        for (name, want, get) in &dims {
            let best = self
                .clusters
                .iter()
                .enumerate()
                .filter(|(k, c)| c.ready && self.node_of[*k].is_some())
                .map(|(k, c)| (get(&free[k]), c.name.as_str()))
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(a.1)));
            if let Some((largest, at)) = best
                && largest < *want
            {
                let milli = |v: i64| {
                    if *name == "cpu" {
                        v as i128
                    } else {
                        v as i128 * 1000
                    }
                };
                return format!(
                    "no cluster has {} {name} free for one replica (largest free: {} on {at})",
                    format_amount(name, milli(*want)),
                    format_amount(name, milli(largest.max(0)))
                );
            }
        }
        for (name, want) in &req.extended {
            if *want > 0 {
                return format!("no cluster has {want} {name} free for one replica");
            }
        }
        "no cluster has room for one replica".to_string()
    }

    fn empty_state(&self, app: &AppC<'_>) -> State {
        State {
            counts: vec![Vec::new(); app.app.components.len()],
            worst: app.rules.iter().map(|_| Worst::none()).collect(),
            used: HashMap::new(),
            reasons: vec![None; app.app.components.len()],
        }
    }

    fn location(&self, k: usize) -> Option<Location> {
        self.node_of[k].map(Location::Node)
    }

    /// What rule `r` becomes when component `c` gets cluster `k` (given `state`).
    fn with_cluster(&self, app: &AppC<'_>, state: &State, r: usize, c: usize, k: usize) -> Worst {
        let rule = &app.rules[r];
        let mut worst = state.worst[r].clone();
        let Some(here) = self.location(k) else {
            return worst;
        };
        match &rule.judge {
            Judge::Broken(_) => {}
            Judge::Node(node_rule) => worst.merge(judge::judge_node(self.view, node_rule, here)),
            Judge::Path {
                metric,
                rule: path_rule,
            } => {
                for target in &rule.targets {
                    match target {
                        Place::Component(d) if *d == c => {}
                        Place::Component(d) => {
                            for (other, _) in &state.counts[*d] {
                                if let Some(there) = self.location(*other) {
                                    worst.merge(judge::judge_pair(
                                        self.view, *metric, path_rule, here, there,
                                    ));
                                }
                            }
                        }
                        Place::Site(Some(site)) => worst.merge(judge::judge_pair(
                            self.view,
                            *metric,
                            path_rule,
                            here,
                            Location::Site(*site),
                        )),
                        Place::Site(None) => worst.merge(Worst {
                            compliance: Compliance::Violation,
                            cost: f64::INFINITY,
                            value: None,
                        }),
                    }
                }
            }
        }
        worst
    }

    fn search(&self, app: &AppC<'_>, free: &[Resources], options: &HubOptions) -> State {
        let order = self.order(app);
        let eligible: Vec<Result<Vec<usize>, String>> = app
            .app
            .components
            .iter()
            .map(|c| self.eligible(c, free))
            .collect();
        let masks: Vec<Vec<bool>> = eligible
            .iter()
            .map(|list| {
                let mut mask = vec![false; self.clusters.len()];
                for k in list.iter().flatten() {
                    mask[*k] = true;
                }
                mask
            })
            .collect();
        let (mut best, first_choices) = self.greedy(app, &order, &eligible, &masks, free, None);
        let mut best_score = self.objective(app, &best);
        for alternative in first_choices.into_iter().skip(1).take(options.alternatives) {
            let (state, _) = self.greedy(app, &order, &eligible, &masks, free, Some(alternative));
            let score = self.objective(app, &state);
            if score < best_score {
                best = state;
                best_score = score;
            }
        }
        best
    }

    /// Places the components in `order`; `first`: the cluster the first component takes
    /// first. Returns the placement and the first component's clusters, best first.
    fn greedy(
        &self,
        app: &AppC<'_>,
        order: &[usize],
        eligible: &[Result<Vec<usize>, String>],
        masks: &[Vec<bool>],
        free: &[Resources],
        first: Option<usize>,
    ) -> (State, Vec<usize>) {
        let mut state = self.empty_state(app);
        let mut first_choices = Vec::new();
        for (position, &c) in order.iter().enumerate() {
            let component = &app.app.components[c];
            if component.replicas == 0 {
                continue;
            }
            let candidates = match &eligible[c] {
                Ok(list) => list,
                Err(reason) => {
                    state.reasons[c] = Some(reason.clone());
                    continue;
                }
            };
            let anchor = self.anchor(app, &state, c);
            let walked;
            let candidates = match anchor {
                Some((site, rule)) => {
                    walked = self.within(site, rule, &masks[c]);
                    &walked
                }
                None => candidates,
            };
            // (limits added, cost added, room, cluster)
            let mut scored: Vec<(i64, f64, u32, usize)> = Vec::new();
            let mut violated: Option<(usize, usize, Worst)> = None;
            if candidates.is_empty()
                && let Some((site, _)) = anchor
                && let Some(&(_, k)) = self.near[site].iter().find(|(_, k)| masks[c][*k])
            {
                // Nothing within the limit: the nearest cluster with room says why.
                for &r in &app.rules_of[c] {
                    let after = self.with_cluster(app, &state, r, c, k);
                    if after.compliance == Compliance::Violation {
                        violated = Some((r, k, after));
                        break;
                    }
                }
            }
            for &k in candidates {
                let room = fits(&free[k], state.used.get(&k), &component.requests);
                if room == 0 {
                    continue;
                }
                let mut limits = 0i64;
                let mut cost = 0.0;
                let mut broken = None;
                for &r in &app.rules_of[c] {
                    let after = self.with_cluster(app, &state, r, c, k);
                    let before = &state.worst[r];
                    if after.compliance == Compliance::Violation {
                        broken = Some((r, after));
                        break;
                    }
                    limits += i64::from(after.compliance == Compliance::Limit)
                        - i64::from(before.compliance == Compliance::Limit);
                    cost += after.cost - before.cost;
                }
                match broken {
                    Some((r, worst)) => {
                        violated.get_or_insert((r, k, worst));
                    }
                    None => scored.push((limits, cost, room, k)),
                }
            }
            scored.sort_by(|a, b| {
                a.0.cmp(&b.0)
                    .then(a.1.total_cmp(&b.1))
                    .then(b.2.cmp(&a.2))
                    .then(self.clusters[a.3].name.cmp(&self.clusters[b.3].name))
            });
            if position == 0 {
                first_choices = scored.iter().map(|s| s.3).collect();
                if let Some(f) = first
                    && let Some(i) = scored.iter().position(|s| s.3 == f)
                {
                    let forced = scored.remove(i);
                    scored.insert(0, forced);
                }
            }
            let min = component.min_clusters.max(1) as usize;
            let max = component.max_clusters.max(1) as usize;
            let mut chosen: Vec<(usize, u32)> = Vec::new();
            let mut room_total = 0u64;
            for (_, _, room, k) in &scored {
                if chosen.len() >= max {
                    break;
                }
                chosen.push((*k, *room));
                room_total += u64::from(*room);
                if room_total >= u64::from(component.replicas) && chosen.len() >= min {
                    break;
                }
            }
            if chosen.len() < min {
                state.reasons[c] = Some(if scored.is_empty() {
                    match violated {
                        Some((r, k, worst)) => self.violation_reason(app, r, k, &worst),
                        None => self.no_room(component, free),
                    }
                } else {
                    format!(
                        "spread: only {} cluster{} can take it without a rule in Violation (minClusters {min})",
                        scored.len(),
                        if scored.len() == 1 { "" } else { "s" }
                    )
                });
                continue;
            }
            // One replica on each chosen cluster, then fill the best first.
            let mut left = component.replicas;
            let mut shares: Vec<(usize, u32)> = chosen.iter().map(|(k, _)| (*k, 0)).collect();
            for share in shares.iter_mut() {
                if left > 0 {
                    share.1 = 1;
                    left -= 1;
                }
            }
            for (share, (_, room)) in shares.iter_mut().zip(&chosen) {
                let more = left.min(room - share.1);
                share.1 += more;
                left -= more;
            }
            if left > 0 {
                state.reasons[c] = Some(format!(
                    "only {} of {} replicas fit on the clusters it may use ({} cluster{}, maxClusters {max})",
                    component.replicas - left,
                    component.replicas,
                    shares.len(),
                    if shares.len() == 1 { "" } else { "s" },
                ));
            }
            for (k, n) in shares {
                if n == 0 {
                    continue;
                }
                for &r in &app.rules_of[c] {
                    state.worst[r] = self.with_cluster(app, &state, r, c, k);
                }
                let used = state.used.entry(k).or_default();
                add_times(used, &component.requests, n);
                state.counts[c].push((k, n));
            }
        }
        (state, first_choices)
    }

    /// A latency rule of component `c` whose other end is placed already (a user site, a
    /// peer's cluster): the site it is measured from, and the rule.
    fn anchor<'r>(&self, app: &'r AppC<'_>, state: &State, c: usize) -> Option<(usize, &'r Rule)> {
        let graph = self.view.graph();
        for &r in &app.rules_of[c] {
            let Judge::Path {
                metric: PathMetric::Latency,
                rule,
            } = &app.rules[r].judge
            else {
                continue;
            };
            if rule.direction != Direction::LowerIsBetter {
                continue;
            }
            for target in &app.rules[r].targets {
                match target {
                    Place::Site(Some(site)) => return Some((site.index(), rule)),
                    Place::Component(d) if *d != c => {
                        if let Some(node) =
                            state.counts[*d].first().and_then(|(p, _)| self.node_of[*p])
                        {
                            return Some((graph.site_of(node).index(), rule));
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    }

    /// The clusters of `mask` nearest `site` up to the latency where `rule` is violated.
    fn within(&self, site: usize, rule: &Rule, mask: &[bool]) -> Vec<usize> {
        let mut out = Vec::new();
        for &(latency, k) in &self.near[site] {
            // A hair below the stored value, so that rounding never cuts a cluster that
            // meets the limit; the ones let in are judged exactly afterwards.
            let value = Value::duration_ns(f64::from(latency) * (1.0 - 1e-6));
            if rule.judge(&value) == Compliance::Violation {
                break;
            }
            if mask[k] {
                out.push(k);
            }
        }
        out
    }

    fn violation_reason(&self, app: &AppC<'_>, r: usize, k: usize, worst: &Worst) -> String {
        let rule = &app.rules[r];
        format!(
            "every cluster with room puts policy {} rule {} in Violation (for example on {}: {})",
            rule.policy,
            rule.name,
            self.clusters[k].name,
            judge::reason(self.view, &rule.judge, worst, &self.clusters[k].name)
        )
    }

    /// A prescribed placement, judged as given.
    fn prescribed(
        &self,
        app: &AppC<'_>,
        given: &BTreeMap<String, BTreeMap<String, u32>>,
        free: &[Resources],
        warnings: &mut Vec<String>,
    ) -> State {
        let mut state = self.empty_state(app);
        for (cluster, components) in given {
            let Some(&k) = self.by_name.get(cluster.as_str()) else {
                warnings.push(format!("cluster {cluster} is not a member cluster"));
                continue;
            };
            let target = &self.clusters[k];
            if !target.ready {
                warnings.push(format!("cluster {cluster} is not Ready"));
            }
            for (c, component) in app.app.components.iter().enumerate() {
                let Some(&n) = components.get(&component.name) else {
                    continue;
                };
                if n == 0 {
                    continue;
                }
                if let Some(taint) = untolerated(&target.taints, &component.tolerations) {
                    warnings.push(format!(
                        "component {} does not tolerate {taint} on {cluster}",
                        component.name
                    ));
                }
                for &r in &app.rules_of[c] {
                    state.worst[r] = self.with_cluster(app, &state, r, c, k);
                }
                add_times(state.used.entry(k).or_default(), &component.requests, n);
                state.counts[c].push((k, n));
            }
            if let Some(used) = state.used.get(&k)
                && fits(&free[k], Some(used), &Resources::default()) == 0
            {
                warnings.push(format!(
                    "the placement asks more of {cluster} than it has free"
                ));
            }
        }
        for (c, component) in app.app.components.iter().enumerate() {
            let placed: u32 = state.counts[c].iter().map(|(_, n)| n).sum();
            if placed < component.replicas {
                state.reasons[c] = Some(format!(
                    "the prescribed placement gives {placed} of {} replicas",
                    component.replicas
                ));
            }
        }
        state
    }

    /// The rules as the final placement leaves them: a rule with a component target that
    /// has no replica is Pending.
    fn verdicts(&self, app: &AppC<'_>, state: &State) -> Vec<(Compliance, f64, Worst)> {
        app.rules
            .iter()
            .enumerate()
            .map(|(r, rule)| {
                if let Judge::Broken(_) = rule.judge {
                    return (Compliance::Error, 0.0, Worst::none());
                }
                let all_placed = rule.targets.iter().all(|t| match t {
                    Place::Component(c) => !state.counts[*c].is_empty(),
                    Place::Site(_) => true,
                });
                let worst = &state.worst[r];
                if !all_placed || worst.compliance == Compliance::Pending {
                    return (Compliance::Pending, 0.0, worst.clone());
                }
                (worst.compliance, worst.cost, worst.clone())
            })
            .collect()
    }

    fn objective(&self, app: &AppC<'_>, state: &State) -> Objective {
        let unplaced: u64 = app
            .app
            .components
            .iter()
            .zip(&state.counts)
            .map(|(c, counts)| {
                u64::from(c.replicas) - counts.iter().map(|(_, n)| u64::from(*n)).sum::<u64>()
            })
            .sum();
        let mut objective = Objective {
            unplaced,
            violation: 0,
            limit: 0,
            cost: 0.0,
        };
        for (compliance, cost, _) in self.verdicts(app, state) {
            match compliance {
                Compliance::Violation => objective.violation += 1,
                Compliance::Limit => objective.limit += 1,
                _ => {}
            }
            if cost.is_finite() {
                objective.cost += cost;
            }
        }
        objective
    }

    fn report(&self, app: &AppC<'_>, state: State, warnings: Vec<String>) -> AppPlan {
        let mut by_cluster: BTreeMap<&str, BTreeMap<String, u32>> = BTreeMap::new();
        for (c, counts) in state.counts.iter().enumerate() {
            for (k, n) in counts {
                *by_cluster
                    .entry(self.clusters[*k].name.as_str())
                    .or_default()
                    .entry(app.app.components[c].name.clone())
                    .or_default() += n;
            }
        }
        let placement = by_cluster
            .into_iter()
            .map(|(cluster, components)| Share {
                cluster: cluster.to_string(),
                components,
            })
            .collect();
        let mut unplaced = BTreeMap::new();
        for (c, component) in app.app.components.iter().enumerate() {
            let placed: u32 = state.counts[c].iter().map(|(_, n)| n).sum();
            if placed < component.replicas {
                unplaced.insert(
                    component.name.clone(),
                    Unplaced {
                        replicas: component.replicas - placed,
                        reason: state.reasons[c]
                            .clone()
                            .unwrap_or_else(|| "not placed".to_string()),
                    },
                );
            }
        }
        let rules = self
            .verdicts(app, &state)
            .into_iter()
            .zip(&app.rules)
            .map(|((compliance, cost, worst), rule)| {
                let shown = Worst {
                    compliance,
                    ..worst
                };
                let at = rule
                    .targets
                    .iter()
                    .filter_map(|t| match t {
                        Place::Component(c) => Some(app.app.components[*c].name.as_str()),
                        Place::Site(_) => None,
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                RuleVerdict {
                    policy: rule.policy.to_string(),
                    rule: rule.name.to_string(),
                    compliance,
                    value: shown.value.as_ref().map(|(v, _, _)| v.to_string()),
                    cost,
                    reason: judge::reason(self.view, &rule.judge, &shown, &at),
                }
            })
            .collect();
        AppPlan {
            namespace: app.app.namespace.clone(),
            name: app.app.name.clone(),
            placement,
            unplaced,
            rules,
            warnings,
        }
    }
}

/// Reads one resource of a vector.
type Amount = fn(&Resources) -> i64;

/// How many replicas asking `req` fit in `free` less `used` (`u32::MAX` when it asks for
/// nothing; 0 when something is overdrawn).
fn fits(free: &Resources, used: Option<&Resources>, req: &Resources) -> u32 {
    let zero = Resources::default();
    let used = used.unwrap_or(&zero);
    let mut n = u64::from(u32::MAX);
    let mut dim = |free: i64, used: i64, want: i64| {
        let avail = free.saturating_sub(used);
        if avail < 0 {
            n = 0;
        } else if want > 0 {
            n = n.min((avail / want) as u64);
        }
    };
    dim(free.cpu_millis, used.cpu_millis, req.cpu_millis);
    dim(free.memory_bytes, used.memory_bytes, req.memory_bytes);
    dim(free.pods, used.pods, req.pods);
    for (name, want) in &req.extended {
        let have = free.extended.get(name).copied().unwrap_or(0);
        let taken = used.extended.get(name).copied().unwrap_or(0);
        dim(have, taken, *want);
    }
    for (name, taken) in &used.extended {
        if !req.extended.contains_key(name) {
            let have = free.extended.get(name).copied().unwrap_or(0);
            dim(have, *taken, 0);
        }
    }
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn add_times(total: &mut Resources, req: &Resources, n: u32) {
    let n = i64::from(n);
    total.cpu_millis = total
        .cpu_millis
        .saturating_add(req.cpu_millis.saturating_mul(n));
    total.memory_bytes = total
        .memory_bytes
        .saturating_add(req.memory_bytes.saturating_mul(n));
    total.pods = total.pods.saturating_add(req.pods.saturating_mul(n));
    for (name, amount) in &req.extended {
        let slot = total.extended.entry(name.clone()).or_default();
        *slot = slot.saturating_add(amount.saturating_mul(n));
    }
}

fn subtract(free: &mut Resources, used: &Resources) {
    free.cpu_millis = free.cpu_millis.saturating_sub(used.cpu_millis);
    free.memory_bytes = free.memory_bytes.saturating_sub(used.memory_bytes);
    free.pods = free.pods.saturating_sub(used.pods);
    for (name, amount) in &used.extended {
        let slot = free.extended.entry(name.clone()).or_default();
        *slot = slot.saturating_sub(*amount);
    }
}
