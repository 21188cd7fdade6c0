//! The cluster over real HTTP: a kube client configured with a URL, as kubectl would be.

use std::time::Duration;

use edgeplane_cluster::{ClusterConfig, EmbeddedCluster};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};

#[tokio::test]
async fn kube_client_over_http() {
    let c = EmbeddedCluster::start(ClusterConfig::default().with_nodes("n", 2)).await;
    let addr = c
        .serve("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    let config = kube::Config::new(format!("http://{addr}").parse().expect("url"));
    let client = kube::Client::try_from(config).expect("client");
    let nodes: Api<Node> = Api::all(client.clone());
    let names: Vec<String> = nodes
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert_eq!(names, ["n-0", "n-1"]);
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let rv = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    pods.create(&PostParams::default(), &crate::support::pod("web"))
        .await
        .expect("create");
    let mut running = false;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
        if let WatchEvent::Modified(p) = ev.expect("event")
            && p.status.and_then(|s| s.phase).as_deref() == Some("Running")
        {
            running = true;
            break;
        }
    }
    assert!(running, "the pod's progress arrives over the HTTP watch");
    // Malformed input over HTTP is a Status too.
    let err = pods.get("Not_A_Name!").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
    c.shutdown().await;
}

/// Sends `request` (raw HTTP/1.1) and reads until the server closes the connection;
/// `None` when it has not closed it after a minute (a hang turned into a failure).
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer (and close) before the whole body is sent: that is the point.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await;
    read.is_ok()
        .then(|| String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_body_over_3_mib_is_refused_with_413_and_an_object_over_its_size_with_422() {
    let c = EmbeddedCluster::start(ClusterConfig::default()).await;
    let addr = c
        .serve("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    let data = "x".repeat(3 * 1024 * 1024);
    let body = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"a":"{data}"}}}}"#
    );
    let head = format!(
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let answer = exchange(addr, &[head.as_bytes(), body.as_bytes()].concat())
        .await
        .expect("the server never closed the connection");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.300}");
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let status: serde_json::Value = serde_json::from_str(json).expect("a Status object");
    assert_eq!(
        status,
        serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Request entity too large: limit is 3145728",
            "reason": "RequestEntityTooLarge", "code": 413,
        })
    );
    // Nothing was created; a body under the limit still is.
    let small = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"small"}}"#;
    let head = format!(
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        small.len()
    );
    let answer = exchange(addr, &[head.as_bytes(), small.as_bytes()].concat())
        .await
        .expect("the server never closed the connection");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer:.300}");
    // Under the body limit but over the size an object may have: 422, as the API server's
    // validation answers it.
    let notes = "x".repeat(300 * 1024);
    let annotated = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"noted","annotations":{{"a":"{notes}"}}}}}}"#
    );
    let head = format!(
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        annotated.len()
    );
    let answer = exchange(addr, &[head.as_bytes(), annotated.as_bytes()].concat())
        .await
        .expect("the server never closed the connection");
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer:.300}");
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let status: serde_json::Value = serde_json::from_str(json).expect("a Status object");
    assert_eq!(
        status["message"],
        "ConfigMap \"noted\" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes"
    );
    c.shutdown().await;
}

#[tokio::test]
async fn a_client_that_stalls_in_its_headers_is_disconnected() {
    let c = EmbeddedCluster::start(ClusterConfig::default()).await;
    let limits = edgeplane_serve::HttpLimits {
        header_read_timeout: Duration::from_millis(200),
        ..edgeplane_serve::HttpLimits::default()
    };
    let addr = c
        .serve_with_limits("127.0.0.1:0".parse().expect("addr"), limits)
        .await
        .expect("serve");
    // Headers begun and never finished: the server closes the connection without an
    // answer (the outer timeout in `exchange` only turns a hang into a failure).
    let answer = exchange(addr, b"GET /api/v1/namespaces HTTP/1.1\r\nhost: x\r\n").await;
    assert_eq!(
        answer.as_deref(),
        Some(""),
        "the stalled connection was kept open"
    );
    c.shutdown().await;
}
