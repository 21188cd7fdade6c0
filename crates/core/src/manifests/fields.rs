//! Fields the schema of an object's kind does not have (`requets: 4ms`, `spec.bogus`), found
//! as `kubectl apply --validate=strict` finds them, so that a typo is an error rather than
//! a setting silently left at its default.
//!
//! Two sources of truth, one per family of kinds:
//! - edgeplane's own kinds: the OpenAPI schemas of their CRDs (`edgeplane_api::crdgen`,
//!   what the API server validates against), walked along the object;
//! - built-in kinds (`v1 Pod`, `apps/v1 Deployment`, ...): the k8s-openapi types, generated
//!   from Kubernetes' OpenAPI document. They ignore fields they do not know when decoding
//!   and write every field they hold when encoding, so a field of the input missing from
//!   the decoded-and-encoded object is a field the kind does not have.
//!
//! Kinds of neither family (custom resources of other projects, and KubeVirt's
//! VirtualMachine, of which edgeplane models only what it plans with) are not checked:
//! their schema is not known here.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use super::{Document, ManifestError};

/// What to do about unknown fields: kubectl's `--validate` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Validation {
    /// An unknown field is an error (kubectl's default).
    #[default]
    Strict,
    /// An unknown field is reported and the object read without it.
    Warn,
    /// Unknown fields are not looked for.
    Ignore,
}

/// The paths of the fields of a document its kind does not have (`spec.rules[0].requets`),
/// in document order; empty for kinds whose schema is not known here.
pub fn unknown_fields(doc: &Document) -> Vec<String> {
    let mut found = Vec::new();
    let Some(object) = doc.value.as_object() else {
        return found;
    };
    if let Some(schema) = crd_schemas().get(&(doc.api_version().to_string(), doc.kind().into())) {
        if let Some(meta) = object.get("metadata") {
            round_trip::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(
                meta, "metadata", &mut found,
            );
        }
        for (key, value) in object {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") || value.is_null() {
                continue;
            }
            let path = join(".", key);
            match schema.pointer("/properties").and_then(|p| p.get(key)) {
                Some(property) => against_schema(value, property, &path, &mut found),
                None => found.push(path),
            }
        }
        return found;
    }
    builtin(doc.api_version(), doc.kind(), &doc.value, &mut found);
    found
}

/// The error (strict) or the warnings (warn) for a document's unknown fields.
pub fn check_fields(doc: &Document, validation: Validation) -> Result<Vec<String>, ManifestError> {
    if validation == Validation::Ignore {
        return Ok(Vec::new());
    }
    let fields = unknown_fields(doc);
    if fields.is_empty() {
        return Ok(Vec::new());
    }
    match validation {
        Validation::Strict => {
            let (field, message) = match fields.as_slice() {
                [one] => (Some(one.clone()), "unknown field".to_string()),
                many => (None, format!("unknown fields {}", many.join(", "))),
            };
            Err(ManifestError::at(
                doc,
                field,
                format!("{message} (--validate=warn reads the object without it)"),
            ))
        }
        _ => Ok(fields
            .iter()
            .map(|f| {
                format!(
                    "{} {}: {f}: unknown field, ignored",
                    doc.location(),
                    doc.describe()
                )
            })
            .collect()),
    }
}

/// `spec.rules` + `name`: `spec.rules.name`; keys that are not plain words are quoted
/// (`metadata.labels["app.kubernetes.io/name"]`).
fn join(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path, plain) {
        (".", true) => key.to_string(),
        (".", false) => format!("[{key:?}]"),
        (_, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

/// The top-level schema of each edgeplane kind, by (apiVersion, kind), built once.
fn crd_schemas() -> &'static BTreeMap<(String, String), Json> {
    static SCHEMAS: OnceLock<BTreeMap<(String, String), Json>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut schemas = BTreeMap::new();
        for crd in edgeplane_api::crdgen::all() {
            let group = &crd.spec.group;
            let kind = &crd.spec.names.kind;
            for version in &crd.spec.versions {
                let schema = version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .and_then(|s| serde_json::to_value(s).ok());
                if let Some(schema) = schema {
                    schemas.insert((format!("{group}/{}", version.name), kind.clone()), schema);
                }
            }
        }
        schemas
    })
}

/// The properties a schema allows, its own and those of its `allOf`, `anyOf` and `oneOf`
/// branches (a field of any branch is known).
fn properties(schema: &Json, out: &mut Map<String, Json>) -> bool {
    let mut any = false;
    if let Some(own) = schema.get("properties").and_then(Json::as_object) {
        any = true;
        for (k, v) in own {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    for branches in ["allOf", "anyOf", "oneOf"] {
        for branch in schema
            .get(branches)
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            any |= properties(branch, out);
        }
    }
    any
}

/// Walks `value` along `schema`, collecting the paths of fields it does not declare.
fn against_schema(value: &Json, schema: &Json, path: &str, found: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Json::Bool(true)) {
        return;
    }
    match value {
        Json::Object(object) => {
            let mut declared = Map::new();
            let has_properties = properties(schema, &mut declared);
            let additional = schema.get("additionalProperties");
            for (key, value) in object {
                if value.is_null() {
                    continue;
                }
                let at = join(path, key);
                if let Some(property) = declared.get(key) {
                    against_schema(value, property, &at, found);
                } else if let Some(additional @ Json::Object(_)) = additional {
                    against_schema(value, additional, &at, found);
                } else if has_properties && additional != Some(&Json::Bool(true)) {
                    // A schema without properties says nothing of its fields: only
                    // declared properties make others unknown.
                    found.push(at);
                }
            }
        }
        Json::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, value) in items.iter().enumerate() {
                    against_schema(value, item, &format!("{path}[{i}]"), found);
                }
            }
        }
        _ => {}
    }
}

/// Decodes `value` as `T`, encodes it again, and collects the fields lost on the way. A
/// value that does not decode is left to the decoder, whose error names the field.
fn round_trip<T: DeserializeOwned + Serialize>(value: &Json, path: &str, found: &mut Vec<String>) {
    // From a borrow: copying every document first doubled the cost of reading large
    // inputs (tens of thousands of nodes and pods).
    let Ok(typed) = T::deserialize(value) else {
        return;
    };
    if let Ok(encoded) = serde_json::to_value(&typed) {
        dropped(value, &encoded, path, found);
    }
}

/// The fields of `input` that `output` does not have, recursively. A `null` is an absent
/// field (kubectl reads it so).
fn dropped(input: &Json, output: &Json, path: &str, found: &mut Vec<String>) {
    match (input, output) {
        (Json::Object(input), Json::Object(output)) => {
            for (key, value) in input {
                if value.is_null() {
                    continue;
                }
                let at = join(path, key);
                match output.get(key) {
                    Some(kept) => dropped(value, kept, &at, found),
                    None => found.push(at),
                }
            }
        }
        (Json::Array(input), Json::Array(output)) => {
            for (i, (value, kept)) in input.iter().zip(output).enumerate() {
                dropped(value, kept, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// Built-in kinds with a k8s-openapi type: the round trip over the whole object.
fn builtin(api_version: &str, kind: &str, value: &Json, found: &mut Vec<String>) {
    use k8s_openapi::api::{apps, batch, core, networking, policy, rbac, scheduling};
    macro_rules! kinds {
        ($($version:literal $kind:literal => $ty:ty,)*) => {
            match (api_version, kind) {
                $(($version, $kind) => round_trip::<$ty>(value, ".", found),)*
                _ => {}
            }
        };
    }
    kinds! {
        "v1" "Pod" => core::v1::Pod,
        "v1" "Node" => core::v1::Node,
        "v1" "Namespace" => core::v1::Namespace,
        "v1" "ConfigMap" => core::v1::ConfigMap,
        "v1" "Secret" => core::v1::Secret,
        "v1" "Service" => core::v1::Service,
        "v1" "ServiceAccount" => core::v1::ServiceAccount,
        "v1" "PersistentVolumeClaim" => core::v1::PersistentVolumeClaim,
        "apps/v1" "Deployment" => apps::v1::Deployment,
        "apps/v1" "StatefulSet" => apps::v1::StatefulSet,
        "apps/v1" "ReplicaSet" => apps::v1::ReplicaSet,
        "apps/v1" "DaemonSet" => apps::v1::DaemonSet,
        "batch/v1" "Job" => batch::v1::Job,
        "batch/v1" "CronJob" => batch::v1::CronJob,
        "policy/v1" "PodDisruptionBudget" => policy::v1::PodDisruptionBudget,
        "networking.k8s.io/v1" "NetworkPolicy" => networking::v1::NetworkPolicy,
        "rbac.authorization.k8s.io/v1" "Role" => rbac::v1::Role,
        "rbac.authorization.k8s.io/v1" "RoleBinding" => rbac::v1::RoleBinding,
        "rbac.authorization.k8s.io/v1" "ClusterRole" => rbac::v1::ClusterRole,
        "rbac.authorization.k8s.io/v1" "ClusterRoleBinding" => rbac::v1::ClusterRoleBinding,
        "scheduling.k8s.io/v1" "PriorityClass" => scheduling::v1::PriorityClass,
    }
}
