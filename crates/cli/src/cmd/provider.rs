//! `edgeplane provider serve`: the built-in providers over Turnbuckle's rule-provider
//! protocol, answering from a snapshot of objects given as files (`-f`), or from a live
//! cluster (without `-f`: nodes, pods and the topology watched through `--kubeconfig` or
//! the in-cluster configuration).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use edgeplane_providers::BuiltinProvider;

use super::world::World;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Serve the built-in providers (latency, jitter, bandwidth, packet-loss, cpu, memory,
    /// node-label, node-feature) over gRPC.
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on standard output).
    #[arg(
        long = "listen",
        default_value = "127.0.0.1:50051",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,
    /// Files, directories or `-` holding the snapshot to answer from: Nodes, Pods with
    /// spec.nodeName, a NetworkTopology. Without them, answer from a live cluster.
    #[arg(short = 'f', long = "filename", num_args = 1..)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub live: super::live::LiveArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Serve(serve) => run_serve(serve),
    }
}

fn run_serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.files.is_empty() {
        return run_live(args);
    }
    let world = match World::read(&args.files, crate::input::ValidateArg::Strict) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let (view, mut warnings) = match world.view() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    warnings.extend(world.warnings());
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let (nodes, sites) = (view.graph().node_count(), view.graph().site_count());
    let provider = Arc::new(BuiltinProvider::new(Arc::new(view)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let address = listener.local_addr()?;
        eprintln!(
            "serving the built-in providers ({}) for {nodes} nodes and {sites} sites",
            BuiltinProvider::rules().join(", ")
        );
        // The address on standard output, alone, so scripts can read the port.
        println!("listening on {address}");
        std::io::stdout().flush()?;
        edgeplane_providers::server::serve(listener, provider, super::live::shutdown_signal())
            .await?;
        eprintln!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Serves from a live cluster: watches nodes, pods and the topology and answers from the
/// current view (rebuilt when they change).
fn run_live(args: ServeArgs) -> anyhow::Result<ExitCode> {
    use edgeplane_runtime::cache::Cache;
    use edgeplane_runtime::metrics::Metrics;
    use edgeplane_runtime::view::ViewCache;
    use kube::Api;
    use kube::runtime::watcher;

    args.live.init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client = args.live.client().await?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let nodes = Cache::spawn(Api::all(client.clone()), watcher::Config::default(), shutdown.clone());
        let pods = Cache::spawn(Api::all(client.clone()), watcher::Config::default(), shutdown.clone());
        let topologies = Cache::spawn(Api::all(client.clone()), watcher::Config::default(), shutdown.clone());
        let views = ViewCache::start(
            &nodes,
            &pods,
            &topologies,
            Arc::new(edgeplane_core::clock::SystemClock),
            Arc::new(Metrics::new()),
            shutdown.clone(),
        );
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let address = listener.local_addr()?;
        tokio::select! {
            _ = async { nodes.wait_ready().await; pods.wait_ready().await; topologies.wait_ready().await } => {}
            _ = super::live::shutdown_signal() => return anyhow::Ok(ExitCode::SUCCESS),
        }
        match views.view() {
            Ok(view) => eprintln!(
                "serving the built-in providers ({}) from the cluster: {} nodes and {} sites now",
                BuiltinProvider::rules().join(", "),
                view.graph().node_count(),
                view.graph().site_count()
            ),
            Err(e) => eprintln!("warning: {e} (network rules answer Error until it is fixed)"),
        }
        println!("listening on {address}");
        std::io::stdout().flush()?;
        edgeplane_providers::server::serve(listener, views.builtin_provider(), super::live::shutdown_signal()).await?;
        shutdown.cancel();
        eprintln!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
