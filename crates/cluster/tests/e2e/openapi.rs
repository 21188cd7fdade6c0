//! OpenAPI v3 as kubectl reads it: `kubectl explain` finds a kind's schema by its
//! `x-kubernetes-group-version-kind` and follows `$ref`s; `kubectl apply --validate=strict`
//! sends `fieldValidation=Strict` and the server refuses unknown fields.

use http::{Request, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::cluster;

async fn call(
    c: &edgeplane_cluster::EmbeddedCluster,
    method: &str,
    uri: &str,
    body: Value,
) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .body(kube::client::Body::from(if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).expect("json")
        }))
        .expect("request");
    let resp = c.service().oneshot(req).await.expect("infallible");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (code, serde_json::from_slice(&bytes).expect("json"))
}

/// The schema whose group-version-kind is `gvk`, as kubectl explain looks it up.
fn by_gvk<'a>(doc: &'a Value, group: &str, version: &str, kind: &str) -> &'a Value {
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    schemas
        .values()
        .find(|s| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|a| {
                    a.contains(&json!({"group": group, "version": version, "kind": kind}))
                })
        })
        .unwrap_or_else(|| panic!("no schema for {group}/{version} {kind}"))
}

fn follow<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let s = schema.get("allOf").and_then(|a| a.get(0)).unwrap_or(schema);
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").expect("local ref");
            &doc["components"]["schemas"][name]
        }
        None => s,
    }
}

#[tokio::test(start_paused = true)]
async fn schemas_of_built_in_kinds_and_crds_are_published() {
    let c = cluster(0).await;
    c.apply_objects(
        edgeplane_api::crdgen::all()
            .into_iter()
            .map(|crd| serde_json::to_value(crd).expect("crd"))
            .collect::<Vec<Value>>(),
    )
    .await
    .expect("crds");
    let (code, root) = call(&c, "GET", "/openapi/v3", Value::Null).await;
    assert_eq!(code, 200);
    let core_url = root["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .expect("api/v1");
    let (code, core) = call(&c, "GET", core_url, Value::Null).await;
    assert_eq!(code, 200);
    // kubectl explain pods.spec.containers
    let pod = by_gvk(&core, "", "v1", "Pod");
    let spec = follow(&core, &pod["properties"]["spec"]);
    let containers = &spec["properties"]["containers"];
    assert_eq!(containers["type"], "array");
    assert!(
        containers["description"]
            .as_str()
            .expect("text")
            .starts_with("List of containers")
    );
    let container = follow(&core, &containers["items"]);
    assert_eq!(container["properties"]["image"]["type"], "string");
    assert!(
        core["components"]["schemas"]
            .get("io.k8s.api.apps.v1.Deployment")
            .is_none(),
        "one group version per document"
    );

    // kubectl explain cpb.spec
    let crd_url = root["paths"]["apis/constraint.edgeplane.io/v1alpha1"]["serverRelativeURL"]
        .as_str()
        .expect("crd group version");
    let (_, crds) = call(&c, "GET", crd_url, Value::Null).await;
    let cpb = by_gvk(
        &crds,
        "constraint.edgeplane.io",
        "v1alpha1",
        "ConstraintPolicyBinding",
    );
    assert_eq!(
        cpb["properties"]["spec"]["properties"]["offer"]["type"],
        "string"
    );
    let meta = follow(&crds, &cpb["properties"]["metadata"]);
    assert_eq!(meta["properties"]["name"]["type"], "string");
    // The operations kubectl reads to decide on server-side field validation stay.
    let op = crds["paths"]
        .as_object()
        .expect("paths")
        .values()
        .find_map(|p| p.get("patch"))
        .expect("a patch operation");
    assert!(
        op["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn strict_field_validation_refuses_unknown_fields_of_built_in_kinds() {
    let c = cluster(0).await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "colour": "red"},
                    "data": {"a": "b"}, "bogus": 1});
    let (code, status) = call(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
        cm.clone(),
    )
    .await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(
        status["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"bogus\", unknown field \"metadata.colour\""
    );
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}},
                              "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always", "colour": 1}]}}}});
    let (code, status) = call(
        &c,
        "POST",
        "/apis/apps/v1/namespaces/default/deployments?fieldValidation=Strict",
        dep,
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        status["message"]
            .as_str()
            .expect("text")
            .ends_with("unknown field \"spec.template.spec.containers[0].colour\""),
        "{status}"
    );
    // Known fields only: accepted; without Strict the unknown ones do not refuse the write.
    let ok = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"}, "data": {"a": "b"}});
    assert_eq!(
        call(
            &c,
            "POST",
            "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
            ok
        )
        .await
        .0,
        201
    );
    assert_eq!(
        call(&c, "POST", "/api/v1/namespaces/default/configmaps", cm)
            .await
            .0,
        201
    );
    c.shutdown().await;
}
