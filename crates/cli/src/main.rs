//! The `edgeplane` binary: one command per component or task.

use std::process::ExitCode;

use std::io::Write;

use clap::{CommandFactory, Parser, Subcommand};

mod cmd;
mod input;
mod output;

#[derive(Parser, Debug)]
#[command(
    name = "edgeplane",
    version,
    about = "Network-aware placement and repair for edge computing on Kubernetes",
    after_help = "Exit status: 0 done; 1 the command itself failed (I/O, a server); 2 invalid input; 3 (check, plan, sim) a --fail-on condition or a scenario's expectation held"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate manifests, print the bindings each offer would create and, for placed
    /// pods, evaluate them through the providers.
    #[command(after_help = cmd::fail_on::EXIT_STATUS)]
    Check(cmd::check::Args),
    /// Constraint providers: serve the built-in ones over gRPC.
    Provider(cmd::provider::Args),
    /// Why a pod runs (or would run) where it does: every node with its verdict, the value
    /// of each of the pod's rules there, and why the chosen node won (also `kubectl
    /// edgeplane explain pod/NAME`).
    Explain(cmd::explain::Args),
    /// The STAMP (RFC 8762) measurement agent: `reflect` answers probes, `probe` measures
    /// latency, jitter and loss to one reflector.
    Agent(cmd::agent::Args),
    /// Benchmarks that print figures.
    Bench(cmd::bench::Args),
    /// Print every edgeplane CustomResourceDefinition as YAML.
    Crds(cmd::crds::Args),
    /// Plan workloads offline and write them with their placement as node affinity.
    #[command(after_help = cmd::fail_on::EXIT_STATUS)]
    Plan(cmd::plan::Args),
    /// Run the embedded cluster (an in-process Kubernetes API with simulated nodes).
    Cluster(cmd::cluster::Args),
    /// Run the offer, binding, policy and topology controllers against a cluster.
    Controller(cmd::controller::Args),
    /// The reference network controller: serve it over gRPC.
    Netctl(cmd::netctl::Args),
    /// Place MEC applications across member clusters from a hub cluster: apply to the
    /// members directly, or hand the placement to Karmada (docs/multicluster.md).
    Hub(cmd::hub::Args),
    /// Run the planning scheduler against a cluster: gate mode (node affinity + scheduling
    /// gate, kube-scheduler binds) or bind mode (a secondary scheduler).
    Scheduler(cmd::scheduler::Args),
    /// Run the descheduler against a cluster: bindings in Violation past their grace are
    /// ignored, mitigated through the network controller, or repaired by evicting the one
    /// pod the planner can move (Eviction API, within limits).
    Descheduler(cmd::descheduler::Args),
    /// Run a scenario on the embedded cluster on virtual time and tell what happened
    /// (`edgeplane sim examples/scenarios/stadium-ar/scenario.yaml`); `sim generate`
    /// writes scenarios of any size.
    #[command(after_help = cmd::fail_on::SIM_EXIT_STATUS)]
    Sim(cmd::sim::Args),
    /// Print the version (`-o json|yaml`: with the commit, compiler and target it was built
    /// from, where known).
    Version(VersionArgs),
    /// Print a shell completion script: `source <(edgeplane completion bash)`, or see
    /// README.md for zsh and fish.
    Completion(CompletionArgs),
}

#[derive(clap::Args, Debug)]
struct VersionArgs {
    /// Output format: the version line, or everything known about the build as JSON or
    /// YAML (`kubectl version -o json|yaml`).
    #[arg(short = 'o', long = "output", value_enum)]
    output: Option<VersionFormat>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum VersionFormat {
    Json,
    Yaml,
}

/// What `edgeplane version -o json` prints; fields the build could not know are left out.
#[derive(serde::Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    git_commit: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rustc: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'static str>,
}

impl VersionInfo {
    /// From the package and from build.rs.
    fn get() -> VersionInfo {
        VersionInfo {
            version: env!("CARGO_PKG_VERSION"),
            git_commit: option_env!("EDGEPLANE_GIT_COMMIT"),
            rustc: option_env!("EDGEPLANE_RUSTC"),
            platform: option_env!("EDGEPLANE_TARGET"),
        }
    }
}

fn version(args: VersionArgs) -> anyhow::Result<ExitCode> {
    let info = VersionInfo::get();
    let text = match args.output {
        None => format!("edgeplane {}\n", info.version),
        Some(VersionFormat::Json) => format!("{}\n", serde_json::to_string_pretty(&info)?),
        Some(VersionFormat::Yaml) => serde_saphyr::to_string(&info)?,
    };
    write_stdout(text.as_bytes())
}

#[derive(clap::Args, Debug)]
struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

fn completion(args: CompletionArgs) -> anyhow::Result<ExitCode> {
    // Generated into memory: clap_complete panics when its writer fails, and a closed
    // pipe must end the command quietly (see `quiet_on_closed_output`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "edgeplane", &mut script);
    write_stdout(&script)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The exit status of a command whose reader closed its output (`edgeplane check | head`):
/// what a shell reports for a Unix tool ended by SIGPIPE (128 + 13).
const CLOSED_OUTPUT: u8 = 141;

/// Ends the process quietly when standard output is a pipe its reader closed. Unix tools
/// die of SIGPIPE there without a word; Rust ignores the signal, so writing gives
/// `EPIPE` and `println!` panics (exit 101 and a panic message). The workspace forbids
/// the `unsafe` call that would restore the signal, so the panic is caught here instead;
/// every other panic keeps the default report.
fn quiet_on_closed_output() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        // std's message for a failed `print!`: "failed printing to stdout: Broken pipe
        // (os error 32)"; the payload holds the text, not the io::Error.
        if message.starts_with("failed printing to stdout")
            && message.to_ascii_lowercase().contains("broken pipe")
        {
            std::process::exit(i32::from(CLOSED_OUTPUT));
        }
        default(info);
    }));
}

/// Whether an error is a write to a closed pipe, somewhere in its chain.
fn is_closed_output(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    quiet_on_closed_output();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => cmd::check::run(args),
        Command::Crds(args) => cmd::crds::run(args),
        Command::Provider(args) => cmd::provider::run(args),
        Command::Plan(args) => cmd::plan::run(args),
        Command::Explain(args) => cmd::explain::run(args),
        Command::Agent(args) => cmd::agent::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Cluster(args) => cmd::cluster::run(args),
        Command::Controller(args) => cmd::controller::run(args),
        Command::Netctl(args) => cmd::netctl::run(args),
        Command::Hub(args) => cmd::hub::run(args),
        Command::Scheduler(args) => cmd::scheduler::run(args),
        Command::Descheduler(args) => cmd::descheduler::run(args),
        Command::Sim(args) => cmd::sim::run(args),
        Command::Version(args) => version(args),
        Command::Completion(args) => completion(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_closed_output(&err) => ExitCode::from(CLOSED_OUTPUT),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The port a command listens on when given no address.
    fn default_port(argv: &[&str]) -> u16 {
        let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        match cli.command {
            Command::Cluster(a) => match a.command {
                cmd::cluster::Command::Serve(s) => s.listen.port(),
            },
            Command::Controller(a) => a.metrics_addr.port(),
            Command::Hub(a) => a.metrics_addr.port(),
            Command::Scheduler(a) => a.metrics_addr.port(),
            Command::Descheduler(a) => a.metrics_addr.port(),
            Command::Netctl(a) => match a.command {
                cmd::netctl::Command::Serve(s) => s.listen.port(),
            },
            Command::Provider(a) => match a.command {
                cmd::provider::Command::Serve(s) => s.listen.port(),
            },
            Command::Agent(a) => match a.command {
                cmd::agent::Command::Reflect(r) => r.listen.port(),
                cmd::agent::Command::Run(r) => r.metrics_addr.port(),
                cmd::agent::Command::Probe(_) | cmd::agent::Command::Bandwidth(_) => {
                    panic!("agent probe and bandwidth listen on nothing")
                }
            },
            other => panic!("{other:?} listens on nothing"),
        }
    }

    /// Every long-running command can run on one machine with its defaults: the embedded
    /// cluster and each component at once (docs/runtime.md runs them so).
    #[test]
    fn default_ports_do_not_clash() {
        let commands: [&[&str]; 9] = [
            &["edgeplane", "cluster", "serve"],
            &["edgeplane", "hub"],
            &["edgeplane", "controller"],
            &["edgeplane", "scheduler"],
            &["edgeplane", "descheduler"],
            &["edgeplane", "netctl", "serve"],
            &["edgeplane", "provider", "serve"],
            &["edgeplane", "agent", "reflect"],
            // Its reflector takes 862 as `agent reflect` does: one or the other runs.
            &["edgeplane", "agent", "run", "--node-name", "n1"],
        ];
        let ports: Vec<(u16, &[&str])> = commands.iter().map(|c| (default_port(c), *c)).collect();
        for (i, (port, argv)) in ports.iter().enumerate() {
            for (other, other_argv) in &ports[i + 1..] {
                assert_ne!(
                    port, other,
                    "{argv:?} and {other_argv:?} both default to port {port}"
                );
            }
        }
        assert_eq!(
            ports[0].0, 8080,
            "cluster serve keeps kubectl's default insecure port"
        );
    }
}
