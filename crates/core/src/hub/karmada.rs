//! Carrying the hub's placement out through Karmada (docs/multicluster.md), two ways:
//!
//! - as Karmada's scheduler: a PropagationPolicy with `spec.schedulerName: edgeplane`
//!   makes Karmada copy that name into the ResourceBindings it creates and leave them
//!   unscheduled; the hub writes each binding's `spec.clusters [{name, replicas}]`
//!   ([`binding_clusters`]) and Karmada's own controllers make the Works. The
//!   application is read from the bindings themselves ([`application_from_bindings`]):
//!   each binding's workload is a component with the binding's replicas and replica
//!   requirements, spread from the placement's `spreadConstraints` by cluster, and the
//!   constraints from the policy's annotation [`CONSTRAINTS_ANNOTATION`];
//! - for Karmadas whose scheduler may not be replaced: a plain PropagationPolicy per
//!   placed component ([`propagation_policies`]) with the chosen clusters as cluster
//!   affinity and the replica shares as static weights, which Karmada's scheduler then
//!   divides exactly as planned.
//!
//! What is written is checked against the upstream CRDs (../shared/crds/karmada) by a test
//! on the embedded cluster (crates/cli/tests/multicluster.rs).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use edgeplane_api::ConstraintPolicy;
use edgeplane_api::multicluster::{ApplicationConstraint, MecApplication, MemberCluster};
use serde_json::{Value as Json, json};

use super::objects::InputError;
use super::{AppPlan, Application, Component, Constraint, Target};
use crate::manifests::is_cluster_scoped;
use crate::placement::{Taint, TaintEffect};
use crate::planner::convert::resources;
use crate::quantity::parse_milli;

/// The `schedulerName` that hands a PropagationPolicy's bindings to edgeplane.
pub const SCHEDULER_NAME: &str = "edgeplane";
/// On a PropagationPolicy: the constraints of its workloads, as JSON in the shape of a
/// MecApplication's `spec.constraints`, components named by workload name:
/// `[{"policy": "near-fans", "targets": [{"component": "ar-render"}, {"site": "stadium"}]}]`.
pub const CONSTRAINTS_ANNOTATION: &str = "multicluster.edgeplane.io/constraints";
pub use super::FIELD_MANAGER;

/// Member cluster name -> its name in Karmada (`spec.karmadaCluster`, else its own).
pub fn karmada_names(members: &[MemberCluster]) -> BTreeMap<String, String> {
    members
        .iter()
        .filter_map(|m| {
            let name = m.metadata.name.clone()?;
            let karmada = m
                .spec
                .karmada_cluster
                .clone()
                .unwrap_or_else(|| name.clone());
            Some((name, karmada))
        })
        .collect()
}

/// Whether Karmada leaves this ResourceBinding (work.karmada.io/v1alpha2) to edgeplane.
pub fn is_ours(binding: &Json) -> bool {
    binding
        .pointer("/spec/schedulerName")
        .and_then(Json::as_str)
        == Some(SCHEDULER_NAME)
}

/// Where Karmada names, on a ResourceBinding (label or annotation), the PropagationPolicy
/// it was made for.
pub const POLICY_NAME_KEY: &str = "propagationpolicy.karmada.io/name";

/// The bindings among `bindings` that Karmada made for `policy` and left to edgeplane:
/// same namespace, [`POLICY_NAME_KEY`] naming it, `schedulerName: edgeplane`.
pub fn bindings_of<'a>(policy: &Json, bindings: &'a [Json]) -> Vec<&'a Json> {
    let text = |o: &'a Json, p: &str| o.pointer(p).and_then(Json::as_str);
    let key = POLICY_NAME_KEY.replace('/', "~1");
    let name = policy.pointer("/metadata/name").and_then(Json::as_str);
    let namespace = policy.pointer("/metadata/namespace").and_then(Json::as_str);
    bindings
        .iter()
        .filter(|b| {
            is_ours(b)
                && text(b, "/metadata/namespace") == namespace
                && (text(b, &format!("/metadata/labels/{key}")) == name
                    || text(b, &format!("/metadata/annotations/{key}")) == name)
        })
        .collect()
}

/// The apply bodies for the bindings whose `spec.clusters` differ from the plan's.
pub fn binding_changes(
    plan: &AppPlan,
    bindings: &[&Json],
    karmada: &BTreeMap<String, String>,
    violated_since: Option<Timestamp>,
) -> Vec<Json> {
    let since = violated_since.map(|t| t.to_string());
    bindings
        .iter()
        .filter_map(|binding| {
            let workload = binding
                .pointer("/spec/resource/name")
                .and_then(Json::as_str)?;
            let clusters = binding_clusters(plan, workload, karmada);
            let written = binding
                .pointer("/spec/clusters")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            let noted = annotation(binding, VIOLATED_SINCE_ANNOTATION);
            (written != clusters || noted != since.as_deref())
                .then(|| binding_apply(binding, clusters, violated_since))
        })
        .collect()
}

/// On the ResourceBindings of a policy whose rules are in Violation: since when (RFC
/// 3339), so that the grace survives a restart of the hub (Karmada's objects have no
/// field for it; the hub owns the annotation by server-side apply and drops it when the
/// rules hold again).
pub const VIOLATED_SINCE_ANNOTATION: &str = "multicluster.edgeplane.io/violated-since";

fn annotation<'a>(object: &'a Json, name: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(name))
        .and_then(Json::as_str)
}

/// Since when a policy's rules are in Violation, as its bindings' [`VIOLATED_SINCE_ANNOTATION`]
/// say: the earliest of them. A value that is not an RFC 3339 time is ignored (the grace
/// then starts again, and the next write replaces it).
pub fn violated_since(bindings: &[Json]) -> Option<Timestamp> {
    bindings
        .iter()
        .filter_map(|b| annotation(b, VIOLATED_SINCE_ANNOTATION)?.parse().ok())
        .min()
}

/// What [`VIOLATED_SINCE_ANNOTATION`] should say after this round: the time already noted
/// while the plan still has a rule in Violation (`now`, to the second, when none was),
/// nothing once none is.
pub fn next_violated_since(
    plan: &AppPlan,
    noted: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    first_violation(plan)?;
    Some(noted.unwrap_or_else(|| Timestamp::from_second(now.as_second()).unwrap_or(now)))
}

/// The placement a policy's bindings already have, by member name (cluster -> component
/// -> replicas), when every binding gives all its replicas in `spec.clusters` and every
/// cluster named is a member in `ready`: the hub then keeps it (judged, not moved), so a
/// placement does not follow every change of the members' free capacity, which the
/// placed replicas themselves take. `None` asks for a placement.
pub fn written_placement(
    bindings: &[Json],
    karmada: &BTreeMap<String, String>,
    ready: &std::collections::BTreeSet<String>,
) -> Option<BTreeMap<String, BTreeMap<String, u32>>> {
    let mut placement: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for binding in bindings {
        let component = binding
            .pointer("/spec/resource/name")
            .and_then(Json::as_str)?;
        let replicas = binding.pointer("/spec/replicas").and_then(Json::as_u64)?;
        let clusters = binding.pointer("/spec/clusters").and_then(Json::as_array)?;
        let mut given = 0u64;
        for target in clusters {
            let name = target.get("name").and_then(Json::as_str)?;
            let n = target.get("replicas").and_then(Json::as_u64)?;
            let member = karmada
                .iter()
                .find(|(_, k)| k.as_str() == name)
                .map(|(m, _)| m.clone())
                .filter(|m| ready.contains(m))?;
            given += n;
            *placement
                .entry(member)
                .or_default()
                .entry(component.to_string())
                .or_default() += u32::try_from(n).ok()?;
        }
        if clusters.is_empty() || given != replicas {
            return None;
        }
    }
    (!placement.is_empty()).then_some(placement)
}

/// Karmada's taint keys for a cluster that is not ready / not reachable.
pub const NOT_READY_TAINT: &str = "cluster.karmada.io/not-ready";
pub const UNREACHABLE_TAINT: &str = "cluster.karmada.io/unreachable";

/// How long a policy's workloads stay on a NotReady member before they move: the
/// shortest `tolerationSeconds` of its `spec.placement.clusterTolerations` for Karmada's
/// not-ready or unreachable taint (`NoExecute`, or every effect), else 300 s (what
/// Karmada's webhook gives a policy that says nothing).
pub fn cluster_toleration(policy: &Json) -> Duration {
    policy
        .pointer("/spec/placement/clusterTolerations")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter(|t| {
            let key = t.get("key").and_then(Json::as_str).unwrap_or_default();
            let effect = t.get("effect").and_then(Json::as_str).unwrap_or_default();
            matches!(key, NOT_READY_TAINT | UNREACHABLE_TAINT) && matches!(effect, "" | "NoExecute")
        })
        .filter_map(|t| t.get("tolerationSeconds").and_then(Json::as_u64))
        .min()
        .map(Duration::from_secs)
        .unwrap_or(super::closed_loop::DEFAULT_TOLERATION)
}

/// The first rule of a plan in Violation, as `policy/rule: reason`.
pub fn first_violation(plan: &AppPlan) -> Option<String> {
    plan.rules
        .iter()
        .find(|r| r.compliance == edgeplane_api::Compliance::Violation)
        .map(|r| format!("{}/{}: {}", r.policy, r.rule, r.reason))
}

/// Karmada mode's closed loop, as [`super::closed_loop::decide`] is direct mode's: what
/// a policy's bindings already say stays (judged, not moved) while every member it uses
/// is Ready or NotReady for less than [`cluster_toleration`], and its rules have not been
/// in Violation (`violated_since`: [`violated_since`] of its bindings, which the hub
/// writes, so a restarted hub counts from the same time) for `grace` or longer.
pub fn decide(
    policy: &Json,
    bindings: &[Json],
    karmada: &BTreeMap<String, String>,
    members: &[MemberCluster],
    violated_since: Option<Timestamp>,
    grace: Duration,
    now: Timestamp,
) -> super::closed_loop::Decision {
    use super::closed_loop::Decision;
    let known: std::collections::BTreeSet<String> = karmada.keys().cloned().collect();
    let Some(written) = written_placement(bindings, karmada, &known) else {
        return Decision::Place { moved: None };
    };
    let toleration = cluster_toleration(policy);
    for cluster in written.keys() {
        let status = members
            .iter()
            .find(|m| m.metadata.name.as_deref() == Some(cluster.as_str()))
            .and_then(|m| m.status.as_ref());
        if let Some(since) = super::members::not_ready_since(status) {
            let down = now.duration_since(since).as_secs();
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
    if let Some(since) = violated_since {
        let held = now.duration_since(since).as_secs();
        if held >= i64::try_from(grace.as_secs()).unwrap_or(i64::MAX) {
            return Decision::Place {
                moved: Some(format!(
                    "rules in Violation for {held}s (grace {}s)",
                    grace.as_secs()
                )),
            };
        }
    }
    Decision::Keep(written)
}

/// `spec.clusters` of a component's binding: `[{name, replicas}]` by Karmada cluster name,
/// in name order.
pub fn binding_clusters(
    plan: &AppPlan,
    component: &str,
    karmada: &BTreeMap<String, String>,
) -> Vec<Json> {
    let mut targets: Vec<(String, u32)> = plan
        .shares_of(component)
        .into_iter()
        .map(|(cluster, n)| {
            let name = karmada
                .get(cluster)
                .cloned()
                .unwrap_or_else(|| cluster.to_string());
            (name, n)
        })
        .collect();
    targets.sort();
    targets
        .into_iter()
        .map(|(name, replicas)| json!({"name": name, "replicas": replicas}))
        .collect()
}

/// The server-side apply body that sets a binding's `spec.clusters` (field manager
/// [`FIELD_MANAGER`]); everything else of the binding stays Karmada's.
pub fn binding_apply(
    binding: &Json,
    clusters: Vec<Json>,
    violated_since: Option<Timestamp>,
) -> Json {
    let mut body = json!({
        "apiVersion": "work.karmada.io/v1alpha2",
        "kind": "ResourceBinding",
        "metadata": {
            "name": binding.pointer("/metadata/name").cloned().unwrap_or(Json::Null),
            "namespace": binding.pointer("/metadata/namespace").cloned().unwrap_or(Json::Null),
        },
        "spec": {"clusters": clusters}
    });
    // Left out when the rules hold: server-side apply then removes the hub's annotation.
    if let Some(since) = violated_since {
        body["metadata"]["annotations"] = json!({VIOLATED_SINCE_ANNOTATION: since.to_string()});
    }
    body
}

/// One PropagationPolicy per placed component of an application: its workload, the
/// clusters chosen as cluster affinity, and the planned shares as static weights
/// (Divided, Weighted), so Karmada's own scheduler divides the replicas as planned; and
/// `<app>-shared` for its other namespaced resources, to every cluster it uses
/// (cluster-scoped ones would need a ClusterPropagationPolicy and are left out).
pub fn propagation_policies(
    app: &MecApplication,
    plan: &AppPlan,
    karmada: &BTreeMap<String, String>,
) -> Vec<Json> {
    let namespace = app.metadata.namespace.as_deref().unwrap_or("default");
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let mut policies: Vec<Json> = app
        .spec
        .components
        .iter()
        .filter_map(|component| {
            let targets = binding_clusters(plan, &component.name, karmada);
            if targets.is_empty() {
                return None;
            }
            let names: Vec<Json> = targets.iter().map(|t| t["name"].clone()).collect();
            let weights: Vec<Json> = targets
                .iter()
                .map(|t| {
                    json!({"targetCluster": {"clusterNames": [t["name"].clone()]},
                           "weight": t["replicas"].clone()})
                })
                .collect();
            Some(json!({
                "apiVersion": "policy.karmada.io/v1alpha1",
                "kind": "PropagationPolicy",
                "metadata": {
                    "name": format!("{name}-{}", component.name),
                    "namespace": namespace,
                    "labels": {"multicluster.edgeplane.io/application": name},
                },
                "spec": {
                    "resourceSelectors": [{
                        "apiVersion": "apps/v1",
                        "kind": component.workload.kind.as_str(),
                        "name": component.workload.name,
                    }],
                    "placement": {
                        "clusterAffinity": {"clusterNames": names},
                        "replicaScheduling": {
                            "replicaSchedulingType": "Divided",
                            "replicaDivisionPreference": "Weighted",
                            "weightPreference": {"staticWeightList": weights},
                        },
                    },
                },
            }))
        })
        .collect();
    // The application's other namespaced resources (Services, ConfigMaps, ...) go to
    // every cluster it uses, as offline mode writes them: one policy, Duplicated.
    let mut used: Vec<Json> = plan
        .placement
        .iter()
        .map(|s| {
            json!(
                karmada
                    .get(&s.cluster)
                    .cloned()
                    .unwrap_or_else(|| s.cluster.clone())
            )
        })
        .collect();
    used.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    let shared: Vec<Json> = app
        .spec
        .resources
        .iter()
        .filter(|r| {
            let kind = r.get("kind").and_then(Json::as_str).unwrap_or("");
            let name = r
                .pointer("/metadata/name")
                .and_then(Json::as_str)
                .unwrap_or("");
            !is_cluster_scoped(kind)
                && !app
                    .spec
                    .components
                    .iter()
                    .any(|c| c.workload.kind.as_str() == kind && c.workload.name == name)
        })
        .map(|r| {
            json!({
                "apiVersion": r.get("apiVersion").cloned().unwrap_or(Json::Null),
                "kind": r.get("kind").cloned().unwrap_or(Json::Null),
                "name": r.pointer("/metadata/name").cloned().unwrap_or(Json::Null),
            })
        })
        .collect();
    if !shared.is_empty() && !used.is_empty() {
        policies.push(json!({
            "apiVersion": "policy.karmada.io/v1alpha1",
            "kind": "PropagationPolicy",
            "metadata": {
                "name": format!("{name}-shared"),
                "namespace": namespace,
                "labels": {"multicluster.edgeplane.io/application": name},
            },
            "spec": {
                "resourceSelectors": shared,
                "placement": {"clusterAffinity": {"clusterNames": used}},
            },
        }));
    }
    policies
}

/// The application a PropagationPolicy with `schedulerName: edgeplane` stands for: one
/// component per ResourceBinding of it (named like the binding's workload), constraints
/// from [`CONSTRAINTS_ANNOTATION`] resolved against the namespace's ConstraintPolicies.
pub fn application_from_bindings(
    policy: &Json,
    bindings: &[Json],
    policies: &[ConstraintPolicy],
) -> Result<Application, InputError> {
    let namespace = policy
        .pointer("/metadata/namespace")
        .and_then(Json::as_str)
        .unwrap_or("default")
        .to_string();
    let name = policy
        .pointer("/metadata/name")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let object = format!("PropagationPolicy {namespace}/{name}");
    let fail = |field: String, message: String| InputError {
        object: object.clone(),
        field,
        message,
    };
    let mut components = Vec::new();
    for binding in bindings {
        let binding_name = binding
            .pointer("/metadata/name")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let in_binding = |field: &str, message: String| InputError {
            object: format!("ResourceBinding {namespace}/{binding_name}"),
            field: field.to_string(),
            message,
        };
        let workload = binding
            .pointer("/spec/resource/name")
            .and_then(Json::as_str)
            .ok_or_else(|| in_binding("spec.resource.name", "missing".into()))?;
        let replicas = binding
            .pointer("/spec/replicas")
            .and_then(Json::as_u64)
            .unwrap_or(0);
        let mut list: BTreeMap<String, i128> = BTreeMap::new();
        if let Some(request) = binding
            .pointer("/spec/replicaRequirements/resourceRequest")
            .and_then(Json::as_object)
        {
            for (resource, amount) in request {
                let text = amount
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| amount.to_string());
                let milli = parse_milli(&text).filter(|m| *m >= 0).ok_or_else(|| {
                    in_binding(
                        &format!("spec.replicaRequirements.resourceRequest[{resource:?}]"),
                        format!("{text:?} is not a non-negative quantity"),
                    )
                })?;
                list.insert(resource.clone(), milli);
            }
        }
        let mut requests = resources(&list);
        requests.pods = requests.pods.max(1);
        let (mut min, mut max) = (1u32, u32::try_from(replicas.max(1)).unwrap_or(u32::MAX));
        for spread in binding
            .pointer("/spec/placement/spreadConstraints")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            if spread.get("spreadByField").and_then(Json::as_str) == Some("cluster") {
                let read = |key: &str| {
                    spread
                        .get(key)
                        .and_then(Json::as_u64)
                        .and_then(|n| u32::try_from(n).ok())
                };
                min = read("minGroups").unwrap_or(min).max(1);
                max = read("maxGroups").unwrap_or(max).max(1);
            }
        }
        components.push(Component {
            name: workload.to_string(),
            replicas: u32::try_from(replicas).unwrap_or(u32::MAX),
            requests,
            tolerations: Vec::new(),
            min_clusters: min.min(max),
            max_clusters: max,
        });
    }
    let mut constraints = Vec::new();
    if let Some(text) = policy
        .pointer(&format!(
            "/metadata/annotations/{}",
            CONSTRAINTS_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Json::as_str)
    {
        let field = format!("metadata.annotations[{CONSTRAINTS_ANNOTATION:?}]");
        let written: Vec<ApplicationConstraint> = serde_json::from_str(text)
            .map_err(|e| fail(field.clone(), format!("not a list of constraints: {e}")))?;
        for (i, c) in written.iter().enumerate() {
            let found = policies.iter().find(|p| {
                p.metadata.name.as_deref() == Some(c.policy.as_str())
                    && p.metadata.namespace.as_deref().unwrap_or("default") == namespace
            });
            let Some(found) = found else {
                return Err(fail(
                    format!("{field}[{i}].policy"),
                    format!("no ConstraintPolicy {namespace}/{}", c.policy),
                ));
            };
            let mut targets = Vec::new();
            for (t, target) in c.targets.iter().enumerate() {
                targets.push(match (&target.component, &target.site) {
                    (Some(component), None) => {
                        if !components.iter().any(|x| &x.name == component) {
                            return Err(fail(
                                format!("{field}[{i}].targets[{t}].component"),
                                format!(
                                    "no ResourceBinding of this policy propagates {component:?}"
                                ),
                            ));
                        }
                        Target::Component(component.clone())
                    }
                    (None, Some(site)) => Target::Site(site.clone()),
                    _ => {
                        return Err(fail(
                            format!("{field}[{i}].targets[{t}]"),
                            "names exactly one of component and site".into(),
                        ));
                    }
                });
            }
            constraints.push(Constraint {
                policy: c.policy.clone(),
                targets,
                rules: found.spec.rules.clone(),
            });
        }
    }
    Ok(Application {
        namespace,
        name,
        components,
        constraints,
        prescribed: None,
    })
}

/// A member as Karmada reports it: a `cluster.karmada.io/v1alpha1` Cluster (served by
/// Karmada's aggregated API server), at `site` of the hub's topology. Free capacity is
/// `status.resourceSummary` allocatable less allocated and allocating; Ready from the
/// `Ready` condition; `spec.taints` as taints; `spec.region` and `spec.zone` as the
/// well-known topology labels, beside the object's own labels.
pub fn member_from_karmada_cluster(
    cluster: &Json,
    site: &str,
) -> Result<super::Cluster, InputError> {
    let name = cluster
        .pointer("/metadata/name")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let object = format!("Cluster {name}");
    let fail = |field: String, message: String| InputError {
        object: object.clone(),
        field,
        message,
    };
    if name.is_empty() {
        return Err(fail("metadata.name".into(), "missing".into()));
    }
    let mut list: BTreeMap<String, i128> = BTreeMap::new();
    for (part, sign) in [
        ("allocatable", 1i128),
        ("allocated", -1),
        ("allocating", -1),
    ] {
        let Some(amounts) = cluster
            .pointer(&format!("/status/resourceSummary/{part}"))
            .and_then(Json::as_object)
        else {
            continue;
        };
        for (resource, amount) in amounts {
            let text = amount
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| amount.to_string());
            let milli = parse_milli(&text).filter(|m| *m >= 0).ok_or_else(|| {
                fail(
                    format!("status.resourceSummary.{part}[{resource:?}]"),
                    format!("{text:?} is not a non-negative quantity"),
                )
            })?;
            *list.entry(resource.clone()).or_default() += sign * milli;
        }
    }
    for amount in list.values_mut() {
        *amount = (*amount).max(0);
    }
    let ready = cluster
        .pointer("/status/conditions")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .any(|c| c.get("type") == Some(&json!("Ready")) && c.get("status") == Some(&json!("True")));
    let mut labels: BTreeMap<String, String> = cluster
        .pointer("/metadata/labels")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    for (field, label) in [
        ("region", "topology.kubernetes.io/region"),
        ("zone", "topology.kubernetes.io/zone"),
    ] {
        if let Some(value) = cluster
            .pointer(&format!("/spec/{field}"))
            .and_then(Json::as_str)
        {
            labels.insert(label.to_string(), value.to_string());
        }
    }
    let mut taints = Vec::new();
    for (i, taint) in cluster
        .pointer("/spec/taints")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let key = taint.get("key").and_then(Json::as_str).unwrap_or_default();
        let effect = taint
            .get("effect")
            .and_then(Json::as_str)
            .and_then(TaintEffect::parse)
            .ok_or_else(|| {
                fail(
                    format!("spec.taints[{i}].effect"),
                    "expected NoSchedule, PreferNoSchedule or NoExecute".into(),
                )
            })?;
        taints.push(Taint {
            key: key.to_string(),
            value: taint
                .get("value")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            effect,
        });
    }
    Ok(super::Cluster {
        name,
        site: site.to_string(),
        labels,
        taints,
        ready,
        free: resources(&list),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Share;
    use crate::hub::closed_loop::Placement;

    fn plan() -> AppPlan {
        AppPlan {
            namespace: "ar".into(),
            name: "ar-game".into(),
            placement: vec![
                Share {
                    cluster: "edge-east".into(),
                    components: BTreeMap::from([("render".into(), 4), ("state".into(), 1)]),
                },
                Share {
                    cluster: "edge-west".into(),
                    components: BTreeMap::from([("render".into(), 2)]),
                },
            ],
            unplaced: BTreeMap::new(),
            rules: Vec::new(),
            warnings: Vec::new(),
        }
    }

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

    #[test]
    fn a_policy_tolerates_a_not_ready_cluster_as_its_cluster_tolerations_say() {
        assert_eq!(cluster_toleration(&json!({})), Duration::from_secs(300));
        let policy = json!({"spec": {"placement": {"clusterTolerations": [
            {"key": NOT_READY_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 90},
            {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
            {"key": "dedicated", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
            {"key": NOT_READY_TAINT, "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 1}
        ]}}});
        assert_eq!(cluster_toleration(&policy), Duration::from_secs(60));
    }

    #[test]
    fn karmada_mode_keeps_what_is_written_until_the_toleration_or_the_grace_runs_out() {
        use crate::hub::closed_loop::Decision;
        let karmada = BTreeMap::from([
            ("east".to_string(), "east".to_string()),
            ("west".to_string(), "west".to_string()),
        ]);
        let policy = json!({"spec": {"placement": {"clusterTolerations": [
            {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]}}});
        let bindings = [
            json!({"spec": {"resource": {"name": "render"}, "replicas": 4,
                                        "clusters": [{"name": "east", "replicas": 4}]}}),
        ];
        let kept: Placement = BTreeMap::from([(
            "east".to_string(),
            BTreeMap::from([("render".to_string(), 4)]),
        )]);
        let at = |s: i64| Timestamp::from_second(s).unwrap_or_default();
        let grace = Duration::from_secs(60);
        let members = [member("east", "False", 1000), member("west", "True", 0)];
        // NotReady for 59 s: kept; for 60 s: placed again.
        assert_eq!(
            decide(
                &policy,
                &bindings,
                &karmada,
                &members,
                None,
                grace,
                at(1059)
            ),
            Decision::Keep(kept.clone())
        );
        assert_eq!(
            decide(
                &policy,
                &bindings,
                &karmada,
                &members,
                None,
                grace,
                at(1060)
            ),
            Decision::Place {
                moved: Some("member east NotReady for 60s (toleration 60s)".into())
            }
        );
        // Ready, in Violation since 2000: kept within the grace, placed again after it.
        let members = [member("east", "True", 0), member("west", "True", 0)];
        assert_eq!(
            decide(
                &policy,
                &bindings,
                &karmada,
                &members,
                Some(at(2000)),
                grace,
                at(2059)
            ),
            Decision::Keep(kept)
        );
        assert_eq!(
            decide(
                &policy,
                &bindings,
                &karmada,
                &members,
                Some(at(2000)),
                grace,
                at(2060)
            ),
            Decision::Place {
                moved: Some("rules in Violation for 60s (grace 60s)".into())
            }
        );
        // Nothing written yet: placed.
        let unwritten = [json!({"spec": {"resource": {"name": "render"}, "replicas": 4}})];
        assert_eq!(
            decide(&policy, &unwritten, &karmada, &members, None, grace, at(0)),
            Decision::Place { moved: None }
        );
    }

    #[test]
    fn the_violation_time_is_noted_on_the_bindings_and_a_restarted_hub_counts_from_it() {
        use crate::hub::RuleVerdict;
        use crate::hub::closed_loop::Decision;
        use edgeplane_api::Compliance;
        let at = |s: i64| Timestamp::from_second(s).unwrap_or_default();
        let karmada = BTreeMap::from([("edge-east".to_string(), "edge-east".to_string())]);
        let mut violated = plan();
        violated.placement.truncate(1);
        violated.placement[0].components.remove("state");
        violated.rules = vec![RuleVerdict {
            policy: "near-fans".into(),
            rule: "latency".into(),
            compliance: Compliance::Violation,
            value: Some("8ms".into()),
            cost: 1.0,
            reason: "latency 8ms does not meet the limit 5ms".into(),
        }];
        let written = json!({"metadata": {"name": "ar-render-deployment", "namespace": "ar"},
            "spec": {"resource": {"name": "render"}, "replicas": 4,
                     "clusters": [{"name": "edge-east", "replicas": 4}]}});
        // The first round in Violation notes the time (to the second) on the binding,
        // though its clusters are unchanged.
        let now = Timestamp::from_second(2000)
            .and_then(|t| t.checked_add(jiff::SignedDuration::from_millis(400)))
            .unwrap_or_default();
        let since = next_violated_since(&violated, None, now);
        assert_eq!(since, Some(at(2000)));
        let changes = binding_changes(&violated, &[&written], &karmada, since);
        assert_eq!(
            changes,
            vec![
                json!({"apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
                "metadata": {"name": "ar-render-deployment", "namespace": "ar",
                             "annotations": {VIOLATED_SINCE_ANNOTATION: "1970-01-01T00:33:20Z"}},
                "spec": {"clusters": [{"name": "edge-east", "replicas": 4}]}})
            ]
        );
        // The hub restarts: it remembers nothing, and reads the time back from the
        // binding; the grace (60 s) runs from 2000, not from the restart at 2050.
        let noted = json!({"metadata": {"name": "ar-render-deployment", "namespace": "ar",
                "annotations": {VIOLATED_SINCE_ANNOTATION: "1970-01-01T00:33:20Z"}},
            "spec": {"resource": {"name": "render"}, "replicas": 4,
                     "clusters": [{"name": "edge-east", "replicas": 4}]}});
        let bindings = [noted.clone()];
        assert_eq!(violated_since(&bindings), Some(at(2000)));
        assert_eq!(
            next_violated_since(&violated, violated_since(&bindings), at(2050)),
            Some(at(2000))
        );
        assert!(
            binding_changes(&violated, &[&noted], &karmada, Some(at(2000))).is_empty(),
            "nothing to write while the noted time stands"
        );
        let members = [member("edge-east", "True", 0)];
        let grace = Duration::from_secs(60);
        let policy = json!({});
        assert_eq!(
            decide(
                &policy,
                &bindings,
                &karmada,
                &members,
                violated_since(&bindings),
                grace,
                at(2059)
            ),
            Decision::Keep(BTreeMap::from([(
                "edge-east".to_string(),
                BTreeMap::from([("render".to_string(), 4)])
            )]))
        );
        assert_eq!(
            decide(
                &policy,
                &bindings,
                &karmada,
                &members,
                violated_since(&bindings),
                grace,
                at(2060)
            ),
            Decision::Place {
                moved: Some("rules in Violation for 60s (grace 60s)".into())
            }
        );
        // The rules hold again: the annotation is left out of the write, which removes it.
        let holds = AppPlan {
            rules: Vec::new(),
            ..violated.clone()
        };
        assert_eq!(next_violated_since(&holds, Some(at(2000)), at(2070)), None);
        assert_eq!(
            binding_changes(&holds, &[&noted], &karmada, None),
            vec![binding_apply(
                &noted,
                vec![json!({"name": "edge-east", "replicas": 4})],
                None
            )]
        );
        // Of several bindings the earliest time counts; one that is not a time is ignored.
        let mut later = noted.clone();
        later["metadata"]["annotations"][VIOLATED_SINCE_ANNOTATION] = json!("1970-01-01T01:00:00Z");
        let mut broken = noted;
        broken["metadata"]["annotations"][VIOLATED_SINCE_ANNOTATION] = json!("yesterday");
        assert_eq!(
            violated_since(&[later.clone(), bindings[0].clone(), broken.clone()]),
            Some(at(2000))
        );
        assert_eq!(violated_since(&[broken]), None);
    }

    #[test]
    fn a_binding_gets_the_component_shares_by_karmada_cluster_name() {
        let karmada = BTreeMap::from([
            ("edge-east".to_string(), "karmada-ee".to_string()),
            ("edge-west".to_string(), "edge-west".to_string()),
        ]);
        let clusters = binding_clusters(&plan(), "render", &karmada);
        assert_eq!(
            clusters,
            vec![
                json!({"name": "edge-west", "replicas": 2}),
                json!({"name": "karmada-ee", "replicas": 4}),
            ]
        );
        let binding = json!({"metadata": {"name": "ar-render-deployment", "namespace": "ar"},
                             "spec": {"schedulerName": "edgeplane"}});
        assert!(is_ours(&binding));
        assert!(!is_ours(
            &json!({"spec": {"schedulerName": "default-scheduler"}})
        ));
        assert_eq!(
            binding_apply(&binding, clusters, None),
            json!({"apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
                   "metadata": {"name": "ar-render-deployment", "namespace": "ar"},
                   "spec": {"clusters": [{"name": "edge-west", "replicas": 2},
                                         {"name": "karmada-ee", "replicas": 4}]}})
        );
    }

    #[test]
    fn the_bindings_of_a_policy_are_its_own_left_to_edgeplane_and_written_when_they_differ() {
        let policy = json!({"metadata": {"name": "ar", "namespace": "ar"}});
        let binding = |name: &str, ns: &str, scheduler: &str, by: &str, clusters: Json| {
            json!({"metadata": {"name": name, "namespace": ns,
                                "annotations": {POLICY_NAME_KEY: by}},
                   "spec": {"schedulerName": scheduler, "resource": {"name": "render"},
                            "clusters": clusters}})
        };
        let bindings = vec![
            binding("mine", "ar", "edgeplane", "ar", json!(null)),
            binding("other-policy", "ar", "edgeplane", "other", json!(null)),
            binding("karmadas", "ar", "default-scheduler", "ar", json!(null)),
            binding("elsewhere", "x", "edgeplane", "ar", json!(null)),
            binding(
                "done",
                "ar",
                "edgeplane",
                "ar",
                json!([{"name": "edge-east", "replicas": 4}, {"name": "edge-west", "replicas": 2}]),
            ),
        ];
        let mine = bindings_of(&policy, &bindings);
        let names: Vec<&str> = mine
            .iter()
            .filter_map(|b| b.pointer("/metadata/name").and_then(Json::as_str))
            .collect();
        assert_eq!(names, ["mine", "done"]);
        let karmada = BTreeMap::from([
            ("edge-east".to_string(), "edge-east".to_string()),
            ("edge-west".to_string(), "edge-west".to_string()),
        ]);
        let changes = binding_changes(&plan(), &mine, &karmada, None);
        assert_eq!(
            changes,
            vec![binding_apply(
                mine[0],
                vec![
                    json!({"name": "edge-east", "replicas": 4}),
                    json!({"name": "edge-west", "replicas": 2})
                ],
                None
            )]
        );
    }

    #[test]
    fn a_written_placement_is_kept_while_its_clusters_are_ready_and_it_gives_every_replica() {
        let karmada = BTreeMap::from([
            ("edge-east".to_string(), "karmada-ee".to_string()),
            ("edge-west".to_string(), "edge-west".to_string()),
        ]);
        let ready =
            std::collections::BTreeSet::from(["edge-east".to_string(), "edge-west".to_string()]);
        let binding = |clusters: Json| json!({"spec": {"resource": {"name": "render"}, "replicas": 6, "clusters": clusters}});
        let both = binding(
            json!([{"name": "karmada-ee", "replicas": 4}, {"name": "edge-west", "replicas": 2}]),
        );
        assert_eq!(
            written_placement(std::slice::from_ref(&both), &karmada, &ready),
            Some(BTreeMap::from([
                (
                    "edge-east".to_string(),
                    BTreeMap::from([("render".to_string(), 4)])
                ),
                (
                    "edge-west".to_string(),
                    BTreeMap::from([("render".to_string(), 2)])
                ),
            ]))
        );
        // West not Ready, replicas missing, nothing written, a cluster not a member: placed again.
        let east_only = std::collections::BTreeSet::from(["edge-east".to_string()]);
        assert_eq!(written_placement(&[both], &karmada, &east_only), None);
        let short = binding(json!([{"name": "karmada-ee", "replicas": 4}]));
        assert_eq!(written_placement(&[short], &karmada, &ready), None);
        let unwritten = json!({"spec": {"resource": {"name": "render"}, "replicas": 6}});
        assert_eq!(written_placement(&[unwritten], &karmada, &ready), None);
        let stranger = binding(json!([{"name": "elsewhere", "replicas": 6}]));
        assert_eq!(written_placement(&[stranger], &karmada, &ready), None);
    }

    #[test]
    fn plain_policies_pin_the_clusters_and_weigh_them_by_share() {
        let app: MecApplication = serde_json::from_value(json!({
            "apiVersion": "multicluster.edgeplane.io/v1alpha1", "kind": "MecApplication",
            "metadata": {"name": "ar-game", "namespace": "ar"},
            "spec": {
                "resources": [
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ar"}},
                    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "render"}},
                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ar-render"}}
                ],
                "components": [
                    {"name": "render", "workload": {"kind": "Deployment", "name": "ar-render"}, "replicas": 6},
                    {"name": "state", "workload": {"kind": "StatefulSet", "name": "game-state"}, "replicas": 1},
                    {"name": "idle", "workload": {"kind": "Deployment", "name": "idle"}, "replicas": 0}
                ]
            }
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let policies = propagation_policies(&app, &plan(), &BTreeMap::new());
        assert_eq!(policies.len(), 3);
        // The Service goes wherever the application runs; the Namespace is cluster-scoped.
        assert_eq!(policies[2]["metadata"]["name"], "ar-game-shared");
        assert_eq!(
            policies[2]["spec"],
            json!({"resourceSelectors": [{"apiVersion": "v1", "kind": "Service", "name": "render"}],
                   "placement": {"clusterAffinity": {"clusterNames": ["edge-east", "edge-west"]}}})
        );
        assert_eq!(policies[0]["metadata"]["name"], "ar-game-render");
        assert_eq!(
            policies[0]["spec"]["placement"],
            json!({
                "clusterAffinity": {"clusterNames": ["edge-east", "edge-west"]},
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted",
                    "weightPreference": {"staticWeightList": [
                        {"targetCluster": {"clusterNames": ["edge-east"]}, "weight": 4},
                        {"targetCluster": {"clusterNames": ["edge-west"]}, "weight": 2}
                    ]}
                }
            })
        );
        assert_eq!(
            policies[1]["spec"]["resourceSelectors"],
            json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "game-state"}])
        );
    }

    #[test]
    fn bindings_of_an_edgeplane_policy_read_as_an_application() {
        let policy = json!({
            "metadata": {"name": "ar", "namespace": "ar", "annotations": {
                CONSTRAINTS_ANNOTATION: r#"[{"policy": "near-fans", "targets": [{"component": "ar-render"}, {"site": "stadium"}]}]"#
            }},
            "spec": {"schedulerName": "edgeplane"}
        });
        let binding = json!({
            "metadata": {"name": "ar-render-deployment", "namespace": "ar"},
            "spec": {
                "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ar-render"},
                "replicas": 6,
                "replicaRequirements": {"resourceRequest": {"cpu": "500m", "memory": "1Gi"}},
                "placement": {"spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 3, "minGroups": 2}]},
                "schedulerName": "edgeplane"
            }
        });
        let policies: Vec<ConstraintPolicy> = vec![
            serde_json::from_value(json!({
                "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicy",
                "metadata": {"name": "near-fans", "namespace": "ar"},
                "spec": {"rules": [{"name": "latency", "request": "2ms", "limit": "5ms"}]}
            }))
            .unwrap_or_else(|e| panic!("{e}")),
        ];
        let app = application_from_bindings(&policy, std::slice::from_ref(&binding), &policies)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(app.components.len(), 1);
        let c = &app.components[0];
        assert_eq!((c.name.as_str(), c.replicas), ("ar-render", 6));
        assert_eq!((c.min_clusters, c.max_clusters), (2, 3));
        assert_eq!(c.requests.cpu_millis, 500);
        assert_eq!(c.requests.memory_bytes, 1 << 30);
        assert_eq!(
            app.constraints[0].targets,
            vec![
                Target::Component("ar-render".into()),
                Target::Site("stadium".into())
            ]
        );

        let mut bad = policy.clone();
        bad["metadata"]["annotations"][CONSTRAINTS_ANNOTATION] =
            json!(r#"[{"policy": "near-fans", "targets": [{"component": "ghost"}]}]"#);
        let err = application_from_bindings(&bad, &[binding], &policies)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "PropagationPolicy ar/ar: metadata.annotations[\"multicluster.edgeplane.io/constraints\"][0].targets[0].component: no ResourceBinding of this policy propagates \"ghost\""
            )
        );
    }
    #[test]
    fn a_karmada_cluster_is_a_member_with_its_free_capacity() {
        let cluster = json!({
            "apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "edge-east", "labels": {"tier": "edge"}},
            "spec": {"region": "eu-west", "zone": "ee",
                     "taints": [{"key": "dedicated", "value": "ar", "effect": "NoSchedule"}]},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "resourceSummary": {
                    "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1100"},
                    "allocated": {"cpu": "10", "memory": "40Gi", "pods": "80"},
                    "allocating": {"cpu": "500m"}
                }
            }
        });
        let member = member_from_karmada_cluster(&cluster, "ee").unwrap_or_else(|e| panic!("{e}"));
        assert!(member.ready);
        assert_eq!(member.free.cpu_millis, 53_500);
        assert_eq!(member.free.memory_bytes, 216 << 30);
        assert_eq!(member.free.pods, 1020);
        assert_eq!(member.labels["topology.kubernetes.io/region"], "eu-west");
        assert_eq!(member.labels["tier"], "edge");
        assert_eq!(member.taints[0].to_string(), "dedicated=ar:NoSchedule");

        let mut broken = cluster;
        broken["status"]["resourceSummary"]["allocated"]["cpu"] = json!("lots");
        assert_eq!(
            member_from_karmada_cluster(&broken, "ee")
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some(
                "Cluster edge-east: status.resourceSummary.allocated[\"cpu\"]: \"lots\" is not a non-negative quantity"
            )
        );
    }
}
