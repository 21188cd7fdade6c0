//! `edgeplane sim`: run a scenario on the embedded cluster on virtual time and tell the
//! story (timeline on stdout, progress on stderr, summary), with optional JSON and HTML
//! reports; `--serve` runs it at a multiple of real time for kubectl. `edgeplane sim
//! generate` writes scenarios of any size; `edgeplane bench sim` times a large one.

use crate::cmd::invalid;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use edgeplane_core::outcome::Outcome;
use edgeplane_core::values::parse_duration_field;
use edgeplane_sim::generate::{GenerateOptions, generate};
use edgeplane_sim::text::{self, TextListener};
use edgeplane_sim::{Component, RunOptions, ServeOptions, controllers, scenario};

use super::fail_on::{FAILED, FailOnArgs};
use super::what_if;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Write a generated scenario (topology, nodes, applications, events) into a directory.
    Generate(GenerateArgs),
    /// Write a live cluster (read-only, by kubeconfig) as a scenario into a directory:
    /// cluster.yaml (its objects) and scenario.yaml (no events yet: add them, then run it).
    Snapshot(SnapshotArgs),
}

#[derive(clap::Args, Debug)]
pub struct SnapshotArgs {
    /// Read this cluster (its kubeconfig); nothing is written to it.
    #[arg(long = "from-cluster", value_name = "KUBECONFIG")]
    from_cluster: PathBuf,
    /// The kubeconfig context (its current one by default).
    #[arg(long = "from-context", value_name = "NAME")]
    from_context: Option<String>,
    /// Simulated time of the written scenario.
    #[arg(long, default_value = "30m")]
    duration: String,
    /// Directory to write cluster.yaml and scenario.yaml into.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: PathBuf,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The scenario file (apiVersion: sim.edgeplane.io/v1alpha1, kind: Scenario). With
    /// --from-cluster it brings the events, settings and duration (its own includes are
    /// added to the cluster's objects).
    #[arg(required = true)]
    scenario: Option<PathBuf>,
    /// What if, on a live cluster: run the scenario's events against a snapshot of this
    /// cluster (its kubeconfig; read-only, nothing is written to it) instead of starting
    /// from the scenario's objects alone.
    #[arg(long = "from-cluster", value_name = "KUBECONFIG")]
    from_cluster: Option<PathBuf>,
    /// With --from-cluster: the kubeconfig context (its current one by default).
    #[arg(long = "from-context", value_name = "NAME", requires = "from_cluster")]
    from_context: Option<String>,
    /// Write the report as JSON.
    #[arg(long, value_name = "FILE.json")]
    report: Option<PathBuf>,
    /// Fields of the scenario's objects that their kind does not have: an error (strict,
    /// as `kubectl apply`), a warning, or ignored.
    #[arg(long, value_enum, default_value_t = crate::input::ValidateArg::Strict)]
    validate: crate::input::ValidateArg,
    /// Write a self-contained HTML report (map, charts, timeline).
    #[arg(long, value_name = "FILE.html")]
    html: Option<PathBuf>,
    /// Serve the cluster over HTTP while the scenario runs, in real time times --speed.
    #[arg(long, value_name = "ADDR")]
    serve: Option<SocketAddr>,
    /// With --serve: write a kubeconfig for kubectl here.
    #[arg(long, value_name = "FILE", requires = "serve")]
    kubeconfig: Option<PathBuf>,
    /// With --serve: simulated seconds per real second.
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    speed: f64,
    /// Print detail entries too (bindings of planned pods, pod starts, other Events).
    #[arg(short, long)]
    verbose: bool,
    /// Print no timeline (only the summary and errors).
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    fail_on: FailOnArgs,
}

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Sites in all (about a tenth are sites of users).
    #[arg(long, default_value_t = 100)]
    sites: usize,
    /// Nodes, spread over the regional, metro and edge sites.
    #[arg(long, default_value_t = 2000)]
    nodes: usize,
    /// Applications (a front-end Deployment and a one-replica StatefulSet each).
    #[arg(long, default_value_t = 500)]
    apps: usize,
    /// Pods in all (default: 10 per application).
    #[arg(long)]
    pods: Option<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated time the scenario covers.
    #[arg(long, default_value = "1h")]
    duration: String,
    /// Scenario events (link degradations and repairs, node failures, scaling, ...).
    #[arg(long, default_value_t = 20)]
    events: usize,
    /// Name of the scenario.
    #[arg(long, default_value = "generated")]
    name: String,
    /// Directory to write scenario.yaml, topology.yaml, nodes.yaml and apps.yaml into.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: PathBuf,
}

/// The components the simulator runs: edgeplane's controllers, scheduler (gate mode) and
/// reference network controller on the embedded cluster's client and virtual clock
/// (crates/sim/src/controllers.rs).
fn components() -> Vec<Box<dyn Component>> {
    controllers::components(&controllers::Options::default())
}

/// `a, b, c`, or `none` when there is nothing to list.
fn joined_or(items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_string()
    } else {
        items.join(", ")
    }
}

/// What the components did, from their metrics in the OpenMetrics text format:
/// `reconciles offer 1234, binding 5678, ...; 5678 binding evaluations; 910 API writes`.
fn work_done(metrics: &str) -> String {
    let value = |line: &str| {
        line.rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    let label = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let end = line[start..].find('"')?;
        Some(line[start..start + end].to_string())
    };
    let mut reconciles = std::collections::BTreeMap::<String, u64>::new();
    let (mut evaluations, mut writes) = (0, 0);
    for line in metrics.lines() {
        if line.starts_with("edgeplane_reconciles_total{") {
            if let Some(controller) = label(line, "controller") {
                *reconciles.entry(controller).or_default() += value(line);
            }
        } else if line.starts_with("edgeplane_binding_evaluations_total ") {
            evaluations = value(line);
        } else if line.starts_with("edgeplane_api_writes_total{") {
            writes += value(line);
        }
    }
    let reconciles: Vec<String> = reconciles
        .iter()
        .map(|(controller, n)| format!("{controller} {n}"))
        .collect();
    format!(
        "reconciles {}; {evaluations} binding evaluations; {writes} API writes",
        joined_or(&reconciles, "none")
    )
}

fn run_snapshot(args: SnapshotArgs) -> anyhow::Result<ExitCode> {
    if let Err(e) = parse_duration_field(&args.duration) {
        return invalid(format!("--duration: {e}"));
    }
    let objects = match what_if::read_cluster(&args.from_cluster, args.from_context.as_deref()) {
        Ok(o) => o,
        Err(e) => {
            return invalid(format!(
                "--from-cluster {}: {e:#}",
                args.from_cluster.display()
            ));
        }
    };
    let written = what_if::write_snapshot(&objects, &args.duration, &args.output)?;
    eprintln!(
        "wrote {} objects to {} and {}; add events, then: edgeplane sim {}",
        objects.len(),
        written.cluster.display(),
        written.scenario.display(),
        written.scenario.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Command::Generate(g)) => run_generate(g),
        Some(Command::Snapshot(s)) => run_snapshot(s),
        None => run_scenario(args.run),
    }
}

fn run_scenario(args: RunArgs) -> anyhow::Result<ExitCode> {
    let Some(path) = args.scenario.clone() else {
        return invalid("a scenario file is required");
    };
    // What if: the scenario, rewritten to include the cluster's snapshot, in a directory
    // that lives as long as the run.
    let _what_if: Option<what_if::ScratchDir>;
    let path = match &args.from_cluster {
        None => path,
        Some(kubeconfig) => {
            let dir = what_if::ScratchDir::new()?;
            let objects = match what_if::read_cluster(kubeconfig, args.from_context.as_deref()) {
                Ok(o) => o,
                Err(e) => {
                    return invalid(format!("--from-cluster {}: {e:#}", kubeconfig.display()));
                }
            };
            let composed = match what_if::compose(&path, &objects, dir.path()) {
                Ok(p) => p,
                Err(e) => return invalid(e),
            };
            eprintln!(
                "[sim] what if: {} objects of the cluster of {}, read-only, with the events of {}",
                objects.len(),
                kubeconfig.display(),
                path.display()
            );
            _what_if = Some(dir);
            composed
        }
    };
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return invalid(format!("--speed: {} is not a positive number", args.speed));
    }
    let scenario = match scenario::load_with(&path, args.validate.into()) {
        Ok(s) => s,
        Err(e) => return invalid(e),
    };
    for warning in &scenario.warnings {
        eprintln!("warning: {warning}");
    }
    let components = components();
    let names: Vec<String> = components.iter().map(|c| c.name().to_string()).collect();
    if !args.quiet {
        print!("{}", text::header(&scenario, &names));
    }
    let listener = TextListener::new(std::io::stdout(), args.verbose && !args.quiet, true);
    let listener: Box<dyn edgeplane_sim::Listener> = if args.quiet {
        Box::new(edgeplane_sim::journal::Silent)
    } else {
        Box::new(listener)
    };
    let serve = args.serve.map(|addr| {
        let speed = args.speed;
        let kubeconfig = args.kubeconfig.clone();
        ServeOptions {
            addr,
            kubeconfig: args.kubeconfig.clone(),
            speed,
            on_ready: Some(Box::new(move |bound: SocketAddr| {
                eprintln!("[sim] serving the cluster on http://{bound} at {speed}x real time");
                if let Some(k) = kubeconfig {
                    eprintln!(
                        "[sim] watch it: export KUBECONFIG={}; kubectl get pods -A -o wide -w (and kubectl get cpb -A -w)",
                        k.display()
                    );
                }
            })),
        }
    });
    let report = edgeplane_sim::run(
        &scenario,
        RunOptions {
            components,
            listener,
            serve,
            start_time: None,
        },
    )
    .with_context(|| format!("running {}", path.display()))?;
    print!("{}", text::summary(&report));
    if let Some(file) = &args.report {
        let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
        write(file, &json)?;
        println!("report: {}", file.display());
    }
    if let Some(file) = &args.html {
        write(file, &edgeplane_sim::html::render(&report))?;
        println!("html report: {}", file.display());
    }
    let unmet: Vec<_> = report.expectations.iter().filter(|e| !e.met).collect();
    for e in &unmet {
        eprintln!("expectation failed: {e}");
    }
    let s = &report.summary;
    let outcome = Outcome {
        violation: s.bindings.violation,
        limit: s.bindings.limit,
        error: s.bindings.error,
        unplaced: s.pods_unplaced,
    };
    let failed = args.fail_on.report(&outcome);
    Ok(if failed || !unmet.is_empty() {
        ExitCode::from(FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn generate_options(g: &GenerateArgs) -> Result<GenerateOptions, String> {
    let duration = parse_duration_field(&g.duration).map_err(|e| format!("--duration: {e}"))?;
    Ok(GenerateOptions {
        name: g.name.clone(),
        sites: g.sites,
        nodes: g.nodes,
        apps: g.apps,
        pods: g.pods.unwrap_or(g.apps * 10),
        seed: g.seed,
        duration,
        events: g.events,
    })
}

fn run_generate(g: GenerateArgs) -> anyhow::Result<ExitCode> {
    let options = match generate_options(&g) {
        Ok(o) => o,
        Err(e) => return invalid(e),
    };
    let generated = match generate(&options) {
        Ok(x) => x,
        Err(e) => return invalid(e),
    };
    let path = generated
        .write(&g.output)
        .with_context(|| format!("writing into {}", g.output.display()))?;
    println!(
        "wrote {} ({} sites, {} nodes, {} applications, {} pods, {} events over {})",
        path.display(),
        options.sites,
        options.nodes,
        options.apps,
        options.pods,
        options.events,
        g.duration
    );
    Ok(ExitCode::SUCCESS)
}

/// `edgeplane bench sim`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 100)]
    sites: usize,
    #[arg(long, default_value_t = 2000)]
    nodes: usize,
    #[arg(long, default_value_t = 500)]
    apps: usize,
    #[arg(long, default_value_t = 5000)]
    pods: usize,
    #[arg(long, default_value = "1h")]
    duration: String,
    #[arg(long, default_value_t = 20)]
    events: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the generated scenario in this directory (a temporary one otherwise).
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Also write the HTML report here.
    #[arg(long, value_name = "FILE.html")]
    html: Option<PathBuf>,
}

/// Generates a scenario, runs it without printing the timeline, and prints the figures.
pub fn bench(b: BenchArgs) -> anyhow::Result<ExitCode> {
    let g = GenerateArgs {
        sites: b.sites,
        nodes: b.nodes,
        apps: b.apps,
        pods: Some(b.pods),
        seed: b.seed,
        duration: b.duration.clone(),
        events: b.events,
        name: "bench".into(),
        output: PathBuf::new(),
    };
    let options = match generate_options(&g) {
        Ok(o) => o,
        Err(e) => return invalid(e),
    };
    let t = Instant::now();
    let generated = match generate(&options) {
        Ok(x) => x,
        Err(e) => return invalid(e),
    };
    let (dir, temporary) = match &b.keep {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("edgeplane-bench-sim-{}", std::process::id())),
            true,
        ),
    };
    let path = generated
        .write(&dir)
        .with_context(|| format!("writing into {}", dir.display()))?;
    let generate_time = t.elapsed();
    let t = Instant::now();
    let scenario = match scenario::load(&path) {
        Ok(s) => s,
        Err(e) => return invalid(e),
    };
    let load_time = t.elapsed();
    let metrics = std::sync::Arc::new(edgeplane_runtime::metrics::Metrics::new());
    let components =
        controllers::components_with_metrics(&controllers::Options::default(), metrics.clone());
    let names: Vec<String> = components.iter().map(|c| c.name().to_string()).collect();
    let report = edgeplane_sim::run(
        &scenario,
        RunOptions {
            components,
            ..RunOptions::default()
        },
    )
    .context("running the generated scenario")?;
    let s = &report.summary;
    println!(
        "scenario: {} sites, {} nodes, {} applications, {} pods, {} events over {} (seed {})",
        options.sites,
        options.nodes,
        options.apps,
        options.pods,
        options.events,
        b.duration,
        options.seed
    );
    println!(
        "components: {}",
        joined_or(&names, "none (edgeplane's controllers not wired in)")
    );
    println!(
        "generate: {:.2} s, load and validate: {:.2} s",
        generate_time.as_secs_f64(),
        load_time.as_secs_f64()
    );
    println!(
        "run: {} simulated in {:.2} s wall ({:.0}x real time)",
        s.simulated,
        s.wall_millis as f64 / 1000.0,
        seconds(&s.simulated) / (s.wall_millis.max(1) as f64 / 1000.0)
    );
    println!(
        "pods: {} placed, {} unplaced, {} failed, {} lost; timeline: {} entries; {} scenario events ({} refused)",
        s.pods_placed,
        s.pods_unplaced,
        s.pods_failed,
        s.pods_lost,
        report.timeline.len(),
        s.scenario_events,
        s.action_failures
    );
    println!("work: {}", work_done(&metrics.encode()));
    match peak_rss() {
        Some(bytes) => println!(
            "peak RSS (VmHWM): {:.1} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        ),
        None => println!("peak RSS: unknown (no /proc/self/status)"),
    }
    if let Some(file) = &b.html {
        write(file, &edgeplane_sim::html::render(&report))?;
        println!("html report: {}", file.display());
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(ExitCode::SUCCESS)
}

fn seconds(clock: &str) -> f64 {
    clock
        .split(':')
        .fold(0.0, |acc, p| acc * 60.0 + p.parse::<f64>().unwrap_or(0.0))
        .max(Duration::from_millis(1).as_secs_f64())
}

/// Peak resident set size (VmHWM) in bytes, from /proc/self/status; `None` elsewhere.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
