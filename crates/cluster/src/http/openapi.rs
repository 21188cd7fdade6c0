//! Discovery documents: `/version` and the OpenAPI v3 documents kubectl reads.

use serde_json::{Value, json};

use super::Handler;

impl Handler {
    /// `GET /openapi/v3`: one document per group version.
    pub(super) fn openapi_root(&self) -> Value {
        let registry = &self.api.lock().registry;
        let mut paths = serde_json::Map::new();
        let mut gvs: Vec<(String, String)> = Vec::new();
        for d in registry.all() {
            let gv = (d.group.clone(), d.version.clone());
            if !gvs.contains(&gv) {
                gvs.push(gv);
            }
        }
        for (g, v) in gvs {
            let path = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            let names: Vec<String> = registry
                .resources_in(&g, &v)
                .iter()
                .map(|d| d.plural.clone())
                .collect();
            let hash = crate::workloads::template_hash(&json!(names));
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            );
        }
        json!({"paths": paths})
    }

    /// The OpenAPI v3 document of a group version: the PUT and PATCH operations with their
    /// query parameters (kubectl reads `fieldValidation` there to decide on server-side
    /// field validation), and the schemas of its kinds with everything they reference
    /// (`kubectl explain`): built-in kinds from `builtin::schemas`, custom resources from
    /// their CRD's `openAPIV3Schema`.
    pub(super) fn openapi_group_version(&self, group: &str, version: &str) -> Option<Value> {
        let defs = self.api.lock().registry.resources_in(group, version);
        if defs.is_empty() {
            return None;
        }
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let mut paths = serde_json::Map::new();
        let builtin = crate::builtin::schemas::schemas();
        let mut wanted: Vec<String> = Vec::new();
        let mut custom = serde_json::Map::new();
        for d in &defs {
            if let Some((_, version)) = &d.crd {
                custom.insert(
                    crate::builtin::schemas::custom_component_name(&d.group, &d.version, &d.kind),
                    crate::builtin::schemas::custom_schema(
                        version.schema.as_ref(),
                        &d.group,
                        &d.version,
                        &d.kind,
                    ),
                );
                wanted.push("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta".into());
            } else if let Some(name) = builtin.kind(&d.api_version(), &d.kind) {
                wanted.push(name.to_string());
            }
        }
        let mut schemas = builtin.closure(wanted.iter().map(String::as_str));
        schemas.append(&mut custom);
        for d in defs {
            let item = if d.namespaced {
                format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", d.plural)
            } else {
                format!("{prefix}/{}/{{name}}", d.plural)
            };
            let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
            let op = |verb: &str| {
                json!({
                    "operationId": format!("{verb}{}", d.kind),
                    "x-kubernetes-action": verb,
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
                    "responses": {"200": {"description": "OK"}},
                })
            };
            paths.insert(item, json!({"patch": op("patch"), "put": op("put")}));
        }
        Some(json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": paths,
            "components": {"schemas": schemas},
        }))
    }
}

pub(super) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-edgeplane",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}
