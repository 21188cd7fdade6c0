//! `edgeplane controller`: the offer, binding, policy-status and topology-status
//! controllers, with leader election, `/healthz`, `/readyz` and `/metrics`, against a
//! cluster given by kubeconfig or in-cluster configuration.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use edgeplane_runtime::certificates::{self, KeeperConfig, Kept};
use edgeplane_runtime::controllers::{self, Options};
use edgeplane_runtime::providers::ProviderRegistry;
use edgeplane_runtime::watchdog::{self, Watchdog, WatchdogConfig};

use super::external::ProviderArgs;
use super::live::{self, ElectionArgs, LiveArgs};
use super::scheduler::WebhookArgs;

/// The component's name: the Lease's name and the events' reporting controller.
pub const COMPONENT: &str = "edgeplane-controller";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub live: LiveArgs,
    /// Where to serve /healthz, /readyz and /metrics.
    #[arg(
        long = "metrics-addr",
        default_value = "127.0.0.1:8081",
        value_name = "ADDR"
    )]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub election: ElectionArgs,
    #[command(flatten)]
    pub providers: ProviderArgs,
    /// TLS for calls to providers.
    #[command(flatten)]
    pub grpc_tls: super::tls::GrpcClientTlsArgs,
    /// The gate webhook (gate mode of the scheduler): served here in the chart.
    #[command(flatten)]
    pub webhook: WebhookArgs,
    /// How long a pod may wait at the planner's gate while no planning scheduler is alive
    /// before the gate watchdog removes the gate (kube-scheduler then places it).
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub gate_timeout: String,
    /// Also run the NetworkFunction and ServiceChain controllers (docs/network-functions.md).
    /// They watch KubeVirt's VirtualMachines and Multus' NetworkAttachmentDefinitions, so
    /// those CRDs must be installed.
    #[arg(long)]
    pub network_functions: bool,
    #[command(flatten)]
    pub certificates: CertificateArgs,
}

/// The certificate keeper (`runtime::certificates`): one CA in `--ca-secret` that signs
/// the gate webhook's certificate and the gRPC parties' certificates, each renewed in its
/// Secret (all in the lease namespace), and the webhook configuration's caBundle.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CertificateArgs {
    /// Keep certificates renewed, signed by the CA in this Secret (created when missing).
    #[arg(long, value_name = "NAME")]
    pub ca_secret: Option<String>,
    /// The gate webhook's certificate Secret.
    #[arg(
        long,
        value_name = "NAME",
        requires_all = ["ca_secret", "webhook_configuration", "webhook_service"]
    )]
    pub webhook_certificate_secret: Option<String>,
    /// The MutatingWebhookConfiguration whose caBundle trusts the CA.
    #[arg(long, value_name = "NAME", requires = "webhook_certificate_secret")]
    pub webhook_configuration: Option<String>,
    /// The webhook's Service: the names its certificate carries.
    #[arg(long, value_name = "NAME", requires = "webhook_certificate_secret")]
    pub webhook_service: Option<String>,
    /// A gRPC party's certificate, for mutual TLS: SECRET=SERVICE (its names are the
    /// Service's; the first, SERVICE, is its identity). Repeat for each party.
    #[arg(long, value_name = "SECRET=SERVICE", requires = "ca_secret")]
    pub grpc_certificate: Vec<String>,
    /// Lifetime of a certificate; renewed with a third of it left.
    #[arg(long, default_value = "8760h", value_name = "DURATION")]
    pub certificate_validity: String,
    /// Lifetime of the CA; renewed with a third of it left.
    #[arg(long, default_value = "87600h", value_name = "DURATION")]
    pub ca_validity: String,
}

impl CertificateArgs {
    /// The keeper's configuration, when `--ca-secret` is given.
    fn config(&self, namespace: &str) -> Result<Option<KeeperConfig>, String> {
        let Some(ca_secret) = &self.ca_secret else {
            return Ok(None);
        };
        let mut certificates = Vec::new();
        if let (Some(secret), Some(service)) =
            (&self.webhook_certificate_secret, &self.webhook_service)
        {
            certificates.push(Kept::for_service(secret, service, namespace, false));
        }
        for given in &self.grpc_certificate {
            let Some((secret, service)) = given
                .split_once('=')
                .filter(|(s, v)| !s.is_empty() && !v.is_empty())
            else {
                return Err(format!(
                    "--grpc-certificate {given:?}: expected SECRET=SERVICE"
                ));
            };
            certificates.push(Kept::for_service(secret, service, namespace, true));
        }
        Ok(Some(KeeperConfig {
            namespace: namespace.to_string(),
            ca_secret: ca_secret.clone(),
            certificates,
            webhook_configuration: self.webhook_configuration.clone(),
            ca_validity: live::positive_duration_flag("ca-validity", &self.ca_validity)?,
            validity: live::positive_duration_flag(
                "certificate-validity",
                &self.certificate_validity,
            )?,
            interval: std::time::Duration::from_secs(3600),
        }))
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.live.init_logging();
    let flags = (|| {
        Ok::<_, String>((
            args.providers.parse()?,
            live::positive_duration_flag("gate-timeout", &args.gate_timeout)?,
            args.grpc_tls.load()?,
            args.certificates.config(&args.election.lease_namespace())?,
        ))
    })();
    let (mut external, gate_timeout, grpc_tls, keeper) = match flags {
        Ok(f) => f,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    external.options.tls = grpc_tls;
    live::runtime()?.block_on(async move {
        let mut base =
            live::start_base(&args.live, &args.election, COMPONENT, args.metrics_addr).await?;
        let mut registry =
            ProviderRegistry::new(base.views.builtin_provider(), external.options.clone());
        for (rule, url) in &external.providers {
            registry = registry.with_explicit(rule.clone(), url.clone());
        }
        let function_caches = args.network_functions.then(|| {
            edgeplane_runtime::cache::FunctionCaches::start(&base.ctx.client, &base.ctx.shutdown)
        });
        base.spawn(controllers::run(
            base.ctx.clone(),
            base.caches.clone(),
            base.views.clone(),
            Arc::new(registry),
            Options {
                functions: function_caches.as_ref().map(|f| f.targets()),
                ..Options::default()
            },
        ));
        if let Some(caches) = function_caches {
            let functions = controllers::nf::Functions {
                caches,
                views: base.views.clone(),
            };
            base.spawn(controllers::run_functions(
                base.ctx.clone(),
                base.caches.clone(),
                functions,
            ));
        }
        // Whether a planning scheduler is alive: the webhook gates only then, and the
        // watchdog releases gated pods when none has been for --gate-timeout.
        let scheduler = watchdog::watch_scheduler(&base.ctx, &args.election.lease_namespace());
        base.spawn(
            Watchdog::new(
                base.ctx.clone(),
                base.caches.pods.clone(),
                scheduler.clone(),
                WatchdogConfig {
                    timeout: gate_timeout,
                    ..WatchdogConfig::default()
                },
            )
            .run(),
        );
        // Before the webhook, which may wait for the certificate the keeper writes.
        if let Some(keeper) = keeper {
            base.spawn(certificates::run(base.ctx.clone(), keeper));
        }
        if let Some(task) = args
            .webhook
            .spawn(
                &base.caches.offers,
                scheduler,
                &base.ctx.metrics,
                base.ctx.shutdown.clone(),
            )
            .await?
        {
            base.spawn(async move {
                let _ = task.await;
            });
        }
        tracing::info!(
            identity = %base.ctx.identity,
            http = ?base.http_addr,
            leader_election = !args.election.no_leader_election,
            "edgeplane controller started"
        );
        live::shutdown_signal().await;
        tracing::info!("shutting down");
        base.stop().await;
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn the_certificate_keeper_is_configured_by_its_flags() {
        let cli = Cli::try_parse_from(["x"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(cli.args.certificates.config("ns"), Ok(None)));
        let err = Cli::try_parse_from(["x", "--webhook-certificate-secret", "s"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("--ca-secret"), "{err}");
        let cli = Cli::try_parse_from([
            "x",
            "--ca-secret=ca",
            "--webhook-certificate-secret=wh",
            "--webhook-configuration=c",
            "--webhook-service=svc",
            "--grpc-certificate=netctl-tls=netctl",
            "--certificate-validity=720h",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let config = cli
            .args
            .certificates
            .config("ns")
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("configured"));
        assert_eq!(
            (config.ca_secret.as_str(), config.validity),
            ("ca", std::time::Duration::from_secs(720 * 3600))
        );
        assert_eq!(
            config.certificates,
            [
                Kept::for_service("wh", "svc", "ns", false),
                Kept::for_service("netctl-tls", "netctl", "ns", true)
            ]
        );
        assert_eq!(config.certificates[1].names[2], "netctl.ns.svc");
        for (flag, says) in [
            ("--ca-validity=soon", "ca-validity"),
            ("--grpc-certificate=netctl", "expected SECRET=SERVICE"),
        ] {
            let bad = Cli::try_parse_from(["x", "--ca-secret=ca", flag])
                .unwrap_or_else(|e| panic!("{e}"));
            let message = bad.args.certificates.config("ns").err().unwrap_or_default();
            assert!(message.contains(says), "{flag}: {message}");
        }
    }

    #[test]
    fn the_gate_timeout_defaults_to_five_minutes_and_is_checked() {
        let cli = Cli::try_parse_from(["x"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.args.gate_timeout, "5m");
        assert_eq!(
            live::positive_duration_flag("gate-timeout", &cli.args.gate_timeout),
            Ok(std::time::Duration::from_secs(300))
        );
        let cli =
            Cli::try_parse_from(["x", "--gate-timeout", "90s"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.args.gate_timeout, "90s");
        assert_eq!(
            live::positive_duration_flag("gate-timeout", "0s"),
            Err("--gate-timeout: must be longer than 0".to_string())
        );
    }
}
