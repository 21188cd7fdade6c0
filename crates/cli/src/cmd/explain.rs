//! `edgeplane explain pod/NAME`: why a pod runs (or would run) where it does, node by node,
//! with the network in it ([`edgeplane_core::explain`]). Reads the cluster from manifests
//! (`-f`) or, read-only, from a live cluster by kubeconfig.

use crate::cmd::invalid;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use edgeplane_core::explain::{Explanation, NodeVerdict, explain};
use edgeplane_core::manifests::Object;
use edgeplane_core::planner::{self, PendingPod, PlanOptions, PodKey, convert};
use edgeplane_core::snapshot::Snapshot;

use super::live::LiveArgs;
use super::plan::PlanParts;
use crate::input;
use crate::output::Table;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pod: `pod/NAME`, `pods/NAME` or `NAME`.
    pub pod: String,
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Read the cluster from these manifests (files, directories or `-`) instead of a live
    /// cluster.
    #[arg(short = 'f', long = "filename", num_args = 1..)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub live: LiveArgs,
    /// `table` (every node, its verdict and rule values), or the explanation as JSON or YAML.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ExplainFormat::Table)]
    pub output: ExplainFormat,
    #[arg(long, value_enum, default_value_t = crate::input::ValidateArg::Strict)]
    pub validate: crate::input::ValidateArg,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExplainFormat {
    Table,
    Json,
    Yaml,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = match pod_name(&args.pod) {
        Ok(n) => n,
        Err(e) => return invalid(e),
    };
    let objects = if args.files.is_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let client = args.live.client().await?;
            edgeplane_runtime::snapshot::read(&client)
                .await
                .map_err(anyhow::Error::from)
        })?
    } else {
        let documents = match input::read_documents(&args.files, args.validate) {
            Ok(d) => d,
            Err(e) => return invalid(e),
        };
        match input::decode_all(&documents) {
            Ok(o) => o,
            Err(e) => return invalid(e),
        }
    };
    let key = PodKey::new(args.namespace.clone(), name);
    let explanation = match explain_pod(objects, &key) {
        Ok(e) => e,
        Err(e) => return invalid(e),
    };
    let text = match args.output {
        ExplainFormat::Table => table(&explanation),
        ExplainFormat::Json => format!("{}\n", serde_json::to_string_pretty(&explanation)?),
        ExplainFormat::Yaml => serde_saphyr::to_string(&explanation)?,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `pod/web`, `pods/web`, `web`; other kinds are refused.
fn pod_name(arg: &str) -> Result<String, String> {
    let name = match arg.split_once('/') {
        Some(("pod" | "pods" | "po", name)) => name,
        Some((kind, _)) => {
            return Err(format!(
                "{arg}: explain takes a pod (pod/NAME), not a {kind}"
            ));
        }
        None => arg,
    };
    if name.is_empty() {
        return Err(format!("{arg}: no pod name"));
    }
    Ok(name.to_string())
}

/// The explanation for `key`: a running pod is judged where it runs, the others pods where
/// they run; a pod still to place is judged where the plan of every pending pod puts it.
fn explain_pod(objects: Vec<Object>, key: &PodKey) -> Result<Explanation, String> {
    let snapshot = Snapshot::from_objects(objects);
    let mut parts = PlanParts::build(&snapshot, &[], jiff::Timestamp::now())?;
    let running = snapshot.pods.iter().find(|p| {
        p.metadata.name.as_deref() == Some(key.name.as_str())
            && p.metadata.namespace.as_deref().unwrap_or("default") == key.namespace
    });
    if let Some(at) = parts.placed.iter().position(|p| &p.key == key) {
        let node = parts.placed.remove(at).node;
        let pod = running.ok_or_else(|| format!("pod {key} is not in the input"))?;
        let spec = pod
            .spec
            .as_ref()
            .ok_or_else(|| format!("pod {key}: spec: is required"))?;
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let pending: PendingPod =
            convert::pending_pod_in(key.clone(), labels, spec, &snapshot.rules_context())
                .map_err(|e| format!("pod {key}: {e}"))?;
        let mut input = parts.input();
        input.pending = vec![pending.clone()];
        return Ok(explain(&input, &Default::default(), &pending, Some(&node)));
    }
    let input = parts.input();
    let Some(pending) = input.pending.iter().find(|p| &p.key == key).cloned() else {
        let known: Vec<String> = input
            .pending
            .iter()
            .map(|p| p.key.to_string())
            .chain(parts.placed.iter().map(|p| p.key.to_string()))
            .take(10)
            .collect();
        return Err(format!(
            "pod {key} is not in the input (pods: {}{})",
            known.join(", "),
            if known.len() == 10 { ", ..." } else { "" }
        ));
    };
    let plan = planner::plan(
        &input,
        &PlanOptions::default().with_time_budget(std::time::Duration::from_secs(5)),
    );
    let others = plan
        .assignments
        .iter()
        .filter(|a| &a.pod != key)
        .map(|a| (a.pod.clone(), a.node.clone()))
        .collect();
    Ok(explain(&input, &others, &pending, plan.node_of(key)))
}

fn table(e: &Explanation) -> String {
    let mut out = match &e.chosen {
        Some(node) => format!("Pod {}: on {node}\n", e.pod),
        None => format!("Pod {}: not placed\n", e.pod),
    };
    let mut table = Table::new(["NODE", "SITE", "VERDICT", "LIMIT", "COST", "RULES / REASON"]);
    for node in &e.nodes {
        table.row([
            node.node.clone(),
            node.site.clone(),
            verdict(node, e.chosen.as_deref()),
            if node.rejected.is_some() {
                "-".into()
            } else {
                node.limit.to_string()
            },
            if node.rejected.is_some() {
                "-".into()
            } else {
                format!("{:.2}", node.cost)
            },
            node.rejected.clone().unwrap_or_else(|| rules(node)),
        ]);
    }
    out.push_str(&table.to_string());
    out.push_str(&format!("\nWhy: {}\n", e.summary));
    out
}

fn verdict(node: &NodeVerdict, chosen: Option<&str>) -> String {
    let chosen = chosen == Some(node.node.as_str());
    match (node.rank, chosen) {
        (Some(rank), true) => format!("#{rank} chosen"),
        (Some(rank), false) => format!("#{rank}"),
        (None, true) => "rejected, chosen".into(),
        (None, false) => "rejected".into(),
    }
}

/// `near-fans/latency 4ms Limit; ...`
fn rules(node: &NodeVerdict) -> String {
    if node.rules.is_empty() {
        return "no rules".into();
    }
    node.rules
        .iter()
        .map(|r| {
            format!(
                "{}/{} {}{}",
                r.policy,
                r.rule,
                r.value
                    .as_deref()
                    .map(|v| format!("{v} "))
                    .unwrap_or_default(),
                r.compliance
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
