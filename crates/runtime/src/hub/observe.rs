//! What the hub reads each round: the hub cluster's objects, each member's health and
//! capacity through its kubeconfig Secret, and (direct mode) the objects it applied in
//! each member.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use edgeplane_api::multicluster::{MecApplication, MemberCluster, MemberClusterStatus};
use edgeplane_api::{ConstraintPolicy, NetworkTopology, names};
use edgeplane_core::hub::direct::{self, APPLICATION_LABEL};
use edgeplane_core::hub::members::{Probe, kubeconfig_of, member_status};
use edgeplane_core::manifests::is_cluster_scoped;
use edgeplane_core::snapshot::DEFAULT_TOPOLOGY;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, ResourceExt};
use serde_json::Value as Json;

use super::{Connector, HubConfig, Mode};
use crate::context::Context;
use crate::foreign::{PropagationPolicy, ResourceBinding};

/// Clients of the members, kept while their kubeconfig Secret is unchanged.
#[derive(Default)]
pub struct MemberClients {
    /// Member -> (the Secret's `namespace/name@resourceVersion`, the client).
    clients: BTreeMap<String, (String, Client)>,
    /// The last input error reported per object, so each is reported once.
    pub reported: BTreeMap<String, String>,
}

impl MemberClients {
    pub fn get(&self, member: &str) -> Option<&Client> {
        self.clients.get(member).map(|(_, c)| c)
    }
}

/// Everything one round decides from.
pub struct Observed {
    pub topology: Option<NetworkTopology>,
    /// The members, with the status this round computed for those probed.
    pub members: Vec<MemberCluster>,
    /// Members whose status this round computed: (name, stored, computed).
    pub statuses: Vec<(String, MemberClusterStatus, MemberClusterStatus)>,
    pub applications: Vec<MecApplication>,
    pub policies: Vec<ConstraintPolicy>,
    /// Direct mode: the hub's objects in each member that answered.
    pub in_members: BTreeMap<String, Vec<direct::Observed>>,
    /// Karmada modes: PropagationPolicies (all of them) and ResourceBindings, as JSON.
    pub propagation_policies: Vec<Json>,
    pub bindings: Vec<Json>,
}

pub async fn observe(
    ctx: &Context,
    config: &HubConfig,
    clients: &mut MemberClients,
) -> Result<Observed, kube::Error> {
    let client = ctx.client.clone();
    let lp = ListParams::default();
    let mut members = Api::<MemberCluster>::all(client.clone())
        .list(&lp)
        .await?
        .items;
    let applications = match config.mode {
        Mode::Karmada => Vec::new(),
        _ => {
            Api::<MecApplication>::all(client.clone())
                .list(&lp)
                .await?
                .items
        }
    };
    let policies = Api::<ConstraintPolicy>::all(client.clone())
        .list(&lp)
        .await?
        .items;
    let topologies = Api::<NetworkTopology>::all(client.clone())
        .list(&lp)
        .await?
        .items;
    // The one named `default`, else the only one.
    let topology = topologies
        .iter()
        .find(|t| t.metadata.name.as_deref() == Some(DEFAULT_TOPOLOGY))
        .cloned()
        .or_else(|| (topologies.len() == 1).then(|| topologies[0].clone()));
    let (propagation_policies, bindings) = match config.mode {
        Mode::Karmada => (
            Api::<PropagationPolicy>::all(client.clone())
                .list(&lp)
                .await?
                .items
                .iter()
                .map(PropagationPolicy::to_json)
                .collect(),
            Api::<ResourceBinding>::all(client.clone())
                .list(&lp)
                .await?
                .items
                .iter()
                .map(ResourceBinding::to_json)
                .collect(),
        ),
        Mode::KarmadaPolicy => (
            Api::<PropagationPolicy>::all(client.clone())
                .list(&ListParams::default().labels(APPLICATION_LABEL))
                .await?
                .items
                .iter()
                .map(PropagationPolicy::to_json)
                .collect(),
            Vec::new(),
        ),
        Mode::Direct => (Vec::new(), Vec::new()),
    };
    // Karmada's Clusters (served by its aggregated API server), when it serves them:
    // what the Karmada modes know of a member without a kubeconfig Secret.
    let karmada_clusters = match config.mode {
        Mode::Direct => None,
        _ => karmada_clusters(client.clone(), config.probe_timeout).await,
    };
    let karmada_clusters = &karmada_clusters;
    // Probe the members at once: a slow one does not delay the others.
    let probes = futures::future::join_all(members.iter().map(|m| {
        let client = client.clone();
        let timeout = config.probe_timeout;
        let mode = config.mode;
        let connect = config.connect.clone();
        let cached = m
            .metadata
            .name
            .as_ref()
            .and_then(|n| clients.clients.get(n).cloned());
        async move {
            if m.spec.kubeconfig_secret_ref.is_none()
                && let Some(clusters) = karmada_clusters
            {
                let name = m
                    .spec
                    .karmada_cluster
                    .clone()
                    .unwrap_or_else(|| m.name_any());
                let cluster = clusters.get(&name).cloned();
                return Some((Probe::KarmadaCluster(cluster, name), None));
            }
            probe(client, m, mode, timeout, cached, &connect).await
        }
    }))
    .await;
    let now = ctx.clock.now();
    let mut statuses = Vec::new();
    let mut reachable = BTreeMap::new();
    for (member, outcome) in members.iter_mut().zip(probes) {
        let name = member.name_any();
        let Some((probe, client)) = outcome else {
            continue;
        };
        match client {
            Some(c) => {
                reachable.insert(name.clone(), c.1.clone());
                clients.clients.insert(name.clone(), c);
            }
            None => {
                clients.clients.remove(&name);
            }
        }
        let stored = member.status.clone().unwrap_or_default();
        let computed = member_status(&stored, &probe, now, member.metadata.generation);
        member.status = Some(computed.clone());
        statuses.push((name, stored, computed));
    }
    // Members that no longer exist lose their clients.
    let names: BTreeSet<String> = members.iter().map(|m| m.name_any()).collect();
    clients.clients.retain(|n, _| names.contains(n));
    let mut in_members = BTreeMap::new();
    if config.mode == Mode::Direct {
        let kinds = kinds(&applications);
        let edgeplane = edgeplane_members(&members);
        for (name, client) in &reachable {
            // A member that runs edgeplane also holds the hub's policy copies and offers
            // (`core::hub::member_offers`); the others may not serve those kinds at all.
            let mut kinds = kinds.clone();
            if edgeplane.contains(name) {
                kinds.extend(member_offer_kinds());
            }
            // And the kinds the hub left there before: of applications deleted or changed
            // since, or offers of a member no longer labelled.
            if let Some(status) = members
                .iter()
                .find(|m| m.name_any() == *name)
                .and_then(|m| m.status.as_ref())
            {
                kinds.extend(
                    status
                        .applied_kinds
                        .iter()
                        .map(|k| (k.api_version.clone(), k.kind.clone())),
                );
            }
            match hub_objects(client.clone(), &kinds, config.probe_timeout).await {
                Ok(objects) => {
                    in_members.insert(name.clone(), objects);
                }
                Err(error) => {
                    tracing::warn!(member = %name, %error, "hub: listing its objects failed")
                }
            }
        }
    }
    Ok(Observed {
        topology,
        members,
        statuses,
        applications,
        policies,
        in_members,
        propagation_policies,
        bindings,
    })
}

/// Karmada's `cluster.karmada.io/v1alpha1` Clusters by name, or `None` when the hub's API
/// server does not serve them (not a Karmada control plane, or its aggregated API down).
async fn karmada_clusters(hub: Client, timeout: Duration) -> Option<BTreeMap<String, Json>> {
    let (resource, _) = resource_of("cluster.karmada.io/v1alpha1", "Cluster");
    let api: Api<DynamicObject> = Api::all_with(hub, &resource);
    let listed = tokio::time::timeout(timeout, api.list(&ListParams::default()))
        .await
        .ok()?
        .ok()?;
    Some(
        listed
            .items
            .into_iter()
            .filter_map(|c| {
                let name = c.metadata.name.clone()?;
                let mut json = serde_json::to_value(&c).ok()?;
                json["apiVersion"] = Json::from("cluster.karmada.io/v1alpha1");
                json["kind"] = Json::from("Cluster");
                Some((name, json))
            })
            .collect(),
    )
}

/// A member's probe, and the client that reached it (with the key of its Secret).
/// `None`: not probed (no `spec.kubeconfigSecretRef` in a Karmada mode, where Karmada's
/// own view of the member is what counts).
async fn probe(
    hub: Client,
    member: &MemberCluster,
    mode: Mode,
    timeout: Duration,
    cached: Option<(String, Client)>,
    connect: &Connector,
) -> Option<(Probe, Option<(String, Client)>)> {
    let name = member.name_any();
    let Some(reference) = &member.spec.kubeconfig_secret_ref else {
        return match mode {
            Mode::Direct => Some((
                Probe::Kubeconfig(
                    "spec.kubeconfigSecretRef is not set: direct mode applies to a member by its kubeconfig".into(),
                ),
                None,
            )),
            _ => None,
        };
    };
    let secret = tokio::time::timeout(
        timeout,
        Api::<Secret>::namespaced(hub, &reference.namespace).get_opt(&reference.name),
    )
    .await;
    let secret = match secret {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Some((
                Probe::Kubeconfig(format!(
                    "reading Secret {}/{}: {e}",
                    reference.namespace, reference.name
                )),
                None,
            ));
        }
        Err(_) => {
            return Some((
                Probe::Kubeconfig(format!(
                    "reading Secret {}/{}: no answer within {timeout:?}",
                    reference.namespace, reference.name
                )),
                None,
            ));
        }
    };
    let key = format!(
        "{}/{}@{}",
        reference.namespace,
        reference.name,
        secret
            .as_ref()
            .and_then(|s| s.metadata.resource_version.clone())
            .unwrap_or_default()
    );
    let client = match cached.filter(|(k, _)| *k == key) {
        Some((_, c)) => c,
        None => {
            let text = match kubeconfig_of(&name, reference, secret.as_ref()) {
                Ok(t) => t,
                Err(message) => return Some((Probe::Kubeconfig(message), None)),
            };
            let made = match connect {
                Connector::Kubeconfig => client_from(&text, timeout).await,
                Connector::Custom(make) => make(&text),
            };
            match made {
                Ok(c) => c,
                Err(message) => {
                    return Some((
                        Probe::Kubeconfig(format!(
                            "Secret {}/{} (spec.kubeconfigSecretRef of MemberCluster {name}): data[\"kubeconfig\"]: {message}",
                            reference.namespace, reference.name
                        )),
                        None,
                    ));
                }
            }
        }
    };
    let lp = ListParams::default();
    let listed = tokio::time::timeout(timeout, async {
        let nodes = Api::<Node>::all(client.clone()).list(&lp).await?.items;
        let pods = Api::<Pod>::all(client.clone()).list(&lp).await?.items;
        Ok::<_, kube::Error>((nodes, pods))
    })
    .await;
    match listed {
        Ok(Ok((nodes, pods))) => Some((Probe::Reached { nodes, pods }, Some((key, client)))),
        Ok(Err(e)) => Some((
            Probe::Unreachable(format!("listing nodes and pods: {e}")),
            None,
        )),
        Err(_) => Some((
            Probe::Unreachable(format!("no answer within {timeout:?}")),
            None,
        )),
    }
}

/// A client from a kubeconfig's text (its current context).
async fn client_from(text: &str, timeout: Duration) -> Result<Client, String> {
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| e.to_string())?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| e.to_string())?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    Client::try_from(config).map_err(|e| e.to_string())
}

/// The kinds the applications' resources have: where the hub looks for its objects in
/// the members, besides the kinds it applied there before (the member's
/// `status.appliedKinds`).
pub fn kinds(applications: &[MecApplication]) -> BTreeSet<(String, String)> {
    applications
        .iter()
        .flat_map(|a| a.spec.resources.iter())
        .filter_map(|r| {
            Some((
                r.get("apiVersion")?.as_str()?.to_string(),
                r.get("kind")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The members labelled as running edgeplane
/// (`multicluster.edgeplane.io/edgeplane: "true"`).
pub fn edgeplane_members(members: &[MemberCluster]) -> BTreeSet<String> {
    members
        .iter()
        .filter(|m| m.runs_edgeplane())
        .map(|m| m.name_any())
        .collect()
}

/// The kinds of what `core::hub::member_offers` writes into a member running edgeplane.
fn member_offer_kinds() -> [(String, String); 2] {
    ["ConstraintPolicy", "ConstraintPolicyOffer"]
        .map(|kind| (names::CONSTRAINT_API_VERSION.to_string(), kind.to_string()))
}

/// How an object of `api_version`/`kind` is addressed, and whether it is namespaced.
pub fn resource_of(api_version: &str, kind: &str) -> (ApiResource, bool) {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    (ApiResource::from_gvk(&gvk), !is_cluster_scoped(kind))
}

/// The objects with the hub's label in a member, of the given kinds.
async fn hub_objects(
    client: Client,
    kinds: &BTreeSet<(String, String)>,
    timeout: Duration,
) -> Result<Vec<direct::Observed>, String> {
    let mut out = Vec::new();
    let lp = ListParams::default().labels(APPLICATION_LABEL);
    for (api_version, kind) in kinds {
        let (resource, _) = resource_of(api_version, kind);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let listed = tokio::time::timeout(timeout, api.list(&lp))
            .await
            .map_err(|_| format!("listing {kind}: no answer within {timeout:?}"))?
            .map_err(|e| format!("listing {kind}: {e}"))?;
        for item in listed.items {
            let mut json = serde_json::to_value(&item).unwrap_or_default();
            // List items need not carry their type.
            json["apiVersion"] = Json::from(api_version.as_str());
            json["kind"] = Json::from(kind.as_str());
            if let Some(o) = direct::Observed::from_json(&json) {
                out.push(o);
            }
        }
    }
    Ok(out)
}
