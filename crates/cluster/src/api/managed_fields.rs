//! Field managers: what each write records in `metadata.managedFields`.

use serde_json::{Value, json};

use super::served::shape_of;
use super::{State, Subresource, WriteOptions};
use crate::object::{self};
use crate::patch::{self, FieldSet};
use crate::resources::ResourceDef;

pub(super) enum ManagerOp {
    Update,
    Apply(FieldSet),
}

/// How deep an update's field set is recorded in managedFields: top-level fields of
/// `spec`, `status` and `metadata` (deeper changes are owned as a subtree). Apply entries
/// are exact; updates are coarse, which keeps managedFields small on the thousands of pods
/// a simulation writes (and in every client's cache) and can only make server-side apply
/// keep a field, never drop one another manager set.
const UPDATE_FIELDS_DEPTH: usize = 2;

impl State {
    /// Records a write in `metadata.managedFields`.
    pub(super) fn record_manager(
        &self,
        def: &ResourceDef,
        old: Option<&Value>,
        new: &mut Value,
        manager: &str,
        op: &ManagerOp,
        sub: Subresource,
    ) {
        let shape = shape_of(def);
        let (operation, set) = match op {
            ManagerOp::Apply(set) => ("Apply", set.clone()),
            ManagerOp::Update => {
                let set = match old {
                    Some(old) => patch::changed_fields(old, new, shape, UPDATE_FIELDS_DEPTH),
                    None => patch::field_set(new, shape, UPDATE_FIELDS_DEPTH),
                };
                ("Update", set)
            }
        };
        // Main-resource writes do not own status where it is a subresource, and status
        // writes own only status.
        let is_status = |p: &patch::FieldPath| matches!(p.first(), Some(patch::PathElement::Field(f)) if f == "status");
        let set: FieldSet = match sub {
            Subresource::Main if def.status_subresource => {
                set.into_iter().filter(|p| !is_status(p)).collect()
            }
            Subresource::Status => set.into_iter().filter(is_status).collect(),
            Subresource::Main => set,
        };
        let sub_name = match sub {
            Subresource::Status => "status",
            Subresource::Main => "",
        };
        let mut entries: Vec<Value> = new
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let pos = entries.iter().position(|e| {
            e.get("manager").and_then(Value::as_str) == Some(manager)
                && e.get("operation").and_then(Value::as_str) == Some(operation)
                && e.get("subresource").and_then(Value::as_str).unwrap_or("") == sub_name
        });
        let merged = match (op, pos) {
            (ManagerOp::Update, Some(i)) => {
                let mut prev = patch::from_fields_v1(&entries[i]["fieldsV1"]);
                prev.extend(set);
                prev
            }
            _ => set,
        };
        if merged.is_empty() {
            if let (ManagerOp::Apply(_), Some(i)) = (op, pos) {
                entries.remove(i);
            }
        } else {
            let mut entry = json!({
                "manager": manager,
                "operation": operation,
                "apiVersion": def.api_version(),
                "time": self.now(),
                "fieldsType": "FieldsV1",
                "fieldsV1": patch::to_fields_v1(&merged),
            });
            if !sub_name.is_empty() {
                entry["subresource"] = json!(sub_name);
            }
            match pos {
                Some(i) => entries[i] = entry,
                None => entries.push(entry),
            }
        }
        if entries.is_empty() {
            if let Some(m) = object::meta_mut(new) {
                m.remove("managedFields");
            }
        } else {
            object::set_meta(new, "managedFields", Value::Array(entries));
        }
    }

    pub(super) fn manager_name(opts: &WriteOptions) -> String {
        opts.field_manager
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    }
}
