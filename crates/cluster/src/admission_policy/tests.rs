use serde_json::{Value, json};

use super::*;
use crate::resources::Registry;

fn pods() -> ResourceDef {
    Registry::builtin()
        .find("", "v1", "pods")
        .map(|d| (*d).clone())
        .expect("pods are built in")
}

const SCHEDULER: &str = "system:serviceaccount:edgeplane:edgeplane-scheduler";

/// The shape of the chart's policy: the scheduler may change only node affinity,
/// scheduling gates and edgeplane annotations.
fn policy() -> Arc<Value> {
    Arc::new(json!({
        "metadata": {"name": "scheduler-pod-changes"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["pods"]}]},
            "matchConditions": [{"name": "scheduler", "expression": format!("request.userInfo.username == '{SCHEDULER}'")}],
            "variables": [
                {"name": "ann", "expression": "has(object.metadata.annotations) ? object.metadata.annotations : {}"},
                {"name": "oldAnn", "expression": "has(oldObject.metadata.annotations) ? oldObject.metadata.annotations : {}"}
            ],
            "validations": [
                {"expression": "object.spec.containers == oldObject.spec.containers", "message": "the scheduler may not change containers"},
                {"expression": "variables.ann.all(k, k.startsWith('constraint.edgeplane.io/') || (k in variables.oldAnn && variables.oldAnn[k] == variables.ann[k]))",
                 "messageExpression": "'the scheduler may change only edgeplane annotations, not ' + variables.ann.filter(k, !k.startsWith('constraint.edgeplane.io/') && !(k in variables.oldAnn && variables.oldAnn[k] == variables.ann[k])).join(', ')",
                 "reason": "Forbidden"}
            ]
        }
    }))
}

fn binding(actions: &[&str]) -> Arc<Value> {
    Arc::new(
        json!({"metadata": {"name": "scheduler-pod-changes"}, "spec": {"policyName": "scheduler-pod-changes", "validationActions": actions}}),
    )
}

fn pod(image: &str, annotations: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "ar", "annotations": annotations}, "spec": {"containers": [{"name": "c", "image": image}]}})
}

fn admit_as(user: &UserInfo, old: &Value, new: &Value, actions: &[&str]) -> Result<(), ApiError> {
    let def = pods();
    let attrs = Attributes {
        def: &def,
        subresource: "",
        namespace: "ar",
        name: "p",
        object: new,
        old_object: Some(old),
        namespace_object: None,
        user,
        dry_run: false,
    };
    admit(&[policy()], &[binding(actions)], &attrs)
}

fn scheduler() -> UserInfo {
    UserInfo::service_account("edgeplane", "edgeplane-scheduler")
}

#[test]
fn the_scheduler_may_change_only_what_the_policy_allows() {
    let old = pod("fw:1", json!({"team": "a"}));
    let planned = pod(
        "fw:1",
        json!({"team": "a", "constraint.edgeplane.io/plan": "x"}),
    );
    assert_eq!(admit_as(&scheduler(), &old, &planned, &["Deny"]), Ok(()));

    let err = admit_as(
        &scheduler(),
        &old,
        &pod("evil:1", json!({"team": "a"})),
        &["Deny"],
    )
    .expect_err("an image change is refused");
    assert_eq!((err.code, err.reason), (422, "Invalid"));
    assert_eq!(
        err.message,
        "pods \"p\" is forbidden: ValidatingAdmissionPolicy 'scheduler-pod-changes' with binding 'scheduler-pod-changes' denied request: the scheduler may not change containers"
    );
    assert_eq!(
        err.details
            .as_ref()
            .map(|d| d["causes"][0]["message"].clone()),
        Some(json!(
            "ValidatingAdmissionPolicy 'scheduler-pod-changes' with binding 'scheduler-pod-changes' denied request: the scheduler may not change containers"
        ))
    );

    let err = admit_as(
        &scheduler(),
        &old,
        &pod("fw:1", json!({"team": "b", "x": "y"})),
        &["Deny"],
    )
    .expect_err("a foreign annotation change is refused");
    assert_eq!((err.code, err.reason), (403, "Forbidden"));
    assert!(
        err.message.ends_with(
            "denied request: the scheduler may change only edgeplane annotations, not team, x"
        ) || err.message.ends_with(
            "denied request: the scheduler may change only edgeplane annotations, not x, team"
        ),
        "{}",
        err.message
    );
}

#[test]
fn other_users_and_non_deny_bindings_are_not_refused() {
    let old = pod("fw:1", json!({}));
    let new = pod("evil:1", json!({}));
    assert_eq!(admit_as(&UserInfo::admin(), &old, &new, &["Deny"]), Ok(()));
    assert_eq!(admit_as(&scheduler(), &old, &new, &["Warn"]), Ok(()));
    assert_eq!(admit_as(&scheduler(), &old, &new, &["Audit"]), Ok(()));
}

#[test]
fn rules_match_operations_resources_and_subresources() {
    let def = pods();
    let obj = pod("fw:1", json!({}));
    let user = UserInfo::admin();
    let attrs = |sub: &'static str, old: Option<&'static Value>| Attributes {
        def: &def,
        subresource: sub,
        namespace: "ar",
        name: "p",
        object: &obj,
        old_object: old,
        namespace_object: None,
        user: &user,
        dry_run: false,
    };
    static OLD: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));
    let rule = |resources: Value, operations: Value| json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["*"], "operations": operations, "resources": resources}]});
    for (resources, operations, sub, update, want) in [
        (json!(["pods"]), json!(["UPDATE"]), "", true, true),
        (json!(["pods"]), json!(["UPDATE"]), "", false, false),
        (json!(["pods"]), json!(["*"]), "status", true, false),
        (json!(["pods/status"]), json!(["*"]), "status", true, true),
        (json!(["pods/*"]), json!(["CREATE"]), "status", false, true),
        (json!(["*"]), json!(["CREATE"]), "", false, true),
        (json!(["*"]), json!(["CREATE"]), "status", false, false),
        (json!(["*/*"]), json!(["CREATE"]), "status", false, true),
        (json!(["deployments"]), json!(["*"]), "", true, false),
    ] {
        let a = attrs(sub, update.then_some(&*OLD));
        assert_eq!(
            matches_resources(&rule(resources.clone(), operations.clone()), &a, true),
            want,
            "{resources} {operations} {sub} update={update}"
        );
    }
    let none = json!({});
    assert!(
        !matches_resources(&none, &attrs("", None), true),
        "a policy without rules matches nothing"
    );
    assert!(
        matches_resources(&none, &attrs("", None), false),
        "a binding without rules narrows nothing"
    );
}

#[test]
fn policies_and_bindings_are_validated_when_written() {
    let bad = json!({"spec": {
        "failurePolicy": "Sometimes",
        "matchConstraints": {"resourceRules": [], "objectSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
        "validations": [{"expression": "object.spec ==", "message": "x"}],
        "variables": [{"name": "v", "expression": "1 +"}]
    }});
    let errs: Vec<String> = validate_policy(&bad)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(
        errs[0].starts_with("spec.matchConstraints.resourceRules: Required value"),
        "{errs:#?}"
    );
    assert!(
        errs[1].starts_with("spec.failurePolicy: Unsupported value: \"Sometimes\""),
        "{errs:#?}"
    );
    assert!(
        errs[2].starts_with(
            "spec.validations[0].expression: Invalid value: \"object.spec ==\": compilation failed"
        ),
        "{errs:#?}"
    );
    assert!(
        errs[3].starts_with(
            "spec.variables[0].expression: Invalid value: \"1 +\": compilation failed"
        ),
        "{errs:#?}"
    );
    assert!(
        errs[4].starts_with("spec.matchConstraints.objectSelector: Invalid value"),
        "{errs:#?}"
    );
    assert!(validate_policy(&policy()).is_empty());

    let errs: Vec<String> =
        validate_binding(&json!({"spec": {"validationActions": ["Deny", "Warn", "Shout"]}}))
            .iter()
            .map(ToString::to_string)
            .collect();
    assert_eq!(
        errs,
        [
            "spec.policyName: Required value",
            "spec.validationActions[2]: Unsupported value: \"Shout\": supported values: \"Audit\", \"Deny\", \"Warn\"",
            "spec.validationActions: Invalid value: [\"Deny\",\"Warn\",\"Shout\"]: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ]
    );
    assert!(validate_binding(&binding(&["Deny"])).is_empty());
}
