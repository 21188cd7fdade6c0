//! What a chain's lanes are doing: links, metrics along the lane, the lane's binding and
//! the chain's status.

use std::collections::BTreeMap;
use std::time::Duration;

use edgeplane_api::names::NETWORK_API_VERSION;
use edgeplane_api::{
    Compliance, ConstraintPolicyBinding, ConstraintPolicyBindingSpec,
    ConstraintPolicyBindingStatus, EndToEnd, LaneHop, LaneStatus, LinkStatus, NetworkFunction,
    NetworkFunctionStatus, ServiceChain, ServiceChainStatus, TargetKind, TargetRef,
};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    CHAIN_LABEL, LANE_LABEL, LaneMember, check, in_port, lane_rule, lanes, link_cni, link_network,
    nad_object, out_port, owner,
};
use crate::multus::NetworkAttachmentDefinition;
use crate::network::{Location, NetworkGraph, PathMetric, PathMetrics};
use crate::nf::{FieldError, describe};

/// The name of the binding of lane `lane` (its replica index) of chain `chain`.
pub fn lane_binding_name(chain: &str, lane: impl std::fmt::Display) -> String {
    format!("{chain}-lane-{lane}")
}
use crate::status::{
    Evaluation, PolicyOutcome, RuleOutcome, condition, next_status, targets_summary,
};

/// How long a lane may be in Violation before the descheduler may act: chains carry no
/// grace of their own yet, so lanes take the offers' default.
pub const LANE_GRACE: Duration = Duration::from_secs(60);
pub const CONDITION_VALID: &str = "Valid";
pub const CONDITION_READY: &str = "Ready";
/// The policy names in a lane binding's details.
pub const END_TO_END_POLICY: &str = "endToEnd";
pub const PER_LINK_POLICY: &str = "perLink";

/// What the chain controller observes for one chain.
pub struct ChainFacts<'a> {
    /// NFs of the chain's namespace, by name.
    pub nfs: &'a dyn Fn(&str) -> Option<NetworkFunction>,
    /// The network graph, when a topology (or at least the nodes) built into one.
    pub graph: Option<&'a NetworkGraph>,
    /// The current status of a lane binding, by name.
    pub binding_status: &'a dyn Fn(&str) -> Option<ConstraintPolicyBindingStatus>,
    pub now: Timestamp,
}

/// What the chain controller makes true for one chain.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainDecision {
    /// Every link's NAD (none for an invalid chain).
    pub nads: Vec<NetworkAttachmentDefinition>,
    /// One binding per lane, with the status to apply.
    pub bindings: Vec<LaneBinding>,
    pub status: ServiceChainStatus,
    /// The validation errors (the chain creates nothing while there are any).
    pub errors: Vec<FieldError>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LaneBinding {
    pub binding: ConstraintPolicyBinding,
    pub evaluation: Evaluation,
}

/// The metrics along a path of segments: latency and jitter add up, bandwidth is the
/// narrowest, loss compounds. `None` when a segment is unknown.
pub fn along(segments: &[Option<PathMetrics>]) -> Option<PathMetrics> {
    let mut total = PathMetrics {
        latency_ns: 0.0,
        jitter_ns: 0.0,
        bandwidth_bps: f32::INFINITY,
        loss: 0.0,
    };
    let mut delivered = 1.0f32;
    for segment in segments {
        let m = (*segment)?;
        total.latency_ns += m.latency_ns;
        total.jitter_ns += m.jitter_ns;
        total.bandwidth_bps = total.bandwidth_bps.min(m.bandwidth_bps);
        delivered *= 1.0 - m.loss;
    }
    total.loss = 1.0 - delivered;
    Some(total)
}

/// The node of replica `index` of an NF, and the names of its attached interfaces.
fn replica_facts(
    status: Option<&NetworkFunctionStatus>,
    replica: &str,
) -> (Option<String>, Vec<String>) {
    status
        .and_then(|s| {
            s.replicas
                .iter()
                .find(|r| crate::nf::is_pod_of(&r.name, replica))
        })
        .map(|r| {
            (
                r.node.clone(),
                r.interfaces.iter().map(|i| i.name.clone()).collect(),
            )
        })
        .unwrap_or_default()
}

/// Decides everything for one chain.
pub fn decide(chain: &ServiceChain, facts: &ChainFacts) -> ChainDecision {
    let name = chain.metadata.name.clone().unwrap_or_default();
    let generation = chain.metadata.generation;
    let previous = chain.status.as_ref();
    let before = previous
        .map(|p| p.conditions.as_slice())
        .unwrap_or_default();
    let cond = |type_: &str, ok: bool, reason: &str, message: &str| {
        condition(
            before,
            type_,
            if ok { "True" } else { "False" },
            reason,
            message,
            facts.now,
            generation,
        )
    };
    let site_exists = |site: &str| facts.graph.is_some_and(|g| g.site_id(site).is_some());
    let path = {
        let mut parts: Vec<&str> = Vec::new();
        if let Some(i) = &chain.spec.ingress {
            parts.push(&i.site);
        }
        parts.extend(chain.spec.hops.iter().map(|h| h.name.as_str()));
        if let Some(e) = &chain.spec.egress {
            parts.push(&e.site);
        }
        parts.join(">")
    };
    let replicas = match check(chain, facts.nfs, &site_exists) {
        Ok(n) => n,
        Err(errors) => {
            let message = describe(&errors);
            return ChainDecision {
                nads: Vec::new(),
                bindings: Vec::new(),
                status: ServiceChainStatus {
                    phase: Some("Invalid".into()),
                    path: Some(path),
                    lane_count: Some(0),
                    ready_lanes: Some(0),
                    worst_latency: None,
                    reason: Some(errors[0].to_string()),
                    lanes: Vec::new(),
                    observed_generation: generation,
                    conditions: vec![
                        cond(CONDITION_VALID, false, "Invalid", &message),
                        cond(CONDITION_READY, false, "Invalid", &message),
                    ],
                },
                errors,
            };
        }
    };
    let (type_, colocate) = (chain.spec.link_type(), chain.spec.colocate());
    let statuses: BTreeMap<String, Option<NetworkFunctionStatus>> = chain
        .spec
        .hops
        .iter()
        .map(|h| {
            (
                h.network_function.clone(),
                (facts.nfs)(&h.network_function).and_then(|nf| nf.status),
            )
        })
        .collect();
    let location = |node: &Option<String>| {
        node.as_deref()
            .and_then(|n| facts.graph?.node_id(n))
            .map(Location::Node)
    };
    let site = |s: &str| facts.graph?.site_id(s).map(Location::Site);
    let metrics = |a: Option<Location>, b: Option<Location>| facts.graph?.metrics(a?, b?);
    let rules = chain.spec.constraints.clone().unwrap_or_default();
    let end_to_end: Vec<_> = rules
        .end_to_end
        .iter()
        .filter_map(|r| lane_rule(r).ok())
        .collect();
    let per_link: Vec<_> = rules
        .per_link
        .iter()
        .filter_map(|r| lane_rule(r).ok())
        .collect();

    let mut nads = Vec::new();
    let mut bindings = Vec::new();
    let mut lane_statuses = Vec::new();
    let mut ready_lanes = 0;
    let mut unplaced = Vec::new();
    let mut unready_links = Vec::new();
    let mut worst_latency: Option<PathMetrics> = None;
    for (i, lane) in lanes(chain, replicas).iter().enumerate() {
        let facts_of: Vec<(Option<String>, Vec<String>)> = lane
            .iter()
            .map(|m| {
                replica_facts(
                    statuses.get(&m.network_function).and_then(Option::as_ref),
                    &m.replica,
                )
            })
            .collect();
        let hops: Vec<LaneHop> = lane
            .iter()
            .zip(&facts_of)
            .map(|(m, (node, _))| LaneHop {
                name: m.hop.clone(),
                replica: m.replica.clone(),
                node: node.clone(),
            })
            .collect();
        unplaced.extend(
            hops.iter()
                .filter(|h| h.node.is_none())
                .map(|h| h.replica.clone()),
        );
        let mut links = Vec::new();
        let mut link_metrics = Vec::new();
        for k in 0..lane.len().saturating_sub(1) {
            let (from, to) = (&lane[k], &lane[k + 1]);
            let cni = link_cni(
                type_,
                colocate,
                facts_of[k].0.as_deref(),
                facts_of[k + 1].0.as_deref(),
            );
            nads.push(nad_object(chain, i, &from.hop, &to.hop, cni));
            let ready = facts_of[k].1.contains(&out_port(&name))
                && facts_of[k + 1].1.contains(&in_port(&name));
            let m = metrics(location(&facts_of[k].0), location(&facts_of[k + 1].0));
            link_metrics.push(m);
            if !ready {
                unready_links.push(format!("{}>{} (lane {i})", from.hop, to.hop));
            }
            links.push(LinkStatus {
                from: from.hop.clone(),
                to: to.hop.clone(),
                network: link_network(&name, i, &from.hop, &to.hop),
                cni: Some(cni.into()),
                ready,
                latency: m.map(|m| m.value(PathMetric::Latency).to_string()),
            });
        }
        let mut segments = Vec::new();
        if let Some(ingress) = &chain.spec.ingress {
            segments.push(metrics(site(&ingress.site), location(&facts_of[0].0)));
        }
        segments.extend(link_metrics.iter().copied());
        if let Some(egress) = &chain.spec.egress {
            let last = facts_of.last().and_then(|f| location(&f.0));
            segments.push(metrics(last, site(&egress.site)));
        }
        let total = along(&segments);
        if let Some(t) = total
            && worst_latency.is_none_or(|w| w.latency_ns < t.latency_ns)
        {
            worst_latency = Some(t);
        }
        let binding = lane_binding(chain, i, lane);
        let binding_name = binding.metadata.name.clone().unwrap_or_default();
        let outcomes = lane_outcomes(&end_to_end, &per_link, total, &link_metrics);
        let mut evaluation = next_status(
            (facts.binding_status)(&binding_name).as_ref(),
            &outcomes,
            facts.now,
            LANE_GRACE,
            None,
        );
        evaluation.status.targets = Some(targets_summary(&binding.spec.targets));
        let lane_ready = links.iter().all(|l| l.ready) && hops.iter().all(|h| h.node.is_some());
        if lane_ready {
            ready_lanes += 1;
        }
        lane_statuses.push(LaneStatus {
            index: i32::try_from(i).unwrap_or(i32::MAX),
            hops,
            links,
            end_to_end: Some(EndToEnd {
                latency: total.map(|t| t.value(PathMetric::Latency).to_string()),
                compliance: evaluation.status.compliance,
            }),
            binding: Some(binding_name),
        });
        bindings.push(LaneBinding {
            binding,
            evaluation,
        });
    }
    let lane_count = lane_statuses.len();
    let (phase, reason) = if ready_lanes == lane_count {
        ("Ready", None)
    } else if !unplaced.is_empty() {
        (
            "Pending",
            Some(format!("not placed: {}", unplaced.join(", "))),
        )
    } else {
        (
            "Wiring",
            Some(format!("links not ready: {}", unready_links.join(", "))),
        )
    };
    ChainDecision {
        nads,
        bindings,
        status: ServiceChainStatus {
            phase: Some(phase.into()),
            path: Some(path),
            lane_count: Some(i32::try_from(lane_count).unwrap_or(i32::MAX)),
            ready_lanes: Some(i32::try_from(ready_lanes).unwrap_or(i32::MAX)),
            worst_latency: worst_latency.map(|m| m.value(PathMetric::Latency).to_string()),
            reason: reason.clone(),
            lanes: lane_statuses,
            observed_generation: generation,
            conditions: vec![
                cond(
                    CONDITION_VALID,
                    true,
                    "Valid",
                    "the chain's hops can be chained",
                ),
                cond(
                    CONDITION_READY,
                    phase == "Ready",
                    phase,
                    &reason.unwrap_or_else(|| format!("{ready_lanes} of {lane_count} lanes ready")),
                ),
            ],
        },
        errors: Vec::new(),
    }
}

/// The lane's rules judged: end-to-end rules on the whole lane, per-link rules on the
/// worst link. Pending while a hop is not placed.
fn lane_outcomes(
    end_to_end: &[crate::rules::Rule],
    per_link: &[crate::rules::Rule],
    total: Option<PathMetrics>,
    links: &[Option<PathMetrics>],
) -> Vec<PolicyOutcome> {
    let judge = |rule: &crate::rules::Rule, measured: Option<PathMetrics>| {
        let metric = PathMetric::for_rule(&rule.name);
        match (metric, measured) {
            (Some(metric), Some(m)) => {
                let value = m.value(metric);
                let compliance = rule.judge(&value);
                RuleOutcome {
                    rule: rule.name.clone(),
                    compliance,
                    value: Some(value.to_string()),
                    reason: Some(rule.explain(&value, compliance)),
                }
            }
            _ => RuleOutcome {
                rule: rule.name.clone(),
                compliance: Compliance::Pending,
                value: None,
                reason: Some("a hop of the lane is not placed".into()),
            },
        }
    };
    let mut outcomes = Vec::new();
    if !end_to_end.is_empty() {
        outcomes.push(PolicyOutcome {
            policy: END_TO_END_POLICY.into(),
            rules: end_to_end.iter().map(|r| judge(r, total)).collect(),
            error: None,
        });
    }
    if !per_link.is_empty() {
        let rules = per_link
            .iter()
            .map(|r| {
                let judged: Vec<RuleOutcome> = if links.is_empty() {
                    vec![judge(r, None)]
                } else {
                    links.iter().map(|l| judge(r, *l)).collect()
                };
                // The worst link decides, as the worst pair does for a pairwise rule.
                judged
                    .into_iter()
                    .max_by_key(|o| o.compliance)
                    .unwrap_or_else(|| judge(r, None))
            })
            .collect();
        outcomes.push(PolicyOutcome {
            policy: PER_LINK_POLICY.into(),
            rules,
            error: None,
        });
    }
    outcomes
}

/// The binding of lane `index`: the ingress and egress sites and every hop's NF (the lane
/// label says which replica), owned by the chain. Its `offer` names the chain: no offer
/// of that name expands it, and the binding controller leaves bindings without an offer
/// alone, so the chain controller is the one writer of its status.
pub fn lane_binding(
    chain: &ServiceChain,
    index: usize,
    lane: &[LaneMember],
) -> ConstraintPolicyBinding {
    let name = chain.metadata.name.clone().unwrap_or_default();
    let namespace = chain.metadata.namespace.clone();
    let mut targets = BTreeMap::new();
    if let Some(ingress) = &chain.spec.ingress {
        targets.insert("ingress".to_string(), TargetRef::site(&ingress.site));
    }
    if let Some(egress) = &chain.spec.egress {
        targets.insert("egress".to_string(), TargetRef::site(&egress.site));
    }
    for member in lane {
        targets.insert(
            format!("hop-{}", member.hop),
            TargetRef {
                cluster: None,
                namespace: namespace.clone(),
                api_version: NETWORK_API_VERSION.into(),
                kind: TargetKind::NetworkFunction,
                name: member.network_function.clone(),
            },
        );
    }
    ConstraintPolicyBinding {
        metadata: ObjectMeta {
            name: Some(lane_binding_name(&name, index)),
            namespace,
            labels: Some(BTreeMap::from([
                (CHAIN_LABEL.to_string(), name.clone()),
                (LANE_LABEL.to_string(), index.to_string()),
            ])),
            owner_references: owner(chain).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: ConstraintPolicyBindingSpec {
            offer: name,
            targets,
        },
        status: None,
    }
}
