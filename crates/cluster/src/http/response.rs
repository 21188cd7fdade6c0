//! What goes out: JSON responses, `Status` errors, objects and lists in the format asked
//! for.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Body, Handler};
use crate::api::{served_natively, served_value};
use crate::error::ApiError;
use crate::object;
use crate::resources::ResourceDef;
use crate::table::{self};
use crate::watch::Format;

pub(super) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub(super) fn json_response(code: u16, body: &Value) -> Response<Body> {
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

pub(super) fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.to_status())
}

/// A `Status` error in protobuf, for clients that prefer it.
pub(super) fn error_response_protobuf(err: &ApiError) -> Response<Body> {
    match crate::protobuf::encode(&err.to_status()) {
        Ok(bytes) => protobuf_response(err.code, bytes),
        Err(_) => error_response(err),
    }
}

fn protobuf_response(code: u16, bytes: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(crate::protobuf::MEDIA_TYPE),
    );
    resp
}

/// Re-encodes a whole JSON response (an object, a list, a `Status`) in protobuf.
pub(super) async fn to_protobuf(resp: Response<Body>) -> Response<Body> {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(collected) = body.collect().await;
    let bytes = collected.to_bytes();
    let encoded = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|v| crate::protobuf::encode(&v).map_err(|e| e.to_string()));
    match encoded {
        Ok(out) => protobuf_response(parts.status.as_u16(), out),
        Err(e) => error_response(&ApiError::internal(format!(
            "unable to encode the response as protobuf: {e}"
        ))),
    }
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

pub(super) fn list_meta(rv: u64, continue_token: &Option<String>, remaining: Option<u64>) -> Value {
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
pub(super) enum Items {
    Stored(Vec<Arc<crate::store::Stored>>),
    Values(Vec<Arc<Value>>),
}

impl Handler {
    pub(super) fn object_response(
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

    pub(super) fn list_response(
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
}
