//! Deletes: preconditions, graceful pod deletion, finalizers, propagation policies and
//! delete-collection.

use std::sync::Arc;

use serde_json::{Value, json};

use super::served::to_served;
use super::write::same_ignoring_bookkeeping;
use super::{DeleteOptions, Deleted, ListOptions, Propagation, State};
use crate::error::ApiError;
use crate::object::{self, format_time};
use crate::resources::{Builtin, ResourceDef};

impl State {
    /// Deletes an object, honouring preconditions, finalizers, graceful pod deletion and the
    /// propagation policy.
    pub fn delete(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let old = self.get(def, ns, name)?;
        if let Some(uid) = &opts.precondition_uid
            && uid != object::uid(&old)
        {
            return Err(ApiError::conflict(
                &def.group,
                &def.plural,
                name,
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    object::uid(&old)
                ),
            ));
        }
        if let Some(rv) = &opts.precondition_resource_version
            && rv != object::resource_version(&old)
        {
            return Err(ApiError::conflict(
                &def.group,
                &def.plural,
                name,
                format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    object::resource_version(&old)
                ),
            ));
        }
        if opts.dry_run {
            return Ok(Deleted::Gone(old));
        }
        if def.builtin == Some(Builtin::Namespace) {
            return self.delete_namespace(def, old);
        }
        let key = crate::store::key_of(&old);
        let propagation = opts.propagation.unwrap_or_default();
        if propagation == Propagation::Orphan {
            self.orphan_dependents(object::uid(&old));
        }
        let now = self.clock.now();
        if def.builtin == Some(Builtin::Pod) {
            let scheduled = !object::get_str(&old, &["spec", "nodeName"])
                .unwrap_or("")
                .is_empty();
            let terminal = matches!(
                object::get_str(&old, &["status", "phase"]),
                Some("Succeeded") | Some("Failed")
            );
            let grace = opts.grace_period_seconds.unwrap_or_else(|| {
                old.get("spec")
                    .and_then(|s| s.get("terminationGracePeriodSeconds"))
                    .and_then(Value::as_i64)
                    .unwrap_or(30)
            });
            if scheduled && !terminal && grace > 0 {
                let current = old
                    .get("metadata")
                    .and_then(|m| m.get("deletionGracePeriodSeconds"))
                    .and_then(Value::as_i64);
                if object::deletion_timestamp(&old).is_some() && current.is_some_and(|c| c <= grace)
                {
                    return Ok(Deleted::Pending(old));
                }
                let mut new = (*old).clone();
                let at = now
                    .checked_add(jiff::SignedDuration::from_secs(grace))
                    .unwrap_or(now);
                object::set_meta(&mut new, "deletionTimestamp", json!(format_time(at)));
                object::set_meta(&mut new, "deletionGracePeriodSeconds", json!(grace));
                if propagation == Propagation::Foreground {
                    add_finalizer(&mut new, "foregroundDeletion");
                }
                let change = self.store.put(&def.storage, new);
                return Ok(Deleted::Pending(change.clone()));
            }
        }
        if object::deletion_timestamp(&old).is_some() {
            if object::finalizers(&old).is_empty() {
                return Ok(self
                    .remove_object(&def.storage, &key)
                    .map_or(Deleted::Pending(old), Deleted::Gone));
            }
            // Shorten a pending grace period to zero (force) but keep waiting on finalizers.
            let mut new = (*old).clone();
            object::set_meta(&mut new, "deletionGracePeriodSeconds", json!(0));
            if same_ignoring_bookkeeping(&old, &new) {
                return Ok(Deleted::Pending(old));
            }
            let change = self.store.put(&def.storage, new);
            return Ok(Deleted::Pending(change.clone()));
        }
        let uid = object::uid(&old).to_string();
        let has_dependents = !self.store.dependents_of(&uid).is_empty();
        let mut finalizers = object::finalizers(&old);
        if propagation == Propagation::Foreground && has_dependents {
            finalizers.push("foregroundDeletion".to_string());
        }
        if !finalizers.is_empty() {
            let mut new = (*old).clone();
            object::set_meta(&mut new, "deletionTimestamp", json!(format_time(now)));
            object::set_meta(&mut new, "deletionGracePeriodSeconds", json!(0));
            object::set_meta(&mut new, "finalizers", json!(finalizers));
            let change = self.store.put(&def.storage, new);
            let pending = change.clone();
            if propagation == Propagation::Foreground && has_dependents {
                for (storage, dep_key) in self.store.dependents_of(&uid) {
                    if let Some(dep_def) = self.def_by_storage(&storage) {
                        let opts = DeleteOptions {
                            propagation: Some(Propagation::Foreground),
                            ..Default::default()
                        };
                        let _ = self.delete(&dep_def, Some(&dep_key.0), &dep_key.1, &opts);
                    }
                }
                self.check_foreground_owner(&uid);
            }
            return Ok(match self.store.get(&def.storage, &key) {
                Some(obj) => Deleted::Pending(obj.clone()),
                None => Deleted::Gone(pending),
            });
        }
        Ok(self
            .remove_object(&def.storage, &key)
            .map_or(Deleted::Gone(old), Deleted::Gone))
    }

    /// Deletes every object a list would return.
    pub fn delete_collection(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Vec<Arc<Value>>, ApiError> {
        let items = self.list(def, ns, list)?.items;
        let mut out = Vec::new();
        for item in items {
            let (ins, name) = item.key.clone();
            let ins = (!ins.is_empty()).then_some(ins);
            match self.delete(def, ins.as_deref(), &name, opts) {
                Ok(Deleted::Gone(o)) | Ok(Deleted::Pending(o)) => out.push(to_served(def, &o)),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

fn add_finalizer(obj: &mut Value, f: &str) {
    let mut fs = object::finalizers(obj);
    if !fs.iter().any(|x| x == f) {
        fs.push(f.to_string());
    }
    object::set_meta(obj, "finalizers", json!(fs));
}
