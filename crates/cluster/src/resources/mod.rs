//! The registry of served resources: the built-in kinds edgeplane uses, plus every version
//! of every CustomResourceDefinition created in the cluster; and the discovery documents
//! (`/api`, `/apis`, group and group-version resource lists) generated from it.
//!
//! `builtins` holds the table of built-in kinds, `registry` the served set and its
//! discovery documents, `crd` what a CustomResourceDefinition serves; this module the
//! definition of one resource.

mod builtins;
mod crd;
mod registry;

use serde_json::{Value, json};

pub use crd::defs_from_crd;
pub use registry::Registry;

/// Built-in kinds that have behaviour beyond storage (defaulting, validation, controllers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    Namespace,
    Node,
    Pod,
    Service,
    ConfigMap,
    Secret,
    ServiceAccount,
    Event,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Lease,
    PodDisruptionBudget,
    CustomResourceDefinition,
    ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
    MutatingWebhookConfiguration,
}

/// How a resource's objects are represented on the wire relative to storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// As stored.
    Native,
    /// `events.k8s.io/v1` Event, stored as `core/v1` Event.
    EventsV1,
}

/// Paths of the scale subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// What the schema of a custom resource version says.
#[derive(Debug, Clone, Default)]
pub struct CrdVersion {
    /// `openAPIV3Schema`, if any.
    pub schema: Option<Value>,
    /// `additionalPrinterColumns`.
    pub printer_columns: Vec<Value>,
}

/// One served resource: a plural name in one group and version.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    pub scale: Option<ScalePaths>,
    pub builtin: Option<Builtin>,
    /// Storage key shared by every version of the resource (`pods`, `deployments.apps`).
    pub storage: String,
    pub repr: Repr,
    /// Whether `metadata.generation` is maintained.
    pub generation: bool,
    /// Field selector labels beyond `metadata.name` and `metadata.namespace`.
    pub field_labels: Vec<String>,
    /// For custom resources: the CRD name (`<plural>.<group>`) and its version's schema.
    pub crd: Option<(String, CrdVersion)>,
}

impl ResourceDef {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }

    pub fn supports_field(&self, field: &str) -> bool {
        field == "metadata.name"
            || field == "metadata.namespace"
            || self.field_labels.iter().any(|f| f == field)
    }

    /// The discovery entries of the resource and its subresources.
    fn discovery(&self) -> Vec<Value> {
        let verbs = json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ]);
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            main["categories"] = json!(self.categories);
        }
        let mut out = vec![main];
        let sub = |name: &str, kind: &str, verbs: Value| {
            json!({
                "name": format!("{}/{name}", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": kind,
                "verbs": verbs,
            })
        };
        if self.status_subresource {
            out.push(sub("status", &self.kind, json!(["get", "patch", "update"])));
        }
        if self.scale.is_some() {
            let mut s = sub("scale", "Scale", json!(["get", "patch", "update"]));
            s["group"] = json!("autoscaling");
            s["version"] = json!("v1");
            out.push(s);
        }
        if self.builtin == Some(Builtin::Pod) {
            out.push(sub("binding", "Binding", json!(["create"])));
            let mut e = sub("eviction", "Eviction", json!(["create"]));
            e["group"] = json!("policy");
            e["version"] = json!("v1");
            out.push(e);
        }
        if self.builtin == Some(Builtin::Namespace) {
            out.push(sub("finalize", "Namespace", json!(["update"])));
        }
        out
    }
}

/// `apps/v1` -> (`apps`, `v1`); `v1` -> (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}
