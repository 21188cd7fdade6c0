//! The answers to what the decisions ask ([`Questions`]): the room in the cluster from the
//! caches ([`room`]), and where the planner would put a replacement
//! ([`observe::replacement_question`], then `predict_replacement`). The cluster view is
//! built the first time either needs it, the room read at most once per cycle.

use std::collections::BTreeSet;
use std::sync::Arc;

use edgeplane_api::{ConstraintPolicyBinding, ServiceChain};
use edgeplane_core::descheduler::{
    self as decide, BindingFacts, Capacity, Predicted, Questions, Reservation,
};
use edgeplane_core::evaluate::ClusterView;
use edgeplane_core::planner::{PlanOptions, PodKey};

use super::{observe, room};
use crate::view::{ViewCache, ViewError};

/// One cycle's answers.
pub struct Answers<'a> {
    views: &'a ViewCache,
    cluster: room::Cluster<'a>,
    bindings: &'a [Arc<ConstraintPolicyBinding>],
    /// The service chains whose lanes are judged as units (empty: not watched).
    chains: &'a [Arc<ServiceChain>],
    /// The controllers whose replacements the descheduler waits for.
    controllers: BTreeSet<String>,
    options: &'a PlanOptions,
    view: Option<Result<Arc<ClusterView>, ViewError>>,
    /// The room, once read (the memory settles its replacements with it).
    pub capacity: Option<Capacity>,
}

impl<'a> Answers<'a> {
    pub fn new(
        views: &'a ViewCache,
        cluster: room::Cluster<'a>,
        bindings: &'a [Arc<ConstraintPolicyBinding>],
        chains: &'a [Arc<ServiceChain>],
        controllers: BTreeSet<String>,
        options: &'a PlanOptions,
    ) -> Answers<'a> {
        Answers {
            views,
            cluster,
            bindings,
            chains,
            controllers,
            options,
            view: None,
            capacity: None,
        }
    }

    fn view(&mut self) -> Result<Arc<ClusterView>, String> {
        let views = self.views;
        self.view
            .get_or_insert_with(|| views.view())
            .clone()
            .map_err(|e| format!("the cluster view cannot be built: {}", e.0))
    }
}

impl Questions for Answers<'_> {
    fn capacity(&mut self) -> Capacity {
        let view = self.view().ok();
        let planned = room::plan_waiting(self.cluster, view.as_deref(), self.options);
        let capacity = room::capacity(
            self.cluster.nodes,
            self.cluster.pods,
            &planned,
            &self.controllers,
        );
        self.capacity = Some(capacity.clone());
        capacity
    }

    fn predict(&mut self, binding: &BindingFacts, pod: &PodKey, held: &[Reservation]) -> Predicted {
        let view = match self.view() {
            Ok(v) => v,
            Err(reason) => return Predicted::Fails(reason),
        };
        let world = observe::World {
            view: &view,
            nodes: self.cluster.nodes,
            pods: self.cluster.pods,
            bindings: self.bindings,
            offers: self.cluster.offers,
            policies: self.cluster.policies,
            chains: self.chains,
        };
        match observe::replacement_question(&world, &binding.key, pod, held) {
            Ok(question) => decide::predict_replacement(question, self.options),
            Err(reason) => Predicted::Fails(reason.to_string()),
        }
    }
}
