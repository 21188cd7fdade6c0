//! `edgeplane bench planner`: seeded random MEC instances (S, M, L), planned with the
//! group planner and with the greedy baseline in the same run.
//!
//! Each (size, strategy) runs in a child process so that its peak memory (VmHWM, which is
//! process-wide and only grows) is its own. Plan time is the `plan` call alone; generating
//! the instance is not timed.

use std::process::{Command, ExitCode};
use std::time::Instant;

use edgeplane_core::planner::instances::{self, Size};
use edgeplane_core::planner::{self, PlanOptions, Strategy};
use edgeplane_core::values::parse_duration_field;
use serde::{Deserialize, Serialize};

use super::instance_yaml;
use crate::output::Table;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Sizes to run, in this order: S (12 pods / 30 nodes / 6 sites), M (200 / 500 / 20),
    /// L (2000 / 5000 / 100), XL (10000 / 20000 / 1000, always with the rules of
    /// `--pod-rules`).
    #[arg(long, default_value = "S,M,L", value_delimiter = ',')]
    pub sizes: Vec<String>,
    /// Seed of the instances and of the search.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time budget of each plan.
    #[arg(long = "time-budget", default_value = "10s")]
    pub time_budget: String,
    /// Add high-availability rules between pods to a fifth of the applications: required
    /// anti-affinity by hostname and a ScheduleAnyway spread over sites
    /// (`instances::add_pod_rules`).
    #[arg(long = "pod-rules")]
    pub pod_rules: bool,
    /// Write the instance of the (single) size given by --sizes as one multi-document YAML
    /// file for `edgeplane plan -f FILE`, and plan nothing.
    #[arg(long = "write-instance", value_name = "FILE")]
    pub write_instance: Option<std::path::PathBuf>,
    /// Internal: run one `SIZE:STRATEGY` and print its figures as JSON.
    #[arg(long, hide = true)]
    pub child: Option<String>,
}

/// The figures of one run.
#[derive(Serialize, Deserialize, Debug)]
struct Row {
    size: String,
    strategy: String,
    pods: usize,
    nodes: usize,
    sites: usize,
    plan_ms: f64,
    peak_mb: f64,
    placed: usize,
    limit: usize,
    violation: usize,
    cost: f64,
    optimal: bool,
    method: String,
    /// The budget that ended the search, if one did.
    stopped: Option<String>,
    /// `planner::bound`: most pods placeable, least Limits at that (None: proven optimal).
    bound: Option<(usize, usize)>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let budget = match parse_duration_field(&args.time_budget) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: --time-budget: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(child) = &args.child {
        return child_run(child, args.seed, budget, args.pod_rules);
    }
    for size in &args.sizes {
        if Size::named(size).is_none() {
            eprintln!("error: --sizes: unknown size {size:?} (expected S, M, L, XL)");
            return Ok(ExitCode::from(2));
        }
    }
    if let Some(path) = &args.write_instance {
        let [size_name] = args.sizes.as_slice() else {
            eprintln!("error: --write-instance: give one size with --sizes");
            return Ok(ExitCode::from(2));
        };
        let instance = instance_of(size_name, args.seed, args.pod_rules)?;
        let objects = instance_yaml::manifests(&instance).map_err(anyhow::Error::msg)?;
        let text = instance_yaml::yaml(&objects).map_err(anyhow::Error::msg)?;
        std::fs::write(path, &text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        eprintln!(
            "wrote {} objects ({} pods to place, {} nodes, {} bindings as offers, {:.1} MB) to {}",
            objects.len(),
            instance.pending.len(),
            instance.nodes.len(),
            instance.bindings.len(),
            text.len() as f64 / 1e6,
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let exe = std::env::current_exe()?;
    let mut table = Table::new([
        "SIZE",
        "STRATEGY",
        "PODS",
        "NODES",
        "SITES",
        "PLAN-MS",
        "PODS/S",
        "PEAK-MB",
        "PLACED",
        "BOUND",
        "GAP",
        "LIMIT",
        "LIMIT-LB",
        "VIOLATION",
        "COST",
        "OPTIMAL",
    ]);
    for size in &args.sizes {
        for strategy in ["optimal", "greedy"] {
            let out = Command::new(&exe)
                .args(["bench", "planner", "--seed", &args.seed.to_string()])
                .args(["--time-budget", &args.time_budget])
                .args(args.pod_rules.then_some("--pod-rules"))
                .args(["--child", &format!("{size}:{strategy}")])
                .output()?;
            if !out.status.success() {
                eprintln!(
                    "error: {size}/{strategy} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                return Ok(ExitCode::FAILURE);
            }
            let row: Row = serde_json::from_slice(&out.stdout)?;
            let rate = row.pods as f64 / (row.plan_ms / 1000.0).max(1e-9);
            table.row([
                row.size.clone(),
                row.strategy.clone(),
                row.pods.to_string(),
                row.nodes.to_string(),
                row.sites.to_string(),
                format!("{:.1}", row.plan_ms),
                format!("{rate:.0}"),
                format!("{:.1}", row.peak_mb),
                row.placed.to_string(),
                row.bound.map_or("-".into(), |b| b.0.to_string()),
                row.bound.map_or("-".into(), |b| {
                    let gap = b.0.saturating_sub(row.placed);
                    format!("{gap} ({:.1} %)", gap as f64 * 100.0 / b.0.max(1) as f64)
                }),
                row.limit.to_string(),
                row.bound.map_or("-".into(), |b| b.1.to_string()),
                row.violation.to_string(),
                format!("{:.2}", row.cost),
                match (&row.stopped, row.optimal) {
                    (_, true) => "yes".to_string(),
                    (Some(budget), false) => format!("no ({}, {budget} ran out)", row.method),
                    (None, false) => format!("no ({})", row.method),
                },
            ]);
        }
    }
    print!("{table}");
    Ok(ExitCode::SUCCESS)
}

/// The generated instance of a size; XL always carries the rules between pods.
fn instance_of(size_name: &str, seed: u64, pod_rules: bool) -> anyhow::Result<instances::Instance> {
    let Some(size) = Size::named(size_name) else {
        anyhow::bail!("unknown size {size_name:?}");
    };
    let mut instance = instances::generate(size, seed);
    if pod_rules || size == Size::XL {
        instances::add_pod_rules(&mut instance);
    }
    Ok(instance)
}

fn child_run(
    spec: &str,
    seed: u64,
    budget: std::time::Duration,
    pod_rules: bool,
) -> anyhow::Result<ExitCode> {
    let (size_name, strategy) = spec.split_once(':').unwrap_or((spec, "optimal"));
    let Some(size) = Size::named(size_name) else {
        anyhow::bail!("unknown size {size_name:?}");
    };
    let instance = instance_of(size_name, seed, pod_rules)?;
    let input = instance.input();
    let options = PlanOptions {
        strategy: if strategy == "greedy" {
            Strategy::Greedy
        } else {
            Strategy::Optimal
        },
        seed,
        ..PlanOptions::default()
    }
    .with_time_budget(budget);
    let started = Instant::now();
    let plan = planner::plan(&input, &options);
    let plan_ms = started.elapsed().as_secs_f64() * 1000.0;
    let s = &plan.summary;
    let row = Row {
        size: size_name.to_uppercase(),
        strategy: strategy.to_string(),
        pods: size.pods,
        nodes: size.nodes,
        sites: size.sites,
        plan_ms,
        peak_mb: super::rss::peak_rss_bytes().map_or(0.0, |b| b as f64 / (1024.0 * 1024.0)),
        placed: s.placed,
        limit: s.rules_limit,
        violation: s.rules_violation,
        cost: s.cost,
        optimal: s.optimal,
        method: s.method.map(|m| m.as_str()).unwrap_or("none").to_string(),
        stopped: s.stopped.map(|w| w.as_str().to_string()),
        bound: s.bound.map(|b| (b.placed, b.limit)),
    };
    println!("{}", serde_json::to_string(&row)?);
    Ok(ExitCode::SUCCESS)
}
