//! Namespace termination: the system namespaces, deleting everything in a namespace, and
//! removing it once empty.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{DeleteOptions, Deleted, State};
use crate::error::ApiError;
use crate::object::{self};
use crate::resources::ResourceDef;

/// Namespaces every cluster starts with; they cannot be deleted.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl State {
    pub(super) fn delete_namespace(
        &mut self,
        def: &Arc<ResourceDef>,
        old: Arc<Value>,
    ) -> Result<Deleted, ApiError> {
        let name = object::name(&old).to_string();
        if SYSTEM_NAMESPACES.contains(&name.as_str()) {
            return Err(ApiError::forbidden(
                "",
                "namespaces",
                &name,
                "this namespace may not be deleted",
            ));
        }
        if object::deletion_timestamp(&old).is_none() {
            let mut new = (*old).clone();
            object::set_meta(&mut new, "deletionTimestamp", json!(self.now()));
            object::set_meta(&mut new, "deletionGracePeriodSeconds", json!(0));
            object::set_path(&mut new, &["status", "phase"], json!("Terminating"));
            self.store.put(&def.storage, new);
            // The namespace controller: delete everything in the namespace.
            let namespaced: Vec<Arc<ResourceDef>> = self
                .store
                .storages()
                .iter()
                .filter_map(|s| self.def_by_storage(s))
                .filter(|d| d.namespaced)
                .collect();
            for d in namespaced {
                let names: Vec<String> = self
                    .store
                    .range(&d.storage, Some(&name), None)
                    .filter(|o| object::deletion_timestamp(&o.value()).is_none())
                    .map(|o| o.name().to_string())
                    .collect();
                for n in names {
                    let _ = self.delete(&d, Some(&name), &n, &DeleteOptions::default());
                }
            }
        }
        self.maybe_finish_namespace(&name);
        let key = (String::new(), name);
        Ok(match self.store.get(&def.storage, &key) {
            Some(o) => Deleted::Pending(o.clone()),
            None => Deleted::Gone(old),
        })
    }

    pub(super) fn maybe_finish_namespace(&mut self, ns: &str) {
        let key = (String::new(), ns.to_string());
        let terminating = self
            .store
            .get("namespaces", &key)
            .is_some_and(|n| object::deletion_timestamp(&n).is_some());
        if !terminating {
            return;
        }
        let empty = self
            .store
            .storages()
            .iter()
            .filter(|s| self.def_by_storage(s).is_some_and(|d| d.namespaced))
            .all(|s| !self.store.any_in_namespace(s, ns));
        if empty {
            self.remove_object("namespaces", &key);
        }
    }
}
