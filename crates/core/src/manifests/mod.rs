//! Reading Kubernetes manifests: multi-document YAML (or JSON) of any objects, decoded into
//! the kinds edgeplane understands, with errors that name the source, the document, the
//! object and the field:
//!
//! `offers.yaml[3] ConstraintPolicyOffer default/ar: spec.grace: "5 minutes" is not a duration`
//!
//! Document indices count the non-empty documents of a source from 0; the objects of a
//! `List` are located by their item too (`pods.yaml[0].items[17]`). Reading files is the
//! caller's business; this module only sees text. Every reader of YAML (manifests,
//! scenarios, the embedded cluster's request bodies) parses through [`yaml_documents`] or
//! [`yaml_document`], under one set of limits ([`YamlLimits`]).

use std::fmt;

use serde_json::Value as Json;

use crate::validate::FieldError;

mod decode;
mod fields;
mod parse;
mod unique;
mod yaml;

pub use decode::{Object, check_replicas, check_spec, decode, typed};
pub use fields::{Validation, check_fields, unknown_fields};
pub use parse::{parse_documents, parse_documents_with, parse_single};
pub use unique::unique;
pub use yaml::{
    ALIAS_LIMIT_VAR, DEFAULT_ALIAS_EVENTS, MAX_DEPTH, YamlLimits, yaml_document, yaml_documents,
};

/// One document of a source.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The file name, or `-` for standard input.
    pub source: String,
    /// Index among the source's non-empty documents, from 0.
    pub index: usize,
    /// For an object of a `List` (or `PodList`, ...): its index among the list's items.
    pub item: Option<usize>,
    pub value: Json,
}

impl Document {
    /// `offers.yaml[3]`, or `pods.yaml[0].items[17]` for an item of a list.
    pub fn location(&self) -> String {
        match self.item {
            Some(item) => format!("{}[{}].items[{item}]", self.source, self.index),
            None => format!("{}[{}]", self.source, self.index),
        }
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
            | "MemberCluster"
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
    pub(crate) fn at(doc: &Document, field: Option<String>, message: impl Into<String>) -> Self {
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

#[cfg(test)]
mod tests;
