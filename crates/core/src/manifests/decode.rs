//! Decoding documents into the objects edgeplane reads, with the checks beyond the schemas.

use edgeplane_api::{
    ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyOffer, NetworkPathCatalogue,
    NetworkTopology,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use super::{Document, ManifestError};
use crate::planner::convert;
use crate::validate::{self, FieldError};

/// The objects edgeplane reads from manifests.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    Policy(ConstraintPolicy),
    Offer(ConstraintPolicyOffer),
    Binding(ConstraintPolicyBinding),
    Pod(Box<Pod>),
    Node(Box<Node>),
    Topology(Box<NetworkTopology>),
    Catalogue(Box<NetworkPathCatalogue>),
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    ReplicaSet(Box<ReplicaSet>),
    VirtualMachine(Box<crate::kubevirt::VirtualMachine>),
    NetworkFunction(Box<edgeplane_api::NetworkFunction>),
    ServiceChain(Box<edgeplane_api::ServiceChain>),
    /// Read for the labels `namespaceSelector`s of pod affinity terms match.
    Namespace(Box<k8s_openapi::api::core::v1::Namespace>),
    /// Read for the priority of pods that name it.
    PriorityClass(Box<k8s_openapi::api::scheduling::v1::PriorityClass>),
    /// A kind edgeplane does not read; skipped.
    Other {
        api_version: String,
        kind: String,
    },
}

/// Decodes and validates one document. Namespaced objects without a namespace get
/// `default`, as `kubectl apply` would give them.
pub fn decode(doc: &Document) -> Result<Object, ManifestError> {
    let api_version = doc.api_version().to_string();
    let kind = doc.kind().to_string();
    if api_version.is_empty() {
        return Err(ManifestError::at(
            doc,
            Some("apiVersion".into()),
            "is required",
        ));
    }
    if kind.is_empty() {
        return Err(ManifestError::at(doc, Some("kind".into()), "is required"));
    }
    let constraint = api_version == edgeplane_api::names::CONSTRAINT_API_VERSION;
    if !constraint && api_version.starts_with(edgeplane_api::names::CONSTRAINT_GROUP) {
        return Err(ManifestError::at(
            doc,
            Some("apiVersion".into()),
            format!(
                "{api_version:?} is not served (expected {})",
                edgeplane_api::names::CONSTRAINT_API_VERSION
            ),
        ));
    }
    let network = api_version == edgeplane_api::names::NETWORK_API_VERSION;
    if matches!(kind.as_str(), "NetworkTopology" | "NetworkPathCatalogue") && !network {
        return Err(ManifestError::at(
            doc,
            Some("apiVersion".into()),
            format!(
                "{api_version:?} is not served (expected {})",
                edgeplane_api::names::NETWORK_API_VERSION
            ),
        ));
    }
    let object = match (api_version.as_str(), kind.as_str()) {
        (_, "ConstraintPolicy") if constraint => {
            let policy: ConstraintPolicy = typed(doc, true)?;
            check(doc, validate::policy(&policy))?;
            check(doc, rule_syntax(&policy))?;
            Object::Policy(policy)
        }
        (_, "ConstraintPolicyOffer") if constraint => {
            let offer: ConstraintPolicyOffer = typed(doc, true)?;
            check(doc, validate::offer(&offer))?;
            Object::Offer(offer)
        }
        (_, "ConstraintPolicyBinding") if constraint => {
            let binding: ConstraintPolicyBinding = typed(doc, true)?;
            check(doc, validate::metadata(&binding.metadata, true))?;
            Object::Binding(binding)
        }
        (_, "ConstraintPolicy" | "ConstraintPolicyOffer" | "ConstraintPolicyBinding") => {
            return Err(ManifestError::at(
                doc,
                Some("kind".into()),
                format!("unknown kind {kind:?} in {api_version}"),
            ));
        }
        ("v1", "Pod") => {
            let pod: Pod = typed(doc, true)?;
            check(doc, validate::metadata(&pod.metadata, true))?;
            // The API server refuses a pod without containers; so do we, rather than plan
            // a pod that could never be created.
            let spec = pod.spec.clone().unwrap_or_default();
            check(doc, check_spec(&spec, "spec").err().into_iter().collect())?;
            Object::Pod(Box::new(pod))
        }
        ("apps/v1", "Deployment") => {
            let d: Deployment = typed(doc, true)?;
            check(doc, validate::metadata(&d.metadata, true))?;
            let spec = d.spec.clone().unwrap_or_default();
            check_workload(doc, spec.replicas, spec.template.spec.as_ref())?;
            Object::Deployment(Box::new(d))
        }
        ("apps/v1", "StatefulSet") => {
            let s: StatefulSet = typed(doc, true)?;
            check(doc, validate::metadata(&s.metadata, true))?;
            let spec = s.spec.clone().unwrap_or_default();
            check_workload(doc, spec.replicas, spec.template.spec.as_ref())?;
            Object::StatefulSet(Box::new(s))
        }
        ("apps/v1", "ReplicaSet") => {
            let r: ReplicaSet = typed(doc, true)?;
            check(doc, validate::metadata(&r.metadata, true))?;
            let spec = r.spec.clone().unwrap_or_default();
            let template = spec.template.and_then(|t| t.spec);
            check_workload(doc, spec.replicas, template.as_ref())?;
            Object::ReplicaSet(Box::new(r))
        }
        (crate::kubevirt::KUBEVIRT_API_VERSION, "VirtualMachine") => {
            let vm: crate::kubevirt::VirtualMachine = typed(doc, true)?;
            check(doc, validate::metadata(&vm.metadata, true))?;
            let spec = vm.pod_spec();
            let errors = check_spec(&spec, "spec.template.spec").err().map(|e| {
                // The launcher's requests come from the domain: name the field the
                // user wrote.
                let requested = vm
                    .spec
                    .template
                    .spec
                    .domain
                    .resources
                    .as_ref()
                    .and_then(|x| x.requests.as_ref())
                    .is_some_and(|q| q.contains_key("memory"));
                let field = if e.field.ends_with("requests[\"memory\"]") && !requested {
                    "spec.template.spec.domain.memory.guest".to_string()
                } else {
                    e.field.replace(
                        "spec.template.spec.containers[0].resources.requests",
                        "spec.template.spec.domain.resources.requests",
                    )
                };
                FieldError::new(field, e.message)
            });
            check(doc, errors.into_iter().collect())?;
            Object::VirtualMachine(Box::new(vm))
        }
        (_, "NetworkFunction") if network => {
            let f: edgeplane_api::NetworkFunction = typed(doc, true)?;
            check(doc, validate::metadata(&f.metadata, true))?;
            Object::NetworkFunction(Box::new(f))
        }
        (_, "ServiceChain") if network => {
            let chain: edgeplane_api::ServiceChain = typed(doc, true)?;
            check(doc, validate::metadata(&chain.metadata, true))?;
            Object::ServiceChain(Box::new(chain))
        }
        (_, "NetworkTopology") => {
            let topology: NetworkTopology = typed(doc, false)?;
            check(doc, validate::metadata(&topology.metadata, false))?;
            let errors = crate::network::check_topology(&topology)
                .into_iter()
                .map(|e| FieldError::new(e.field, e.message))
                .collect();
            check(doc, errors)?;
            Object::Topology(Box::new(topology))
        }
        (_, "NetworkPathCatalogue") => {
            let catalogue: NetworkPathCatalogue = typed(doc, false)?;
            check(doc, validate::metadata(&catalogue.metadata, false))?;
            let errors = crate::mitigation::check_catalogue(&catalogue)
                .into_iter()
                .map(|e| FieldError::new(e.field, e.message))
                .collect();
            check(doc, errors)?;
            Object::Catalogue(Box::new(catalogue))
        }
        ("v1", "Node") => {
            let node: Node = typed(doc, false)?;
            check(doc, validate::metadata(&node.metadata, false))?;
            check(
                doc,
                crate::planner::convert::plan_node(&node)
                    .err()
                    .into_iter()
                    .collect(),
            )?;
            Object::Node(Box::new(node))
        }
        ("v1", "Namespace") => {
            let namespace: k8s_openapi::api::core::v1::Namespace = typed(doc, false)?;
            check(doc, validate::metadata(&namespace.metadata, false))?;
            Object::Namespace(Box::new(namespace))
        }
        ("scheduling.k8s.io/v1", "PriorityClass") => {
            let class: k8s_openapi::api::scheduling::v1::PriorityClass = typed(doc, false)?;
            check(doc, validate::metadata(&class.metadata, false))?;
            Object::PriorityClass(Box::new(class))
        }
        _ => Object::Other { api_version, kind },
    };
    Ok(object)
}

/// Deserializes a document into a typed object, naming the field on failure.
pub fn typed<T: DeserializeOwned>(doc: &Document, namespaced: bool) -> Result<T, ManifestError> {
    let needs_namespace = namespaced
        && doc
            .value
            .get("metadata")
            .and_then(Json::as_object)
            .is_some_and(|meta| !meta.contains_key("namespace"));
    // Read from the document itself, copying it only to add the namespace.
    let decoded = if needs_namespace {
        let mut value = doc.value.clone();
        if let Some(meta) = value.get_mut("metadata").and_then(Json::as_object_mut) {
            meta.insert("namespace".into(), Json::String("default".into()));
        }
        serde_path_to_error::deserialize::<_, T>(value)
    } else {
        serde_path_to_error::deserialize::<_, T>(&doc.value)
    };
    decoded.map_err(|e| {
        let path = e.path().to_string();
        let field = (path != "." && !path.is_empty()).then_some(path);
        ManifestError::at(doc, field, e.into_inner().to_string())
    })
}

/// Built-in rules whose requests have a syntax of their own (`node-label: key=value`,
/// `node-feature: cpu-cpuid.AVX512F`), checked beyond their unit.
fn rule_syntax(policy: &ConstraintPolicy) -> Vec<FieldError> {
    policy
        .spec
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| match crate::evaluate::check_rule(rule) {
            Err(crate::evaluate::CompileError::Invalid { field, message }) => {
                Some(FieldError::new(format!("spec.rules[{i}].{field}"), message))
            }
            _ => None,
        })
        .collect()
}

/// Replica count and pod template of a replicated workload.
fn check_workload(
    doc: &Document,
    replicas: Option<i32>,
    template: Option<&PodSpec>,
) -> Result<(), ManifestError> {
    check(doc, check_replicas(replicas).err().into_iter().collect())?;
    if let Some(spec) = template {
        check(
            doc,
            check_spec(spec, "spec.template.spec")
                .err()
                .into_iter()
                .collect(),
        )?;
    }
    Ok(())
}

/// Checks a pod spec for planning; `prefix` locates it (`spec.template.spec`).
pub fn check_spec(spec: &PodSpec, prefix: &str) -> Result<(), FieldError> {
    if spec.containers.is_empty() {
        return Err(FieldError::new(
            format!("{prefix}.containers"),
            "is required: a pod needs at least one container",
        ));
    }
    convert::check_pod_spec(spec)
        .map_err(|e| FieldError::new(format!("{prefix}.{}", e.field), e.message))
}

/// Checks the replica count of a replicated workload.
pub fn check_replicas(replicas: Option<i32>) -> Result<(), FieldError> {
    match replicas {
        Some(n) if n < 0 => Err(FieldError::new("spec.replicas", format!("{n} is negative"))),
        Some(n) if n > 10_000 => Err(FieldError::new(
            "spec.replicas",
            format!("{n} replicas is more than the planner takes (10000)"),
        )),
        _ => Ok(()),
    }
}

fn check(doc: &Document, errors: Vec<FieldError>) -> Result<(), ManifestError> {
    match errors.into_iter().next() {
        Some(first) => Err(ManifestError::from_field(doc, first)),
        None => Ok(()),
    }
}
