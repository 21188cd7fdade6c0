//! What a run of a hub and its members records over time, for the report: each member's
//! readiness as the hub sees it, each application's placement (its status), and the
//! hub's workloads in each member with their replicas and ready replicas (which shows a
//! move's make-before-break: the new copies ready before the old ones go).
//!
//! The recorder looks every second of virtual time, half a second off the whole seconds
//! the hub's rounds and the kubelets' starts fall on, so what it reads at an instant is
//! never half-written; it keeps only changes.

use std::collections::BTreeMap;
use std::time::Duration;

use edgeplane_api::multicluster::{MecApplication, MemberCluster};
use edgeplane_core::hub::direct::APPLICATION_LABEL;
use edgeplane_core::hub::karmada::POLICY_NAME_KEY;
use edgeplane_core::hub::members::CONDITION_READY;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client, ResourceExt};

use edgeplane_cluster::api::ApiServer;

use super::karmada::BINDING_LABEL;
use crate::lite;
use crate::observer::BINDINGS;
pub use crate::report::multicluster::{
    ApplicationReport, ClusterReport, MemberBinding, Move, MultiClusterReport, Placement,
    PlacementAt, Readiness, WorkloadAt, WorkloadReport,
};

/// How often the recorder looks, and how far off the whole seconds.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);
pub const SAMPLE_OFFSET: Duration = Duration::from_millis(500);

/// The bindings in a member (`cluster`) as its API server holds them, by namespace and
/// name.
pub fn member_bindings(cluster: &str, api: &ApiServer) -> Vec<MemberBinding> {
    let st = api.lock();
    st.store
        .range(BINDINGS, None, None)
        .map(|stored| {
            let b: lite::Binding = lite::decode(stored.json());
            MemberBinding {
                cluster: cluster.to_string(),
                namespace: b.metadata.namespace.clone(),
                name: b.metadata.name.clone(),
                offer: b.offer(),
                compliance: b.compliance().to_string(),
                reason: b.status.first_reason.clone(),
            }
        })
        .collect()
}

/// The recorder's state: the report so far.
pub struct Recorder {
    pub hub: Client,
    /// Member name -> a client that always reaches it (the recorder is not the hub).
    pub members: Vec<(String, Client)>,
    /// Karmada mode: placements are the ResourceBindings' `spec.clusters`.
    pub karmada: bool,
    pub report: MultiClusterReport,
}

fn ready_of(member: &MemberCluster) -> Option<(bool, String)> {
    let c = member
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_READY)?;
    Some((c.status == "True", c.reason.clone()))
}

impl Recorder {
    /// Reads the hub and the members once, at `at` since the start, and keeps what
    /// changed.
    pub async fn sample(&mut self, at: Duration) {
        let at = (at.as_secs_f64() * 1000.0).round() / 1000.0;
        let lp = ListParams::default();
        if let Ok(list) = Api::<MemberCluster>::all(self.hub.clone()).list(&lp).await {
            for m in list.items {
                let Some((ready, reason)) = ready_of(&m) else {
                    continue;
                };
                let Some(c) = self
                    .report
                    .clusters
                    .iter_mut()
                    .find(|c| c.name == m.name_any())
                else {
                    continue;
                };
                if c.readiness.last().map(|r| r.ready) != Some(ready) {
                    c.readiness.push(Readiness {
                        at_seconds: at,
                        ready,
                        reason,
                    });
                }
            }
        }
        if let Ok(list) = Api::<MecApplication>::all(self.hub.clone()).list(&lp).await {
            for app in list.items {
                let namespace = app.namespace().unwrap_or_default();
                let name = app.name_any();
                let placement: Placement = app
                    .status
                    .iter()
                    .flat_map(|s| s.placement.iter())
                    .map(|p| (p.cluster.clone(), p.components.clone()))
                    .collect();
                self.placement(&namespace, &name, placement, at);
            }
        }
        if self.karmada {
            self.bindings(at).await;
        }
        let lp = ListParams::default();
        let mut seen: Vec<(String, String, String)> = Vec::new();
        let members = self.members.clone();
        for (cluster, client) in &members {
            let Ok(list) = Api::<Deployment>::all(client.clone()).list(&lp).await else {
                continue;
            };
            for d in list.items {
                let key = (
                    cluster.clone(),
                    d.namespace().unwrap_or_default(),
                    d.name_any(),
                );
                // The hub's label (direct mode), or the binding's (simulated Karmada).
                let Some(application) = d
                    .labels()
                    .get(APPLICATION_LABEL)
                    .or_else(|| d.labels().get(BINDING_LABEL))
                    .cloned()
                else {
                    continue;
                };
                let now = WorkloadAt {
                    at_seconds: at,
                    replicas: Some(d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
                    ready: d
                        .status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0),
                };
                self.workload(&key, application, now);
                seen.push(key);
            }
        }
        // Those no longer there are gone.
        for w in &mut self.report.workloads {
            let key = (w.cluster.clone(), w.namespace.clone(), w.name.clone());
            if !seen.contains(&key) && w.history.last().is_some_and(|h| h.replicas.is_some()) {
                w.history.push(WorkloadAt {
                    at_seconds: at,
                    replicas: None,
                    ready: 0,
                });
            }
        }
    }

    /// Karmada mode: an application is a PropagationPolicy; its placement is what its
    /// bindings' `spec.clusters` say (by Karmada cluster name), component = workload.
    async fn bindings(&mut self, at: f64) {
        let r = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "work.karmada.io",
            "v1alpha2",
            "ResourceBinding",
        ));
        let api: Api<DynamicObject> = Api::all_with(self.hub.clone(), &r);
        let Ok(list) = api.list(&ListParams::default()).await else {
            return;
        };
        let mut by_policy: BTreeMap<(String, String), Placement> = BTreeMap::new();
        for b in list.items {
            let Some(policy) = b.labels().get(POLICY_NAME_KEY).cloned() else {
                continue;
            };
            let namespace = b.namespace().unwrap_or_default();
            let placement = by_policy.entry((namespace, policy)).or_default();
            let workload = b
                .data
                .pointer("/spec/resource/name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string();
            for c in b
                .data
                .pointer("/spec/clusters")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
            {
                let cluster = c
                    .get("name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let replicas = c
                    .get("replicas")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(0) as i32;
                placement
                    .entry(cluster)
                    .or_default()
                    .insert(workload.clone(), replicas);
            }
        }
        for ((namespace, name), placement) in by_policy {
            self.placement(&namespace, &name, placement, at);
        }
    }

    fn placement(&mut self, namespace: &str, name: &str, placement: Placement, at: f64) {
        let apps = &mut self.report.applications;
        let app = match apps
            .iter()
            .position(|a| a.namespace == namespace && a.name == name)
        {
            Some(i) => &mut apps[i],
            None => {
                apps.push(ApplicationReport {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    ..Default::default()
                });
                let last = apps.len() - 1;
                &mut apps[last]
            }
        };
        let previous = app.placements.last().map(|p| p.placement.clone());
        if previous.as_ref() == Some(&placement) || (previous.is_none() && placement.is_empty()) {
            return;
        }
        if let Some(from) = previous.filter(|p| !p.is_empty())
            && !placement.is_empty()
        {
            app.moves.push(Move {
                at_seconds: at,
                from,
                to: placement.clone(),
            });
        }
        app.placements.push(PlacementAt {
            at_seconds: at,
            placement,
        });
    }

    fn workload(&mut self, key: &(String, String, String), application: String, now: WorkloadAt) {
        let ws = &mut self.report.workloads;
        let w = match ws
            .iter()
            .position(|w| (&w.cluster, &w.namespace, &w.name) == (&key.0, &key.1, &key.2))
        {
            Some(i) => &mut ws[i],
            None => {
                ws.push(WorkloadReport {
                    cluster: key.0.clone(),
                    namespace: key.1.clone(),
                    name: key.2.clone(),
                    application,
                    history: Vec::new(),
                });
                let last = ws.len() - 1;
                &mut ws[last]
            }
        };
        let same = w
            .history
            .last()
            .is_some_and(|h| h.replicas == now.replicas && h.ready == now.ready);
        if !same {
            w.history.push(now);
        }
    }
}
