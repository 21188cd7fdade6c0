//! What comes in: query parameters, bodies and patches, the format a client accepts, and
//! the resource a path names.

use std::sync::Arc;

use http::{HeaderMap, header};
use serde_json::Value;

use crate::api::{DeleteOptions, ListOptions, PatchType, WriteOptions, parse_propagation};
use crate::error::{ApiError, FieldError};
use crate::resources::ResourceDef;
use crate::selector::{FieldSelector, LabelSelector};
use crate::table::IncludeObject;
use crate::watch::Format;

/// Query parameters of a resource request.
#[derive(Debug, Default)]
pub(super) struct Query {
    pub(super) watch: bool,
    pub(super) label_selector: Option<String>,
    pub(super) field_selector: Option<String>,
    pub(super) limit: Option<usize>,
    pub(super) continue_token: Option<String>,
    pub(super) resource_version: Option<String>,
    pub(super) resource_version_match: Option<String>,
    pub(super) allow_watch_bookmarks: bool,
    pub(super) timeout_seconds: Option<u64>,
    pub(super) send_initial_events: bool,
    pub(super) field_manager: Option<String>,
    pub(super) force: bool,
    pub(super) dry_run: bool,
    pub(super) field_validation: Option<String>,
    pub(super) propagation_policy: Option<String>,
    pub(super) grace_period_seconds: Option<i64>,
    pub(super) include_object: Option<String>,
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

pub(super) fn parse_query(q: Option<&str>) -> Result<Query, ApiError> {
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
            "resourceVersionMatch" => {
                // ListOptions validation: an unknown value is Invalid, as in kube-apiserver.
                const SUPPORTED: &[&str] = &["Exact", "NotOlderThan"];
                if !SUPPORTED.contains(&v.as_str()) {
                    return Err(ApiError::invalid(
                        "meta.k8s.io",
                        "ListOptions",
                        "",
                        vec![FieldError::not_supported(
                            "resourceVersionMatch",
                            &Value::String(v),
                            SUPPORTED,
                        )],
                    ));
                }
                out.resource_version_match = Some(v)
            }
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
            "fieldValidation" => {
                // CreateOptions/UpdateOptions/PatchOptions validation, as in kube-apiserver.
                const SUPPORTED: &[&str] = &["", "Ignore", "Strict", "Warn"];
                if !SUPPORTED.contains(&v.as_str()) {
                    return Err(ApiError::invalid(
                        "meta.k8s.io",
                        "CreateOptions",
                        "",
                        vec![FieldError::not_supported(
                            "fieldValidation",
                            &Value::String(v),
                            SUPPORTED,
                        )],
                    ));
                }
                out.field_validation = Some(v)
            }
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
    pub(super) fn list_options(&self) -> Result<ListOptions, ApiError> {
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

    pub(super) fn write_options(&self, headers: &HeaderMap) -> WriteOptions {
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
            user: impersonated(headers),
        }
    }

    pub(super) fn delete_options(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<DeleteOptions, ApiError> {
        let mut opts = if body.iter().all(u8::is_ascii_whitespace) {
            DeleteOptions::default()
        } else {
            // DeleteOptions is a built-in kind whatever the resource: protobuf is fine.
            let v = decode_body(headers, body, false).map_err(|e| {
                ApiError::bad_request(format!("invalid DeleteOptions: {}", e.message))
            })?;
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

/// The encoding of a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    Json,
    /// `application/vnd.kubernetes.protobuf` (built-in kinds only).
    Protobuf,
}

/// The media type of one `Accept` range, lower-cased, and whether it asks for a
/// conversion (`as=Table`, `as=PartialObjectMetadata`).
fn media_range(range: &str) -> (String, Option<&str>) {
    let mut parts = range.split(';');
    let base = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let as_ = parts.find_map(|p| p.trim().strip_prefix("as="));
    (base, as_)
}

/// Whether the client's first choice is protobuf (errors are then `Status` in protobuf).
pub(super) fn prefers_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split(',').next())
        .map(media_range)
        .is_some_and(|(base, as_)| base == crate::protobuf::MEDIA_TYPE && as_.is_none())
}

/// How the client wants objects rendered and encoded: the first range of `Accept` this
/// server can give. `protobuf` says whether the resource's objects have a protobuf form;
/// when the client takes nothing but protobuf and they have none, 406.
pub(super) fn negotiate(
    headers: &HeaderMap,
    include: Option<&str>,
    protobuf: bool,
) -> Result<(Format, Wire), ApiError> {
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
    let mut only_protobuf = true;
    for range in accept.split(',') {
        let (base, as_) = media_range(range);
        if base == crate::protobuf::MEDIA_TYPE {
            // Tables and metadata lists are served in JSON only.
            if protobuf && as_.is_none() {
                return Ok((Format::Object, Wire::Protobuf));
            }
            continue;
        }
        only_protobuf = false;
        match as_ {
            Some(a) if a.starts_with("Table") => return Ok((Format::Table(include), Wire::Json)),
            Some(a) if a.starts_with("PartialObjectMetadata") => {
                return Ok((Format::Metadata, Wire::Json));
            }
            _ => {}
        }
        if base.starts_with("application/json") || base == "*/*" || base == "application/*" {
            return Ok((Format::Object, Wire::Json));
        }
    }
    if only_protobuf {
        return Err(ApiError::not_acceptable(format!(
            "only the following media types are accepted: application/json, application/yaml{}",
            if protobuf {
                format!(", {}", crate::protobuf::MEDIA_TYPE)
            } else {
                String::new()
            }
        )));
    }
    Ok((Format::Object, Wire::Json))
}

/// A resource request, parsed from the path.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) def: Arc<ResourceDef>,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
    pub(super) legacy_watch: bool,
}

/// The media types a create or update body may have on a resource: protobuf only for
/// built-in kinds, as a real API server (custom resources have no protobuf messages).
pub(super) fn body_media_types(custom: bool) -> &'static [&'static str] {
    if custom {
        &["application/json", "application/yaml"]
    } else {
        &[
            "application/json",
            "application/yaml",
            crate::protobuf::MEDIA_TYPE,
        ]
    }
}

/// Parses a request body by its `Content-Type`: JSON (also when absent), YAML, or, for
/// built-in kinds, protobuf (`custom` says the resource is a custom resource).
pub(super) fn decode_body(
    headers: &HeaderMap,
    body: &[u8],
    custom: bool,
) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let base = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        "application/json" | "" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the request body is not valid UTF-8"))?;
            edgeplane_core::manifests::parse_single("body", text).map_err(|e| {
                ApiError::bad_request(format!("error converting YAML to JSON: {}", e.message))
            })
        }
        crate::protobuf::MEDIA_TYPE if !custom => crate::protobuf::decode(body)
            .map_err(|e| ApiError::bad_request(format!("unable to decode the protobuf body: {e}"))),
        _ => Err(ApiError::unsupported_media_type(
            ct,
            body_media_types(custom),
        )),
    }
}

pub(super) fn decode_patch(body: &[u8], ptype: PatchType) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(e) => {
            if let PatchType::Apply { .. } = ptype
                && let Ok(text) = std::str::from_utf8(body)
                && let Ok(v) = edgeplane_core::manifests::parse_single("patch", text)
            {
                return Ok(v);
            }
            Err(ApiError::bad_request(format!("error decoding patch: {e}")))
        }
    }
}

/// The user a request impersonates (`Impersonate-User`, each `Impersonate-Group`), which
/// is who it acts as here: the embedded cluster authenticates no one, and everyone may
/// impersonate. A user without groups gets `system:authenticated`, as a real server adds.
fn impersonated(headers: &HeaderMap) -> Option<crate::api::UserInfo> {
    let username = headers.get("impersonate-user")?.to_str().ok()?.to_string();
    let mut groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|g| g.to_str().ok().map(str::to_string))
        .collect();
    if !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    Some(crate::api::UserInfo { username, groups })
}
