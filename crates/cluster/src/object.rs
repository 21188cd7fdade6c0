//! Helpers to read and write the parts of an object every kind shares, on `serde_json::Value`.
//!
//! The store keeps objects as JSON values, exactly as a client sent them plus what the
//! server adds, so that unknown fields survive and custom resources need no Rust type.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Map, Value};

/// `obj.metadata.<field>` as a string.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace").unwrap_or("")
}

pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid").unwrap_or("")
}

pub fn resource_version(obj: &Value) -> &str {
    meta_str(obj, "resourceVersion").unwrap_or("")
}

pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    meta_str(obj, "deletionTimestamp")
}

/// `metadata`, created if absent. Returns `None` when the object is not a JSON object.
pub fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut()
}

pub fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if let Some(meta) = meta_mut(obj) {
        if value.is_null() {
            meta.remove(field);
        } else {
            meta.insert(field.to_string(), value);
        }
    }
}

/// Labels as a map; non-string values are skipped (validation rejects them).
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj.get("metadata").and_then(|m| m.get("labels")))
}

pub fn annotations(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj.get("metadata").and_then(|m| m.get("annotations")))
}

pub fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The owner references of an object: `(uid, controller, blockOwnerDeletion)`.
pub fn owner_uids(obj: &Value) -> Vec<String> {
    owner_refs(obj)
        .iter()
        .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
        .collect()
}

pub fn owner_refs(obj: &Value) -> Vec<Value> {
    obj.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The value at a dotted path of object keys, `["spec", "nodeName"]`.
pub fn get_path<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

pub fn get_str<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    get_path(obj, path)?.as_str()
}

/// Sets the value at a path of object keys, creating intermediate objects.
pub fn set_path(obj: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *obj = value;
        return;
    };
    let mut cur = obj;
    for seg in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        cur = map
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Some(map) = cur.as_object_mut() {
        map.insert(last.to_string(), value);
    }
}

pub fn remove_path(obj: &mut Value, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut cur = obj;
    for seg in parents {
        cur = cur.get_mut(seg)?;
    }
    cur.as_object_mut()?.remove(*last)
}

/// `metav1.Time`: RFC 3339 with second precision.
pub fn format_time(ts: Timestamp) -> String {
    Timestamp::from_second(ts.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ts.to_string())
}

/// `metav1.MicroTime`: RFC 3339 with microsecond precision.
pub fn format_micro_time(ts: Timestamp) -> String {
    let micros = ts.subsec_microsecond().max(0);
    let whole = Timestamp::from_second(ts.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ts.to_string());
    // `whole` ends in `Z`; insert the fraction before it.
    let base = whole.trim_end_matches('Z');
    format!("{base}.{micros:06}Z")
}

pub fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// A DNS-1123 subdomain: lower-case alphanumerics, '-' and '.', at most 253 characters,
/// starting and ending with an alphanumeric.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(|part| is_label_chars(part, usize::MAX))
}

/// A DNS-1123 label: like a subdomain without dots, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    is_label_chars(s, 63)
}

fn is_label_chars(s: &str, max: usize) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Whether a string is a valid label or annotation key name part / label value:
/// alphanumerics, '-', '_', '.', starting and ending with an alphanumeric.
fn is_qualified_name_part(s: &str, max: usize) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// A qualified name (label and annotation keys, finalizers): `[prefix/]name`.
pub fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_qualified_name_part(name, 63),
        None => is_qualified_name_part(s, 63),
    }
}

/// A label value: empty, or a qualified name part of at most 63 characters.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_qualified_name_part(s, 63)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let mut v = json!({});
        set_path(&mut v, &["spec", "nodeName"], json!("n1"));
        assert_eq!(get_str(&v, &["spec", "nodeName"]), Some("n1"));
        assert_eq!(
            remove_path(&mut v, &["spec", "nodeName"]),
            Some(json!("n1"))
        );
        assert_eq!(get_path(&v, &["spec", "nodeName"]), None);
    }

    #[test]
    fn times() {
        let ts: Timestamp = "2025-01-02T03:04:05.123456789Z".parse().unwrap();
        assert_eq!(format_time(ts), "2025-01-02T03:04:05Z");
        assert_eq!(format_micro_time(ts), "2025-01-02T03:04:05.123456Z");
    }

    #[test]
    fn names() {
        assert!(is_dns_subdomain("a.b-c"));
        assert!(!is_dns_subdomain("A"));
        assert!(!is_dns_subdomain("-a"));
        assert!(is_dns_label("kube-system"));
        assert!(!is_dns_label("a.b"));
        assert!(is_qualified_name("constraint.edgeplane.io/planner"));
        assert!(is_qualified_name("app"));
        assert!(!is_qualified_name("a/b/c"));
        assert!(is_label_value(""));
        assert!(is_label_value("v1.2_x"));
        assert!(!is_label_value("a b"));
    }
}
