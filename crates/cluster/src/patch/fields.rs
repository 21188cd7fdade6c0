//! Managed field sets: the paths an object sets, what changed between two objects, and
//! their `fieldsV1` encoding in `metadata.managedFields`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{ListType, Shape};

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

pub(super) fn item_key(item: &Value, keys: &[String]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Builtin;
    use serde_json::json;

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
