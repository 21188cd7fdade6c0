//! `edgeplane plan --network-controller URL`: the paper's pipeline, step 3, offline.
//!
//! When the plan leaves a pod unplaced because every feasible node puts a rule of one of
//! its bindings in Violation, the same question the planning scheduler asks in a cluster
//! (`edgeplane_runtime::scheduler::discover`) goes to the network controller: Discover,
//! then Allocate the best offer. Offline there is no NetworkTopology to watch for the
//! activation, so the allocated paths are laid over the input topology as activated paths
//! (`status.activatedPaths`, with the metrics the controller expects) and the pods are
//! planned again on that network: the plan is the one a cluster reaches once the paths are
//! active.

use edgeplane_api::{ActivatedPath, NetworkTopology, NetworkTopologyStatus};
use edgeplane_core::planner::{Plan, PlanInput, PodKey};
use edgeplane_netctl::{
    AllocateRequest, ClientOptions, GrpcNetworkController, NetctlError, NetworkController,
    PathOffer,
};
use edgeplane_runtime::scheduler::discover;
use jiff::Timestamp;

/// A path allocated for an unplaced pod.
#[derive(Clone, Debug)]
pub struct Allocation {
    pub pod: PodKey,
    /// `namespace/name` of the binding the path is for.
    pub binding: String,
    /// The allocation's id at the network controller.
    pub id: String,
    pub offer: PathOffer,
}

/// What the network controller said about one unplaced pod, for the summary.
#[derive(Clone, Debug)]
pub enum Outcome {
    Allocated(Box<Allocation>),
    /// The controller offered nothing (or only expired offers).
    NoPath {
        pod: PodKey,
        binding: String,
    },
    Failed {
        pod: PodKey,
        error: NetctlError,
    },
}

/// Asks the controller at `url` for a path for every pod of `plan` that no node satisfied.
pub fn allocate(
    url: &str,
    input: &PlanInput<'_>,
    plan: &Plan,
    now: Timestamp,
) -> Result<Vec<Outcome>, NetctlError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            NetctlError::Unavailable(format!("{url}: cannot start the gRPC client: {e}"))
        })?;
    runtime.block_on(async {
        let controller = GrpcNetworkController::new(url, &ClientOptions::default())?;
        let mut outcomes = Vec::new();
        for unplaced in &plan.unplaced {
            let Some(pending) = input.pending.iter().find(|p| p.key == unplaced.pod) else {
                continue;
            };
            let Some(question) = discover::request_for(
                pending,
                &unplaced.reason,
                &input.bindings,
                &input.nodes,
                &input.placed,
            ) else {
                continue;
            };
            let pod = unplaced.pod.clone();
            let offers = match controller.discover(&question.request).await {
                Ok(offers) => offers,
                Err(error) => {
                    outcomes.push(Outcome::Failed { pod, error });
                    continue;
                }
            };
            let Some(offer) = discover::choose(&offers, now) else {
                outcomes.push(Outcome::NoPath {
                    pod,
                    binding: question.binding,
                });
                continue;
            };
            let request = AllocateRequest {
                id: offer.id.clone(),
                binding: question.binding.clone(),
                rules: question.request.rules.clone(),
            };
            match controller.allocate(&request).await {
                Ok(allocated) => outcomes.push(Outcome::Allocated(Box::new(Allocation {
                    pod,
                    binding: question.binding,
                    id: allocated.id,
                    offer: offer.clone(),
                }))),
                Err(error) => outcomes.push(Outcome::Failed { pod, error }),
            }
        }
        Ok(outcomes)
    })
}

/// The topology with the allocated paths active: each path joins its first and last site
/// with the metrics the controller expects of it.
pub fn with_paths(topology: &NetworkTopology, allocations: &[&Allocation]) -> NetworkTopology {
    let mut topology = topology.clone();
    let status = topology
        .status
        .get_or_insert_with(NetworkTopologyStatus::default);
    for a in allocations {
        let (Some(from), Some(to)) = (a.offer.path.first(), a.offer.path.last()) else {
            continue;
        };
        let expected = &a.offer.expected;
        let given = |s: &String| (!s.is_empty()).then(|| s.clone());
        status.activated_paths.push(ActivatedPath {
            from: from.clone(),
            to: to.clone(),
            one_way: false,
            latency: expected.latency.clone(),
            jitter: given(&expected.jitter),
            bandwidth: given(&expected.bandwidth),
            loss: given(&expected.loss),
            catalogue: "network-controller".into(),
            entry: a.offer.entry.clone(),
            bindings: vec![a.binding.clone()],
        });
    }
    topology
}

/// `ar/renderer-2: allocated slice-a (path stadium, edge-1; ...) for node edge-1-a
/// (allocation a-1) for binding ar/ar-latency-...`.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Allocated(a) => format!(
            "{}: allocated {} (allocation {}) for binding {}",
            a.pod,
            discover::describe_offer(&a.offer),
            a.id,
            a.binding
        ),
        Outcome::NoPath { pod, binding } => {
            format!("{pod}: the network controller offers no path for binding {binding}")
        }
        Outcome::Failed { pod, error } => {
            format!("{pod}: asking the network controller failed: {error}")
        }
    }
}
