//! The pod subresources: `pods/binding`, and `pods/eviction` with the disruption budgets
//! it honours.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::gc::controller_uid;
use super::managed_fields::ManagerOp;
use super::{DeleteOptions, State, Subresource, WriteOptions, set_condition};
use crate::error::{ApiError, FieldError};
use crate::object::{self};
use crate::pdb;

impl State {
    /// `POST pods/<name>/binding`: assigns a pod to a node.
    pub fn bind(
        &mut self,
        ns: &str,
        name: &str,
        binding: &Value,
        opts: &WriteOptions,
    ) -> Result<(), ApiError> {
        let def = self
            .registry
            .find("", "v1", "pods")
            .ok_or_else(|| ApiError::internal("pods are not served"))?;
        if !binding.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a Binding object",
            ));
        }
        let bname = object::name(binding);
        if !bname.is_empty() && bname != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({bname}) does not match the name on the URL ({name})"
            )));
        }
        let node = object::get_str(binding, &["target", "name"]).unwrap_or("");
        if node.is_empty() {
            return Err(ApiError::invalid(
                "",
                "Binding",
                name,
                vec![FieldError::required("target.name", "")],
            ));
        }
        let old = self.get(&def, Some(ns), name)?;
        let conflict = |why: String| ApiError::conflict("", "pods/binding", name, why);
        if object::deletion_timestamp(&old).is_some() {
            return Err(conflict(format!(
                "pod {name} is being deleted, cannot be assigned to a host"
            )));
        }
        let current = object::get_str(&old, &["spec", "nodeName"]).unwrap_or("");
        if !current.is_empty() {
            return Err(conflict(format!(
                "pod {name} is already assigned to node {current:?}"
            )));
        }
        if old
            .get("spec")
            .and_then(|s| s.get("schedulingGates"))
            .and_then(Value::as_array)
            .is_some_and(|g| !g.is_empty())
        {
            return Err(conflict(format!(
                "pod {name} has non-empty .spec.schedulingGates"
            )));
        }
        let mut new = (*old).clone();
        object::set_path(&mut new, &["spec", "nodeName"], json!(node));
        for (k, v) in object::annotations(binding) {
            object::set_path(&mut new, &["metadata", "annotations", &k], json!(v));
        }
        let now = self.now();
        set_condition(&mut new, "PodScheduled", "True", None, None, &now);
        if opts.dry_run {
            return Ok(());
        }
        let manager = Self::manager_name(opts);
        self.record_manager(
            &def,
            Some(&old),
            &mut new,
            &manager,
            &ManagerOp::Update,
            Subresource::Main,
        );
        self.store.put(&def.storage, new);
        Ok(())
    }

    /// `POST pods/<name>/eviction`: deletes a pod if its disruption budget allows it.
    pub fn evict(&mut self, ns: &str, name: &str, eviction: &Value) -> Result<(), ApiError> {
        let def = self
            .registry
            .find("", "v1", "pods")
            .ok_or_else(|| ApiError::internal("pods are not served"))?;
        if !eviction.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be an Eviction object",
            ));
        }
        let ename = object::name(eviction);
        if ename != name {
            return Err(ApiError::bad_request(format!(
                "name in URL does not match name in Eviction object: {name:?} != {ename:?}"
            )));
        }
        let del = DeleteOptions::from_value(eviction.get("deleteOptions").unwrap_or(&Value::Null))?;
        let pod = self.get(&def, Some(ns), name)?;
        let phase = object::get_str(&pod, &["status", "phase"]).unwrap_or("");
        let ignore_pdb = matches!(phase, "Succeeded" | "Failed" | "Pending")
            || object::deletion_timestamp(&pod).is_some();
        if !ignore_pdb {
            let pdbs: Vec<Arc<Value>> = self
                .store
                .range("poddisruptionbudgets.policy", Some(ns), None)
                .map(|p| p.value_arc())
                .filter(|p| pdb::selects(p, &pod))
                .collect();
            if pdbs.len() > 1 {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
            if let Some(budget_obj) = pdbs.first() {
                let budget = self.budget(budget_obj);
                if !pdb::allows_eviction(budget_obj, &budget, &pod) {
                    return Err(ApiError::too_many_requests(
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        vec![json!({
                            "reason": "DisruptionBudget",
                            "message": format!(
                                "The disruption budget {} needs {} healthy pods and has {} currently",
                                object::name(budget_obj), budget.desired_healthy, budget.current_healthy
                            ),
                        })],
                    ));
                }
                if !del.dry_run {
                    // Record the disruption so the status is right before the pod goes.
                    let mut new = (**budget_obj).clone();
                    let allowed = (budget.disruptions_allowed - 1).max(0);
                    object::set_path(&mut new, &["status", "disruptionsAllowed"], json!(allowed));
                    let now = self.now();
                    object::set_path(&mut new, &["status", "disruptedPods", name], json!(now));
                    self.store.put("poddisruptionbudgets.policy", new);
                }
            }
        }
        self.delete(&def, Some(ns), name, &del)?;
        Ok(())
    }

    /// Pods a budget covers, in its namespace.
    pub fn budget_pods(&self, budget: &Value) -> Vec<Arc<Value>> {
        let ns = object::namespace(budget);
        // Cheap label check first; parse only the pods the budget covers.
        let Some(sel) = budget
            .get("spec")
            .and_then(|s| s.get("selector"))
            .filter(|s| !s.is_null())
            .and_then(|s| crate::selector::from_api(s).ok())
        else {
            return Vec::new();
        };
        self.store
            .range("pods", Some(ns), None)
            .filter(|p| sel.matches_pairs(&p.labels))
            .map(|p| p.value_arc())
            .collect()
    }

    /// The budget's arithmetic against the current pods and their controllers' scale.
    pub fn budget(&self, budget: &Value) -> pdb::Budget {
        let pods = self.budget_pods(budget);
        let refs: Vec<&Value> = pods.iter().map(|p| &**p).collect();
        let scale = self.controllers_scale(&pods);
        pdb::compute(budget, &refs, scale)
    }

    /// Summed `spec.replicas` of the top-level controllers owning the pods (a ReplicaSet's
    /// Deployment rather than the ReplicaSet), or `None` when a pod has no controller.
    fn controllers_scale(&self, pods: &[Arc<Value>]) -> Option<i64> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut total = 0;
        for pod in pods {
            let mut uid = controller_uid(pod)?;
            let mut obj = self.object_by_uid(&uid)?;
            if obj.get("kind").and_then(Value::as_str) == Some("ReplicaSet")
                && let Some(parent) = controller_uid(&obj)
                && let Some(p) = self.object_by_uid(&parent)
            {
                uid = parent;
                obj = p;
            }
            if seen.insert(uid) {
                total += obj
                    .get("spec")
                    .and_then(|s| s.get("replicas"))
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
            }
        }
        Some(total)
    }
}
