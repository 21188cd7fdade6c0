//! Server-side apply: merging an applied configuration into the live object, and
//! removing the fields a manager stopped applying.

use serde_json::{Map, Value};

use super::fields::{FieldPath, FieldSet, PathElement, item_key};
use super::{ListType, Shape};

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
    use crate::patch::field_set;
    use crate::resources::Builtin;
    use serde_json::json;

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
}
