//! A JSON object -> the message it stands for (the inverse of `to_json`).

use std::collections::HashMap;

use base64::Engine;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage,
    Value as PValue,
};
use serde_json::Value;

use super::ProtoError;
use super::to_json::{Special, json_name, special};

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Builds a message from a JSON value. Object keys the message has no field for (such as
/// `apiVersion` and `kind`, which travel in the envelope) are left out; `null` is unset.
pub(super) fn message(
    descriptor: &MessageDescriptor,
    value: &Value,
    path: &str,
) -> Result<DynamicMessage, ProtoError> {
    let mut m = DynamicMessage::new(descriptor.clone());
    if let Some(kind) = special(descriptor.full_name()) {
        special_message(kind, &mut m, value, path)?;
        return Ok(m);
    }
    let Value::Object(obj) = value else {
        return Err(ProtoError::field(
            path,
            format!("expected an object for {}", descriptor.name()),
        ));
    };
    for field in descriptor.fields() {
        let name = json_name(descriptor.full_name(), field.name());
        let Some(v) = obj.get(&name) else {
            continue;
        };
        if v.is_null() {
            continue;
        }
        set_field(&field, &mut m, v, &child(path, &name))?;
    }
    Ok(m)
}

fn set_field(
    field: &FieldDescriptor,
    m: &mut DynamicMessage,
    v: &Value,
    path: &str,
) -> Result<(), ProtoError> {
    let value = if field.is_map() {
        let Value::Object(entries) = v else {
            return Err(ProtoError::field(path, "expected an object"));
        };
        let Kind::Message(entry) = field.kind() else {
            return Err(ProtoError::field(path, "a map without an entry message"));
        };
        let value_kind = entry.map_entry_value_field().kind();
        let mut out = HashMap::with_capacity(entries.len());
        for (key, item) in entries {
            out.insert(
                MapKey::String(key.clone()),
                value(&value_kind, item, &format!("{path}[{key}]"))?,
            );
        }
        PValue::Map(out)
    } else if field.is_list() {
        let Value::Array(items) = v else {
            return Err(ProtoError::field(path, "expected an array"));
        };
        let kind = field.kind();
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(value(&kind, item, &format!("{path}[{i}]"))?);
        }
        PValue::List(out)
    } else {
        value(&field.kind(), v, path)?
    };
    m.try_set_field(field, value)
        .map_err(|e| ProtoError::field(path, e.to_string()))
}

fn int(v: &Value, path: &str) -> Result<i64, ProtoError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| ProtoError::field(path, format!("{n} is not an integer"))),
        other => Err(ProtoError::field(
            path,
            format!("expected an integer, got {other}"),
        )),
    }
}

fn value(kind: &Kind, v: &Value, path: &str) -> Result<PValue, ProtoError> {
    let out_of_range = || ProtoError::field(path, format!("{v} is out of range"));
    let number = || {
        v.as_f64()
            .ok_or_else(|| ProtoError::field(path, format!("expected a number, got {v}")))
    };
    Ok(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            PValue::I32(i32::try_from(int(v, path)?).map_err(|_| out_of_range())?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => PValue::I64(int(v, path)?),
        Kind::Uint32 | Kind::Fixed32 => {
            PValue::U32(u32::try_from(int(v, path)?).map_err(|_| out_of_range())?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            PValue::U64(u64::try_from(int(v, path)?).map_err(|_| out_of_range())?)
        }
        Kind::Float => PValue::F32(number()? as f32),
        Kind::Double => PValue::F64(number()?),
        Kind::Bool => PValue::Bool(
            v.as_bool()
                .ok_or_else(|| ProtoError::field(path, format!("expected a boolean, got {v}")))?,
        ),
        Kind::String => match v {
            Value::String(s) => PValue::String(s.clone()),
            other => {
                return Err(ProtoError::field(
                    path,
                    format!("expected a string, got {other}"),
                ));
            }
        },
        Kind::Bytes => {
            let s = v
                .as_str()
                .ok_or_else(|| ProtoError::field(path, "expected a base64 string"))?;
            PValue::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| ProtoError::field(path, format!("invalid base64: {e}")))?
                    .into(),
            )
        }
        Kind::Enum(_) => {
            PValue::EnumNumber(i32::try_from(int(v, path)?).map_err(|_| out_of_range())?)
        }
        Kind::Message(d) => PValue::Message(message(d, v, path)?),
    })
}

fn set(m: &mut DynamicMessage, name: &str, v: PValue, path: &str) -> Result<(), ProtoError> {
    m.try_set_field_by_name(name, v)
        .map_err(|e| ProtoError::field(path, format!("{name}: {e}")))
}

fn special_message(
    kind: Special,
    m: &mut DynamicMessage,
    v: &Value,
    path: &str,
) -> Result<(), ProtoError> {
    match kind {
        Special::Time | Special::MicroTime => {
            let s = v
                .as_str()
                .ok_or_else(|| ProtoError::field(path, "expected an RFC 3339 time"))?;
            let ts: jiff::Timestamp = s
                .parse()
                .map_err(|e| ProtoError::field(path, format!("invalid time {s:?}: {e}")))?;
            set(m, "seconds", PValue::I64(ts.as_second()), path)?;
            if kind == Special::MicroTime {
                let nanos = ts.subsec_nanosecond() / 1000 * 1000;
                set(m, "nanos", PValue::I32(nanos), path)?;
            }
            Ok(())
        }
        Special::Duration => {
            let s = v
                .as_str()
                .ok_or_else(|| ProtoError::field(path, "expected a duration"))?;
            let ns = parse_go_duration(s)
                .ok_or_else(|| ProtoError::field(path, format!("invalid duration {s:?}")))?;
            set(m, "duration", PValue::I64(ns), path)
        }
        Special::Quantity => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(ProtoError::field(
                        path,
                        format!("expected a quantity, got {other}"),
                    ));
                }
            };
            set(m, "string", PValue::String(s), path)
        }
        Special::IntOrString => match v {
            Value::String(s) => {
                set(m, "type", PValue::I64(1), path)?;
                set(m, "strVal", PValue::String(s.clone()), path)
            }
            other => {
                let n = i32::try_from(int(other, path)?)
                    .map_err(|_| ProtoError::field(path, format!("{other} is out of range")))?;
                set(m, "type", PValue::I64(0), path)?;
                set(m, "intVal", PValue::I32(n), path)
            }
        },
        Special::RawJson => {
            let name = if m.descriptor().get_field_by_name("Raw").is_some() {
                "Raw"
            } else {
                "raw"
            };
            let raw = serde_json::to_vec(v)
                .map_err(|e| ProtoError::field(path, format!("encoding JSON: {e}")))?;
            set(m, name, PValue::Bytes(raw.into()), path)
        }
        Special::SchemaOrBool => match v {
            Value::Bool(b) => set(m, "allows", PValue::Bool(*b), path),
            other => {
                set(m, "allows", PValue::Bool(true), path)?;
                set_named(m, "schema", other, path)
            }
        },
        Special::SchemaOrArray | Special::SchemaOrStrings => match v {
            Value::Array(_) => {
                let list = if kind == Special::SchemaOrArray {
                    "jSONSchemas"
                } else {
                    "property"
                };
                set_named(m, list, v, path)
            }
            other => set_named(m, "schema", other, path),
        },
    }
}

fn set_named(m: &mut DynamicMessage, name: &str, v: &Value, path: &str) -> Result<(), ProtoError> {
    let field = m
        .descriptor()
        .get_field_by_name(name)
        .ok_or_else(|| ProtoError::field(path, format!("no field {name}")))?;
    set_field(&field, m, v, path)
}

/// Go's `time.ParseDuration` (`1h2m3.5s`, `300ms`, `-1.5h`) in nanoseconds.
pub(super) fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        let n: f64 = num.parse().ok()?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * scale;
        rest = tail;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}
