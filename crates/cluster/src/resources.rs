//! The registry of served resources: the built-in kinds edgeplane uses, plus every version
//! of every CustomResourceDefinition created in the cluster; and the discovery documents
//! (`/api`, `/apis`, group and group-version resource lists) generated from it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::FieldError;

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

struct Spec {
    group: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    scale: bool,
    builtin: Builtin,
    generation: bool,
    fields: &'static [&'static str],
}

const CORE_EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

const EVENTS_V1_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
];

const BUILTINS: &[Spec] = &[
    Spec {
        group: "",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
        short: &["ns"],
        all: false,
        status: true,
        scale: false,
        builtin: Builtin::Namespace,
        generation: false,
        fields: &["status.phase"],
    },
    Spec {
        group: "",
        plural: "nodes",
        kind: "Node",
        namespaced: false,
        short: &["no"],
        all: false,
        status: true,
        scale: false,
        builtin: Builtin::Node,
        generation: false,
        fields: &["spec.unschedulable"],
    },
    Spec {
        group: "",
        plural: "pods",
        kind: "Pod",
        namespaced: true,
        short: &["po"],
        all: true,
        status: true,
        scale: false,
        builtin: Builtin::Pod,
        generation: true,
        fields: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    },
    Spec {
        group: "",
        plural: "services",
        kind: "Service",
        namespaced: true,
        short: &["svc"],
        all: true,
        status: true,
        scale: false,
        builtin: Builtin::Service,
        generation: false,
        fields: &[],
    },
    Spec {
        group: "",
        plural: "configmaps",
        kind: "ConfigMap",
        namespaced: true,
        short: &["cm"],
        all: false,
        status: false,
        scale: false,
        builtin: Builtin::ConfigMap,
        generation: false,
        fields: &[],
    },
    Spec {
        group: "",
        plural: "secrets",
        kind: "Secret",
        namespaced: true,
        short: &[],
        all: false,
        status: false,
        scale: false,
        builtin: Builtin::Secret,
        generation: false,
        fields: &["type"],
    },
    Spec {
        group: "",
        plural: "serviceaccounts",
        kind: "ServiceAccount",
        namespaced: true,
        short: &["sa"],
        all: false,
        status: false,
        scale: false,
        builtin: Builtin::ServiceAccount,
        generation: false,
        fields: &[],
    },
    Spec {
        group: "",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        all: false,
        status: false,
        scale: false,
        builtin: Builtin::Event,
        generation: false,
        fields: CORE_EVENT_FIELDS,
    },
    Spec {
        group: "apps",
        plural: "deployments",
        kind: "Deployment",
        namespaced: true,
        short: &["deploy"],
        all: true,
        status: true,
        scale: true,
        builtin: Builtin::Deployment,
        generation: true,
        fields: &[],
    },
    Spec {
        group: "apps",
        plural: "replicasets",
        kind: "ReplicaSet",
        namespaced: true,
        short: &["rs"],
        all: true,
        status: true,
        scale: true,
        builtin: Builtin::ReplicaSet,
        generation: true,
        fields: &["status.replicas"],
    },
    Spec {
        group: "apps",
        plural: "statefulsets",
        kind: "StatefulSet",
        namespaced: true,
        short: &["sts"],
        all: true,
        status: true,
        scale: true,
        builtin: Builtin::StatefulSet,
        generation: true,
        fields: &[],
    },
    Spec {
        group: "apps",
        plural: "daemonsets",
        kind: "DaemonSet",
        namespaced: true,
        short: &["ds"],
        all: true,
        status: true,
        scale: false,
        builtin: Builtin::DaemonSet,
        generation: true,
        fields: &[],
    },
    Spec {
        group: "coordination.k8s.io",
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        short: &[],
        all: false,
        status: false,
        scale: false,
        builtin: Builtin::Lease,
        generation: false,
        fields: &[],
    },
    Spec {
        group: "events.k8s.io",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        all: false,
        status: false,
        scale: false,
        builtin: Builtin::Event,
        generation: false,
        fields: EVENTS_V1_FIELDS,
    },
    Spec {
        group: "policy",
        plural: "poddisruptionbudgets",
        kind: "PodDisruptionBudget",
        namespaced: true,
        short: &["pdb"],
        all: false,
        status: true,
        scale: false,
        builtin: Builtin::PodDisruptionBudget,
        generation: true,
        fields: &[],
    },
    Spec {
        group: "apiextensions.k8s.io",
        plural: "customresourcedefinitions",
        kind: "CustomResourceDefinition",
        namespaced: false,
        short: &["crd", "crds"],
        all: false,
        status: true,
        scale: false,
        builtin: Builtin::CustomResourceDefinition,
        generation: true,
        fields: &[],
    },
];

fn builtin_def(s: &Spec) -> ResourceDef {
    let events_v1 = s.group == "events.k8s.io";
    ResourceDef {
        group: s.group.to_string(),
        version: "v1".to_string(),
        plural: s.plural.to_string(),
        singular: s.kind.to_ascii_lowercase(),
        kind: s.kind.to_string(),
        list_kind: format!("{}List", s.kind),
        namespaced: s.namespaced,
        short_names: s.short.iter().map(|x| x.to_string()).collect(),
        categories: if s.all {
            vec!["all".to_string()]
        } else {
            vec![]
        },
        status_subresource: s.status,
        scale: s.scale.then(|| ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".status.selector".into()),
        }),
        builtin: Some(s.builtin),
        storage: if events_v1 {
            "events".to_string()
        } else {
            crate::error::qualified(s.group, s.plural)
        },
        repr: if events_v1 {
            Repr::EventsV1
        } else {
            Repr::Native
        },
        generation: s.generation,
        field_labels: s.fields.iter().map(|x| x.to_string()).collect(),
        crd: None,
    }
}

/// All served resources.
#[derive(Debug, Clone)]
pub struct Registry {
    defs: Vec<Arc<ResourceDef>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The built-in resources, without any custom resource.
    pub fn builtin() -> Self {
        Registry {
            defs: BUILTINS.iter().map(|s| Arc::new(builtin_def(s))).collect(),
        }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .iter()
            .find(|d| d.group == group && d.version == version && d.plural == plural)
            .cloned()
    }

    /// The definition serving `apiVersion` + `kind`.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceDef>> {
        let (group, version) = split_api_version(api_version);
        self.defs
            .iter()
            .find(|d| d.group == group && d.version == version && d.kind == kind)
            .cloned()
    }

    /// Any served version of a storage key (for internal reads).
    pub fn by_storage(&self, storage: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .iter()
            .find(|d| d.storage == storage && d.repr == Repr::Native)
            .cloned()
    }

    /// Every definition, in registration order.
    pub fn all(&self) -> &[Arc<ResourceDef>] {
        &self.defs
    }

    /// Replaces the definitions served for a CRD.
    pub fn set_crd(&mut self, crd_name: &str, defs: Vec<ResourceDef>) {
        self.remove_crd(crd_name);
        self.defs.extend(defs.into_iter().map(Arc::new));
    }

    pub fn remove_crd(&mut self, crd_name: &str) {
        self.defs
            .retain(|d| d.crd.as_ref().is_none_or(|(n, _)| n != crd_name));
    }

    /// Groups and their versions, preferred version first, in discovery order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut order: Vec<String> = Vec::new();
        let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in &self.defs {
            if d.group.is_empty() {
                continue;
            }
            if !order.contains(&d.group) {
                order.push(d.group.clone());
            }
            let vs = versions.entry(d.group.clone()).or_default();
            if !vs.contains(&d.version) {
                vs.push(d.version.clone());
            }
        }
        order
            .into_iter()
            .map(|g| {
                let mut vs = versions.remove(&g).unwrap_or_default();
                vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
                (g, vs)
            })
            .collect()
    }

    pub fn resources_in(&self, group: &str, version: &str) -> Vec<Arc<ResourceDef>> {
        self.defs
            .iter()
            .filter(|d| d.group == group && d.version == version)
            .cloned()
            .collect()
    }

    /// `GET /api`.
    pub fn api_versions(&self) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        })
    }

    fn group_doc(group: &str, versions: &[String]) -> Value {
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        json!({
            "name": group,
            "versions": vs,
            "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
        })
    }

    /// `GET /apis`.
    pub fn api_group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .iter()
            .map(|(g, vs)| Self::group_doc(g, vs))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `GET /apis/<group>`.
    pub fn api_group(&self, group: &str) -> Option<Value> {
        let (_, vs) = self.groups().into_iter().find(|(g, _)| g == group)?;
        let mut doc = Self::group_doc(group, &vs);
        doc["kind"] = json!("APIGroup");
        doc["apiVersion"] = json!("v1");
        Some(doc)
    }

    /// `GET /api/v1` or `GET /apis/<group>/<version>`.
    pub fn api_resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let defs = self.resources_in(group, version);
        if defs.is_empty() {
            return None;
        }
        let resources: Vec<Value> = defs.iter().flat_map(|d| d.discovery()).collect();
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }))
    }
}

/// `apps/v1` -> (`apps`, `v1`); `v1` -> (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Kubernetes version ordering: GA before beta before alpha, higher numbers first.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major: u32 = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let minor_of = |t: &str| t.parse::<u32>().unwrap_or(0);
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(t) = tail.strip_prefix("beta") {
        (2, major, minor_of(t))
    } else if let Some(t) = tail.strip_prefix("alpha") {
        (1, major, minor_of(t))
    } else {
        (0, major, 0)
    }
}

/// The resource definitions a CRD serves, or why the CRD is invalid.
pub fn defs_from_crd(crd: &Value) -> Result<Vec<ResourceDef>, Vec<FieldError>> {
    let mut errs = Vec::new();
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let group = s(&spec, "group");
    let names = spec.get("names").cloned().unwrap_or(Value::Null);
    let plural = s(&names, "plural");
    let kind = s(&names, "kind");
    let singular = {
        let x = s(&names, "singular");
        if x.is_empty() {
            kind.to_ascii_lowercase()
        } else {
            x
        }
    };
    let list_kind = {
        let x = s(&names, "listKind");
        if x.is_empty() {
            format!("{kind}List")
        } else {
            x
        }
    };
    let name = crate::object::name(crd);
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else if !group.contains('.') {
        errs.push(FieldError::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        errs.push(FieldError::required("spec.names.plural", ""));
    }
    if kind.is_empty() {
        errs.push(FieldError::required("spec.names.kind", ""));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = s(&spec, "scope");
    let namespaced = match scope.as_str() {
        "Namespaced" => true,
        "Cluster" => false,
        _ => {
            errs.push(FieldError::not_supported(
                "spec.scope",
                &json!(scope),
                &["Cluster", "Namespaced"],
            ));
            true
        }
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldError::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
    }
    let storage_count = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage_count != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            &json!(storage_count),
            "must have exactly one version marked as storage version",
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let list = |v: &Value, k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut defs = Vec::new();
    for v in &versions {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let subresources = v.get("subresources").cloned().unwrap_or(Value::Null);
        let scale = subresources.get("scale").map(|sc| ScalePaths {
            spec_replicas: s(sc, "specReplicasPath"),
            status_replicas: s(sc, "statusReplicasPath"),
            label_selector: sc
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
        let field_labels = v
            .get("selectableFields")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                    .map(|p| p.trim_start_matches('.').to_string())
                    .collect()
            })
            .unwrap_or_default();
        defs.push(ResourceDef {
            group: group.clone(),
            version: s(v, "name"),
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            list_kind: list_kind.clone(),
            namespaced,
            short_names: list(&names, "shortNames"),
            categories: list(&names, "categories"),
            status_subresource: subresources.get("status").is_some(),
            scale,
            builtin: None,
            storage: format!("{plural}.{group}"),
            repr: Repr::Native,
            generation: true,
            field_labels,
            crd: Some((
                name.to_string(),
                CrdVersion {
                    schema: v
                        .get("schema")
                        .and_then(|s| s.get("openAPIV3Schema"))
                        .cloned(),
                    printer_columns: v
                        .get("additionalPrinterColumns")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                },
            )),
        });
    }
    Ok(defs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_served_with_discovery() {
        let r = Registry::builtin();
        let pods = r.find("", "v1", "pods").unwrap();
        assert!(pods.namespaced);
        assert!(pods.supports_field("spec.nodeName"));
        let list = r.api_resource_list("", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["name"].as_str())
            .collect();
        assert!(names.contains(&"pods/eviction"));
        assert!(names.contains(&"nodes"));
        let groups = r.api_group_list();
        assert!(
            groups["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "apps")
        );
        assert_eq!(
            r.find("events.k8s.io", "v1", "events").unwrap().storage,
            "events"
        );
    }

    #[test]
    fn version_ordering() {
        let mut vs = vec!["v1alpha1", "v2", "v1beta1", "v1", "v1beta2"];
        vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(vs, ["v2", "v1", "v1beta2", "v1beta1", "v1alpha1"]);
    }

    #[test]
    fn crd_defs() {
        let crd = json!({
            "metadata": {"name": "widgets.example.io"},
            "spec": {
                "group": "example.io",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wg"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                              "subresources": {"status": {}}}]
            }
        });
        let defs = defs_from_crd(&crd).unwrap();
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0].storage, "widgets.example.io");
        assert!(defs[0].status_subresource);
        let bad = json!({"metadata": {"name": "x"}, "spec": {"group": "example.io", "scope": "Nope",
            "names": {"plural": "widgets", "kind": "Widget"}, "versions": []}});
        assert!(defs_from_crd(&bad).is_err());
    }
}
