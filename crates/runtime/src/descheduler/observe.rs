//! What the descheduler reads from the caches, as the facts `edgeplane_core::descheduler`
//! decides from, and the questions it asks (the planner's, the network controller's).
//! Pure: objects in, facts out; every problem is named with its object and field.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::ServiceChain;
use edgeplane_api::{
    ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyOffer, ConstraintPolicyRule,
    TargetKind, TargetRef,
};
use edgeplane_core::chain::plan::lane_plan_bindings;
use edgeplane_core::chain::{CHAIN_LABEL, LANE_GRACE, LANE_LABEL};
use edgeplane_core::descheduler::{
    BindingFacts, BindingKey, Holder, KUBEVIRT_LABEL, Memory, MigrationFacts, MigrationPhase,
    OfferFacts, Owner, PodFacts, ReplacementQuestion, Reservation, VIRT_LAUNCHER, VM_NAME_LABEL,
    unpinned,
};
use edgeplane_core::evaluate::ClusterView;
use edgeplane_core::nf::{NF_LABEL, REPLICA_LABEL};
use edgeplane_core::placement;
use edgeplane_core::placement::RulesContext;
use edgeplane_core::planner::convert::pod_key;
use edgeplane_core::planner::convert::resources;
use edgeplane_core::planner::convert::running_rules;
use edgeplane_core::planner::{
    PlacedPod, PlanBinding, PlanNode, PlanRule, PodKey, pending_pod, placed_pod,
};
use edgeplane_core::scheduler::input::hostnames;
use edgeplane_core::values::parse_duration_field;
use edgeplane_netctl::{Endpoint, MitigateRequest};
use k8s_openapi::api::core::v1::{Node, Pod};

use super::room;
use crate::controllers::binding::DEFAULT_GRACE;
use crate::foreign::VirtualMachineInstanceMigration;

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

/// `namespace/name` of an offer.
pub fn offer_key(offer: &ConstraintPolicyOffer) -> String {
    format!(
        "{}/{}",
        namespace_of(&offer.metadata),
        offer.metadata.name.as_deref().unwrap_or_default()
    )
}

/// What the descheduler cannot read from the objects it observes; each message names the
/// object and the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObserveError {
    #[error("offer {offer}: {field}: {message}")]
    OfferField {
        offer: String,
        field: &'static str,
        message: String,
    },
    #[error("binding {binding}: spec.targets: a single target has no network path to mitigate")]
    SingleTarget { binding: BindingKey },
    #[error("binding {binding}: spec.targets.{role}: {problem}")]
    Target {
        binding: BindingKey,
        role: String,
        problem: Box<PlaceError>,
    },
    #[error("pod {0} is not in the cache")]
    NotCached(PodKey),
    #[error("{0}")]
    Place(#[from] PlaceError),
    #[error("pod {0}: has no spec")]
    NoSpec(PodKey),
    #[error("pod {pod}: spec.{problem}")]
    Spec { pod: PodKey, problem: String },
}

/// Why an object has no place in the network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("pod {0} does not exist")]
    NoPod(PodKey),
    #[error("pod {0} is not running on a node")]
    NotRunning(PodKey),
    #[error("{0:?} targets have no place in the network")]
    Kind(TargetKind),
}

/// What the descheduler reads from an offer: its policy, grace and mitigation grace
/// (defaulting to the grace). A duration that does not parse is an error naming the offer
/// and the field (the CRD's pattern normally rejects it at admission).
pub fn offer_facts(offer: &ConstraintPolicyOffer) -> Result<OfferFacts, ObserveError> {
    let field_error = |field, e: &dyn std::fmt::Display| ObserveError::OfferField {
        offer: offer_key(offer),
        field,
        message: e.to_string(),
    };
    let grace = if offer.spec.grace.is_empty() {
        DEFAULT_GRACE
    } else {
        parse_duration_field(&offer.spec.grace).map_err(|e| field_error("spec.grace", &e))?
    };
    let mitigation_grace = match offer.spec.mitigation_grace.as_deref() {
        None | Some("") => grace,
        Some(text) => {
            parse_duration_field(text).map_err(|e| field_error("spec.mitigationGrace", &e))?
        }
    };
    Ok(OfferFacts {
        policy: offer.spec.violation_policy,
        grace,
        mitigation_grace,
    })
}

fn pod_target(target: &TargetRef) -> Option<PodKey> {
    (target.kind == TargetKind::Pod && target.cluster.as_deref().unwrap_or_default().is_empty())
        .then(|| {
            PodKey::new(
                target.namespace.as_deref().unwrap_or("default"),
                &target.name,
            )
        })
}

/// What the descheduler reads from a binding. A binding without a status has not been
/// evaluated yet: Pending, never acted on.
pub fn binding_facts(binding: &ConstraintPolicyBinding) -> BindingFacts {
    let status = binding.status.as_ref();
    BindingFacts {
        key: binding_key(binding),
        offer: binding.spec.offer.clone(),
        compliance: binding_compliance(binding),
        violating_since: status.and_then(|s| s.violating_since.as_ref()).map(|t| t.0),
        last_mitigated: status
            .and_then(|s| s.last_mitigated_timestamp.as_ref())
            .map(|t| t.0),
        pods: binding
            .spec
            .targets
            .values()
            .filter_map(pod_target)
            .collect(),
    }
}

pub fn binding_key(binding: &ConstraintPolicyBinding) -> BindingKey {
    BindingKey::new(
        namespace_of(&binding.metadata),
        binding.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// The binding's compliance; Pending until it has a status.
pub fn binding_compliance(binding: &ConstraintPolicyBinding) -> edgeplane_api::Compliance {
    binding
        .status
        .as_ref()
        .map_or(edgeplane_api::Compliance::Pending, |s| s.compliance)
}

/// Whether the descheduler must read the binding this cycle (see
/// [`edgeplane_core::descheduler::Memory::concerns`]).
pub fn concerns(memory: &Memory, binding: &ConstraintPolicyBinding) -> bool {
    let violating_since = binding
        .status
        .as_ref()
        .and_then(|s| s.violating_since.as_ref())
        .map(|t| t.0);
    memory.concerns(binding_compliance(binding), violating_since, || {
        binding_key(binding)
    })
}

/// Who owns a pod, as far as moving it goes: its controller owner reference (a
/// DaemonSet recreates it on the same node), a mirror pod (kubelet's, not evictable), or
/// nobody.
pub fn owner(pod: &Pod) -> Owner {
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    if mirror {
        return Owner::Unmovable("mirror pod (kubelet)".into());
    }
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    match controller {
        Some(o) if o.kind == "DaemonSet" || o.kind == "Node" => Owner::Unmovable(o.kind.clone()),
        Some(o) => Owner::Controller(o.kind.clone()),
        None => Owner::Bare,
    }
}

/// What the descheduler reads from a pod.
pub fn pod_facts(pod: &Pod) -> PodFacts {
    PodFacts {
        key: pod_key(pod),
        created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        owner: owner(pod),
        controller: room::controller_uid(pod),
        demand: pod
            .spec
            .as_ref()
            .map(room::replacement_demand)
            .unwrap_or_default(),
        running: placed_pod(pod).is_some(),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        vmi: launched_vmi(pod),
    }
}

/// The VMI a virt-launcher pod runs (`kubevirt.io: virt-launcher`, `vm.kubevirt.io/name`).
pub fn launched_vmi(pod: &Pod) -> Option<String> {
    let labels = pod.metadata.labels.as_ref()?;
    (labels.get(KUBEVIRT_LABEL).map(String::as_str) == Some(VIRT_LAUNCHER))
        .then(|| labels.get(VM_NAME_LABEL).cloned())
        .flatten()
}

/// The pods of a lane binding (labelled with its chain and lane), in role order: for each
/// NetworkFunction target, the pods of the replica the lane label names (a container
/// replica's pod, a VM replica's launcher pods: two while it migrates), finished ones left
/// out. `None` for a binding that is not a lane's.
pub fn lane_pods(binding: &ConstraintPolicyBinding, pods: &[Arc<Pod>]) -> Option<Vec<PodKey>> {
    let labels = binding.metadata.labels.as_ref()?;
    labels.get(CHAIN_LABEL)?;
    let lane = labels.get(LANE_LABEL)?;
    let namespace = namespace_of(&binding.metadata);
    let mut out = Vec::new();
    for target in binding.spec.targets.values() {
        if target.kind != TargetKind::NetworkFunction {
            continue;
        }
        let mut of_hop: Vec<PodKey> = pods
            .iter()
            .filter(|p| namespace_of(&p.metadata) == namespace)
            .filter(|p| {
                let l = p.metadata.labels.as_ref();
                l.and_then(|l| l.get(NF_LABEL)) == Some(&target.name)
                    && l.and_then(|l| l.get(REPLICA_LABEL)) == Some(lane)
            })
            .filter(|p| {
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                !matches!(phase, Some("Succeeded" | "Failed"))
            })
            .map(|p| pod_key(p))
            .collect();
        of_hop.sort();
        out.extend(of_hop);
    }
    Some(out)
}

/// What the descheduler reads for the lanes of a chain, which have no offer: violationPolicy
/// Evict (repair: mitigate first, then move a hop), the lane grace for both graces.
pub fn lane_offer_facts() -> OfferFacts {
    OfferFacts {
        policy: edgeplane_api::ViolationPolicy::Evict,
        grace: LANE_GRACE,
        mitigation_grace: LANE_GRACE,
    }
}

/// What the descheduler reads from a `VirtualMachineInstanceMigration`.
pub fn migration_facts(migration: &VirtualMachineInstanceMigration) -> MigrationFacts {
    let json = &migration.rest;
    let text = |pointer: &str| {
        let (first, rest) = pointer.split_once('/').unwrap_or((pointer, ""));
        json.get(first)
            .and_then(|v| {
                if rest.is_empty() {
                    Some(v)
                } else {
                    v.pointer(&format!("/{rest}"))
                }
            })
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let time = |pointer: &str| text(pointer).and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let reason = json
        .get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|c| c.get("message").and_then(serde_json::Value::as_str))
        .map(str::to_string);
    MigrationFacts {
        key: PodKey::new(
            namespace_of(&migration.metadata),
            migration.metadata.name.as_deref().unwrap_or_default(),
        ),
        vmi: text("spec/vmiName").unwrap_or_default(),
        phase: MigrationPhase::from_phase(text("status/phase").as_deref()),
        created: migration.metadata.creation_timestamp.as_ref().map(|t| t.0),
        ended: time("status/migrationState/endTimestamp"),
        reason,
    }
}

/// The Mitigate question for a lane binding: from its ingress to its egress (a site, or
/// the node of the first or last hop's pod when the chain has none), with the chain's
/// `endToEnd` rules: the network controller is asked for the path the lane's traffic
/// enters and leaves by, as for a binding with more than two targets.
pub fn lane_mitigate_request(
    binding: &ConstraintPolicyBinding,
    chain: &ServiceChain,
    pods: &HashMap<PodKey, Arc<Pod>>,
) -> Result<MitigateRequest, ObserveError> {
    let key = binding_key(binding);
    let hop_pod = |hop: Option<&edgeplane_api::Hop>, role: &str| {
        let hop = hop.ok_or_else(|| ObserveError::SingleTarget {
            binding: key.clone(),
        })?;
        pods.values()
            .filter(|p| {
                p.metadata.labels.as_ref().and_then(|l| l.get(NF_LABEL))
                    == Some(&hop.network_function)
            })
            .find_map(|p| placed_pod(p).map(|placed| Endpoint::Node(placed.node)))
            .ok_or_else(|| ObserveError::Target {
                binding: key.clone(),
                role: role.to_string(),
                problem: Box::new(PlaceError::NotRunning(PodKey::new(
                    &key.namespace,
                    &hop.network_function,
                ))),
            })
    };
    let source = match &chain.spec.ingress {
        Some(end) => Endpoint::Site(end.site.clone()),
        None => hop_pod(chain.spec.hops.first(), "ingress")?,
    };
    let destination = match &chain.spec.egress {
        Some(end) => Endpoint::Site(end.site.clone()),
        None => hop_pod(chain.spec.hops.last(), "egress")?,
    };
    Ok(MitigateRequest {
        binding: key.to_string(),
        source,
        destination,
        rules: chain
            .spec
            .constraints
            .as_ref()
            .map(|c| c.end_to_end.clone())
            .unwrap_or_default(),
    })
}

/// The rules of an offer's policies, as the binding controller evaluates them, with the
/// problems (a policy that does not exist) named.
pub fn offer_rules(
    offer: &ConstraintPolicyOffer,
    policies: &[Arc<ConstraintPolicy>],
) -> (Vec<(String, ConstraintPolicyRule)>, Vec<String>) {
    let namespace = namespace_of(&offer.metadata);
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for (i, name) in offer.spec.policies.iter().enumerate() {
        let policy = policies.iter().find(|p| {
            namespace_of(&p.metadata) == namespace && p.metadata.name.as_ref() == Some(name)
        });
        match policy {
            Some(p) => rules.extend(p.spec.rules.iter().map(|r| (name.clone(), r.clone()))),
            None => problems.push(format!(
                "offer {}: spec.policies[{i}]: policy {namespace}/{name} does not exist",
                offer_key(offer)
            )),
        }
    }
    (rules, problems)
}

/// Where one end of a binding is, for the network controller: the node of a running pod,
/// or a site.
fn endpoint(target: &TargetRef, pods: &HashMap<PodKey, Arc<Pod>>) -> Result<Endpoint, PlaceError> {
    match target.kind {
        TargetKind::Site => Ok(Endpoint::Site(target.name.clone())),
        TargetKind::Pod => {
            let key = PodKey::new(
                target.namespace.as_deref().unwrap_or("default"),
                &target.name,
            );
            let pod = pods
                .get(&key)
                .ok_or_else(|| PlaceError::NoPod(key.clone()))?;
            placed_pod(pod)
                .map(|p| Endpoint::Node(p.node))
                .ok_or(PlaceError::NotRunning(key))
        }
        other => Err(PlaceError::Kind(other)),
    }
}

/// The Mitigate question for a binding: its first two roles (in role order) as source
/// and destination, and the rules of its offer's policies. A binding with more than two
/// targets is mitigated between its first two (the reference controller holds one
/// mitigation path per binding).
pub fn mitigate_request(
    binding: &ConstraintPolicyBinding,
    rules: &[(String, ConstraintPolicyRule)],
    pods: &HashMap<PodKey, Arc<Pod>>,
) -> Result<MitigateRequest, ObserveError> {
    let facts = binding_facts(binding);
    let mut ends = binding.spec.targets.iter();
    let (Some((role_a, a)), Some((role_b, b))) = (ends.next(), ends.next()) else {
        return Err(ObserveError::SingleTarget { binding: facts.key });
    };
    let end = |role: &str, target| {
        endpoint(target, pods).map_err(|problem| ObserveError::Target {
            binding: facts.key.clone(),
            role: role.to_string(),
            problem: Box::new(problem),
        })
    };
    let source = end(role_a, a)?;
    let destination = end(role_b, b)?;
    Ok(MitigateRequest {
        binding: facts.key.to_string(),
        source,
        destination,
        rules: rules.iter().map(|(_, r)| r.clone()).collect(),
    })
}

/// Everything [`replacement_question`] reads, borrowed from the caches.
#[derive(Clone, Copy, Debug)]
pub struct World<'a> {
    pub view: &'a ClusterView,
    pub nodes: &'a [Arc<Node>],
    pub pods: &'a [Arc<Pod>],
    pub bindings: &'a [Arc<ConstraintPolicyBinding>],
    pub offers: &'a [Arc<ConstraintPolicyOffer>],
    pub policies: &'a [Arc<ConstraintPolicy>],
    /// The service chains whose lanes are planned as units (empty: not watched).
    pub chains: &'a [Arc<ServiceChain>],
}

/// The planner's question about one pod: the cluster with every other pod holding
/// capacity where it is (bound, or pinned and waiting for kube-scheduler), the room of
/// `held` taken, the pod as its replacement would be (the scheduler's pin removed), and
/// every binding the pod is a target of. `Err` names what cannot be read.
pub fn replacement_question<'a>(
    world: &World<'a>,
    binding: &BindingKey,
    pod: &PodKey,
    held: &[Reservation],
) -> Result<ReplacementQuestion<'a>, ObserveError> {
    let object = world
        .pods
        .iter()
        .find(|p| pod_key(p) == *pod)
        .ok_or_else(|| ObserveError::NotCached(pod.clone()))?;
    let current = placed_pod(object)
        .map(|p| p.node)
        .ok_or_else(|| PlaceError::NotRunning(pod.clone()))?;
    let spec = object
        .spec
        .as_ref()
        .ok_or_else(|| ObserveError::NoSpec(pod.clone()))?;
    let mut pending = pending_pod(
        pod.clone(),
        object.metadata.labels.clone().unwrap_or_default(),
        spec,
    )
    .map_err(|e| ObserveError::Spec {
        pod: pod.clone(),
        problem: e.to_string(),
    })?;
    pending.affinity = unpinned(&pending.affinity);
    let nodes: Vec<PlanNode> = world
        .nodes
        .iter()
        .filter_map(|n| edgeplane_core::planner::plan_node(n).ok())
        .collect();
    let hosts = hostnames(world.nodes);
    let mut placed: Vec<PlacedPod> = world
        .pods
        .iter()
        .filter(|p| pod_key(p) != *pod)
        .filter_map(|p| {
            Some(PlacedPod {
                key: pod_key(p),
                node: room::holds(p, &hosts)?,
                requests: resources(&placement::effective_pod_requests(p.spec.as_ref()?)),
                labels: p.metadata.labels.clone().unwrap_or_default(),
                pod_rules: running_rules(p, &RulesContext::default()),
            })
        })
        .collect();
    // The room held for pods that are not on their node yet, as pods there (named so that
    // no binding targets them).
    placed.extend(held.iter().map(|r| {
        let who = match &r.holder {
            Holder::Waiting(p) | Holder::ToCome(p) | Holder::ThisCycle(p) => p,
        };
        PlacedPod {
            key: PodKey::new(&who.namespace, format!("{} (held)", who.name)),
            node: r.node.clone(),
            requests: resources(&r.requests),
            labels: Default::default(),
            pod_rules: Default::default(),
        }
    }));
    let offers: BTreeMap<String, &Arc<ConstraintPolicyOffer>> =
        world.offers.iter().map(|o| (offer_key(o), o)).collect();
    let mut bindings = Vec::new();
    for b in world.bindings {
        let facts = binding_facts(b);
        if !facts.pods.contains(pod) {
            continue;
        }
        let Some(offer) = offers.get(&facts.offer_key()) else {
            continue;
        };
        let (rules, _) = offer_rules(offer, world.policies);
        bindings.push(PlanBinding {
            name: facts.key.name.clone(),
            offer: facts.offer_key(),
            targets: b.spec.targets.clone(),
            rules: rules
                .iter()
                .map(|(policy, rule)| PlanRule::builtin(policy, rule))
                .collect(),
        });
    }
    // The lanes the pod is a hop of, judged as units along the lane (their bindings have
    // no offer).
    let asked = std::collections::BTreeSet::from([pod.clone()]);
    bindings.extend(lane_plan_bindings(world.chains, world.pods, &asked).bindings);
    Ok(ReplacementQuestion {
        view: world.view,
        nodes,
        placed,
        pod: pending,
        current_node: current,
        bindings,
        binding: binding.name.clone(),
    })
}

/// How long ago `since` was, at `now` (zero for the future).
pub fn age(since: jiff::Timestamp, now: jiff::Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offer(spec: serde_json::Value) -> ConstraintPolicyOffer {
        serde_json::from_value(json!({
            "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicyOffer",
            "metadata": {"name": "o", "namespace": "ar"}, "spec": spec
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn offer_durations_default_and_errors_name_the_field() {
        let o = offer(json!({"targets": [], "policies": ["p"], "grace": "30s",
            "violationPolicy": "Evict"}));
        let f = offer_facts(&o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.grace, Duration::from_secs(30));
        assert_eq!(f.mitigation_grace, Duration::from_secs(30));
        let o = offer(json!({"targets": [], "policies": ["p"], "mitigationGrace": "soon"}));
        assert!(offer_facts(&o).is_err_and(|e| {
            e.to_string()
                .starts_with("offer ar/o: spec.mitigationGrace: \"soon\"")
        }));
    }

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn owners() {
        let owned = |kind: &str| {
            pod(json!({"metadata": {"name": "p", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": kind, "name": "x", "uid": "u", "controller": true}]}}))
        };
        assert_eq!(
            owner(&owned("ReplicaSet")),
            Owner::Controller("ReplicaSet".into())
        );
        assert_eq!(
            owner(&owned("DaemonSet")),
            Owner::Unmovable("DaemonSet".into())
        );
        assert_eq!(owner(&pod(json!({"metadata": {"name": "p"}}))), Owner::Bare);
        let mirror = pod(json!({"metadata": {"name": "p",
            "annotations": {"kubernetes.io/config.mirror": "x"}}}));
        assert!(matches!(owner(&mirror), Owner::Unmovable(_)));
    }

    #[test]
    fn mitigation_goes_between_the_first_two_roles() {
        let binding: ConstraintPolicyBinding = serde_json::from_value(json!({
            "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicyBinding",
            "metadata": {"name": "b", "namespace": "ar"},
            "spec": {"offer": "o", "targets": {
                "renderer": {"namespace": "ar", "apiVersion": "v1", "kind": "Pod", "name": "r"},
                "users": {"apiVersion": "network.edgeplane.io/v1alpha1", "kind": "Site", "name": "stadium"}}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let rules = vec![(
            "p".to_string(),
            ConstraintPolicyRule {
                name: "latency".into(),
                request: "2ms".into(),
                limit: Some("5ms".into()),
            },
        )];
        let none = HashMap::new();
        assert_eq!(
            mitigate_request(&binding, &rules, &none)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("binding ar/b: spec.targets.renderer: pod ar/r does not exist")
        );
        let running = Arc::new(pod(json!({"metadata": {"name": "r", "namespace": "ar"},
            "spec": {"nodeName": "n1", "containers": []}, "status": {"phase": "Running"}})));
        let pods = HashMap::from([(PodKey::new("ar", "r"), running)]);
        let request = mitigate_request(&binding, &rules, &pods).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.binding, "ar/b");
        assert_eq!(request.source, Endpoint::Node("n1".into()));
        assert_eq!(request.destination, Endpoint::Site("stadium".into()));
        assert_eq!(request.rules, vec![rules[0].1.clone()]);
    }
}
