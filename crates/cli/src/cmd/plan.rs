//! `edgeplane plan`: plan workloads offline and write them back with their placement as
//! required node affinity (GitOps mode, for clusters where no custom scheduler may run).
//!
//! Reads Nodes, a NetworkTopology, ConstraintPolicies, ConstraintPolicyOffers and
//! workloads (Pods, Deployments, StatefulSets, ReplicaSets, VirtualMachines); running
//! Pods (with `spec.nodeName`) stay where they are. Writes the workload manifests, in input
//! order, each with `matchFields metadata.name In [nodes]` ANDed into every required node
//! selector term (or as the only term). A replicated workload gets the set of its
//! replicas' nodes: Kubernetes has no per-replica affinity, so the report is the source of
//! truth per replica.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use edgeplane_core::evaluate::ClusterView;
use edgeplane_core::manifests::Document;
use edgeplane_core::outcome::Outcome;
use edgeplane_core::planner::{self, Plan, PlanInput, PlanOptions, Strategy, convert};
use edgeplane_core::snapshot::Snapshot;
use edgeplane_core::values::parse_duration_field;
use edgeplane_core::workloads::{self, WorkloadKind};
use serde::Serialize;
use serde_json::{Value as Json, json};

use super::external::{GrpcCosts, ProviderArgs};
use super::fail_on::FailOnArgs;
use crate::input;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyArg {
    /// Group planning: exact on small groups, heuristic on large ones.
    Optimal,
    /// Pod by pod in input order, each on its cheapest node (Turnbuckle's behaviour).
    Greedy,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    Yaml,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files, directories or `-` (standard input) holding Kubernetes manifests.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Write the plan (assignments, unplaced pods, predicted compliance) as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub external: ProviderArgs,
    #[arg(long, value_enum, default_value_t = StrategyArg::Optimal)]
    pub strategy: StrategyArg,
    /// Stop improving the plan after this long and keep the best found.
    #[arg(long = "time-budget", default_value = "5s")]
    pub time_budget: String,
    /// Seed of the local search (plans are deterministic for a seed and input).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output format of the manifests.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ManifestFormat::Yaml)]
    pub output: ManifestFormat,
    #[command(flatten)]
    pub fail_on: FailOnArgs,
}

fn invalid(message: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(2))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let budget = match parse_duration_field(&args.time_budget) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => return invalid("--time-budget: must be longer than 0"),
        Err(e) => return invalid(format!("--time-budget: {e}")),
    };
    let external = match args.external.parse() {
        Ok(e) => e,
        Err(e) => return invalid(e),
    };
    let documents = match input::read_documents(&args.files) {
        Ok(d) => d,
        Err(e) => return invalid(e),
    };
    let objects = match input::decode_all(&documents) {
        Ok(o) => o,
        Err(e) => return invalid(e),
    };
    let snapshot = Snapshot::from_objects(objects);
    let view = match ClusterView::build(
        snapshot.topology(),
        &snapshot.nodes,
        &snapshot.pods,
        jiff::Timestamp::now(),
    ) {
        Ok(v) => v,
        Err(e) => return invalid(format!("network topology: {e}")),
    };
    let nodes = snapshot
        .nodes
        .iter()
        .filter_map(|n| convert::plan_node(n).ok())
        .collect();
    let workloads = workloads::workloads(&snapshot);
    let inventory = workloads::inventory(&snapshot, &workloads);
    let external_rules: Vec<String> = external.providers.iter().map(|(r, _)| r.clone()).collect();
    let bindings = match workloads::plan_bindings(&snapshot, &inventory, &external_rules) {
        Ok(b) => b,
        Err((offer, e)) => return invalid(format!("offer {offer}: {e}")),
    };
    for offer in &snapshot.offers {
        let namespace = offer.metadata.namespace.as_deref().unwrap_or("default");
        for policy in &offer.spec.policies {
            if snapshot.policy(namespace, policy).is_none() {
                eprintln!(
                    "warning: offer {namespace}/{}: policy {policy:?} is not in the input",
                    offer.metadata.name.as_deref().unwrap_or_default()
                );
            }
        }
    }
    let mut plan_input = PlanInput {
        view: &view,
        nodes,
        placed: workloads::running(&snapshot),
        pending: workloads.iter().flat_map(|w| w.pods.clone()).collect(),
        bindings,
    };
    if !external.providers.is_empty() {
        let clients = match GrpcCosts::new(&external) {
            Ok(c) => c,
            Err(e) => return invalid(e),
        };
        let mut providers = planner::CachedCosts::new(clients);
        planner::fill_external_costs(&mut plan_input, &mut providers);
    }
    let options = PlanOptions {
        strategy: match args.strategy {
            StrategyArg::Optimal => Strategy::Optimal,
            StrategyArg::Greedy => Strategy::Greedy,
        },
        seed: args.seed,
        ..PlanOptions::default()
    }
    .with_time_budget(budget);
    let plan = planner::plan(&plan_input, &options);

    // Nodes of each workload's pods.
    let mut nodes_of: BTreeMap<(String, String, &str), Vec<String>> = BTreeMap::new();
    for w in &workloads {
        let mut nodes: Vec<String> = w
            .pods
            .iter()
            .filter_map(|p| plan.node_of(&p.key).map(str::to_string))
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes_of.insert(
            (w.namespace.clone(), w.name.clone(), w.kind.as_str()),
            nodes,
        );
    }
    let items: Vec<Json> = documents
        .iter()
        .filter_map(|doc| output_document(doc, &nodes_of))
        .collect();
    match args.output {
        ManifestFormat::Json => {
            let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        ManifestFormat::Yaml => {
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                out.push_str(&serde_saphyr::to_string(item)?);
            }
            print!("{out}");
        }
    }
    if let Some(path) = &args.report {
        let report = Report::new(&plan);
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing the report to {}", path.display()))?;
    }
    summarize(&plan);
    let mut outcome = Outcome::from_compliance(plan.bindings.iter().map(|b| b.compliance));
    outcome.unplaced = plan.unplaced.len();
    Ok(args.fail_on.exit_code(&outcome))
}

/// The document as it goes out: workloads get their nodes as required affinity; objects
/// that describe the cluster are not echoed.
fn output_document(
    doc: &Document,
    nodes_of: &BTreeMap<(String, String, &str), Vec<String>>,
) -> Option<Json> {
    let kind = match (doc.api_version(), doc.kind()) {
        ("v1", "Pod") => WorkloadKind::Pod,
        ("apps/v1", "Deployment") => WorkloadKind::Deployment,
        ("apps/v1", "StatefulSet") => WorkloadKind::StatefulSet,
        ("apps/v1", "ReplicaSet") => WorkloadKind::ReplicaSet,
        (workloads::KUBEVIRT_API_VERSION, "VirtualMachine") => WorkloadKind::VirtualMachine,
        _ => return None,
    };
    let mut value = doc.value.clone();
    let namespace = value
        .pointer("/metadata/namespace")
        .and_then(Json::as_str)
        .unwrap_or("default")
        .to_string();
    let name = value
        .pointer("/metadata/name")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let nodes = nodes_of.get(&(namespace, name, kind.as_str()));
    if let Some(nodes) = nodes.filter(|n| !n.is_empty()) {
        let spec = match kind {
            WorkloadKind::Pod => value.pointer_mut("/spec"),
            _ => value.pointer_mut("/spec/template/spec"),
        };
        if let Some(spec) = spec {
            pin(spec, nodes);
        }
    }
    Some(value)
}

/// ANDs `metadata.name In nodes` into every required node selector term of a pod spec (or
/// adds it as the only term).
pub fn pin(spec: &mut Json, nodes: &[String]) {
    let requirement = json!({"key": "metadata.name", "operator": "In", "values": nodes});
    let Some(terms) = required_terms(spec) else {
        return;
    };
    if terms.is_empty() {
        terms.push(json!({"matchFields": [requirement]}));
        return;
    }
    for term in terms.iter_mut() {
        if let Some(term) = term.as_object_mut() {
            let fields = term
                .entry("matchFields")
                .or_insert_with(|| Json::Array(Vec::new()));
            match fields.as_array_mut() {
                Some(list) => list.push(requirement.clone()),
                None => *fields = json!([requirement.clone()]),
            }
        }
    }
}

/// `affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`
/// of a pod spec, created when absent.
fn required_terms(spec: &mut Json) -> Option<&mut Vec<Json>> {
    let mut at = spec;
    for key in [
        "affinity",
        "nodeAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
    ] {
        let entry = at.as_object_mut()?.entry(key).or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        at = entry;
    }
    let terms = at
        .as_object_mut()?
        .entry("nodeSelectorTerms")
        .or_insert_with(|| json!([]));
    if !terms.is_array() {
        *terms = json!([]);
    }
    terms.as_array_mut()
}

fn summarize(plan: &Plan) {
    let s = &plan.summary;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "planned {} of {} pods (strategy {}: {}) in {} ms: {} rules Compliant, {} Limit, {} Violation, {} Error, {} Pending; cost {:.3}",
        s.placed,
        s.pods,
        s.strategy.unwrap_or_default().as_str(),
        s.search_note(),
        s.elapsed.as_millis(),
        s.rules_compliant,
        s.rules_limit,
        s.rules_violation,
        s.rules_error,
        s.rules_pending,
        s.cost
    );
    if !plan.unplaced.is_empty() {
        eprintln!("{} unplaced:", plan.unplaced.len());
        for u in &plan.unplaced {
            eprintln!("  {}: {}", u.pod, u.reason);
        }
    }
}

/// The `--report` JSON.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub assignments: Vec<ReportAssignment>,
    pub unplaced: Vec<ReportUnplaced>,
    pub bindings: Vec<ReportBinding>,
    pub summary: ReportSummary,
}

#[derive(Serialize, Debug)]
pub struct ReportAssignment {
    pub namespace: String,
    pub name: String,
    pub node: String,
}

#[derive(Serialize, Debug)]
pub struct ReportUnplaced {
    pub namespace: String,
    pub name: String,
    pub reason: String,
}

#[derive(Serialize, Debug)]
pub struct ReportBinding {
    pub name: String,
    pub offer: String,
    pub targets: BTreeMap<String, String>,
    pub compliance: String,
    pub rules: Vec<ReportRule>,
}

#[derive(Serialize, Debug)]
pub struct ReportRule {
    pub policy: String,
    pub rule: String,
    pub value: Option<String>,
    pub compliance: String,
    /// Normalized cost; null for a Violation without a finite cost.
    pub cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ReportSummary {
    pub pods: usize,
    pub placed: usize,
    pub unplaced: usize,
    pub rules_compliant: usize,
    pub rules_limit: usize,
    pub rules_violation: usize,
    pub rules_error: usize,
    pub rules_pending: usize,
    pub cost: f64,
    pub optimal: bool,
    /// `iteration budget` or `time budget` when one ended the search (then not optimal).
    pub stopped: Option<String>,
    pub strategy: String,
    pub method: String,
    pub plan_millis: u64,
    pub iterations: u64,
}

impl Report {
    pub fn new(plan: &Plan) -> Report {
        let s = &plan.summary;
        Report {
            assignments: plan
                .assignments
                .iter()
                .map(|a| ReportAssignment {
                    namespace: a.pod.namespace.clone(),
                    name: a.pod.name.clone(),
                    node: a.node.clone(),
                })
                .collect(),
            unplaced: plan
                .unplaced
                .iter()
                .map(|u| ReportUnplaced {
                    namespace: u.pod.namespace.clone(),
                    name: u.pod.name.clone(),
                    reason: u.reason.clone(),
                })
                .collect(),
            bindings: plan
                .bindings
                .iter()
                .map(|b| ReportBinding {
                    name: b.name.clone(),
                    offer: b.offer.clone(),
                    targets: b
                        .targets
                        .iter()
                        .map(|(role, t)| (role.clone(), t.to_string()))
                        .collect(),
                    compliance: b.compliance.to_string(),
                    rules: b
                        .rules
                        .iter()
                        .map(|r| ReportRule {
                            policy: r.policy.clone(),
                            rule: r.rule.clone(),
                            value: r.value.clone(),
                            compliance: r.compliance.to_string(),
                            cost: r.cost.is_finite().then(|| round(r.cost)),
                            reason: r.reason.clone(),
                        })
                        .collect(),
                })
                .collect(),
            summary: ReportSummary {
                pods: s.pods,
                placed: s.placed,
                unplaced: s.unplaced,
                rules_compliant: s.rules_compliant,
                rules_limit: s.rules_limit,
                rules_violation: s.rules_violation,
                rules_error: s.rules_error,
                rules_pending: s.rules_pending,
                cost: round(s.cost),
                optimal: s.optimal,
                stopped: s.stopped.map(|w| w.as_str().to_string()),
                strategy: s.strategy.unwrap_or_default().as_str().to_string(),
                method: s.method.map(|m| m.as_str()).unwrap_or("none").to_string(),
                plan_millis: s.elapsed.as_millis() as u64,
                iterations: s.iterations,
            },
        }
    }
}

/// Six decimals: costs are ratios of measurements with far fewer significant digits.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
