//! Strategic merge patch for built-in kinds: list merge keys and the `$patch`,
//! `$retainKeys`, `$setElementOrder` and `$deleteFromPrimitiveList` directives.

use serde_json::{Map, Value};

use super::{ListType, Shape};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// A strategic merge patch that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicMergeError {
    #[error("strategic merge patch must be a JSON object")]
    NotAnObject,
    /// The `$patch` value as the API server words it (`Some("x")`, or `None` when it is
    /// not a string).
    #[error("unknown patch type: {0}")]
    UnknownPatchType(String),
    /// A directive whose value must be a list (`$setElementOrder/...`,
    /// `$deleteFromPrimitiveList/...`, `$retainKeys`).
    #[error("{0} must be a list")]
    NotAList(String),
}

/// Applies a strategic merge patch to `original`.
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    shape: Shape<'_>,
) -> Result<Value, StrategicMergeError> {
    let Value::Object(p) = patch else {
        return Err(StrategicMergeError::NotAnObject);
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
) -> Result<MapOutcome, StrategicMergeError> {
    match patch.get(DIRECTIVE).map(|d| d.as_str()) {
        None | Some(Some("merge")) => {}
        Some(Some("replace")) => {
            *orig = strip_directives_map(patch);
            return Ok(MapOutcome::Keep);
        }
        Some(Some("delete")) => return Ok(MapOutcome::Delete),
        Some(other) => {
            return Err(StrategicMergeError::UnknownPatchType(format!("{other:?}")));
        }
    }
    let mut orders: Vec<(String, Vec<Value>)> = Vec::new();
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE) {
            let remove = v
                .as_array()
                .ok_or_else(|| StrategicMergeError::NotAList(k.clone()))?;
            if let Some(Value::Array(list)) = orig.get_mut(field) {
                list.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            let order = v
                .as_array()
                .ok_or_else(|| StrategicMergeError::NotAList(k.clone()))?;
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
            .ok_or_else(|| StrategicMergeError::NotAList(RETAIN_KEYS.to_string()))?
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
) -> Result<Vec<Value>, StrategicMergeError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Builtin;
    use serde_json::json;

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

    /// The API server answers these texts; they read as they did before the errors were
    /// typed.
    #[test]
    fn error_messages() {
        let shape = Shape::Builtin(Builtin::Pod);
        let pod = json!({"spec": {"containers": []}});
        let cases = [
            (json!([1]), "strategic merge patch must be a JSON object"),
            (
                json!({"$patch": "drop"}),
                "unknown patch type: Some(\"drop\")",
            ),
            (json!({"$patch": 1}), "unknown patch type: None"),
            (
                json!({"spec": {"$retainKeys": "x"}}),
                "$retainKeys must be a list",
            ),
            (
                json!({"spec": {"$setElementOrder/containers": 1}}),
                "$setElementOrder/containers must be a list",
            ),
        ];
        for (patch, message) in cases {
            let err = strategic_merge(&pod, &patch, shape).err();
            assert_eq!(
                err.map(|e| e.to_string()).as_deref(),
                Some(message),
                "{patch}"
            );
        }
    }
}
