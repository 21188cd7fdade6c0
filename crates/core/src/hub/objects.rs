//! The hub planner's input from objects: MemberClusters (with status), MecApplications,
//! ConstraintPolicies and the hub's NetworkTopology. Every error names the object and the
//! field (`MecApplication ar/ar-game: spec.constraints[0].targets[1].site: ...`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use edgeplane_api::multicluster::{
    ConstraintTarget, Distribution, MecApplication, MemberCluster, WorkloadKind,
};
use edgeplane_api::{ConstraintPolicy, NetworkTopology};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::{Application, Cluster, Component, Constraint, Target};
use crate::evaluate::{BuiltinRule, ClusterView, CompileError, NodeFacts, site_label};
use crate::network::{NetworkGraph, NodeInfo};
use crate::placement::{self, Taint, TaintEffect};
use crate::planner::convert::{pod_requests, resources};
use crate::quantity::parse_milli;

/// The objects the hub plans from.
#[derive(Clone, Copy, Debug)]
pub struct HubObjects<'a> {
    pub topology: Option<&'a NetworkTopology>,
    pub clusters: &'a [MemberCluster],
    pub applications: &'a [MecApplication],
    pub policies: &'a [ConstraintPolicy],
}

/// What is wrong with one object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {field}: {message}")]
pub struct InputError {
    /// `MemberCluster edge-east`, `MecApplication ar/ar-game`.
    pub object: String,
    pub field: String,
    pub message: String,
}

/// The planner's input, owned: the view (one graph node per cluster) and the model.
#[derive(Clone, Debug)]
pub struct Built {
    pub view: ClusterView,
    pub clusters: Vec<Cluster>,
    pub applications: Vec<Application>,
}

/// Reads and checks the objects; every problem found is returned, not only the first.
pub fn build_input(objects: &HubObjects<'_>, now: Timestamp) -> Result<Built, Vec<InputError>> {
    let mut errors = Vec::new();
    let sites = topology_sites(objects.topology);
    let mut clusters = Vec::new();
    let mut names = BTreeSet::new();
    for mc in objects.clusters {
        if let Some(c) = cluster(mc, &sites, &mut errors) {
            if !names.insert(c.name.clone()) {
                errors.push(err(
                    format!("MemberCluster {}", c.name),
                    "metadata.name",
                    "defined twice",
                ));
                continue;
            }
            clusters.push(c);
        }
    }
    let mut applications = Vec::new();
    for app in objects.applications {
        if let Some(a) = application(app, objects.policies, &sites, &names, &mut errors) {
            applications.push(a);
        }
    }
    let view = match view(objects.topology, &clusters, now) {
        Ok(view) => Some(view),
        Err(message) => {
            let name = objects
                .topology
                .and_then(|t| t.metadata.name.clone())
                .unwrap_or_default();
            errors.push(err(format!("NetworkTopology {name}"), "spec", message));
            None
        }
    };
    match view {
        Some(view) if errors.is_empty() => Ok(Built {
            view,
            clusters,
            applications,
        }),
        _ => Err(errors),
    }
}

/// The view of the hub: the topology's graph with one node per cluster at its site, and
/// the clusters' labels and allocatable as node facts (for node rules).
pub fn view(
    topology: Option<&NetworkTopology>,
    clusters: &[Cluster],
    now: Timestamp,
) -> Result<ClusterView, String> {
    let label = site_label(topology).to_string();
    let infos: Vec<NodeInfo> = clusters
        .iter()
        .map(|c| NodeInfo {
            name: c.name.clone(),
            labels: BTreeMap::from([(label.clone(), c.site.clone())]),
        })
        .collect();
    let graph = NetworkGraph::build(topology, &infos, now).map_err(|e| e.to_string())?;
    let facts = clusters
        .iter()
        .map(|c| NodeFacts {
            cpu: Some(c.free.cpu_millis as f64 / 1000.0),
            memory: Some(c.free.memory_bytes as f64),
            labels: c.labels.clone(),
        })
        .collect();
    Ok(ClusterView::from_parts(graph, facts))
}

fn err(object: String, field: impl Into<String>, message: impl Into<String>) -> InputError {
    InputError {
        object,
        field: field.into(),
        message: message.into(),
    }
}

/// The sites the topology names: declared ones and the ends of its links.
fn topology_sites(topology: Option<&NetworkTopology>) -> BTreeSet<String> {
    let mut sites = BTreeSet::new();
    if let Some(t) = topology {
        sites.extend(t.spec.sites.iter().map(|s| s.name.clone()));
        for link in &t.spec.links {
            sites.insert(link.from.clone());
            sites.insert(link.to.clone());
        }
    }
    sites
}

fn cluster(
    mc: &MemberCluster,
    sites: &BTreeSet<String>,
    errors: &mut Vec<InputError>,
) -> Option<Cluster> {
    let Some(name) = mc.metadata.name.clone().filter(|n| !n.is_empty()) else {
        errors.push(err("MemberCluster".to_string(), "metadata.name", "missing"));
        return None;
    };
    let object = format!("MemberCluster {name}");
    let before = errors.len();
    if !sites.contains(&mc.spec.site) {
        errors.push(err(
            object.clone(),
            "spec.site",
            format!(
                "site {:?} is not a site of the hub's NetworkTopology (declare it in spec.sites or link it)",
                mc.spec.site
            ),
        ));
    }
    let status = mc.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let free = match &status.capacity {
        None if ready => {
            errors.push(err(
                object.clone(),
                "status.capacity",
                "missing on a Ready cluster (allocatable and requested resources)",
            ));
            Default::default()
        }
        None => Default::default(),
        Some(capacity) => {
            let mut list: BTreeMap<String, i128> = BTreeMap::new();
            for (part, sign, amounts) in [
                ("allocatable", 1i128, &capacity.allocatable),
                ("requested", -1, &capacity.requested),
            ] {
                for (resource, text) in amounts {
                    match parse_milli(text) {
                        Some(milli) if milli >= 0 => {
                            *list.entry(resource.clone()).or_default() += sign * milli;
                        }
                        _ => errors.push(err(
                            object.clone(),
                            format!("status.capacity.{part}[{resource:?}]"),
                            format!("{text:?} is not a non-negative quantity"),
                        )),
                    }
                }
            }
            // More requested than allocatable leaves nothing, not a negative amount.
            for amount in list.values_mut() {
                *amount = (*amount).max(0);
            }
            resources(&list)
        }
    };
    let taints = mc
        .spec
        .taints
        .iter()
        .map(|t| Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
            effect: match t.effect {
                edgeplane_api::multicluster::TaintEffect::NoSchedule => TaintEffect::NoSchedule,
                edgeplane_api::multicluster::TaintEffect::PreferNoSchedule => {
                    TaintEffect::PreferNoSchedule
                }
                edgeplane_api::multicluster::TaintEffect::NoExecute => TaintEffect::NoExecute,
            },
        })
        .collect();
    (errors.len() == before).then(|| Cluster {
        name,
        site: mc.spec.site.clone(),
        labels: mc.metadata.labels.clone().unwrap_or_default(),
        taints,
        ready,
        free,
    })
}

fn application(
    app: &MecApplication,
    policies: &[ConstraintPolicy],
    sites: &BTreeSet<String>,
    clusters: &BTreeSet<String>,
    errors: &mut Vec<InputError>,
) -> Option<Application> {
    let namespace = app
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let name = app.metadata.name.clone().unwrap_or_default();
    let object = format!("MecApplication {namespace}/{name}");
    let before = errors.len();
    let mut fail =
        |field: String, message: String| errors.push(err(object.clone(), field, message));
    if name.is_empty() {
        fail("metadata.name".into(), "missing".into());
    }
    if app.spec.resources_from.is_some() {
        fail(
            "spec.resourcesFrom".into(),
            "not read yet: put the manifests inline in spec.resources".into(),
        );
    }
    for (i, resource) in app.spec.resources.iter().enumerate() {
        for field in ["apiVersion", "kind"] {
            if resource
                .get(field)
                .and_then(|v| v.as_str())
                .is_none_or(str::is_empty)
            {
                fail(format!("spec.resources[{i}].{field}"), "missing".into());
            }
        }
        if resource
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .is_none_or(str::is_empty)
        {
            fail(
                format!("spec.resources[{i}].metadata.name"),
                "missing".into(),
            );
        }
    }
    let mut components = Vec::new();
    let mut component_names = BTreeSet::new();
    for (i, c) in app.spec.components.iter().enumerate() {
        let field = format!("spec.components[{i}]");
        if !component_names.insert(c.name.clone()) {
            fail(
                format!("{field}.name"),
                format!("component {:?} is listed twice", c.name),
            );
            continue;
        }
        let replicas = u32::try_from(c.replicas).unwrap_or(0);
        if c.replicas < 0 {
            fail(
                format!("{field}.replicas"),
                format!("{} is negative", c.replicas),
            );
        }
        let spread = c.spread.unwrap_or_default();
        let min = spread.min_clusters.unwrap_or(1);
        let max = spread.max_clusters.unwrap_or(c.replicas.max(1));
        if min < 1 || max < 1 {
            fail(
                format!("{field}.spread"),
                "minClusters and maxClusters are at least 1".into(),
            );
        } else if min > max {
            fail(
                format!("{field}.spread.minClusters"),
                format!("{min} is more than maxClusters {max}"),
            );
        } else if replicas > 0 && min as u32 > replicas {
            fail(
                format!("{field}.spread.minClusters"),
                format!("{min} clusters cannot each hold one of {replicas} replicas"),
            );
        }
        let found = app.spec.resources.iter().enumerate().find(|(_, r)| {
            r.get("kind").and_then(|v| v.as_str()) == Some(c.workload.kind.as_str())
                && r.pointer("/metadata/name").and_then(|v| v.as_str())
                    == Some(c.workload.name.as_str())
        });
        let Some((j, resource)) = found else {
            fail(
                format!("{field}.workload"),
                format!(
                    "no {} {:?} among spec.resources",
                    c.workload.kind.as_str(),
                    c.workload.name
                ),
            );
            continue;
        };
        let template = match pod_template(c.workload.kind, resource) {
            Ok(t) => t,
            Err(e) => {
                fail(format!("spec.resources[{j}]"), e);
                continue;
            }
        };
        let spec = template.spec.unwrap_or_default();
        let requests = match pod_requests(&spec) {
            Ok(r) => r,
            Err(e) => {
                fail(
                    format!("spec.resources[{j}].spec.template.spec.{}", e.field),
                    e.message,
                );
                continue;
            }
        };
        let tolerations = match placement::tolerations(spec.tolerations.as_ref()) {
            Ok(t) => t,
            Err(e) => {
                fail(
                    format!("spec.resources[{j}].spec.template.spec.{}", e.field),
                    e.message,
                );
                continue;
            }
        };
        components.push(Component {
            name: c.name.clone(),
            replicas,
            requests,
            tolerations,
            min_clusters: min.max(1) as u32,
            max_clusters: max.max(1) as u32,
        });
    }
    let policy_of: HashMap<&str, &ConstraintPolicy> = policies
        .iter()
        .filter(|p| p.metadata.namespace.as_deref().unwrap_or("default") == namespace)
        .filter_map(|p| p.metadata.name.as_deref().map(|n| (n, p)))
        .collect();
    let mut constraints = Vec::new();
    for (i, c) in app.spec.constraints.iter().enumerate() {
        let field = format!("spec.constraints[{i}]");
        let Some(policy) = policy_of.get(c.policy.as_str()) else {
            fail(
                format!("{field}.policy"),
                format!("no ConstraintPolicy {namespace}/{}", c.policy),
            );
            continue;
        };
        for (r, rule) in policy.spec.rules.iter().enumerate() {
            match BuiltinRule::compile(rule) {
                Ok(_) => {}
                Err(CompileError::NoProvider(_)) => fail(
                    format!("{field}.policy"),
                    format!(
                        "ConstraintPolicy {namespace}/{} spec.rules[{r}].name: the hub judges built-in rules only, not {:?}",
                        c.policy, rule.name
                    ),
                ),
                Err(e) => fail(
                    format!("{field}.policy"),
                    format!(
                        "ConstraintPolicy {namespace}/{} spec.rules[{r}].{e}",
                        c.policy
                    ),
                ),
            }
        }
        let mut targets = Vec::new();
        let mut seen = BTreeSet::new();
        for (t, target) in c.targets.iter().enumerate() {
            let tfield = format!("{field}.targets[{t}]");
            match target_of(target) {
                Err(message) => fail(tfield, message),
                Ok(Target::Component(name)) if !component_names.contains(&name) => fail(
                    format!("{tfield}.component"),
                    format!("no component {name:?} in spec.components"),
                ),
                Ok(Target::Site(name)) if !sites.contains(&name) => fail(
                    format!("{tfield}.site"),
                    format!("site {name:?} is not a site of the hub's NetworkTopology"),
                ),
                Ok(target) => {
                    if !seen.insert(format!("{target:?}")) {
                        fail(tfield, "names a target the constraint has already".into());
                    } else {
                        targets.push(target);
                    }
                }
            }
        }
        if !c.targets.iter().any(|t| t.component.is_some()) {
            fail(format!("{field}.targets"), "names no component".into());
        }
        constraints.push(Constraint {
            policy: c.policy.clone(),
            targets,
            rules: policy.spec.rules.clone(),
        });
    }
    let prescribed = match app.spec.distribution {
        Distribution::ConstraintBased => {
            if !app.spec.placement.is_empty() {
                fail(
                    "spec.placement".into(),
                    "given with distribution ConstraintBased (set distribution: Prescriptive to have it checked)".into(),
                );
            }
            None
        }
        Distribution::Prescriptive => {
            let mut given: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
            for (i, p) in app.spec.placement.iter().enumerate() {
                if !clusters.contains(&p.cluster) {
                    fail(
                        format!("spec.placement[{i}].cluster"),
                        format!("no MemberCluster {:?}", p.cluster),
                    );
                }
                for (component, n) in &p.components {
                    if !component_names.contains(component) {
                        fail(
                            format!("spec.placement[{i}].components[{component:?}]"),
                            "not a component of the application".into(),
                        );
                    }
                    let Ok(n) = u32::try_from(*n) else {
                        fail(
                            format!("spec.placement[{i}].components[{component:?}]"),
                            format!("{n} is negative"),
                        );
                        continue;
                    };
                    *given
                        .entry(p.cluster.clone())
                        .or_default()
                        .entry(component.clone())
                        .or_default() += n;
                }
            }
            if app.spec.placement.is_empty() {
                fail(
                    "spec.placement".into(),
                    "missing: distribution Prescriptive places as spec.placement says".into(),
                );
            }
            Some(given)
        }
    };
    (errors.len() == before).then_some(Application {
        namespace,
        name,
        components,
        constraints,
        prescribed,
    })
}

fn target_of(target: &ConstraintTarget) -> Result<Target, String> {
    match (&target.component, &target.site) {
        (Some(c), None) => Ok(Target::Component(c.clone())),
        (None, Some(s)) => Ok(Target::Site(s.clone())),
        _ => Err("a target names exactly one of component and site".into()),
    }
}

/// The pod template of a workload manifest.
fn pod_template(
    kind: WorkloadKind,
    resource: &serde_json::Value,
) -> Result<PodTemplateSpec, String> {
    let read = |e: serde_json::Error| format!("not a valid {}: {e}", kind.as_str());
    let template = match kind {
        WorkloadKind::Deployment => serde_json::from_value::<Deployment>(resource.clone())
            .map_err(read)?
            .spec
            .map(|s| s.template),
        WorkloadKind::StatefulSet => serde_json::from_value::<StatefulSet>(resource.clone())
            .map_err(read)?
            .spec
            .map(|s| s.template),
        WorkloadKind::ReplicaSet => serde_json::from_value::<ReplicaSet>(resource.clone())
            .map_err(read)?
            .spec
            .and_then(|s| s.template),
    };
    template.ok_or_else(|| "spec.template: missing".to_string())
}
