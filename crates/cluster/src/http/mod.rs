//! HTTP: request routing and parsing, responses and `Status` errors, and the two ways in:
//! a `tower::Service` that `kube::Client::new` accepts (in process, no sockets), and a
//! plain-HTTP server for kubectl.
//!
//! `request` parses what comes in (query, body, content negotiation), `response` renders
//! what goes out, this module routes, `resource` serves the verbs on one resource,
//! `openapi` the discovery documents, and `transport` carries requests in.

mod openapi;
mod request;
mod resource;
mod response;
mod transport;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, header};
use http_body_util::combinators::UnsyncBoxBody;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::openapi::version;
use self::request::{Target, prefers_protobuf};
use self::response::{error_response, error_response_protobuf, full, json_response};
use crate::api::ApiServer;
use crate::error::ApiError;

pub use transport::{ClusterService, serve};

/// Response body: a whole JSON document, or a stream of watch events.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Interval between watch bookmarks.
    pub bookmark_interval: Duration,
    /// Watch timeout when the client sets none.
    pub default_watch_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bookmark_interval: Duration::from_secs(60),
            default_watch_timeout: Duration::from_secs(1800),
        }
    }
}

/// What the HTTP layer needs: the API server, its settings, and the shutdown signal that
/// ends open watches.
#[derive(Debug, Clone)]
pub struct Handler {
    pub api: Arc<ApiServer>,
    pub config: HttpConfig,
    pub shutdown: CancellationToken,
}

impl Handler {
    /// Answers one request. Never panics; every failure is a `Status`.
    pub async fn handle(&self, req: Request<Bytes>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let protobuf = prefers_protobuf(req.headers());
        let resp = match self.route(req).await {
            Ok(r) => r,
            Err(e) if protobuf => error_response_protobuf(&e),
            Err(e) => error_response(&e),
        };
        tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
        resp
    }

    async fn route(&self, req: Request<Bytes>) -> Result<Response<Body>, ApiError> {
        let segs: Vec<String> = req
            .uri()
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let get = req.method() == Method::GET;
        match segs.as_slice() {
            [] if get => Ok(json_response(
                200,
                &json!({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]}),
            )),
            ["version"] if get => Ok(json_response(200, &version())),
            ["healthz"] | ["livez"] | ["readyz"] if get => {
                let mut r = Response::new(full("ok"));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain"),
                );
                Ok(r)
            }
            ["api"] if get => Ok(json_response(200, &self.api.lock().registry.api_versions())),
            ["apis"] if get => Ok(json_response(
                200,
                &self.api.lock().registry.api_group_list(),
            )),
            ["api", v] if get => self
                .api
                .lock()
                .registry
                .api_resource_list("", v)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::path_not_found),
            ["apis", g] if get => self
                .api
                .lock()
                .registry
                .api_group(g)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::path_not_found),
            ["apis", g, v] if get => self
                .api
                .lock()
                .registry
                .api_resource_list(g, v)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::path_not_found),
            ["openapi", "v3"] if get => Ok(json_response(200, &self.openapi_root())),
            ["openapi", "v3", "api", v] if get => self
                .openapi_group_version("", v)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::path_not_found),
            ["openapi", "v3", "apis", g, v] if get => self
                .openapi_group_version(g, v)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::path_not_found),
            ["api", v, rest @ ..] => {
                let target = self.target("", v, rest)?;
                self.resource(req, target).await
            }
            ["apis", g, v, rest @ ..] => {
                let target = self.target(g, v, rest)?;
                self.resource(req, target).await
            }
            _ => Err(ApiError::path_not_found()),
        }
    }

    fn target(&self, group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
        let (legacy_watch, rest) = match rest {
            ["watch", tail @ ..] => (true, tail),
            other => (false, other),
        };
        let registry = &self.api.lock().registry;
        let find = |plural: &str| {
            registry
                .find(group, version, plural)
                .ok_or_else(ApiError::path_not_found)
        };
        let t = |def, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
            def,
            namespace: ns.map(str::to_string),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
            legacy_watch,
        };
        match rest {
            // /namespaces/<ns>/status|finalize: a subresource of the namespace itself.
            ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => {
                Ok(t(find("namespaces")?, None, Some(ns), Some(sub)))
            }
            ["namespaces", ns, plural, tail @ ..] => {
                let def = find(plural)?;
                if !def.namespaced {
                    return Err(ApiError::path_not_found());
                }
                match tail {
                    [] => Ok(t(def, Some(ns), None, None)),
                    [name] => Ok(t(def, Some(ns), Some(name), None)),
                    [name, sub] => Ok(t(def, Some(ns), Some(name), Some(sub))),
                    _ => Err(ApiError::path_not_found()),
                }
            }
            [plural] => Ok(t(find(plural)?, None, None, None)),
            [plural, name] => {
                let def = find(plural)?;
                if def.namespaced {
                    return Err(ApiError::path_not_found());
                }
                Ok(t(def, None, Some(name), None))
            }
            [plural, name, sub] => {
                let def = find(plural)?;
                if def.namespaced {
                    return Err(ApiError::path_not_found());
                }
                Ok(t(def, None, Some(name), Some(sub)))
            }
            _ => Err(ApiError::path_not_found()),
        }
    }
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..(i + 3).min(s.len())], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
