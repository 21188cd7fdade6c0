//! Malformed requests get the status codes a real API server returns, as `Status` objects,
//! and leave the store exactly as it was.

use edgeplane_cluster::{ClusterConfig, EmbeddedCluster};
use http::Request;
use kube::client::Body;
use serde_json::{Value, json};

async fn call(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(Body::from(body.as_bytes().to_vec()))
        .expect("request");
    let resp = client.send(req).await.expect("response");
    let code = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Every object in the store, for before/after comparisons.
fn snapshot(c: &EmbeddedCluster) -> (u64, Vec<Value>) {
    let st = c.api().lock();
    let mut all = Vec::new();
    let mut storages = st.store.storages();
    storages.sort();
    for s in storages {
        all.extend(st.store.range(&s, None, None).map(|o| o.value()));
    }
    (st.store.current_rv(), all)
}

#[tokio::test(start_paused = true)]
async fn malformed_requests_get_real_status_codes_and_change_nothing() {
    let c = EmbeddedCluster::start(ClusterConfig::default()).await;
    let crds = edgeplane_api::crdgen::all()
        .into_iter()
        .map(|c| serde_json::to_value(c).expect("json"));
    c.apply_objects(crds).await.expect("crds");
    c.load_yaml(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i}]}\n",
    )
    .await
    .expect("load");
    let client = c.client();
    // Let the controllers settle (the scheduler reports the pod unschedulable: no nodes).
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let before = snapshot(&c);
    let stale_rv = "1";
    let cm = |extra: Value| {
        let mut v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm2"}});
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                m.insert(k.clone(), x.clone());
            }
        }
        v.to_string()
    };
    let json = "application/json";
    let long_selector = format!("/api/v1/pods?labelSelector=a%3D{}", "x".repeat(64));
    let cases: Vec<(&str, &str, &str, &str, String, u16, &str)> = vec![
        ("bad JSON", "POST", "/api/v1/namespaces/default/configmaps", json, "{not json".into(), 400, "BadRequest"),
        ("JSON null", "POST", "/api/v1/namespaces/default/configmaps", json, "null".into(), 400, "BadRequest"),
        ("unknown resource", "POST", "/api/v1/namespaces/default/widgets", json, cm(json!({})), 404, "NotFound"),
        ("unknown group", "GET", "/apis/nope.example.io/v1/things", json, String::new(), 404, "NotFound"),
        ("unknown subresource", "GET", "/api/v1/namespaces/default/pods/p/logs", json, String::new(), 404, "NotFound"),
        ("namespace mismatch", "POST", "/api/v1/namespaces/default/configmaps", json,
            cm(json!({"metadata": {"name": "cm2", "namespace": "kube-system"}})), 400, "BadRequest"),
        ("apiVersion mismatch", "POST", "/api/v1/namespaces/default/configmaps", json,
            cm(json!({"apiVersion": "apps/v1"})), 400, "BadRequest"),
        ("missing kind", "POST", "/api/v1/namespaces/default/configmaps", json,
            json!({"apiVersion": "v1", "metadata": {"name": "x"}}).to_string(), 400, "BadRequest"),
        ("resourceVersion on create", "POST", "/api/v1/namespaces/default/configmaps", json,
            cm(json!({"metadata": {"name": "cm2", "resourceVersion": "5"}})), 400, "BadRequest"),
        ("name mismatch on PUT", "PUT", "/api/v1/namespaces/default/configmaps/cm", json,
            cm(json!({"metadata": {"name": "other"}})), 400, "BadRequest"),
        ("stale resourceVersion", "PUT", "/api/v1/namespaces/default/configmaps/cm", json,
            cm(json!({"metadata": {"name": "cm", "resourceVersion": stale_rv}, "data": {"a": "c"}})), 409, "Conflict"),
        ("already exists", "POST", "/api/v1/namespaces/default/configmaps", json,
            cm(json!({"metadata": {"name": "cm"}})), 409, "AlreadyExists"),
        ("non-numeric resourceVersion", "GET", "/api/v1/namespaces/default/configmaps?resourceVersion=abc", json, String::new(), 400, "BadRequest"),
        ("non-numeric watch resourceVersion", "GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=abc", json, String::new(), 400, "BadRequest"),
        ("bad limit", "GET", "/api/v1/namespaces/default/configmaps?limit=many", json, String::new(), 400, "BadRequest"),
        ("bad label selector", "GET", "/api/v1/pods?labelSelector=a%20in%20b", json, String::new(), 400, "BadRequest"),
        ("unsupported patch type", "PATCH", "/api/v1/namespaces/default/configmaps/cm", "text/plain", "{}".into(), 415, "UnsupportedMediaType"),
        ("failed JSON patch test", "PATCH", "/api/v1/namespaces/default/configmaps/cm", "application/json-patch+json",
            json!([{"op": "test", "path": "/data/a", "value": "zzz"}, {"op": "replace", "path": "/data/a", "value": "q"}]).to_string(), 422, "Invalid"),
        ("JSON patch not a list", "PATCH", "/api/v1/namespaces/default/configmaps/cm", "application/json-patch+json", "{}".into(), 400, "BadRequest"),
        ("text/plain body", "POST", "/api/v1/namespaces/default/configmaps", "text/plain", cm(json!({})), 415, "UnsupportedMediaType"),
        ("unparsable quantity", "POST", "/api/v1/namespaces/default/pods", json,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lots"},
                   "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "lots"}}}]}}).to_string(), 400, "BadRequest"),
        ("negative quantity", "POST", "/api/v1/namespaces/default/pods", json,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "minus"},
                   "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "-1"}}}]}}).to_string(), 422, "Invalid"),
        ("over-long label value", "POST", "/api/v1/namespaces/default/configmaps", json,
            cm(json!({"metadata": {"name": "cm2", "labels": {"a": "x".repeat(64)}}})), 422, "Invalid"),
        ("over-long label value in a selector", "GET", &long_selector, json, String::new(), 400, "BadRequest"),
        ("bad resourceVersionMatch", "GET", "/api/v1/namespaces/default/configmaps?resourceVersionMatch=Bogus", json, String::new(), 422, "Invalid"),
        ("bad fieldValidation", "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Bogus", json, cm(json!({})), 422, "Invalid"),
        ("uid changed on PUT", "PUT", "/api/v1/namespaces/default/configmaps/cm", json,
            cm(json!({"metadata": {"name": "cm", "uid": "not-the-uid"}, "data": {"a": "c"}})), 409, "Conflict"),
        ("uid changed by a patch", "PATCH", "/api/v1/namespaces/default/configmaps/cm", "application/merge-patch+json",
            json!({"metadata": {"uid": "not-the-uid"}}).to_string(), 422, "Invalid"),
        ("merge patch not an object", "PATCH", "/api/v1/namespaces/default/configmaps/cm", "application/merge-patch+json", "[1]".into(), 400, "BadRequest"),
        ("bad strategic directive", "PATCH", "/api/v1/namespaces/default/configmaps/cm", "application/strategic-merge-patch+json",
            json!({"$patch": "explode"}).to_string(), 400, "BadRequest"),
        ("patch renames", "PATCH", "/api/v1/namespaces/default/configmaps/cm", "application/merge-patch+json",
            json!({"metadata": {"name": "renamed"}}).to_string(), 422, "Invalid"),
        ("patch of a missing object", "PATCH", "/api/v1/namespaces/default/configmaps/missing", "application/merge-patch+json", "{}".into(), 404, "NotFound"),
        ("apply without a field manager", "PATCH", "/api/v1/namespaces/default/configmaps/cm", "application/apply-patch+yaml",
            cm(json!({"metadata": {"name": "cm"}})), 400, "BadRequest"),
        ("invalid pod name", "POST", "/api/v1/namespaces/default/pods", json,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}).to_string(), 422, "Invalid"),
        ("pod without containers", "POST", "/api/v1/namespaces/default/pods", json,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "empty"}, "spec": {}}).to_string(), 422, "Invalid"),
        ("wrongly typed field", "POST", "/api/v1/namespaces/default/pods", json,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "typed"}, "spec": {"containers": "c"}}).to_string(), 400, "BadRequest"),
        ("numeric label", "POST", "/api/v1/namespaces/default/configmaps", json,
            cm(json!({"metadata": {"name": "cm2", "labels": {"a": 1}}})), 400, "BadRequest"),
        ("pod spec change", "PATCH", "/api/v1/namespaces/default/pods/p", "application/merge-patch+json",
            json!({"spec": {"restartPolicy": "Never"}}).to_string(), 422, "Invalid"),
        ("gate added", "PATCH", "/api/v1/namespaces/default/pods/p", "application/merge-patch+json",
            json!({"spec": {"schedulingGates": [{"name": "late"}]}}).to_string(), 422, "Invalid"),
        ("eviction name mismatch", "POST", "/api/v1/namespaces/default/pods/p/eviction", json,
            json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}}).to_string(), 400, "BadRequest"),
        ("eviction of a missing pod", "POST", "/api/v1/namespaces/default/pods/ghost/eviction", json,
            json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "ghost"}}).to_string(), 404, "NotFound"),
        ("binding without a target", "POST", "/api/v1/namespaces/default/pods/p/binding", json,
            json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}}).to_string(), 422, "Invalid"),
        ("bad delete options", "DELETE", "/api/v1/namespaces/default/configmaps/cm", json, "{oops".into(), 400, "BadRequest"),
        ("bad propagation policy", "DELETE", "/api/v1/namespaces/default/configmaps/cm?propagationPolicy=Sideways", json, String::new(), 400, "BadRequest"),
        ("stale delete precondition", "DELETE", "/api/v1/namespaces/default/configmaps/cm", json,
            json!({"preconditions": {"resourceVersion": stale_rv}}).to_string(), 409, "Conflict"),
        ("PUT on a collection", "PUT", "/api/v1/namespaces/default/configmaps", json, cm(json!({})), 405, "MethodNotAllowed"),
        ("schema violation", "POST", "/apis/constraint.edgeplane.io/v1alpha1/namespaces/default/constraintpolicies", json,
            json!({"apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicy", "metadata": {"name": "cp"},
                   "spec": {"rules": []}}).to_string(), 422, "Invalid"),
        ("unknown field, strict", "POST", "/apis/constraint.edgeplane.io/v1alpha1/namespaces/default/constraintpolicies?fieldValidation=Strict", json,
            json!({"apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicy", "metadata": {"name": "cp"},
                   "spec": {"rules": [{"name": "latency", "request": "5ms"}], "bogus": 1}}).to_string(), 400, "BadRequest"),
        ("unversioned custom resource update", "PUT", "/apis/constraint.edgeplane.io/v1alpha1/namespaces/default/constraintpolicies/cp", json,
            json!({"apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicy", "metadata": {"name": "cp"}}).to_string(), 404, "NotFound"),
        ("invalid CRD", "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json,
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "x.y"},
                   "spec": {"group": "y", "scope": "Galactic", "names": {"plural": "x", "kind": "X"}, "versions": []}}).to_string(), 422, "Invalid"),
        ("dry run create", "POST", "/api/v1/namespaces/default/configmaps?dryRun=All", json, cm(json!({})), 201, ""),
    ];
    for (what, method, path, ct, body, code, reason) in &cases {
        let (got, status) = call(&client, method, path, ct, body).await;
        assert_eq!(got, *code, "{what}: {status}");
        if *code >= 400 {
            assert_eq!(status["kind"], "Status", "{what}: {status}");
            assert_eq!(status["status"], "Failure", "{what}");
            assert_eq!(status["code"], *code, "{what}");
            assert_eq!(status["reason"], *reason, "{what}: {status}");
            assert!(
                status["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{what}"
            );
        }
    }
    let after = snapshot(&c);
    assert_eq!(before.0, after.0, "no request changed the resourceVersion");
    assert_eq!(before.1, after.1, "no request changed an object");
}

#[tokio::test(start_paused = true)]
async fn discovery_documents() {
    let c = EmbeddedCluster::start(ClusterConfig::default()).await;
    let client = c.client();
    let (code, api) = call(&client, "GET", "/api", "", "").await;
    assert_eq!((code, api["versions"][0].as_str()), (200, Some("v1")));
    let (_, groups) = call(&client, "GET", "/apis", "", "").await;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for g in [
        "apps",
        "coordination.k8s.io",
        "events.k8s.io",
        "policy",
        "apiextensions.k8s.io",
    ] {
        assert!(names.contains(&g), "{g} in {names:?}");
    }
    assert!(!names.contains(&"constraint.edgeplane.io"));
    let crds = edgeplane_api::crdgen::all()
        .into_iter()
        .map(|c| serde_json::to_value(c).expect("json"));
    c.apply_objects(crds).await.expect("crds");
    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .expect("kube discovery");
    let (ar, caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.kind == "ConstraintPolicyBinding")
        .expect("CRD kinds are discovered");
    assert_eq!(ar.plural, "constraintpolicybindings");
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));
    let (_, v1) = call(&client, "GET", "/api/v1", "", "").await;
    let pod = v1["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "pods")
        .expect("pods");
    assert_eq!(pod["shortNames"], json!(["po"]));
}
