//! OpenAPI v3 schemas of the built-in kinds (from k8s-openapi's `schemars` support, which
//! carries Kubernetes' own descriptions), named as a real API server names them
//! (`io.k8s.api.core.v1.Pod`) and referenced as `#/components/schemas/...`; and the
//! unknown fields of an object against them, for `fieldValidation=Strict`.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

/// Every built-in schema the server publishes, and the kinds among them.
pub struct Schemas {
    /// Component name -> schema.
    pub components: Map<String, Value>,
    /// (apiVersion, kind) -> component name of the kinds served.
    pub kinds: Vec<(String, String, String)>,
}

const PREFIX: &str = "#/components/schemas/";

static SCHEMAS: LazyLock<Schemas> = LazyLock::new(build);

/// The built-in schemas (generated once).
pub fn schemas() -> &'static Schemas {
    &SCHEMAS
}

fn build() -> Schemas {
    use k8s_openapi::api::admissionregistration::v1 as admission;
    use k8s_openapi::api::policy::v1 as policy;
    use k8s_openapi::api::{apps::v1 as apps, coordination::v1 as coord, core::v1 as core};
    use k8s_openapi::api::{autoscaling::v1 as autoscaling, events::v1 as events};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;

    let mut generator = SchemaGenerator::new(SchemaSettings::openapi3());
    let mut kinds = Vec::new();
    fn add<T: JsonSchema>(
        g: &mut SchemaGenerator,
        kinds: &mut Vec<(String, String, String)>,
        api_version: &str,
        kind: &str,
    ) {
        g.subschema_for::<T>();
        kinds.push((
            api_version.into(),
            kind.into(),
            T::schema_name().into_owned(),
        ));
    }
    let g = &mut generator;
    let k = &mut kinds;
    add::<core::Namespace>(g, k, "v1", "Namespace");
    add::<core::Node>(g, k, "v1", "Node");
    add::<core::Pod>(g, k, "v1", "Pod");
    add::<core::Service>(g, k, "v1", "Service");
    add::<core::ConfigMap>(g, k, "v1", "ConfigMap");
    add::<core::Secret>(g, k, "v1", "Secret");
    add::<core::ServiceAccount>(g, k, "v1", "ServiceAccount");
    add::<core::Event>(g, k, "v1", "Event");
    add::<core::Binding>(g, k, "v1", "Binding");
    add::<apps::Deployment>(g, k, "apps/v1", "Deployment");
    add::<apps::ReplicaSet>(g, k, "apps/v1", "ReplicaSet");
    add::<apps::StatefulSet>(g, k, "apps/v1", "StatefulSet");
    add::<apps::DaemonSet>(g, k, "apps/v1", "DaemonSet");
    add::<coord::Lease>(g, k, "coordination.k8s.io/v1", "Lease");
    add::<events::Event>(g, k, "events.k8s.io/v1", "Event");
    add::<policy::PodDisruptionBudget>(g, k, "policy/v1", "PodDisruptionBudget");
    add::<policy::Eviction>(g, k, "policy/v1", "Eviction");
    add::<autoscaling::Scale>(g, k, "autoscaling/v1", "Scale");
    add::<ext::CustomResourceDefinition>(
        g,
        k,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
    );
    add::<admission::ValidatingAdmissionPolicy>(
        g,
        k,
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
    );
    add::<admission::ValidatingAdmissionPolicyBinding>(
        g,
        k,
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
    );
    add::<admission::MutatingWebhookConfiguration>(
        g,
        k,
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
    );
    let mut components = generator.take_definitions(true);
    for (api_version, kind, name) in &kinds {
        let (group, version) = crate::resources::split_api_version(api_version);
        if let Some(Value::Object(s)) = components.get_mut(name) {
            s.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": group, "version": version, "kind": kind}]),
            );
        }
    }
    Schemas { components, kinds }
}

impl Schemas {
    /// The component name of a served kind.
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .iter()
            .find(|(a, k, _)| a == api_version && k == kind)
            .map(|(_, _, n)| n.as_str())
    }

    /// `names` and every component they reference, transitively.
    pub fn closure<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Map<String, Value> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<String> = names.into_iter().map(str::to_string).collect();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(s) = self.components.get(&name) {
                refs(s, &mut todo);
            }
        }
        seen.into_iter()
            .filter_map(|n| self.components.get(&n).map(|s| (n, s.clone())))
            .collect()
    }

    /// Fields of `obj` (a built-in object with `apiVersion` and `kind`) that its schema
    /// does not have, as the API server's strict decoding names them
    /// (`spec.containers[0].foo`). `None` when the kind has no schema here.
    pub fn unknown_fields(&self, obj: &Value) -> Option<Vec<String>> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        let name = self.kind(api_version, kind)?;
        let schema = self.components.get(name)?;
        let mut out = Vec::new();
        self.walk(obj, schema, "", &mut out, 0);
        Some(out)
    }

    fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..16 {
            if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
                match r.strip_prefix(PREFIX).and_then(|n| self.components.get(n)) {
                    Some(s) => schema = s,
                    None => return schema,
                }
            } else if let Some(first) = schema
                .get("allOf")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
            {
                schema = first;
            } else {
                return schema;
            }
        }
        schema
    }

    fn walk(&self, v: &Value, schema: &Value, path: &str, out: &mut Vec<String>, depth: usize) {
        let schema = self.resolve(schema);
        if depth > 64
            || schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true)
        {
            return;
        }
        match v {
            Value::Object(m) => {
                let props = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties").filter(|a| a.is_object());
                if props.is_none() && additional.is_none() {
                    return; // free-form (RawExtension, FieldsV1)
                }
                for (k, val) in m {
                    let child = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match (props.and_then(|p| p.get(k)), additional) {
                        (Some(s), _) | (None, Some(s)) => self.walk(val, s, &child, out, depth + 1),
                        (None, None) => out.push(child),
                    }
                }
            }
            Value::Array(items) => {
                if let Some(s) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item, s, &format!("{path}[{i}]"), out, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str)
                && let Some(n) = r.strip_prefix(PREFIX)
            {
                out.push(n.to_string());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// The component name a real API server gives a custom resource's schema: the group
/// reversed, the version, the kind (`io.edgeplane.constraint.v1alpha1.ConstraintPolicy`).
pub fn custom_component_name(group: &str, version: &str, kind: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    format!("{}.{version}.{kind}", parts.join("."))
}

/// A custom resource's published schema: its `openAPIV3Schema` with `apiVersion`, `kind`
/// and `metadata` (ObjectMeta) described, and its group-version-kind.
pub fn custom_schema(schema: Option<&Value>, group: &str, version: &str, kind: &str) -> Value {
    let mut s = schema.cloned().unwrap_or_else(|| json!({"type": "object"}));
    if let Value::Object(m) = &mut s {
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(p) = props {
            p.entry("apiVersion").or_insert_with(|| json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}));
            p.entry("kind").or_insert_with(|| json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}));
            p.insert(
                "metadata".into(),
                json!({"allOf": [{"$ref": format!("{PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")}],
                       "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}),
            );
        }
        m.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": group, "version": version, "kind": kind}]),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_have_their_kubernetes_schema() {
        let s = schemas();
        let pod = &s.components["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["x-kubernetes-group-version-kind"],
            json!([{"group": "", "version": "v1", "kind": "Pod"}])
        );
        let spec = &s.components["io.k8s.api.core.v1.PodSpec"];
        assert!(
            spec["properties"]["containers"]["description"]
                .as_str()
                .unwrap()
                .starts_with("List of containers belonging to the pod.")
        );
        let closure = s.closure(["io.k8s.api.core.v1.Pod"]);
        assert!(closure.contains_key("io.k8s.api.core.v1.Container"));
        assert!(closure.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        assert!(!closure.contains_key("io.k8s.api.apps.v1.Deployment"));
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let s = schemas();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "bogus": 1,
                         "managedFields": [{"manager": "m", "fieldsV1": {"f:x": {}}}]},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always", "colour": "red",
                                     "resources": {"limits": {"cpu": "1"}}}]},
            "status": {"phase": "Running"},
            "extra": true,
        });
        let mut unknown = s.unknown_fields(&pod).unwrap();
        unknown.sort();
        assert_eq!(
            unknown,
            ["extra", "metadata.bogus", "spec.containers[0].colour"]
        );
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"any": "key"}});
        assert_eq!(s.unknown_fields(&cm).unwrap(), Vec::<String>::new());
        assert!(
            s.unknown_fields(&json!({"apiVersion": "x/v1", "kind": "Y"}))
                .is_none()
        );
    }

    #[test]
    fn custom_schemas_get_their_kubernetes_name_and_metadata() {
        assert_eq!(
            custom_component_name("constraint.edgeplane.io", "v1alpha1", "ConstraintPolicy"),
            "io.edgeplane.constraint.v1alpha1.ConstraintPolicy"
        );
        let s = custom_schema(
            Some(&json!({"type": "object", "properties": {"spec": {"type": "object"}}})),
            "g.io",
            "v1",
            "W",
        );
        assert_eq!(s["properties"]["spec"]["type"], "object");
        assert_eq!(
            s["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(s["x-kubernetes-group-version-kind"][0]["kind"], "W");
    }
}
