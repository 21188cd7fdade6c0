//! The closed loop: whether an application placed before stays where it is or is placed
//! again. A placement stays while its members are Ready (or NotReady for less than the
//! application's `failover.tolerationSeconds`) and its rules have not been in Violation
//! for longer than the hub's grace; so a member or a link that flaps within those times
//! moves nothing, and a component moved away is not pulled back when the old member
//! recovers (the new placement holds, so it stays): that is the hysteresis. `OpenLoop`
//! applications stay wherever they were placed.

use std::collections::BTreeMap;
use std::time::Duration;

use edgeplane_api::multicluster::{Delegation, Distribution, MecApplication, MemberCluster};
use jiff::Timestamp;

use edgeplane_api::{ConstraintPolicy, NetworkTopology};

use super::members::not_ready_since;
use super::objects::{Built, HubObjects, InputError, build_input};
use super::{AppPlan, HubInput, HubOptions, plan};
use crate::status::{CONDITION_PLACED, CONDITION_RULES_HOLD};

/// How long a member may be NotReady before its components move, when the application
/// does not say (Kubernetes' default toleration of a NotReady node).
pub const DEFAULT_TOLERATION: Duration = Duration::from_secs(300);

/// Cluster -> component -> replicas: a placement the planner judges without moving it.
pub type Placement = BTreeMap<String, BTreeMap<String, u32>>;

/// What to do with an application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep the placement it has.
    Keep(Placement),
    /// Place it (again). `moved` says why a placement it had is abandoned.
    Place { moved: Option<String> },
}

fn seconds(d: jiff::SignedDuration) -> i64 {
    d.as_secs()
}

/// The decision for `app` at `now`, from its status (the placement written before) and
/// the members' Ready conditions.
pub fn decide(
    app: &MecApplication,
    members: &[MemberCluster],
    grace: Duration,
    now: Timestamp,
) -> Decision {
    let place = Decision::Place { moved: None };
    if app.spec.distribution == Distribution::Prescriptive {
        return place;
    }
    let Some(status) = &app.status else {
        return place;
    };
    let placed = status
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_PLACED);
    // The spec changed since it was placed, or it never was: place it.
    if status.placement.is_empty()
        || !status.unplaced.is_empty()
        || placed.is_none_or(|c| c.observed_generation != app.metadata.generation)
    {
        return place;
    }
    let previous: Placement = status
        .placement
        .iter()
        .map(|p| {
            let components = p
                .components
                .iter()
                .map(|(c, n)| (c.clone(), u32::try_from(*n).unwrap_or(0)))
                .collect();
            (p.cluster.clone(), components)
        })
        .collect();
    if app.spec.delegation == Delegation::OpenLoop {
        return Decision::Keep(previous);
    }
    let toleration = app
        .spec
        .failover
        .map(|f| Duration::from_secs(u64::try_from(f.toleration_seconds).unwrap_or(0)))
        .unwrap_or(DEFAULT_TOLERATION);
    for cluster in previous.keys() {
        let Some(member) = members
            .iter()
            .find(|m| m.metadata.name.as_deref() == Some(cluster.as_str()))
        else {
            return Decision::Place {
                moved: Some(format!("member {cluster} is gone")),
            };
        };
        if let Some(since) = not_ready_since(member.status.as_ref()) {
            let down = seconds(now.duration_since(since));
            if down >= i64::try_from(toleration.as_secs()).unwrap_or(i64::MAX) {
                return Decision::Place {
                    moved: Some(format!(
                        "member {cluster} NotReady for {down}s (toleration {}s)",
                        toleration.as_secs()
                    )),
                };
            }
        }
    }
    if let Some(violated) = status
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_RULES_HOLD && c.status == "False")
    {
        let since = seconds(now.duration_since(violated.last_transition_time.0));
        if since >= i64::try_from(grace.as_secs()).unwrap_or(i64::MAX) {
            return Decision::Place {
                moved: Some(format!(
                    "rules in Violation for {since}s (grace {}s): {}",
                    grace.as_secs(),
                    violated.message
                )),
            };
        }
    }
    Decision::Keep(previous)
}

/// One round of the hub over what it observed.
#[derive(Clone, Debug, Default)]
pub struct Round {
    /// The plan of every application that could be read, by `(namespace, name)`.
    pub plans: BTreeMap<(String, String), AppPlan>,
    /// Why an application placed before was placed again (member outage, violation).
    pub moved: BTreeMap<(String, String), String>,
    /// The objects that could not be read, each left out of the round.
    pub errors: Vec<InputError>,
}

/// The object an input error names, as `build_input` writes it.
fn named(app: &MecApplication) -> String {
    format!(
        "MecApplication {}/{}",
        app.metadata.namespace.as_deref().unwrap_or("default"),
        app.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The planner's input from the objects that can be read: an object with an input error
/// is left out (and its errors returned) and the rest read again; an error of the
/// topology leaves nothing. Also returns the members and applications kept.
pub fn build_tolerant(
    topology: Option<&NetworkTopology>,
    members: &[MemberCluster],
    applications: &[MecApplication],
    policies: &[ConstraintPolicy],
    now: Timestamp,
) -> (
    Option<Built>,
    Vec<InputError>,
    Vec<MemberCluster>,
    Vec<MecApplication>,
) {
    let mut errors = Vec::new();
    let mut members: Vec<MemberCluster> = members.to_vec();
    let mut applications: Vec<MecApplication> = applications.to_vec();
    loop {
        let objects = HubObjects {
            topology,
            clusters: &members,
            applications: &applications,
            policies,
        };
        match build_input(&objects, now) {
            Ok(built) => return (Some(built), errors, members, applications),
            Err(found) => {
                let bad: std::collections::BTreeSet<String> =
                    found.iter().map(|e| e.object.clone()).collect();
                let before = members.len() + applications.len();
                members.retain(|m| {
                    !bad.contains(&format!(
                        "MemberCluster {}",
                        m.metadata.name.as_deref().unwrap_or_default()
                    ))
                });
                applications.retain(|a| !bad.contains(&named(a)));
                let progress = members.len() + applications.len() < before;
                errors.extend(found);
                if !progress {
                    return (None, errors, members, applications);
                }
            }
        }
    }
}

/// Plans the applications against the members: each application placed before stays
/// where it is unless [`decide`] says otherwise. An object with an input error is left
/// out (its error in [`Round::errors`]) and the others are planned; an error of the
/// topology plans nothing.
pub fn round(
    topology: Option<&NetworkTopology>,
    members: &[MemberCluster],
    applications: &[MecApplication],
    policies: &[ConstraintPolicy],
    grace: Duration,
    now: Timestamp,
    options: &HubOptions,
) -> Round {
    let (built, errors, members, applications) =
        build_tolerant(topology, members, applications, policies, now);
    let Some(mut built) = built else {
        return Round {
            errors,
            ..Round::default()
        };
    };
    let mut moved = BTreeMap::new();
    for app in &mut built.applications {
        let Some(object) = applications.iter().find(|a| {
            a.metadata.name.as_deref() == Some(app.name.as_str())
                && a.metadata.namespace.as_deref().unwrap_or("default") == app.namespace
        }) else {
            continue;
        };
        match decide(object, &members, grace, now) {
            Decision::Keep(placement) => app.prescribed = Some(placement),
            Decision::Place { moved: Some(why) } => {
                moved.insert((app.namespace.clone(), app.name.clone()), why);
            }
            Decision::Place { moved: None } => {}
        }
    }
    let input = HubInput {
        view: &built.view,
        clusters: built.clusters.clone(),
        applications: built.applications.clone(),
    };
    let plans = plan(&input, options)
        .applications
        .into_iter()
        .map(|p| ((p.namespace.clone(), p.name.clone()), p))
        .collect();
    Round {
        plans,
        moved,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn member(name: &str, ready: &str, since: i64) -> MemberCluster {
        serde_json::from_value(json!({
            "apiVersion": "multicluster.edgeplane.io/v1alpha1", "kind": "MemberCluster",
            "metadata": {"name": name},
            "spec": {"site": "s"},
            "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "r", "message": "",
                "lastTransitionTime": Timestamp::from_second(since).unwrap_or_default().to_string()}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Placed on east (4) and west (2) at generation 1; `rules` is the RulesHold
    /// condition's status, since second 100.
    fn app(delegation: &str, toleration: i64, rules: &str) -> MecApplication {
        let at = Timestamp::from_second(100).unwrap_or_default().to_string();
        serde_json::from_value(json!({
            "apiVersion": "multicluster.edgeplane.io/v1alpha1", "kind": "MecApplication",
            "metadata": {"name": "a", "namespace": "ns", "generation": 1},
            "spec": {
                "components": [{"name": "render", "workload": {"kind": "Deployment", "name": "r"}, "replicas": 6}],
                "delegation": delegation,
                "failover": {"tolerationSeconds": toleration}
            },
            "status": {
                "placement": [{"cluster": "east", "components": {"render": 4}},
                              {"cluster": "west", "components": {"render": 2}}],
                "clusterCount": 2,
                "compliance": "Compliant",
                "conditions": [
                    {"type": "Placed", "status": "True", "reason": "Placed", "message": "",
                     "lastTransitionTime": at, "observedGeneration": 1},
                    {"type": "RulesHold", "status": rules, "reason": "x", "message": "latency 9ms",
                     "lastTransitionTime": at, "observedGeneration": 1}
                ]
            }
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap_or_default()
    }

    fn kept() -> Decision {
        Decision::Keep(BTreeMap::from([
            ("east".into(), BTreeMap::from([("render".into(), 4)])),
            ("west".into(), BTreeMap::from([("render".into(), 2)])),
        ]))
    }

    const GRACE: Duration = Duration::from_secs(60);

    #[test]
    fn a_placement_stays_while_it_holds() {
        let members = [member("east", "True", 0), member("west", "True", 0)];
        assert_eq!(
            decide(&app("ClosedLoop", 120, "True"), &members, GRACE, at(1000)),
            kept()
        );
    }

    #[test]
    fn a_member_outage_moves_it_only_after_the_toleration() {
        let members = [member("east", "True", 0), member("west", "False", 500)];
        let app = app("ClosedLoop", 120, "True");
        assert_eq!(decide(&app, &members, GRACE, at(619)), kept());
        assert_eq!(
            decide(&app, &members, GRACE, at(620)),
            Decision::Place {
                moved: Some("member west NotReady for 120s (toleration 120s)".into())
            }
        );
        // OpenLoop: never moved.
        let open = self::app("OpenLoop", 120, "True");
        assert_eq!(decide(&open, &members, GRACE, at(10_000)), kept());
        // A member that is gone moves it at once.
        assert_eq!(
            decide(&app, &members[..1], GRACE, at(501)),
            Decision::Place {
                moved: Some("member west is gone".into())
            }
        );
    }

    #[test]
    fn a_violation_moves_it_only_after_grace() {
        let members = [member("east", "True", 0), member("west", "True", 0)];
        let app = app("ClosedLoop", 120, "False");
        assert_eq!(decide(&app, &members, GRACE, at(159)), kept());
        assert_eq!(
            decide(&app, &members, GRACE, at(160)),
            Decision::Place {
                moved: Some("rules in Violation for 60s (grace 60s): latency 9ms".into())
            }
        );
    }

    #[test]
    fn a_changed_spec_or_no_placement_is_placed() {
        let members = [member("east", "True", 0), member("west", "True", 0)];
        let mut changed = app("ClosedLoop", 120, "True");
        changed.metadata.generation = Some(2);
        assert_eq!(
            decide(&changed, &members, GRACE, at(1000)),
            Decision::Place { moved: None }
        );
        let mut fresh = app("ClosedLoop", 120, "True");
        fresh.status = None;
        assert_eq!(
            decide(&fresh, &members, GRACE, at(1000)),
            Decision::Place { moved: None }
        );
    }

    fn ready_member(name: &str, site: &str, ready: &str, since: i64) -> MemberCluster {
        let mut m = member(name, ready, since);
        m.spec.site = site.into();
        if let Some(status) = m.status.as_mut() {
            status.capacity = Some(edgeplane_api::multicluster::ClusterCapacity {
                allocatable: BTreeMap::from([
                    ("cpu".into(), "8".into()),
                    ("memory".into(), "16Gi".into()),
                    ("pods".into(), "110".into()),
                ]),
                requested: BTreeMap::new(),
            });
        }
        m
    }

    #[test]
    fn a_round_keeps_what_holds_and_fails_over_past_the_toleration() {
        let topology: NetworkTopology = serde_json::from_value(json!({
            "apiVersion": "network.edgeplane.io/v1alpha1", "kind": "NetworkTopology",
            "metadata": {"name": "default"},
            "spec": {"sites": [{"name": "a"}, {"name": "b"}],
                     "links": [{"from": "a", "to": "b", "latency": "5ms"}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut app = app("ClosedLoop", 120, "True");
        app.spec.resources = vec![json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "r"},
            "spec": {"replicas": 6, "template": {"spec": {"containers": [{"name": "c", "image": "x",
                "resources": {"requests": {"cpu": "100m"}}}]}}}})];
        // Both Ready: the placement it has (4 on east, 2 on west) stays.
        let members = [
            ready_member("east", "a", "True", 0),
            ready_member("west", "b", "True", 0),
        ];
        let options = HubOptions::default();
        let r = round(
            Some(&topology),
            &members,
            &[app.clone()],
            &[],
            GRACE,
            at(1000),
            &options,
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let plan = &r.plans[&("ns".to_string(), "a".to_string())];
        assert_eq!(
            (
                plan.replicas_on("render", "east"),
                plan.replicas_on("render", "west")
            ),
            (4, 2)
        );
        assert!(r.moved.is_empty());
        // West down since 500: kept at 600, moved to east at 620.
        let members = [
            ready_member("east", "a", "True", 0),
            ready_member("west", "b", "False", 500),
        ];
        let r = round(
            Some(&topology),
            &members,
            &[app.clone()],
            &[],
            GRACE,
            at(600),
            &options,
        );
        let plan = &r.plans[&("ns".to_string(), "a".to_string())];
        assert_eq!(plan.replicas_on("render", "west"), 2);
        let r = round(
            Some(&topology),
            &members,
            &[app.clone()],
            &[],
            GRACE,
            at(620),
            &options,
        );
        let plan = &r.plans[&("ns".to_string(), "a".to_string())];
        assert_eq!(
            (
                plan.replicas_on("render", "east"),
                plan.replicas_on("render", "west")
            ),
            (6, 0)
        );
        assert_eq!(
            r.moved[&("ns".to_string(), "a".to_string())],
            "member west NotReady for 120s (toleration 120s)"
        );
        // A broken application is left out with its error; the others are planned.
        let mut broken = app.clone();
        broken.metadata.name = Some("b".into());
        broken.spec.constraints = vec![
            serde_json::from_value(
                json!({"policy": "nope", "targets": [{"component": "render"}, {"site": "a"}]}),
            )
            .unwrap_or_else(|e| panic!("{e}")),
        ];
        let r = round(
            Some(&topology),
            &members,
            &[app, broken],
            &[],
            GRACE,
            at(620),
            &options,
        );
        assert_eq!(r.plans.len(), 1);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].object, "MecApplication ns/b");
    }
}
