//! The scheduler's writes, through the [`Context`](crate::Context): placements, unplaced
//! reasons, and the network paths it asks for. Each answer is classified for the pure
//! [`Settlement`](edgeplane_core::scheduler::decide::Settlement); errors are counted and
//! logged here.

use std::collections::HashMap;
use std::sync::Arc;

use edgeplane_core::evaluate::ClusterView;
use edgeplane_core::planner::{Plan, PlanInput, PodKey};
use edgeplane_core::scheduler::decide::{self, Annotation, Placement, Settlement, Write, Written};
use edgeplane_core::scheduler::patches;
use edgeplane_netctl::{AllocateRequest, ReleaseRequest};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Patch;

use super::observe::Facts;
use super::{Scheduler, SchedulerMetrics, discover, pod_ref};
use crate::error::Error;
use crate::events::{EventSpec, reasons};

impl Scheduler {
    /// Writes the placements of `plan`, then the reasons of the pods it leaves unplaced,
    /// publishing the Events the answers call for.
    pub(super) async fn write<'a>(
        &self,
        facts: &Facts,
        pods: &HashMap<PodKey, Arc<Pod>>,
        plan: &'a Plan,
        view: &'a ClusterView,
        invalid: &[(PodKey, String)],
    ) -> Settlement<'a> {
        let hostnames = facts.hostnames();
        let placements = decide::placements(plan, self.config.mode, pods, &hostnames);
        let answers = self.place_all(placements).await;
        let mut settlement = Settlement::new(plan, view);
        for (placement, written) in &answers {
            if let Some(event) = settlement.placement(placement, *written) {
                self.events
                    .publish_or_log(&pod_ref(&placement.object), event)
                    .await;
            }
        }
        self.metrics
            .pods_planned
            .inc_by(settlement.placed.len() as u64);
        settlement.unplaced_by_plan(plan, invalid);
        self.metrics
            .pods_unplaced
            .inc_by(settlement.unplaced.len() as u64);
        for annotation in settlement.annotations(pods) {
            if settlement.lost_lease {
                break;
            }
            let written = self.annotate(&annotation).await;
            if let Some(event) = settlement.annotated(&annotation, written) {
                self.events
                    .publish_or_log(&pod_ref(&annotation.object), event)
                    .await;
            }
        }
        settlement
    }

    /// Writes every placement, `write_concurrency` at a time; the answers in the order
    /// they arrive (`None`: nothing to write, the plan cannot be pinned).
    async fn place_all(&self, placements: Vec<Placement>) -> Vec<(Placement, Option<Written>)> {
        futures::stream::iter(placements)
            .map(|p| async move {
                let written = self.place(&p).await;
                (p, written)
            })
            .buffer_unordered(self.config.write_concurrency.max(1))
            .collect()
            .await
    }

    async fn place(&self, p: &Placement) -> Option<Written> {
        let name = p.object.metadata.name.as_deref().unwrap_or_default();
        let namespace = Some(p.pod.namespace.as_str());
        let result = match p.write.as_ref().ok()? {
            Write::Pin(patch) => self
                .ctx
                .patch::<Pod, ()>(
                    namespace,
                    name,
                    &Patch::Json(patch.clone()),
                    &format!("placing pod {} on {}", p.pod, p.node),
                )
                .await
                .map(|_| ()),
            Write::Bind {
                binding,
                clear_reason,
            } => {
                let cleared = if *clear_reason {
                    self.ctx
                        .patch::<Pod, _>(
                            namespace,
                            name,
                            &Patch::Merge(patches::clear_unplaced_patch()),
                            &format!("clearing the unplaced reason of pod {}", p.pod),
                        )
                        .await
                        .map(|_| ())
                } else {
                    Ok(())
                };
                match cleared {
                    Ok(()) => self.ctx.bind(&p.object, binding).await,
                    Err(e) => Err(e),
                }
            }
        };
        Some(self.classify(&p.pod, result, "could not write the placement"))
    }

    async fn annotate(&self, a: &Annotation) -> Written {
        let name = a.object.metadata.name.as_deref().unwrap_or_default();
        let result = self
            .ctx
            .patch::<Pod, _>(
                Some(&a.pod.namespace),
                name,
                &Patch::Merge(&a.patch),
                &format!("annotating pod {}", a.pod),
            )
            .await
            .map(|_| ());
        self.classify(&a.pod, result, "could not record why the pod is unplaced")
    }

    /// The class of a write's answer; a refusal is counted, and logged as `failure` when
    /// it will be retried with backoff.
    fn classify(&self, pod: &PodKey, result: Result<(), Error>, failure: &str) -> Written {
        let error = match result {
            Ok(()) => return Written::Done,
            Err(Error::NotLeader(_)) => return Written::NotLeader,
            Err(e) => e,
        };
        let written = Written::refused(error.status_code());
        match written {
            Written::Gone => {}
            Written::Changed => {
                self.metrics.write_error(&error);
                tracing::debug!(%pod, %error, "pod changed while planned; planning it again");
            }
            _ => {
                self.metrics.write_error(&error);
                tracing::warn!(%pod, %error, "{failure}; retrying with backoff");
            }
        }
        written
    }

    /// Asks the network controller for a path for each pod the plan left unplaced because
    /// no node satisfies one of its bindings (the paper's pipeline, step 3).
    pub(super) async fn discover(
        &self,
        facts: &Facts,
        pods: &HashMap<PodKey, Arc<Pod>>,
        plan: &Plan,
        input: &PlanInput<'_>,
    ) {
        if plan.unplaced.is_empty() {
            return;
        }
        let network = self.ctx.metrics.network_controller();
        let Some(net) = self
            .discovery
            .resolve(&facts.services)
            .map(|n| n.timed(&network))
        else {
            return;
        };
        for u in &plan.unplaced {
            let (Some(pending), Some(pod)) = (
                input.pending.iter().find(|p| p.key == u.pod),
                pods.get(&u.pod),
            ) else {
                continue;
            };
            let Some(question) = discover::request_for(
                pending,
                &u.reason,
                &input.bindings,
                &input.nodes,
                &input.placed,
            ) else {
                continue;
            };
            if let Some(id) = discover::allocation_of(pod) {
                // One path per pod: it is waiting for that one to be activated.
                tracing::debug!(pod = %u.pod, allocation = id, "the pod holds a path already");
                continue;
            }
            self.allocate_path(&net, pod, &u.pod, question).await;
        }
    }

    /// Discover, Allocate the best offer, and record the allocation on the pod. The pod stays
    /// unplaced: the activation of the path changes the topology, which replans it.
    async fn allocate_path(
        &self,
        net: &crate::netctl::Resolved,
        pod: &Pod,
        key: &PodKey,
        question: discover::Question,
    ) {
        if self
            .ctx
            .ensure_leader(|| format!("path for pod {key}"))
            .is_err()
        {
            return;
        }
        let offers = match net.controller.discover(&question.request).await {
            Ok(offers) => offers,
            Err(error) => {
                SchedulerMetrics::count(&self.metrics.discoveries, "error");
                tracing::warn!(pod = %key, binding = %question.binding, at = %net.location, %error, "network discovery failed");
                return;
            }
        };
        let Some(offer) = discover::choose(&offers, self.ctx.clock.now()) else {
            SchedulerMetrics::count(&self.metrics.discoveries, "none");
            tracing::info!(pod = %key, binding = %question.binding, "the network controller offers no path");
            return;
        };
        SchedulerMetrics::count(&self.metrics.discoveries, "offered");
        let request = AllocateRequest {
            id: offer.id.clone(),
            binding: question.binding.clone(),
            rules: question.request.rules.clone(),
        };
        let allocated = match net.controller.allocate(&request).await {
            Ok(a) => a,
            Err(error) => {
                SchedulerMetrics::count(&self.metrics.path_allocations, "failed");
                tracing::warn!(pod = %key, offer = %offer.id, %error, "allocating the offered path failed");
                return;
            }
        };
        let recorded = self
            .ctx
            .patch::<Pod, _>(
                Some(&key.namespace),
                &key.name,
                &Patch::Strategic(discover::allocation_patch(&allocated.id)),
                &format!("recording the path allocation of pod {key}"),
            )
            .await;
        if let Err(error) = recorded {
            // Nobody would release it: give it back now.
            SchedulerMetrics::count(&self.metrics.path_allocations, "released");
            tracing::warn!(pod = %key, allocation = %allocated.id, %error, "cannot record the allocation on the pod; releasing it");
            let release = ReleaseRequest {
                id: allocated.id.clone(),
                binding: Some(question.binding.clone()),
                rules: Vec::new(),
            };
            if let Err(error) = net.controller.release(&release).await {
                tracing::warn!(allocation = %allocated.id, %error, "releasing the unrecorded allocation failed; the network controller's clean-up will free it");
            }
            return;
        }
        SchedulerMetrics::count(&self.metrics.path_allocations, "allocated");
        let note = format!(
            "no node satisfied binding {}: allocated path {} (allocation {}) from the network controller ({}); the pod is planned again once the path is active",
            question.binding,
            discover::describe_offer(offer),
            allocated.id,
            net.location
        );
        self.events
            .publish_or_log(
                &pod_ref(pod),
                EventSpec::normal(reasons::PATH_ALLOCATED, "Allocate", note),
            )
            .await;
    }
}
