//! Patches and server-side apply.
//!
//! - JSON merge patch (RFC 7386) and JSON patch (RFC 6902) for every resource;
//! - strategic merge patch for built-in kinds, with the list merge keys of the fields
//!   edgeplane and kubectl use (containers, ports, env, volumes, scheduling gates,
//!   conditions, owner references, finalizers, ...) and the `$patch`, `$retainKeys`,
//!   `$setElementOrder` and `$deleteFromPrimitiveList` directives kubectl sends;
//! - server-side apply as a merge that records the applied field set per manager and
//!   removes fields a manager stops applying when no other manager owns them.
//!
//! `merge` holds the RFC patches, `strategic` the strategic merge patch, `fields` the
//! managed field sets (`fieldsV1`), `apply` the server-side apply merge; this module the
//! list semantics of every resource they share.
//!
//! ```
//! use edgeplane_cluster::patch::{Shape, json_patch, merge_patch, strategic_merge};
//! use edgeplane_cluster::resources::Builtin;
//! use serde_json::json;
//!
//! let pod = json!({"spec": {"containers": [{"name": "a", "image": "i:1"}, {"name": "b", "image": "j:1"}]}});
//! // Strategic merge patches merge containers by name; a merge patch replaces the list.
//! let patch = json!({"spec": {"containers": [{"name": "b", "image": "j:2"}]}});
//! let merged = strategic_merge(&pod, &patch, Shape::Builtin(Builtin::Pod))?;
//! assert_eq!(merged["spec"]["containers"].as_array().map(Vec::len), Some(2));
//! let mut replaced = pod.clone();
//! merge_patch(&mut replaced, &patch);
//! assert_eq!(replaced["spec"]["containers"].as_array().map(Vec::len), Some(1));
//! json_patch(&mut replaced, &json!([{"op": "add", "path": "/metadata", "value": {"name": "p"}}]))?;
//! assert_eq!(replaced["metadata"]["name"], "p");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod apply;
mod fields;
mod merge;
mod strategic;

use serde_json::Value;

use crate::resources::Builtin;

pub use apply::{apply_merge, remove_fields};
pub use fields::{
    FieldPath, FieldSet, PathElement, changed_fields, field_set, from_fields_v1, to_fields_v1,
};
pub use merge::{JsonPatchError, json_patch, merge_patch};
pub use strategic::{StrategicMergeError, strategic_merge};

/// How a list field merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars: merged by union.
    Set,
    /// A list of objects keyed by the given fields.
    Map(Vec<String>),
}

/// Where list semantics come from: a built-in kind's known fields, a CRD schema, or
/// nowhere (every list atomic).
#[derive(Debug, Clone, Copy)]
pub enum Shape<'a> {
    Builtin(Builtin),
    Schema(&'a Value),
    Opaque,
}

fn keys(k: &[&str]) -> ListType {
    ListType::Map(k.iter().map(|s| s.to_string()).collect())
}

impl Shape<'_> {
    /// The list type of the field at `path` (field names only, list positions elided).
    pub fn list_type(&self, path: &[String]) -> ListType {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        match p.as_slice() {
            ["metadata", "finalizers"] => return ListType::Set,
            ["metadata", "ownerReferences"] => return keys(&["uid"]),
            ["metadata", ..] => return ListType::Atomic,
            _ => {}
        }
        match self {
            Shape::Builtin(kind) => builtin_list_type(*kind, &p),
            Shape::Schema(schema) => schema_list_type(schema, &p),
            Shape::Opaque => ListType::Atomic,
        }
    }
}

fn builtin_list_type(kind: Builtin, p: &[&str]) -> ListType {
    let pod_spec = match kind {
        Builtin::Pod => p.strip_prefix(&["spec"][..]),
        Builtin::Deployment | Builtin::ReplicaSet | Builtin::StatefulSet | Builtin::DaemonSet => {
            p.strip_prefix(&["spec", "template", "spec"][..])
        }
        _ => None,
    };
    if let Some(rel) = pod_spec {
        return pod_spec_list_type(rel);
    }
    match (kind, p) {
        (_, ["status", "conditions"]) => keys(&["type"]),
        (Builtin::Pod, ["status", "podIPs"] | ["status", "hostIPs"]) => keys(&["ip"]),
        (Builtin::Node, ["status", "addresses"]) => keys(&["type"]),
        (Builtin::Node, ["spec", "podCIDRs"]) => ListType::Set,
        (Builtin::Service, ["spec", "ports"]) => keys(&["port", "protocol"]),
        _ => ListType::Atomic,
    }
}

fn pod_spec_list_type(rel: &[&str]) -> ListType {
    const CONTAINERS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];
    match rel {
        [c] if CONTAINERS.contains(c) => keys(&["name"]),
        [c, "ports"] if CONTAINERS.contains(c) => keys(&["containerPort", "protocol"]),
        [c, "env"] if CONTAINERS.contains(c) => keys(&["name"]),
        [c, "volumeMounts"] if CONTAINERS.contains(c) => keys(&["mountPath"]),
        [c, "volumeDevices"] if CONTAINERS.contains(c) => keys(&["devicePath"]),
        ["volumes"] | ["imagePullSecrets"] | ["schedulingGates"] | ["resourceClaims"] => {
            keys(&["name"])
        }
        ["hostAliases"] => keys(&["ip"]),
        ["topologySpreadConstraints"] => keys(&["topologyKey", "whenUnsatisfiable"]),
        _ => ListType::Atomic,
    }
}

/// Follows `properties` / `additionalProperties` / `items` of an OpenAPI v3 schema.
pub fn schema_at<'a>(schema: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut node = schema;
    for seg in path {
        node = step_items(node);
        node = node
            .get("properties")
            .and_then(|p| p.get(*seg))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
    }
    Some(node)
}

fn step_items(mut node: &Value) -> &Value {
    while node.get("type").and_then(Value::as_str) == Some("array") {
        match node.get("items") {
            Some(items) => node = items,
            None => break,
        }
    }
    node
}

fn schema_list_type(schema: &Value, p: &[&str]) -> ListType {
    let Some(node) = schema_at(schema, p) else {
        return ListType::Atomic;
    };
    match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListType::Set,
        Some("map") => ListType::Map(
            node.get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => ListType::Atomic,
    }
}

// ---------------------------------------------------------------------------------------
// JSON merge patch and JSON patch
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_list_types() {
        let schema = json!({"type": "object", "properties": {"status": {"type": "object", "properties": {
            "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                           "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object"}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "other": {"type": "array", "items": {"type": "object"}}}}}});
        let shape = Shape::Schema(&schema);
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shape.list_type(&p(&["status", "conditions"])),
            keys(&["type"])
        );
        assert_eq!(shape.list_type(&p(&["status", "tags"])), ListType::Set);
        assert_eq!(shape.list_type(&p(&["status", "other"])), ListType::Atomic);
    }
}
