//! CRD validation rules (`x-kubernetes-validations`), evaluated in CEL as the API server
//! does after the structural schema: `self` is the value at the rule's place in the schema;
//! `oldSelf` is the stored value at the same place, and a rule that reads it (a transition
//! rule) runs on updates only, where that place existed before. Rules are compiled when
//! the CRD is written, so one that does not parse is refused there, as a real server does.

use serde_json::{Value, json};

use crate::cel::{self, Failure};
use crate::error::{FieldError, FieldErrorKind};

/// Errors of `new` against the rules of `schema` (`old`: the stored object on updates).
pub fn check(new: &Value, old: Option<&Value>, schema: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    walk(new, old, schema, "", true, &mut errs);
    errs
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn walk(
    v: &Value,
    old: Option<&Value>,
    schema: &Value,
    path: &str,
    root: bool,
    errs: &mut Vec<FieldError>,
) {
    if let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for rule in rules {
            check_rule(rule, v, old, schema, path, errs);
        }
    }
    match v {
        Value::Object(m) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, prop) in props {
                    if root && k == "metadata" {
                        continue;
                    }
                    if let Some(child) = m.get(k) {
                        let old_child = old.and_then(|o| o.get(k));
                        walk(child, old_child, prop, &join(path, k), false, errs);
                    }
                }
            } else if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, child) in m {
                    let old_child = old.and_then(|o| o.get(k));
                    walk(child, old_child, ap, &join(path, k), false, errs);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = schema.get("items") else {
                return;
            };
            // Items are correlated with the stored ones only in map lists, by their keys.
            let keys: Option<Vec<&str>> =
                (schema.get("x-kubernetes-list-type") == Some(&json!("map"))).then(|| {
                    schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|ks| ks.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default()
                });
            let old_items = old.and_then(Value::as_array);
            for (i, item) in items.iter().enumerate() {
                let old_item = match (&keys, old_items) {
                    (Some(keys), Some(olds)) if !keys.is_empty() => olds
                        .iter()
                        .find(|o| keys.iter().all(|k| o.get(*k) == item.get(*k))),
                    _ => None,
                };
                walk(
                    item,
                    old_item,
                    item_schema,
                    &format!("{path}[{i}]"),
                    false,
                    errs,
                );
            }
        }
        _ => {}
    }
}

fn type_name(schema: &Value, v: &Value) -> &'static str {
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => "object",
        Some("array") => "array",
        Some("string") => "string",
        Some("integer") => "integer",
        Some("number") => "number",
        Some("boolean") => "boolean",
        _ => crate::schema::type_name(v),
    }
}

fn check_rule(
    rule: &Value,
    v: &Value,
    old: Option<&Value>,
    schema: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let Some(source) = rule.get("rule").and_then(Value::as_str) else {
        return;
    };
    let Ok(program) = cel::compile(source) else {
        // Refused when the CRD was written; a CRD stored before cannot be helped here.
        return;
    };
    let transition = program.references().has_variable("oldSelf");
    let mut vars = vec![("self", cel::value(v))];
    match (transition, old) {
        (false, _) => {}
        (true, Some(old)) => vars.push(("oldSelf", cel::value(old))),
        // A transition rule has nothing to compare with on create or for a new item.
        (true, None) => return,
    }
    let field = match rule.get("fieldPath").and_then(Value::as_str) {
        Some(rel) if !rel.is_empty() => format!("{path}{rel}"),
        _ => path.to_string(),
    };
    let kind = match rule.get("reason").and_then(Value::as_str) {
        Some("FieldValueRequired") => FieldErrorKind::Required,
        Some("FieldValueForbidden") => FieldErrorKind::Forbidden,
        Some("FieldValueDuplicate") => FieldErrorKind::Duplicate,
        _ => FieldErrorKind::Invalid,
    };
    let message = match cel::evaluate_bool(source, &vars) {
        Ok(true) => return,
        Ok(false) => {
            let from_expression = rule
                .get("messageExpression")
                .and_then(Value::as_str)
                .and_then(|m| cel::evaluate_string(m, &vars).ok())
                .filter(|m| !m.trim().is_empty());
            let given = rule
                .get("message")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty());
            from_expression
                .or_else(|| given.map(str::to_string))
                .unwrap_or_else(|| format!("failed rule: {source}"))
        }
        Err(Failure::Unsupported(name)) => {
            tracing::debug!(rule = source, "CEL rule not evaluated: calls {name}()");
            return;
        }
        Err(e) => e.to_string(),
    };
    errs.push(match kind {
        FieldErrorKind::Invalid => {
            FieldError::invalid(field, &json!(type_name(schema, v)), message)
        }
        other => FieldError::new(other, field, message),
    });
}

/// Compiles every rule and message expression of a CRD (`crd`: the whole object), as the
/// API server does when the CRD is written: one that does not parse is an error at its path.
pub fn compile_all(crd: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, version) in versions.iter().enumerate() {
        if let Some(schema) = version.pointer("/schema/openAPIV3Schema") {
            let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
            compile_schema(schema, &path, &mut errs);
        }
    }
    errs
}

fn compile_schema(schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for (i, rule) in rules.iter().enumerate() {
            for field in ["rule", "messageExpression"] {
                if let Some(source) = rule.get(field).and_then(Value::as_str)
                    && let Err(Failure::Compile(e)) = cel::compile(source)
                {
                    errs.push(FieldError::invalid(
                        format!("{path}.x-kubernetes-validations[{i}].{field}"),
                        &json!(source),
                        format!("compilation failed: {e}"),
                    ));
                }
            }
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, prop) in props {
            compile_schema(prop, &format!("{path}.properties[{k}]"), errs);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = schema.get(key).filter(|c| c.is_object()) {
            compile_schema(child, &format!("{path}.{key}"), errs);
        }
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
                    "x-kubernetes-validations": [
                        {"rule": "self.min <= self.max", "message": "min must not exceed max"},
                        {"rule": "self.min == oldSelf.min", "message": "min is immutable", "fieldPath": ".min"},
                        {"rule": "self.max < 100", "messageExpression": "'max is ' + string(self.max) + ', over 99'"}
                    ],
                    "properties": {
                        "min": {"type": "integer"},
                        "max": {"type": "integer"},
                        "links": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {
                                "type": "object",
                                "x-kubernetes-validations": [
                                    {"rule": "self.from != self.to", "reason": "FieldValueForbidden", "message": "a link joins two places"},
                                    {"rule": "self.to == oldSelf.to", "message": "to is immutable"}
                                ],
                                "properties": {"name": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"}}
                            }
                        }
                    }
                }
            }
        })
    }

    fn rendered(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn rules_judge_the_value_at_their_place() {
        let obj =
            json!({"spec": {"min": 5, "max": 3, "links": [{"name": "a", "from": "x", "to": "x"}]}});
        assert_eq!(
            rendered(&check(&obj, None, &schema())),
            [
                "spec: Invalid value: \"object\": min must not exceed max",
                "spec.links[0]: Forbidden: a link joins two places",
            ]
        );
        let ok =
            json!({"spec": {"min": 1, "max": 3, "links": [{"name": "a", "from": "x", "to": "y"}]}});
        assert!(check(&ok, None, &schema()).is_empty());
    }

    #[test]
    fn message_expressions_are_evaluated() {
        let obj = json!({"spec": {"min": 1, "max": 120}});
        assert_eq!(
            rendered(&check(&obj, None, &schema())),
            ["spec: Invalid value: \"object\": max is 120, over 99"]
        );
    }

    #[test]
    fn transition_rules_run_on_updates_against_the_same_place() {
        let old = json!({"spec": {"min": 1, "max": 3, "links": [{"name": "a", "from": "x", "to": "y"}, {"name": "b", "from": "x", "to": "z"}]}});
        // Reordered map-list items are matched by key: only b's `to` changed.
        let new = json!({"spec": {"min": 2, "max": 3, "links": [{"name": "b", "from": "x", "to": "w"}, {"name": "a", "from": "x", "to": "y"}, {"name": "c", "from": "x", "to": "q"}]}});
        assert_eq!(
            rendered(&check(&new, Some(&old), &schema())),
            [
                "spec.min: Invalid value: \"object\": min is immutable",
                "spec.links[0]: Invalid value: \"object\": to is immutable",
            ]
        );
    }

    #[test]
    fn rules_that_do_not_compile_are_refused_with_the_crd() {
        let crd = json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {"spec": {"type": "object", "x-kubernetes-validations": [{"rule": "self.a ==", "message": "x"}]}}
        }}}]}});
        let errs = check_compiles(&crd);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: \"self.a ==\": compilation failed"),
            "{errs:?}"
        );
    }

    fn check_compiles(crd: &Value) -> Vec<String> {
        rendered(&compile_all(crd))
    }

    /// Every rule in edgeplane's own CRDs and in the upstream ones the tests load parses,
    /// so that loading them is never refused for a parser gap.
    #[test]
    fn every_shipped_and_upstream_rule_compiles() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let mut files = Vec::new();
        for dir in [
            "deploy/crds",
            "../shared/crds/kubevirt",
            "../shared/crds/multus",
            "../shared/crds/karmada",
            "../shared/crds/prometheus-operator",
        ] {
            let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}")) else {
                assert!(dir.starts_with("../"), "{dir} is missing");
                continue;
            };
            files.extend(entries.flatten().map(|e| e.path()));
        }
        let mut rules = 0;
        for file in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
        {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for doc in serde_saphyr::from_multiple::<Value>(&text).unwrap_or_default() {
                rules += count_rules(&doc);
                assert_eq!(
                    check_compiles(&doc),
                    Vec::<String>::new(),
                    "{}",
                    file.display()
                );
            }
        }
        assert!(rules > 0, "no rules found");
    }

    fn count_rules(v: &Value) -> usize {
        match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, c)| {
                    if k == "x-kubernetes-validations" {
                        c.as_array().map_or(0, Vec::len)
                    } else {
                        count_rules(c)
                    }
                })
                .sum(),
            Value::Array(items) => items.iter().map(count_rules).sum(),
            _ => 0,
        }
    }
}
