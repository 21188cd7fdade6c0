//! Patches and server-side apply.
//!
//! - JSON merge patch (RFC 7386) and JSON patch (RFC 6902) for every resource;
//! - strategic merge patch for built-in kinds, with the list merge keys of the fields
//!   edgeplane and kubectl use (containers, ports, env, volumes, scheduling gates,
//!   conditions, owner references, finalizers, ...) and the `$patch`, `$retainKeys`,
//!   `$setElementOrder` and `$deleteFromPrimitiveList` directives kubectl sends;
//! - server-side apply as a merge that records the applied field set per manager and
//!   removes fields a manager stops applying when no other manager owns them.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::resources::Builtin;

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

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    json_patch::patch(target, &ops).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------------------

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to `original`.
pub fn strategic_merge(original: &Value, patch: &Value, shape: Shape<'_>) -> Result<Value, String> {
    let Value::Object(p) = patch else {
        return Err("strategic merge patch must be a JSON object".into());
    };
    let mut out = match original {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let mut path = Vec::new();
    match smp_map(&mut out, p, shape, &mut path)? {
        MapOutcome::Keep => Ok(Value::Object(out)),
        MapOutcome::Delete => Ok(Value::Object(Map::new())),
    }
}

enum MapOutcome {
    Keep,
    Delete,
}

fn smp_map(
    orig: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    shape: Shape<'_>,
    path: &mut Vec<String>,
) -> Result<MapOutcome, String> {
    match patch.get(DIRECTIVE).map(|d| d.as_str()) {
        None | Some(Some("merge")) => {}
        Some(Some("replace")) => {
            *orig = strip_directives_map(patch);
            return Ok(MapOutcome::Keep);
        }
        Some(Some("delete")) => return Ok(MapOutcome::Delete),
        Some(other) => return Err(format!("unknown patch type: {other:?}")),
    }
    let mut orders: Vec<(String, Vec<Value>)> = Vec::new();
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE) {
            let remove = v.as_array().ok_or_else(|| format!("{k} must be a list"))?;
            if let Some(Value::Array(list)) = orig.get_mut(field) {
                list.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            let order = v.as_array().ok_or_else(|| format!("{k} must be a list"))?;
            orders.push((field.to_string(), order.clone()));
            continue;
        }
        if k == DIRECTIVE || k == RETAIN_KEYS {
            continue;
        }
        path.push(k.clone());
        match v {
            Value::Null => {
                orig.remove(k);
            }
            Value::Object(pm) => {
                let mut child = match orig.remove(k) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                if let MapOutcome::Keep = smp_map(&mut child, pm, shape, path)? {
                    orig.insert(k.clone(), Value::Object(child));
                }
            }
            Value::Array(items) => {
                let merged = match shape.list_type(path) {
                    ListType::Map(keys) if !keys.is_empty() => {
                        let old = match orig.remove(k) {
                            Some(Value::Array(a)) => a,
                            _ => Vec::new(),
                        };
                        smp_list_by_key(old, items, &keys[0], shape, path)?
                    }
                    ListType::Set => {
                        let mut old = match orig.remove(k) {
                            Some(Value::Array(a)) => a,
                            _ => Vec::new(),
                        };
                        if items.iter().any(is_replace_directive) {
                            old.clear();
                        }
                        for item in items.iter().filter(|i| !is_replace_directive(i)) {
                            if !old.contains(item) {
                                old.push(item.clone());
                            }
                        }
                        old
                    }
                    _ => items
                        .iter()
                        .filter(|i| !is_replace_directive(i))
                        .map(strip_directives)
                        .collect(),
                };
                orig.insert(k.clone(), Value::Array(merged));
            }
            scalar => {
                orig.insert(k.clone(), scalar.clone());
            }
        }
        path.pop();
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keep: Vec<&str> = retain
            .as_array()
            .ok_or_else(|| "$retainKeys must be a list".to_string())?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        orig.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (field, order) in orders {
        path.push(field.clone());
        let key = match shape.list_type(path) {
            ListType::Map(keys) => keys.first().cloned(),
            _ => None,
        };
        path.pop();
        if let Some(Value::Array(list)) = orig.get_mut(&field) {
            reorder(list, &order, key.as_deref());
        }
    }
    Ok(MapOutcome::Keep)
}

fn is_replace_directive(v: &Value) -> bool {
    v.get(DIRECTIVE).and_then(Value::as_str) == Some("replace")
}

fn smp_list_by_key(
    mut old: Vec<Value>,
    patch: &[Value],
    key: &str,
    shape: Shape<'_>,
    path: &mut Vec<String>,
) -> Result<Vec<Value>, String> {
    if patch.iter().any(is_replace_directive) {
        return Ok(patch
            .iter()
            .filter(|i| !is_replace_directive(i))
            .map(strip_directives)
            .collect());
    }
    for item in patch {
        let Value::Object(pm) = item else {
            old.push(item.clone());
            continue;
        };
        let id = pm.get(key);
        let pos = id.and_then(|id| old.iter().position(|o| o.get(key) == Some(id)));
        if pm.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
            if let Some(id) = id {
                old.retain(|o| o.get(key) != Some(id));
            }
            continue;
        }
        match pos {
            Some(i) => {
                let mut m = match old[i].take() {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                match smp_map(&mut m, pm, shape, path)? {
                    MapOutcome::Keep => old[i] = Value::Object(m),
                    MapOutcome::Delete => {
                        old.remove(i);
                    }
                }
            }
            None => {
                let mut m = Map::new();
                if let MapOutcome::Keep = smp_map(&mut m, pm, shape, path)? {
                    old.push(Value::Object(m));
                }
            }
        }
    }
    Ok(old)
}

/// Puts the elements named in `order` first, in that order; the rest keep their order.
fn reorder(list: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let ident = |v: &Value| -> Value {
        match key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let mut rest = std::mem::take(list);
    for o in order {
        let want = ident(o);
        if let Some(i) = rest.iter().position(|x| ident(x) == want) {
            list.push(rest.remove(i));
        }
    }
    list.extend(rest);
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(strip_directives_map(m)),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|i| !is_replace_directive(i))
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn strip_directives_map(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), strip_directives(v)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Server-side apply
// ---------------------------------------------------------------------------------------

/// One step of a field path in a managed field set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathElement {
    /// `f:<name>`
    Field(String),
    /// `k:{...}`: a list item identified by its key fields (JSON).
    Key(String),
    /// `v:<json>`: a set element.
    Value(String),
}

pub type FieldPath = Vec<PathElement>;
pub type FieldSet = BTreeSet<FieldPath>;

/// Top-level and metadata fields that belong to no manager.
fn ignored(path: &[PathElement]) -> bool {
    use PathElement::Field;
    match path {
        [Field(f)] => matches!(f.as_str(), "apiVersion" | "kind"),
        [Field(m), Field(f)] if m == "metadata" => matches!(
            f.as_str(),
            "name"
                | "namespace"
                | "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "deletionTimestamp"
                | "deletionGracePeriodSeconds"
                | "managedFields"
                | "selfLink"
        ),
        _ => false,
    }
}

fn item_key(item: &Value, keys: &[String]) -> String {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = item.get(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    Value::Object(m).to_string()
}

/// The fields set by an object, as a managed field set. Below `max_depth` path elements
/// subtrees are owned as a whole.
pub fn field_set(obj: &Value, shape: Shape<'_>, max_depth: usize) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    let mut names = Vec::new();
    collect_fields(obj, shape, &mut path, &mut names, max_depth, &mut out);
    out
}

fn collect_fields(
    v: &Value,
    shape: Shape<'_>,
    path: &mut FieldPath,
    names: &mut Vec<String>,
    max_depth: usize,
    out: &mut FieldSet,
) {
    match v {
        Value::Object(m) if !m.is_empty() && path.len() < max_depth => {
            for (k, child) in m {
                path.push(PathElement::Field(k.clone()));
                names.push(k.clone());
                if !ignored(path) {
                    collect_fields(child, shape, path, names, max_depth, out);
                }
                names.pop();
                path.pop();
            }
        }
        Value::Array(items) if path.len() < max_depth => match shape.list_type(names) {
            ListType::Map(keys) => {
                for item in items {
                    path.push(PathElement::Key(item_key(item, &keys)));
                    out.insert(path.clone());
                    if let Value::Object(m) = item {
                        for (k, child) in m {
                            path.push(PathElement::Field(k.clone()));
                            names.push(k.clone());
                            collect_fields(child, shape, path, names, max_depth, out);
                            names.pop();
                            path.pop();
                        }
                    }
                    path.pop();
                }
            }
            ListType::Set => {
                for item in items {
                    path.push(PathElement::Value(item.to_string()));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListType::Atomic => {
                out.insert(path.clone());
            }
        },
        _ => {
            if !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
}

/// The fields that differ between two versions of an object (what an update touched).
pub fn changed_fields(old: &Value, new: &Value, shape: Shape<'_>, max_depth: usize) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    diff_fields(old, new, shape, &mut path, max_depth, &mut out);
    out
}

fn diff_fields(
    old: &Value,
    new: &Value,
    shape: Shape<'_>,
    path: &mut FieldPath,
    max_depth: usize,
    out: &mut FieldSet,
) {
    if old == new || ignored(path) {
        return;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) if path.len() < max_depth => {
            for (k, nv) in n {
                path.push(PathElement::Field(k.clone()));
                match o.get(k) {
                    Some(ov) => diff_fields(ov, nv, shape, path, max_depth, out),
                    None if !ignored(path) => {
                        let names = field_names(path);
                        let mut sub = FieldSet::new();
                        let mut names = names;
                        collect_fields(nv, shape, path, &mut names, max_depth, &mut sub);
                        out.extend(sub);
                    }
                    None => {}
                }
                path.pop();
            }
        }
        _ => {
            if !path.is_empty() && !new.is_null() {
                out.insert(path.clone());
            }
        }
    }
}

fn field_names(path: &[PathElement]) -> Vec<String> {
    path.iter()
        .filter_map(|p| match p {
            PathElement::Field(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

/// Renders a field set as `fieldsV1`.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for (i, el) in path.iter().enumerate() {
            let key = match el {
                PathElement::Field(f) => format!("f:{f}"),
                PathElement::Key(k) => format!("k:{k}"),
                PathElement::Value(v) => format!("v:{v}"),
            };
            let entry = node.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Some(next) = entry.as_object_mut() else {
                break;
            };
            node = next;
            // A list item that also has owned fields below marks itself with ".".
            if i + 1 == path.len() && matches!(el, PathElement::Key(_)) {
                node.insert(".".into(), Value::Object(Map::new()));
            }
        }
    }
    Value::Object(root)
}

/// Parses `fieldsV1` into a field set.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    parse_fields(v, &mut path, &mut out);
    out
}

fn parse_fields(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    let Some(m) = v.as_object() else {
        return;
    };
    if (m.is_empty() || m.contains_key(".")) && !path.is_empty() {
        out.insert(path.clone());
    }
    for (k, child) in m {
        let el = if let Some(f) = k.strip_prefix("f:") {
            PathElement::Field(f.to_string())
        } else if let Some(key) = k.strip_prefix("k:") {
            PathElement::Key(key.to_string())
        } else if let Some(val) = k.strip_prefix("v:") {
            PathElement::Value(val.to_string())
        } else {
            continue;
        };
        path.push(el);
        parse_fields(child, path, out);
        path.pop();
    }
}

/// Merges an applied configuration into the live object: maps recursively, keyed lists
/// item by item, sets by union, everything else replaced.
pub fn apply_merge(live: &Value, config: &Value, shape: Shape<'_>) -> Value {
    let mut out = live.clone();
    let mut names = Vec::new();
    apply_into(&mut out, config, shape, &mut names);
    out
}

fn apply_into(target: &mut Value, config: &Value, shape: Shape<'_>, names: &mut Vec<String>) {
    match config {
        Value::Object(cm) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let Some(tm) = target.as_object_mut() else {
                return;
            };
            for (k, cv) in cm {
                if cv.is_null() {
                    tm.remove(k);
                    continue;
                }
                names.push(k.clone());
                let slot = tm.entry(k.clone()).or_insert(Value::Null);
                apply_into(slot, cv, shape, names);
                names.pop();
            }
        }
        Value::Array(items) => match shape.list_type(names) {
            ListType::Map(keys) => {
                let mut list = match target.take() {
                    Value::Array(a) => a,
                    _ => Vec::new(),
                };
                for item in items {
                    let id = item_key(item, &keys);
                    match list.iter().position(|x| item_key(x, &keys) == id) {
                        Some(i) => apply_into(&mut list[i], item, shape, names),
                        None => list.push(item.clone()),
                    }
                }
                *target = Value::Array(list);
            }
            ListType::Set => {
                let mut list = match target.take() {
                    Value::Array(a) => a,
                    _ => Vec::new(),
                };
                for item in items {
                    if !list.contains(item) {
                        list.push(item.clone());
                    }
                }
                *target = Value::Array(list);
            }
            ListType::Atomic => *target = config.clone(),
        },
        other => *target = other.clone(),
    }
}

/// Removes from `obj` the fields at `paths` (fields a manager stopped applying), except
/// those that `keep` (fields other managers own, or the new applied set) owns, itself or
/// below.
pub fn remove_fields(obj: &mut Value, paths: &FieldSet, keep: &FieldSet, shape: Shape<'_>) {
    // Shallowest first: a removed list item takes its fields with it.
    let mut ordered: Vec<&FieldPath> = paths.iter().collect();
    ordered.sort_by_key(|p| p.len());
    for path in ordered {
        if is_key_field(path) {
            continue;
        }
        // Owned elsewhere: someone owns this field, something below it, or (with a
        // coarse field set) a whole subtree that contains it.
        let owned_elsewhere = keep
            .iter()
            .any(|k| k.starts_with(path) || path.starts_with(k));
        if !owned_elsewhere {
            let mut names = Vec::new();
            remove_at(obj, path, shape, &mut names);
        }
    }
}

/// A key field of a keyed list item belongs to the item, not to its own path.
fn is_key_field(path: &[PathElement]) -> bool {
    match path {
        [.., PathElement::Key(k), PathElement::Field(f)] => serde_json::from_str::<Value>(k)
            .ok()
            .is_some_and(|key| key.get(f).is_some()),
        _ => false,
    }
}

fn remove_at(v: &mut Value, path: &[PathElement], shape: Shape<'_>, names: &mut Vec<String>) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match first {
        PathElement::Field(f) => {
            let Some(m) = v.as_object_mut() else {
                return;
            };
            if rest.is_empty() {
                m.remove(f);
                return;
            }
            names.push(f.clone());
            if let Some(child) = m.get_mut(f) {
                remove_at(child, rest, shape, names);
                // Drop a map or list the removal emptied.
                let emptied = match child {
                    Value::Object(c) => c.is_empty(),
                    Value::Array(a) => a.is_empty(),
                    _ => false,
                };
                if emptied {
                    m.remove(f);
                }
            }
            names.pop();
        }
        PathElement::Key(k) => {
            let Some(list) = v.as_array_mut() else {
                return;
            };
            let ListType::Map(keys) = shape.list_type(names) else {
                return;
            };
            let Some(i) = list.iter().position(|x| &item_key(x, &keys) == k) else {
                return;
            };
            if rest.is_empty() {
                list.remove(i);
            } else {
                remove_at(&mut list[i], rest, shape, names);
            }
        }
        PathElement::Value(val) => {
            if let Some(list) = v.as_array_mut() {
                list.retain(|x| &x.to_string() != val);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_ops_and_failures() {
        let mut t = json!({"metadata": {"labels": {"a": "1"}}});
        json_patch(
            &mut t,
            &json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}]),
        )
        .unwrap();
        assert_eq!(t["metadata"]["labels"]["b"], "2");
        assert!(
            json_patch(
                &mut t,
                &json!([{"op": "test", "path": "/metadata/labels/a", "value": "x"}])
            )
            .is_err()
        );
        assert!(json_patch(&mut t, &json!({"not": "a list"})).is_err());
    }

    #[test]
    fn strategic_merge_of_containers_and_gates() {
        let pod = json!({
            "metadata": {"finalizers": ["a"]},
            "spec": {
                "containers": [
                    {"name": "app", "image": "app:1", "ports": [{"containerPort": 80}]},
                    {"name": "side", "image": "side:1"}
                ],
                "schedulingGates": [{"name": "g1"}, {"name": "g2"}],
                "tolerations": [{"key": "x"}]
            }
        });
        let patch = json!({
            "metadata": {"finalizers": ["b"]},
            "spec": {
                "containers": [
                    {"name": "app", "image": "app:2", "ports": [{"containerPort": 81}]},
                    {"name": "side", "$patch": "delete"}
                ],
                "schedulingGates": [{"name": "g1", "$patch": "delete"}],
                "tolerations": [{"key": "y"}]
            }
        });
        let out = strategic_merge(&pod, &patch, Shape::Builtin(Builtin::Pod)).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
        assert_eq!(out["spec"]["containers"][0]["image"], "app:2");
        assert_eq!(
            out["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80}, {"containerPort": 81}])
        );
        assert_eq!(out["spec"]["schedulingGates"], json!([{"name": "g2"}]));
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "y"}]));
    }

    #[test]
    fn strategic_merge_directives() {
        let orig = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "x": {"y": 1, "z": 2}},
                          "metadata": {"finalizers": ["f1", "f2"]}});
        let patch = json!({
            "spec": {
                "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                "x": {"$patch": "replace", "w": 3}
            },
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["f1"]}
        });
        let out = strategic_merge(&orig, &patch, Shape::Builtin(Builtin::Pod)).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b"}, {"name": "a"}])
        );
        assert_eq!(out["spec"]["x"], json!({"w": 3}));
        assert_eq!(out["metadata"]["finalizers"], json!(["f2"]));
        let retain = json!({"spec": {"x": {"$retainKeys": ["w"], "w": 1}}});
        let out = strategic_merge(&orig, &retain, Shape::Builtin(Builtin::Pod)).unwrap();
        assert_eq!(out["spec"]["x"], json!({"w": 1}));
        assert!(strategic_merge(&orig, &json!({"$patch": "bogus"}), Shape::Opaque).is_err());
        assert!(strategic_merge(&orig, &json!([1]), Shape::Opaque).is_err());
    }

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

    #[test]
    fn field_sets_round_trip_through_fields_v1() {
        let obj = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        });
        let set = field_set(&obj, Shape::Builtin(Builtin::Pod), usize::MAX);
        let v1 = to_fields_v1(&set);
        assert_eq!(v1["f:metadata"]["f:labels"]["f:app"], json!({}));
        assert!(v1["f:metadata"].get("f:name").is_none());
        assert_eq!(
            v1["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["."],
            json!({})
        );
        assert_eq!(from_fields_v1(&v1), set);
    }

    #[test]
    fn apply_merges_and_removes_fields_a_manager_dropped() {
        let shape = Shape::Builtin(Builtin::Pod);
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2"}},
                          "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let first = json!({"metadata": {"labels": {"b": "2"}},
                           "status": {"conditions": [{"type": "X", "status": "True"}], "since": "t"}});
        let merged = apply_merge(&live, &first, shape);
        assert_eq!(merged["status"]["conditions"].as_array().unwrap().len(), 2);
        let prev = field_set(&first, shape, usize::MAX);
        let second = json!({"metadata": {"labels": {"b": "2"}}, "status": {"conditions": []}});
        let mut merged2 = apply_merge(&merged, &second, shape);
        let new = field_set(&second, shape, usize::MAX);
        let other = field_set(
            &json!({"metadata": {"labels": {"a": "1"}}}),
            shape,
            usize::MAX,
        );
        let dropped: FieldSet = prev.difference(&new).cloned().collect();
        let keep: FieldSet = new.union(&other).cloned().collect();
        remove_fields(&mut merged2, &dropped, &keep, shape);
        assert!(merged2["status"].get("since").is_none());
        let conds = merged2["status"]["conditions"].as_array().unwrap();
        assert_eq!(conds.len(), 1, "{merged2}");
        assert_eq!(conds[0]["type"], "Ready");
        assert_eq!(merged2["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    }

    #[test]
    fn changed_fields_are_limited_in_depth() {
        let old = json!({"spec": {"a": {"b": {"c": 1}}}, "status": {"x": 1}});
        let new = json!({"spec": {"a": {"b": {"c": 2}}}, "status": {"x": 1}});
        let set = changed_fields(&old, &new, Shape::Opaque, 2);
        let want: FieldSet = [vec![
            PathElement::Field("spec".into()),
            PathElement::Field("a".into()),
        ]]
        .into_iter()
        .collect();
        assert_eq!(set, want);
    }
}
