//! The GitOps output of the hub's offline mode: the manifests of an application for each
//! cluster it uses. A component's workload goes only where it has replicas, with
//! `spec.replicas` set to that cluster's share; every other resource of the application
//! goes to each cluster the application uses.

use std::collections::BTreeMap;

use edgeplane_api::multicluster::MecApplication;
use serde_json::Value as Json;

use super::AppPlan;
use crate::manifests::is_cluster_scoped;

/// The application's manifests as written, namespaced ones in the application's namespace
/// when they name none: what goes to a Karmada control plane, which divides the replicas
/// itself.
pub fn resources(app: &MecApplication) -> Vec<Json> {
    let namespace = app.metadata.namespace.as_deref().unwrap_or("default");
    app.spec
        .resources
        .iter()
        .map(|resource| {
            let mut manifest = resource.clone();
            default_namespace(&mut manifest, namespace);
            manifest
        })
        .collect()
}

/// Namespaced kinds get the application's namespace when they name none, as `kubectl
/// apply -n` would give them.
fn default_namespace(manifest: &mut Json, namespace: &str) {
    let kind = manifest.get("kind").and_then(Json::as_str).unwrap_or("");
    if !is_cluster_scoped(kind)
        && let Some(meta) = manifest.get_mut("metadata").and_then(Json::as_object_mut)
        && !meta.contains_key("namespace")
    {
        meta.insert("namespace".into(), Json::from(namespace));
    }
}

/// Cluster name -> the application's manifests for it, in the order of
/// `spec.resources`.
pub fn render(app: &MecApplication, plan: &AppPlan) -> BTreeMap<String, Vec<Json>> {
    let namespace = app.metadata.namespace.as_deref().unwrap_or("default");
    let mut out = BTreeMap::new();
    for share in &plan.placement {
        let mut manifests = Vec::new();
        for resource in &app.spec.resources {
            let kind = resource.get("kind").and_then(Json::as_str).unwrap_or("");
            let name = resource
                .pointer("/metadata/name")
                .and_then(Json::as_str)
                .unwrap_or("");
            let component = app
                .spec
                .components
                .iter()
                .find(|c| c.workload.kind.as_str() == kind && c.workload.name == name);
            let mut manifest = resource.clone();
            if let Some(component) = component {
                let replicas = share.components.get(&component.name).copied().unwrap_or(0);
                if replicas == 0 {
                    continue;
                }
                if let Some(spec) = manifest.get_mut("spec").and_then(Json::as_object_mut) {
                    spec.insert("replicas".into(), Json::from(replicas));
                }
            }
            default_namespace(&mut manifest, namespace);
            manifests.push(manifest);
        }
        out.insert(share.cluster.clone(), manifests);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Share;
    use serde_json::json;

    #[test]
    fn workloads_go_where_they_have_replicas_and_the_rest_everywhere() {
        let app: MecApplication = serde_json::from_value(json!({
            "apiVersion": "multicluster.edgeplane.io/v1alpha1", "kind": "MecApplication",
            "metadata": {"name": "ar-game", "namespace": "ar"},
            "spec": {
                "resources": [
                    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "render"}},
                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ar-render"},
                     "spec": {"replicas": 6}},
                    {"apiVersion": "apps/v1", "kind": "StatefulSet",
                     "metadata": {"name": "game-state", "namespace": "state"}, "spec": {"replicas": 1}},
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "state"}}
                ],
                "components": [
                    {"name": "render", "workload": {"kind": "Deployment", "name": "ar-render"}, "replicas": 6},
                    {"name": "state", "workload": {"kind": "StatefulSet", "name": "game-state"}, "replicas": 1}
                ]
            }
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let plan = AppPlan {
            namespace: "ar".into(),
            name: "ar-game".into(),
            placement: vec![
                Share {
                    cluster: "edge-east".into(),
                    components: BTreeMap::from([("render".into(), 4), ("state".into(), 1)]),
                },
                Share {
                    cluster: "edge-west".into(),
                    components: BTreeMap::from([("render".into(), 2)]),
                },
            ],
            unplaced: BTreeMap::new(),
            rules: Vec::new(),
            warnings: Vec::new(),
        };
        let out = render(&app, &plan);
        assert_eq!(
            out["edge-east"],
            vec![
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "render", "namespace": "ar"}}),
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "ar-render", "namespace": "ar"}, "spec": {"replicas": 4}}),
                json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                       "metadata": {"name": "game-state", "namespace": "state"}, "spec": {"replicas": 1}}),
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "state"}}),
            ]
        );
        assert_eq!(
            out["edge-west"],
            vec![
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "render", "namespace": "ar"}}),
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "ar-render", "namespace": "ar"}, "spec": {"replicas": 2}}),
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "state"}}),
            ]
        );
    }
}
