//! ValidatingAdmissionPolicies (`admissionregistration.k8s.io/v1`), evaluated on creates
//! and updates after the object's own validation, as kube-apiserver's admission plugin
//! does: a policy applies through each of its bindings whose `matchResources` (and the
//! policy's `matchConstraints`) match the request, then its `matchConditions`; its
//! `variables` are computed in order, and the first failed validation of a binding whose
//! `validationActions` include `Deny` refuses the request with the policy's message and
//! reason. Not here: `paramKind` (a policy with one is not evaluated), the `authorizer`
//! variable, `auditAnnotations`, DELETE and CONNECT operations, and the `Warn` and `Audit`
//! actions (they refuse nothing, and are not reported). docs/embedded-cluster.md.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::UserInfo;
use crate::cel::{self, Failure};
use crate::error::{ApiError, FieldError};
use crate::resources::ResourceDef;

/// Where policies and bindings are stored.
pub const POLICIES: &str = "validatingadmissionpolicies.admissionregistration.k8s.io";
pub const BINDINGS: &str = "validatingadmissionpolicybindings.admissionregistration.k8s.io";

/// The request, as admission sees it.
pub struct Attributes<'a> {
    pub def: &'a ResourceDef,
    /// `""` for the object itself, `status` for its status.
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub object: &'a Value,
    /// The stored object: `Some` makes the request an UPDATE, `None` a CREATE.
    pub old_object: Option<&'a Value>,
    /// The object's Namespace, for `namespaceSelector` and `namespaceObject`.
    pub namespace_object: Option<&'a Value>,
    pub user: &'a UserInfo,
    pub dry_run: bool,
}

impl Attributes<'_> {
    fn operation(&self) -> &'static str {
        if self.old_object.is_some() {
            "UPDATE"
        } else {
            "CREATE"
        }
    }
}

/// Refuses the request when a policy bound with `Deny` says so.
pub fn admit(
    policies: &[Arc<Value>],
    bindings: &[Arc<Value>],
    attrs: &Attributes,
) -> Result<(), ApiError> {
    for binding in bindings {
        let spec = &binding["spec"];
        let Some(policy_name) = spec["policyName"].as_str() else {
            continue;
        };
        let Some(policy) = policies
            .iter()
            .find(|p| crate::object::name(p) == policy_name)
        else {
            continue;
        };
        if !policy["spec"]["paramKind"].is_null() {
            tracing::debug!(
                policy = policy_name,
                "policies with paramKind are not evaluated"
            );
            continue;
        }
        if !matches_resources(&policy["spec"]["matchConstraints"], attrs, true)
            || !matches_resources(&spec["matchResources"], attrs, false)
        {
            continue;
        }
        let denies = spec["validationActions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "Deny"));
        if let Some(denial) = evaluate(policy, attrs)
            && denies
        {
            let message = format!(
                "ValidatingAdmissionPolicy '{policy_name}' with binding '{}' denied request: {}",
                crate::object::name(binding),
                denial.message
            );
            return Err(ApiError::denied_by_policy(
                &attrs.def.group,
                &attrs.def.plural,
                attrs.name,
                &denial.reason,
                &message,
            ));
        }
    }
    Ok(())
}

struct Denial {
    message: String,
    reason: String,
}

/// The first failed validation of `policy` for this request, if any.
fn evaluate(policy: &Value, attrs: &Attributes) -> Option<Denial> {
    let spec = &policy["spec"];
    let fail_closed = spec["failurePolicy"].as_str() != Some("Ignore");
    let mut vars = vec![
        ("object", cel::value(attrs.object)),
        (
            "oldObject",
            attrs.old_object.map_or(cel::Value::Null, cel::value),
        ),
        ("request", cel::value(&request(attrs))),
        ("params", cel::Value::Null),
        (
            "namespaceObject",
            attrs.namespace_object.map_or(cel::Value::Null, cel::value),
        ),
    ];
    let error = |expression: &str, e: Failure| {
        fail_closed.then(|| Denial {
            message: format!("expression '{expression}' resulted in error: {e}"),
            reason: "Invalid".into(),
        })
    };
    for condition in spec["matchConditions"].as_array().into_iter().flatten() {
        let expression = condition["expression"].as_str().unwrap_or("");
        match cel::evaluate_bool(expression, &vars) {
            Ok(true) | Err(Failure::Unsupported(_)) => {}
            Ok(false) => return None,
            Err(e) => return error(expression, e),
        }
    }
    // Each variable sees the ones before it; one that fails is left out, so only the
    // expressions that read it fail.
    let mut variables: Vec<(String, cel::Value)> = Vec::new();
    for variable in spec["variables"].as_array().into_iter().flatten() {
        let (Some(name), Some(expression)) =
            (variable["name"].as_str(), variable["expression"].as_str())
        else {
            continue;
        };
        let mut scope = vars.clone();
        scope.push(("variables", cel::map(&variables)));
        if let Ok(v) = cel::evaluate(expression, &scope) {
            variables.push((name.to_string(), v));
        }
    }
    vars.push(("variables", cel::map(&variables)));
    for validation in spec["validations"].as_array().into_iter().flatten() {
        let expression = validation["expression"].as_str().unwrap_or("");
        match cel::evaluate_bool(expression, &vars) {
            Ok(true) | Err(Failure::Unsupported(_)) => {}
            Ok(false) => {
                let from_expression = validation["messageExpression"]
                    .as_str()
                    .and_then(|m| cel::evaluate_string(m, &vars).ok())
                    .map(|m| m.trim().to_string())
                    .filter(|m| !m.is_empty());
                let given = validation["message"]
                    .as_str()
                    .map(str::trim)
                    .filter(|m| !m.is_empty());
                let message = from_expression
                    .or_else(|| given.map(str::to_string))
                    .unwrap_or_else(|| format!("failed expression: {}", expression.trim()));
                let reason = validation["reason"]
                    .as_str()
                    .unwrap_or("Invalid")
                    .to_string();
                return Some(Denial { message, reason });
            }
            Err(e) => {
                if let Some(denial) = error(expression, e) {
                    return Some(denial);
                }
            }
        }
    }
    None
}

/// `request`, as the admission plugin gives it to CEL.
fn request(attrs: &Attributes) -> Value {
    let def = attrs.def;
    let kind = json!({"group": def.group, "version": def.version, "kind": def.kind});
    let resource = json!({"group": def.group, "version": def.version, "resource": def.plural});
    json!({
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "subResource": attrs.subresource,
        "name": attrs.name,
        "namespace": attrs.namespace,
        "operation": attrs.operation(),
        "userInfo": {"username": attrs.user.username, "groups": attrs.user.groups},
        "dryRun": attrs.dry_run,
    })
}

/// Whether `m` (a policy's `matchConstraints` or a binding's `matchResources`) matches.
/// A binding without resource rules narrows nothing; a policy without them matches nothing.
fn matches_resources(m: &Value, attrs: &Attributes, required: bool) -> bool {
    let rules = m["resourceRules"].as_array().filter(|r| !r.is_empty());
    let included = match rules {
        Some(rules) => rules.iter().any(|r| rule_matches(r, attrs)),
        None => !required,
    };
    let excluded = m["excludeResourceRules"]
        .as_array()
        .is_some_and(|rules| rules.iter().any(|r| rule_matches(r, attrs)));
    included
        && !excluded
        && namespace_selected(&m["namespaceSelector"], attrs)
        && object_selected(&m["objectSelector"], attrs)
}

fn listed(list: &Value, value: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|x| x == "*" || x == value))
}

fn rule_matches(rule: &Value, attrs: &Attributes) -> bool {
    let def = attrs.def;
    let resource = rule["resources"].as_array().is_some_and(|resources| {
        resources.iter().filter_map(Value::as_str).any(|r| {
            let (res, sub) = r.split_once('/').unwrap_or((r, ""));
            (res == "*" || res == def.plural) && (sub == "*" || sub == attrs.subresource)
        })
    });
    let scope = match rule["scope"].as_str() {
        Some("Cluster") => !def.namespaced,
        Some("Namespaced") => def.namespaced,
        _ => true,
    };
    let names = match rule["resourceNames"].as_array() {
        Some(names) if !names.is_empty() => names.iter().any(|n| n == attrs.name),
        _ => true,
    };
    listed(&rule["apiGroups"], &def.group)
        && listed(&rule["apiVersions"], &def.version)
        && listed(&rule["operations"], attrs.operation())
        && resource
        && scope
        && names
}

fn labels_of(obj: Option<&Value>) -> BTreeMap<String, String> {
    obj.and_then(|o| o.pointer("/metadata/labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    if selector.is_null() {
        return true;
    }
    // Selectors were checked when the policy was written.
    crate::selector::from_api(selector).is_ok_and(|s| s.matches(labels))
}

/// Cluster-scoped objects are never excluded by a namespace selector (a Namespace is
/// judged by its own labels).
fn namespace_selected(selector: &Value, attrs: &Attributes) -> bool {
    if attrs.def.kind == "Namespace" && attrs.def.group.is_empty() {
        return selector_matches(selector, &labels_of(Some(attrs.object)));
    }
    if !attrs.def.namespaced {
        return true;
    }
    selector_matches(selector, &labels_of(attrs.namespace_object))
}

fn object_selected(selector: &Value, attrs: &Attributes) -> bool {
    selector_matches(selector, &labels_of(Some(attrs.object)))
        || attrs
            .old_object
            .is_some_and(|old| selector_matches(selector, &labels_of(Some(old))))
}

/// What the API server refuses in a ValidatingAdmissionPolicy: expressions that do not
/// compile, bad selectors, and fields without which it cannot apply.
pub fn validate_policy(obj: &Value) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    if spec["validations"].as_array().is_none_or(Vec::is_empty)
        && spec["auditAnnotations"]
            .as_array()
            .is_none_or(Vec::is_empty)
    {
        errs.push(FieldError::required(
            "spec.validations",
            "validations or auditAnnotations must contain at least one item",
        ));
    }
    if spec["matchConstraints"]["resourceRules"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        errs.push(FieldError::required(
            "spec.matchConstraints.resourceRules",
            "",
        ));
    }
    if let Some(fp) = spec["failurePolicy"].as_str()
        && !matches!(fp, "Fail" | "Ignore")
    {
        errs.push(FieldError::not_supported(
            "spec.failurePolicy",
            &json!(fp),
            &["Fail", "Ignore"],
        ));
    }
    for (list, fields) in [
        ("validations", &["expression", "messageExpression"][..]),
        ("matchConditions", &["expression"][..]),
        ("variables", &["expression"][..]),
    ] {
        for (i, item) in spec[list].as_array().into_iter().flatten().enumerate() {
            for field in fields {
                if let Some(source) = item[*field].as_str()
                    && let Err(Failure::Compile(e)) = cel::compile(source)
                {
                    errs.push(FieldError::invalid(
                        format!("spec.{list}[{i}].{field}"),
                        &json!(source),
                        format!("compilation failed: {e}"),
                    ));
                }
            }
        }
    }
    errs.extend(selector_errors(
        &spec["matchConstraints"],
        "spec.matchConstraints",
    ));
    errs
}

/// What the API server refuses in a ValidatingAdmissionPolicyBinding.
pub fn validate_binding(obj: &Value) -> Vec<FieldError> {
    let spec = &obj["spec"];
    let mut errs = Vec::new();
    if spec["policyName"].as_str().is_none_or(str::is_empty) {
        errs.push(FieldError::required("spec.policyName", ""));
    }
    let actions: Vec<&str> = spec["validationActions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if actions.is_empty() {
        errs.push(FieldError::required("spec.validationActions", ""));
    }
    for (i, action) in actions.iter().enumerate() {
        if !matches!(*action, "Deny" | "Warn" | "Audit") {
            errs.push(FieldError::not_supported(
                format!("spec.validationActions[{i}]"),
                &json!(action),
                &["Audit", "Deny", "Warn"],
            ));
        }
    }
    if actions.contains(&"Deny") && actions.contains(&"Warn") {
        errs.push(FieldError::invalid(
            "spec.validationActions",
            &json!(actions),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    errs.extend(selector_errors(
        &spec["matchResources"],
        "spec.matchResources",
    ));
    errs
}

fn selector_errors(m: &Value, path: &str) -> Vec<FieldError> {
    ["namespaceSelector", "objectSelector"]
        .into_iter()
        .filter(|f| !m[*f].is_null())
        .filter_map(|f| {
            crate::selector::from_api(&m[f])
                .err()
                .map(|e| FieldError::invalid(format!("{path}.{f}"), &m[f], e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
