//! `edgeplane netctl serve`: the reference network controller, serving the
//! network-controller protocol from a NetworkPathCatalogue in a cluster.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use edgeplane_core::clock::SystemClock;
use edgeplane_netctl::server::ServerLimits;
use edgeplane_netctl::{ReferenceConfig, ReferenceController};
use edgeplane_runtime::cache::NetworkReads;
use edgeplane_runtime::http::Readiness;
use edgeplane_runtime::metrics::Metrics;

use super::live::{self, LiveArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Serve the reference network controller over gRPC: Mitigate activates the cheapest
    /// path of a NetworkPathCatalogue that restores a binding's compliance; Discover,
    /// Allocate and Release serve the planner.
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on standard output).
    #[arg(long, default_value = "127.0.0.1:50052", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Where to serve /healthz, /readyz and /metrics; port 0 picks a free port (printed on
    /// standard output after the gRPC address).
    #[arg(
        long = "metrics-addr",
        default_value = "127.0.0.1:8084",
        value_name = "ADDR"
    )]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub live: LiveArgs,
    /// The NetworkPathCatalogue to manage.
    #[arg(long, default_value = edgeplane_api::names::DEFAULT_CATALOGUE, value_name = "NAME")]
    pub catalogue: String,
    /// The NetworkTopology to activate paths in.
    #[arg(long, default_value = "default", value_name = "NAME")]
    pub topology: String,
    /// How long an offer from Discover can be allocated.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub offer_ttl: String,
    /// Release allocations whose binding has been gone this long (`0` never does).
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub orphan_grace: String,
    /// Interval between reconciliations of the catalogue's status and the activations.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub resync: String,
    /// Calls at work at once; more are refused with RESOURCE_EXHAUSTED (callers retry).
    #[arg(long = "max-concurrent-requests", default_value_t = ServerLimits::default().max_concurrent_requests, value_name = "N")]
    pub max_concurrent_requests: usize,
    /// Open connections; past it the server accepts no more until one closes.
    #[arg(long = "max-connections", default_value_t = ServerLimits::default().max_connections, value_name = "N")]
    pub max_connections: usize,
    /// Largest request message in bytes; larger is refused with OUT_OF_RANGE.
    #[arg(long = "max-message-bytes", default_value_t = ServerLimits::default().max_message_bytes, value_name = "BYTES")]
    pub max_message_bytes: usize,
    #[command(flatten)]
    pub tls: super::tls::ServerTlsArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Serve(serve) => run_serve(serve),
    }
}

fn run_serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let parsed = (|| {
        Ok::<_, String>(ReferenceConfig {
            catalogue: args.catalogue.clone(),
            topology: args.topology.clone(),
            offer_ttl: live::duration_flag("offer-ttl", &args.offer_ttl)?,
            orphan_grace: Some(live::duration_flag("orphan-grace", &args.orphan_grace)?)
                .filter(|d| !d.is_zero()),
            resync: live::duration_flag("resync", &args.resync)?.max(Duration::from_secs(1)),
            ..ReferenceConfig::default()
        })
    })();
    let parsed = parsed.and_then(|config| Ok((config, args.tls.load()?)));
    let (config, tls) = match parsed {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    args.live.init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client = args.live.client().await?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(
            catalogue = %config.catalogue,
            topology = %config.topology,
            "serving the reference network controller"
        );
        // Nodes and bindings from watches, not listed on every operation (until they
        // have listed once, the controller lists them itself). Cancelled on return.
        let watches = tokio_util::sync::CancellationToken::new();
        let _stop_watches = watches.clone().drop_guard();
        let reads = NetworkReads::start(&client, &watches);
        // /metrics counts and times the calls answered; /readyz holds once the node and
        // binding caches have listed (before that, each call lists them itself).
        let metrics = Arc::new(Metrics::new());
        let readiness = Readiness::default();
        let caches = reads.clone();
        readiness.add("caches", move || caches.is_ready());
        let (metrics_address, http) = edgeplane_runtime::http::serve(
            args.metrics_addr,
            metrics.clone(),
            readiness,
            watches.clone(),
        )
        .await
        .with_context(|| {
            format!(
                "serving /healthz, /readyz and /metrics on {}",
                args.metrics_addr
            )
        })?;
        let controller = Arc::new(
            ReferenceController::new(client.clone(), Arc::new(SystemClock), config)
                .with_cached_reads(Arc::new(reads))
                .with_refusal_reporter(Arc::new(edgeplane_runtime::netctl::RefusalEvents::new(
                    edgeplane_runtime::context::Context::new(client, "edgeplane-netctl"),
                ))),
        );
        let served = metrics.network_controller().wrap(controller.clone());
        // The address on standard output, alone, so scripts and tests can read the port;
        // the metrics address on the next line.
        println!("listening on {address}");
        println!("metrics on {metrics_address}");
        std::io::stdout().flush()?;
        let limits = ServerLimits {
            max_concurrent_requests: args.max_concurrent_requests,
            max_connections: args.max_connections,
            max_message_bytes: args.max_message_bytes,
        };
        edgeplane_netctl::reference::serve_as(
            listener,
            controller,
            served,
            limits,
            tls,
            live::shutdown_signal(),
        )
        .await?;
        watches.cancel();
        if let Ok(Err(error)) = http.await {
            tracing::warn!(%error, "the metrics server failed");
        }
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
