//! Objects in their served shape (apiVersion, the `events.k8s.io` event shape) and the
//! label and field selectors of lists and watches.

use std::sync::Arc;

use serde_json::Value;

use crate::error::ApiError;
use crate::events;
use crate::object::{self};
use crate::patch::Shape;
use crate::resources::{Builtin, Repr, ResourceDef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Stored;

/// The shape of a resource for list merge semantics.
pub fn shape_of(def: &ResourceDef) -> Shape<'_> {
    match (&def.builtin, &def.crd) {
        (Some(b), _) => Shape::Builtin(*b),
        (None, Some((_, v))) => v.schema.as_ref().map_or(Shape::Opaque, Shape::Schema),
        _ => Shape::Opaque,
    }
}

/// The object as served by `def`: its apiVersion, and for `events.k8s.io` the event shape.
pub fn to_served(def: &ResourceDef, obj: &Arc<Value>) -> Arc<Value> {
    match def.repr {
        Repr::EventsV1 => Arc::new(events::core_to_v1(obj)),
        Repr::Native => {
            let want = def.api_version();
            if obj.get("apiVersion").and_then(Value::as_str) == Some(want.as_str()) {
                obj.clone()
            } else {
                let mut v = (**obj).clone();
                if let Some(m) = v.as_object_mut() {
                    m.insert("apiVersion".into(), Value::String(want));
                }
                Arc::new(v)
            }
        }
    }
}

pub(super) fn from_served(def: &ResourceDef, obj: Value) -> Value {
    match def.repr {
        Repr::EventsV1 => events::v1_to_core(&obj),
        Repr::Native => obj,
    }
}

/// The value of a selectable field, as a field selector compares it.
pub fn field_value(obj: &Value, field: &str) -> Option<String> {
    if field == "source" {
        return obj
            .get("source")
            .and_then(|s| s.get("component"))
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let mut cur = obj;
    for seg in field.split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => {
                return matches!(field, "spec.unschedulable" | "spec.hostNetwork")
                    .then(|| "false".to_string());
            }
        }
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether a stored object can be served as its stored text (no conversion).
pub fn served_natively(def: &ResourceDef, s: &Stored) -> bool {
    def.repr == Repr::Native && s.api_version == def.api_version()
}

/// A stored object in its served shape.
pub fn served_value(def: &ResourceDef, s: &Stored) -> Arc<Value> {
    to_served(def, &s.value_arc())
}

/// Whether a stored object passes selectors; parses it only for field selectors on fields
/// the store does not index.
pub fn stored_selected(
    def: &ResourceDef,
    s: &Stored,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> bool {
    if !labels.matches_pairs(&s.labels) {
        return false;
    }
    if fields.is_empty() {
        return true;
    }
    let indexed = |f: &str| match f {
        "metadata.name" => Some(s.name().to_string()),
        "metadata.namespace" => Some(s.namespace().to_string()),
        "spec.nodeName" if def.builtin == Some(Builtin::Pod) => Some(s.node_name.clone()),
        _ => None,
    };
    if fields
        .requirements
        .iter()
        .all(|r| indexed(&r.field).is_some())
    {
        return fields.matches(indexed);
    }
    let v = served_value(def, s);
    fields.matches(|f| field_value(&v, f))
}

fn labels_match(sel: &LabelSelector, obj: &Value) -> bool {
    sel.is_empty() || sel.matches(&object::labels(obj))
}

/// Whether a served object passes a list or watch's selectors.
pub fn selected(obj: &Value, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    labels_match(labels, obj) && (fields.is_empty() || fields.matches(|f| field_value(obj, f)))
}

/// Checks the field selector names only fields the resource supports.
pub fn check_fields(def: &ResourceDef, fields: &FieldSelector) -> Result<(), ApiError> {
    for r in &fields.requirements {
        if !def.supports_field(&r.field) {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {}",
                r.field
            )));
        }
    }
    Ok(())
}
