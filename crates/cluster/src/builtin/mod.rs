//! Defaulting and validation of the built-in kinds, as far as the API server's own rules
//! matter to controllers: types must decode, pods are mostly immutable (scheduling gates
//! may only be removed; a gated pod's nodeSelector and node affinity may only be
//! narrowed), workload selectors must match their templates, a PodDisruptionBudget sets one
//! of minAvailable or maxUnavailable, and so on.
//!
//! `defaults` fills in what the API server defaults on every write and on create;
//! `validation` holds the checks; `schemas` the OpenAPI v3 schemas published and used for
//! strict field validation; this module the decoding check.

mod defaults;
pub mod schemas;
mod validation;

use serde_json::Value;

use crate::resources::Builtin;

pub use defaults::{default, default_pod_spec, prepare_create, qos_class};
pub use validation::{validate, validate_meta};

/// An object that does not decode as its Kubernetes type; the text is serde's (or the
/// quantity parser's), as the API server's 400 quotes it.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// `resource.Quantity`'s own decoding refuses the text (`cpu: "lots"`).
    #[error("{0}")]
    Quantity(String),
}

/// The regular expression `resource.Quantity` quotes when it cannot parse a value.
const QUANTITY_SYNTAX: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// The resource maps (`requests`, `limits`, `overhead`) of a pod spec, with their paths.
pub(crate) fn resource_maps<'a>(
    spec: &'a Value,
    path: &str,
) -> Vec<(String, &'a serde_json::Map<String, Value>)> {
    let mut out = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, c) in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            for kind in ["requests", "limits"] {
                if let Some(map) = c
                    .pointer(&format!("/resources/{kind}"))
                    .and_then(Value::as_object)
                {
                    out.push((format!("{path}.{list}[{i}].resources.{kind}"), map));
                }
            }
        }
    }
    if let Some(map) = spec.get("overhead").and_then(Value::as_object) {
        out.push((format!("{path}.overhead"), map));
    }
    out
}

/// The pod spec of a pod or of a workload's template, with its path.
pub(crate) fn pod_spec_of(kind: Builtin, obj: &Value) -> Option<(&Value, &'static str)> {
    match kind {
        Builtin::Pod => obj.get("spec").map(|s| (s, "spec")),
        Builtin::Deployment | Builtin::ReplicaSet | Builtin::StatefulSet | Builtin::DaemonSet => {
            obj.pointer("/spec/template/spec")
                .map(|s| (s, "spec.template.spec"))
        }
        _ => None,
    }
}

fn check_quantities(kind: Builtin, obj: &Value) -> Result<(), DecodeError> {
    let Some((spec, path)) = pod_spec_of(kind, obj) else {
        return Ok(());
    };
    for (_, map) in resource_maps(spec, path) {
        for value in map.values() {
            let parses = match value {
                Value::String(text) => edgeplane_core::quantity::parse_milli(text).is_some(),
                Value::Number(_) => true,
                _ => false,
            };
            if !parses {
                return Err(DecodeError::Quantity(QUANTITY_SYNTAX.into()));
            }
        }
    }
    Ok(())
}

/// Checks that an object decodes as its Kubernetes type (a real API server decodes every
/// request into a typed struct and answers 400 when it cannot).
pub fn check_decodes(kind: Builtin, obj: &Value) -> Result<(), DecodeError> {
    use k8s_openapi::api::admissionregistration::v1 as admission;
    use k8s_openapi::api::policy::v1 as policy;
    use k8s_openapi::api::{apps::v1 as apps, coordination::v1 as coord, core::v1 as core};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    fn try_as<T: serde::de::DeserializeOwned>(obj: &Value) -> Result<(), DecodeError> {
        T::deserialize(obj).map(|_| ()).map_err(DecodeError::from)
    }
    check_quantities(kind, obj)?;
    match kind {
        Builtin::Namespace => try_as::<core::Namespace>(obj),
        Builtin::Node => try_as::<core::Node>(obj),
        Builtin::Pod => try_as::<core::Pod>(obj),
        Builtin::Service => try_as::<core::Service>(obj),
        Builtin::ConfigMap => try_as::<core::ConfigMap>(obj),
        Builtin::Secret => try_as::<core::Secret>(obj),
        Builtin::ServiceAccount => try_as::<core::ServiceAccount>(obj),
        // Either shape of Event: checked after conversion to core.
        Builtin::Event => try_as::<core::Event>(obj),
        Builtin::Deployment => try_as::<apps::Deployment>(obj),
        Builtin::ReplicaSet => try_as::<apps::ReplicaSet>(obj),
        Builtin::StatefulSet => try_as::<apps::StatefulSet>(obj),
        Builtin::DaemonSet => try_as::<apps::DaemonSet>(obj),
        Builtin::Lease => try_as::<coord::Lease>(obj),
        Builtin::PodDisruptionBudget => try_as::<policy::PodDisruptionBudget>(obj),
        Builtin::CustomResourceDefinition => try_as::<ext::CustomResourceDefinition>(obj),
        Builtin::ValidatingAdmissionPolicy => try_as::<admission::ValidatingAdmissionPolicy>(obj),
        Builtin::ValidatingAdmissionPolicyBinding => {
            try_as::<admission::ValidatingAdmissionPolicyBinding>(obj)
        }
        Builtin::MutatingWebhookConfiguration => {
            try_as::<admission::MutatingWebhookConfiguration>(obj)
        }
    }
}

/// Whether names of this kind are DNS labels (not subdomains).
pub fn name_is_label(kind: Option<Builtin>) -> bool {
    matches!(kind, Some(Builtin::Namespace) | Some(Builtin::Service))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn gated_pod() -> Value {
        json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "c", "image": "i:1"}],
                "schedulingGates": [{"name": "constraint.edgeplane.io/planner"}],
                "nodeSelector": {"zone": "a"}
            }
        })
    }

    #[test]
    fn decodes_types() {
        assert!(check_decodes(Builtin::Pod, &gated_pod()).is_ok());
        let bad = json!({"spec": {"containers": "nope"}});
        assert!(check_decodes(Builtin::Pod, &bad).is_err());
        let bad = json!({"spec": {"replicas": "three"}});
        assert!(check_decodes(Builtin::Deployment, &bad).is_err());
    }

    /// The 400's text is serde's, as it was before the error was typed.
    #[test]
    fn decode_errors_read_as_serde_words_them() {
        let bad = json!({"spec": {"containers": "nope"}});
        let serde_text = serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(bad.clone())
            .err()
            .map(|e| e.to_string());
        let ours = check_decodes(Builtin::Pod, &bad)
            .err()
            .map(|e| e.to_string());
        assert!(serde_text.is_some());
        assert_eq!(ours, serde_text);
    }
}
