//! Patches (JSON, merge, strategic merge) and server-side apply.

use std::sync::Arc;

use serde_json::{Value, json};

use super::managed_fields::ManagerOp;
use super::served::{from_served, shape_of, to_served};
use super::{PatchType, State, Subresource, WriteOptions};
use crate::error::{ApiError, FieldError};
use crate::object::{self};
use crate::patch::{self, FieldSet};
use crate::resources::ResourceDef;

impl State {
    /// Patches an object or its status. Returns the result and whether apply created it.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        name: &str,
        ptype: PatchType,
        patch_body: &Value,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> Result<(Arc<Value>, bool), ApiError> {
        let existing = self.get(def, ns, name);
        if let PatchType::Apply { .. } = ptype {
            return self.apply(def, ns, name, existing.ok(), patch_body, sub, opts);
        }
        let old = existing?;
        let served = to_served(def, &old);
        let mut patched = (*served).clone();
        match ptype {
            PatchType::Merge => {
                if !patch_body.is_object() {
                    return Err(ApiError::bad_request("merge patch must be a JSON object"));
                }
                patch::merge_patch(&mut patched, patch_body);
            }
            PatchType::Json => {
                patch::json_patch(&mut patched, patch_body).map_err(|e| match e {
                    // The body is not a list of operations: the API server cannot decode it.
                    patch::JsonPatchError::Invalid(_) => ApiError::bad_request(e.to_string()),
                    patch::JsonPatchError::Failed(_) => ApiError::invalid(
                        &def.group,
                        &def.kind,
                        name,
                        vec![FieldError::new(
                            crate::error::FieldErrorKind::Invalid,
                            "",
                            e.to_string(),
                        )],
                    ),
                })?
            }
            PatchType::Strategic => {
                if def.is_custom() {
                    return Err(ApiError::unsupported_media_type(
                        "application/strategic-merge-patch+json",
                        PatchType::media_types(true),
                    ));
                }
                patched = patch::strategic_merge(&served, patch_body, shape_of(def))
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
            }
            PatchType::Apply { .. } => {
                return Err(ApiError::internal("apply patches are handled before"));
            }
        }
        if !patched.is_object() {
            return Err(ApiError::bad_request(
                "the patched object is not a JSON object",
            ));
        }
        Self::check_metadata_types(&patched)?;
        if object::name(&patched) != name {
            return Err(ApiError::invalid(
                &def.group,
                &def.kind,
                name,
                vec![FieldError::invalid(
                    "metadata.name",
                    &json!(object::name(&patched)),
                    "field is immutable",
                )],
            ));
        }
        if def.namespaced && object::namespace(&patched) != object::namespace(&old) {
            return Err(ApiError::invalid(
                &def.group,
                &def.kind,
                name,
                vec![FieldError::invalid(
                    "metadata.namespace",
                    &json!(object::namespace(&patched)),
                    "field is immutable",
                )],
            ));
        }
        for f in ["apiVersion", "kind"] {
            if patched.get(f) != served.get(f) {
                return Err(ApiError::bad_request(format!(
                    "{f} cannot be changed by a patch"
                )));
            }
        }
        let candidate = from_served(def, patched);
        let result = self.write_update(def, old, candidate, sub, opts, ManagerOp::Update)?;
        Ok((result, false))
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        name: &str,
        existing: Option<Arc<Value>>,
        config: &Value,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> Result<(Arc<Value>, bool), ApiError> {
        let manager = opts
            .field_manager
            .clone()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request("PATCH request: fieldManager must be set for apply patches")
            })?;
        if !config.is_object() {
            return Err(ApiError::bad_request(
                "apply configuration must be an object",
            ));
        }
        Self::check_type_meta(def, config)?;
        Self::check_metadata_types(config)?;
        // An apply configuration may leave the name to the URL (kube's controller-rs
        // applies status without metadata).
        let cfg_name = object::name(config);
        if !cfg_name.is_empty() && cfg_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({cfg_name}) does not match the name on the URL ({name})"
            )));
        }
        let shape = shape_of(def);
        let mut cfg = config.clone();
        if let Some(m) = object::meta_mut(&mut cfg) {
            m.remove("managedFields");
            m.insert("name".into(), json!(name));
        }
        match sub {
            Subresource::Main if def.status_subresource => {
                if let Some(m) = cfg.as_object_mut() {
                    m.remove("status");
                }
            }
            Subresource::Status => {
                let status = cfg.get("status").cloned();
                let mut only = json!({"apiVersion": cfg["apiVersion"], "kind": cfg["kind"], "metadata": {"name": name}});
                if let Some(rv) = object::meta_str(&cfg, "resourceVersion") {
                    only["metadata"]["resourceVersion"] = json!(rv);
                }
                if let Some(s) = status {
                    only["status"] = s;
                }
                cfg = only;
            }
            Subresource::Main => {}
        }
        let new_set = patch::field_set(&cfg, shape, usize::MAX);
        let Some(old) = existing else {
            if sub == Subresource::Status {
                return Err(ApiError::not_found(&def.group, &def.plural, name));
            }
            let created = self.create_as(def, ns, cfg, opts, ManagerOp::Apply(new_set))?;
            return Ok((created, true));
        };
        let served = to_served(def, &old);
        let mut merged = patch::apply_merge(&served, &cfg, shape);
        let sub_name = if sub == Subresource::Status {
            "status"
        } else {
            ""
        };
        let entries: Vec<Value> = old
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut prev = FieldSet::new();
        let mut others = FieldSet::new();
        for e in &entries {
            let set = patch::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null));
            let mine = e.get("manager").and_then(Value::as_str) == Some(manager.as_str())
                && e.get("operation").and_then(Value::as_str) == Some("Apply")
                && e.get("subresource").and_then(Value::as_str).unwrap_or("") == sub_name;
            if mine {
                prev = set;
            } else {
                others.extend(set);
            }
        }
        let dropped: FieldSet = prev.difference(&new_set).cloned().collect();
        let keep: FieldSet = new_set.union(&others).cloned().collect();
        patch::remove_fields(&mut merged, &dropped, &keep, shape);
        let candidate = from_served(def, merged);
        let result =
            self.write_update(def, old, candidate, sub, opts, ManagerOp::Apply(new_set))?;
        Ok((result, false))
    }
}
