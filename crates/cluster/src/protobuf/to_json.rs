//! A decoded message -> the JSON object it stands for.

use base64::Engine;
use prost_reflect::{DynamicMessage, MapKey, ReflectMessage, Value as PValue};
use serde_json::{Map, Value};

use super::ProtoError;
use super::pointers::keeps_zero;

/// The kinds of message whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    Time,
    MicroTime,
    Duration,
    Quantity,
    IntOrString,
    /// `RawExtension.raw`, `FieldsV1.Raw`, apiextensions' `JSON.raw`: embedded JSON.
    RawJson,
    /// apiextensions' `JSONSchemaPropsOrBool`: a schema or a boolean.
    SchemaOrBool,
    /// apiextensions' `JSONSchemaPropsOrArray`: a schema or an array of them.
    SchemaOrArray,
    /// apiextensions' `JSONSchemaPropsOrStringArray`: a schema or a list of names.
    SchemaOrStrings,
}

pub(super) fn special(full_name: &str) -> Option<Special> {
    Some(match full_name {
        "apimachinery.pkg.apis.meta.v1.Time" => Special::Time,
        "apimachinery.pkg.apis.meta.v1.MicroTime" => Special::MicroTime,
        "apimachinery.pkg.apis.meta.v1.Duration" => Special::Duration,
        "apimachinery.pkg.api.resource.Quantity"
        | "apimachinery.pkg.api.resource.QuantityValue" => Special::Quantity,
        "apimachinery.pkg.util.intstr.IntOrString" => Special::IntOrString,
        "apimachinery.pkg.runtime.RawExtension"
        | "apimachinery.pkg.apis.meta.v1.FieldsV1"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON" => Special::RawJson,
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool" => {
            Special::SchemaOrBool
        }
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray" => {
            Special::SchemaOrArray
        }
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray" => {
            Special::SchemaOrStrings
        }
        _ => return None,
    })
}

/// The JSON name of a field: the proto name, except in `JSONSchemaProps`.
pub(super) fn json_name(message_full_name: &str, field: &str) -> String {
    if message_full_name != "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps" {
        return field.to_string();
    }
    match field {
        "ref" => "$ref".into(),
        "schema" => "$schema".into(),
        f if f.starts_with("xKubernetes") => {
            // xKubernetesPreserveUnknownFields -> x-kubernetes-preserve-unknown-fields
            let mut out = String::from("x");
            for c in f[1..].chars() {
                if c.is_ascii_uppercase() {
                    out.push('-');
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.push(c);
                }
            }
            out
        }
        f => f.to_string(),
    }
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// A message as a JSON value (an object unless the message is one of the special kinds).
pub(super) fn message(m: &DynamicMessage, path: &str) -> Result<Value, ProtoError> {
    let descriptor = m.descriptor();
    if let Some(kind) = special(descriptor.full_name()) {
        return special_value(kind, m, path);
    }
    let mut out = Map::new();
    // Only the fields that were on the wire (proto2 presence; lists and maps when not
    // empty), in field order.
    for (field, v) in m.fields() {
        let name = json_name(descriptor.full_name(), field.name());
        let path = child(path, &name);
        let value = match v {
            PValue::List(items) => {
                if items.is_empty() {
                    continue;
                }
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(value(item, &format!("{path}[{i}]"))?);
                }
                Value::Array(out)
            }
            PValue::Map(entries) => {
                if entries.is_empty() {
                    continue;
                }
                let mut out = Map::new();
                for (k, v) in entries {
                    let MapKey::String(k) = k else {
                        return Err(ProtoError::field(&path, "map keys must be strings"));
                    };
                    out.insert(k.clone(), value(v, &format!("{path}[{k}]"))?);
                }
                Value::Object(out)
            }
            v => {
                if is_zero(v) && !keeps_zero(descriptor.name(), field.name()) {
                    continue;
                }
                value(v, &path)?
            }
        };
        if !value.is_null() {
            out.insert(name, value);
        }
    }
    Ok(Value::Object(out))
}

fn is_zero(v: &PValue) -> bool {
    match v {
        PValue::U32(n) => *n == 0,
        PValue::U64(n) => *n == 0,
        PValue::I32(n) => *n == 0,
        PValue::I64(n) => *n == 0,
        PValue::F32(n) => *n == 0.0,
        PValue::F64(n) => *n == 0.0,
        PValue::Bool(b) => !*b,
        PValue::String(s) => s.is_empty(),
        PValue::Bytes(b) => b.is_empty(),
        PValue::EnumNumber(n) => *n == 0,
        PValue::Message(_) | PValue::List(_) | PValue::Map(_) => false,
    }
}

fn value(v: &PValue, path: &str) -> Result<Value, ProtoError> {
    Ok(match v {
        PValue::U32(n) => Value::from(*n),
        PValue::U64(n) => Value::from(*n),
        PValue::I32(n) => Value::from(*n),
        PValue::I64(n) => Value::from(*n),
        PValue::F32(n) => float(f64::from(*n), path)?,
        PValue::F64(n) => float(*n, path)?,
        PValue::Bool(b) => Value::Bool(*b),
        PValue::String(s) => Value::String(s.clone()),
        // Go's encoding/json writes []byte as standard base64.
        PValue::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        PValue::EnumNumber(n) => Value::from(*n),
        PValue::Message(m) => message(m, path)?,
        PValue::List(_) | PValue::Map(_) => {
            return Err(ProtoError::field(path, "a list or map inside a list"));
        }
    })
}

fn float(n: f64, path: &str) -> Result<Value, ProtoError> {
    serde_json::Number::from_f64(n)
        .map(Value::Number)
        .ok_or_else(|| ProtoError::field(path, format!("{n} is not a JSON number")))
}

fn get_i64(m: &DynamicMessage, name: &str) -> i64 {
    match m.get_field_by_name(name).as_deref() {
        Some(PValue::I64(n)) => *n,
        Some(PValue::I32(n)) => i64::from(*n),
        _ => 0,
    }
}

fn get_str(m: &DynamicMessage, name: &str) -> String {
    match m.get_field_by_name(name).as_deref() {
        Some(PValue::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn special_value(kind: Special, m: &DynamicMessage, path: &str) -> Result<Value, ProtoError> {
    match kind {
        Special::Time | Special::MicroTime => {
            let seconds = get_i64(m, "seconds");
            let nanos = get_i64(m, "nanos");
            if seconds == 0 && nanos == 0 {
                // Go's zero time marshals as null: unset.
                return Ok(Value::Null);
            }
            let nanos = i32::try_from(nanos)
                .map_err(|_| ProtoError::field(path, format!("nanos {nanos} out of range")))?;
            let ts = jiff::Timestamp::new(seconds, nanos).map_err(|e| {
                ProtoError::field(path, format!("time {seconds}s {nanos}ns out of range: {e}"))
            })?;
            Ok(Value::String(format_time(ts, kind == Special::MicroTime)))
        }
        Special::Duration => Ok(Value::String(go_duration(get_i64(m, "duration")))),
        Special::Quantity => Ok(Value::String(get_str(m, "string"))),
        Special::IntOrString => match get_i64(m, "type") {
            0 => Ok(Value::from(get_i64(m, "intVal"))),
            1 => Ok(Value::String(get_str(m, "strVal"))),
            t => Err(ProtoError::field(
                path,
                format!("IntOrString type {t} is neither 0 (int) nor 1 (string)"),
            )),
        },
        Special::RawJson => {
            let field = if m.descriptor().get_field_by_name("Raw").is_some() {
                "Raw"
            } else {
                "raw"
            };
            let raw = match m.get_field_by_name(field).as_deref() {
                Some(PValue::Bytes(b)) => b.to_vec(),
                _ => Vec::new(),
            };
            if raw.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(&raw)
                .map_err(|e| ProtoError::field(path, format!("embedded JSON does not parse: {e}")))
        }
        Special::SchemaOrBool => match m.get_field_by_name("schema").as_deref() {
            Some(PValue::Message(s)) if m.has_field_by_name("schema") => message(s, path),
            _ => Ok(Value::Bool(matches!(
                m.get_field_by_name("allows").as_deref(),
                Some(PValue::Bool(true))
            ))),
        },
        Special::SchemaOrArray | Special::SchemaOrStrings => {
            if m.has_field_by_name("schema")
                && let Some(PValue::Message(s)) = m.get_field_by_name("schema").as_deref()
            {
                return message(s, path);
            }
            let list = if kind == Special::SchemaOrArray {
                "jSONSchemas"
            } else {
                "property"
            };
            let mut out = Vec::new();
            if let Some(PValue::List(items)) = m.get_field_by_name(list).as_deref() {
                for (i, item) in items.iter().enumerate() {
                    out.push(value(item, &format!("{path}[{i}]"))?);
                }
            }
            Ok(Value::Array(out))
        }
    }
}

/// RFC 3339 in UTC, to the second (`Time`) or the microsecond (`MicroTime`), as Go
/// marshals them.
pub(super) fn format_time(ts: jiff::Timestamp, micro: bool) -> String {
    let secs = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if micro {
        format!("{secs}.{:06}Z", ts.subsec_nanosecond() / 1000)
    } else {
        format!("{secs}Z")
    }
}

/// A duration in nanoseconds as Go's `time.Duration.String()` writes it (`1h2m3.5s`,
/// `1.5ms`, `0s`).
pub(super) fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let body = if u < 1_000_000_000 {
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        format!("{}{unit}", fraction(u, div))
    } else {
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let s = fraction(u % 60_000_000_000, 1_000_000_000);
        if h > 0 {
            format!("{h}h{m}m{s}s")
        } else if m > 0 {
            format!("{m}m{s}s")
        } else {
            format!("{s}s")
        }
    };
    if neg { format!("-{body}") } else { body }
}

/// `n / div` with the fraction's trailing zeros removed.
fn fraction(n: u64, div: u64) -> String {
    let whole = n / div;
    let rest = n % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let frac = format!("{rest:0width$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}
