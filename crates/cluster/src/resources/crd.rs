//! What a CustomResourceDefinition serves: one resource definition per version, or why
//! the CRD is invalid.

use serde_json::{Value, json};

use super::{CrdVersion, Repr, ResourceDef, ScalePaths};
use crate::error::FieldError;

/// The resource definitions a CRD serves, or why the CRD is invalid.
pub fn defs_from_crd(crd: &Value) -> Result<Vec<ResourceDef>, Vec<FieldError>> {
    let mut errs = Vec::new();
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let group = s(&spec, "group");
    let names = spec.get("names").cloned().unwrap_or(Value::Null);
    let plural = s(&names, "plural");
    let kind = s(&names, "kind");
    let singular = {
        let x = s(&names, "singular");
        if x.is_empty() {
            kind.to_ascii_lowercase()
        } else {
            x
        }
    };
    let list_kind = {
        let x = s(&names, "listKind");
        if x.is_empty() {
            format!("{kind}List")
        } else {
            x
        }
    };
    let name = crate::object::name(crd);
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else if !group.contains('.') {
        errs.push(FieldError::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        errs.push(FieldError::required("spec.names.plural", ""));
    }
    if kind.is_empty() {
        errs.push(FieldError::required("spec.names.kind", ""));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = s(&spec, "scope");
    let namespaced = match scope.as_str() {
        "Namespaced" => true,
        "Cluster" => false,
        _ => {
            errs.push(FieldError::not_supported(
                "spec.scope",
                &json!(scope),
                &["Cluster", "Namespaced"],
            ));
            true
        }
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldError::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
    }
    let storage_count = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage_count != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            &json!(storage_count),
            "must have exactly one version marked as storage version",
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let list = |v: &Value, k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut defs = Vec::new();
    for v in &versions {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let subresources = v.get("subresources").cloned().unwrap_or(Value::Null);
        let scale = subresources.get("scale").map(|sc| ScalePaths {
            spec_replicas: s(sc, "specReplicasPath"),
            status_replicas: s(sc, "statusReplicasPath"),
            label_selector: sc
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
        let field_labels = v
            .get("selectableFields")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                    .map(|p| p.trim_start_matches('.').to_string())
                    .collect()
            })
            .unwrap_or_default();
        defs.push(ResourceDef {
            group: group.clone(),
            version: s(v, "name"),
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            list_kind: list_kind.clone(),
            namespaced,
            short_names: list(&names, "shortNames"),
            categories: list(&names, "categories"),
            status_subresource: subresources.get("status").is_some(),
            scale,
            builtin: None,
            storage: format!("{plural}.{group}"),
            repr: Repr::Native,
            generation: true,
            field_labels,
            crd: Some((
                name.to_string(),
                CrdVersion {
                    schema: v
                        .get("schema")
                        .and_then(|s| s.get("openAPIV3Schema"))
                        .cloned(),
                    printer_columns: v
                        .get("additionalPrinterColumns")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                },
            )),
        });
    }
    Ok(defs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_defs() {
        let crd = json!({
            "metadata": {"name": "widgets.example.io"},
            "spec": {
                "group": "example.io",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wg"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                              "subresources": {"status": {}}}]
            }
        });
        let defs = defs_from_crd(&crd).unwrap();
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0].storage, "widgets.example.io");
        assert!(defs[0].status_subresource);
        let bad = json!({"metadata": {"name": "x"}, "spec": {"group": "example.io", "scope": "Nope",
            "names": {"plural": "widgets", "kind": "Widget"}, "versions": []}});
        assert!(defs_from_crd(&bad).is_err());
    }
}
