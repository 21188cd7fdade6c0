use super::*;
use std::collections::BTreeMap;
use std::time::Duration;

use edgeplane_api::{Compliance, ViolationPolicy};
use jiff::Timestamp;

use super::action::short;
use super::replacement::HOSTNAME_LABEL;
use crate::evaluate::ClusterView;
use crate::placement::ResourceList;
use crate::planner::{
    NodeOperator, NodeRequirement, NodeSelectorTerm, PlanBinding, PlanNode, PlanOptions, PodKey,
};

mod capacity;
mod migration;

const T0: &str = "2025-06-01T00:00:00Z";

fn t(secs: i64) -> Timestamp {
    let base: Timestamp = T0.parse().unwrap_or_else(|e| panic!("{e}"));
    base.checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn offer(policy: ViolationPolicy) -> OfferFacts {
    OfferFacts {
        policy,
        grace: Duration::from_secs(60),
        mitigation_grace: Duration::from_secs(30),
    }
}

fn binding(name: &str, offer: &str, since: Option<i64>, pods: &[&str]) -> BindingFacts {
    BindingFacts {
        key: BindingKey::new("ar", name),
        offer: offer.into(),
        compliance: if since.is_some() {
            Compliance::Violation
        } else {
            Compliance::Compliant
        },
        violating_since: since.map(t),
        last_mitigated: None,
        pods: pods.iter().map(|p| PodKey::new("ar", *p)).collect(),
    }
}

/// 2 cpu, 1Gi, one pod, in milli-units (what a renderer asks).
fn renderer_requests() -> ResourceList {
    ResourceList::from([
        ("cpu".to_string(), 2000),
        ("memory".to_string(), (1i128 << 30) * 1000),
        ("pods".to_string(), 1000),
    ])
}

fn pod(name: &str, created: i64, owner: Owner) -> PodFacts {
    let controller = matches!(owner, Owner::Controller(_)).then(|| "rs-uid".to_string());
    PodFacts {
        key: PodKey::new("ar", name),
        created: Some(t(created)),
        owner,
        controller,
        demand: Demand {
            requests: renderer_requests(),
            ..Demand::default()
        },
        running: true,
        terminating: false,
        vmi: None,
    }
}

fn owned() -> Owner {
    Owner::Controller("ReplicaSet".into())
}

/// A node with `cpu` cores, 64Gi and 110 pods, of which the pods on it use `used_cpu`.
fn room(name: &str, cpu: i128, used_cpu: i128) -> NodeRoom {
    NodeRoom {
        name: name.into(),
        allocatable: ResourceList::from([
            ("cpu".to_string(), cpu * 1000),
            ("memory".to_string(), (64i128 << 30) * 1000),
            ("pods".to_string(), 110_000),
        ]),
        used: ResourceList::from([("cpu".to_string(), used_cpu * 1000)]),
        ..NodeRoom::default()
    }
}

struct World {
    bindings: Vec<BindingFacts>,
    offers: BTreeMap<String, OfferFacts>,
    pods: BTreeMap<PodKey, PodFacts>,
    limits: Limits,
    controller: bool,
    dry_run: bool,
    memory: Memory,
    /// What the planner predicts for each pod, best first: the first node with room for
    /// the pod once the held room is taken (a planner that sees the held room).
    predictions: BTreeMap<String, Vec<Predicted>>,
    /// The room in the cluster.
    capacity: Capacity,
    /// The cluster's VirtualMachineInstanceMigrations.
    migrations: Vec<MigrationFacts>,
}

impl World {
    fn new(policy: ViolationPolicy) -> World {
        World {
            bindings: Vec::new(),
            offers: BTreeMap::from([("ar/o".to_string(), offer(policy))]),
            pods: BTreeMap::new(),
            limits: Limits::default(),
            controller: false,
            dry_run: false,
            memory: Memory::default(),
            predictions: BTreeMap::new(),
            capacity: Capacity::default(),
            migrations: Vec::new(),
        }
    }

    fn pod(mut self, p: PodFacts) -> World {
        self.pods.insert(p.key.clone(), p);
        self
    }

    fn binding(mut self, b: BindingFacts) -> World {
        self.bindings.push(b);
        self
    }

    /// The planner puts the replacement of `pod` on `node` (a node with plenty of room
    /// unless the capacity says otherwise).
    fn restores(mut self, pod: &str, node: &str, limits: usize, cost: f64) -> World {
        self.add_prediction(pod, restoring(node, limits, cost));
        self
    }

    fn add_prediction(&mut self, pod: &str, predicted: Predicted) {
        if let Predicted::Restores(p) = &predicted
            && !self.capacity.nodes.iter().any(|n| n.name == p.node)
        {
            self.capacity.nodes.push(room(&p.node, 64, 0));
        }
        self.predictions
            .entry(pod.into())
            .or_default()
            .push(predicted);
    }

    fn fails(mut self, pod: &str, why: &str) -> World {
        self.add_prediction(pod, Predicted::Fails(why.into()));
        self
    }

    /// The node's room, replacing what `restores` assumed.
    fn room(mut self, node: NodeRoom) -> World {
        self.capacity.nodes.retain(|n| n.name != node.name);
        self.capacity.nodes.push(node);
        self
    }

    /// The actions at `now`, and the pods the planner was asked about.
    fn decide(&self, now: i64) -> (Vec<Action>, Vec<String>) {
        let input = Input {
            now: t(now),
            bindings: &self.bindings,
            offers: &self.offers,
            pods: &self.pods,
            limits: &self.limits,
            controller: self.controller,
            dry_run: self.dry_run,
            mitigation_period: Duration::from_secs(60),
            memory: &self.memory,
            migrations: &self.migrations,
        };
        let mut fake = FakePlanner {
            world: self,
            asked: Vec::new(),
            capacity_reads: 0,
        };
        let actions = decide(&input, &mut fake);
        assert!(
            fake.capacity_reads <= 1,
            "the capacity is read once a cycle"
        );
        (actions, fake.asked)
    }

    /// Runs a cycle and remembers it, as the runtime does.
    fn cycle(&mut self, now: i64) -> Vec<Action> {
        let (actions, _) = self.decide(now);
        self.memory.record(&actions, &self.bindings, t(now));
        actions
    }
}

/// Answers as the planner would from the world: the first predicted node with room for the
/// pod once `held` is taken.
struct FakePlanner<'a> {
    world: &'a World,
    asked: Vec<String>,
    capacity_reads: usize,
}

impl Questions for FakePlanner<'_> {
    fn capacity(&mut self) -> Capacity {
        self.capacity_reads += 1;
        self.world.capacity.clone()
    }

    fn predict(&mut self, _: &BindingFacts, pod: &PodKey, held: &[Reservation]) -> Predicted {
        self.asked.push(pod.name.clone());
        let requests = self
            .world
            .pods
            .get(pod)
            .map(|p| p.demand.requests.clone())
            .unwrap_or_default();
        let has_room = |node: &str| {
            let Some(n) = self.world.capacity.nodes.iter().find(|n| n.name == node) else {
                return true;
            };
            let mut taken = n.used.clone();
            for r in held.iter().filter(|r| r.node == node) {
                for (k, v) in &r.requests {
                    *taken.entry(k.clone()).or_default() += v;
                }
            }
            crate::placement::insufficient(&requests, &n.allocatable, &taken).is_none()
        };
        let options = self.world.predictions.get(&pod.name);
        for predicted in options.into_iter().flatten() {
            match predicted {
                Predicted::Restores(p) if !has_room(&p.node) => continue,
                other => return other.clone(),
            }
        }
        Predicted::Fails(match options {
            Some(_) => "its replacement could not be placed: no node has room for it".into(),
            None => "no prediction".into(),
        })
    }
}

/// The planner's prediction that moving a pod to `node` restores its binding.
fn restoring(node: &str, limits: usize, cost: f64) -> Predicted {
    Predicted::Restores(Prediction {
        node: node.into(),
        site: None,
        limits,
        cost,
        note: "latency 1ms (Compliant)".into(),
    })
}

fn key(name: &str) -> BindingKey {
    BindingKey::new("ar", name)
}

fn evicted(actions: &[Action]) -> Vec<(String, Vec<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Evict {
                binding,
                candidates,
            } => Some((
                binding.name.clone(),
                candidates.iter().map(|c| c.pod.name.clone()).collect(),
            )),
            _ => None,
        })
        .collect()
}

fn skips(actions: &[Action]) -> Vec<(String, &'static str)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Skip { binding, reason } => Some((binding.name.clone(), reason.kind())),
            _ => None,
        })
        .collect()
}

#[test]
fn nothing_before_the_grace_and_never_on_error_or_pending() {
    for policy in [
        ViolationPolicy::Ignore,
        ViolationPolicy::Mediate,
        ViolationPolicy::Evict,
    ] {
        let mut w = World::new(policy)
            .pod(pod("p", -600, owned()))
            .binding(binding("b", "o", Some(0), &["p"]))
            .restores("p", "n2", 0, 0.0);
        w.controller = true;
        // 59s in Violation: shorter than the grace.
        assert_eq!(w.decide(59).0, vec![], "{policy:?}");
        // Error and Pending never have violatingSince; even a stale one is not acted on.
        for compliance in [Compliance::Error, Compliance::Pending, Compliance::Limit] {
            w.bindings[0].compliance = compliance;
            assert_eq!(w.decide(3600).0, vec![], "{policy:?} {compliance:?}");
        }
        // In Violation but without violatingSince: not (yet) in Violation for us.
        w.bindings[0].compliance = Compliance::Violation;
        w.bindings[0].violating_since = None;
        assert_eq!(w.decide(3600).0, vec![], "{policy:?}");
    }
}

#[test]
fn a_binding_whose_offer_is_gone_is_left_alone() {
    let w = World::new(ViolationPolicy::Evict)
        .pod(pod("p", -600, owned()))
        .binding(binding("b", "gone", Some(0), &["p"]));
    assert_eq!(w.decide(3600).0, vec![]);
}

#[test]
fn ignore_records_once_per_episode() {
    let mut w = World::new(ViolationPolicy::Ignore)
        .pod(pod("p", -600, owned()))
        .binding(binding("b", "o", Some(0), &["p"]));
    assert_eq!(w.cycle(60), vec![Action::Ignore { binding: key("b") }]);
    assert_eq!(w.cycle(70), vec![]);
    assert_eq!(w.cycle(7200), vec![]);
    // A new episode (the binding recovered and fell back into Violation) is reported.
    w.bindings[0].violating_since = Some(t(8000));
    w.memory.prune(&w.bindings, &w.pods);
    assert_eq!(w.cycle(8030), vec![]);
    assert_eq!(w.cycle(8060), vec![Action::Ignore { binding: key("b") }]);
}

#[test]
fn mediate_mitigates_at_most_once_per_period_and_never_evicts() {
    let mut w = World::new(ViolationPolicy::Mediate)
        .pod(pod("p", -600, owned()))
        .binding(binding("b", "o", Some(0), &["p"]))
        .restores("p", "n2", 0, 0.0);
    w.controller = true;
    assert_eq!(w.cycle(60), vec![Action::Mitigate { binding: key("b") }]);
    // The status write is not in the cache yet: the process remembers.
    assert_eq!(w.cycle(70), vec![]);
    assert_eq!(w.cycle(119), vec![]);
    assert_eq!(w.cycle(120), vec![Action::Mitigate { binding: key("b") }]);
    // The status says a mitigation happened more recently (another replica before a
    // failover): it counts.
    w.memory = Memory::default();
    w.bindings[0].last_mitigated = Some(t(150));
    assert_eq!(w.cycle(180), vec![]);
    assert_eq!(w.cycle(210), vec![Action::Mitigate { binding: key("b") }]);
    // Hours later: still only mitigations.
    for now in (300..7200).step_by(10) {
        for a in w.cycle(now) {
            assert!(matches!(a, Action::Mitigate { .. }), "{a:?}");
        }
    }
}

#[test]
fn mediate_without_a_controller_says_so_once() {
    let mut w = World::new(ViolationPolicy::Mediate)
        .pod(pod("p", -600, owned()))
        .binding(binding("b", "o", Some(0), &["p"]));
    assert_eq!(skips(&w.cycle(60)), [("b".to_string(), "no-controller")]);
    assert_eq!(w.cycle(70), vec![]);
}

#[test]
fn evict_with_a_controller_mitigates_first_then_evicts_after_the_mitigation_grace() {
    let mut w = World::new(ViolationPolicy::Evict)
        .pod(pod("p", -600, owned()))
        .binding(binding("b", "o", Some(0), &["p"]))
        .restores("p", "n2", 0, 0.0);
    w.controller = true;
    assert_eq!(w.cycle(59), vec![]);
    assert_eq!(w.cycle(60), vec![Action::Mitigate { binding: key("b") }]);
    w.bindings[0].last_mitigated = Some(t(60));
    // mitigationGrace (30s) from lastMitigatedTimestamp; no second mitigation meanwhile.
    assert_eq!(w.decide(89).0, vec![]);
    let (actions, asked) = w.decide(90);
    assert_eq!(evicted(&actions), [("b".into(), vec!["p".to_string()])]);
    assert_eq!(asked, ["p"]);
    // A mitigation from an earlier episode does not count: mitigate again first (once the
    // period allows).
    w.memory = Memory::default();
    if let Some(o) = w.offers.get_mut("ar/o") {
        o.grace = Duration::from_secs(10);
    }
    w.bindings[0].last_mitigated = Some(t(95));
    w.bindings[0].violating_since = Some(t(100));
    assert_eq!(w.decide(110).0, vec![]);
    assert_eq!(w.decide(154).0, vec![]);
    assert_eq!(
        w.decide(155).0,
        vec![Action::Mitigate { binding: key("b") }]
    );
}

#[test]
fn evict_without_a_controller_evicts_after_the_grace() {
    let w = World::new(ViolationPolicy::Evict)
        .pod(pod("p", -600, owned()))
        .binding(binding("b", "o", Some(0), &["p"]))
        .restores("p", "n2", 0, 0.0);
    assert_eq!(w.decide(59).0, vec![]);
    assert_eq!(
        evicted(&w.decide(60).0),
        [("b".into(), vec!["p".to_string()])]
    );
}

#[test]
fn the_pod_the_planner_prefers_is_evicted_not_a_random_one() {
    // Three pods in the binding: one cannot restore it, two can; the one with fewer
    // Limits wins, then cost; bare pods come after owned ones.
    let w = World::new(ViolationPolicy::Evict)
        .pod(pod("a", -600, owned()))
        .pod(pod("b", -600, owned()))
        .pod(pod("c", -600, owned()))
        .pod(pod("d", -600, Owner::Bare))
        .binding(binding("x", "o", Some(0), &["a", "b", "c", "d"]))
        .fails(
            "a",
            "every feasible node puts binding x rule latency in Violation",
        )
        .restores("b", "n2", 1, 0.2)
        .restores("c", "n3", 1, 0.1)
        .restores("d", "n4", 0, 0.0);
    let (actions, asked) = w.decide(60);
    assert_eq!(asked, ["a", "b", "c", "d"]);
    assert_eq!(
        evicted(&actions),
        [("x".into(), vec!["c".into(), "b".into(), "d".into()])]
    );
    // Ties: by name.
    let w = World::new(ViolationPolicy::Evict)
        .pod(pod("b", -600, owned()))
        .pod(pod("a", -600, owned()))
        .binding(binding("x", "o", Some(0), &["b", "a"]))
        .restores("a", "n2", 0, 0.0)
        .restores("b", "n3", 0, 0.0);
    assert_eq!(
        evicted(&w.decide(60).0),
        [("x".into(), vec!["a".into(), "b".into()])]
    );
}

#[test]
fn no_eviction_when_no_move_restores_compliance() {
    let mut w = World::new(ViolationPolicy::Evict)
        .pod(pod("a", -600, owned()))
        .binding(binding("x", "o", Some(0), &["a"]))
        .fails(
            "a",
            "every feasible node puts binding x rule latency in Violation",
        );
    let actions = w.cycle(60);
    assert_eq!(skips(&actions), [("x".to_string(), "no-candidate")]);
    let Action::Skip { reason, .. } = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(
        reason.to_string(),
        "no pod of the binding can move to restore compliance, so none is evicted: ar/a: every feasible node puts binding x rule latency in Violation"
    );
    // Reported once per episode.
    assert_eq!(w.cycle(70), vec![]);
}

#[test]
fn unmovable_pods_are_not_candidates() {
    let mut daemon = pod("ds", -600, Owner::Unmovable("DaemonSet".into()));
    daemon.running = true;
    let mut stopped = pod("stopped", -600, owned());
    stopped.running = false;
    let w = World::new(ViolationPolicy::Evict)
        .pod(daemon)
        .pod(stopped)
        .binding(binding("x", "o", Some(0), &["ds", "stopped", "missing"]));
    let (actions, asked) = w.decide(60);
    assert!(asked.is_empty());
    assert_eq!(skips(&actions), [("x".to_string(), "unmovable")]);
    let Action::Skip { reason, .. } = &actions[0] else {
        panic!()
    };
    assert_eq!(
        reason.to_string(),
        "no pod of the binding can be moved: ar/ds belongs to a DaemonSet, which recreates it in place; ar/stopped is not running; ar/missing does not exist"
    );
    // A binding of sites only.
    let w2 = World::new(ViolationPolicy::Evict).binding(binding("y", "o", Some(0), &[]));
    let (actions, _) = w2.decide(60);
    let Action::Skip { reason, .. } = &actions[0] else {
        panic!()
    };
    assert_eq!(
        reason.to_string(),
        "no pod of the binding can be moved: it has no Pod target (sites do not move)"
    );
}

#[test]
fn young_pods_are_not_evicted() {
    let w = World::new(ViolationPolicy::Evict)
        .pod(pod("p", 30, owned()))
        .binding(binding("b", "o", Some(0), &["p"]))
        .restores("p", "n2", 0, 0.0);
    // At 60s the pod is 30s old: too young (min 60s); the planner is not asked.
    let (actions, asked) = w.decide(60);
    assert!(asked.is_empty());
    assert_eq!(skips(&actions), [("b".to_string(), "min-pod-age")]);
    let Action::Skip { reason, .. } = &actions[0] else {
        panic!()
    };
    assert_eq!(
        reason.to_string(),
        "not evicting: pods younger than the minimum age 1m: ar/p (30s)"
    );
    assert_eq!(evicted(&w.decide(90).0), [("b".into(), vec!["p".into()])]);
}

#[test]
fn limits_per_cycle_namespace_and_offer() {
    let mut w = World::new(ViolationPolicy::Evict);
    w.offers
        .insert("ar/o2".into(), offer(ViolationPolicy::Evict));
    w.offers
        .insert("ar/o3".into(), offer(ViolationPolicy::Evict));
    w.offers
        .insert("web/o".into(), offer(ViolationPolicy::Evict));
    for (i, (ns, offer)) in [
        ("ar", "o"),
        ("ar", "o"),
        ("ar", "o2"),
        ("ar", "o3"),
        ("web", "o"),
    ]
    .iter()
    .enumerate()
    {
        let name = format!("p{i}");
        let mut p = pod(&name, -600, owned());
        p.key.namespace = ns.to_string();
        w.pods.insert(p.key.clone(), p);
        w.add_prediction(&name, restoring("n", 0, 0.0));
        let mut b = binding(&format!("b{i}"), offer, Some(i as i64), &[]);
        b.key.namespace = ns.to_string();
        b.pods = vec![PodKey::new(*ns, &name)];
        w.bindings.push(b);
    }
    // Oldest violation first: b0 (ar/o) evicts; b1 (ar/o) hits the offer limit; b2
    // (ar/o2) evicts; b3 (ar/o3) hits the namespace limit (2 in ar); b4 (web) evicts.
    let (actions, asked) = w.decide(600);
    assert_eq!(asked, ["p0", "p2", "p4"]);
    assert_eq!(
        evicted(&actions),
        [
            ("b0".into(), vec!["p0".into()]),
            ("b2".into(), vec!["p2".into()]),
            ("b4".into(), vec!["p4".into()])
        ]
    );
    assert_eq!(
        skips(&actions),
        [
            ("b1".to_string(), "limit-offer"),
            ("b3".to_string(), "limit-namespace")
        ]
    );
    // Two per cycle in all.
    w.limits.per_cycle = 2;
    let (actions, _) = w.decide(600);
    assert_eq!(evicted(&actions).len(), 2);
    assert_eq!(
        skips(&actions),
        [
            ("b1".to_string(), "limit-offer"),
            ("b3".to_string(), "limit-cycle"),
            ("b4".to_string(), "limit-cycle")
        ]
    );
    let Action::Skip { reason, .. } = &actions[1] else {
        panic!()
    };
    assert_eq!(
        reason.to_string(),
        "not evicting: 1 evictions for offer ar/o this cycle already (--max-evictions-per-offer)"
    );
    // A binding that evicts nothing (no candidate) takes no slot.
    w.limits = Limits::default();
    w.predictions
        .insert("p0".into(), vec![Predicted::Fails("nowhere".into())]);
    let (actions, _) = w.decide(600);
    assert_eq!(
        evicted(&actions),
        [
            ("b1".into(), vec!["p1".into()]),
            ("b2".into(), vec!["p2".into()]),
            ("b4".into(), vec!["p4".into()])
        ]
    );
}

#[test]
fn a_binding_held_back_by_a_limit_gets_its_turn_next_cycle() {
    let mut w = World::new(ViolationPolicy::Evict)
        .pod(pod("a", -600, owned()))
        .pod(pod("b", -600, owned()))
        .binding(binding("x", "o", Some(0), &["a"]))
        .binding(binding("y", "o", Some(1), &["b"]))
        .restores("a", "n", 0, 0.0)
        .restores("b", "n", 0, 0.0);
    let first = w.cycle(100);
    assert_eq!(evicted(&first).len(), 1);
    assert_eq!(skips(&first), [("y".to_string(), "limit-offer")]);
    // The eviction is under way (the runtime remembers the pod); y is not reported again.
    w.memory.evicted.insert(PodKey::new("ar", "a"), t(100));
    let second = w.cycle(110);
    assert_eq!(evicted(&second), [("y".into(), vec!["b".into()])]);
    assert!(skips(&second).is_empty());
}

#[test]
fn pods_on_the_move_are_waited_for() {
    let mut w = World::new(ViolationPolicy::Evict)
        .pod(pod("a", -600, owned()))
        .binding(binding("x", "o", Some(0), &["a"]))
        .restores("a", "n", 0, 0.0);
    w.memory.evicted.insert(PodKey::new("ar", "a"), t(50));
    assert_eq!(w.decide(100).0, vec![]);
    w.memory.evicted.clear();
    if let Some(p) = w.pods.get_mut(&PodKey::new("ar", "a")) {
        p.terminating = true;
    }
    assert_eq!(w.decide(100).0, vec![]);
    // Pruning forgets evicted pods once they are gone or terminating.
    w.memory.evicted.insert(PodKey::new("ar", "a"), t(50));
    w.memory.prune(&w.bindings.clone(), &w.pods.clone());
    assert!(w.memory.evicted.is_empty());
}

#[test]
fn dry_run_only_reports() {
    let mut w = World::new(ViolationPolicy::Evict)
        .pod(pod("p", -600, owned()))
        .binding(binding("b", "o", Some(0), &["p"]))
        .restores("p", "edge-2-a", 0, 0.0);
    w.controller = true;
    w.dry_run = true;
    // The mitigation is reported, not asked for; its grace is counted from then.
    assert_eq!(
        skips(&w.cycle(60)),
        [("b".to_string(), "dry-run-mitigation")]
    );
    assert_eq!(w.cycle(70), vec![]);
    let actions = w.cycle(90);
    assert_eq!(skips(&actions), [("b".to_string(), "dry-run")]);
    let Action::Skip { reason, .. } = &actions[0] else {
        panic!()
    };
    assert_eq!(
        reason.to_string(),
        "dry run: would evict pod ar/p; the planner expects its replacement on edge-2-a: latency 1ms (Compliant)"
    );
    assert_eq!(w.cycle(100), vec![]);
    // Mediate in dry run.
    let mut w = World::new(ViolationPolicy::Mediate)
        .pod(pod("p", -600, owned()))
        .binding(binding("b", "o", Some(0), &["p"]));
    w.controller = true;
    w.dry_run = true;
    assert_eq!(
        skips(&w.cycle(60)),
        [("b".to_string(), "dry-run-mitigation")]
    );
    assert_eq!(w.cycle(200), vec![]);
}

#[test]
fn longest_violation_first() {
    let w = World::new(ViolationPolicy::Ignore)
        .binding(binding("late", "o", Some(50), &[]))
        .binding(binding("early", "o", Some(10), &[]))
        .binding(binding("a-same", "o", Some(50), &[]));
    let names: Vec<String> = w
        .decide(600)
        .0
        .iter()
        .map(|a| a.binding().name.clone())
        .collect();
    assert_eq!(names, ["early", "a-same", "late"]);
}

#[test]
fn durations_read_well() {
    assert_eq!(short(Duration::from_secs(90)), "1m30s");
    assert_eq!(short(Duration::from_secs(3600)), "1h");
    assert_eq!(short(Duration::from_millis(250)), "250ms");
    assert_eq!(short(Duration::ZERO), "0ms");
}

mod replacement {
    use super::*;
    use crate::manifests::{Object, decode, parse_documents};
    use crate::planner::{PlanRule, pending_pod, plan_node};
    use edgeplane_api::{ConstraintPolicyRule, TargetRef};
    use k8s_openapi::api::core::v1::Node;

    const WORLD: &str = r#"
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites: [{name: stadium}, {name: metro}]
  links:
  - {from: stadium, to: edge-1, latency: 12ms}
  - {from: stadium, to: edge-2, latency: 1ms}
  - {from: edge-1, to: metro, latency: 3ms}
  - {from: edge-2, to: metro, latency: 3ms}
---
apiVersion: v1
kind: Node
metadata: {name: e1, labels: {topology.kubernetes.io/zone: edge-1}}
status: {allocatable: {cpu: "4", memory: 8Gi, pods: "10"}}
---
apiVersion: v1
kind: Node
metadata: {name: e2, labels: {topology.kubernetes.io/zone: edge-2}}
status: {allocatable: {cpu: "4", memory: 8Gi, pods: "10"}}
"#;

    fn world() -> (ClusterView, Vec<PlanNode>) {
        let docs = parse_documents("w.yaml", WORLD).unwrap_or_else(|e| panic!("{e}"));
        let mut topology = None;
        let mut nodes: Vec<Node> = Vec::new();
        for d in &docs {
            match decode(d).unwrap_or_else(|e| panic!("{e}")) {
                Object::Topology(t) => topology = Some(*t),
                Object::Node(n) => nodes.push(*n),
                _ => {}
            }
        }
        let now = "2025-06-01T00:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let view = ClusterView::build(topology.as_ref(), &nodes, &[], now)
            .unwrap_or_else(|e| panic!("{e}"));
        let plan_nodes = nodes
            .iter()
            .map(|n| plan_node(n).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        (view, plan_nodes)
    }

    fn binding(limit: &str) -> PlanBinding {
        PlanBinding {
            name: "b".into(),
            offer: "ar/o".into(),
            targets: BTreeMap::from([
                ("renderer".to_string(), TargetRef::pod("ar", "p")),
                ("users".to_string(), TargetRef::site("stadium")),
            ]),
            rules: vec![PlanRule::builtin(
                "near-users",
                &ConstraintPolicyRule {
                    name: "latency".into(),
                    request: "2ms".into(),
                    limit: Some(limit.into()),
                },
            )],
        }
    }

    fn question<'a>(
        view: &'a ClusterView,
        nodes: &[PlanNode],
        limit: &str,
    ) -> ReplacementQuestion<'a> {
        let spec = serde_json::from_value(serde_json::json!({
                "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "1"}}}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["e1"]}]}]}}}
            }))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut pod = pending_pod(PodKey::new("ar", "p"), BTreeMap::new(), &spec)
            .unwrap_or_else(|e| panic!("{e}"));
        pod.affinity = unpinned(&pod.affinity);
        ReplacementQuestion {
            view,
            nodes: nodes.to_vec(),
            placed: Vec::new(),
            pod,
            current_node: "e1".into(),
            bindings: vec![binding(limit)],
            binding: "b".into(),
        }
    }

    #[test]
    fn the_replacement_goes_where_the_binding_holds() {
        let (view, nodes) = world();
        let predicted =
            predict_replacement(question(&view, &nodes, "5ms"), &PlanOptions::default());
        let Predicted::Restores(p) = predicted else {
            panic!("{predicted:?}")
        };
        assert_eq!(p.node, "e2");
        assert_eq!(p.site.as_deref(), Some("edge-2"));
        assert_eq!(p.limits, 0);
        assert_eq!(p.describe(), "e2 (site edge-2): latency 1ms (Compliant)");
    }

    #[test]
    fn no_prediction_when_nowhere_holds() {
        let (view, nodes) = world();
        // The best node reaches the stadium in 1ms: a 500us limit holds nowhere.
        let mut q = question(&view, &nodes, "500us");
        q.bindings[0].rules = vec![PlanRule::builtin(
            "near-users",
            &ConstraintPolicyRule {
                name: "latency".into(),
                request: "200us".into(),
                limit: Some("500us".into()),
            },
        )];
        let predicted = predict_replacement(q, &PlanOptions::default());
        let Predicted::Fails(why) = predicted else {
            panic!("{predicted:?}")
        };
        assert!(
                why.starts_with("its replacement could not be placed: every feasible node puts binding b rule latency in Violation"),
                "{why}"
            );
    }

    #[test]
    fn the_schedulers_pin_is_removed_and_the_pods_own_affinity_kept() {
        let req = |key: &str, values: &[&str]| NodeRequirement {
            key: key.into(),
            operator: NodeOperator::In,
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let pinned_alone = vec![NodeSelectorTerm {
            match_expressions: vec![],
            match_fields: vec![req("metadata.name", &["e1"])],
        }];
        assert_eq!(unpinned(&pinned_alone), vec![]);
        let own = vec![
            NodeSelectorTerm {
                match_expressions: vec![req("tier", &["edge"]), req(HOSTNAME_LABEL, &["h1"])],
                match_fields: vec![],
            },
            NodeSelectorTerm {
                match_expressions: vec![req("zone", &["a", "b"]), req(HOSTNAME_LABEL, &["h1"])],
                match_fields: vec![],
            },
        ];
        assert_eq!(
            unpinned(&own),
            vec![
                NodeSelectorTerm {
                    match_expressions: vec![req("tier", &["edge"])],
                    match_fields: vec![],
                },
                NodeSelectorTerm {
                    match_expressions: vec![req("zone", &["a", "b"])],
                    match_fields: vec![],
                },
            ]
        );
    }
}
