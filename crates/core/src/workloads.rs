//! Workloads to plan: Pods, replicated workloads (Deployments, StatefulSets, ReplicaSets)
//! expanded into replicas, and KubeVirt VirtualMachines.
//!
//! - A replicated workload with `spec.replicas: n` (default 1) becomes the pods
//!   `<name>-0` ... `<name>-<n-1>`, each with the template's labels and spec. Offers select
//!   them like Pods, and the plan places each.
//! - A VirtualMachine runs in a virt-launcher pod that carries the labels of
//!   `spec.template.metadata`; edgeplane plans it as one pod named like the VM, with those
//!   labels (so Pod targets of offers select VMs by their template labels), the requests
//!   of `spec.template.spec.domain.resources.requests` (or, without them, `memory.guest`
//!   and one core per vCPU), and the template's node selector, affinity and tolerations.
//!   The launcher's own overhead counts as the pod's `overhead`
//!   (`kubevirt::LAUNCHER_MEMORY_OVERHEAD`, as the embedded cluster's launcher pods have).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use crate::kubevirt::{
    Domain, DomainCpu, DomainMemory, DomainResources, KUBEVIRT_API_VERSION, VirtualMachine,
    VirtualMachineInstanceSpec, VirtualMachineSpec, VirtualMachineTemplate,
};
pub use crate::manifests::{check_replicas, check_spec};
use crate::offers::{Candidate, Inventory, OfferError};
use crate::placement::RulesContext;
use crate::planner::{PendingPod, PlacedPod, PlanBinding, PlanRule, PodKey, RuleProvider, convert};
use crate::snapshot::Snapshot;

/// Which kind a workload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    Pod,
    Deployment,
    StatefulSet,
    ReplicaSet,
    VirtualMachine,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "Pod",
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::VirtualMachine => "VirtualMachine",
        }
    }
}

/// A workload to plan and the pods it stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub pods: Vec<PendingPod>,
}

fn replicas(
    kind: WorkloadKind,
    meta: &ObjectMeta,
    count: Option<i32>,
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    context: &RulesContext,
) -> Workload {
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    let name = meta.name.clone().unwrap_or_default();
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let spec = template.spec.clone().unwrap_or_default();
    let pods = (0..count.unwrap_or(1).max(0))
        .filter_map(|i| {
            convert::pending_pod_in(
                PodKey::new(&namespace, format!("{name}-{i}")),
                labels.clone(),
                &spec,
                context,
            )
            .ok()
        })
        .collect();
    Workload {
        kind,
        namespace,
        name,
        pods,
    }
}

/// Every workload of a snapshot that has pods to place: Pods without a node, replicated
/// workloads, VirtualMachines. Pods come first, then Deployments, StatefulSets,
/// ReplicaSets and VirtualMachines, each in input order.
pub fn workloads(snapshot: &Snapshot) -> Vec<Workload> {
    let mut out = Vec::new();
    let context = snapshot.rules_context();
    for pod in &snapshot.pods {
        if Candidate::from_pod(pod).is_none()
            || pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some_and(|n| !n.is_empty())
        {
            continue;
        }
        let key = convert::pod_key(pod);
        let spec = pod.spec.clone().unwrap_or_default();
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if let Ok(pending) = convert::pending_pod_in(key.clone(), labels, &spec, &context) {
            out.push(Workload {
                kind: WorkloadKind::Pod,
                namespace: key.namespace,
                name: key.name,
                pods: vec![pending],
            });
        }
    }
    for d in &snapshot.deployments {
        let spec = d.spec.clone().unwrap_or_default();
        out.push(replicas(
            WorkloadKind::Deployment,
            &d.metadata,
            spec.replicas,
            &spec.template,
            &context,
        ));
    }
    for s in &snapshot.stateful_sets {
        let spec = s.spec.clone().unwrap_or_default();
        out.push(replicas(
            WorkloadKind::StatefulSet,
            &s.metadata,
            spec.replicas,
            &spec.template,
            &context,
        ));
    }
    for r in &snapshot.replica_sets {
        let spec = r.spec.clone().unwrap_or_default();
        let template = spec.template.unwrap_or_default();
        out.push(replicas(
            WorkloadKind::ReplicaSet,
            &r.metadata,
            spec.replicas,
            &template,
            &context,
        ));
    }
    for vm in &snapshot.virtual_machines {
        let namespace = vm
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = vm.metadata.name.clone().unwrap_or_default();
        let pods = convert::pending_pod_in(
            PodKey::new(&namespace, &name),
            vm.pod_labels(),
            &vm.pod_spec(),
            &context,
        )
        .into_iter()
        .collect();
        out.push(Workload {
            kind: WorkloadKind::VirtualMachine,
            namespace,
            name,
            pods,
        });
    }
    out
}

/// Pods of the snapshot that run already (they have a node).
pub fn running(snapshot: &Snapshot) -> Vec<PlacedPod> {
    let context = snapshot.rules_context();
    snapshot
        .pods
        .iter()
        .filter_map(|pod| convert::placed_pod_in(pod, &context))
        .collect()
}

/// What offers select from when planning: running pods, the pods of the workloads to
/// plan (replicas and VMs carry their template labels), and sites.
pub fn inventory(snapshot: &Snapshot, workloads: &[Workload]) -> Inventory {
    let mut inventory = snapshot.inventory();
    let known: std::collections::HashSet<(String, String)> = inventory
        .pods
        .iter()
        .map(|c| {
            (
                c.reference.namespace.clone().unwrap_or_default(),
                c.reference.name.clone(),
            )
        })
        .collect();
    for w in workloads {
        for pod in &w.pods {
            if known.contains(&(pod.key.namespace.clone(), pod.key.name.clone())) {
                continue;
            }
            inventory.pods.push(Candidate {
                reference: edgeplane_api::TargetRef::pod(&pod.key.namespace, &pod.key.name),
                labels: pod.labels.clone(),
            });
        }
    }
    inventory
}

/// The bindings of every offer against `inventory`, with the rules of their policies
/// (built-in providers; a policy missing from the snapshot makes its rules Broken).
/// `external` names rules served by an external provider: they get an empty cost table
/// to fill (see [`crate::planner::fill_external_costs`]).
pub fn plan_bindings(
    snapshot: &Snapshot,
    inventory: &Inventory,
    external: &[String],
) -> Result<Vec<PlanBinding>, (String, OfferError)> {
    let mut out = Vec::new();
    let index = crate::offers::PodIndex::new(inventory);
    for offer in &snapshot.offers {
        let namespace = offer.metadata.namespace.as_deref().unwrap_or("default");
        let offer_key = format!(
            "{namespace}/{}",
            offer.metadata.name.as_deref().unwrap_or_default()
        );
        let desired = crate::offers::expand_indexed(offer, inventory, &index)
            .map_err(|e| (offer_key.clone(), e))?;
        let mut rules = Vec::new();
        for policy in &offer.spec.policies {
            match snapshot.policy(namespace, policy) {
                Some(p) => {
                    for spec in &p.spec.rules {
                        let rule = if external.contains(&spec.name) {
                            PlanRule {
                                policy: policy.clone(),
                                spec: spec.clone(),
                                provider: RuleProvider::External(Default::default()),
                            }
                        } else {
                            PlanRule::builtin(policy, spec)
                        };
                        rules.push(rule);
                    }
                }
                None => rules.push(PlanRule {
                    policy: policy.clone(),
                    spec: edgeplane_api::ConstraintPolicyRule {
                        name: "(policy)".into(),
                        request: String::new(),
                        limit: None,
                    },
                    provider: RuleProvider::Broken(format!(
                        "policy {namespace}/{policy} is not in the input"
                    )),
                }),
            }
        }
        for binding in desired {
            out.push(PlanBinding {
                name: binding.name,
                offer: offer_key.clone(),
                targets: binding.targets,
                rules: rules.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::{decode, parse_documents};

    const INPUT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, resources: {requests: {cpu: 500m, memory: 1Gi}}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres}]}
---
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: vrouter, namespace: nf}
spec:
  runStrategy: Always
  template:
    metadata: {labels: {app: vrouter}}
    spec:
      nodeSelector: {tier: edge}
      domain:
        cpu: {cores: 2, sockets: 2}
        memory: {guest: 4Gi}
        devices: {}
---
apiVersion: v1
kind: Pod
metadata: {name: running}
spec: {nodeName: n1, containers: [{name: a, image: a}]}
"#;

    fn snapshot() -> Snapshot {
        let docs = parse_documents("w.yaml", INPUT).unwrap_or_default();
        Snapshot::from_objects(docs.iter().filter_map(|d| decode(d).ok()))
    }

    #[test]
    fn replicas_are_named_from_zero_and_carry_template_labels() {
        let s = snapshot();
        let w = workloads(&s);
        let names: Vec<String> = w
            .iter()
            .flat_map(|w| w.pods.iter().map(|p| p.key.to_string()))
            .collect();
        assert_eq!(
            names,
            [
                "shop/web-0",
                "shop/web-1",
                "shop/web-2",
                "default/db-0",
                "nf/vrouter"
            ]
        );
        assert_eq!(w[0].pods[2].requests.cpu_millis, 500);
        assert_eq!(
            w[0].pods[2].labels.get("app").map(String::as_str),
            Some("web")
        );
        let vm = &w[2].pods[0];
        assert_eq!(vm.requests.cpu_millis, 4000);
        // 4Gi of guest memory and the launcher's 200Mi.
        assert_eq!(vm.requests.memory_bytes, (4 << 30) + (200 << 20));
        assert_eq!(
            vm.node_selector.get("tier").map(String::as_str),
            Some("edge")
        );
        assert_eq!(running(&s).len(), 1);
        let inv = inventory(&s, &w);
        assert_eq!(inv.pods.len(), 6);
    }
}
