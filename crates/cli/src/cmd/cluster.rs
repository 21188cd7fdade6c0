//! `edgeplane cluster serve`: the embedded cluster over plain HTTP on loopback, for kubectl;
//! with `--member NAME`, member clusters beside it for a hub.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use edgeplane_api::names::SYSTEM_NAMESPACE;
use edgeplane_cluster::{ClusterConfig, ClusterError, EmbeddedCluster, NodeSpec, kubeconfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// Serve an embedded cluster (real time) until interrupted.
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Address to listen on (loopback; plain HTTP).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Where to write a kubeconfig that points at the server.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Also serve a member cluster of this name (repeat for several), each on its own
    /// loopback port with the same nodes and CRDs and none of the files, for a hub
    /// (`edgeplane hub`) to place onto; its kubeconfig goes to
    /// `--kubeconfig-dir/NAME.kubeconfig`.
    #[arg(long = "member", value_name = "NAME", requires = "kubeconfig_dir")]
    members: Vec<String>,
    /// Where the members' kubeconfigs are written.
    #[arg(long, value_name = "DIR")]
    kubeconfig_dir: Option<PathBuf>,
    /// Manifests to load at start (files, directories of .yaml/.yml/.json files, or `-`).
    #[arg(short = 'f', long = "filename")]
    files: Vec<PathBuf>,
    /// Number of simulated nodes to start with (named node-0, node-1, ...).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Do not install the edgeplane CRDs.
    #[arg(long)]
    no_crds: bool,
    /// Fields an object's kind does not have (`spec.bogus`): an error (strict, as
    /// `kubectl apply`), a warning, or ignored. Kinds edgeplane has no schema for (other
    /// projects' custom resources) are not checked.
    #[arg(long, value_enum, default_value_t = crate::input::ValidateArg::Strict)]
    validate: crate::input::ValidateArg,
    /// Largest request body; larger is refused with 413 (kube-apiserver: 3 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = edgeplane_serve::http::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// A client must send a request's headers within this, else the connection is closed.
    #[arg(long, value_name = "DURATION", default_value = "32s")]
    header_read_timeout: String,
    /// A request must be read and answered within this (504 otherwise); watches stream on.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    request_timeout: String,
    /// Open connections; past it the server accepts no more until one closes.
    #[arg(long, value_name = "N", default_value_t = edgeplane_serve::http::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
}

impl ServeArgs {
    fn limits(&self) -> Result<edgeplane_serve::HttpLimits, String> {
        Ok(edgeplane_serve::HttpLimits {
            max_body_bytes: self.max_body_bytes,
            header_read_timeout: super::live::positive_duration_flag(
                "header-read-timeout",
                &self.header_read_timeout,
            )?,
            request_timeout: super::live::positive_duration_flag(
                "request-timeout",
                &self.request_timeout,
            )?,
            max_connections: self.max_connections,
        })
    }
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

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Warnings only (RUST_LOG for more): the server's own trouble, such as running out of
    // file descriptors, goes to standard error.
    super::live::init_logging_from(super::live::LogFormat::Text, "warn");
    let limits = match args.limits() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    for (i, name) in args.members.iter().enumerate() {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid || args.members[..i].contains(name) {
            eprintln!(
                "error: --member {name:?}: {}",
                if valid {
                    "given twice"
                } else {
                    "not a DNS label (lower-case letters, digits and '-', at most 63)"
                }
            );
            return Ok(ExitCode::from(2));
        }
    }
    let cluster = start_cluster(&args).await?;
    // All files in one batch, so that CRDs and Namespaces are created first whatever
    // the file order.
    let documents = match crate::input::read_documents(&args.files, args.validate) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let values: Vec<serde_json::Value> = documents.iter().map(|d| d.value.clone()).collect();
    if let Err(e) = cluster.apply_objects(values).await {
        // Name the file and object the cluster refused, not its position in the batch.
        let located = match &e {
            ClusterError::Object { index, message, .. } => documents
                .get(*index)
                .map(|d| format!("{} {}: {message}", d.location(), d.describe())),
            _ => None,
        };
        eprintln!(
            "error: loading the manifests: {}",
            located.unwrap_or(e.to_string())
        );
        return Ok(ExitCode::from(2));
    }
    let addr = cluster
        .serve_with_limits(args.listen, limits.clone())
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    if let Some(path) = &args.kubeconfig {
        std::fs::write(path, kubeconfig(addr, "default"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("embedded cluster serving on http://{addr}");
    let mut members = Vec::new();
    if let Some(dir) = &args.kubeconfig_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for name in &args.members {
            let member = start_cluster(&args).await?;
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            let addr = member
                .serve_with_limits(loopback, limits.clone())
                .await
                .with_context(|| format!("serving member {name}"))?;
            let path = dir.join(format!("{name}.kubeconfig"));
            std::fs::write(&path, kubeconfig(addr, "default"))
                .with_context(|| format!("writing {}", path.display()))?;
            println!("member cluster {name} serving on http://{addr}");
            members.push(member);
        }
    }
    super::live::shutdown_signal().await;
    cluster.shutdown().await;
    for member in members {
        member.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// A cluster with `--nodes` nodes, the system namespace and (unless `--no-crds`) the
/// edgeplane CRDs.
async fn start_cluster(args: &ServeArgs) -> anyhow::Result<EmbeddedCluster> {
    let mut config = ClusterConfig::default();
    for i in 0..args.nodes {
        config = config.with_node(NodeSpec::new(format!("node-{i}")));
    }
    let cluster = EmbeddedCluster::start(config).await;
    // The namespace the chart installs into and where the components' Leases live, so
    // that `edgeplane controller` (and the others) run against it with their defaults.
    cluster
        .apply_objects(vec![serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": SYSTEM_NAMESPACE},
        })])
        .await
        .with_context(|| format!("creating the {SYSTEM_NAMESPACE} namespace"))?;
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
    Ok(cluster)
}
