//! Structural OpenAPI v3 schemas of CustomResourceDefinitions: defaulting, pruning of
//! unknown fields and validation, as the API server applies them to custom resources.
//! CEL rules (`x-kubernetes-validations`) are evaluated by `crate::crd_rules` afterwards.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use serde_json::{Map, Value, json};

use crate::error::FieldError;

/// What schema processing found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub errors: Vec<FieldError>,
    /// Paths of fields the schema does not declare (pruned from the object).
    pub unknown_fields: Vec<String>,
}

/// Applies defaults, prunes undeclared fields and validates `obj` against `schema`.
pub fn process(obj: &mut Value, schema: &Value) -> Outcome {
    let mut out = Outcome::default();
    let Some(map) = obj.as_object_mut() else {
        out.errors.push(FieldError::invalid(
            "",
            &json!("non-object"),
            "must be an object",
        ));
        return out;
    };
    apply_defaults_map(map, schema, true);
    prune_map(map, schema, "", true, &mut out.unknown_fields);
    validate(obj, schema, "", true, &mut out.errors);
    out
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn apply_defaults(v: &mut Value, schema: &Value) {
    match v {
        Value::Object(m) => apply_defaults_map(m, schema, false),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

fn apply_defaults_map(m: &mut Map<String, Value>, schema: &Value, root: bool) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, prop) in props {
            if root && k == "metadata" {
                continue;
            }
            if !m.contains_key(k)
                && let Some(d) = prop.get("default")
            {
                m.insert(k.clone(), d.clone());
            }
            if let Some(child) = m.get_mut(k) {
                apply_defaults(child, prop);
            }
        }
    } else if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        for child in m.values_mut() {
            apply_defaults(child, ap);
        }
    }
}

fn prune(v: &mut Value, schema: &Value, path: &str, unknown: &mut Vec<String>) {
    if flag(schema, "x-kubernetes-preserve-unknown-fields") && schema.get("properties").is_none() {
        return;
    }
    match v {
        Value::Object(m) => prune_map(m, schema, path, false, unknown),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item, item_schema, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

fn prune_map(
    m: &mut Map<String, Value>,
    schema: &Value,
    path: &str,
    root: bool,
    unknown: &mut Vec<String>,
) {
    let embedded = flag(schema, "x-kubernetes-embedded-resource");
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    if let Some(ap) = schema.get("additionalProperties") {
        if ap.is_object() {
            for (k, child) in m.iter_mut() {
                prune(child, ap, &join(path, k), unknown);
            }
        }
        return;
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let mut drop = Vec::new();
    for (k, child) in m.iter_mut() {
        if (root || embedded) && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match props.and_then(|p| p.get(k)) {
            Some(prop) => prune(child, prop, &join(path, k), unknown),
            None if preserve => {}
            None => drop.push(k.clone()),
        }
    }
    for k in drop {
        unknown.push(join(path, &k));
        m.remove(&k);
    }
}

fn regex(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).ok())
        .clone()
}

/// The schema type a JSON value has (`integer` for whole numbers).
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn validate(v: &Value, schema: &Value, path: &str, root: bool, errs: &mut Vec<FieldError>) {
    let shown = if path.is_empty() { "body" } else { path };
    if v.is_null() {
        if !flag(schema, "nullable") && schema.get("type").is_some() && !root {
            errs.push(FieldError::invalid(
                path,
                &Value::Null,
                format!(
                    "{shown} in body must be of type {}: \"null\"",
                    schema["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    if int_or_string {
        if !matches!(type_name(v), "integer" | "string") {
            errs.push(FieldError::invalid(
                path,
                v,
                format!(
                    "{shown} in body must be of type integer or string: \"{}\"",
                    type_name(v)
                ),
            ));
            return;
        }
    } else if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(v);
        let ok = actual == t || (t == "number" && actual == "integer");
        if !ok {
            errs.push(FieldError::invalid(
                path,
                v,
                format!("{shown} in body must be of type {t}: \"{actual}\""),
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
        errs.push(FieldError {
            kind: crate::error::FieldErrorKind::NotSupported,
            field: path.to_string(),
            value: Some(v.to_string()),
            detail: format!("supported values: {}", list.join(", ")),
        });
    }
    match v {
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                errs.push(FieldError::invalid(
                    path,
                    v,
                    format!("{shown} in body should be at least {min} chars long"),
                ));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                errs.push(FieldError {
                    kind: crate::error::FieldErrorKind::TooLong,
                    field: path.to_string(),
                    value: None,
                    detail: format!("may not be more than {max} bytes"),
                });
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                match regex(p) {
                    Some(re) if !re.is_match(s) => errs.push(FieldError::invalid(
                        path,
                        v,
                        format!("{shown} in body should match '{p}'"),
                    )),
                    _ => {}
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            let excl_min = flag(schema, "exclusiveMinimum");
            let excl_max = flag(schema, "exclusiveMaximum");
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && (x < min || (excl_min && x == min))
            {
                let op = if excl_min {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                errs.push(FieldError::invalid(
                    path,
                    v,
                    format!("{shown} in body should be {op} {min}"),
                ));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && (x > max || (excl_max && x == max))
            {
                let op = if excl_max {
                    "less than"
                } else {
                    "less than or equal to"
                };
                errs.push(FieldError::invalid(
                    path,
                    v,
                    format!("{shown} in body should be {op} {max}"),
                ));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && n < min
            {
                errs.push(FieldError::invalid(
                    path,
                    &json!(n),
                    format!("{shown} in body should have at least {min} items"),
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                errs.push(FieldError {
                    kind: crate::error::FieldErrorKind::TooMany,
                    field: path.to_string(),
                    value: None,
                    detail: format!("{n}: must have at most {max} items"),
                });
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(item, item_schema, &format!("{path}[{i}]"), false, errs);
                }
            }
        }
        Value::Object(m) => {
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !m.contains_key(r) {
                        errs.push(FieldError::required(join(path, r), ""));
                    }
                }
            }
            let n = m.len() as u64;
            if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
                && n < min
            {
                errs.push(FieldError::invalid(
                    path,
                    &json!(n),
                    format!("{shown} in body should have at least {min} properties"),
                ));
            }
            if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
                && n > max
            {
                errs.push(FieldError::invalid(
                    path,
                    &json!(n),
                    format!("{shown} in body should have at most {max} properties"),
                ));
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let ap = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in m {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(prop) = props.and_then(|p| p.get(k)) {
                    validate(child, prop, &join(path, k), false, errs);
                } else if let Some(ap) = ap {
                    validate(child, ap, &join(path, k), false, errs);
                }
            }
        }
        _ => {}
    }
    // Combinators: structural schemas use them for value validation only.
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(v, s, path, root, errs);
        }
    }
    let passes = |s: &Value| {
        let mut e = Vec::new();
        validate(v, s, path, root, &mut e);
        e.is_empty()
    };
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(passes)
    {
        errs.push(FieldError::invalid(
            path,
            v,
            format!("{shown} in body must match at least one schema in anyOf"),
        ));
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array)
        && one.iter().filter(|s| passes(s)).count() != 1
    {
        errs.push(FieldError::invalid(
            path,
            v,
            format!("{shown} in body must match exactly one schema in oneOf"),
        ));
    }
    if let Some(not) = schema.get("not")
        && passes(not)
    {
        errs.push(FieldError::invalid(
            path,
            v,
            format!("{shown} in body must not match the schema in not"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["offer"],
                    "properties": {
                        "offer": {"type": "string", "pattern": "^[a-z]+$", "minLength": 1},
                        "period": {"type": "string", "default": "30s"},
                        "policy": {"type": "string", "enum": ["Ignore", "Evict"]},
                        "count": {"type": "integer", "minimum": 0},
                        "rules": {"type": "array", "minItems": 1, "items": {
                            "type": "object", "properties": {"name": {"type": "string"}}}},
                        "targets": {"type": "object", "additionalProperties": {
                            "type": "object", "properties": {"kind": {"type": "string"}}}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "port": {"x-kubernetes-int-or-string": true},
                        "maybe": {"type": "string", "nullable": true}
                    }
                },
                "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}
            }
        })
    }

    #[test]
    fn defaults_prunes_and_accepts_valid_objects() {
        let mut obj = json!({
            "apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "labels": {"k": "v"}},
            "spec": {"offer": "abc", "unknown": 1, "rules": [{"name": "r", "extra": true}],
                     "targets": {"a": {"kind": "Pod", "junk": 1}}, "free": {"any": {"thing": 1}},
                     "port": "http", "maybe": null},
            "bogus": 1
        });
        let out = process(&mut obj, &schema());
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(obj["spec"]["period"], "30s");
        assert!(obj.get("bogus").is_none());
        assert!(obj["spec"].get("unknown").is_none());
        assert!(obj["spec"]["rules"][0].get("extra").is_none());
        assert!(obj["spec"]["targets"]["a"].get("junk").is_none());
        assert_eq!(obj["spec"]["free"]["any"]["thing"], 1);
        assert_eq!(obj["metadata"]["labels"]["k"], "v");
        let mut unknown = out.unknown_fields.clone();
        unknown.sort();
        assert_eq!(
            unknown,
            [
                "bogus",
                "spec.rules[0].extra",
                "spec.targets.a.junk",
                "spec.unknown"
            ]
        );
    }

    #[test]
    fn reports_every_violation() {
        let mut obj = json!({"spec": {"offer": "ABC", "policy": "Nope", "count": -1,
                                       "rules": [], "port": 1.5, "maybe": 3}, "status": {"ok": "yes"}});
        let out = process(&mut obj, &schema());
        let fields: Vec<&str> = out.errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "spec.offer",
            "spec.policy",
            "spec.count",
            "spec.rules",
            "spec.port",
            "spec.maybe",
            "status.ok",
        ] {
            assert!(
                fields.contains(&f),
                "missing error for {f}: {:?}",
                out.errors
            );
        }
        let mut missing = json!({"spec": {}});
        let out = process(&mut missing, &schema());
        assert_eq!(out.errors[0].to_string(), "spec.offer: Required value");
    }
}
