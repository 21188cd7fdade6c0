//! Events: each kind of action checked against the world at its time.

use edgeplane_core::manifests;
use edgeplane_core::values::Unit;
use serde_json::Value;

use super::error::{FileErrors, ScenarioError};
use super::model::{Action, LinkChange, ObjectRef, ScaleTarget};
use super::raw::{RawEvent, RawLink, RawRef, RawScale};
use super::sources::inline_document;
use super::world::World;

/// The action of one event, checked against the world at its time (which it updates),
/// and the member it acts in: the event must give exactly one action.
pub(super) fn event_action(
    file: &FileErrors,
    source: &str,
    index: usize,
    event: RawEvent,
    world: &mut World,
    fields: &mut FieldCheck,
    clusters: Option<&mut Clusters<'_>>,
) -> Result<(Action, Option<String>), ScenarioError> {
    let cluster = event.cluster.clone();
    let base = format!("spec.events[{index}]");
    match (&cluster, clusters) {
        (Some(member), Some(c)) => {
            let action = member_node_event(file, &base, member, event, c)?;
            Ok((action, cluster))
        }
        (Some(_), None) => Err(file.at(
            Some(&format!("{base}.cluster")),
            "only a scenario with spec.clusters has member clusters to address",
        )),
        (None, clusters) => {
            action_of(file, source, index, event, world, fields, clusters).map(|a| (a, None))
        }
    }
}

/// `failNode` or `recoverNode` with `cluster:`: a Node among the member's objects, up (to
/// fail) or failed (to recover) at this time.
fn member_node_event(
    file: &FileErrors,
    base: &str,
    member: &str,
    event: RawEvent,
    clusters: &mut Clusters<'_>,
) -> Result<Action, ScenarioError> {
    let field = format!("{base}.cluster");
    let Some(spec) = clusters.members.iter().find(|m| m.name == member) else {
        let names: Vec<&str> = clusters.members.iter().map(|m| m.name.as_str()).collect();
        return Err(file.at(
            Some(&field),
            format!(
                "unknown cluster {member:?} (clusters: {})",
                names.join(", ")
            ),
        ));
    };
    let (node, fail) = match (event.fail_node, event.recover_node) {
        (Some(n), None) => (n, true),
        (None, Some(n)) => (n, false),
        _ => {
            return Err(file.at(
                Some(&field),
                "an event with cluster is a failNode or a recoverNode (in that member), and only that",
            ));
        }
    };
    let others = [
        event.apply.is_some(),
        event.delete.is_some(),
        event.set_link.is_some(),
        event.scale.is_some(),
        event.fail_cluster.is_some(),
        event.recover_cluster.is_some(),
    ];
    if others.iter().any(|o| *o) {
        return Err(file.at(
            Some(&field),
            "an event with cluster is a failNode or a recoverNode (in that member), and only that",
        ));
    }
    let key = if fail { "failNode" } else { "recoverNode" };
    let node_field = format!("{base}.{key}");
    let nodes: Vec<&str> = spec
        .objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Node"))
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
        .collect();
    if !nodes.contains(&node.as_str()) {
        return Err(file.at(
            Some(&node_field),
            format!(
                "unknown node {node:?} in cluster {member} (nodes: {})",
                nodes.join(", ")
            ),
        ));
    }
    let key_of = (member.to_string(), node.clone());
    if fail {
        if !clusters.failed_nodes.insert(key_of) {
            return Err(file.at(
                Some(&node_field),
                format!("node {node:?} of cluster {member} has already failed"),
            ));
        }
        Ok(Action::FailNode(node))
    } else {
        if !clusters.failed_nodes.remove(&key_of) {
            return Err(file.at(
                Some(&node_field),
                format!(
                    "node {node:?} of cluster {member} has not failed (fail it first with failNode)"
                ),
            ));
        }
        Ok(Action::RecoverNode(node))
    }
}

fn action_of(
    file: &FileErrors,
    source: &str,
    index: usize,
    event: RawEvent,
    world: &mut World,
    fields: &mut FieldCheck,
    clusters: Option<&mut Clusters<'_>>,
) -> Result<Action, ScenarioError> {
    let RawEvent {
        apply,
        delete,
        set_link,
        fail_node,
        recover_node,
        scale,
        fail_cluster,
        recover_cluster,
        ..
    } = event;
    let base = format!("spec.events[{index}]");
    let given: Vec<&str> = [
        ("apply", apply.is_some()),
        ("delete", delete.is_some()),
        ("setLink", set_link.is_some()),
        ("failNode", fail_node.is_some()),
        ("recoverNode", recover_node.is_some()),
        ("scale", scale.is_some()),
        ("failCluster", fail_cluster.is_some()),
        ("recoverCluster", recover_cluster.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    if given.len() != 1 {
        let found = if given.is_empty() {
            "none".to_string()
        } else {
            given.join(" and ")
        };
        return Err(file.at(
            Some(&base),
            format!(
                "an event needs exactly one of apply, delete, setLink, failNode, recoverNode, scale, failCluster, recoverCluster (found {found})"
            ),
        ));
    }
    if let Some((name, fail)) = fail_cluster
        .map(|n| (n, true))
        .or(recover_cluster.map(|n| (n, false)))
    {
        let key = if fail {
            "failCluster"
        } else {
            "recoverCluster"
        };
        let field = format!("{base}.{key}");
        let Some(c) = clusters else {
            return Err(file.at(
                Some(&field),
                "only a scenario with spec.clusters has clusters to fail",
            ));
        };
        super::members::cluster_event(file, &field, &name, c.members, &mut c.failed, fail)?;
        return Ok(if fail {
            Action::FailCluster(name)
        } else {
            Action::RecoverCluster(name)
        });
    }
    if clusters.is_some() && (fail_node.is_some() || recover_node.is_some() || scale.is_some()) {
        return Err(file.at(
            Some(&base),
            "failNode, recoverNode and scale act on one cluster: in a scenario with spec.clusters the events act on the hub (apply, delete, setLink), on a member as a whole (failCluster, recoverCluster), or on a node of a member (failNode or recoverNode with cluster: the member)",
        ));
    }
    if let Some(objects) = apply {
        return apply_event(file, source, &base, objects, world, fields);
    }
    if let Some(refs) = delete {
        return delete_event(file, &base, refs, world);
    }
    if let Some(link) = set_link {
        return set_link_event(file, &base, link, world);
    }
    if let Some(node) = fail_node {
        return fail_node_event(file, &base, node, world);
    }
    if let Some(node) = recover_node {
        return recover_node_event(file, &base, node, world);
    }
    if let Some(s) = scale {
        return scale_event(file, &base, s, world);
    }
    Err(file.at(Some(&base), "an event needs an action"))
}

/// The members of a scenario with `spec.clusters`, and those failed at this time.
pub(super) struct Clusters<'a> {
    pub(super) members: &'a [super::model::MemberSpec],
    pub(super) failed: std::collections::BTreeSet<String>,
    /// (member, node) failed at this time.
    pub(super) failed_nodes: std::collections::BTreeSet<(String, String)>,
}

/// How unknown fields of objects are treated, and the warnings `Warn` gathered.
pub(super) struct FieldCheck {
    pub(super) validation: manifests::Validation,
    pub(super) warnings: Vec<String>,
}

/// `apply`: the objects are admitted as the cluster would apply them together, their
/// fields checked as those present from the start are.
fn apply_event(
    file: &FileErrors,
    source: &str,
    base: &str,
    objects: Vec<Value>,
    world: &mut World,
    fields: &mut FieldCheck,
) -> Result<Action, ScenarioError> {
    if objects.is_empty() {
        return Err(file.at(Some(&format!("{base}.apply")), "is empty"));
    }
    let list = format!("{base}.apply");
    let docs = objects
        .into_iter()
        .enumerate()
        .map(|(i, value)| inline_document(source, &list, i, value))
        .collect::<Result<Vec<_>, _>>()?;
    for doc in &docs {
        fields
            .warnings
            .extend(manifests::check_fields(doc, fields.validation)?);
    }
    world.admit_batch(&docs)?;
    world.check_topology()?;
    let objects: Vec<Value> = docs.into_iter().map(|d| d.value).collect();
    super::functions::check_event_crds(&objects, world, |message| file.at(Some(&list), message))?;
    Ok(Action::Apply(objects))
}

/// `delete`: every reference names a kind the embedded cluster serves.
fn delete_event(
    file: &FileErrors,
    base: &str,
    refs: Vec<RawRef>,
    world: &mut World,
) -> Result<Action, ScenarioError> {
    if refs.is_empty() {
        return Err(file.at(Some(&format!("{base}.delete")), "is empty"));
    }
    let mut out = Vec::new();
    for (i, r) in refs.into_iter().enumerate() {
        let field = format!("{base}.delete[{i}]");
        let api_version = file.required(&format!("{field}.apiVersion"), r.api_version)?;
        let kind = file.required(&format!("{field}.kind"), r.kind)?;
        let name = file.required(&format!("{field}.name"), r.name)?;
        let Some(def) = world.registry.find_kind(&api_version, &kind) else {
            return Err(file.at(
                Some(&format!("{field}.kind")),
                format!("the embedded cluster does not serve {api_version} {kind}"),
            ));
        };
        let namespace = def.namespaced.then(|| {
            r.namespace
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "default".into())
        });
        let obj = ObjectRef {
            api_version,
            kind,
            namespace,
            name,
        };
        world.forget(&obj);
        out.push(obj);
    }
    Ok(Action::Delete(out))
}

/// `setLink`: the link joins two known sites of the topology `default`; a link that does
/// not exist yet needs a latency.
fn set_link_event(
    file: &FileErrors,
    base: &str,
    link: RawLink,
    world: &mut World,
) -> Result<Action, ScenarioError> {
    let field = format!("{base}.setLink");
    let from = file.required(&format!("{field}.from"), link.from)?;
    let to = file.required(&format!("{field}.to"), link.to)?;
    let metric =
        |name: &str, v: Option<Value>, unit: Unit| -> Result<Option<String>, ScenarioError> {
            v.map(|v| file.quantity(&format!("{field}.{name}"), &v, unit))
                .transpose()
        };
    let change = LinkChange {
        latency: metric("latency", link.latency, Unit::Duration)?,
        jitter: metric("jitter", link.jitter, Unit::Duration)?,
        bandwidth: metric("bandwidth", link.bandwidth, Unit::BitRate)?,
        loss: metric("loss", link.loss, Unit::Ratio)?,
        from,
        to,
    };
    if change.latency.is_none()
        && change.jitter.is_none()
        && change.bandwidth.is_none()
        && change.loss.is_none()
    {
        return Err(file.at(
            Some(&field),
            "give at least one of latency, jitter, bandwidth, loss",
        ));
    }
    let Some(topology) = world.topology.as_ref() else {
        return Err(file.at(
            Some(&field),
            "the scenario has no NetworkTopology named \"default\" at this time",
        ));
    };
    if change.from == change.to {
        return Err(file.at(
            Some(&format!("{field}.to")),
            format!(
                "a link joins two different sites (both ends are {:?})",
                change.from
            ),
        ));
    }
    let sites = world.sites();
    for (end, site) in [("from", &change.from), ("to", &change.to)] {
        if !sites.contains(site.as_str()) {
            return Err(file.at(
                Some(&format!("{field}.{end}")),
                format!(
                    "unknown site {site:?} (known: {})",
                    sites.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let exists = topology
        .spec
        .links
        .iter()
        .any(|l| link_matches(l, &change.from, &change.to));
    if !exists {
        if change.latency.is_none() {
            return Err(file.at(
                Some(&format!("{field}.latency")),
                format!(
                    "there is no link between {:?} and {:?}: give a latency to add one",
                    change.from, change.to
                ),
            ));
        }
        // The driver adds it; later events may change it again.
        if let Some(t) = world.topology.as_mut() {
            t.spec.links.push(edgeplane_api::Link {
                from: change.from.clone(),
                to: change.to.clone(),
                latency: change.latency.clone().unwrap_or_default(),
                jitter: None,
                bandwidth: None,
                loss: None,
                one_way: false,
            });
        }
    }
    Ok(Action::SetLink(change))
}

/// `failNode`: a known node that is up.
fn fail_node_event(
    file: &FileErrors,
    base: &str,
    node: String,
    world: &mut World,
) -> Result<Action, ScenarioError> {
    let field = format!("{base}.failNode");
    world.check_node(file, &field, &node)?;
    if !world.failed.insert(node.clone()) {
        return Err(file.at(Some(&field), format!("node {node:?} has already failed")));
    }
    Ok(Action::FailNode(node))
}

/// `recoverNode`: a known node that failed.
fn recover_node_event(
    file: &FileErrors,
    base: &str,
    node: String,
    world: &mut World,
) -> Result<Action, ScenarioError> {
    let field = format!("{base}.recoverNode");
    world.check_node(file, &field, &node)?;
    if !world.failed.remove(&node) {
        return Err(file.at(
            Some(&field),
            format!("node {node:?} has not failed (fail it first with failNode)"),
        ));
    }
    Ok(Action::RecoverNode(node))
}

/// `scale`: a Deployment, StatefulSet or ReplicaSet that exists at this time.
fn scale_event(
    file: &FileErrors,
    base: &str,
    s: RawScale,
    world: &mut World,
) -> Result<Action, ScenarioError> {
    let field = format!("{base}.scale");
    let kind = file.required(&format!("{field}.kind"), s.kind)?;
    if !matches!(kind.as_str(), "Deployment" | "StatefulSet" | "ReplicaSet") {
        return Err(file.at(
            Some(&format!("{field}.kind")),
            format!("{kind:?} cannot be scaled (expected Deployment, StatefulSet, ReplicaSet)"),
        ));
    }
    let name = file.required(&format!("{field}.name"), s.name)?;
    let namespace = s
        .namespace
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "default".into());
    let replicas = s
        .replicas
        .ok_or_else(|| file.at(Some(&format!("{field}.replicas")), "is required"))?;
    if !(0..=100_000).contains(&replicas) {
        return Err(file.at(
            Some(&format!("{field}.replicas")),
            format!("{replicas} is out of range (0 to 100000)"),
        ));
    }
    let target = ObjectRef {
        api_version: "apps/v1".into(),
        kind: kind.clone(),
        namespace: Some(namespace.clone()),
        name: name.clone(),
    };
    if !world.objects.contains(&target) {
        return Err(file.at(
            Some(&format!("{field}.name")),
            format!("{target} does not exist at this time (create it in spec.include, spec.resources or an earlier apply)"),
        ));
    }
    Ok(Action::Scale(ScaleTarget {
        kind,
        namespace,
        name,
        replicas: replicas as i32,
    }))
}

/// Whether a spec link joins `from` and `to` in the direction the change names (a
/// bidirectional link matches either way round).
pub fn link_matches(link: &edgeplane_api::Link, from: &str, to: &str) -> bool {
    (link.from == from && link.to == to) || (!link.one_way && link.from == to && link.to == from)
}
