//! `edgeplane agent run`: the long-running agent of the DaemonSet. It answers STAMP probes
//! (a reflector on `--listen`), probes its peers (every agent node of its site and
//! `--peers-per-remote-site` of each other site, from the Nodes and agent pods it
//! watches), runs bandwidth trains within a duty-cycle budget, serves per-peer metrics,
//! and, when it is its site's publisher, writes the site's measured links into the
//! `default` NetworkTopology's status (docs/agent.md).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use edgeplane_agent::monitor::{Monitor, MonitorConfig, Peer};
use edgeplane_agent::reflector::{Reflector, ReflectorConfig};
use edgeplane_agent::sender::{self, TrainConfig};
use edgeplane_agent::timestamp::TimestampFormat;
use edgeplane_core::measurement::{AgentNode, PairFigures, PublishPolicy, peers, publisher};
use edgeplane_runtime::context::Context;
use edgeplane_runtime::http::Readiness;
use edgeplane_runtime::measurement::{self, AgentCaches, AgentMetrics, Publisher};
use edgeplane_runtime::metrics::Metrics;
use tokio_util::sync::CancellationToken;

use super::super::live::{self, LiveArgs};
use super::{parse_listen, parse_rate};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// This node's name (the DaemonSet passes spec.nodeName).
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    pub node_name: String,
    /// Where the reflector listens; peers are probed on the same port.
    #[arg(long, default_value = "0.0.0.0:862", value_name = "ADDR", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// The namespace of the agent pods.
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "edgeplane-system",
        value_name = "NAMESPACE"
    )]
    pub namespace: String,
    /// The label selector of the agent pods (the DaemonSet's).
    #[arg(
        long,
        default_value = "app.kubernetes.io/component=agent",
        value_name = "SELECTOR"
    )]
    pub pod_selector: String,
    /// Time between two probes to one peer.
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub interval: String,
    /// Probes per peer in the sliding window (2 to 100000).
    #[arg(long, default_value_t = 60, value_name = "N",
          value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub window: u32,
    /// A peer that answers nothing for this long is stale: its figures are not published.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub stale_after: String,
    /// Representatives probed in each remote site (0 to 1000).
    #[arg(long, default_value_t = 2, value_name = "K",
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub peers_per_remote_site: u32,
    /// The publisher writes its site's links at most this often, unless they change
    /// significantly (then at most every 5 s).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub publish_interval: String,
    /// The fastest a bandwidth train is sent (the estimate cannot exceed it).
    #[arg(long, default_value = "100Mbps", value_name = "RATE", value_parser = parse_rate)]
    pub bandwidth_max_rate: f64,
    /// The share of time spent sending bandwidth trains (0 disables them; 0.001 is 11 ms
    /// of every 11 s at 100 Mbit/s).
    #[arg(long, default_value_t = 0.001, value_name = "FRACTION", value_parser = parse_duty_cycle)]
    pub bandwidth_duty_cycle: f64,
    /// Never two trains closer than this.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub bandwidth_min_interval: String,
    /// Declare this node's clock and its peers' synchronized (PTP): one-way delays are
    /// measured and published one way, not estimated as half the round trip.
    #[arg(long)]
    pub clocks_synchronized: bool,
    /// /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8085", value_name = "ADDR")]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub live: LiveArgs,
}

fn parse_duty_cycle(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=0.5).contains(&f) => Ok(f),
        _ => Err(format!("{text:?} is not a fraction between 0 and 0.5")),
    }
}

/// The agent's settings, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub monitor: MonitorConfig,
    pub per_remote_site: usize,
    pub policy: PublishPolicy,
    pub train_min_interval: Duration,
}

impl RunArgs {
    /// The configuration the flags give; the error names the flag.
    pub fn config(&self) -> Result<AgentConfig, String> {
        if self.node_name.trim().is_empty() {
            return Err("--node-name: empty (set it, or NODE_NAME)".into());
        }
        let interval = live::positive_duration_flag("interval", &self.interval)?;
        let stale_after = live::positive_duration_flag("stale-after", &self.stale_after)?;
        if stale_after <= interval {
            return Err(format!(
                "--stale-after: {} must be longer than --interval {}",
                self.stale_after, self.interval
            ));
        }
        let refresh = live::positive_duration_flag("publish-interval", &self.publish_interval)?;
        Ok(AgentConfig {
            monitor: MonitorConfig {
                interval,
                window: self.window as usize,
                // Answers later than 2 intervals (at least 1 s) count as lost.
                loss_after: (interval * 2).max(Duration::from_secs(1)).min(stale_after),
                stale_after,
                clocks_synchronized: self.clocks_synchronized,
                format: TimestampFormat::Ntp,
                ..MonitorConfig::default()
            },
            per_remote_site: self.peers_per_remote_site as usize,
            policy: PublishPolicy {
                refresh,
                min_gap: PublishPolicy::default().min_gap.min(refresh),
                ..PublishPolicy::default()
            },
            train_min_interval: live::positive_duration_flag(
                "bandwidth-min-interval",
                &self.bandwidth_min_interval,
            )?,
        })
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    args.live.init_logging();
    let config = match args.config() {
        Ok(c) => c,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    live::runtime()?.block_on(async move {
        let client = args.live.client().await?;
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::new());
        let agent_metrics = AgentMetrics::register(&metrics);
        let readiness = Readiness::default();
        let caches = AgentCaches::start(&client, &args.namespace, &args.pod_selector, &shutdown);
        {
            let caches = caches.clone();
            readiness.add("caches", move || {
                caches.nodes.is_ready() && caches.pods.is_ready() && caches.topologies.is_ready()
            });
        }
        let (http_addr, _http) = edgeplane_runtime::http::serve(
            args.metrics_addr,
            metrics.clone(),
            readiness.clone(),
            shutdown.clone(),
        )
        .await?;
        let reflector = Reflector::bind(ReflectorConfig {
            listen: args.listen,
            format: TimestampFormat::Ntp,
            synchronized: args.clocks_synchronized,
        })
        .await
        .map_err(|e| anyhow::anyhow!("listening on {} (udp): {e}", args.listen))?;
        let reflector_addr = reflector.local_addr()?;
        {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                if let Err(e) = reflector.run(shutdown.cancelled_owned()).await {
                    tracing::error!(error = %e, "the reflector stopped");
                }
            });
        }
        let ctx = Context::new(client, measurement::COMPONENT)
            .with_identity(args.node_name.clone())
            .with_metrics(metrics.clone())
            .with_shutdown(shutdown.clone());
        tracing::info!(node = %args.node_name, reflector = %reflector_addr, http = %http_addr,
            "edgeplane agent started");
        let agent = Agent {
            me: args.node_name.clone(),
            ipv6: args.listen.is_ipv6(),
            port: reflector_addr.port(),
            max_rate: args.bandwidth_max_rate,
            duty_cycle: args.bandwidth_duty_cycle,
            config,
            caches,
            metrics: agent_metrics,
            ctx,
        };
        let stop = shutdown.clone();
        tokio::spawn(async move {
            live::shutdown_signal().await;
            stop.cancel();
        });
        agent.run(shutdown.clone()).await?;
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

struct Agent {
    me: String,
    /// Probe from an IPv6 socket (the reflector listens on an IPv6 address, so the peers'
    /// pod IPs are IPv6 too).
    ipv6: bool,
    port: u16,
    max_rate: f64,
    duty_cycle: f64,
    config: AgentConfig,
    caches: AgentCaches,
    metrics: AgentMetrics,
    ctx: Context,
}

/// How often the peers are recomputed from the caches and the figures reported.
const PEERS_EVERY: Duration = Duration::from_secs(5);
const REPORT_EVERY: Duration = Duration::from_secs(5);

impl Agent {
    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tokio::select! {
            () = self.caches.wait_ready() => {}
            () = shutdown.cancelled() => return Ok(()),
        }
        let unspecified = if self.ipv6 {
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
        } else {
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
        };
        let mut monitor = Monitor::bind(unspecified, self.config.monitor.clone()).await?;
        let mut probe = tokio::time::interval(monitor.slice_interval());
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refresh_peers = tokio::time::interval(PEERS_EVERY);
        let mut report = tokio::time::interval(REPORT_EVERY);
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut publishing: Option<Publisher> = None;
        let mut site_of: BTreeMap<String, String> = BTreeMap::new();
        let mut own: Option<AgentNode> = None;
        let mut remote: Vec<AgentNode> = Vec::new();
        let mut bandwidth: BTreeMap<String, f64> = BTreeMap::new();
        let (train_tx, mut train_rx) = tokio::sync::mpsc::channel::<(String, Option<f64>)>(4);
        let mut next_train = tokio::time::Instant::now() + self.config.train_min_interval;
        let mut train_turn = 0usize;
        let mut train_running = false;
        let mut last_counters = monitor.counters();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = probe.tick() => monitor.probe_slice().await,
                r = monitor.receive() => r?,
                _ = refresh_peers.tick() => {
                    let (nodes, warnings) = self.caches.agent_nodes();
                    for w in warnings {
                        tracing::warn!("{w}");
                    }
                    own = nodes.iter().find(|n| n.name == self.me).cloned();
                    let chosen = peers(&self.me, &nodes, self.config.per_remote_site);
                    site_of = chosen.iter().map(|n| (n.name.clone(), n.site.clone())).collect();
                    remote = chosen
                        .iter()
                        .filter(|n| own.as_ref().is_some_and(|o| o.site != n.site))
                        .cloned()
                        .collect();
                    let list: Vec<Peer> = chosen
                        .iter()
                        .map(|n| Peer { name: n.name.clone(), address: SocketAddr::new(n.address, self.port) })
                        .collect();
                    monitor.set_peers(&list);
                    bandwidth.retain(|name, _| site_of.contains_key(name));
                    let publishes = own
                        .as_ref()
                        .is_some_and(|o| publisher(&o.site, &nodes) == Some(self.me.as_str()));
                    match (&own, publishes, &publishing) {
                        (Some(o), true, None) => {
                            tracing::info!(site = %o.site, "publishing the site's measured links");
                            publishing = Some(Publisher::new(o.site.clone(), self.config.policy.clone()));
                        }
                        (Some(o), true, Some(p)) if p.site() != o.site => {
                            publishing = Some(Publisher::new(o.site.clone(), self.config.policy.clone()));
                        }
                        (_, false, Some(_)) => publishing = None,
                        _ => {}
                    }
                }
                _ = report.tick() => {
                    let pairs: Vec<PairFigures> = monitor
                        .figures()
                        .iter()
                        .map(|f| measurement::pair_figures(
                            f,
                            site_of.get(&f.peer.name).map_or("", String::as_str),
                            bandwidth.get(&f.peer.name).copied(),
                        ))
                        .collect();
                    let site = own.as_ref().map_or("", |o| o.site.as_str());
                    self.metrics.update(&self.me, site, &pairs);
                    let counters = monitor.counters();
                    self.metrics.probes_sent.inc_by(counters.sent - last_counters.sent);
                    let ignored = |c: &edgeplane_agent::monitor::MonitorCounters| {
                        c.malformed + c.unknown + c.duplicates + c.inconsistent
                    };
                    self.metrics.replies_ignored.inc_by(ignored(&counters) - ignored(&last_counters));
                    last_counters = counters;
                    if let Some(p) = publishing.as_mut() {
                        let reason = match p.step(&self.ctx, &pairs).await {
                            Ok(Some(why)) => {
                                tracing::info!(?why, "published measured links");
                                Some(match why {
                                    edgeplane_core::measurement::Publish::First => "first",
                                    edgeplane_core::measurement::Publish::Refresh => "refresh",
                                    edgeplane_core::measurement::Publish::Changed(_) => "changed",
                                })
                            }
                            Ok(None) => None,
                            Err(e) => {
                                tracing::warn!(error = %e, "publishing measured links");
                                Some("error")
                            }
                        };
                        if let Some(reason) = reason {
                            self.metrics
                                .publications
                                .get_or_create(&measurement::PublicationLabels { reason: reason.into() })
                                .inc();
                        }
                    }
                }
                () = tokio::time::sleep_until(next_train), if !train_running && !remote.is_empty() => {
                    let target = &remote[train_turn % remote.len()];
                    train_turn += 1;
                    let config = TrainConfig {
                        max_bits_per_second: self.max_rate,
                        ..TrainConfig::new(SocketAddr::new(target.address, self.port))
                    };
                    // The duty-cycle budget: a train that takes t at the rate cap runs
                    // at most once every t / duty cycle (and never closer than the minimum).
                    let spacing = edgeplane_agent::bandwidth::min_train_interval(
                        config.packets,
                        config.packet_len,
                        self.max_rate,
                        self.duty_cycle,
                    )
                    .map(|d| d.max(self.config.train_min_interval));
                    match spacing {
                        Some(after) => {
                            next_train = tokio::time::Instant::now() + after;
                            train_running = true;
                            let tx = train_tx.clone();
                            let name = target.name.clone();
                            tokio::spawn(async move {
                                let estimate = match sender::train(&config).await {
                                    Ok(r) => r.estimate.map(|e| e.bits_per_second),
                                    Err(e) => {
                                        tracing::debug!(peer = %name, error = %e, "bandwidth train");
                                        None
                                    }
                                };
                                let _ = tx.send((name, estimate)).await;
                            });
                        }
                        // Trains disabled: look again in a day (the flag cannot change).
                        None => next_train = tokio::time::Instant::now() + Duration::from_secs(86_400),
                    }
                }
                Some((name, estimate)) = train_rx.recv() => {
                    train_running = false;
                    match estimate {
                        Some(bps) => { bandwidth.insert(name, bps); }
                        None => { bandwidth.remove(&name); }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: RunArgs,
    }

    fn parse(flags: &[&str]) -> Result<RunArgs, String> {
        let mut argv = vec!["x", "--node-name", "n1"];
        argv.extend(flags);
        Cli::try_parse_from(argv)
            .map(|c| c.args)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let args = parse(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(args.listen, "0.0.0.0:862".parse().expect("address"));
        assert_eq!(args.metrics_addr.port(), 8085);
        assert_eq!(args.pod_selector, "app.kubernetes.io/component=agent");
        assert_eq!(args.bandwidth_max_rate, 100e6);
        assert_eq!(args.bandwidth_duty_cycle, 0.001);
        let config = args.config().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.monitor.interval, Duration::from_secs(1));
        assert_eq!(config.monitor.window, 60);
        assert_eq!(config.monitor.loss_after, Duration::from_secs(2));
        assert_eq!(config.monitor.stale_after, Duration::from_secs(10));
        assert_eq!(config.per_remote_site, 2);
        assert_eq!(config.policy, PublishPolicy::default());
        assert_eq!(config.train_min_interval, Duration::from_secs(60));
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let config_error = |flags: &[&str]| match parse(flags) {
            Ok(args) => args.config().err().unwrap_or_default(),
            Err(e) => e,
        };
        assert_eq!(
            config_error(&["--interval", "5s", "--stale-after", "5s"]),
            "--stale-after: 5s must be longer than --interval 5s"
        );
        assert_eq!(
            config_error(&["--interval", "0s"]),
            "--interval: must be longer than 0"
        );
        assert!(
            config_error(&["--bandwidth-duty-cycle", "0.9"])
                .contains("\"0.9\" is not a fraction between 0 and 0.5"),
            "{}",
            config_error(&["--bandwidth-duty-cycle", "0.9"])
        );
        assert!(config_error(&["--window", "1"]).contains("--window"));
        assert!(config_error(&["--publish-interval", "soon"]).starts_with("--publish-interval: "));
        // A short refresh shortens the gap between significant changes with it.
        let config = parse(&["--publish-interval", "2s"])
            .and_then(|a| a.config())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.policy.min_gap, Duration::from_secs(2));
    }
}
