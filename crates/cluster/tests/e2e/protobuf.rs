//! `application/vnd.kubernetes.protobuf` as client-go's typed clients (kubectl create, run,
//! expose, scale) speak it: protobuf bodies for built-in kinds, protobuf answers when the
//! client asks first for them (objects, lists, `Status` errors, watch frames), 415 and 406
//! where a real API server gives them.

use edgeplane_cluster::protobuf::{self, MEDIA_TYPE};
use http::{Request, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::cluster;

const PROTOBUF_FIRST: &str = "application/vnd.kubernetes.protobuf,application/json";

struct Answer {
    code: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    /// The body as JSON, whichever way it was encoded.
    fn value(&self) -> Value {
        if self.content_type.starts_with(MEDIA_TYPE) {
            protobuf::decode(&self.body).expect("a protobuf document")
        } else {
            serde_json::from_slice(&self.body).expect("a JSON document")
        }
    }
}

async fn call(
    c: &edgeplane_cluster::EmbeddedCluster,
    method: &str,
    uri: &str,
    content_type: &str,
    accept: &str,
    body: Vec<u8>,
) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT, accept)
        .body(kube::client::Body::from(body))
        .expect("request");
    let resp = c.service().oneshot(req).await.expect("infallible");
    let code = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer {
        code,
        content_type,
        body,
    }
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
        },
    })
}

#[tokio::test(start_paused = true)]
async fn protobuf_bodies_create_built_in_objects_and_answers_come_back_in_protobuf() {
    let c = cluster(1).await;
    let body = protobuf::encode(&deployment("web", 0)).expect("encode");
    let created = call(
        &c,
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        MEDIA_TYPE,
        PROTOBUF_FIRST,
        body,
    )
    .await;
    assert_eq!(
        created.code,
        201,
        "{:?}",
        String::from_utf8_lossy(&created.body)
    );
    assert_eq!(created.content_type, MEDIA_TYPE);
    let d = created.value();
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["metadata"]["name"], "web");
    assert!(d["metadata"]["uid"].is_string());
    assert_eq!(d["spec"]["replicas"], 0, "an explicit zero survives");
    assert_eq!(
        d["spec"]["progressDeadlineSeconds"], 600,
        "defaulted as a JSON create is"
    );

    // The same object in JSON for a JSON client.
    let got = call(
        &c,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/web",
        "",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(got.content_type, "application/json");
    assert_eq!(got.value()["metadata"]["uid"], d["metadata"]["uid"]);

    // kubectl scale: a protobuf Scale to the scale subresource.
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                       "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 3}});
    let scaled = call(
        &c,
        "PUT",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        MEDIA_TYPE,
        PROTOBUF_FIRST,
        protobuf::encode(&scale).expect("encode"),
    )
    .await;
    assert_eq!(scaled.code, 200, "{:?}", scaled.value());
    assert_eq!(scaled.value()["kind"], "Scale");
    assert_eq!(scaled.value()["spec"]["replicas"], 3);

    // Lists.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}});
    let made = call(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        MEDIA_TYPE,
        PROTOBUF_FIRST,
        protobuf::encode(&cm).expect("encode"),
    )
    .await;
    assert_eq!(made.code, 201);
    let list = call(
        &c,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "",
        PROTOBUF_FIRST,
        vec![],
    )
    .await;
    assert_eq!(list.content_type, MEDIA_TYPE);
    let list = list.value();
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"][0]["metadata"]["name"], "c");
    assert_eq!(list["items"][0]["data"], json!({"a": "b"}));

    // Errors are Status objects in protobuf for a client that prefers it.
    let missing = call(
        &c,
        "GET",
        "/api/v1/namespaces/default/configmaps/nope",
        "",
        PROTOBUF_FIRST,
        vec![],
    )
    .await;
    assert_eq!(missing.code, 404);
    assert_eq!(missing.content_type, MEDIA_TYPE);
    let status = missing.value();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["message"], "configmaps \"nope\" not found");

    // A Table is still JSON even when protobuf comes first for objects.
    let table = call(&c, "GET", "/api/v1/namespaces/default/configmaps", "",
        "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io,application/json", vec![]).await;
    assert_eq!(table.value()["kind"], "Table");
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn protobuf_watch_frames_each_event() {
    let c = cluster(1).await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}, "data": {"a": "b"}});
    call(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        "application/json",
        serde_json::to_vec(&cm).expect("json"),
    )
    .await;
    // From now (no resourceVersion): the current state as ADDED, then the stream ends at
    // its timeout (virtual time).
    let watch = call(
        &c,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=5",
        "",
        PROTOBUF_FIRST,
        vec![],
    )
    .await;
    assert_eq!(
        watch.content_type,
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let (events, rest) = protobuf::read_watch_frames(&watch.body).expect("frames");
    assert!(rest.is_empty(), "whole frames only");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["kind"], "ConfigMap");
    assert_eq!(events[0]["object"]["metadata"]["name"], "w");
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn media_types_a_real_server_refuses_are_refused() {
    let c = cluster(0).await;
    c.apply_objects(vec![
        serde_json::to_value(edgeplane_api::crdgen::all()[0].clone()).expect("crd"),
    ])
    .await
    .expect("crd");
    let crd = &edgeplane_api::crdgen::all()[0];
    let (group, plural) = (crd.spec.group.clone(), crd.spec.names.plural.clone());
    let version = crd.spec.versions[0].name.clone();

    // A protobuf body for a custom resource: 415, naming what it takes.
    let body = protobuf::encode(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
    )
    .expect("encode");
    let uri = format!("/apis/{group}/{version}/namespaces/default/{plural}");
    let refused = call(&c, "POST", &uri, MEDIA_TYPE, "application/json", body).await;
    assert_eq!(refused.code, 415);
    assert_eq!(
        refused.value()["message"],
        format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got \"{MEDIA_TYPE}\")"
        )
    );
    // Nothing but protobuf accepted for a custom resource: 406.
    let not_acceptable = call(&c, "GET", &uri, "", MEDIA_TYPE, vec![]).await;
    assert_eq!(not_acceptable.code, 406, "{:?}", not_acceptable.value());

    // A write body in an unknown media type lists the write types, not the patch types.
    let text = call(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "text/plain",
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(text.code, 415);
    assert_eq!(
        text.value()["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got \"text/plain\")"
    );

    // Broken protobuf is a 400 Status, never a crash.
    for body in [b"k8s\0\xff\xff".to_vec(), b"{}".to_vec(), Vec::new()] {
        let bad = call(
            &c,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            MEDIA_TYPE,
            "application/json",
            body,
        )
        .await;
        assert_eq!(bad.code, 400);
        assert_eq!(bad.value()["reason"], "BadRequest");
    }
    // A kind the envelope names that the path does not serve is refused too.
    let pod = protobuf::encode(
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .expect("encode");
    let wrong = call(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        MEDIA_TYPE,
        "application/json",
        pod,
    )
    .await;
    assert_eq!(wrong.code, 400, "{:?}", wrong.value());
    c.shutdown().await;
}
