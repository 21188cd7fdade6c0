//! From an assignment to a [`Plan`]: assignments, unplaced pods with specific reasons, and
//! the predicted compliance of every binding and rule.

use std::collections::{BTreeMap, HashMap, HashSet};

use edgeplane_api::Compliance;

use super::candidates::candidates;
use super::compile::{ConKind, INF, NONE, Problem, pair_cost_value};
use super::feasibility::{affinity_matches, matches_node_selector, untolerated};
use super::state::State;
use super::{Assignment, BindingPlan, Plan, PlanInput, RulePlan, RuleProvider, Summary, Unplaced};
use crate::network::{Location, NodeId};
use crate::rules::{Direction, worst};
use crate::values::{Unit, Value};

pub(crate) fn build(input: &PlanInput<'_>, p: &Problem<'_>, assignment: &[u32]) -> Plan {
    let st = State::from_assignment(p, assignment);
    let mut assignments = Vec::new();
    let mut unplaced = Vec::new();
    for (u, pod) in p.pods.iter().enumerate() {
        let key = &input.pending[pod.input].key;
        match st.node_of[u] {
            NONE => unplaced.push(Unplaced {
                pod: key.clone(),
                reason: reason(input, &st, u as u32),
            }),
            node => assignments.push(Assignment {
                pod: key.clone(),
                node: p.graph.node_name(NodeId(node)).to_string(),
            }),
        }
    }

    // The view with the plan applied, for the built-in providers' own evaluation. An
    // evaluation locates the targets of its binding only: the placed pods that are none
    // (thousands on a large cluster) need not be placed again.
    let targets: HashSet<(&str, &str)> = input
        .bindings
        .iter()
        .flat_map(|b| b.targets.values())
        .filter(|t| t.kind == edgeplane_api::TargetKind::Pod)
        .map(|t| (t.namespace.as_deref().unwrap_or("default"), t.name.as_str()))
        .collect();
    let mut view = input.view.clone();
    for pod in &input.placed {
        if targets.contains(&(pod.key.namespace.as_str(), pod.key.name.as_str())) {
            view.place(&pod.key.namespace, &pod.key.name, Some(&pod.node));
        }
    }
    for (u, pod) in p.pods.iter().enumerate() {
        let key = &input.pending[pod.input].key;
        let node = (st.node_of[u] != NONE).then(|| p.graph.node_name(NodeId(st.node_of[u])));
        view.place(&key.namespace, &key.name, node);
    }
    let con_of: HashMap<(u32, u32), usize> = p
        .cons
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.binding, c.rule), i))
        .collect();

    let mut summary = Summary {
        pods: p.pods.len(),
        placed: assignments.len(),
        unplaced: unplaced.len(),
        ..Summary::default()
    };
    let mut bindings = Vec::with_capacity(input.bindings.len());
    for (b, binding) in input.bindings.iter().enumerate() {
        let mut rules = Vec::with_capacity(binding.rules.len());
        for (r, rule) in binding.rules.iter().enumerate() {
            let internal = con_of
                .get(&(b as u32, r as u32))
                .and_then(|c| st.values[*c]);
            let (compliance, value, reason) = match &rule.provider {
                RuleProvider::Broken(reason) => (Compliance::Error, None, Some(reason.clone())),
                RuleProvider::Lane(_) => {
                    match con_of.get(&(b as u32, r as u32)).map(|c| &p.cons[*c].kind) {
                        Some(ConKind::Lane(l)) => super::lanes::outcome(
                            &p.lanes[*l as usize],
                            p.graph,
                            &rule.spec.name,
                            internal,
                            |q| st.node_of[q as usize],
                        ),
                        _ => (
                            Compliance::Pending,
                            None,
                            Some(format!(
                                "{} is judged once every hop of the lane has a pod",
                                rule.spec.name
                            )),
                        ),
                    }
                }
                RuleProvider::Builtin(compiled) => {
                    let o = compiled.evaluate(&view, &binding.targets);
                    (o.compliance, o.value, o.reason)
                }
                RuleProvider::External(ext) => match (&ext.error, internal) {
                    (Some(e), _) => (Compliance::Error, None, Some(e.clone())),
                    (None, None) => (
                        Compliance::Pending,
                        None,
                        Some(format!(
                            "{} is judged once every pod target is placed",
                            rule.spec.name
                        )),
                    ),
                    (None, Some(v)) => {
                        let c = compliance_of(v);
                        let text = if v.is_finite() {
                            format!("{v:.3}")
                        } else {
                            "infeasible".into()
                        };
                        (
                            c,
                            Some(text.clone()),
                            Some(format!("{}: the provider's cost is {text}", rule.spec.name)),
                        )
                    }
                },
            };
            let cost = match (compliance, internal) {
                (Compliance::Limit | Compliance::Compliant, Some(v)) if v.is_finite() => v,
                (Compliance::Violation, Some(v)) => v,
                (Compliance::Violation, None) => INF,
                _ => 0.0,
            };
            match compliance {
                Compliance::Compliant => summary.rules_compliant += 1,
                Compliance::Limit => summary.rules_limit += 1,
                Compliance::Violation => summary.rules_violation += 1,
                Compliance::Error => summary.rules_error += 1,
                Compliance::Pending => summary.rules_pending += 1,
            }
            if cost.is_finite() {
                summary.cost += cost;
            }
            rules.push(RulePlan {
                policy: rule.policy.clone(),
                rule: rule.spec.name.clone(),
                value,
                compliance,
                cost,
                reason,
            });
        }
        bindings.push(BindingPlan {
            name: binding.name.clone(),
            offer: binding.offer.clone(),
            targets: binding.targets.clone(),
            compliance: worst(rules.iter().map(|r| r.compliance)),
            rules,
        });
    }
    Plan {
        assignments,
        unplaced,
        bindings,
        summary,
        warnings: p.warnings.clone(),
    }
}

fn compliance_of(v: f64) -> Compliance {
    if v.is_infinite() {
        Compliance::Violation
    } else if v > 0.0 {
        Compliance::Limit
    } else {
        Compliance::Compliant
    }
}

/// Why a pod is not placed, as specifically as the input allows.
fn reason(input: &PlanInput<'_>, st: &State<'_, '_>, u: u32) -> String {
    let p = st.p;
    let pod = &input.pending[p.pods[u as usize].input];
    let class = &p.classes[p.pods[u as usize].class as usize];

    // 1. No node may take it at all.
    if class.sites.is_empty() {
        let usable: Vec<&super::PlanNode> = p
            .plan_node
            .iter()
            .flatten()
            .map(|i| &input.nodes[*i])
            .collect();
        if usable.is_empty() {
            return "there are no nodes to place it on".into();
        }
        let schedulable: Vec<_> = usable.iter().filter(|n| n.schedulable).collect();
        if schedulable.is_empty() {
            return "every node is cordoned (unschedulable)".into();
        }
        let selected: Vec<_> = schedulable
            .iter()
            .filter(|n| matches_node_selector(&pod.node_selector, &n.labels))
            .collect();
        if selected.is_empty() {
            let text: Vec<String> = pod
                .node_selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            return format!("no node matches nodeSelector {}", text.join(","));
        }
        let affine: Vec<_> = selected
            .iter()
            .filter(|n| affinity_matches(&pod.affinity, &n.name, &n.labels))
            .collect();
        if affine.is_empty() {
            return "no node matches its required node affinity".into();
        }
        if let Some(node) = affine.first()
            && let Some(taint) = untolerated(&node.taints, &pod.tolerations)
        {
            return format!(
                "every node that matches its selectors has a taint it does not tolerate (for example {taint} on {})",
                node.name
            );
        }
        return "no node may take it".into();
    }

    // 2. Not enough room, even before this plan.
    let eligible: Vec<u32> = class
        .sites
        .iter()
        .flat_map(|s| class.by_site[*s as usize].iter().copied())
        .collect();
    let req = &p.pods[u as usize].req;
    if !eligible.iter().any(|x| p.fits(u, *x, &p.free0)) {
        return short_of(p, req, &eligible, &p.free0, "");
    }

    // 3. Room only before the plan's other pods took it.
    if !eligible.iter().any(|x| st.fits(u, *x)) {
        return format!(
            "placing it would leave fewer pods placed overall: {}",
            short_of(p, req, &eligible, &st.free, " after placing the others")
        );
    }

    // 4. Room, but on every node with room it would break a rule between pods.
    let roomy: Vec<u32> = eligible
        .iter()
        .copied()
        .filter(|x| st.fits(u, *x))
        .collect();
    if roomy.iter().all(|x| !st.allowed(u, *x))
        && let Some((why, x)) = roomy
            .iter()
            .find_map(|x| st.why_not(u, *x).map(|why| (why, *x)))
    {
        return format!(
            "every node with room for it breaks a rule between pods: {why} (for example on {})",
            p.graph.node_name(NodeId(x))
        );
    }

    // 5. Room, but every such node breaks a rule of a binding.
    let mut cands = Vec::new();
    candidates(st, u, &mut cands);
    let mut blocking: BTreeMap<usize, (usize, Option<(f64, String)>)> = BTreeMap::new();
    let mut any_free = false;
    for x in &cands {
        let mut violated = false;
        for c in &p.pods[u as usize].cons {
            let v = p.value(*c, |q| if q == u { *x } else { st.node_of[q as usize] });
            if v.is_some_and(f64::is_infinite) {
                violated = true;
                let entry = blocking.entry(*c as usize).or_insert((0, None));
                entry.0 += 1;
                if let Some(best) = closest(st, *c as usize, u, *x)
                    && entry.1.as_ref().is_none_or(|b| best.0 < b.0)
                {
                    entry.1 = Some(best);
                }
            }
        }
        any_free |= !violated;
    }
    if !any_free
        && let Some((c, (_, best))) = blocking
            .iter()
            .max_by_key(|(c, (n, _))| (*n, std::cmp::Reverse(**c)))
    {
        let con = &p.cons[*c];
        let binding = &input.bindings[con.binding as usize];
        let rule = &binding.rules[con.rule as usize].spec.name;
        let best = best
            .as_ref()
            .map(|(_, text)| format!(" (best: {text})"))
            .unwrap_or_default();
        return format!(
            "every feasible node puts binding {} rule {rule} in Violation{best}",
            binding.name
        );
    }
    "placing it would leave fewer pods placed overall".into()
}

/// For a violated pairwise constraint with pod `u` on `x`: the worst pair's value, ranked
/// (lower is closer to the limit), and `14ms to stadium, limit 10ms`.
fn closest(st: &State<'_, '_>, c: usize, u: u32, x: u32) -> Option<(f64, String)> {
    let p = st.p;
    let con = &p.cons[c];
    let ConKind::Pair(t) = con.kind else {
        return None;
    };
    let here = Location::Node(NodeId(x));
    let mut others: Vec<Location> = con.fixed.clone();
    for q in &con.pods {
        let node = st.node_of[*q as usize];
        if *q != u && node != NONE {
            others.push(Location::Node(NodeId(node)));
        }
    }
    let mut worst: Option<(f64, Value, Location)> = None;
    for other in others {
        let (value, rule) = pair_cost_value(p, t, here, other);
        let Some(value) = value else {
            return Some((
                f64::INFINITY,
                format!("no path to {}", location_name(p, other)),
            ));
        };
        let m = value.magnitude().unwrap_or(0.0);
        let rank = match rule.direction {
            Direction::LowerIsBetter => m,
            Direction::HigherIsBetter => -m,
        };
        if worst.as_ref().is_none_or(|w| rank > w.0) {
            worst = Some((rank, value, other));
        }
    }
    let (rank, value, other) = worst?;
    let rule = pair_cost_value(p, t, here, here).1;
    Some((
        rank,
        format!(
            "{value} to {}, limit {}",
            location_name(p, other),
            rule.limit
        ),
    ))
}

fn location_name(p: &Problem<'_>, l: Location) -> String {
    match l {
        Location::Node(n) => p.graph.node_name(n).to_string(),
        Location::Site(s) => p.graph.site_name(s).to_string(),
    }
}

/// `no node has 16 CPU free (largest free: 8 on edge-3-a)`.
fn short_of(p: &Problem<'_>, req: &[i64], nodes: &[u32], free: &[i64], after: &str) -> String {
    let d = p.d();
    for k in 0..d {
        let largest = nodes
            .iter()
            .map(|x| (free[*x as usize * d + k], *x))
            .max_by_key(|(f, x)| (*f, std::cmp::Reverse(*x)));
        let Some((most, at)) = largest else { break };
        if most < req[k] {
            let at = p.graph.node_name(NodeId(at));
            return match k {
                0 => format!(
                    "no node has {} CPU free{after} (largest free: {} on {at})",
                    cores(req[k]),
                    cores(most.max(0))
                ),
                1 => format!(
                    "no node has {} memory free{after} (largest free: {} on {at})",
                    Value::quantity(Unit::Bytes, req[k] as f64),
                    Value::quantity(Unit::Bytes, most.max(0) as f64)
                ),
                2 => format!("every node that may take it is at its pod limit{after}"),
                _ => format!(
                    "no node has {} {} free{after} (largest free: {} on {at})",
                    req[k],
                    p.dims[k],
                    most.max(0)
                ),
            };
        }
    }
    let wanted: Vec<String> = (0..d)
        .filter(|k| req[*k] > 0)
        .map(|k| match k {
            0 => format!("{} CPU", cores(req[k])),
            1 => format!("{} memory", Value::quantity(Unit::Bytes, req[k] as f64)),
            2 => "room for a pod".to_string(),
            _ => format!("{} {}", req[k], p.dims[k]),
        })
        .collect();
    format!("no node has {} free at once{after}", wanted.join(" and "))
}

fn cores(millis: i64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{}m", millis)
    }
}
