//! Lanes of service chains: rules judged along an ordered path of targets rather than
//! over every pair of them.
//!
//! A lane (docs/network-functions.md) is ingress site -> hop 1 -> ... -> hop n -> egress
//! site. Its end-to-end budget is a sum along that path (latency and jitter add up,
//! bandwidth is the narrowest segment, loss compounds, as [`crate::chain::along`] says):
//! a lane whose every segment passes a pairwise rule may still break its budget. A
//! [`LaneRule`] names the targets in path order; the planner compiles it into a
//! constraint whose value is the rule's cost of the metrics along the path
//! ([`Along::Sum`]) or the worst segment's ([`Along::EachLink`]). While some hops are not
//! placed, the segments between placed neighbours give a lower bound (every metric only
//! gets worse as segments are added), which the constructions and the exact search use.

use std::collections::{BTreeMap, HashMap};

use edgeplane_api::{Compliance, TargetKind, TargetRef};

use super::{NONE, PlanRule, PodKey};
use crate::network::{Location, NetworkGraph, NodeId, PathMetric, PathMetrics};
use crate::rules::{Rule, builtin_metric};

/// How a rule is judged along a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Along {
    /// On the metrics of the whole path (a chain's `endToEnd` policy).
    Sum,
    /// On each segment, the worst deciding (a chain's `perLink` policy).
    EachLink,
}

/// A rule judged along the binding's targets in `order` (role names): sites stay where
/// they are, pods are where the plan puts them (or run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneRule {
    pub order: Vec<String>,
    pub along: Along,
}

/// One place on a compiled lane.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Member {
    /// A pod to place (its index among the problem's pods).
    Pod(u32),
    /// A site or a running pod's node.
    At(Location),
}

/// A lane rule compiled against the problem.
pub(crate) struct LaneCon {
    metric: PathMetric,
    rule: Rule,
    along: Along,
    members: Vec<Member>,
}

/// Compiles a lane rule; `None` when a role is missing, names a pod that neither waits
/// nor runs, or the rule cannot be judged along a path (the rule is then not planned,
/// and reported Pending).
pub(crate) fn compile(
    graph: &NetworkGraph,
    rule: &PlanRule,
    lane: &LaneRule,
    targets: &BTreeMap<String, TargetRef>,
    pending: &HashMap<&PodKey, u32>,
    placed: &HashMap<&PodKey, NodeId>,
) -> Option<LaneCon> {
    let metric = PathMetric::for_rule(&rule.spec.name)?;
    let parsed = Rule::parse(&rule.spec, builtin_metric(&rule.spec.name)?).ok()?;
    let mut members = Vec::with_capacity(lane.order.len());
    for role in &lane.order {
        let target = targets.get(role)?;
        members.push(match target.kind {
            TargetKind::Site => Member::At(Location::Site(graph.site_id(&target.name)?)),
            TargetKind::Pod => {
                let key = PodKey::new(
                    target.namespace.as_deref().unwrap_or("default"),
                    &target.name,
                );
                match (pending.get(&key), placed.get(&key)) {
                    (Some(p), _) => Member::Pod(*p),
                    (None, Some(node)) => Member::At(Location::Node(*node)),
                    (None, None) => return None,
                }
            }
            _ => return None,
        });
    }
    (members.len() >= 2).then_some(LaneCon {
        metric,
        rule: parsed,
        along: lane.along,
        members,
    })
}

impl LaneCon {
    /// The cost of measured metrics: 0 at or better than the request, 1 at the limit,
    /// infinite in Violation or without a path.
    fn judge(&self, m: Option<PathMetrics>) -> f64 {
        let Some(m) = m else { return f64::INFINITY };
        let value = m.value(self.metric);
        if self.rule.judge(&value) == Compliance::Violation {
            f64::INFINITY
        } else {
            self.rule.cost(&value)
        }
    }

    fn locations(&self, node_of: &impl Fn(u32) -> u32) -> Vec<Option<Location>> {
        self.members
            .iter()
            .map(|m| match m {
                Member::At(l) => Some(*l),
                Member::Pod(q) => match node_of(*q) {
                    NONE => None,
                    node => Some(Location::Node(NodeId(node))),
                },
            })
            .collect()
    }

    /// The metrics along the path: of every segment (`exact`), or of the segments whose
    /// both ends are placed (a lower bound on the cost).
    fn cost(&self, graph: &NetworkGraph, node_of: impl Fn(u32) -> u32, exact: bool) -> Option<f64> {
        let at = self.locations(&node_of);
        if exact && at.iter().any(Option::is_none) {
            return None;
        }
        let segments: Vec<Option<PathMetrics>> = at
            .windows(2)
            .filter_map(|w| match (w[0], w[1]) {
                (Some(a), Some(b)) => Some(graph.metrics(a, b)),
                _ => None,
            })
            .collect();
        Some(match self.along {
            Along::Sum => self.judge(crate::chain::along(&segments)),
            Along::EachLink => segments.iter().map(|s| self.judge(*s)).fold(0.0, f64::max),
        })
    }

    /// The printed value along the path (`920us`), once every member has a place.
    fn value_text(&self, graph: &NetworkGraph, node_of: impl Fn(u32) -> u32) -> Option<String> {
        let at: Option<Vec<Location>> = self.locations(&node_of).into_iter().collect();
        let at = at?;
        let segments: Vec<Option<PathMetrics>> =
            at.windows(2).map(|w| graph.metrics(w[0], w[1])).collect();
        match self.along {
            Along::Sum => crate::chain::along(&segments).map(|m| m.value(self.metric).to_string()),
            Along::EachLink => segments
                .iter()
                .map(|s| s.map(|m| (self.judge(Some(m)), m.value(self.metric))))
                .try_fold(None::<(f64, crate::values::Value)>, |worst, s| {
                    let s = s?;
                    Some(Some(match worst {
                        Some(w) if w.0 >= s.0 => w,
                        _ => s,
                    }))
                })
                .flatten()
                .map(|(_, v)| v.to_string()),
        }
    }
}

/// The constraint's value with members at `node_of` (`None` while one is unplaced).
pub(crate) fn value(
    con: &LaneCon,
    graph: &NetworkGraph,
    node_of: impl Fn(u32) -> u32,
) -> Option<f64> {
    con.cost(graph, node_of, true)
}

/// A lower bound on the constraint's value once every member is placed: the segments
/// whose ends are both placed, judged alone.
pub(crate) fn bound(con: &LaneCon, graph: &NetworkGraph, node_of: impl Fn(u32) -> u32) -> f64 {
    con.cost(graph, node_of, false).unwrap_or(0.0)
}

/// What the report says of a lane rule: compliance, the value along the lane, a reason.
pub(crate) fn outcome(
    con: &LaneCon,
    graph: &NetworkGraph,
    rule: &str,
    cost: Option<f64>,
    node_of: impl Fn(u32) -> u32,
) -> (Compliance, Option<String>, Option<String>) {
    let Some(cost) = cost else {
        return (
            Compliance::Pending,
            None,
            Some(format!(
                "{rule} is judged once every hop of the lane is placed"
            )),
        );
    };
    let text = con.value_text(graph, node_of);
    let compliance = if cost.is_infinite() {
        Compliance::Violation
    } else if cost > 0.0 {
        Compliance::Limit
    } else {
        Compliance::Compliant
    };
    let along = match con.along {
        Along::Sum => "along the lane",
        Along::EachLink => "on the worst link of the lane",
    };
    let reason = match &text {
        Some(v) => format!(
            "{rule} {along} is {v} (request {}, limit {})",
            con.rule.request, con.rule.limit
        ),
        None => format!("{rule}: no path along the lane"),
    };
    (compliance, text, Some(reason))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use edgeplane_api::{
        Compliance, ConstraintPolicyRule, Link, NetworkTopology, NetworkTopologySpec, TargetRef,
        TopologySite,
    };

    use super::super::instances::{self, Instance};
    use super::super::*;
    use super::{Along, LaneRule};

    const ZONE: &str = "topology.kubernetes.io/zone";

    fn link(from: &str, to: &str, latency: &str) -> Link {
        Link {
            from: from.into(),
            to: to.into(),
            latency: latency.into(),
            jitter: None,
            bandwidth: None,
            loss: None,
            one_way: false,
        }
    }

    fn node(name: &str, zone: &str) -> PlanNode {
        PlanNode {
            name: name.into(),
            allocatable: Resources {
                cpu_millis: 8000,
                memory_bytes: 64 << 30,
                pods: 110,
                extended: BTreeMap::new(),
            },
            labels: BTreeMap::from([(ZONE.to_string(), zone.to_string())]),
            taints: vec![],
            schedulable: true,
        }
    }

    fn pod(name: &str) -> PendingPod {
        PendingPod {
            key: PodKey::new("upf", name),
            requests: Resources::pod(1000, 1 << 30),
            node_selector: BTreeMap::new(),
            affinity: vec![],
            tolerations: vec![],
            labels: BTreeMap::new(),
            pod_rules: Default::default(),
        }
    }

    fn pinned(name: &str, zone: &str) -> PendingPod {
        let mut p = pod(name);
        p.node_selector.insert(ZONE.into(), zone.into());
        p
    }

    fn latency(request: &str, limit: &str) -> ConstraintPolicyRule {
        ConstraintPolicyRule {
            name: "latency".into(),
            request: request.into(),
            limit: Some(limit.into()),
        }
    }

    fn targets() -> BTreeMap<String, TargetRef> {
        BTreeMap::from([
            ("ingress".to_string(), TargetRef::site("ran")),
            ("hop-fw".to_string(), TargetRef::pod("upf", "fw-0")),
            ("hop-dpi".to_string(), TargetRef::pod("upf", "dpi-0")),
            ("egress".to_string(), TargetRef::site("core")),
        ])
    }

    fn lane_binding(along: Along, rule: ConstraintPolicyRule) -> PlanBinding {
        PlanBinding {
            name: "up-lane-0".into(),
            offer: "upf/up".into(),
            targets: targets(),
            rules: vec![PlanRule {
                policy: "endToEnd".into(),
                spec: rule,
                provider: RuleProvider::Lane(LaneRule {
                    order: ["ingress", "hop-fw", "hop-dpi", "egress"]
                        .map(String::from)
                        .to_vec(),
                    along,
                }),
            }],
        }
    }

    /// ran reaches edge-1 in 0.5ms and edge-2 in 1.5ms; core is 2ms from edge-1 and
    /// 0.5ms from edge-2; the edges are 0.4ms apart, ran and core 2ms (sameNode 20us; no
    /// site is transit, so these are the paths). Along
    /// ran > fw > dpi > core: both on e1 2.52ms, both on e2 2.02ms, fw on e1 and dpi on
    /// e2 1.4ms, fw on e2 and dpi on e1 3.9ms.
    fn instance(
        placed: Vec<PlacedPod>,
        pending: Vec<PendingPod>,
        binding: PlanBinding,
    ) -> Instance {
        let topology = NetworkTopology::new(
            "default",
            NetworkTopologySpec {
                site_label: ZONE.into(),
                same_node: None,
                intra_site: None,
                sites: ["ran", "core", "edge-1", "edge-2"]
                    .iter()
                    .map(|s| TopologySite {
                        name: s.to_string(),
                        labels: BTreeMap::new(),
                        transit: Some(false),
                    })
                    .collect(),
                links: vec![
                    link("ran", "edge-1", "500us"),
                    link("ran", "edge-2", "1500us"),
                    link("edge-1", "core", "2ms"),
                    link("edge-2", "core", "500us"),
                    link("edge-1", "edge-2", "400us"),
                    link("ran", "core", "2ms"),
                ],
                measurement_max_age: None,
            },
        );
        instances::build(
            topology,
            vec![node("e1", "edge-1"), node("e2", "edge-2")],
            placed,
            pending,
            vec![binding],
        )
    }

    fn run(inst: &Instance) -> Plan {
        plan(&inst.input(), &PlanOptions::default())
    }

    fn at(plan: &Plan, pod: &str) -> Option<String> {
        plan.node_of(&PodKey::new("upf", pod)).map(str::to_string)
    }

    #[test]
    fn a_lane_whose_pairs_pass_but_whose_sum_does_not_is_placed_along_its_budget() {
        // Pairwise, both hops on e1 pass: every pair is at most 2ms (ran-core is 2ms
        // via edge-2), so a pairwise rule puts the lane in no Violation there.
        let mut pairwise = lane_binding(Along::Sum, latency("2ms", "2500us"));
        pairwise.rules = vec![PlanRule::builtin("endToEnd", &latency("2ms", "2500us"))];
        let both_on_e1 = instance(
            vec![],
            vec![pinned("fw-0", "edge-1"), pinned("dpi-0", "edge-1")],
            pairwise,
        );
        let p = run(&both_on_e1);
        assert_eq!(p.summary.placed, 2);
        assert_eq!(p.summary.rules_violation, 0);
        assert_eq!(p.bindings[0].compliance, Compliance::Compliant);

        // Along the lane the same placement is 2.52ms, over the 2.5ms limit: the lane
        // cannot be placed there at all.
        let forced = instance(
            vec![],
            vec![pinned("fw-0", "edge-1"), pinned("dpi-0", "edge-1")],
            lane_binding(Along::Sum, latency("2ms", "2500us")),
        );
        let p = run(&forced);
        assert_eq!(p.summary.placed, 1, "{p:#?}");
        assert!(
            p.unplaced[0]
                .reason
                .contains("puts binding up-lane-0 rule latency in Violation"),
            "{}",
            p.unplaced[0].reason
        );

        // Free to choose, the lane goes fw on e1, dpi on e2: 0.5 + 0.4 + 0.5 = 1.4ms.
        let free = instance(
            vec![],
            vec![pod("fw-0"), pod("dpi-0")],
            lane_binding(Along::Sum, latency("2ms", "2500us")),
        );
        let p = run(&free);
        assert_eq!(at(&p, "fw-0").as_deref(), Some("e1"));
        assert_eq!(at(&p, "dpi-0").as_deref(), Some("e2"));
        let rule = &p.bindings[0].rules[0];
        assert_eq!(rule.compliance, Compliance::Compliant);
        assert_eq!(rule.value.as_deref(), Some("1.4ms"));
        assert_eq!(
            rule.reason.as_deref(),
            Some("latency along the lane is 1.4ms (request 2ms, limit 2.5ms)")
        );
        assert!(p.summary.optimal);
    }

    #[test]
    fn the_hops_already_running_are_fixed_points_of_the_lane() {
        // fw runs on e2: dpi on e2 makes 1.5 + 0.02 + 0.5 = 2.02ms (Limit), on e1
        // 1.5 + 0.4 + 2 = 3.9ms (Violation).
        let fw = PlacedPod {
            key: PodKey::new("upf", "fw-0"),
            node: "e2".into(),
            requests: Resources::pod(1000, 1 << 30),
            labels: BTreeMap::new(),
            pod_rules: Default::default(),
        };
        let inst = instance(
            vec![fw],
            vec![pod("dpi-0")],
            lane_binding(Along::Sum, latency("2ms", "2500us")),
        );
        let p = run(&inst);
        assert_eq!(at(&p, "dpi-0").as_deref(), Some("e2"));
        let rule = &p.bindings[0].rules[0];
        assert_eq!(rule.compliance, Compliance::Limit);
        assert_eq!(rule.value.as_deref(), Some("2.02ms"));
        assert!((rule.cost - 0.04).abs() < 1e-6, "{}", rule.cost);
    }

    #[test]
    fn a_per_link_rule_judges_the_worst_segment_not_the_sum() {
        // Every segment within 1ms: only fw on e1 and dpi on e2 (0.5, 0.4, 0.5) passes;
        // its sum (1.4ms) would not.
        let inst = instance(
            vec![],
            vec![pod("fw-0"), pod("dpi-0")],
            lane_binding(Along::EachLink, latency("1ms", "1ms")),
        );
        let p = run(&inst);
        assert_eq!(at(&p, "fw-0").as_deref(), Some("e1"));
        assert_eq!(at(&p, "dpi-0").as_deref(), Some("e2"));
        let rule = &p.bindings[0].rules[0];
        assert_eq!(rule.compliance, Compliance::Compliant);
        assert_eq!(rule.value.as_deref(), Some("500us"));
    }

    #[test]
    fn a_lane_with_a_hop_not_known_is_pending_and_does_not_constrain() {
        let inst = instance(
            vec![],
            vec![pinned("fw-0", "edge-1")],
            lane_binding(Along::Sum, latency("2ms", "2500us")),
        );
        let p = run(&inst);
        assert_eq!(at(&p, "fw-0").as_deref(), Some("e1"));
        assert_eq!(p.bindings[0].compliance, Compliance::Pending);
        assert_eq!(
            p.bindings[0].rules[0].reason.as_deref(),
            Some("latency is judged once every hop of the lane has a pod")
        );
    }
}
