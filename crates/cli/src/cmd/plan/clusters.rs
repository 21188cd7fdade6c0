//! `edgeplane plan --clusters`: the hub's offline mode. Reads MemberClusters (with
//! status), MecApplications, ConstraintPolicies and the hub's NetworkTopology, places the
//! applications across the clusters (`edgeplane_core::hub`) and writes, for GitOps,
//! `DIR/<cluster>/<namespace>.<application>.yaml` with every resource of each
//! application placed there (`hub::render::render`), and in the clusters labelled as
//! running edgeplane the policy copies and offers of `hub::member_offers`; with
//! `--karmada`, also
//! `DIR/karmada/<namespace>.<application>.yaml` for a Karmada control plane whose
//! scheduler may not be replaced: the resources and plain PropagationPolicies
//! (`hub::karmada::propagation_policies`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use edgeplane_api::multicluster::{API_VERSION, MecApplication, MemberCluster};
use edgeplane_api::{ConstraintPolicy, NetworkTopology};
use edgeplane_core::hub::{self, HubInput, HubObjects, HubOptions, HubPlan};
use edgeplane_core::manifests::{self, Document, Object};
use serde::Serialize;

use crate::cmd::invalid;
use crate::input::{self, ValidateArg};

/// The objects read, each with the place it was read from.
#[derive(Default)]
struct Read {
    topology: Option<NetworkTopology>,
    clusters: Vec<MemberCluster>,
    applications: Vec<MecApplication>,
    policies: Vec<ConstraintPolicy>,
    /// `MecApplication ar/ar-game` -> `apps.yaml[2]`.
    locations: HashMap<String, String>,
}

pub fn run(
    files: &[PathBuf],
    output_dir: Option<&Path>,
    report: Option<&Path>,
    karmada: bool,
    validate: ValidateArg,
) -> anyhow::Result<ExitCode> {
    let Some(output_dir) = output_dir else {
        return invalid("--clusters: --output-dir is required (one directory per cluster)");
    };
    let documents = match input::read_documents(files, validate) {
        Ok(d) => d,
        Err(e) => return invalid(e),
    };
    let read = match read(&documents) {
        Ok(r) => r,
        Err(e) => return invalid(e),
    };
    let built = match hub::build_input(
        &HubObjects {
            topology: read.topology.as_ref(),
            clusters: &read.clusters,
            applications: &read.applications,
            policies: &read.policies,
        },
        jiff::Timestamp::now(),
    ) {
        Ok(b) => b,
        Err(errors) => {
            for e in &errors {
                let at = read
                    .locations
                    .get(&e.object)
                    .map(|l| format!("{l} "))
                    .unwrap_or_default();
                eprintln!("error: {at}{e}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let plan = hub::plan(
        &HubInput {
            view: &built.view,
            clusters: built.clusters,
            applications: built.applications,
        },
        &HubOptions::default(),
    );
    write_clusters(output_dir, &read, &plan)?;
    if karmada {
        write_karmada(output_dir, &read.applications, &read.clusters, &plan)?;
    }
    if let Some(path) = report {
        let text = serde_json::to_string_pretty(&Report::new(&plan))?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing the report to {}", path.display()))?;
    }
    summarize(&plan);
    Ok(ExitCode::SUCCESS)
}

/// Sorts the documents into the kinds the hub reads; anything else is an error, since
/// an application's own manifests belong in its `spec.resources`.
fn read(documents: &[Document]) -> Result<Read, manifests::ManifestError> {
    let mut read = Read::default();
    for doc in documents {
        read.locations.insert(doc.describe(), doc.location());
        match (doc.api_version(), doc.kind()) {
            (API_VERSION, "MemberCluster") => {
                read.clusters.push(manifests::typed(doc, false)?);
            }
            (API_VERSION, "MecApplication") => {
                read.applications.push(manifests::typed(doc, true)?);
            }
            _ => match manifests::decode(doc)? {
                Object::Policy(p) => read.policies.push(p),
                Object::Topology(t) => {
                    if let Some(first) = &read.topology {
                        return Err(manifests::ManifestError {
                            location: doc.location(),
                            object: Some(doc.describe()),
                            field: None,
                            message: format!(
                                "a second NetworkTopology (the hub has one: {})",
                                first.metadata.name.as_deref().unwrap_or_default()
                            ),
                        });
                    }
                    read.topology = Some(*t);
                }
                _ => {
                    return Err(manifests::ManifestError {
                        location: doc.location(),
                        object: Some(doc.describe()),
                        field: None,
                        message: "not read by plan --clusters (it reads MemberClusters, MecApplications, ConstraintPolicies and one NetworkTopology; an application's manifests go in its spec.resources)".into(),
                    });
                }
            },
        }
    }
    if read.topology.is_none() {
        return Err(manifests::ManifestError {
            location: "input".into(),
            object: None,
            field: None,
            message: "no NetworkTopology: the hub's topology places the clusters at sites".into(),
        });
    }
    Ok(read)
}

/// `DIR/<cluster>/<namespace>.<app>.yaml`: the application's share of each cluster, and
/// in a cluster running edgeplane the policy copies and offers that bind its pods to the
/// user sites (`hub::member_offers`).
fn write_clusters(dir: &Path, read: &Read, plan: &HubPlan) -> anyhow::Result<()> {
    let edgeplane: BTreeSet<String> = read
        .clusters
        .iter()
        .filter(|c| c.runs_edgeplane())
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    for (app, app_plan) in read.applications.iter().zip(&plan.applications) {
        // The offers first, as the hub applies them: the member's planner knows the
        // constraint when the first pods come.
        let mut rendered =
            hub::member_offers::member_offers(app, app_plan, &read.policies, &edgeplane);
        for (cluster, manifests) in hub::render::render(app, app_plan) {
            rendered.entry(cluster).or_default().extend(manifests);
        }
        for (cluster, manifests) in rendered {
            let cluster_dir = dir.join(&cluster);
            std::fs::create_dir_all(&cluster_dir)
                .with_context(|| format!("creating {}", cluster_dir.display()))?;
            let path = cluster_dir.join(format!("{}.{}.yaml", app_plan.namespace, app_plan.name));
            let mut text = String::new();
            for manifest in &manifests {
                text.push_str("---\n");
                text.push_str(&serde_saphyr::to_string(manifest)?);
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

/// `DIR/karmada/<namespace>.<app>.yaml`: the application's resources and the plain
/// PropagationPolicies that make Karmada's own scheduler divide them as planned.
fn write_karmada(
    dir: &Path,
    apps: &[MecApplication],
    members: &[MemberCluster],
    plan: &HubPlan,
) -> anyhow::Result<()> {
    let names = hub::karmada::karmada_names(members);
    let karmada_dir = dir.join("karmada");
    for (app, app_plan) in apps.iter().zip(&plan.applications) {
        if app_plan.placement.is_empty() {
            continue;
        }
        std::fs::create_dir_all(&karmada_dir)
            .with_context(|| format!("creating {}", karmada_dir.display()))?;
        let mut text = String::new();
        for manifest in hub::render::resources(app)
            .into_iter()
            .chain(hub::karmada::propagation_policies(app, app_plan, &names))
        {
            text.push_str("---\n");
            text.push_str(&serde_saphyr::to_string(&manifest)?);
        }
        let path = karmada_dir.join(format!("{}.{}.yaml", app_plan.namespace, app_plan.name));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Report {
    applications: Vec<AppReport>,
}

#[derive(Serialize)]
struct AppReport {
    namespace: String,
    name: String,
    placement: Vec<PlacementReport>,
    unplaced: BTreeMap<String, u32>,
    rules: BTreeMap<&'static str, usize>,
}

#[derive(Serialize)]
struct PlacementReport {
    cluster: String,
    components: BTreeMap<String, u32>,
}

impl Report {
    fn new(plan: &HubPlan) -> Report {
        Report {
            applications: plan
                .applications
                .iter()
                .map(|a| {
                    let counts = a.rule_counts();
                    AppReport {
                        namespace: a.namespace.clone(),
                        name: a.name.clone(),
                        placement: a
                            .placement
                            .iter()
                            .map(|s| PlacementReport {
                                cluster: s.cluster.clone(),
                                components: s.components.clone(),
                            })
                            .collect(),
                        unplaced: a
                            .unplaced
                            .iter()
                            .map(|(c, u)| (c.clone(), u.replicas))
                            .collect(),
                        rules: BTreeMap::from([
                            ("Compliant", counts.compliant),
                            ("Limit", counts.limit),
                            ("Violation", counts.violation),
                        ]),
                    }
                })
                .collect(),
        }
    }
}

fn summarize(plan: &HubPlan) {
    for app in &plan.applications {
        let counts = app.rule_counts();
        let placement: Vec<String> = app
            .placement
            .iter()
            .map(|s| {
                let parts: Vec<String> = s
                    .components
                    .iter()
                    .map(|(c, n)| format!("{c} {n}"))
                    .collect();
                format!("{} ({})", s.cluster, parts.join(", "))
            })
            .collect();
        eprintln!(
            "{}/{}: {}; rules {} Compliant, {} Limit, {} Violation, {} Pending",
            app.namespace,
            app.name,
            if placement.is_empty() {
                "placed nowhere".to_string()
            } else {
                placement.join(", ")
            },
            counts.compliant,
            counts.limit,
            counts.violation,
            counts.pending
        );
        for (component, unplaced) in &app.unplaced {
            eprintln!(
                "  {component}: {} replica{} unplaced: {}",
                unplaced.replicas,
                if unplaced.replicas == 1 { "" } else { "s" },
                unplaced.reason
            );
        }
        for warning in &app.warnings {
            eprintln!("  warning: {warning}");
        }
    }
}
