//! RFC 7386 JSON merge patch and RFC 6902 JSON patch, for every resource.

use serde_json::{Map, Value};

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// A JSON patch that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum JsonPatchError {
    #[error("invalid JSON patch: {0}")]
    Invalid(serde_json::Error),
    #[error(transparent)]
    Failed(json_patch::PatchError),
}

/// RFC 6902 JSON patch, all or nothing (RFC 6902 section 5): when an operation fails,
/// `target` is left as it was. The `json-patch` crate stops at the failing operation with
/// the earlier ones applied, so the patch is applied to a copy.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), JsonPatchError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(JsonPatchError::Invalid)?;
    let mut patched = target.clone();
    json_patch::patch(&mut patched, &ops).map_err(JsonPatchError::Failed)?;
    *target = patched;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_ops_and_failures() {
        let mut t = json!({"metadata": {"labels": {"a": "1"}}});
        json_patch(
            &mut t,
            &json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}]),
        )
        .unwrap();
        assert_eq!(t["metadata"]["labels"]["b"], "2");
        assert!(
            json_patch(
                &mut t,
                &json!([{"op": "test", "path": "/metadata/labels/a", "value": "x"}])
            )
            .is_err()
        );
        assert!(json_patch(&mut t, &json!({"not": "a list"})).is_err());
    }

    /// Found by the `patch` fuzz target: a move that succeeded stayed applied when a later
    /// operation of the same patch failed.
    #[test]
    fn a_failing_json_patch_changes_nothing() {
        let mut t = json!({"metadata": {"labels": {"a": "1"}}});
        let before = t.clone();
        let patch = json!([
            {"op": "move", "from": "/metadata/labels", "path": "/labels"},
            {"op": "copy", "from": "/spec", "path": "/spec2"}
        ]);
        assert!(json_patch(&mut t, &patch).is_err());
        assert_eq!(t, before);
    }
}
