//! The NF controller: renders each NetworkFunction's replicas (gated Pods, or
//! VirtualMachines created halted and started once their networks exist) and writes the
//! NF's status from the pods, VMIs and Multus' `network-status`.
//!
//! Triggers: an NF's spec changes; a chain naming it changes; a pod, VM or VMI of it
//! changes; a NetworkAttachmentDefinition appears or goes (an interface's network, a
//! chain's link); everything when this replica becomes the leader.
//!
//! A pod is created once and never re-applied: the planner writes its node affinity and
//! lifts its gate, and a pod's spec is immutable anyway. A VM is applied whenever its
//! rendering differs (that is how it is started). An invalid NF creates nothing; the
//! status names the fields.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{NetworkFunction, NfRuntime, ServiceChain};
use edgeplane_core::chain;
use edgeplane_core::nf::{
    self, NF_LABEL, ObservedReplica, REPLICA_LABEL, Replica, expected_interfaces, may_start,
    nf_status, observe_pod, observe_vm, replica_name,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::{Shared, all_refs, drive, instrumented, object_ref, reconcile_everything};
use crate::cache::{Caches, Change, FunctionCaches};
use crate::context::Context;
use crate::error::Error;
use crate::events::{EventSpec, EventType, reasons};
use crate::foreign::VirtualMachine;
use crate::view::ViewCache;

/// What the NF and chain controllers share besides [`Caches`].
#[derive(Clone)]
pub struct Functions {
    pub caches: FunctionCaches,
    pub views: ViewCache,
}

type NfShared = Shared<NetworkFunction, Functions>;

/// The NF named by an object's [`NF_LABEL`], in its namespace.
fn owner_nf<K: Resource>(object: &K) -> Vec<ObjectRef<NetworkFunction>> {
    let meta = object.meta();
    meta.labels
        .as_ref()
        .and_then(|l| l.get(NF_LABEL))
        .map(|nf| {
            vec![object_ref(
                meta.namespace.as_deref().unwrap_or("default"),
                nf,
            )]
        })
        .unwrap_or_default()
}

/// The NFs a chain names.
fn chain_nfs(chain: &ServiceChain) -> Vec<ObjectRef<NetworkFunction>> {
    let namespace = chain.namespace().unwrap_or_else(|| "default".into());
    chain
        .spec
        .hops
        .iter()
        .map(|h| object_ref(&namespace, &h.network_function))
        .collect()
}

pub async fn run(ctx: Context, caches: Caches, functions: Functions) {
    let f = functions.caches.clone();
    let c = f.clone();
    let nfs = f.nfs.changes().map(move |change| match change {
        Change::Applied { old, new } => {
            if old.is_none_or(|o| o.metadata.generation != new.metadata.generation) {
                // The chains naming it may turn valid or invalid (replica counts): the
                // other hops' ports follow.
                let mut refs = vec![ObjectRef::from_obj(&*new)];
                let namespace = new.namespace().unwrap_or_default();
                for chain in c.chains.list_in(&namespace) {
                    if chain
                        .spec
                        .hops
                        .iter()
                        .any(|h| h.network_function == new.name_any())
                    {
                        refs.extend(chain_nfs(&chain));
                    }
                }
                refs
            } else {
                vec![]
            }
        }
        Change::Deleted(_) => vec![],
        Change::Resynced => all_refs(&c.nfs),
    });
    let c = f.clone();
    let chains = f.chains.changes().map(move |change| match change {
        Change::Applied { old, new } => {
            let mut refs = chain_nfs(&new);
            if let Some(old) = old {
                refs.extend(chain_nfs(&old));
            }
            refs
        }
        Change::Deleted(old) => chain_nfs(&old),
        Change::Resynced => all_refs(&c.nfs),
    });
    let c = f.clone();
    let pods = caches.pods.changes().map(move |change| match change {
        Change::Resynced => all_refs(&c.nfs),
        other => other.object().map(|p| owner_nf(&**p)).unwrap_or_default(),
    });
    let c = f.clone();
    let vms = f.vms.changes().map(move |change| match change {
        Change::Resynced => all_refs(&c.nfs),
        other => other.object().map(|p| owner_nf(&**p)).unwrap_or_default(),
    });
    let c = f.clone();
    let vmis = f.vmis.changes().map(move |change| match change {
        Change::Resynced => all_refs(&c.nfs),
        other => other.object().map(|p| owner_nf(&**p)).unwrap_or_default(),
    });
    let c = f.clone();
    let nads = f.nads.changes().map(move |change| match change {
        Change::Applied { old: Some(_), .. } => vec![],
        _ => all_refs(&c.nfs),
    });
    let c = f.clone();
    let everything = reconcile_everything(&ctx, &caches).map(move |()| all_refs(&c.nfs));
    let triggers = futures::stream::select_all([
        nfs.boxed(),
        chains.boxed(),
        pods.boxed(),
        vms.boxed(),
        vmis.boxed(),
        nads.boxed(),
        everything.boxed(),
    ])
    .flat_map(futures::stream::iter);
    let shared = Arc::new(Shared {
        ctx,
        caches,
        backoff: Default::default(),
        name: "network-function",
        extra: functions.clone(),
    });
    drive(
        shared,
        &functions.caches.nfs,
        triggers,
        4,
        Duration::from_millis(50),
        |nf, shared| {
            let s = shared.clone();
            instrumented(nf.clone(), shared, async move { reconcile(nf, s).await })
        },
    )
    .await;
}

/// Whether the NetworkAttachmentDefinition `namespace/name` exists.
fn nad_exists(functions: &FunctionCaches, qualified: &str) -> bool {
    match qualified.split_once('/') {
        Some((ns, name)) => functions.nads.get(Some(ns), name).is_some(),
        None => false,
    }
}

/// Whether a chain passes its checks (an invalid chain wires nothing).
pub fn chain_is_valid(functions: &Functions, chain: &ServiceChain) -> bool {
    let namespace = chain.namespace().unwrap_or_else(|| "default".into());
    let view = functions.views.view().ok();
    let lookup = |n: &str| {
        functions
            .caches
            .nfs
            .get(Some(&namespace), n)
            .map(|nf| (*nf).clone())
    };
    let site_exists = |s: &str| {
        view.as_ref()
            .is_some_and(|v| v.graph().site_id(s).is_some())
    };
    chain::check(chain, &lookup, &site_exists).is_ok()
}

async fn reconcile(nf: Arc<NetworkFunction>, shared: Arc<NfShared>) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    if !ctx.leadership.is_leader() || nf.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let functions = &shared.extra;
    let fc = &functions.caches;
    let name = nf.name_any();
    let namespace = nf
        .namespace()
        .ok_or_else(|| Error::Invalid(format!("network function {name} has no namespace")))?;
    let chains = fc.chains.list_in(&namespace);
    let chain_refs: Vec<&ServiceChain> = chains.iter().map(|c| &**c).collect();
    let ports = chain::ports_of(&nf, &chain_refs, &|c| chain_is_valid(functions, c));
    let network_exists = |q: &str| nad_exists(fc, q);
    let vm_of = |i: usize| fc.vms.get(Some(&namespace), &replica_name(&name, i));
    let ports_of = |i: usize| ports.get(i).cloned().unwrap_or_default();
    // Created halted, started once its networks exist; a started VM stays started (a
    // chain naming it later adds a network its chain controller has not created yet, and
    // that is no reason to stop it).
    let running = |i: usize| {
        vm_of(i).is_some_and(|vm| {
            vm.rest
                .get("spec")
                .and_then(|spec| spec.get("runStrategy"))
                .and_then(serde_json::Value::as_str)
                == Some("Always")
                || may_start(&expected_interfaces(&nf, &ports_of(i)), &network_exists)
        })
    };
    let colocation = chain::colocation_of(&nf, &chain_refs, &|c| chain_is_valid(functions, c));
    let rendered = nf::render(&nf, &ports, &network_exists, &running).map(|mut replicas| {
        for (replica, affinity) in replicas.iter_mut().zip(&colocation) {
            if let Some(affinity) = affinity {
                nf::add_pod_affinity(replica, affinity);
            }
        }
        replicas
    });
    let errors = match &rendered {
        Ok(replicas) => {
            for replica in replicas {
                apply_replica(ctx, &shared.caches, fc, &namespace, replica).await?;
            }
            Vec::new()
        }
        Err(errors) => errors.clone(),
    };
    remove_extra_replicas(ctx, &shared.caches, fc, &nf).await?;

    let count = usize::try_from(nf.spec.replicas).unwrap_or(0);
    let observed: Vec<Option<ObservedReplica>> = (0..count)
        .map(|i| {
            let expected = expected_interfaces(&nf, &ports_of(i));
            let replica = replica_name(&name, i);
            match nf.spec.runtime {
                NfRuntime::Container => {
                    // The live pod, else the newest one (terminating, failed) that tells why.
                    let pods = pods_of(&shared.caches, &namespace, &replica);
                    pods.iter()
                        .find(|p| is_live(p))
                        .or_else(|| pods.last())
                        .map(|p| observe_pod(p, &expected))
                }
                NfRuntime::VirtualMachine => fc.vms.get(Some(&namespace), &replica).map(|vm| {
                    let vmi = fc.vmis.get(Some(&namespace), &replica).map(|v| v.to_json());
                    observe_vm(&vm.to_json(), vmi.as_ref(), &expected)
                }),
            }
        })
        .collect();
    let status = nf_status(&nf, nf.status.as_ref(), &observed, &errors, ctx.clock.now());
    if nf.status.as_ref() != Some(&status) {
        ctx.apply_status(Some(&namespace), &name, &status).await?;
    }
    // Once per new complaint, as for policies: the status keeps saying it.
    if !errors.is_empty()
        && nf.status.as_ref().and_then(|s| s.reason.as_ref()) != status.reason.as_ref()
    {
        ctx.events()
            .publish_or_log(
                &nf.object_ref(&()),
                EventSpec {
                    type_: EventType::Warning,
                    reason: reasons::NETWORK_FUNCTION_INVALID,
                    action: "Render",
                    note: format!("nothing rendered: {}", nf::describe(&errors)),
                },
            )
            .await;
    }
    Ok(Action::await_change())
}

/// The pods of replica `replica` (`<nf>-<i>`) in creation order: `<nf>-<i>` and its
/// replacements `<nf>-<i>-r<k>`.
fn pods_of(caches: &Caches, namespace: &str, replica: &str) -> Vec<Arc<Pod>> {
    let mut pods: Vec<Arc<Pod>> = caches
        .pods
        .list_in(namespace)
        .into_iter()
        .filter(|p| nf::is_pod_of(&p.name_any(), replica))
        .collect();
    pods.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    pods
}

/// Not deleting and not finished.
fn is_live(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && !matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Failed" | "Succeeded")
        )
}

/// Creates a pod for a replica that has none alive; applies a VM whose rendering differs.
async fn apply_replica(
    ctx: &Context,
    caches: &Caches,
    fc: &FunctionCaches,
    namespace: &str,
    replica: &Replica,
) -> Result<(), Error> {
    match replica {
        Replica::Pod(pod) => {
            // A replica whose pod is gone, has failed, or is stuck terminating (its node
            // failed) gets a new pod under the first free name.
            let replica_pods = pods_of(caches, namespace, replica.name());
            if !replica_pods.iter().any(|p| is_live(p)) {
                let taken = |n: &str| replica_pods.iter().any(|p| p.name_any() == n);
                let mut pod = (**pod).clone();
                pod.metadata.name = Some(nf::pod_name_for(replica.name(), &taken));
                ctx.apply::<Pod>(&pod).await?;
            }
        }
        Replica::VirtualMachine(json) => {
            let vm = VirtualMachine::from_json(json.clone()).map_err(|e| {
                Error::Invalid(format!("rendered VirtualMachine {}: {e}", replica.name()))
            })?;
            let current = fc.vms.get(Some(namespace), replica.name());
            let same = current.is_some_and(|c| {
                c.rest.get("spec") == vm.rest.get("spec") && c.metadata.labels == vm.metadata.labels
            });
            if !same {
                ctx.apply(&vm).await?;
            }
        }
    }
    Ok(())
}

/// Deletes the pods and VMs of replicas beyond `spec.replicas` (the NF was scaled down),
/// and those of the other runtime (the NF changed runtime).
async fn remove_extra_replicas(
    ctx: &Context,
    caches: &Caches,
    fc: &FunctionCaches,
    nf: &NetworkFunction,
) -> Result<(), Error> {
    let name = nf.name_any();
    let namespace = nf.namespace().unwrap_or_else(|| "default".into());
    let count = usize::try_from(nf.spec.replicas).unwrap_or(0);
    let keep: BTreeSet<String> = (0..count).map(|i| replica_name(&name, i)).collect();
    let ours = |labels: &std::collections::BTreeMap<String, String>| {
        labels.get(NF_LABEL) == Some(&name) && labels.contains_key(REPLICA_LABEL)
    };
    let kept_index = |labels: &std::collections::BTreeMap<String, String>| {
        labels
            .get(REPLICA_LABEL)
            .and_then(|i| i.parse::<usize>().ok())
            .is_some_and(|i| i < count)
    };
    for pod in caches.pods.list_in(&namespace) {
        let stale = nf.spec.runtime != NfRuntime::Container || !kept_index(pod.labels());
        if ours(pod.labels()) && pod.metadata.deletion_timestamp.is_none() && stale {
            // A VM's launcher pod carries the NF's labels too: KubeVirt deletes it.
            if pod.labels().get("kubevirt.io").is_none() {
                ctx.delete::<Pod>(Some(&namespace), &pod.name_any()).await?;
            }
        }
    }
    for vm in fc.vms.list_in(&namespace) {
        let stale = nf.spec.runtime != NfRuntime::VirtualMachine || !keep.contains(&vm.name_any());
        if ours(vm.labels()) && vm.metadata.deletion_timestamp.is_none() && stale {
            ctx.delete::<VirtualMachine>(Some(&namespace), &vm.name_any())
                .await?;
        }
    }
    Ok(())
}
