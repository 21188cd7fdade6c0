//! `edgeplane cluster serve`: the embedded cluster over plain HTTP on loopback, for kubectl.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, NodeSpec, kubeconfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Serve an embedded cluster (real time) until interrupted.
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on (loopback; plain HTTP).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where to write a kubeconfig that points at the server.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Manifests to load at start (files, or directories of .yaml/.yml/.json files).
    #[arg(short = 'f', long = "filename")]
    files: Vec<PathBuf>,
    /// Number of simulated nodes to start with (named node-0, node-1, ...).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Do not install the edgeplane CRDs.
    #[arg(long)]
    no_crds: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Serve(a) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            rt.block_on(serve(a))
        }
    }
}

fn manifest_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading directory {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
            })
            .collect();
        files.sort();
        Ok(files)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = ClusterConfig::default();
    for i in 0..args.nodes {
        config = config.with_node(NodeSpec::new(format!("node-{i}")));
    }
    let cluster = EmbeddedCluster::start(config).await;
    if !args.no_crds {
        let crds = edgeplane_api::crdgen::all()
            .into_iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .context("encoding the edgeplane CRDs")?;
        cluster
            .apply_objects(crds)
            .await
            .context("installing the edgeplane CRDs")?;
    }
    for path in &args.files {
        for file in manifest_files(path)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            cluster
                .load_yaml(&text)
                .await
                .with_context(|| format!("loading {}", file.display()))?;
        }
    }
    let addr = cluster
        .serve(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    if let Some(path) = &args.kubeconfig {
        std::fs::write(path, kubeconfig(addr, "default"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("embedded cluster serving on http://{addr}");
    wait_for_signal().await;
    cluster.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
