//! `core/v1` and `events.k8s.io/v1` Events are one resource in two shapes. They are stored
//! in the core shape and converted when served as `events.k8s.io/v1`, field for field as
//! the API server converts them, so an event written by kube's `Recorder` shows up in
//! `kubectl describe` (which reads core events by `involvedObject`).

use serde_json::{Map, Value};

/// (events.k8s.io/v1 name, core/v1 name) of the fields that are renamed.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn rename(obj: &Value, api_version: &str, to_core: bool) -> Value {
    let Some(m) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let renamed = RENAMES.iter().find_map(|(new, core)| {
            if to_core && k == new {
                Some(*core)
            } else if !to_core && k == core {
                Some(*new)
            } else {
                None
            }
        });
        out.insert(renamed.unwrap_or(k).to_string(), v.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// An `events.k8s.io/v1` Event in the core shape.
pub fn v1_to_core(obj: &Value) -> Value {
    rename(obj, "v1", true)
}

/// A core Event in the `events.k8s.io/v1` shape.
pub fn core_to_v1(obj: &Value) -> Value {
    rename(obj, "events.k8s.io/v1", false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "d"},
            "regarding": {"kind": "Pod", "name": "p"},
            "note": "hello", "reason": "Started", "type": "Normal",
            "reportingController": "edgeplane", "eventTime": "2025-01-01T00:00:00.000000Z"
        });
        let core = v1_to_core(&v1);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["reportingComponent"], "edgeplane");
        assert_eq!(core_to_v1(&core), v1);
    }
}
