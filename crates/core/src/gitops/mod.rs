//! The GitOps output of `edgeplane plan`: the input manifests as they should be committed,
//! with the plan written into the workloads (docs/planner.md, "GitOps mode").
//!
//! - Every input object that is not a workload goes out unchanged, in input order
//!   (Services, ConfigMaps, Secrets, DaemonSets, Jobs, Ingresses, custom resources...), so
//!   the output is the whole application. Cluster inventory (Nodes, NetworkTopologies,
//!   ConstraintPolicies, ConstraintPolicyOffers) goes out too unless
//!   [`RenderOptions::drop_inventory`] is set.
//! - A workload placed on one node is pinned to it: `matchFields metadata.name In [node]`
//!   ANDed into every required node selector term (or as the only term).
//! - A replicated workload whose replicas the plan spread over several nodes becomes one
//!   object per node, each with that node's share of the replicas and pinned to it, so a
//!   default scheduler cannot run 4 + 0 what was planned 2 + 2: Kubernetes has no
//!   per-replica affinity. The parts are told apart by the label [`PART_LABEL`] in their
//!   selector and template.
//! - Pods and replicas the plan could not place carry the scheduling gate
//!   [`UNPLACED_GATE`]: they stay Pending, visibly, instead of landing where the plan
//!   found every node wanting.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

pub mod functions;

use crate::manifests::Document;
use crate::planner::{Plan, PodKey};
use crate::selector::is_label_value;
use crate::validate::is_dns_label;
use crate::workloads::{KUBEVIRT_API_VERSION, Workload, WorkloadKind};

/// Label that tells the per-node parts of a split workload apart (selector and template).
pub const PART_LABEL: &str = "edgeplane.io/planned-node";
/// Scheduling gate on pods the plan left unplaced.
pub const UNPLACED_GATE: &str = "edgeplane.io/unplaced";
/// Value of [`PART_LABEL`] on the part that holds the unplaced replicas.
pub const UNPLACED_PART: &str = "";

#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOptions {
    /// Leave out Nodes, NetworkTopologies, ConstraintPolicies and ConstraintPolicyOffers.
    pub drop_inventory: bool,
}

/// What [`render`] wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    pub objects: Vec<Json>,
    /// Workloads split into per-node parts: `(kind, namespace/name, part names)`.
    pub split: Vec<Split>,
    /// Things the user should know (an autoscaler that targets a split workload, ...).
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub parts: Vec<String>,
}

/// Whether a document is cluster inventory rather than part of the application.
pub fn is_inventory(doc: &Document) -> bool {
    match (doc.api_version(), doc.kind()) {
        ("v1", "Node") => true,
        (version, "ConstraintPolicy" | "ConstraintPolicyOffer" | "ConstraintPolicyBinding") => {
            version.starts_with("constraint.edgeplane.io/")
        }
        (version, "NetworkTopology" | "NetworkPathCatalogue") => {
            version.starts_with("network.edgeplane.io/")
        }
        _ => false,
    }
}

fn workload_kind(doc: &Document) -> Option<WorkloadKind> {
    Some(match (doc.api_version(), doc.kind()) {
        ("v1", "Pod") => WorkloadKind::Pod,
        ("apps/v1", "Deployment") => WorkloadKind::Deployment,
        ("apps/v1", "StatefulSet") => WorkloadKind::StatefulSet,
        ("apps/v1", "ReplicaSet") => WorkloadKind::ReplicaSet,
        (KUBEVIRT_API_VERSION, "VirtualMachine") => WorkloadKind::VirtualMachine,
        _ => return None,
    })
}

/// Where the plan put a workload's pods: replicas per node, and how many it left unplaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shares {
    pub per_node: BTreeMap<String, u32>,
    pub unplaced: u32,
}

/// The input documents with the plan written into them, in input order.
pub fn render(
    documents: &[Document],
    workloads: &[Workload],
    plan: &Plan,
    options: RenderOptions,
) -> Rendered {
    let node_of: HashMap<&PodKey, &str> = plan
        .assignments
        .iter()
        .map(|a| (&a.pod, a.node.as_str()))
        .collect();
    let mut shares: HashMap<(WorkloadKind, &str, &str), Shares> = HashMap::new();
    for w in workloads {
        let entry = shares
            .entry((w.kind, w.namespace.as_str(), w.name.as_str()))
            .or_default();
        for pod in &w.pods {
            match node_of.get(&pod.key) {
                Some(node) => *entry.per_node.entry(node.to_string()).or_default() += 1,
                None => entry.unplaced += 1,
            }
        }
    }
    let mut out = Rendered::default();
    for doc in documents {
        if options.drop_inventory && is_inventory(doc) {
            continue;
        }
        let Some(kind) = workload_kind(doc) else {
            out.objects.push(doc.value.clone());
            continue;
        };
        let namespace = meta(doc, "namespace").unwrap_or("default");
        let name = meta(doc, "name").unwrap_or_default();
        let Some(share) = shares.get(&(kind, namespace, name)) else {
            // A running pod (it has a node) or a workload the planner could not read.
            out.objects.push(doc.value.clone());
            continue;
        };
        let parts = place(kind, &doc.value, share);
        if parts.len() > 1 {
            out.split.push(Split {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
                parts: parts
                    .iter()
                    .filter_map(|p| p.pointer("/metadata/name").and_then(Json::as_str))
                    .map(str::to_string)
                    .collect(),
            });
        }
        out.objects.extend(parts);
    }
    out.warnings = autoscaler_warnings(documents, &out.split);
    out
}

fn meta<'a>(doc: &'a Document, field: &str) -> Option<&'a str> {
    doc.value.get("metadata")?.get(field)?.as_str()
}

/// The objects a workload becomes.
fn place(kind: WorkloadKind, value: &Json, share: &Shares) -> Vec<Json> {
    let replicated = matches!(
        kind,
        WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::ReplicaSet
    );
    let nodes: Vec<&String> = share.per_node.keys().collect();
    match (nodes.as_slice(), share.unplaced) {
        // Nothing to place (zero replicas, or a pod the planner could not read).
        ([], 0) => vec![value.clone()],
        ([], _) => {
            let mut value = value.clone();
            gate(kind, &mut value);
            vec![value]
        }
        ([node], 0) => {
            let mut value = value.clone();
            if let Some(spec) = pod_spec(kind, &mut value) {
                pin(spec, &[node.as_str()]);
            }
            vec![value]
        }
        _ if !replicated => {
            // A Pod or a VirtualMachine is one pod: placed or not, never both.
            vec![value.clone()]
        }
        _ => {
            let name = value
                .pointer("/metadata/name")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let limit = name_limit(kind);
            let mut parts: Vec<Json> = share
                .per_node
                .iter()
                .map(|(node, &count)| {
                    let mut part = part_of(value, &part_name(name, node, limit), node, count);
                    if let Some(spec) = pod_spec(kind, &mut part) {
                        pin(spec, &[node.as_str()]);
                    }
                    part
                })
                .collect();
            if share.unplaced > 0 {
                let mut part = part_of(
                    value,
                    &part_name(name, "unplaced", limit),
                    UNPLACED_PART,
                    share.unplaced,
                );
                gate(kind, &mut part);
                parts.push(part);
            }
            parts
        }
    }
}

/// Longest name a part may have: a StatefulSet's pods carry the label
/// `controller-revision-hash: <name>-<10 characters>`, a label value of at most 63.
fn name_limit(kind: WorkloadKind) -> usize {
    match kind {
        WorkloadKind::StatefulSet => 52,
        _ => 63,
    }
}

/// `<name>-<node>`, or `<name>-<8 hex digits of the node's sha256>` when that would be too
/// long or the node name is not a DNS label.
pub fn part_name(name: &str, node: &str, limit: usize) -> String {
    let plain = format!("{name}-{node}");
    if plain.len() <= limit && is_dns_label(node) {
        return plain;
    }
    let digest = Sha256::digest(node.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let keep = limit.saturating_sub(hash.len() + 1).min(name.len());
    let stem = name[..keep].trim_end_matches('-');
    format!("{stem}-{hash}")
}

/// The label value naming a node: the name itself when it is a valid label value, else a
/// hash of it.
pub fn part_label(node: &str) -> String {
    if is_label_value(node) {
        return node.to_string();
    }
    let digest = Sha256::digest(node.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A copy of a replicated workload with a new name, `count` replicas and the part label
/// in its selector and template (so the parts' ReplicaSets do not adopt each other's pods).
fn part_of(value: &Json, name: &str, node: &str, count: u32) -> Json {
    let mut part = value.clone();
    let label = part_label(node);
    if let Some(meta) = part.get_mut("metadata").and_then(Json::as_object_mut) {
        meta.insert("name".into(), json!(name));
        // The server's bookkeeping of the original object does not belong to the part.
        for key in ["uid", "resourceVersion", "creationTimestamp", "generation"] {
            meta.remove(key);
        }
    }
    let Some(spec) = part.get_mut("spec").and_then(Json::as_object_mut) else {
        return part;
    };
    spec.insert("replicas".into(), json!(count));
    let selector = spec.entry("selector").or_insert_with(|| json!({}));
    if let Some(selector) = selector.as_object_mut() {
        let labels = selector.entry("matchLabels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(PART_LABEL.into(), json!(label));
        }
    }
    if let Some(template) = spec.get_mut("template").and_then(Json::as_object_mut) {
        let meta = template.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert(PART_LABEL.into(), json!(label));
            }
        }
    }
    part
}

/// The pod spec of a workload object: the Pod's spec, a template's spec, or a
/// VirtualMachine's instance spec (which takes affinity like a pod spec).
fn pod_spec(kind: WorkloadKind, value: &mut Json) -> Option<&mut Json> {
    match kind {
        WorkloadKind::Pod => value.pointer_mut("/spec"),
        _ => value.pointer_mut("/spec/template/spec"),
    }
}

/// Adds the [`UNPLACED_GATE`] scheduling gate to a workload's pods. VirtualMachine
/// instances have no scheduling gates: they go out as they came in.
fn gate(kind: WorkloadKind, value: &mut Json) {
    if kind == WorkloadKind::VirtualMachine {
        return;
    }
    let Some(spec) = pod_spec(kind, value).and_then(Json::as_object_mut) else {
        return;
    };
    let gates = spec
        .entry("schedulingGates")
        .or_insert_with(|| Json::Array(Vec::new()));
    if !gates.is_array() {
        *gates = Json::Array(Vec::new());
    }
    if let Some(list) = gates.as_array_mut()
        && !list.iter().any(|g| g["name"] == UNPLACED_GATE)
    {
        list.push(json!({"name": UNPLACED_GATE}));
    }
}

/// ANDs `metadata.name In nodes` into every required node selector term of a pod spec (or
/// adds it as the only term).
pub fn pin(spec: &mut Json, nodes: &[&str]) {
    let requirement = json!({"key": "metadata.name", "operator": "In", "values": nodes});
    let Some(terms) = required_terms(spec) else {
        return;
    };
    if terms.is_empty() {
        terms.push(json!({"matchFields": [requirement]}));
        return;
    }
    for term in terms.iter_mut() {
        if let Some(term) = term.as_object_mut() {
            let fields = term
                .entry("matchFields")
                .or_insert_with(|| Json::Array(Vec::new()));
            match fields.as_array_mut() {
                Some(list) => list.push(requirement.clone()),
                None => *fields = json!([requirement.clone()]),
            }
        }
    }
}

/// `affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`
/// of a pod spec, created when absent.
fn required_terms(spec: &mut Json) -> Option<&mut Vec<Json>> {
    let mut at = spec;
    for key in [
        "affinity",
        "nodeAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
    ] {
        let entry = at.as_object_mut()?.entry(key).or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        at = entry;
    }
    let terms = at
        .as_object_mut()?
        .entry("nodeSelectorTerms")
        .or_insert_with(|| json!([]));
    if !terms.is_array() {
        *terms = json!([]);
    }
    terms.as_array_mut()
}

/// HorizontalPodAutoscalers (and anything else with a `scaleTargetRef`) that name a
/// workload the plan split: they would scale nothing.
fn autoscaler_warnings(documents: &[Document], split: &[Split]) -> Vec<String> {
    let mut warnings = Vec::new();
    for doc in documents {
        let Some(target) = doc.value.pointer("/spec/scaleTargetRef") else {
            continue;
        };
        let namespace = meta(doc, "namespace").unwrap_or("default");
        let kind = target
            .get("kind")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let name = target
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or_default();
        if let Some(s) = split
            .iter()
            .find(|s| s.kind.as_str() == kind && s.name == name && s.namespace == namespace)
        {
            warnings.push(format!(
                "{}: {} targets {kind} {name}, which the plan split into {}: it scales nothing until it targets the parts (or plan with the replicas it wants)",
                doc.location(),
                doc.describe(),
                s.parts.join(", ")
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests;
