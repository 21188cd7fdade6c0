//! What a plan run writes, and what it makes of the answers.
//!
//! [`placements`] turns a plan into one write per planned pod (gate mode: the patch that
//! pins the pod and removes the gate; bind mode: `pods/binding`). The runtime performs
//! them and classifies each answer as [`Written`]; a [`Settlement`] folds the answers in
//! the order they arrive and says, for each, which Event to publish: `Planned` for a pod
//! placed, `FailedPlanning` for one whose plan cannot be written into it. It then lists the
//! unplaced pods whose annotation must change ([`Settlement::annotations`]), folds those
//! answers too, and decides how the queue takes back the pods to try again
//! ([`Settlement::requeue`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Binding, Pod};
use serde_json::Value;

use super::Mode;
use super::notes::{bindings_by_pod, planned_note_from};
use super::patches::{self, PinError, has_unplaced_annotation, needs_update};
use crate::evaluate::ClusterView;
use crate::events::{EventSpec, reasons};
use crate::planner::{BindingPlan, Plan, PodKey};

/// How long a pod that changed while it was written waits before it is planned again:
/// the cache catches up with the change meanwhile.
pub const CHANGED_RETRY: Duration = Duration::from_millis(200);

/// What the scheduler writes to place one pod.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Gate mode: the one JSON patch that pins the pod to its node and removes the gate.
    Pin(json_patch::Patch),
    /// Bind mode: `pods/binding`, after clearing an earlier plan's unplaced reason.
    Bind {
        binding: Box<Binding>,
        clear_reason: bool,
    },
}

/// One planned pod and what to write for it. `write` is the reason when the plan cannot
/// be written into the pod: the pod then stays unplaced.
#[derive(Clone, Debug)]
pub struct Placement {
    pub pod: PodKey,
    pub node: String,
    pub object: Arc<Pod>,
    pub write: Result<Write, String>,
}

/// What became of one write, from the API server's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The pod is gone: nothing to do.
    Gone,
    /// The pod changed since the cache saw it, or is already bound: plan again from the
    /// fresh state.
    Changed,
    /// Throttled, timed out, server error: retry with backoff.
    Failed,
    /// This replica lost the lease; nothing more is written this run.
    NotLeader,
}

impl Written {
    /// The class of a refused write from the HTTP status (`None`: no answer).
    pub fn refused(status: Option<u16>) -> Written {
        match status {
            Some(404) => Written::Gone,
            Some(409 | 422) => Written::Changed,
            _ => Written::Failed,
        }
    }
}

/// The writes that carry out `plan`, in the plan's order: one per assignment whose pod is
/// in `pods`. `hostnames` maps node names to their `kubernetes.io/hostname` label. A pod
/// that lost the planner's gate since the cache saw it is left out (it is not waiting any
/// more).
pub fn placements(
    plan: &Plan,
    mode: Mode,
    pods: &HashMap<PodKey, Arc<Pod>>,
    hostnames: &HashMap<&str, &str>,
) -> Vec<Placement> {
    plan.assignments
        .iter()
        .filter_map(|a| {
            let object = pods.get(&a.pod)?.clone();
            let write = match mode {
                Mode::Gate => {
                    let hostname = hostnames.get(a.node.as_str()).copied();
                    match patches::gate_patch(&object, &a.node, hostname) {
                        Ok(patch) => Ok(Write::Pin(patch)),
                        Err(PinError::NotGated) => return None,
                        Err(e) => Err(e.to_string()),
                    }
                }
                Mode::Bind => Ok(Write::Bind {
                    binding: Box::new(patches::binding(&object, &a.node)),
                    clear_reason: has_unplaced_annotation(&object),
                }),
            };
            Some(Placement {
                pod: a.pod.clone(),
                node: a.node.clone(),
                object,
                write,
            })
        })
        .collect()
}

/// The unplaced reason to record on a pod.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    pub pod: PodKey,
    pub object: Arc<Pod>,
    /// The JSON merge patch of the annotation.
    pub patch: Value,
    pub reason: String,
}

/// How the queue takes back the pods of a run that must be tried again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// A write failed: these pods (failed, then changed) come back after the backoff,
    /// which holds the whole queue.
    Backoff(Vec<PodKey>),
    /// Every write was answered: the hold is released, and these pods, which changed
    /// meanwhile, come back after [`CHANGED_RETRY`].
    Settled { changed: Vec<PodKey> },
}

/// The answers of one run, folded in the order they arrive.
#[derive(Debug)]
pub struct Settlement<'a> {
    view: &'a ClusterView,
    by_pod: HashMap<(&'a str, &'a str), Vec<&'a BindingPlan>>,
    /// Pods the plan placed, for the `Planned` notes' "with N other pods".
    planned: usize,
    /// Pods whose placement was written, with the node: in flight until the cache shows
    /// them placed.
    pub placed: Vec<(PodKey, String)>,
    /// Pods left unplaced, with the reason: those whose plan could not be written, then
    /// the plan's unplaced, then those the planner could not read.
    pub unplaced: Vec<(PodKey, String)>,
    /// Pods that changed since the cache saw them (or were not written because the lease
    /// was lost): planned again soon.
    pub changed: Vec<PodKey>,
    /// Pods whose write failed: planned again after the backoff.
    pub failed: Vec<PodKey>,
    pub lost_lease: bool,
}

impl<'a> Settlement<'a> {
    pub fn new(plan: &'a Plan, view: &'a ClusterView) -> Settlement<'a> {
        Settlement {
            view,
            by_pod: bindings_by_pod(plan),
            planned: plan.assignments.len(),
            placed: Vec::new(),
            unplaced: Vec::new(),
            changed: Vec::new(),
            failed: Vec::new(),
            lost_lease: false,
        }
    }

    /// Records the answer to `placement` (`None`: nothing was written, its plan cannot
    /// be); returns the Event to publish about the pod.
    pub fn placement(
        &mut self,
        placement: &Placement,
        written: Option<Written>,
    ) -> Option<EventSpec> {
        let pod = &placement.pod;
        let node = &placement.node;
        let Some(written) = written else {
            let reason = match &placement.write {
                Err(reason) => reason.clone(),
                Ok(_) => return None,
            };
            self.unplaced
                .push((pod.clone(), format!("cannot be pinned to {node}: {reason}")));
            return Some(EventSpec::warning(
                reasons::FAILED_PLANNING,
                "Plan",
                format!("planned onto {node} but cannot be pinned there: {reason}"),
            ));
        };
        match written {
            Written::Done => {
                self.placed.push((pod.clone(), node.clone()));
                let bindings = self
                    .by_pod
                    .get(&(pod.namespace.as_str(), pod.name.as_str()))
                    .into_iter()
                    .flatten()
                    .copied();
                let note = planned_note_from(pod, node, self.view, self.planned, bindings);
                return Some(EventSpec::normal(reasons::PLANNED, "Plan", note));
            }
            Written::Gone => {}
            Written::Changed => self.changed.push(pod.clone()),
            Written::Failed => self.failed.push(pod.clone()),
            Written::NotLeader => {
                self.lost_lease = true;
                self.changed.push(pod.clone());
            }
        }
        None
    }

    /// Adds the pods the plan left unplaced and those the planner could not read
    /// (`invalid`), after the placements' answers.
    pub fn unplaced_by_plan(&mut self, plan: &Plan, invalid: &[(PodKey, String)]) {
        self.unplaced.extend(
            plan.unplaced
                .iter()
                .map(|u| (u.pod.clone(), u.reason.clone())),
        );
        self.unplaced.extend(
            invalid
                .iter()
                .map(|(k, e)| (k.clone(), format!("its spec cannot be planned: {e}"))),
        );
    }

    /// The unplaced pods whose recorded reason differs from this run's, with the patch
    /// that records it. Nothing once the lease is lost.
    pub fn annotations(&self, pods: &HashMap<PodKey, Arc<Pod>>) -> Vec<Annotation> {
        if self.lost_lease {
            return Vec::new();
        }
        self.unplaced
            .iter()
            .filter_map(|(key, reason)| {
                let object = pods.get(key)?;
                needs_update(object, reason).then(|| Annotation {
                    pod: key.clone(),
                    object: object.clone(),
                    patch: patches::unplaced_patch(reason),
                    reason: reason.clone(),
                })
            })
            .collect()
    }

    /// Records the answer to `annotation`; returns the Event to publish about the pod.
    pub fn annotated(&mut self, annotation: &Annotation, written: Written) -> Option<EventSpec> {
        match written {
            Written::Done => {
                return Some(EventSpec::warning(
                    reasons::UNPLACEABLE,
                    "Plan",
                    annotation.reason.clone(),
                ));
            }
            Written::Gone => {}
            Written::NotLeader => self.lost_lease = true,
            Written::Changed => self.changed.push(annotation.pod.clone()),
            Written::Failed => self.failed.push(annotation.pod.clone()),
        }
        None
    }

    /// How the pods to try again go back to the queue.
    pub fn requeue(&self) -> Requeue {
        if self.failed.is_empty() {
            Requeue::Settled {
                changed: self.changed.clone(),
            }
        } else {
            Requeue::Backoff(self.failed.iter().chain(&self.changed).cloned().collect())
        }
    }
}

#[cfg(test)]
mod tests;
