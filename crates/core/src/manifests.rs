//! Reading Kubernetes manifests: multi-document YAML (or JSON) of any objects, decoded into
//! the kinds edgeplane understands, with errors that name the source, the document, the
//! object and the field:
//!
//! `offers.yaml[3] ConstraintPolicyOffer default/ar: spec.grace: "5 minutes" is not a duration`
//!
//! Document indices count the non-empty documents of a source from 0. Reading files is the
//! caller's business; this module only sees text.

use std::fmt;

use edgeplane_api::{
    ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyOffer, NetworkPathCatalogue,
    NetworkTopology,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::planner::convert;
use crate::validate::{self, FieldError};

/// One document of a source.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The file name, or `-` for standard input.
    pub source: String,
    /// Index among the source's non-empty documents, from 0 (items of a `List` share their
    /// list's index).
    pub index: usize,
    pub value: Json,
}

impl Document {
    /// `offers.yaml[3]`
    pub fn location(&self) -> String {
        format!("{}[{}]", self.source, self.index)
    }

    fn str_at(&self, pointer: &str) -> Option<&str> {
        self.value.pointer(pointer).and_then(Json::as_str)
    }

    pub fn kind(&self) -> &str {
        self.str_at("/kind").unwrap_or_default()
    }

    pub fn api_version(&self) -> &str {
        self.str_at("/apiVersion").unwrap_or_default()
    }

    /// `ConstraintPolicyOffer default/ar`, for messages. Namespaced objects without a
    /// namespace are shown in `default`, where they would be created.
    pub fn describe(&self) -> String {
        let kind = if self.kind().is_empty() {
            "object"
        } else {
            self.kind()
        };
        let namespace = self
            .str_at("/metadata/namespace")
            .or((!is_cluster_scoped(kind) && kind != "object").then_some("default"));
        match (namespace, self.str_at("/metadata/name")) {
            (Some(ns), Some(name)) => format!("{kind} {ns}/{name}"),
            (None, Some(name)) => format!("{kind} {name}"),
            _ => format!("{kind} (unnamed)"),
        }
    }
}

/// Kinds that live outside namespaces, among those found in manifests.
pub fn is_cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Node"
            | "Namespace"
            | "NetworkTopology"
            | "NetworkPathCatalogue"
            | "CustomResourceDefinition"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "PersistentVolume"
            | "StorageClass"
            | "PriorityClass"
            | "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
    )
}

/// An input that is not valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    /// `offers.yaml[3]`, or just the source for syntax errors and errors of a whole file.
    pub location: String,
    /// `ConstraintPolicyOffer default/ar`, when known.
    pub object: Option<String>,
    /// `spec.grace`, when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location)?;
        if let Some(object) = &self.object {
            write!(f, " {object}")?;
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ManifestError {}

impl ManifestError {
    fn at(doc: &Document, field: Option<String>, message: impl Into<String>) -> Self {
        ManifestError {
            location: doc.location(),
            object: Some(doc.describe()),
            field,
            message: message.into(),
        }
    }

    pub fn from_field(doc: &Document, error: FieldError) -> Self {
        ManifestError::at(doc, Some(error.field), error.message)
    }
}

/// Splits a source into documents. JSON sources (starting with `{` or `[`) are one
/// document (or an array of them); everything else is parsed as multi-document YAML.
pub fn parse_documents(source: &str, text: &str) -> Result<Vec<Document>, ManifestError> {
    let syntax = |message: String| ManifestError {
        location: source.to_string(),
        object: None,
        field: None,
        message,
    };
    let values: Vec<Json> = if text.trim_start().starts_with(['{', '[']) {
        match serde_json::from_str::<Json>(text) {
            Ok(Json::Array(items)) => items,
            Ok(value) => vec![value],
            Err(e) => return Err(syntax(format!("invalid JSON: {e}"))),
        }
    } else {
        serde_saphyr::from_multiple::<Json>(text)
            .map_err(|e| syntax(format!("invalid YAML: {e}")))?
    };
    let mut documents = Vec::new();
    for (index, value) in values.into_iter().filter(|v| !v.is_null()).enumerate() {
        let doc = Document {
            source: source.to_string(),
            index,
            value,
        };
        if !doc.value.is_object() {
            return Err(ManifestError::at(
                &doc,
                None,
                "a document must be a Kubernetes object (a mapping)",
            ));
        }
        // `kind: List` (what `kubectl get -o yaml` prints) holds its objects in `items`.
        if doc.kind() == "List" || doc.kind().ends_with("List") && doc.value.get("items").is_some()
        {
            let items = doc
                .value
                .get("items")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            documents.extend(items.into_iter().map(|value| Document {
                source: source.to_string(),
                index,
                value,
            }));
        } else {
            documents.push(doc);
        }
    }
    Ok(documents)
}

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
            if let Some(spec) = &pod.spec {
                check(doc, check_spec(spec, "spec").err().into_iter().collect())?;
            }
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
        _ => Object::Other { api_version, kind },
    };
    Ok(object)
}

/// Deserializes a document into a typed object, naming the field on failure.
pub fn typed<T: DeserializeOwned>(doc: &Document, namespaced: bool) -> Result<T, ManifestError> {
    let mut value = doc.value.clone();
    if namespaced
        && let Some(meta) = value.get_mut("metadata").and_then(Json::as_object_mut)
        && !meta.contains_key("namespace")
    {
        meta.insert("namespace".into(), Json::String("default".into()));
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
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

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = r#"
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: low-latency}
spec:
  rules: [{name: latency, request: 5ms, limit: 10ms}]
---
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: ar, namespace: default}
spec:
  targets: [{kind: Pod}]
  policies: [low-latency]
  grace: 5 minutes
"#;

    fn decode_all(source: &str, text: &str) -> Result<Vec<Object>, ManifestError> {
        parse_documents(source, text)?.iter().map(decode).collect()
    }

    #[test]
    fn errors_name_source_document_object_and_field() {
        let err = decode_all("offers.yaml", OFFER)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "offers.yaml[2] ConstraintPolicyOffer default/ar: spec.grace: \"5 minutes\" is not a duration (expected for example 250ns, 10us, 1.5ms, 2s, 1m, 1h)"
            )
        );
    }

    #[test]
    fn type_errors_carry_the_field_path() {
        let text = "apiVersion: constraint.edgeplane.io/v1alpha1\nkind: ConstraintPolicyOffer\nmetadata: {name: x}\nspec:\n  targets: [{kind: Pods}]\n  policies: [p]\n";
        let err = decode_all("o.yaml", text).err();
        assert_eq!(
            err.as_ref().and_then(|e| e.field.as_deref()),
            Some("spec.targets[0].kind")
        );
        assert!(err.is_some_and(|e| e.message.contains("unknown variant `Pods`")));
    }

    #[test]
    fn unknown_kinds_are_skipped_and_namespaces_defaulted() {
        let objects = decode_all("a.yaml", &OFFER.replace("5 minutes", "5m")).unwrap_or_default();
        assert_eq!(objects.len(), 3);
        assert!(matches!(&objects[1], Object::Other { kind, .. } if kind == "ConfigMap"));
        let Object::Policy(p) = &objects[0] else {
            panic!("not a policy: {:?}", objects[0])
        };
        assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
    }

    #[test]
    fn syntax_and_shape_errors() {
        let err = parse_documents("bad.yaml", "a: [1, 2\n")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.starts_with("bad.yaml: invalid YAML")));
        let err = parse_documents("s.yaml", "- 1\n- 2\n")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("must be a Kubernetes object")));
        let err = decode_all("k.yaml", "kind: Pod\nmetadata: {name: p}\n")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("k.yaml[0] Pod default/p: apiVersion: is required")
        );
        let err = decode_all(
            "g.yaml",
            "apiVersion: constraint.edgeplane.io/v1\nkind: ConstraintPolicy\nmetadata: {name: p}\n",
        )
        .err();
        assert_eq!(err.and_then(|e| e.field), Some("apiVersion".to_string()));
    }

    #[test]
    fn json_and_lists() {
        let docs = parse_documents(
            "l.json",
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"}}]}"#,
        );
        let docs = docs.unwrap_or_default();
        assert_eq!(docs.len(), 2);
        assert!(docs.iter().all(|d| d.index == 0 && d.kind() == "Pod"));
        assert!(parse_documents("x.json", "{nope").is_err());
    }
}
