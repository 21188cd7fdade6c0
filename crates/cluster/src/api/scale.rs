//! The scale subresource (`autoscaling/v1` Scale).

use std::sync::Arc;

use serde_json::{Value, json};

use super::managed_fields::ManagerOp;
use super::served::{from_served, to_served};
use super::{State, Subresource, WriteOptions};
use crate::error::{ApiError, FieldError};
use crate::object::{self};
use crate::resources::ResourceDef;

impl State {
    /// `GET .../scale`.
    pub fn get_scale(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let obj = self.get(def, ns, name)?;
        scale_of(def, &obj)
    }

    /// `PUT .../scale` or a patch of it: sets the replicas.
    pub fn set_scale(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        name: &str,
        scale: &Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let paths = def.scale.clone().ok_or_else(ApiError::path_not_found)?;
        let old = self.get(def, ns, name)?;
        let replicas = scale
            .get("spec")
            .and_then(|s| s.get("replicas"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                name,
                vec![FieldError::invalid(
                    "spec.replicas",
                    &json!(replicas),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let rv = object::meta_str(scale, "resourceVersion").unwrap_or("");
        if !rv.is_empty() && rv != object::resource_version(&old) {
            return Err(ApiError::modified(&def.group, &def.plural, name));
        }
        let mut new = (*to_served(def, &old)).clone();
        let path: Vec<&str> = paths
            .spec_replicas
            .trim_start_matches('.')
            .split('.')
            .collect();
        object::set_path(&mut new, &path, json!(replicas));
        let result = self.write_update(
            def,
            old,
            from_served(def, new),
            Subresource::Main,
            opts,
            ManagerOp::Update,
        )?;
        scale_of(def, &result)
    }
}

/// The `autoscaling/v1` Scale of an object.
pub fn scale_of(def: &ResourceDef, obj: &Value) -> Result<Value, ApiError> {
    let paths = def.scale.as_ref().ok_or_else(ApiError::path_not_found)?;
    let at = |p: &str| -> Option<Value> {
        let segs: Vec<&str> = p.trim_start_matches('.').split('.').collect();
        object::get_path(obj, &segs).cloned()
    };
    let selector = match def.builtin {
        Some(_) => obj
            .get("spec")
            .and_then(|s| s.get("selector"))
            .and_then(|s| crate::selector::from_api(s).ok())
            .map(|s| s.to_query()),
        None => paths
            .label_selector
            .as_deref()
            .and_then(at)
            .and_then(|v| v.as_str().map(str::to_string)),
    };
    let mut status =
        json!({"replicas": at(&paths.status_replicas).and_then(|v| v.as_i64()).unwrap_or(0)});
    if let Some(s) = selector {
        status["selector"] = json!(s);
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": object::name(obj),
            "namespace": object::namespace(obj),
            "uid": object::uid(obj),
            "resourceVersion": object::resource_version(obj),
            "creationTimestamp": object::meta_str(obj, "creationTimestamp"),
        },
        "spec": {"replicas": at(&paths.spec_replicas).and_then(|v| v.as_i64()).unwrap_or(0)},
        "status": status,
    }))
}
