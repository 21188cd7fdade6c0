//! `application/vnd.kubernetes.protobuf`, the wire format client-go's typed clients (and so
//! kubectl's `create`, `run`, `expose`, `scale`...) send and ask for.
//!
//! A document is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` message whose
//! `typeMeta` names the kind and whose `raw` holds the object's own message. Watch
//! streams are frames of a 4-byte big-endian length and a `meta.v1.WatchEvent` (no magic),
//! whose `object.raw` is a whole document as above.
//!
//! The messages are Kubernetes' own, compiled from the upstream `generated.proto` files
//! (`proto/`, see its README) into a descriptor set at build time; this module reads them
//! as `prost-reflect` dynamic messages and maps them to and from the JSON the store keeps:
//!
//! - field names: the proto field name is the JSON name (`generateName`), except in
//!   apiextensions' `JSONSchemaProps` (`$ref`, `x-kubernetes-*`);
//! - `Time` and `MicroTime` are RFC 3339 strings, `Duration` a Go duration, `Quantity` a
//!   string, `IntOrString` a number or a string, `RawExtension`, `FieldsV1` and
//!   apiextensions' `JSON` embedded JSON, `bytes` base64 strings;
//! - presence: Go marshals every non-pointer field, zero or not, and a pointer only when
//!   set. A zero scalar on the wire is therefore dropped (Go's `omitempty` and the API
//!   server's defaulting treat it as unset) unless the Go field is a pointer, where an
//!   explicit zero means something (`replicas: 0`, `automountServiceAccountToken: false`):
//!   `pointers::keeps_zero` lists those, since the wire does not say.
//!
//! Only built-in kinds have messages; custom resources are JSON only (as on a real
//! server, which answers 415 to a protobuf body for them).

mod from_json;
mod pointers;
mod to_json;

use std::sync::LazyLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value as PValue};
use serde_json::Value;

static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(&include_bytes!(concat!(env!("OUT_DIR"), "/kubernetes.bin"))[..])
        .map_err(|e| format!("the Kubernetes protobuf descriptors do not load: {e}"))
});

fn pool() -> Result<&'static DescriptorPool, ProtoError> {
    POOL.as_ref().map_err(|e| ProtoError::Malformed(e.clone()))
}

fn runtime_message(name: &str) -> Result<MessageDescriptor, ProtoError> {
    pool()?
        .get_message_by_name(name)
        .ok_or_else(|| ProtoError::Malformed(format!("no message {name}")))
}

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// The media type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";
/// The prefix of every protobuf document.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// Why a body could not be decoded or an object encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The bytes are not a protobuf document (no magic, a broken envelope or message).
    #[error("{0}")]
    Malformed(String),
    /// The document names a kind this server has no protobuf message for.
    #[error("no kind {kind:?} is registered for version {api_version:?}")]
    UnknownKind { api_version: String, kind: String },
    /// A field's value does not fit its type.
    #[error("{path}: {message}")]
    Field { path: String, message: String },
}

impl ProtoError {
    fn field(path: &str, message: impl Into<String>) -> Self {
        ProtoError::Field {
            path: if path.is_empty() {
                "<root>".into()
            } else {
                path.to_string()
            },
            message: message.into(),
        }
    }
}

/// The proto package of an API group's version (`k8s-rs-pb`'s package names).
fn package(api_version: &str) -> Option<&'static str> {
    Some(match api_version {
        "v1" => "api.core.v1",
        "apps/v1" => "api.apps.v1",
        "coordination.k8s.io/v1" => "api.coordination.v1",
        "events.k8s.io/v1" => "api.events.v1",
        "policy/v1" => "api.policy.v1",
        "autoscaling/v1" => "api.autoscaling.v1",
        "apiextensions.k8s.io/v1" => "apiextensions_apiserver.pkg.apis.apiextensions.v1",
        "meta.k8s.io/v1" => "apimachinery.pkg.apis.meta.v1",
        _ => return None,
    })
}

/// The message of a kind, if the server speaks protobuf for it. `Status`, `DeleteOptions`
/// and the other `meta.k8s.io/v1` kinds are found in every group version, as Kubernetes
/// registers them there.
pub fn message_for(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let pool = pool().ok()?;
    [package(api_version)?, package("meta.k8s.io/v1")?]
        .into_iter()
        .find_map(|pkg| pool.get_message_by_name(&format!("{pkg}.{kind}")))
}

/// Whether objects of this kind can be served as protobuf.
pub fn supports(api_version: &str, kind: &str) -> bool {
    package(api_version).is_some() && message_for(api_version, kind).is_some()
}

fn get_str(m: &DynamicMessage, name: &str) -> String {
    match m.get_field_by_name(name).as_deref() {
        Some(PValue::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn get_bytes(m: &DynamicMessage, name: &str) -> Vec<u8> {
    match m.get_field_by_name(name).as_deref() {
        Some(PValue::Bytes(b)) => b.to_vec(),
        _ => Vec::new(),
    }
}

fn get_message(m: &DynamicMessage, name: &str) -> Option<DynamicMessage> {
    match m.get_field_by_name(name).as_deref() {
        Some(PValue::Message(inner)) => Some(inner.clone()),
        _ => None,
    }
}

fn set(m: &mut DynamicMessage, name: &str, v: PValue) -> Result<(), ProtoError> {
    m.try_set_field_by_name(name, v)
        .map_err(|e| ProtoError::Malformed(format!("setting {name}: {e}")))
}

/// Splits a document into its `typeMeta` (apiVersion, kind) and the raw message.
fn unwrap_envelope(body: &[u8]) -> Result<(String, String, Vec<u8>), ProtoError> {
    let Some(rest) = body.strip_prefix(&MAGIC) else {
        return Err(ProtoError::Malformed(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
                .into(),
        ));
    };
    let unknown =
        DynamicMessage::decode(runtime_message("apimachinery.pkg.runtime.Unknown")?, rest)
            .map_err(|e| ProtoError::Malformed(format!("invalid protobuf envelope: {e}")))?;
    let encoding = get_str(&unknown, "contentEncoding");
    if !encoding.is_empty() {
        return Err(ProtoError::Malformed(format!(
            "unsupported content encoding {encoding:?}"
        )));
    }
    let type_meta = get_message(&unknown, "typeMeta");
    let (api_version, kind) = type_meta
        .map(|t| (get_str(&t, "apiVersion"), get_str(&t, "kind")))
        .unwrap_or_default();
    Ok((api_version, kind, get_bytes(&unknown, "raw")))
}

/// Decodes a protobuf request body into the JSON object it stands for, with `apiVersion`
/// and `kind` from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let (api_version, kind, raw) = unwrap_envelope(body)?;
    if kind.is_empty() {
        return Err(ProtoError::Malformed(
            "the protobuf envelope names no kind".into(),
        ));
    }
    let descriptor = message_for(&api_version, &kind).ok_or_else(|| ProtoError::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let message = DynamicMessage::decode(descriptor, raw.as_slice())
        .map_err(|e| ProtoError::Malformed(format!("invalid {kind} message: {e}")))?;
    let mut value = to_json::message(&message, "")?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| ProtoError::Malformed("the message is not an object".into()))?;
    // TypeMeta first, as a JSON client sends it.
    let mut out = serde_json::Map::new();
    out.insert("kind".into(), Value::String(kind));
    out.insert("apiVersion".into(), Value::String(api_version));
    out.append(obj);
    Ok(Value::Object(out))
}

/// Encodes a JSON object (with `apiVersion` and `kind`) as a protobuf document. Fields
/// the message does not have are left out, as a real server never stores them.
pub fn encode(value: &Value) -> Result<Vec<u8>, ProtoError> {
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let descriptor = message_for(api_version, kind).ok_or_else(|| ProtoError::UnknownKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    })?;
    let raw = from_json::message(&descriptor, value, "")?.encode_to_vec();
    let mut type_meta = DynamicMessage::new(runtime_message("apimachinery.pkg.runtime.TypeMeta")?);
    set(
        &mut type_meta,
        "apiVersion",
        PValue::String(api_version.to_string()),
    )?;
    set(&mut type_meta, "kind", PValue::String(kind.to_string()))?;
    let mut unknown = DynamicMessage::new(runtime_message("apimachinery.pkg.runtime.Unknown")?);
    set(&mut unknown, "typeMeta", PValue::Message(type_meta))?;
    set(&mut unknown, "raw", PValue::Bytes(raw.into()))?;
    let mut out = MAGIC.to_vec();
    unknown
        .encode(&mut out)
        .map_err(|e| ProtoError::Malformed(format!("encoding the envelope: {e}")))?;
    Ok(out)
}

/// One frame of a protobuf watch stream for a JSON watch event (`{"type", "object"}`).
pub fn watch_frame(event: &Value) -> Result<Vec<u8>, ProtoError> {
    let event_type = event
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ProtoError::field("type", "a watch event needs a type"))?;
    let object = event
        .get("object")
        .ok_or_else(|| ProtoError::field("object", "a watch event needs an object"))?;
    let mut raw = DynamicMessage::new(runtime_message("apimachinery.pkg.runtime.RawExtension")?);
    set(&mut raw, "raw", PValue::Bytes(encode(object)?.into()))?;
    let mut watch_event =
        DynamicMessage::new(runtime_message("apimachinery.pkg.apis.meta.v1.WatchEvent")?);
    set(
        &mut watch_event,
        "type",
        PValue::String(event_type.to_string()),
    )?;
    set(&mut watch_event, "object", PValue::Message(raw))?;
    let body = watch_event.encode_to_vec();
    let len = u32::try_from(body.len())
        .map_err(|_| ProtoError::Malformed("a watch event over 4 GiB".into()))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

/// Splits a protobuf watch stream into events (`{"type", "object"}` as JSON), for clients
/// and tests. Trailing bytes that do not make a whole frame are returned unread.
pub fn read_watch_frames(mut bytes: &[u8]) -> Result<(Vec<Value>, &[u8]), ProtoError> {
    let descriptor = runtime_message("apimachinery.pkg.apis.meta.v1.WatchEvent")?;
    let mut events = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if bytes.len() - 4 < len {
            break;
        }
        let event = DynamicMessage::decode(descriptor.clone(), &bytes[4..4 + len])
            .map_err(|e| ProtoError::Malformed(format!("invalid watch event: {e}")))?;
        let raw = get_message(&event, "object")
            .map(|o| get_bytes(&o, "raw"))
            .unwrap_or_default();
        let object = decode(&raw)?;
        events.push(serde_json::json!({"type": get_str(&event, "type"), "object": object}));
        bytes = &bytes[4 + len..];
    }
    Ok((events, bytes))
}

#[cfg(test)]
mod tests;
