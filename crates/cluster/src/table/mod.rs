//! Server-side printing: `meta.k8s.io/v1` Tables, as kubectl asks for them
//! (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`). Built-in kinds get the columns
//! kubectl shows for them; custom resources get their CRD's `additionalPrinterColumns`.
//!
//! `builtin` holds the built-in kinds' columns, `custom` the JSONPath evaluation of
//! printer columns; this module assembles tables.

mod builtin;
mod custom;

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};

use self::builtin::builtin_columns;
use self::custom::custom_cell;
use crate::object;
use crate::resources::{Builtin, ResourceDef};

pub use builtin::pod_status;
pub use custom::jsonpath;

/// What each row carries besides its cells (`includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "None" => Some(IncludeObject::None),
            "Metadata" => Some(IncludeObject::Metadata),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

/// Kubernetes' human-readable age: `45s`, `3m20s`, `2h5m`, `3d4h`, `400d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if days < 365 * 8 {
        let d = days % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

fn age(ts: Option<&str>, now: Timestamp) -> Value {
    match ts.and_then(object::parse_time) {
        Some(t) => json!(human_duration(now.as_second() - t.as_second())),
        None => json!("<unknown>"),
    }
}

fn col(name: &str, typ: &str, priority: i64) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": typ, "format": format, "description": "", "priority": priority})
}

/// The column definitions of a resource's table.
pub fn columns(def: &ResourceDef) -> Vec<Value> {
    match (&def.builtin, &def.crd) {
        (Some(b), _) => builtin_columns(*b).0,
        (None, Some((_, v))) if !v.printer_columns.is_empty() => {
            let mut cols = vec![col("Name", "string", 0)];
            for c in &v.printer_columns {
                cols.push(json!({
                    "name": c.get("name").and_then(Value::as_str).unwrap_or(""),
                    "type": c.get("type").and_then(Value::as_str).unwrap_or("string"),
                    "format": c.get("format").and_then(Value::as_str).unwrap_or(""),
                    "description": c.get("description").and_then(Value::as_str).unwrap_or(""),
                    "priority": c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                }));
            }
            cols
        }
        _ => vec![col("Name", "string", 0), col("Age", "date", 0)],
    }
}

fn cells(def: &ResourceDef, obj: &Value, now: Timestamp) -> Vec<Value> {
    let name = json!(object::name(obj));
    let created = object::meta_str(obj, "creationTimestamp");
    match (&def.builtin, &def.crd) {
        (Some(Builtin::Event), _) => {
            let mut c = vec![name];
            let mut rest = builtin_columns(Builtin::Event).1(&crate::events::v1_to_core(obj));
            let last = ["lastTimestamp", "eventTime", "firstTimestamp"]
                .iter()
                .find_map(|k| obj.get(*k).and_then(Value::as_str))
                .or(created);
            rest[0] = age(last, now);
            // Event tables have no NAME column first in kubectl; keep NAME for -o name.
            c.extend(rest);
            c.remove(0);
            c
        }
        (Some(Builtin::CustomResourceDefinition), _) => {
            vec![
                name,
                json!(object::meta_str(obj, "creationTimestamp").unwrap_or("")),
            ]
        }
        (Some(b), _) => {
            let mut c = vec![name];
            c.extend(
                builtin_columns(*b).1(obj)
                    .into_iter()
                    .map(|v| if v.is_null() { age(created, now) } else { v }),
            );
            c
        }
        (None, Some((_, v))) if !v.printer_columns.is_empty() => {
            let mut c = vec![name];
            for pc in &v.printer_columns {
                let path = pc.get("jsonPath").and_then(Value::as_str).unwrap_or("");
                let typ = pc.get("type").and_then(Value::as_str).unwrap_or("string");
                c.push(custom_cell(typ, jsonpath(obj, path), now));
            }
            c
        }
        _ => vec![name, age(created, now)],
    }
}

/// The object a row carries, per `includeObject`.
pub fn row_object(obj: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        IncludeObject::Metadata => partial_metadata(obj),
    }
}

/// `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// A table of objects (served shape).
pub fn table(
    def: &ResourceDef,
    items: &[Arc<Value>],
    now: Timestamp,
    include: IncludeObject,
    list_meta: Value,
    no_headers: bool,
) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|o| json!({"cells": cells(def, o, now), "object": row_object(o, include)}))
        .collect();
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "rows": rows,
    });
    if !no_headers {
        t["columnDefinitions"] = json!(columns(def));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 300), "3h5m");
        assert_eq!(human_duration(20 * 3600), "20h");
        assert_eq!(human_duration(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(human_duration(400 * 86400), "400d");
        assert_eq!(human_duration(-5), "<invalid>");
    }

    #[test]
    fn custom_resource_columns() {
        let crd = json!({"metadata": {"name": "cpbs.x.io"}, "spec": {"group": "x.io", "scope": "Namespaced",
            "names": {"plural": "cpbs", "kind": "Cpb"},
            "versions": [{"name": "v1", "served": true, "storage": true, "additionalPrinterColumns": [
                {"name": "Offer", "type": "string", "jsonPath": ".spec.offer"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}});
        let def = crate::resources::defs_from_crd(&crd).unwrap().remove(0);
        let now: Timestamp = "2025-01-01T00:10:00Z".parse().unwrap();
        let obj = Arc::new(
            json!({"metadata": {"name": "b", "creationTimestamp": "2025-01-01T00:00:00Z"}, "spec": {"offer": "o"}}),
        );
        let t = table(&def, &[obj], now, IncludeObject::Metadata, json!({}), false);
        assert_eq!(t["rows"][0]["cells"], json!(["b", "o", "10m"]));
        assert_eq!(t["columnDefinitions"][1]["name"], "Offer");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}
