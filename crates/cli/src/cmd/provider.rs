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
use edgeplane_providers::server::ServerLimits;

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
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub tls: super::tls::ServerTlsArgs,
}

/// What one client may ask of the server, and how much it does at once.
#[derive(clap::Args, Debug)]
pub struct LimitArgs {
    /// Targets of one Evaluate (and peers of one EndpointCost); more is refused with
    /// INVALID_ARGUMENT.
    #[arg(long = "max-targets", default_value_t = ServerLimits::default().max_targets, value_name = "N")]
    pub max_targets: usize,
    /// Eligible nodes of one EndpointCost; more is refused with INVALID_ARGUMENT.
    #[arg(long = "max-nodes", default_value_t = ServerLimits::default().max_nodes, value_name = "N")]
    pub max_nodes: usize,
    /// Calls at work at once; more are refused with RESOURCE_EXHAUSTED (callers retry).
    #[arg(long = "max-concurrent-requests", default_value_t = ServerLimits::default().max_concurrent_requests, value_name = "N")]
    pub max_concurrent_requests: usize,
    /// Open connections; past it the server accepts no more until one closes.
    #[arg(long = "max-connections", default_value_t = ServerLimits::default().max_connections, value_name = "N")]
    pub max_connections: usize,
    /// Largest request message in bytes; larger is refused with OUT_OF_RANGE.
    #[arg(long = "max-message-bytes", default_value_t = ServerLimits::default().max_message_bytes, value_name = "BYTES")]
    pub max_message_bytes: usize,
}

impl LimitArgs {
    fn limits(&self) -> ServerLimits {
        ServerLimits {
            max_targets: self.max_targets,
            max_nodes: self.max_nodes,
            max_concurrent_requests: self.max_concurrent_requests,
            max_connections: self.max_connections,
            max_message_bytes: self.max_message_bytes,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Serve(serve) => run_serve(serve),
    }
}

fn run_serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let tls = match args.tls.load() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.files.is_empty() {
        return run_live(args, tls);
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
        edgeplane_providers::server::serve(
            listener,
            provider,
            args.limits.limits(),
            tls,
            super::live::shutdown_signal(),
        )
        .await?;
        eprintln!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Serves from a live cluster: watches nodes, pods and the topology and answers from the
/// current view (rebuilt when they change).
fn run_live(
    args: ServeArgs,
    tls: Option<Arc<edgeplane_serve::tls::ServerTls>>,
) -> anyhow::Result<ExitCode> {
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
        edgeplane_providers::server::serve(listener, views.builtin_provider(), args.limits.limits(), tls, super::live::shutdown_signal()).await?;
        shutdown.cancel();
        eprintln!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
