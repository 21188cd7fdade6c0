//! The embedded API server's request handling, patches included. The input is a request
//! in text:
//!
//! ```text
//! PATCH /api/v1/namespaces/default/pods/web
//! application/strategic-merge-patch+json
//!
//! {"metadata": {"labels": {"tier": "front"}}}
//! ```
//!
//! (method and path, the Content-Type, an empty line, the body), sent to a fresh API
//! server that holds one pod `default/web` and one ConfigMap `default/settings`.
//!
//! Every request gets an answer with a status code, never a panic; an error is a `Status`
//! object; a write that succeeded is what a read of the object then returns (same
//! resourceVersion), and every list still reads back.

use std::sync::Arc;

use bytes::Bytes;
use edgeplane_cluster::VirtualClock;
use edgeplane_cluster::api::ApiServer;
use edgeplane_cluster::http::{Handler, HttpConfig};
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A request as the input spells it.
struct Input<'a> {
    method: Method,
    path: &'a str,
    content_type: &'a str,
    body: &'a [u8],
}

fn parse(data: &[u8]) -> Option<Input<'_>> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &data[data.len()..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let (method, path) = lines.next()?.split_once(' ')?;
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    // Watches stream until the server shuts down; they have their own tests.
    if !path.starts_with('/') || path.contains("watch") {
        return None;
    }
    Some(Input {
        method,
        path,
        content_type: lines.next().unwrap_or("application/json"),
        body,
    })
}

pub fn run(data: &[u8]) {
    let Some(input) = parse(data) else {
        return;
    };
    crate::block_on(exercise(input));
}

async fn exercise(input: Input<'_>) {
    let handler = handler().await;
    let mut builder = Request::builder()
        .method(input.method.clone())
        .uri(input.path);
    if !input.content_type.is_empty() {
        builder = builder.header(header::CONTENT_TYPE, input.content_type);
    }
    let Ok(request) = builder.body(Bytes::copy_from_slice(input.body)) else {
        return; // http refuses the URI or header: it never reaches a server
    };
    let (status, body) = send(&handler, request).await;
    assert!(
        (200..600).contains(&status.as_u16()),
        "status {status} for {} {}",
        input.method,
        input.path
    );
    let answer: Option<Value> = serde_json::from_slice(&body).ok();
    if !status.is_success() {
        let answer = answer.unwrap_or_else(|| {
            panic!(
                "a {status} answer that is not JSON: {:?}",
                String::from_utf8_lossy(&body)
            )
        });
        assert_eq!(
            answer["kind"], "Status",
            "a {status} answer that is not a Status: {answer}"
        );
        assert_eq!(
            answer["code"],
            status.as_u16(),
            "the Status's code differs: {answer}"
        );
    } else if let Some(answer) = &answer {
        read_back(&handler, &input, answer).await;
    }
    for list in ["/api/v1/pods", "/api/v1/configmaps", "/api/v1/namespaces"] {
        let (status, body) = send(&handler, get(list)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{list} after {} {}",
            input.method,
            input.path
        );
        let list: Value = serde_json::from_slice(&body).expect("a list is JSON");
        assert!(list["items"].is_array(), "{list}");
    }
}

/// A write that succeeded is what a read returns: same object, same resourceVersion.
async fn read_back(handler: &Handler, input: &Input<'_>, answer: &Value) {
    let version = answer["metadata"]["resourceVersion"].as_str();
    let (Some(version), Some(name)) = (version, answer["metadata"]["name"].as_str()) else {
        return;
    };
    let path = input.path.split('?').next().unwrap_or_default();
    let path = match input.method {
        Method::POST => format!("{}/{name}", path.trim_end_matches('/')),
        Method::PUT | Method::PATCH => path.to_string(),
        _ => return,
    };
    // Subresources (status, scale, eviction, binding) answer with other objects.
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let plain = matches!(
        segments.as_slice(),
        ["api", _, "namespaces", _, _, _]
            | ["apis", _, _, "namespaces", _, _, _]
            | ["api", _, _, _]
            | ["apis", _, _, _, _]
    );
    if !plain || answer["kind"] == "Status" {
        return;
    }
    let (status, body) = send(handler, get(&path)).await;
    if status == StatusCode::NOT_FOUND && answer["metadata"]["deletionTimestamp"].is_string() {
        return; // finalized and gone
    }
    assert_eq!(
        status,
        StatusCode::OK,
        "GET {path} after {} {}",
        input.method,
        input.path
    );
    let stored: Value = serde_json::from_slice(&body).expect("a read is JSON");
    assert_eq!(
        stored["metadata"]["resourceVersion"], version,
        "{} {} answered a version the store does not hold",
        input.method, input.path
    );
}

fn get(path: &str) -> Request<Bytes> {
    Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(Bytes::new())
        .expect("a fixed request builds")
}

async fn send(handler: &Handler, request: Request<Bytes>) -> (StatusCode, Bytes) {
    let response = handler.handle(request).await;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, body)
}

async fn handler() -> Handler {
    let clock = VirtualClock::new(jiff::Timestamp::UNIX_EPOCH);
    let handler = Handler {
        api: Arc::new(ApiServer::new(clock, 100, 1)),
        config: HttpConfig::default(),
        shutdown: CancellationToken::new(),
    };
    let seeds = [
        (
            "/api/v1/namespaces/default/pods",
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "web", "labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "c", "image": "nginx",
                            "resources": {"requests": {"cpu": "100m"}}}]}}),
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "settings"}, "data": {"a": "1"}}),
        ),
    ];
    for (path, object) in seeds {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Bytes::from(object.to_string()))
            .expect("a fixed request builds");
        let (status, _) = send(&handler, request).await;
        assert_eq!(status, StatusCode::CREATED, "seeding {path}");
    }
    handler
}
