//! The four operations (Discover, Allocate, Release, Mitigate) on the state read from the
//! API.

use edgeplane_api::{AllocationPurpose, PathAllocation};
use edgeplane_core::mitigation::{
    self, DiscoverInput, Mitigation, MitigationInput, PathRules, has_room, mitigation_id, offer_id,
    parse_offer_id, usage,
};
use edgeplane_core::network::{Location, NetworkGraph};
use edgeplane_core::values::Value;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::state::{ReferenceController, Step};
use crate::authorize;
use crate::controller::{
    AllocateRequest, Allocated, Caller, DiscoverRequest, Endpoint, ExpectedMetrics,
    MitigateOutcome, MitigateRequest, NetctlError, NetworkController, PathOffer, ReleaseRequest,
    Released,
};

/// An endpoint on the graph.
fn locate(graph: &NetworkGraph, field: &str, endpoint: &Endpoint) -> Result<Location, NetctlError> {
    match endpoint {
        Endpoint::Node(n) => graph
            .node_id(n)
            .map(Location::Node)
            .ok_or_else(|| NetctlError::InvalidArgument(format!("{field}: no node named {n:?}"))),
        Endpoint::Site(s) => graph.site_id(s).map(Location::Site).ok_or_else(|| {
            NetctlError::InvalidArgument(format!(
                "{field}: no site named {s:?} in the NetworkTopology"
            ))
        }),
    }
}

fn parse_rules(rules: &[crate::PolicyRule]) -> Result<PathRules, NetctlError> {
    PathRules::parse(rules).map_err(|e| NetctlError::InvalidArgument(e.to_string()))
}

fn site_names(graph: &NetworkGraph, route: Option<&edgeplane_core::network::Route>) -> Vec<String> {
    route
        .map(|r| {
            r.sites
                .iter()
                .map(|s| graph.site_name(*s).to_string())
                .collect()
        })
        .unwrap_or_default()
}

impl ReferenceController {
    async fn discover_paths(
        &self,
        request: &DiscoverRequest,
    ) -> Result<Vec<PathOffer>, NetctlError> {
        let rules = parse_rules(&request.rules)?;
        let state = self.load().await?;
        let source = locate(&state.graph, "source", &request.source)?;
        if state.object.is_none() {
            return Ok(Vec::new());
        }
        // Nodes that are gone get no offer rather than failing the question.
        let candidates: Vec<(Location, &str)> = request
            .candidate_nodes
            .iter()
            .filter_map(|n| Some((Location::Node(state.graph.node_id(n)?), n.as_str())))
            .collect();
        let plans = mitigation::discover(&DiscoverInput {
            graph: &state.graph,
            catalogue: &state.catalogue,
            allocations: &state.allocations,
            source: (source, request.source.name()),
            candidates: &candidates,
            rules: &rules,
        });
        let ttl = SignedDuration::try_from(self.config.offer_ttl).unwrap_or(SignedDuration::ZERO);
        let expires = state
            .now
            .checked_add(ttl)
            .ok()
            .and_then(|t| Timestamp::from_second(t.as_second()).ok())
            .unwrap_or(state.now);
        Ok(plans
            .into_iter()
            .map(|plan| {
                let entry = &state.catalogue.entries[plan.entry];
                let node = candidates[plan.candidate].1;
                PathOffer {
                    id: offer_id(
                        &state.catalogue.name,
                        &entry.name,
                        node,
                        request.source.name(),
                        &request.rules,
                        expires,
                    ),
                    node: node.to_string(),
                    path: site_names(&state.graph, plan.judgement.forward.as_ref()),
                    expected: plan
                        .judgement
                        .expected()
                        .map(|m| ExpectedMetrics::from_path(&m))
                        .unwrap_or_default(),
                    cost: entry.cost as f64,
                    expires,
                    entry: entry.name.clone(),
                    compliance: plan.judgement.compliance,
                }
            })
            .collect())
    }

    /// Allocate, recording `holder` (the remote caller) in the allocation.
    async fn allocate_by(
        &self,
        request: &AllocateRequest,
        holder: Option<&str>,
    ) -> Result<Allocated, NetctlError> {
        let Some((entry_name, expires)) = parse_offer_id(&request.id) else {
            return Err(NetctlError::InvalidArgument(format!(
                "id: {:?} is not an offer of this controller (offer.<entry>.<expiry>.<hash>, from Discover)",
                request.id
            )));
        };
        let rules = parse_rules(&request.rules)?;
        let catalogue_missing = self.missing_catalogue();
        self.transact(|state| {
            if let Some(held) = state.allocations.iter().find(|a| a.id == request.id) {
                if held.binding != request.binding {
                    return Err(NetctlError::FailedPrecondition(format!(
                        "offer {} is allocated to binding {} already",
                        request.id, held.binding
                    )));
                }
                return Ok(Step::Answer(Allocated {
                    id: held.id.clone(),
                    entry: held.entry.clone(),
                    created: false,
                }));
            }
            if state.now > expires {
                return Err(NetctlError::FailedPrecondition(format!(
                    "offer {} expired at {expires}; ask Discover again",
                    request.id
                )));
            }
            if state.object.is_none() {
                return Err(NetctlError::FailedPrecondition(catalogue_missing.clone()));
            }
            let entry = state.catalogue.entry(&entry_name).ok_or_else(|| {
                NetctlError::NotFound(format!(
                    "catalogue {} has no usable entry {entry_name:?}",
                    state.catalogue.name
                ))
            })?;
            let reserve = if entry.capacity.bandwidth_bps.is_some() {
                rules.bandwidth_reservation_bps()
            } else {
                0.0
            };
            let used = usage(&state.allocations)
                .get(&entry.name)
                .copied()
                .unwrap_or_default();
            has_room(entry, used, reserve).map_err(|why| {
                NetctlError::AtCapacity(format!(
                    "catalogue {}: {} is {why}",
                    state.catalogue.name,
                    entry.describe()
                ))
            })?;
            let mut allocations = state.allocations.clone();
            allocations.push(PathAllocation {
                id: request.id.clone(),
                entry: entry.name.clone(),
                binding: request.binding.clone(),
                purpose: AllocationPurpose::Discover,
                bandwidth: (reserve > 0.0)
                    .then(|| Value::bits_per_second(reserve).to_string()),
                allocated_at: Time(state.now),
                holder: holder.map(str::to_string),
            });
            Ok(Step::Write(
                allocations,
                Allocated {
                    id: request.id.clone(),
                    entry: entry.name.clone(),
                    created: true,
                },
            ))
        })
        .await
        .inspect(|a| {
            if a.created {
                tracing::info!(id = %a.id, entry = %a.entry, binding = %request.binding, "allocated");
            }
        })
    }

    /// Release; a remote `caller` only of what it allocated.
    async fn release_by(
        &self,
        request: &ReleaseRequest,
        caller: Option<&str>,
    ) -> Result<Released, NetctlError> {
        if let Some(caller) = caller {
            authorize::release(&request.id, false, None, caller)?;
        }
        self.transact(|state| {
            let Some(held) = state.allocations.iter().find(|a| a.id == request.id) else {
                return Ok(Step::Answer(Released {
                    released: false,
                    deactivated: false,
                }));
            };
            if let Some(caller) = caller {
                authorize::release(&request.id, true, held.holder.as_deref(), caller)?;
            }
            if let Some(binding) = &request.binding
                && *binding != held.binding
            {
                return Err(NetctlError::FailedPrecondition(format!(
                    "allocation {} is held by binding {}, not {binding}",
                    request.id, held.binding
                )));
            }
            let kept: Vec<PathAllocation> = state
                .allocations
                .iter()
                .filter(|a| a.id != request.id)
                .cloned()
                .collect();
            let deactivated = !kept.iter().any(|a| a.entry == held.entry);
            Ok(Step::Write(
                kept,
                Released {
                    released: true,
                    deactivated,
                },
            ))
        })
        .await
        .inspect(|r| {
            if r.released {
                tracing::info!(id = %request.id, deactivated = r.deactivated, "released");
            }
        })
    }

    /// Mitigate, recording `holder` (the remote caller) in a new allocation.
    async fn mitigate_by(
        &self,
        request: &MitigateRequest,
        holder: Option<&str>,
    ) -> Result<MitigateOutcome, NetctlError> {
        let rules = parse_rules(&request.rules)?;
        let catalogue_missing = self.missing_catalogue();
        let outcome = self
            .transact(|state| {
                let source = locate(&state.graph, "source", &request.source)?;
                let destination = locate(&state.graph, "destination", &request.destination)?;
                if state.object.is_none() {
                    return Ok(Step::Answer(MitigateOutcome {
                        accepted: false,
                        expected: None,
                        reason: catalogue_missing.clone(),
                        allocation_id: None,
                        entry: None,
                        path: Vec::new(),
                        compliance: None,
                    }));
                }
                let decision = mitigation::decide_mitigation(&MitigationInput {
                    graph: &state.graph,
                    catalogue: &state.catalogue,
                    allocations: &state.allocations,
                    binding: &request.binding,
                    source: (source, request.source.name()),
                    destination: (destination, request.destination.name()),
                    rules: &rules,
                });
                let answer = |judgement: &mitigation::Judgement,
                              reason: String,
                              id: Option<String>,
                              entry: Option<String>| MitigateOutcome {
                    accepted: judgement.holds(),
                    expected: judgement.expected().map(|m| ExpectedMetrics::from_path(&m)),
                    reason,
                    allocation_id: id,
                    entry,
                    path: site_names(&state.graph, judgement.forward.as_ref()),
                    compliance: Some(judgement.compliance),
                };
                Ok(match decision {
                    Mitigation::NotNeeded { judgement } => Step::Answer(answer(
                        &judgement,
                        format!("no new path needed: {}", judgement.reason),
                        None,
                        None,
                    )),
                    Mitigation::Held {
                        id,
                        entry,
                        judgement,
                    } => {
                        let described = state
                            .catalogue
                            .entry(&entry)
                            .map(|e| e.describe())
                            .unwrap_or_else(|| entry.clone());
                        // Written again (a no-op unless the activation was lost).
                        Step::Write(
                            state.allocations.clone(),
                            answer(
                                &judgement,
                                format!(
                                    "{described} is active for this binding already: {}",
                                    judgement.reason
                                ),
                                Some(id),
                                Some(entry),
                            ),
                        )
                    }
                    Mitigation::Allocate {
                        entry,
                        judgement,
                        replaces,
                    } => {
                        let entry = &state.catalogue.entries[entry];
                        let id =
                            mitigation_id(&state.catalogue.name, &entry.name, &request.binding);
                        let mut allocations: Vec<PathAllocation> = state
                            .allocations
                            .iter()
                            .filter(|a| Some(&a.id) != replaces.as_ref() && a.id != id)
                            .cloned()
                            .collect();
                        let reserve = if entry.capacity.bandwidth_bps.is_some() {
                            rules.bandwidth_reservation_bps()
                        } else {
                            0.0
                        };
                        allocations.push(PathAllocation {
                            id: id.clone(),
                            entry: entry.name.clone(),
                            binding: request.binding.clone(),
                            purpose: AllocationPurpose::Mitigate,
                            bandwidth: (reserve > 0.0)
                                .then(|| Value::bits_per_second(reserve).to_string()),
                            allocated_at: Time(state.now),
                            holder: holder.map(str::to_string),
                        });
                        let moved = replaces
                            .map(|r| format!(" (instead of allocation {r}, which no longer did)"))
                            .unwrap_or_default();
                        Step::Write(
                            allocations,
                            answer(
                                &judgement,
                                format!(
                                    "activated {}{moved}: {}",
                                    entry.describe(),
                                    judgement.reason
                                ),
                                Some(id),
                                Some(entry.name.clone()),
                            ),
                        )
                    }
                    Mitigation::Refuse { reason } => Step::Answer(MitigateOutcome {
                        accepted: false,
                        expected: None,
                        reason,
                        allocation_id: None,
                        entry: None,
                        path: Vec::new(),
                        compliance: None,
                    }),
                })
            })
            .await?;
        tracing::info!(
            binding = %request.binding,
            accepted = outcome.accepted,
            reason = %outcome.reason,
            "mitigate"
        );
        Ok(outcome)
    }
}

/// In process, calls are trusted (the simulator and the tests run the controller here);
/// remote callers are authorised first (`crate::authorize`).
#[tonic::async_trait]
impl NetworkController for ReferenceController {
    async fn discover(&self, request: &DiscoverRequest) -> Result<Vec<PathOffer>, NetctlError> {
        self.discover_paths(request).await
    }

    async fn allocate(&self, request: &AllocateRequest) -> Result<Allocated, NetctlError> {
        self.allocate_by(request, None).await
    }

    async fn release(&self, request: &ReleaseRequest) -> Result<Released, NetctlError> {
        self.release_by(request, None).await
    }

    async fn mitigate(&self, request: &MitigateRequest) -> Result<MitigateOutcome, NetctlError> {
        self.mitigate_by(request, None).await
    }

    async fn allocate_as(
        &self,
        request: &AllocateRequest,
        caller: &Caller,
    ) -> Result<Allocated, NetctlError> {
        let Caller::Remote(identity) = caller else {
            return self.allocate_by(request, None).await;
        };
        let facts = self.binding_facts(&request.binding).await?;
        authorize::binding_call(&request.binding, facts.as_ref(), &[]).inspect_err(|e| {
            self.refused("Allocate", &request.binding, facts.is_some(), identity, e)
        })?;
        self.allocate_by(request, Some(identity)).await
    }

    async fn release_as(
        &self,
        request: &ReleaseRequest,
        caller: &Caller,
    ) -> Result<Released, NetctlError> {
        let Caller::Remote(identity) = caller else {
            return self.release_by(request, None).await;
        };
        let answer = self.release_by(request, Some(identity)).await;
        if let Err(error @ NetctlError::PermissionDenied(_)) = &answer {
            // The Event goes on the binding that holds the allocation.
            let binding = match self.load().await {
                Ok(state) => state
                    .allocations
                    .iter()
                    .find(|a| a.id == request.id)
                    .map(|a| a.binding.clone()),
                Err(_) => None,
            };
            match binding {
                Some(binding) => self.refused("Release", &binding, true, identity, error),
                None => self.refused("Release", &request.id, false, identity, error),
            }
        }
        answer
    }

    async fn mitigate_as(
        &self,
        request: &MitigateRequest,
        caller: &Caller,
    ) -> Result<MitigateOutcome, NetctlError> {
        let Caller::Remote(identity) = caller else {
            return self.mitigate_by(request, None).await;
        };
        let facts = self.binding_facts(&request.binding).await?;
        authorize::binding_call(
            &request.binding,
            facts.as_ref(),
            &[
                ("source", &request.source),
                ("destination", &request.destination),
            ],
        )
        .inspect_err(|e| {
            self.refused("Mitigate", &request.binding, facts.is_some(), identity, e)
        })?;
        self.mitigate_by(request, Some(identity)).await
    }
}

impl ReferenceController {
    /// Logs a refused call (a refusal for a made-up binding is worth an operator's look),
    /// and reports it when `binding` exists.
    fn refused(
        &self,
        call: &str,
        binding: &str,
        exists: bool,
        identity: &str,
        error: &NetctlError,
    ) {
        if !matches!(
            error,
            NetctlError::PermissionDenied(_) | NetctlError::NotFound(_)
        ) {
            return;
        }
        tracing::warn!(%call, %binding, caller = %identity, %error, "refused");
        if let (true, Some(reporter)) = (exists, &self.refusals) {
            reporter.refused(binding, format!("{call} from {identity} refused: {error}"));
        }
    }
}
