//! HTTP: request routing and parsing, responses and `Status` errors, and the two ways in:
//! a `tower::Service` that `kube::Client::new` accepts (in process, no sockets), and a
//! plain-HTTP server for kubectl.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::{
    ApiServer, DeleteOptions, Deleted, ListOptions, PatchType, Subresource, WriteOptions,
    parse_propagation, parse_rv, served_natively, served_value, to_served,
};
use crate::error::{ApiError, success_status};
use crate::object;
use crate::resources::{Builtin, ResourceDef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::table::{self, IncludeObject};
use crate::watch::{self, Format, WatchSpec};

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

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    raw_json(code, bytes)
}

fn raw_json(code: u16, bytes: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.to_status())
}

/// Query parameters of a resource request.
#[derive(Debug, Default)]
struct Query {
    watch: bool,
    label_selector: Option<String>,
    field_selector: Option<String>,
    limit: Option<usize>,
    continue_token: Option<String>,
    resource_version: Option<String>,
    resource_version_match: Option<String>,
    allow_watch_bookmarks: bool,
    timeout_seconds: Option<u64>,
    send_initial_events: bool,
    field_manager: Option<String>,
    force: bool,
    dry_run: bool,
    field_validation: Option<String>,
    propagation_policy: Option<String>,
    grace_period_seconds: Option<i64>,
    include_object: Option<String>,
}

fn parse_bool(k: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" | "True" => Ok(true),
        "false" | "0" | "False" | "" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "invalid boolean value for {k}: {v:?}"
        ))),
    }
}

fn parse_query(q: Option<&str>) -> Result<Query, ApiError> {
    let mut out = Query::default();
    let Some(q) = q else {
        return Ok(out);
    };
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "watch" => out.watch = parse_bool("watch", &v)?,
            "labelSelector" => out.label_selector = Some(v),
            "fieldSelector" => out.field_selector = Some(v),
            "limit" => {
                out.limit = Some(v.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "limit: Invalid value: {v:?}: must be an integer"
                    ))
                })?)
            }
            "continue" => out.continue_token = Some(v),
            "resourceVersion" => out.resource_version = Some(v),
            "resourceVersionMatch" => out.resource_version_match = Some(v),
            "allowWatchBookmarks" => {
                out.allow_watch_bookmarks = parse_bool("allowWatchBookmarks", &v)?
            }
            "timeoutSeconds" | "timeout" if k == "timeoutSeconds" => {
                out.timeout_seconds = Some(v.parse().map_err(|_| {
                    ApiError::bad_request(format!("timeoutSeconds: Invalid value: {v:?}"))
                })?)
            }
            "sendInitialEvents" => out.send_initial_events = parse_bool("sendInitialEvents", &v)?,
            "fieldManager" => out.field_manager = Some(v),
            "force" => out.force = parse_bool("force", &v)?,
            "dryRun" => {
                if v != "All" {
                    return Err(ApiError::bad_request(format!(
                        "dryRun: Unsupported value: {v:?}: supported values: \"All\""
                    )));
                }
                out.dry_run = true
            }
            "fieldValidation" => out.field_validation = Some(v),
            "propagationPolicy" => out.propagation_policy = Some(v),
            "gracePeriodSeconds" => {
                out.grace_period_seconds = Some(v.parse().map_err(|_| {
                    ApiError::bad_request(format!("gracePeriodSeconds: Invalid value: {v:?}"))
                })?)
            }
            "includeObject" => out.include_object = Some(v),
            _ => {}
        }
    }
    Ok(out)
}

impl Query {
    fn list_options(&self) -> Result<ListOptions, ApiError> {
        let labels = match &self.label_selector {
            Some(s) => LabelSelector::parse(s)
                .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?,
            None => LabelSelector::everything(),
        };
        let fields = match &self.field_selector {
            Some(s) => FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => FieldSelector::default(),
        };
        Ok(ListOptions {
            labels,
            fields,
            limit: self.limit,
            continue_token: self.continue_token.clone(),
            resource_version: self.resource_version.clone(),
            version_match: self.resource_version_match.clone(),
        })
    }

    fn write_options(&self, headers: &HeaderMap) -> WriteOptions {
        let manager = self.field_manager.clone().or_else(|| {
            headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| {
                    ua.split('/')
                        .next()
                        .unwrap_or(ua)
                        .chars()
                        .take(128)
                        .collect()
                })
        });
        WriteOptions {
            dry_run: self.dry_run,
            field_manager: manager,
            strict: self.field_validation.as_deref() == Some("Strict"),
        }
    }

    fn delete_options(&self, body: &[u8]) -> Result<DeleteOptions, ApiError> {
        let mut opts = if body.iter().all(u8::is_ascii_whitespace) {
            DeleteOptions::default()
        } else {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
            DeleteOptions::from_value(&v)?
        };
        if let Some(g) = self.grace_period_seconds {
            opts.grace_period_seconds = Some(g);
        }
        if let Some(p) = &self.propagation_policy {
            opts.propagation = Some(parse_propagation(p)?);
        }
        opts.dry_run |= self.dry_run;
        Ok(opts)
    }
}

/// How the client wants objects rendered.
fn negotiate(headers: &HeaderMap, include: Option<&str>) -> Result<Format, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let include = match include {
        Some(s) => IncludeObject::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!("includeObject: Unsupported value: {s:?}"))
        })?,
        None => IncludeObject::Metadata,
    };
    for range in accept.split(',') {
        let r = range.trim();
        if r.contains("as=Table") {
            return Ok(Format::Table(include));
        }
        if r.contains("as=PartialObjectMetadata") {
            return Ok(Format::Metadata);
        }
        if r.starts_with("application/json")
            || r.starts_with("*/*")
            || r.starts_with("application/*")
        {
            return Ok(Format::Object);
        }
    }
    Ok(Format::Object)
}

/// Serializes an object without `apiVersion` and `kind` (items of built-in lists).
struct WithoutTypeMeta<'a>(&'a Value);

impl Serialize for WithoutTypeMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            Value::Object(m) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in m {
                    if k != "apiVersion" && k != "kind" {
                        map.serialize_entry(k, v)?;
                    }
                }
                map.end()
            }
            other => other.serialize(s),
        }
    }
}

fn list_meta(rv: u64, continue_token: &Option<String>, remaining: Option<u64>) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        meta["remainingItemCount"] = json!(r);
    }
    meta
}

/// Items of a list response: as stored, or already in their served shape.
enum Items {
    Stored(Vec<Arc<crate::store::Stored>>),
    Values(Vec<Arc<Value>>),
}

/// A resource request, parsed from the path.
#[derive(Debug)]
struct Target {
    def: Arc<ResourceDef>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    legacy_watch: bool,
}

impl Handler {
    /// Answers one request. Never panics; every failure is a `Status`.
    pub async fn handle(&self, req: Request<Bytes>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let resp = match self.route(req).await {
            Ok(r) => r,
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

    /// `GET /openapi/v3`: one document per group version.
    fn openapi_root(&self) -> Value {
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

    /// A minimal OpenAPI v3 document for a group version: the PATCH operations and their
    /// query parameters, which is what kubectl reads to decide on server-side field
    /// validation. Schemas are not published (kubectl falls back to its built-in types).
    fn openapi_group_version(&self, group: &str, version: &str) -> Option<Value> {
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
            "components": {"schemas": {}},
        }))
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

    async fn resource(&self, req: Request<Bytes>, t: Target) -> Result<Response<Body>, ApiError> {
        let (parts, body) = req.into_parts();
        let q = parse_query(parts.uri.query())?;
        let headers = &parts.headers;
        let format = negotiate(headers, q.include_object.as_deref())?;
        let def = t.def.clone();
        let ns = t.namespace.as_deref();
        let sub = match t.subresource.as_deref() {
            None => None,
            Some(s) => {
                let known = match s {
                    "status" => def.status_subresource,
                    "scale" => def.scale.is_some(),
                    "binding" | "eviction" => def.builtin == Some(Builtin::Pod),
                    "finalize" => def.builtin == Some(Builtin::Namespace),
                    _ => false,
                };
                if !known {
                    return Err(ApiError::path_not_found());
                }
                Some(s)
            }
        };
        let method = parts.method.clone();
        let watch = q.watch || t.legacy_watch;
        match (&method, t.name.as_deref(), sub) {
            (&Method::GET, _, None) if watch => self.watch(&t, &q, format),
            (&Method::GET, None, None) => {
                let opts = q.list_options()?;
                let result = self.api.lock().list(&def, ns, &opts)?;
                let meta = list_meta(
                    result.resource_version,
                    &result.continue_token,
                    result.remaining,
                );
                Ok(self.list_response(&def, Items::Stored(result.items), meta, format))
            }
            (&Method::GET, Some(name), None | Some("status")) => {
                let obj = self.api.lock().get(&def, ns, name)?;
                Ok(self.object_response(200, &def, &to_served(&def, &obj), format))
            }
            (&Method::GET, Some(name), Some("scale")) => Ok(json_response(
                200,
                &self.api.lock().get_scale(&def, ns, name)?,
            )),
            (&Method::POST, None, None) => {
                let obj = decode_body(headers, &body)?;
                let created = self
                    .api
                    .lock()
                    .create(&def, ns, obj, &q.write_options(headers))?;
                Ok(self.object_response(201, &def, &to_served(&def, &created), format))
            }
            (&Method::POST, Some(name), Some("binding")) => {
                let b = decode_body(headers, &body)?;
                self.api
                    .lock()
                    .bind(ns.unwrap_or(""), name, &b, &q.write_options(headers))?;
                Ok(json_response(201, &success_status(201, None)))
            }
            (&Method::POST, Some(name), Some("eviction")) => {
                let e = decode_body(headers, &body)?;
                self.api.lock().evict(ns.unwrap_or(""), name, &e)?;
                Ok(json_response(201, &success_status(201, None)))
            }
            (&Method::PUT, Some(name), None | Some("status") | Some("finalize")) => {
                let obj = decode_body(headers, &body)?;
                let which = if sub == Some("status") {
                    Subresource::Status
                } else {
                    Subresource::Main
                };
                let updated = self.api.lock().update(
                    &def,
                    ns,
                    name,
                    obj,
                    which,
                    &q.write_options(headers),
                )?;
                Ok(self.object_response(200, &def, &to_served(&def, &updated), format))
            }
            (&Method::PUT, Some(name), Some("scale")) => {
                let scale = decode_body(headers, &body)?;
                let out =
                    self.api
                        .lock()
                        .set_scale(&def, ns, name, &scale, &q.write_options(headers))?;
                Ok(json_response(200, &out))
            }
            (&Method::PATCH, Some(name), which) => {
                let ct = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let mut ptype = PatchType::from_content_type(ct)
                    .ok_or_else(|| ApiError::unsupported_media_type(ct))?;
                if let PatchType::Apply { force } = &mut ptype {
                    *force = q.force;
                }
                let patch = decode_patch(&body, ptype)?;
                let opts = q.write_options(headers);
                if which == Some("scale") {
                    let mut st = self.api.lock();
                    let mut scale = st.get_scale(&def, ns, name)?;
                    match ptype {
                        PatchType::Json => crate::patch::json_patch(&mut scale, &patch)
                            .map_err(ApiError::bad_request)?,
                        _ => crate::patch::merge_patch(&mut scale, &patch),
                    }
                    let out = st.set_scale(&def, ns, name, &scale, &opts)?;
                    return Ok(json_response(200, &out));
                }
                if matches!(which, Some("binding") | Some("eviction") | Some("finalize")) {
                    return Err(ApiError::method_not_allowed(
                        "the server does not allow this method on the requested resource",
                    ));
                }
                let which = if which == Some("status") {
                    Subresource::Status
                } else {
                    Subresource::Main
                };
                let (obj, created) = self
                    .api
                    .lock()
                    .patch(&def, ns, name, ptype, &patch, which, &opts)?;
                let code = if created { 201 } else { 200 };
                Ok(self.object_response(code, &def, &to_served(&def, &obj), format))
            }
            (&Method::DELETE, Some(name), None) => {
                let opts = q.delete_options(&body)?;
                let outcome = self.api.lock().delete(&def, ns, name, &opts)?;
                Ok(match outcome {
                    Deleted::Pending(obj) => {
                        self.object_response(200, &def, &to_served(&def, &obj), format)
                    }
                    Deleted::Gone(obj) => {
                        if def.is_custom() || def.builtin == Some(Builtin::Pod) {
                            self.object_response(200, &def, &to_served(&def, &obj), format)
                        } else {
                            json_response(
                                200,
                                &success_status(
                                    200,
                                    Some(
                                        json!({"name": name, "group": def.group, "kind": def.plural, "uid": object::uid(&obj)}),
                                    ),
                                ),
                            )
                        }
                    }
                })
            }
            (&Method::DELETE, None, None) => {
                let list = q.list_options()?;
                let opts = q.delete_options(&body)?;
                let items = self.api.lock().delete_collection(&def, ns, &list, &opts)?;
                let rv = self.api.lock().store.current_rv();
                let meta = list_meta(rv, &None, None);
                Ok(self.list_response(&def, Items::Values(items), meta, Format::Object))
            }
            _ => Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )),
        }
    }

    fn object_response(
        &self,
        code: u16,
        def: &ResourceDef,
        obj: &Arc<Value>,
        format: Format,
    ) -> Response<Body> {
        match format {
            Format::Object => json_response(code, obj),
            Format::Metadata => json_response(code, &table::partial_metadata(obj)),
            Format::Table(include) => {
                let now = self.api.clock().now();
                let meta = json!({"resourceVersion": object::resource_version(obj)});
                json_response(
                    code,
                    &table::table(def, std::slice::from_ref(obj), now, include, meta, false),
                )
            }
        }
    }

    fn list_response(
        &self,
        def: &ResourceDef,
        items: Items,
        meta: Value,
        format: Format,
    ) -> Response<Body> {
        let values = |items: Items| -> Vec<Arc<Value>> {
            match items {
                Items::Values(v) => v,
                Items::Stored(s) => s.iter().map(|o| served_value(def, o)).collect(),
            }
        };
        match format {
            Format::Table(include) => {
                let now = self.api.clock().now();
                json_response(
                    200,
                    &table::table(def, &values(items), now, include, meta, false),
                )
            }
            Format::Metadata => {
                let items: Vec<Value> = values(items)
                    .iter()
                    .map(|o| table::partial_metadata(o))
                    .collect();
                json_response(
                    200,
                    &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items}),
                )
            }
            Format::Object => {
                // Written piece by piece from the stored text: big lists are neither parsed
                // nor copied into one document first.
                let count = match &items {
                    Items::Values(v) => v.len(),
                    Items::Stored(s) => s.len(),
                };
                let mut buf: Vec<u8> = Vec::with_capacity(256 + count * 2048);
                let head = json!({"kind": def.list_kind, "apiVersion": def.api_version(), "metadata": meta});
                let head = serde_json::to_vec(&head).unwrap_or_default();
                // `{"kind":..,"metadata":..}` -> drop the closing brace and append items.
                buf.extend_from_slice(&head[..head.len().saturating_sub(1)]);
                buf.extend_from_slice(b",\"items\":[");
                let write_value = |buf: &mut Vec<u8>, v: &Value| {
                    if def.is_custom() {
                        serde_json::to_writer(buf, v)
                    } else {
                        serde_json::to_writer(buf, &WithoutTypeMeta(v))
                    }
                };
                let mut first = true;
                let mut sep = |buf: &mut Vec<u8>| {
                    if !first {
                        buf.push(b',');
                    }
                    first = false;
                };
                match items {
                    Items::Values(vs) => {
                        for v in vs {
                            sep(&mut buf);
                            if write_value(&mut buf, &v).is_err() {
                                return error_response(&ApiError::internal(
                                    "failed to encode a list item",
                                ));
                            }
                        }
                    }
                    Items::Stored(ss) => {
                        for s in ss {
                            sep(&mut buf);
                            if served_natively(def, &s) {
                                if def.is_custom() {
                                    buf.extend_from_slice(s.json().as_bytes());
                                } else {
                                    buf.extend_from_slice(s.json_without_type_meta().as_bytes());
                                }
                            } else if write_value(&mut buf, &served_value(def, &s)).is_err() {
                                return error_response(&ApiError::internal(
                                    "failed to encode a list item",
                                ));
                            }
                        }
                    }
                }
                buf.extend_from_slice(b"]}");
                raw_json(200, buf)
            }
        }
    }

    fn watch(&self, t: &Target, q: &Query, format: Format) -> Result<Response<Body>, ApiError> {
        let opts = q.list_options()?;
        crate::api::check_fields(&t.def, &opts.fields)?;
        let rv = parse_rv(q.resource_version.as_deref())?;
        let timeout = q
            .timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(self.config.default_watch_timeout);
        let spec = WatchSpec {
            def: t.def.clone(),
            namespace: t.namespace.clone(),
            name: t.name.clone().or_else(|| {
                opts.fields
                    .required_value("metadata.name")
                    .map(str::to_string)
            }),
            labels: opts.labels,
            fields: opts.fields,
            resource_version: rv,
            send_initial_events: q.send_initial_events,
            bookmarks: q.allow_watch_bookmarks,
            timeout,
            bookmark_interval: self.config.bookmark_interval,
            format,
        };
        let rx = watch::spawn(self.api.clone(), spec, self.shutdown.clone());
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<_, Infallible>(http_body::Frame::data(b)), rx))
        });
        let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        Ok(resp)
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

fn version() -> Value {
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

/// Parses JSON, or YAML when the request says so.
fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.contains("protobuf") || ct.contains("cbor") {
        return Err(ApiError::unsupported_media_type(ct));
    }
    if ct.contains("yaml") {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the request body is not valid UTF-8"))?;
        return serde_saphyr::from_str::<Value>(text)
            .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

fn decode_patch(body: &[u8], ptype: PatchType) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(e) => {
            if let PatchType::Apply { .. } = ptype
                && let Ok(text) = std::str::from_utf8(body)
                && let Ok(v) = serde_saphyr::from_str::<Value>(text)
            {
                return Ok(v);
            }
            Err(ApiError::bad_request(format!("error decoding patch: {e}")))
        }
    }
}

/// The embedded cluster as a `tower::Service`, for `kube::Client::new`.
#[derive(Debug, Clone)]
pub struct ClusterService {
    handler: Handler,
}

impl ClusterService {
    pub fn new(handler: Handler) -> Self {
        ClusterService { handler }
    }
}

impl tower::Service<Request<kube::client::Body>> for ClusterService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let handler = self.handler.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = match body.collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) => {
                    return Ok(error_response(&ApiError::bad_request(format!(
                        "failed to read the request body: {e}"
                    ))));
                }
            };
            Ok(handler.handle(Request::from_parts(parts, bytes)).await)
        })
    }
}

/// Serves the API over plain HTTP/1.1 until `shutdown` is cancelled.
pub async fn serve(handler: Handler, listener: tokio::net::TcpListener) {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    let shutdown = handler.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let resp = match body.collect().await {
                        Ok(c) => {
                            handler
                                .handle(Request::from_parts(parts, c.to_bytes()))
                                .await
                        }
                        Err(e) => error_response(&ApiError::bad_request(format!(
                            "failed to read the request body: {e}"
                        ))),
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended");
                },
                _ = shutdown.cancelled() => {}
            }
        });
    }
}
