//! The verbs on one resource: get, list, watch, create, update, patch, delete and the
//! subresources.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, header};
use http_body_util::{BodyExt, StreamBody};
use serde_json::json;

use super::request::{Query, Target, Wire, decode_body, decode_patch, negotiate, parse_query};
use super::response::{Items, json_response, list_meta, to_protobuf};
use super::{Body, Handler};
use crate::api::{Deleted, PatchType, Subresource, parse_rv, to_served};
use crate::error::{ApiError, success_status};
use crate::object;
use crate::resources::Builtin;
use crate::watch::{self, Format, WatchSpec};

impl Handler {
    /// Serves a request on a resource, in JSON or, when the client asks for it and the
    /// kind has a protobuf form, in protobuf (watches frame each event).
    pub(super) async fn resource(
        &self,
        req: Request<Bytes>,
        t: Target,
    ) -> Result<Response<Body>, ApiError> {
        let protobuf = crate::protobuf::supports(&t.def.api_version(), &t.def.kind);
        let q = parse_query(req.uri().query())?;
        let (format, wire) = negotiate(req.headers(), q.include_object.as_deref(), protobuf)?;
        let watch = q.watch || t.legacy_watch;
        let resp = self.serve_resource(req, t, q, format, wire).await?;
        if wire == Wire::Protobuf && !watch {
            return Ok(to_protobuf(resp).await);
        }
        Ok(resp)
    }

    async fn serve_resource(
        &self,
        req: Request<Bytes>,
        t: Target,
        q: Query,
        format: Format,
        wire: Wire,
    ) -> Result<Response<Body>, ApiError> {
        let (parts, body) = req.into_parts();
        let headers = &parts.headers;
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
            (&Method::GET, _, None) if watch => self.watch(&t, &q, format, wire),
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
                let obj = decode_body(headers, &body, def.is_custom())?;
                let created = self
                    .api
                    .lock()
                    .create(&def, ns, obj, &q.write_options(headers))?;
                Ok(self.object_response(201, &def, &to_served(&def, &created), format))
            }
            (&Method::POST, Some(name), Some("binding")) => {
                let b = decode_body(headers, &body, def.is_custom())?;
                self.api
                    .lock()
                    .bind(ns.unwrap_or(""), name, &b, &q.write_options(headers))?;
                Ok(json_response(201, &success_status(201, None)))
            }
            (&Method::POST, Some(name), Some("eviction")) => {
                let e = decode_body(headers, &body, def.is_custom())?;
                self.api.lock().evict(ns.unwrap_or(""), name, &e)?;
                Ok(json_response(201, &success_status(201, None)))
            }
            (&Method::PUT, Some(name), None | Some("status") | Some("finalize")) => {
                let obj = decode_body(headers, &body, def.is_custom())?;
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
                let scale = decode_body(headers, &body, def.is_custom())?;
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
                let mut ptype = PatchType::from_content_type(ct).ok_or_else(|| {
                    ApiError::unsupported_media_type(ct, PatchType::media_types(def.is_custom()))
                })?;
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
                            .map_err(|e| ApiError::bad_request(e.to_string()))?,
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
                let opts = q.delete_options(headers, &body)?;
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
                let opts = q.delete_options(headers, &body)?;
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

    pub(super) fn watch(
        &self,
        t: &Target,
        q: &Query,
        format: Format,
        wire: Wire,
    ) -> Result<Response<Body>, ApiError> {
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
        let stream = futures::stream::unfold(rx, move |mut rx| async move {
            let b = rx.recv().await?;
            let b = match wire {
                Wire::Json => b,
                Wire::Protobuf => protobuf_frames(&b)?,
            };
            Some((Ok::<_, Infallible>(http_body::Frame::data(b)), rx))
        });
        let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
        let content_type = match wire {
            Wire::Json => "application/json",
            Wire::Protobuf => crate::protobuf::WATCH_MEDIA_TYPE,
        };
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
        Ok(resp)
    }
}

/// Watch events (JSON lines) as protobuf frames. An event that does not encode ends the
/// stream (the client re-watches), as a broken stream would on a real server.
fn protobuf_frames(lines: &[u8]) -> Option<Bytes> {
    let mut out = Vec::new();
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let frame = serde_json::from_slice::<serde_json::Value>(line)
            .map_err(|e| e.to_string())
            .and_then(|event| crate::protobuf::watch_frame(&event).map_err(|e| e.to_string()));
        match frame {
            Ok(f) => out.extend_from_slice(&f),
            Err(e) => {
                tracing::warn!(error = %e, "a watch event could not be encoded as protobuf");
                return None;
            }
        }
    }
    Some(Bytes::from(out))
}
