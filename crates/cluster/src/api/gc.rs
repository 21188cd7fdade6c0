//! Owner references and garbage collection: orphaning, removing objects and collecting
//! their dependents, foreground deletion, CRD instances.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{DeleteOptions, State};
use crate::object::{self};
use crate::store::ObjKey;

impl State {
    pub(super) fn orphan_dependents(&mut self, uid: &str) {
        for (storage, key) in self.store.dependents_of(uid) {
            if let Some(dep) = self.store.get(&storage, &key) {
                let mut new = (*dep).clone();
                let refs: Vec<Value> = object::owner_refs(&dep)
                    .into_iter()
                    .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid))
                    .collect();
                object::set_meta(
                    &mut new,
                    "ownerReferences",
                    if refs.is_empty() {
                        Value::Null
                    } else {
                        json!(refs)
                    },
                );
                self.store.put(&storage, new);
            }
        }
    }

    /// Removes an object from the store and runs what follows a removal: garbage
    /// collection of dependents, foreground owners, CRD instances, namespace termination.
    pub(super) fn remove_object(&mut self, storage: &str, key: &ObjKey) -> Option<Arc<Value>> {
        let change = self.store.remove(storage, key)?;
        let removed = change.clone();
        if storage == "customresourcedefinitions.apiextensions.k8s.io" {
            self.remove_crd_instances(&removed);
        }
        let uid = object::uid(&removed).to_string();
        for (dep_storage, dep_key) in self.store.dependents_of(&uid) {
            self.collect_dependent(&dep_storage, &dep_key, &uid);
        }
        for owner in object::owner_uids(&removed) {
            self.check_foreground_owner(&owner);
        }
        if !key.0.is_empty() {
            self.maybe_finish_namespace(&key.0);
        }
        Some(removed)
    }

    fn remove_crd_instances(&mut self, crd: &Value) {
        let name = object::name(crd).to_string();
        let storage = self
            .registry
            .all()
            .iter()
            .find(|d| d.crd.as_ref().is_some_and(|(n, _)| *n == name))
            .map(|d| d.storage.clone());
        self.registry.remove_crd(&name);
        if let Some(storage) = storage {
            let keys: Vec<ObjKey> = self
                .store
                .range(&storage, None, None)
                .map(|o| o.key.clone())
                .collect();
            for k in keys {
                self.remove_object(&storage, &k);
            }
        }
    }

    /// The garbage collector's decision for one dependent of a removed owner: delete it
    /// when no owner remains, else drop the dangling reference.
    fn collect_dependent(&mut self, storage: &str, key: &ObjKey, gone_uid: &str) {
        let Some(dep) = self.store.get(storage, key) else {
            return;
        };
        let refs = object::owner_refs(&dep);
        let live: Vec<Value> = refs
            .iter()
            .filter(|r| {
                let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
                uid != gone_uid && self.store.locate_uid(uid).is_some()
            })
            .cloned()
            .collect();
        if live.is_empty() {
            if let Some(def) = self.def_by_storage(storage) {
                let ns = (!key.0.is_empty()).then(|| key.0.clone());
                let _ = self.delete(&def, ns.as_deref(), &key.1, &DeleteOptions::default());
            }
        } else {
            let mut new = (*dep).clone();
            object::set_meta(&mut new, "ownerReferences", json!(live));
            self.store.put(storage, new);
        }
    }

    pub(super) fn check_foreground_owner(&mut self, owner_uid: &str) {
        let Some((storage, key)) = self.store.locate_uid(owner_uid).cloned() else {
            return;
        };
        let Some(owner) = self.store.get(&storage, &key) else {
            return;
        };
        if object::deletion_timestamp(&owner).is_none()
            || !object::finalizers(&owner)
                .iter()
                .any(|f| f == "foregroundDeletion")
        {
            return;
        }
        let blocking = self.store.dependents_of(owner_uid).iter().any(|(s, k)| {
            self.store.get(s, k).is_some_and(|d| {
                object::owner_refs(&d).iter().any(|r| {
                    r.get("uid").and_then(Value::as_str) == Some(owner_uid)
                        && r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true)
                })
            })
        });
        if blocking {
            return;
        }
        let mut new = (*owner).clone();
        let rest: Vec<String> = object::finalizers(&owner)
            .into_iter()
            .filter(|f| f != "foregroundDeletion")
            .collect();
        object::set_meta(
            &mut new,
            "finalizers",
            if rest.is_empty() {
                Value::Null
            } else {
                json!(rest)
            },
        );
        let grace = new
            .get("metadata")
            .and_then(|m| m.get("deletionGracePeriodSeconds"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        self.store.put(&storage, new);
        if rest.is_empty() && grace == 0 {
            self.remove_object(&storage, &key);
        }
    }
}

/// The uid of an object's controller owner reference.
pub fn controller_uid(obj: &Value) -> Option<String> {
    object::owner_refs(obj)
        .into_iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
}
