//! Validation of the built-in kinds: metadata, pods (mostly immutable; gates may only be
//! removed, placement only narrowed), workloads and their selectors, budgets, services.

use serde_json::{Value, json};

use crate::error::{FieldError, FieldErrorKind};

/// The most bytes (keys and values) an object's annotations may hold: 256 KiB.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
use crate::object;
use crate::resources::Builtin;

/// Validation common to every object's metadata.
pub fn validate_meta(obj: &Value, name_is_label: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = object::name(obj);
    let ok = if name_is_label {
        object::is_dns_label(name)
    } else {
        object::is_dns_subdomain(name)
    };
    if !ok {
        let what = if name_is_label {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        };
        errs.push(FieldError::invalid("metadata.name", &json!(name), what));
    }
    for (k, v) in object::labels(obj) {
        if !object::is_qualified_name(&k) {
            errs.push(FieldError::invalid(
                "metadata.labels",
                &json!(k),
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            ));
        }
        if !object::is_label_value(&v) {
            errs.push(FieldError::invalid(
                "metadata.labels",
                &json!(v),
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            ));
        }
    }
    let annotations = object::annotations(obj);
    let annotation_bytes: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if annotation_bytes > TOTAL_ANNOTATION_SIZE_LIMIT {
        // kube-apiserver's ValidateAnnotationsSize, the size limit objects meet first.
        errs.push(FieldError::new(
            FieldErrorKind::TooLong,
            "metadata.annotations",
            format!("may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
        ));
    }
    for k in annotations.keys() {
        if !object::is_qualified_name(k) {
            errs.push(FieldError::invalid(
                "metadata.annotations",
                &json!(k),
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            ));
        }
    }
    for f in object::finalizers(obj) {
        if !object::is_qualified_name(&f) {
            errs.push(FieldError::invalid(
                "metadata.finalizers",
                &json!(f),
                "name part must consist of alphanumeric characters, '-', '_' or '.'",
            ));
        }
    }
    for (i, r) in object::owner_refs(obj).iter().enumerate() {
        for f in ["apiVersion", "kind", "name", "uid"] {
            if r.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
                errs.push(FieldError::required(
                    format!("metadata.ownerReferences[{i}].{f}"),
                    "",
                ));
            }
        }
    }
    errs
}

fn gates(pod: &Value) -> Vec<String> {
    pod.get("spec")
        .and_then(|s| s.get("schedulingGates"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|g| g.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn validate_pod_spec(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let containers = spec.get("containers").and_then(Value::as_array);
    match containers {
        None => errs.push(FieldError::required(format!("{path}.containers"), "")),
        Some(cs) if cs.is_empty() => {
            errs.push(FieldError::required(format!("{path}.containers"), ""))
        }
        Some(cs) => {
            let mut seen = Vec::new();
            for (i, c) in cs.iter().enumerate() {
                let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    errs.push(FieldError::required(
                        format!("{path}.containers[{i}].name"),
                        "",
                    ));
                } else if !object::is_dns_label(name) {
                    errs.push(FieldError::invalid(
                        format!("{path}.containers[{i}].name"),
                        &json!(name),
                        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
                    ));
                } else if seen.contains(&name) {
                    errs.push(FieldError::new(
                        crate::error::FieldErrorKind::Duplicate,
                        format!("{path}.containers[{i}].name"),
                        format!("{name:?}"),
                    ));
                }
                seen.push(name);
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    errs.push(FieldError::required(
                        format!("{path}.containers[{i}].image"),
                        "",
                    ));
                }
            }
        }
    }
    for (field, map) in super::resource_maps(spec, path) {
        for (name, value) in map {
            let milli = match value {
                Value::String(text) => edgeplane_core::quantity::parse_milli(text),
                Value::Number(n) => n.as_f64().map(|f| (f * 1000.0) as i128),
                _ => None,
            };
            if milli.is_some_and(|m| m < 0) {
                errs.push(FieldError::invalid(
                    format!("{field}[{name}]"),
                    value,
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
    if let Some(rp) = spec.get("restartPolicy").and_then(Value::as_str)
        && !matches!(rp, "Always" | "OnFailure" | "Never")
    {
        errs.push(FieldError::not_supported(
            format!("{path}.restartPolicy"),
            &json!(rp),
            &["Always", "OnFailure", "Never"],
        ));
    }
}

fn validate_pod(new: &Value, old: Option<&Value>, status_only: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = new.get("spec").cloned().unwrap_or(Value::Null);
    validate_pod_spec(&spec, "spec", &mut errs);
    let new_gates = gates(new);
    for (i, g) in new_gates.iter().enumerate() {
        if !object::is_qualified_name(g) {
            errs.push(FieldError::invalid(
                format!("spec.schedulingGates[{i}].name"),
                &json!(g),
                "name part must consist of alphanumeric characters, '-', '_' or '.'",
            ));
        }
        if new_gates[..i].contains(g) {
            errs.push(FieldError::new(
                crate::error::FieldErrorKind::Duplicate,
                format!("spec.schedulingGates[{i}].name"),
                format!("{g:?}"),
            ));
        }
    }
    let node_name = spec.get("nodeName").and_then(Value::as_str).unwrap_or("");
    if old.is_none() && !node_name.is_empty() && !new_gates.is_empty() {
        errs.push(FieldError::forbidden(
            "spec.nodeName",
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    let Some(old) = old else {
        return errs;
    };
    if status_only {
        return Vec::new();
    }
    errs.extend(validate_pod_update(new, old));
    errs
}

/// The rules of `ValidatePodUpdate` that matter here: the spec is immutable except for
/// container images, activeDeadlineSeconds, added tolerations, removed scheduling gates,
/// and, while the old pod is gated, added nodeSelector entries and narrower node affinity.
fn validate_pod_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    let mut munged = new.get("spec").cloned().unwrap_or(Value::Null);
    let (Some(m), Some(o)) = (munged.as_object_mut(), old_spec.as_object()) else {
        return errs;
    };
    // Images of containers may change.
    for list in ["containers", "initContainers"] {
        if let (Some(Value::Array(nc)), Some(Value::Array(oc))) = (m.get_mut(list), o.get(list))
            && nc.len() == oc.len()
        {
            for (n, o) in nc.iter_mut().zip(oc) {
                if let (Some(nm), Some(img)) = (n.as_object_mut(), o.get("image")) {
                    nm.insert("image".into(), img.clone());
                }
            }
        }
    }
    for k in ["activeDeadlineSeconds", "terminationGracePeriodSeconds"] {
        match o.get(k) {
            Some(v) => {
                m.insert(k.into(), v.clone());
            }
            None => {
                m.remove(k);
            }
        }
    }
    // Tolerations: additions only.
    let old_tol = o
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let new_tol = m
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if old_tol.iter().all(|t| new_tol.contains(t)) {
        match o.get("tolerations") {
            Some(v) => m.insert("tolerations".into(), v.clone()),
            None => m.remove("tolerations"),
        };
    }
    // Scheduling gates: removals only.
    let old_gates = gates(old);
    let new_gates = gates(new);
    match new_gates.iter().find(|g| !old_gates.contains(g)) {
        Some(added) => errs.push(FieldError::forbidden(
            "spec.schedulingGates",
            format!("only deletion is allowed, but found new scheduling gate '{added}'"),
        )),
        None => {
            match o.get("schedulingGates") {
                Some(v) => m.insert("schedulingGates".into(), v.clone()),
                None => m.remove("schedulingGates"),
            };
        }
    }
    if !old_gates.is_empty() {
        // nodeSelector: additions only.
        let old_ns = object::string_map(o.get("nodeSelector"));
        let new_ns = object::string_map(m.get("nodeSelector"));
        if old_ns.iter().all(|(k, v)| new_ns.get(k) == Some(v)) {
            match o.get("nodeSelector") {
                Some(v) => m.insert("nodeSelector".into(), v.clone()),
                None => m.remove("nodeSelector"),
            };
        } else {
            errs.push(FieldError::invalid(
                "spec.nodeSelector",
                &json!(new_ns),
                "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
            ));
        }
        // Node affinity: required terms may only gain expressions; preferred is free.
        let old_na = old_spec
            .get("affinity")
            .and_then(|a| a.get("nodeAffinity"))
            .cloned();
        let new_na = m
            .get("affinity")
            .and_then(|a| a.get("nodeAffinity"))
            .cloned();
        match node_affinity_narrowed(old_na.as_ref(), new_na.as_ref()) {
            Ok(()) => {
                let aff = m.entry("affinity").or_insert_with(|| json!({}));
                if let Some(a) = aff.as_object_mut() {
                    match &old_na {
                        Some(v) => a.insert("nodeAffinity".into(), v.clone()),
                        None => a.remove("nodeAffinity"),
                    };
                    if a.is_empty() && o.get("affinity").is_none() {
                        m.remove("affinity");
                    }
                }
            }
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() && Value::Object(m.clone()) != old_spec {
        errs.push(FieldError::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
    errs
}

fn node_affinity_narrowed(old: Option<&Value>, new: Option<&Value>) -> Result<(), FieldError> {
    let path = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution";
    let req = |v: Option<&Value>| {
        v.and_then(|na| na.get("requiredDuringSchedulingIgnoredDuringExecution"))
            .filter(|r| !r.is_null())
            .cloned()
    };
    let (Some(old_req), new_req) = (req(old), req(new)) else {
        return Ok(());
    };
    let terms = |r: &Value| {
        r.get("nodeSelectorTerms")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let old_terms = terms(&old_req);
    if old_terms.is_empty() {
        return Ok(());
    }
    let new_terms = new_req.as_ref().map(terms).unwrap_or_default();
    if new_terms.len() != old_terms.len() {
        return Err(FieldError::invalid(
            format!("{path}.nodeSelectorTerms"),
            &json!(new_terms),
            "no additions/deletions to non-empty NodeSelectorTerms list are allowed",
        ));
    }
    for (i, (o, n)) in old_terms.iter().zip(&new_terms).enumerate() {
        if o.get("matchFields") != n.get("matchFields") {
            return Err(FieldError::invalid(
                format!("{path}.nodeSelectorTerms[{i}].matchFields"),
                n.get("matchFields").unwrap_or(&Value::Null),
                "no updates are allowed",
            ));
        }
        let list = |t: &Value| {
            t.get("matchExpressions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let (oe, ne) = (list(o), list(n));
        if !oe.iter().all(|e| ne.contains(e)) {
            return Err(FieldError::invalid(
                format!("{path}.nodeSelectorTerms[{i}].matchExpressions"),
                &json!(ne),
                "only additions are allowed (no mutations or deletions)",
            ));
        }
    }
    Ok(())
}

fn validate_workload(kind: Builtin, new: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = new.get("spec").cloned().unwrap_or(Value::Null);
    let selector = spec.get("selector");
    match selector.map(crate::selector::from_api) {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(Err(e)) => errs.push(FieldError::invalid(
            "spec.selector",
            selector.unwrap_or(&Value::Null),
            e.to_string(),
        )),
        Some(Ok(sel)) if sel.is_empty() => errs.push(FieldError::invalid(
            "spec.selector",
            selector.unwrap_or(&Value::Null),
            "empty selector is invalid for deployment",
        )),
        Some(Ok(sel)) => {
            let labels = object::string_map(
                spec.get("template")
                    .and_then(|t| t.get("metadata"))
                    .and_then(|m| m.get("labels")),
            );
            if !sel.matches(&labels) {
                errs.push(FieldError::invalid(
                    "spec.template.metadata.labels",
                    &json!(labels),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    if let Some(r) = spec.get("replicas").and_then(Value::as_i64)
        && r < 0
    {
        errs.push(FieldError::invalid(
            "spec.replicas",
            &json!(r),
            "must be greater than or equal to 0",
        ));
    }
    match spec.get("template").and_then(|t| t.get("spec")) {
        Some(ps) => validate_pod_spec(ps, "spec.template.spec", &mut errs),
        None => errs.push(FieldError::required("spec.template.spec", "")),
    }
    if let Some(old) = old
        && old.get("spec").and_then(|s| s.get("selector")) != selector
    {
        errs.push(FieldError::invalid(
            "spec.selector",
            selector.unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
    let _ = kind;
    errs
}

/// Kind-specific validation of a write. `old` is the stored object for updates;
/// `status_only` is set for writes through the status subresource.
pub fn validate(
    kind: Builtin,
    new: &Value,
    old: Option<&Value>,
    status_only: bool,
) -> Vec<FieldError> {
    match kind {
        Builtin::Pod => validate_pod(new, old, status_only),
        Builtin::ValidatingAdmissionPolicy if !status_only => {
            crate::admission_policy::validate_policy(new)
        }
        Builtin::ValidatingAdmissionPolicyBinding => crate::admission_policy::validate_binding(new),
        Builtin::Deployment | Builtin::ReplicaSet | Builtin::StatefulSet | Builtin::DaemonSet
            if !status_only =>
        {
            validate_workload(kind, new, old)
        }
        Builtin::PodDisruptionBudget if !status_only => {
            let spec = new.get("spec").cloned().unwrap_or(Value::Null);
            let mut errs = Vec::new();
            if spec.get("minAvailable").is_some_and(|v| !v.is_null())
                && spec.get("maxUnavailable").is_some_and(|v| !v.is_null())
            {
                errs.push(FieldError::invalid(
                    "spec",
                    &spec,
                    "minAvailable and maxUnavailable cannot be both set",
                ));
            }
            if let Some(sel) = spec.get("selector").filter(|s| !s.is_null())
                && let Err(e) = crate::selector::from_api(sel)
            {
                errs.push(FieldError::invalid("spec.selector", sel, e.to_string()));
            }
            errs
        }
        Builtin::Service if !status_only => {
            let mut errs = Vec::new();
            if let Some(ports) = new
                .get("spec")
                .and_then(|s| s.get("ports"))
                .and_then(Value::as_array)
            {
                for (i, p) in ports.iter().enumerate() {
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    if !(1..=65535).contains(&port) {
                        errs.push(FieldError::invalid(
                            format!("spec.ports[{i}].port"),
                            &json!(port),
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                }
            }
            errs
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::tests::gated_pod;

    #[test]
    fn gated_pods_accept_narrower_placement_only() {
        let old = gated_pod();
        // Adding a nodeSelector entry and required affinity while gated: allowed.
        let mut new = old.clone();
        new["spec"]["nodeSelector"]["rack"] = json!("r1");
        new["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}});
        assert_eq!(validate(Builtin::Pod, &new, Some(&old), false), vec![]);
        // Changing an existing selector entry: 422.
        let mut bad = old.clone();
        bad["spec"]["nodeSelector"]["zone"] = json!("b");
        let errs = validate(Builtin::Pod, &bad, Some(&old), false);
        assert_eq!(errs[0].field, "spec.nodeSelector");
        // Removing the gate and setting affinity at once: allowed (old pod was gated).
        let mut ungate = new.clone();
        ungate["spec"]["schedulingGates"] = json!([]);
        assert_eq!(validate(Builtin::Pod, &ungate, Some(&old), false), vec![]);
        // Once ungated, placement is immutable.
        let mut later = ungate.clone();
        later["spec"]["nodeSelector"]["extra"] = json!("x");
        let errs = validate(Builtin::Pod, &later, Some(&ungate), false);
        assert_eq!(errs[0].field, "spec");
        // Adding a gate is forbidden.
        let mut regate = ungate.clone();
        regate["spec"]["schedulingGates"] = json!([{"name": "again"}]);
        let errs = validate(Builtin::Pod, &regate, Some(&ungate), false);
        assert_eq!(errs[0].field, "spec.schedulingGates");
        // Narrowing existing required terms: allowed; changing matchFields: 422.
        let mut narrower = new.clone();
        narrower["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchExpressions"] =
            json!([{"key": "zone", "operator": "In", "values": ["a"]}]);
        assert_eq!(validate(Builtin::Pod, &narrower, Some(&new), false), vec![]);
        let mut other = new.clone();
        other["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchFields"][0]["values"] = json!(["n2"]);
        assert_eq!(validate(Builtin::Pod, &other, Some(&new), false).len(), 1);
        // Images may change.
        let mut img = ungate.clone();
        img["spec"]["containers"][0]["image"] = json!("i:2");
        assert_eq!(validate(Builtin::Pod, &img, Some(&ungate), false), vec![]);
    }

    #[test]
    fn gated_pods_cannot_be_created_bound() {
        let mut pod = gated_pod();
        pod["spec"]["nodeName"] = json!("n1");
        let errs = validate(Builtin::Pod, &pod, None, false);
        assert_eq!(errs[0].field, "spec.nodeName");
    }

    #[test]
    fn workloads_need_matching_selectors() {
        let d = json!({"spec": {"selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let errs = validate(Builtin::Deployment, &d, None, false);
        assert_eq!(errs[0].field, "spec.template.metadata.labels");
    }

    #[test]
    fn meta_validation() {
        let obj = json!({"metadata": {"name": "Bad_Name", "labels": {"ok": "bad value"}}});
        let errs = validate_meta(&obj, false);
        assert_eq!(errs.len(), 2);
        assert!(validate_meta(&json!({"metadata": {"name": "a.b"}}), true).len() == 1);
    }

    #[test]
    fn annotations_over_256_kib_are_too_long() {
        let at_limit = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT - 1);
        let obj = json!({"metadata": {"name": "a", "annotations": {"k": at_limit}}});
        assert_eq!(validate_meta(&obj, false), Vec::new());
        let over = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let obj = json!({"metadata": {"name": "a", "annotations": {"k": over}}});
        let errs = validate_meta(&obj, false);
        assert_eq!(
            errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
    }
}
