//! `edgeplane plan`: plan workloads offline and write them back with their placement as
//! required node affinity (GitOps mode, for clusters where no custom scheduler may run).
//!
//! Reads Nodes, a NetworkTopology, ConstraintPolicies, ConstraintPolicyOffers and
//! workloads (Pods, Deployments, StatefulSets, ReplicaSets, VirtualMachines, and
//! NetworkFunctions and ServiceChains: rendered as their controllers would, see
//! [`edgeplane_core::gitops::functions`]); running Pods (with `spec.nodeName`) stay where
//! they are. Writes every input object in input
//! order with the plan written into the workloads ([`edgeplane_core::gitops`]): pinned to
//! their node, replicas spread over several nodes as one object per node.

use crate::cmd::invalid;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use edgeplane_core::evaluate::ClusterView;
use edgeplane_core::gitops::{self, RenderOptions};
use edgeplane_core::outcome::Outcome;
use edgeplane_core::planner::{self, Plan, PlanInput, PlanOptions, Strategy};
use edgeplane_core::snapshot::Snapshot;
use edgeplane_core::values::parse_duration_field;

use super::external::{GrpcCosts, ProviderArgs};
use super::fail_on::FailOnArgs;
use crate::input;
use crate::output::ManifestFormat;

mod clusters;
mod network;
mod parts;
mod report;

pub use parts::PlanParts;

pub use report::Report;
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyArg {
    /// Group planning: exact on small groups, heuristic on large ones.
    Optimal,
    /// Pod by pod in input order, each on its cheapest node (Turnbuckle's behaviour).
    Greedy,
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
    /// Ask this network controller (gRPC, `http://host:port`) for a path when no node
    /// satisfies a pod's binding, and plan the pod again over the allocated path.
    #[arg(long = "network-controller", value_name = "URL")]
    pub network_controller: Option<String>,
    /// Leave cluster inventory (Nodes, NetworkTopologies, NetworkPathCatalogues, policies,
    /// offers and bindings) out of the output; every other input object is written.
    #[arg(long = "drop-inventory")]
    pub drop_inventory: bool,
    /// Output format of the manifests (`name`: one `kind.group/name` a line, as kubectl).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ManifestFormat::Yaml)]
    pub output: ManifestFormat,
    #[command(flatten)]
    pub fail_on: FailOnArgs,
    /// Print the time of each phase on stderr (reading the YAML, decoding, building the
    /// planner's input, planning, writing) and the peak memory.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Fields an object's kind does not have (`spec.bogus`): an error (strict, as
    /// `kubectl apply`), a warning, or ignored. Kinds edgeplane has no schema for (other
    /// projects' custom resources) are not checked.
    #[arg(long, value_enum, default_value_t = crate::input::ValidateArg::Strict)]
    pub validate: crate::input::ValidateArg,
    /// Place MecApplications across MemberClusters instead (the hub's offline mode,
    /// docs/multicluster.md): reads MemberClusters with status, MecApplications,
    /// ConstraintPolicies and the hub's NetworkTopology; writes one directory per cluster
    /// into --output-dir and the placement to --report.
    #[arg(long)]
    pub clusters: bool,
    /// With --clusters: where `<cluster>/<namespace>.<application>.yaml` are written.
    #[arg(long = "output-dir", value_name = "DIR", requires = "clusters")]
    pub output_dir: Option<PathBuf>,
    /// With --clusters: also write `karmada/<namespace>.<application>.yaml`, the
    /// resources and plain PropagationPolicies (cluster affinity, static weights) that
    /// make Karmada's own scheduler divide the replicas as planned.
    #[arg(long, requires = "clusters")]
    pub karmada: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.clusters {
        return clusters::run(
            &args.files,
            args.output_dir.as_deref(),
            args.report.as_deref(),
            args.karmada,
            args.validate,
        );
    }
    let budget = match parse_duration_field(&args.time_budget) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => return invalid("--time-budget: must be longer than 0"),
        Err(e) => return invalid(format!("--time-budget: {e}")),
    };
    let external = match args.external.parse() {
        Ok(e) => e,
        Err(e) => return invalid(e),
    };
    let mut phases = Phases::new(args.verbose);
    let documents = match input::read_documents(&args.files, args.validate) {
        Ok(d) => d,
        Err(e) => return invalid(e),
    };
    phases.done(format!("read {} documents", documents.len()));
    let objects = match input::decode_all(&documents) {
        Ok(o) => o,
        Err(e) => return invalid(e),
    };
    let mut snapshot = Snapshot::from_objects(objects);
    // Network functions become the replicas their controller would create, and chains
    // the NADs of their links (written after the plan).
    let mut documents = documents;
    if !snapshot.functions.is_empty() || !snapshot.chains.is_empty() {
        let expanded = match gitops::functions::expand(&documents, &snapshot) {
            Ok(e) => e,
            Err(e) => return invalid(e),
        };
        for note in &expanded.notes {
            eprintln!("{note}");
        }
        documents = expanded.documents;
        snapshot = expanded.snapshot;
    }
    phases.done("decode".to_string());
    let external_rules: Vec<String> = external.providers.iter().map(|(r, _)| r.clone()).collect();
    let parts = match PlanParts::build(&snapshot, &external_rules, jiff::Timestamp::now()) {
        Ok(p) => p,
        Err(e) => return invalid(e),
    };
    phases.done(format!(
        "input ({} nodes, {} pods, {} bindings)",
        parts.nodes.len(),
        parts.workloads.iter().map(|w| w.pods.len()).sum::<usize>(),
        parts.bindings.len()
    ));
    let workloads = &parts.workloads;
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
    let mut plan_input = parts.input();
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
    phases.done("external costs".to_string());
    let mut plan = planner::plan(&plan_input, &options);
    phases.done("plan".to_string());
    let mut allocations = Vec::new();
    if let Some(url) = &args.network_controller {
        let outcomes = match network::allocate(url, &plan_input, &plan, jiff::Timestamp::now()) {
            Ok(o) => o,
            Err(e) => return invalid(format!("--network-controller {url}: {e}")),
        };
        for outcome in &outcomes {
            eprintln!("network: {}", network::describe(outcome));
        }
        allocations = outcomes
            .into_iter()
            .filter_map(|o| match o {
                network::Outcome::Allocated(a) => Some(*a),
                _ => None,
            })
            .collect();
        if let (false, Some(topology)) = (allocations.is_empty(), snapshot.topology()) {
            // Planned again as the cluster will once the paths are active.
            let paths: Vec<&network::Allocation> = allocations.iter().collect();
            let topology = network::with_paths(topology, &paths);
            let view = match ClusterView::build(
                Some(&topology),
                &snapshot.nodes,
                &snapshot.pods,
                jiff::Timestamp::now(),
            ) {
                Ok(v) => v,
                Err(e) => {
                    return invalid(format!("network topology with the allocated paths: {e}"));
                }
            };
            let again = PlanInput {
                view: &view,
                nodes: plan_input.nodes.clone(),
                placed: plan_input.placed.clone(),
                pending: plan_input.pending.clone(),
                bindings: plan_input.bindings.clone(),
            };
            plan = planner::plan(&again, &options);
        }
    }
    let rendered = gitops::render(
        &documents,
        workloads,
        &plan,
        RenderOptions {
            drop_inventory: args.drop_inventory,
        },
    );
    phases.done("render".to_string());
    let mut items = rendered.objects;
    // After the replicas: a Multus pod waits for its networks, and the namespace exists.
    items.extend(gitops::functions::networks(&snapshot.chains, &plan));
    crate::output::print_manifests(args.output, &items)?;
    phases.done("write".to_string());
    if let Some(path) = &args.report {
        let report = Report::new(&plan, &allocations);
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing the report to {}", path.display()))?;
    }
    summarize(&plan);
    for split in &rendered.split {
        eprintln!(
            "{} {}/{}: written as {} (one per planned node, so each node runs the planned number of replicas)",
            split.kind.as_str(),
            split.namespace,
            split.name,
            split.parts.join(", ")
        );
    }
    for warning in &rendered.warnings {
        eprintln!("warning: {warning}");
    }
    phases.finish();
    let mut outcome = Outcome::from_compliance(plan.bindings.iter().map(|b| b.compliance));
    outcome.unplaced = plan.unplaced.len();
    Ok(args.fail_on.exit_code(&outcome))
}

/// `-v`: the wall time of each phase, printed as one line at the end.
struct Phases {
    on: bool,
    start: std::time::Instant,
    last: std::time::Instant,
    done: Vec<(String, std::time::Duration)>,
}

impl Phases {
    fn new(on: bool) -> Phases {
        let now = std::time::Instant::now();
        Phases {
            on,
            start: now,
            last: now,
            done: Vec::new(),
        }
    }

    fn done(&mut self, what: String) {
        let now = std::time::Instant::now();
        self.done.push((what, now - self.last));
        self.last = now;
    }

    fn finish(&self) {
        if !self.on {
            return;
        }
        let phases: Vec<String> = self
            .done
            .iter()
            .map(|(what, d)| format!("{what} {:.3} s", d.as_secs_f64()))
            .collect();
        let peak = crate::cmd::bench::peak_rss_mb()
            .map_or(String::new(), |mb| format!(", peak RSS {mb:.0} MB"));
        eprintln!(
            "timings: {}; total {:.3} s{peak}",
            phases.join(", "),
            self.start.elapsed().as_secs_f64()
        );
    }
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
    if let Some(note) = s.bound_note() {
        eprintln!("{note}");
    }
    if !plan.unplaced.is_empty() {
        eprintln!("{} unplaced:", plan.unplaced.len());
        for u in &plan.unplaced {
            eprintln!("  {}: {}", u.pod, u.reason);
        }
    }
}
