//! Scenarios with `spec.clusters`: a hub and its member clusters in one process, on one
//! virtual clock (docs/simulator.md, "Many clusters").
//!
//! - The hub is an embedded cluster without nodes, scheduler or workload controllers (a
//!   control plane, as Karmada's is) holding the scenario's objects: the NetworkTopology,
//!   the ConstraintPolicies, the MecApplications, one MemberCluster per member and a
//!   kubeconfig Secret for each.
//! - Each member is an embedded cluster with its nodes, the default-scheduler stand-in and
//!   the workload controllers, and the run's components (edgeplane's controllers, when the
//!   CLI runs the scenario) on its own client: the member's own scheduling places the
//!   pods of what the hub applies.
//! - The hub is `edgeplane_runtime::hub::run`, the same rounds as `edgeplane hub`
//!   (observe, `core::hub::closed_loop::round`, act through `Context`); only the way a
//!   member's kubeconfig becomes a client differs ([`Connector::Custom`]: the Secret's
//!   text names an in-process member).
//! - In the karmada modes [`karmada`] plays Karmada: ResourceBindings for the
//!   PropagationPolicies, their `spec.clusters` from the hub (`schedulerName: edgeplane`)
//!   or from Karmada's own scheduler ([`karmada_scheduler`]: cluster affinity, static
//!   weights), and the workloads of the bindings' `spec.clusters` in the members.
//! - `failCluster` makes a member refuse every request ([`reach`]); `setLink`, `apply`
//!   and `delete` act on the hub.

pub mod karmada;
pub mod karmada_scheduler;
pub mod map;
pub mod reach;
pub mod record;

use std::collections::BTreeMap;
use std::sync::Arc;

use edgeplane_cluster::EmbeddedCluster;
use edgeplane_core::hub::HubOptions;
use edgeplane_runtime::Context;
use edgeplane_runtime::hub::{Connector, HubConfig, Mode};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use record::MultiClusterReport;

use crate::component::SimContext;
use crate::driver::{self, SETTLE, makes_pods};
use crate::journal::SharedJournal;
use crate::observer::Observer;
use crate::report::{self, Report, ReportInput};
use crate::run::{RunOptions, SimError, cluster_config, crds, loaded_summary};
use crate::scenario::{Action, HubMode, MultiCluster, SECRET_NAMESPACE, Scenario, secret_name};
use crate::timeline::{Entry, EntryType, Source};
use reach::{Reach, Reachable};
use record::{ClusterReport, Recorder, SAMPLE_EVERY, SAMPLE_OFFSET};

/// The kubeconfig in a simulated member's Secret: it names the member, and the hub's
/// connector gives the member's in-process client for it.
pub fn member_kubeconfig(member: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {member}\n  cluster: {{server: \"http://{member}.member.sim.invalid\"}}\ncontexts:\n- name: {member}\n  context: {{cluster: {member}, user: hub}}\ncurrent-context: {member}\nusers:\n- name: hub\n  user: {{}}\n"
    )
}

/// A running member.
struct Member {
    name: String,
    cluster: EmbeddedCluster,
    reach: Reach,
    /// Its client as the hub (and Karmada) reach it: refused while it is down.
    reachable: kube::Client,
}

pub async fn run(
    scenario: &Scenario,
    multicluster: &MultiCluster,
    options: RunOptions,
) -> Result<Report, SimError> {
    let wall = std::time::Instant::now();
    let RunOptions {
        components,
        listener,
        serve,
        start_time,
    } = options;
    if serve.is_some() {
        return Err(SimError::Serve(
            "serving a scenario with spec.clusters is not done (run it without --serve)".into(),
        ));
    }
    let base = cluster_config(scenario, start_time);
    // The hub: a control plane, no nodes, nothing that makes pods.
    let hub = EmbeddedCluster::start(edgeplane_cluster::ClusterConfig {
        scheduler: false,
        controllers: false,
        ..base.clone()
    })
    .await;
    let start = Instant::now();
    hub.apply_objects(crds()?)
        .await
        .map_err(|e| SimError::Crds(e.to_string()))?;
    if multicluster.hub.mode.is_karmada() {
        hub.apply_objects([karmada::cluster_crd()])
            .await
            .map_err(|e| SimError::Crds(format!("the stand-in for Karmada's Cluster: {e}")))?;
    }

    // The members, each with the components on its own client.
    let shutdown = CancellationToken::new();
    let journal = SharedJournal::new(listener);
    let mut members = Vec::new();
    let mut running = Vec::new();
    for spec in &multicluster.clusters {
        let mut config = base.clone();
        for c in &components {
            if let Some(hook) = c.pod_admission() {
                config = config.admission(hook);
            }
        }
        let cluster = EmbeddedCluster::start(config).await;
        cluster
            .apply_objects(crds()?)
            .await
            .map_err(|e| SimError::Crds(format!("cluster {}: {e}", spec.name)))?;
        let (workloads, setup): (Vec<Value>, Vec<Value>) =
            spec.objects.iter().cloned().partition(makes_pods);
        cluster
            .apply_objects(setup)
            .await
            .map_err(|e| SimError::Load(format!("cluster {}: {e}", spec.name)))?;
        for c in &components {
            let clock = cluster.clock();
            let ctx = SimContext {
                client: cluster.client(),
                clock: Arc::new(clock),
                virtual_clock: clock,
                settings: scenario.settings.clone(),
                functions: false,
                shutdown: shutdown.clone(),
            };
            let name = format!("{} in {}", c.name(), spec.name);
            let fut = c.start(ctx);
            let journal = journal.clone();
            running.push(tokio::spawn(async move {
                if let Err(e) = fut.await {
                    journal.push(Entry::new(
                        clock.elapsed(),
                        EntryType::Info,
                        format!("Component {name}"),
                        format!("stopped with an error: {e}"),
                        Source::Driver,
                    ));
                }
            }));
        }
        if !workloads.is_empty() {
            tokio::time::sleep(SETTLE).await;
            cluster
                .apply_objects(workloads)
                .await
                .map_err(|e| SimError::Load(format!("cluster {}: {e}", spec.name)))?;
        }
        let reach = Reach::default();
        let reachable = kube::Client::new(
            Reachable {
                inner: cluster.service(),
                reach: reach.clone(),
            },
            "default",
        );
        members.push(Member {
            name: spec.name.clone(),
            cluster,
            reach,
            reachable,
        });
    }

    // The hub's objects: the kubeconfig Secrets, then the scenario's.
    let mut setup = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SECRET_NAMESPACE}}),
    ];
    // Direct mode reaches the members by their kubeconfigs; karmada mode through Karmada.
    let secrets = if multicluster.hub.mode == HubMode::Direct {
        members.as_slice()
    } else {
        &[]
    };
    for m in secrets {
        let mut data = BTreeMap::new();
        data.insert(
            "kubeconfig".to_string(),
            ByteString(member_kubeconfig(&m.name).into_bytes()),
        );
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(secret_name(&m.name)),
                namespace: Some(SECRET_NAMESPACE.into()),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        };
        let mut value = serde_json::to_value(&secret).map_err(|e| SimError::Load(e.to_string()))?;
        value["apiVersion"] = json!("v1");
        value["kind"] = json!("Secret");
        setup.push(value);
    }
    hub.apply_objects(setup)
        .await
        .map_err(|e| SimError::Load(format!("the hub's Secrets: {e}")))?;
    let observer = Observer::new(hub.api().clone(), journal.clone());
    let stop_observer = CancellationToken::new();
    let observer = tokio::spawn(observer.run(stop_observer.clone()));
    let loaded = hub
        .apply_objects(scenario.objects.clone())
        .await
        .map_err(|e| SimError::Load(e.to_string()))?;
    let clock = hub.clock();
    journal.push(Entry::new(
        clock.elapsed(),
        EntryType::Applied,
        format!("Scenario {}", scenario.name),
        format!(
            "{} to the hub; {} member cluster{}",
            loaded_summary(&loaded),
            members.len(),
            if members.len() == 1 { "" } else { "s" }
        ),
        Source::Driver,
    ));

    // The hub itself, and in karmada mode Karmada.
    let by_kubeconfig: BTreeMap<String, kube::Client> = members
        .iter()
        .map(|m| (member_kubeconfig(&m.name), m.reachable.clone()))
        .collect();
    let config = HubConfig {
        mode: match multicluster.hub.mode {
            HubMode::Direct => Mode::Direct,
            HubMode::Karmada => Mode::Karmada,
            HubMode::KarmadaPolicy => Mode::KarmadaPolicy,
        },
        interval: multicluster.hub.interval,
        grace: multicluster.hub.grace,
        probe_timeout: multicluster.hub.probe_timeout,
        options: HubOptions::default(),
        connect: Connector::Custom(Arc::new(move |text: &str| {
            by_kubeconfig
                .get(text)
                .cloned()
                .ok_or_else(|| "the kubeconfig names no simulated member".to_string())
        })),
    };
    if multicluster.hub.mode.is_karmada() {
        let karmada = karmada::Karmada {
            hub: hub.client(),
            members: members
                .iter()
                .map(|m| {
                    let spec = multicluster.clusters.iter().find(|c| c.name == m.name);
                    let name = spec
                        .and_then(|s| s.karmada_cluster.clone())
                        .unwrap_or_else(|| m.name.clone());
                    (name, m.reachable.clone())
                })
                .collect(),
            interval: karmada::SYNC_PERIOD,
            clock,
            scheduled: Default::default(),
        };
        // One pass before the hub starts: the detector's bindings are there for the
        // hub's first round.
        karmada.sync().await;
        running.push(tokio::spawn(karmada.run(shutdown.clone())));
    }
    let hub_ctx = Context::new(hub.client(), "edgeplane-hub")
        .with_clock(Arc::new(clock))
        .with_shutdown(shutdown.clone());
    running.push(tokio::spawn(edgeplane_runtime::hub::run(hub_ctx, config)));

    // The recorder.
    let stop_recorder = CancellationToken::new();
    let recorder = {
        let mut recorder = Recorder {
            hub: hub.client(),
            members: members
                .iter()
                .map(|m| (m.name.clone(), m.cluster.client()))
                .collect(),
            karmada: multicluster.hub.mode == HubMode::Karmada,
            report: MultiClusterReport {
                mode: multicluster.hub.mode.as_str().to_string(),
                clusters: multicluster
                    .clusters
                    .iter()
                    .map(|c| ClusterReport {
                        name: c.name.clone(),
                        site: c.site.clone(),
                        nodes: c
                            .objects
                            .iter()
                            .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Node"))
                            .count(),
                        readiness: Vec::new(),
                    })
                    .collect(),
                ..Default::default()
            },
        };
        let stop = stop_recorder.clone();
        tokio::spawn(async move {
            let mut next = start + SAMPLE_OFFSET;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep_until(next) => {}
                }
                recorder.sample(next - start).await;
                next += SAMPLE_EVERY;
            }
            recorder.report
        })
    };

    // The events.
    for event in &scenario.events {
        tokio::time::sleep_until(start + event.at).await;
        let at = clock.elapsed();
        match &event.action {
            Action::FailCluster(name) | Action::RecoverCluster(name) => {
                let down = matches!(event.action, Action::FailCluster(_));
                if let Some(note) = &event.note {
                    journal.push(Entry::new(
                        at,
                        EntryType::Note,
                        format!("Scenario {}", scenario.name),
                        note.clone(),
                        Source::Driver,
                    ));
                }
                if let Some(m) = members.iter().find(|m| m.name == *name) {
                    m.reach.set_down(down);
                }
                journal.push(Entry::new(
                    at,
                    if down {
                        EntryType::ClusterFailed
                    } else {
                        EntryType::ClusterRecovered
                    },
                    format!("Cluster {name}"),
                    if down {
                        "stopped answering (what runs in it goes on)"
                    } else {
                        "answers again"
                    },
                    Source::Driver,
                ));
            }
            // A node of a member (loading checked the member and the node).
            _ if event.cluster.is_some() => {
                if let Some(m) = members
                    .iter()
                    .find(|m| Some(&m.name) == event.cluster.as_ref())
                {
                    driver::perform(&m.cluster, &journal, &scenario.name, event).await;
                }
            }
            _ => driver::perform(&hub, &journal, &scenario.name, event).await,
        }
    }
    tokio::time::sleep_until(start + scenario.duration).await;

    // The end.
    let end = report::final_state(hub.api());
    let ends: Vec<report::FinalState> = members
        .iter()
        .map(|m| report::final_state(m.cluster.api()))
        .collect();
    let member_bindings: Vec<record::MemberBinding> = members
        .iter()
        .flat_map(|m| record::member_bindings(&m.name, m.cluster.api()))
        .collect();
    let simulated = start.elapsed();
    stop_recorder.cancel();
    stop_observer.cancel();
    let recorded = recorder.await.unwrap_or_default();
    let observer = observer.await;
    shutdown.cancel();
    driver::stop_all(running).await;
    for m in members {
        m.cluster.shutdown().await;
    }
    hub.shutdown().await;
    drop(observer);
    let (entries, series) = journal.take_recorded();
    // The pods are the members', and so are the bindings of a member running edgeplane.
    let mut end = end;
    for b in &member_bindings {
        end.bindings.add(&b.compliance);
    }
    for e in &ends {
        end.pods_placed += e.pods_placed;
        end.pods_unplaced += e.pods_unplaced;
        end.pods_failed += e.pods_failed;
        end.standalone_failed += e.standalone_failed;
    }
    let mut names = vec!["edgeplane-hub".to_string()];
    if multicluster.hub.mode.is_karmada() {
        names.push("karmada (simulated)".to_string());
    }
    names.extend(
        components
            .iter()
            .map(|c| format!("{} (in each member)", c.name())),
    );
    let mut report = report::build(ReportInput {
        scenario,
        entries: &entries,
        series,
        end,
        components: names,
        simulated,
        wall: wall.elapsed(),
    });
    let mut recorded = recorded;
    recorded.member_bindings = member_bindings;
    report.multicluster = Some(recorded);
    map::draw_clusters(&mut report);
    Ok(report)
}
