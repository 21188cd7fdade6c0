//! Server-side printing: `meta.k8s.io/v1` Tables, as kubectl asks for them
//! (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`). Built-in kinds get the columns
//! kubectl shows for them; custom resources get their CRD's `additionalPrinterColumns`.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::object;
use crate::resources::{Builtin, ResourceDef};

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

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[*].b`,
/// `.a[?(@.type=="Ready")].status`, escaped dots (`.labels.app\.kubernetes\.io/name`).
pub fn jsonpath(obj: &Value, expr: &str) -> Option<Value> {
    let expr = expr.trim().trim_start_matches('{').trim_end_matches('}');
    let mut cur = vec![obj.clone()];
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut key = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        key.push(chars[i + 1]);
                        i += 2;
                    } else {
                        key.push(chars[i]);
                        i += 1;
                    }
                }
                if key.is_empty() {
                    continue;
                }
                cur = cur.iter().filter_map(|v| v.get(&key).cloned()).collect();
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']')? + i;
                let inner: String = chars[i + 1..end].iter().collect();
                i = end + 1;
                let inner = inner.trim();
                if inner == "*" {
                    cur = cur
                        .iter()
                        .flat_map(|v| match v {
                            Value::Array(a) => a.clone(),
                            Value::Object(m) => m.values().cloned().collect(),
                            _ => vec![],
                        })
                        .collect();
                } else if let Some(filter) =
                    inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')'))
                {
                    let (lhs, rhs) = filter.split_once("==")?;
                    let field = lhs.trim().trim_start_matches('@');
                    let want = rhs.trim().trim_matches(|c| c == '"' || c == '\'');
                    cur = cur
                        .iter()
                        .filter_map(Value::as_array)
                        .flatten()
                        .filter(|item| {
                            jsonpath(item, field).is_some_and(|v| match v {
                                Value::String(s) => s == want,
                                other => other == want,
                            })
                        })
                        .cloned()
                        .collect();
                } else if let Some(key) =
                    inner.strip_prefix('\'').and_then(|k| k.strip_suffix('\''))
                {
                    cur = cur.iter().filter_map(|v| v.get(key).cloned()).collect();
                } else {
                    let idx: i64 = inner.parse().ok()?;
                    cur = cur
                        .iter()
                        .filter_map(|v| {
                            let a = v.as_array()?;
                            let i = if idx < 0 { a.len() as i64 + idx } else { idx };
                            a.get(usize::try_from(i).ok()?).cloned()
                        })
                        .collect();
                }
            }
            _ => i += 1,
        }
    }
    cur.into_iter().next()
}

fn custom_cell(typ: &str, v: Option<Value>, now: Timestamp) -> Value {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match typ {
        "string" => match v {
            Value::String(s) => json!(s),
            other => json!(other.to_string()),
        },
        "integer" => v.as_f64().map_or(Value::Null, |f| json!(f as i64)),
        "number" => v.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => v.as_bool().map_or(Value::Null, |b| json!(b)),
        "date" => match v.as_str() {
            Some(s) => age(Some(s), now),
            None => Value::Null,
        },
        _ => v,
    }
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    object::get_str(v, path).unwrap_or("")
}

fn i(v: &Value, path: &[&str]) -> i64 {
    object::get_path(v, path)
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn containers_images(spec: Option<&Value>) -> (String, String) {
    let cs = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = cs
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    let images: Vec<&str> = cs
        .iter()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .collect();
    (names.join(","), images.join(","))
}

fn selector_string(v: Option<&Value>) -> String {
    v.and_then(|s| crate::selector::from_api(s).ok())
        .map(|s| {
            let q = s.to_query();
            if q.is_empty() {
                "<none>".to_string()
            } else {
                q
            }
        })
        .unwrap_or_else(|| "<none>".into())
}

/// The STATUS column of a pod, computed as kubectl does.
pub fn pod_status(pod: &Value) -> String {
    let mut reason = s(pod, &["status", "phase"]).to_string();
    let r = s(pod, &["status", "reason"]);
    if !r.is_empty() {
        reason = r.to_string();
    }
    let conds = object::get_path(pod, &["status", "conditions"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if conds.iter().any(|c| {
        c.get("type").and_then(Value::as_str) == Some("PodScheduled")
            && c.get("reason").and_then(Value::as_str) == Some("SchedulingGated")
    }) {
        reason = "SchedulingGated".into();
    }
    let statuses = object::get_path(pod, &["status", "containerStatuses"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for cs in statuses.iter().rev() {
        if let Some(w) =
            object::get_str(cs, &["state", "waiting", "reason"]).filter(|w| !w.is_empty())
        {
            reason = w.to_string();
        } else if let Some(t) = object::get_path(cs, &["state", "terminated"]) {
            let tr = s(t, &["reason"]);
            reason = if tr.is_empty() {
                format!("ExitCode:{}", i(t, &["exitCode"]))
            } else {
                tr.to_string()
            };
        }
    }
    if object::deletion_timestamp(pod).is_some() {
        reason = if r == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let total = object::get_path(pod, &["spec", "containers"])
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let statuses = object::get_path(pod, &["status", "containerStatuses"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ready = statuses
        .iter()
        .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: i64 = statuses
        .iter()
        .map(|c| c.get("restartCount").and_then(Value::as_i64).unwrap_or(0))
        .sum();
    let none = |x: &str| {
        if x.is_empty() {
            "<none>".to_string()
        } else {
            x.to_string()
        }
    };
    vec![
        json!(format!("{ready}/{total}")),
        json!(pod_status(pod)),
        json!(restarts.to_string()),
        Value::Null, // age, filled by the caller
        json!(none(s(pod, &["status", "podIP"]))),
        json!(none(s(pod, &["spec", "nodeName"]))),
        json!(none(s(pod, &["status", "nominatedNodeName"]))),
        json!("<none>"),
    ]
}

fn node_cells(node: &Value) -> Vec<Value> {
    let conds = object::get_path(node, &["status", "conditions"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut status = match conds
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        .and_then(|c| c.get("status").and_then(Value::as_str))
    {
        Some("True") => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if object::get_path(node, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = object::labels(node)
        .keys()
        .filter_map(|k| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_string)
        })
        .collect();
    roles.sort();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let addr = |t: &str| {
        object::get_path(node, &["status", "addresses"])
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|x| x.get("type").and_then(Value::as_str) == Some(t))
                    .and_then(|x| x.get("address").and_then(Value::as_str))
            })
            .unwrap_or("<none>")
            .to_string()
    };
    vec![
        json!(status),
        json!(roles),
        Value::Null,
        json!(s(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(addr("InternalIP")),
        json!(addr("ExternalIP")),
        json!(s(node, &["status", "nodeInfo", "osImage"])),
        json!(s(node, &["status", "nodeInfo", "kernelVersion"])),
        json!(s(node, &["status", "nodeInfo", "containerRuntimeVersion"])),
    ]
}

/// Column definitions and a row builder for a resource: cells after the name; `Null` marks
/// the age cell, computed from creationTimestamp.
type Cells = fn(&Value) -> Vec<Value>;

fn builtin_columns(kind: Builtin) -> (Vec<Value>, Cells) {
    match kind {
        Builtin::Pod => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Status", "string", 0),
                col("Restarts", "string", 0),
                col("Age", "string", 0),
                col("IP", "string", 1),
                col("Node", "string", 1),
                col("Nominated Node", "string", 1),
                col("Readiness Gates", "string", 1),
            ],
            pod_cells,
        ),
        Builtin::Node => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Roles", "string", 0),
                col("Age", "string", 0),
                col("Version", "string", 0),
                col("Internal-IP", "string", 1),
                col("External-IP", "string", 1),
                col("OS-Image", "string", 1),
                col("Kernel-Version", "string", 1),
                col("Container-Runtime", "string", 1),
            ],
            node_cells,
        ),
        Builtin::Namespace => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Age", "string", 0),
            ],
            |o| vec![json!(s(o, &["status", "phase"])), Value::Null],
        ),
        Builtin::Service => (
            vec![
                col("Name", "string", 0),
                col("Type", "string", 0),
                col("Cluster-IP", "string", 0),
                col("External-IP", "string", 0),
                col("Port(s)", "string", 0),
                col("Age", "string", 0),
                col("Selector", "string", 1),
            ],
            |o| {
                let ports: Vec<String> = object::get_path(o, &["spec", "ports"])
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| format!("{}/{}", i(p, &["port"]), s(p, &["protocol"])))
                            .collect()
                    })
                    .unwrap_or_default();
                let sel: Vec<String> =
                    object::string_map(object::get_path(o, &["spec", "selector"]))
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                vec![
                    json!(s(o, &["spec", "type"])),
                    json!(s(o, &["spec", "clusterIP"])),
                    json!("<none>"),
                    json!(if ports.is_empty() {
                        "<none>".into()
                    } else {
                        ports.join(",")
                    }),
                    Value::Null,
                    json!(if sel.is_empty() {
                        "<none>".into()
                    } else {
                        sel.join(",")
                    }),
                ]
            },
        ),
        Builtin::ConfigMap | Builtin::Secret => (
            vec![
                col("Name", "string", 0),
                col("Data", "integer", 0),
                col("Age", "string", 0),
            ],
            |o| {
                let n = ["data", "binaryData"]
                    .iter()
                    .filter_map(|k| o.get(*k).and_then(Value::as_object))
                    .map(|m| m.len())
                    .sum::<usize>();
                vec![json!(n), Value::Null]
            },
        ),
        Builtin::Event => (
            vec![
                col("Last Seen", "string", 0),
                col("Type", "string", 0),
                col("Reason", "string", 0),
                col("Object", "string", 0),
                col("Message", "string", 0),
            ],
            |o| {
                let obj = format!(
                    "{}/{}",
                    s(o, &["involvedObject", "kind"]).to_ascii_lowercase(),
                    s(o, &["involvedObject", "name"])
                );
                vec![
                    Value::Null,
                    json!(s(o, &["type"])),
                    json!(s(o, &["reason"])),
                    json!(obj),
                    json!(s(o, &["message"])),
                ]
            },
        ),
        Builtin::Deployment => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Up-to-date", "integer", 0),
                col("Available", "integer", 0),
                col("Age", "string", 0),
                col("Containers", "string", 1),
                col("Images", "string", 1),
                col("Selector", "string", 1),
            ],
            |o| {
                let (c, im) = containers_images(object::get_path(o, &["spec", "template", "spec"]));
                vec![
                    json!(format!(
                        "{}/{}",
                        i(o, &["status", "readyReplicas"]),
                        i(o, &["spec", "replicas"])
                    )),
                    json!(i(o, &["status", "updatedReplicas"])),
                    json!(i(o, &["status", "availableReplicas"])),
                    Value::Null,
                    json!(c),
                    json!(im),
                    json!(selector_string(object::get_path(o, &["spec", "selector"]))),
                ]
            },
        ),
        Builtin::ReplicaSet => (
            vec![
                col("Name", "string", 0),
                col("Desired", "integer", 0),
                col("Current", "integer", 0),
                col("Ready", "integer", 0),
                col("Age", "string", 0),
                col("Containers", "string", 1),
                col("Images", "string", 1),
                col("Selector", "string", 1),
            ],
            |o| {
                let (c, im) = containers_images(object::get_path(o, &["spec", "template", "spec"]));
                vec![
                    json!(i(o, &["spec", "replicas"])),
                    json!(i(o, &["status", "replicas"])),
                    json!(i(o, &["status", "readyReplicas"])),
                    Value::Null,
                    json!(c),
                    json!(im),
                    json!(selector_string(object::get_path(o, &["spec", "selector"]))),
                ]
            },
        ),
        Builtin::StatefulSet => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Age", "string", 0),
                col("Containers", "string", 1),
                col("Images", "string", 1),
            ],
            |o| {
                let (c, im) = containers_images(object::get_path(o, &["spec", "template", "spec"]));
                vec![
                    json!(format!(
                        "{}/{}",
                        i(o, &["status", "readyReplicas"]),
                        i(o, &["spec", "replicas"])
                    )),
                    Value::Null,
                    json!(c),
                    json!(im),
                ]
            },
        ),
        Builtin::DaemonSet => (
            vec![
                col("Name", "string", 0),
                col("Desired", "integer", 0),
                col("Current", "integer", 0),
                col("Ready", "integer", 0),
                col("Up-to-date", "integer", 0),
                col("Available", "integer", 0),
                col("Age", "string", 0),
            ],
            |o| {
                vec![
                    json!(i(o, &["status", "desiredNumberScheduled"])),
                    json!(i(o, &["status", "currentNumberScheduled"])),
                    json!(i(o, &["status", "numberReady"])),
                    json!(i(o, &["status", "updatedNumberScheduled"])),
                    json!(i(o, &["status", "numberAvailable"])),
                    Value::Null,
                ]
            },
        ),
        Builtin::Lease => (
            vec![
                col("Name", "string", 0),
                col("Holder", "string", 0),
                col("Age", "string", 0),
            ],
            |o| vec![json!(s(o, &["spec", "holderIdentity"])), Value::Null],
        ),
        Builtin::PodDisruptionBudget => (
            vec![
                col("Name", "string", 0),
                col("Min Available", "string", 0),
                col("Max Unavailable", "string", 0),
                col("Allowed Disruptions", "integer", 0),
                col("Age", "string", 0),
            ],
            |o| {
                let show = |k: &str| match object::get_path(o, &["spec", k]) {
                    Some(Value::String(x)) => x.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => "N/A".to_string(),
                };
                vec![
                    json!(show("minAvailable")),
                    json!(show("maxUnavailable")),
                    json!(i(o, &["status", "disruptionsAllowed"])),
                    Value::Null,
                ]
            },
        ),
        Builtin::CustomResourceDefinition => (
            vec![col("Name", "string", 0), col("Created At", "date", 0)],
            |o| {
                vec![json!(
                    object::meta_str(o, "creationTimestamp").unwrap_or("")
                )]
            },
        ),
        Builtin::ServiceAccount => (
            vec![col("Name", "string", 0), col("Age", "string", 0)],
            |_| vec![Value::Null],
        ),
    }
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
    fn jsonpaths() {
        let o = json!({"spec": {"offer": "o", "list": [1, 2]}, "status": {"conditions": [
            {"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]},
            "metadata": {"labels": {"app.kubernetes.io/name": "x"}}});
        assert_eq!(jsonpath(&o, ".spec.offer"), Some(json!("o")));
        assert_eq!(jsonpath(&o, ".spec.list[1]"), Some(json!(2)));
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(json!("True"))
        );
        assert_eq!(
            jsonpath(&o, ".metadata.labels.app\\.kubernetes\\.io/name"),
            Some(json!("x"))
        );
        assert_eq!(jsonpath(&o, ".spec.missing"), None);
    }

    #[test]
    fn pod_status_column() {
        let gated = json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}});
        assert_eq!(pod_status(&gated), "SchedulingGated");
        let creating = json!({"status": {"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(pod_status(&creating), "ContainerCreating");
        let deleting =
            json!({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}});
        assert_eq!(pod_status(&deleting), "Terminating");
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
