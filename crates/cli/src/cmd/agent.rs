//! `edgeplane agent`: the STAMP (RFC 8762) measurement agent's diagnostic verbs, which
//! need no API server: `reflect` answers probes, `probe` measures one peer and prints the
//! figures, `bandwidth` estimates a path's rate from a packet train (docs/agent.md).

use std::io::Write;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use edgeplane_agent::packet::BASE_LEN;
use edgeplane_agent::reflector::{Reflector, ReflectorConfig, ReflectorCounters};
use edgeplane_agent::sender::{self, ProbeFigures, ProbeReport, SenderConfig, TrainConfig};
use edgeplane_agent::timestamp::TimestampFormat;

use super::live;

pub mod run;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// The long-running agent (the Helm chart's DaemonSet): reflects, probes its peers from
    /// the API server, serves per-peer metrics, and publishes its site's measured links
    /// into the NetworkTopology status.
    Run(Box<run::RunArgs>),
    /// Be a STAMP Session-Reflector (stateless) until interrupted; the first line of
    /// standard output is `listening on ADDR`.
    Reflect(ReflectArgs),
    /// Probe one STAMP reflector (any RFC 8762 implementation) and print round-trip
    /// latency, one-way latency, jitter and loss.
    Probe(ProbeArgs),
    /// Estimate the bandwidth towards one STAMP reflector from the dispersion of a short
    /// packet train (sent no faster than --max-rate).
    Bandwidth(BandwidthArgs),
}

#[derive(clap::Args, Debug)]
pub struct BandwidthArgs {
    /// The reflector: `IP:PORT`, `HOST:PORT`, or an IP or host alone for port 862.
    #[arg(long, value_name = "ADDR", value_parser = parse_target)]
    pub target: SocketAddr,
    /// Packets in the train (4 to 10000).
    #[arg(long, default_value_t = 100, value_name = "N",
          value_parser = clap::value_parser!(u32).range(4..=10_000))]
    pub packets: u32,
    /// Octets per packet (44 to 65507).
    #[arg(long, default_value_t = 1400, value_name = "OCTETS",
          value_parser = clap::value_parser!(u16).range(BASE_LEN as i64..=65_507))]
    pub size: u16,
    /// The fastest the train is sent (`100Mbps`, `1Gbps`): the estimate cannot exceed it,
    /// and no path is flooded faster than this.
    #[arg(long = "max-rate", default_value = "1Gbps", value_name = "RATE", value_parser = parse_rate)]
    pub max_rate: f64,
    /// How long answers are awaited after the last packet.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub wait: Duration,
    /// Output format: text, or json `{sent, received, bitsPerSecond,
    /// senderBitsPerSecond, senderLimited, trainUs}`.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(clap::Args, Debug)]
pub struct ReflectArgs {
    /// Address to listen on (`IP`, `IP:PORT`); the STAMP port 862 needs
    /// CAP_NET_BIND_SERVICE; port 0 picks a free port.
    #[arg(long, default_value = "0.0.0.0:862", value_name = "ADDR", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// The format of the reflector's timestamps (senders read it from the Z bit).
    #[arg(long = "timestamp-format", value_enum, default_value_t = Format::Ntp)]
    pub timestamp_format: Format,
    /// Declare this host's clock synchronized to UTC (sets the S bit).
    #[arg(long = "clock-synchronized")]
    pub clock_synchronized: bool,
}

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// The reflector: `IP:PORT`, `HOST:PORT`, or an IP or host alone for port 862.
    #[arg(long, value_name = "ADDR", value_parser = parse_target)]
    pub target: SocketAddr,
    /// Probes to send (1 to 1000000: every probe is kept until the figures are printed).
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: u32,
    /// Time between probes (`10ms`, `250us`, `1s`).
    #[arg(long, default_value = "10ms", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// How long answers are awaited after the last probe; later ones count as lost.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub wait: Duration,
    /// Octets per probe (44 to 65507): padding makes both directions this size.
    #[arg(long, default_value_t = BASE_LEN as u16, value_name = "OCTETS",
          value_parser = clap::value_parser!(u16).range(BASE_LEN as i64..=65_507))]
    pub size: u16,
    /// The format of the probes' timestamps.
    #[arg(long = "timestamp-format", value_enum, default_value_t = Format::Ntp)]
    pub timestamp_format: Format,
    /// Declare both clocks synchronized (PTP, NTP): one-way latency is then measured
    /// (reflector receive minus sender transmit), not estimated as half the round trip.
    #[arg(long = "clocks-synchronized")]
    pub clocks_synchronized: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// NTP 64-bit (seconds since 1900 and a binary fraction).
    Ntp,
    /// PTPv2 truncated (seconds since 1970 and nanoseconds).
    Ptp,
}

impl From<Format> for TimestampFormat {
    fn from(f: Format) -> TimestampFormat {
        match f {
            Format::Ntp => TimestampFormat::Ntp,
            Format::Ptp => TimestampFormat::Ptp,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    /// `{sent, received, lossRatio, rttUs: {min, mean, p50, p90, p99, max}, jitterUs:
    /// {ipdv, interarrival}, oneWayUs}`, durations in microseconds.
    Json,
}

/// `IP:PORT`, or an IP alone for the STAMP port.
pub(crate) fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, edgeplane_agent::DEFAULT_PORT)))
        .map_err(|_| format!("{text:?} is not an address to listen on (IP or IP:PORT, such as 0.0.0.0:862 or [::]:862)"))
}

/// A listen address, or a host name (resolved once, first address), with or without a
/// port.
fn parse_target(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = parse_listen(text) {
        if addr.port() == 0 || addr.ip().is_unspecified() {
            return Err(format!(
                "{text:?} names no reflector (port 0 or an unspecified address)"
            ));
        }
        return Ok(addr);
    }
    let (host, _) = text.rsplit_once(':').unwrap_or((text, ""));
    let host_name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !host_name {
        // Checked before resolving, so that a typo never becomes a DNS query.
        return Err(format!(
            "{text:?} is not a reflector address (IP, IP:PORT, HOST or HOST:PORT)"
        ));
    }
    let with_port = if text
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        text.to_string()
    } else {
        format!("{text}:{}", edgeplane_agent::DEFAULT_PORT)
    };
    match with_port.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{text:?} resolves to no address")),
        Err(e) => Err(format!(
            "{text:?} is not a reflector address (IP, IP:PORT, HOST or HOST:PORT): {e}"
        )),
    }
}

/// A bit rate, bits per second, more than zero.
pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    use edgeplane_core::values::{Unit, Value};
    match Value::parse(text, Unit::BitRate).map_err(|e| e.to_string())? {
        Value::Quantity { magnitude, .. } if magnitude > 0.0 => Ok(magnitude),
        _ => Err(format!("{text:?} must be more than zero")),
    }
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = edgeplane_core::values::parse_duration_field(text).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(d)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let args = match args.command {
        Command::Run(a) => return run::run(*a),
        other => other,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    match args {
        Command::Run(_) => unreachable!("handled above"),
        Command::Reflect(a) => runtime.block_on(reflect(a)),
        Command::Probe(a) => runtime.block_on(probe(a)),
        Command::Bandwidth(a) => runtime.block_on(bandwidth(a)),
    }
}

async fn bandwidth(args: BandwidthArgs) -> anyhow::Result<ExitCode> {
    let config = TrainConfig {
        packets: args.packets,
        packet_len: usize::from(args.size),
        max_bits_per_second: args.max_rate,
        wait: args.wait,
        ..TrainConfig::new(args.target)
    };
    let report = sender::train(&config)
        .await
        .with_context(|| format!("sending a train to {}", args.target))?;
    let text = match (&report.estimate, args.output) {
        (Some(e), Output::Json) => format!("{}\n", serde_json::to_string_pretty(e)?),
        (None, Output::Json) => format!(
            "{}\n",
            serde_json::json!({"sent": report.sent, "received": report.received,
                "bitsPerSecond": null, "senderBitsPerSecond": null, "senderLimited": null, "trainUs": null})
        ),
        (Some(e), Output::Text) => {
            let rate = |bps: f64| {
                edgeplane_core::values::Value::quantity(edgeplane_core::values::Unit::BitRate, bps)
                    .to_string()
            };
            let mut t = format!(
                "bandwidth to {}: {} ({} of {} packets of {} octets arrived over {:.1} ms)\n",
                args.target,
                rate(e.bits_per_second),
                e.received,
                e.sent,
                args.size,
                e.train_us / 1000.0
            );
            if e.sender_limited {
                t += &format!(
                    "sender-limited: the train left at {} and arrived as fast, so the path may carry more (raise --max-rate)\n",
                    rate(e.sender_bits_per_second)
                );
            }
            t
        }
        (None, Output::Text) => format!(
            "bandwidth to {}: not measured ({} of {} packets came back; at least 4 are needed)\n",
            args.target, report.received, report.sent
        ),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(if report.estimate.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn reflect(args: ReflectArgs) -> anyhow::Result<ExitCode> {
    let reflector = Reflector::bind(ReflectorConfig {
        listen: args.listen,
        format: args.timestamp_format.into(),
        synchronized: args.clock_synchronized,
    })
    .await
    .with_context(|| format!("listening on {} (udp)", args.listen))?;
    let addr = reflector.local_addr()?;
    {
        // The first line names the address, for scripts and tests that chose port 0 (the
        // wording of the other servers' first line).
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }
    let counters = reflector.counters();
    reflector.run(live::shutdown_signal()).await?;
    let get = ReflectorCounters::get;
    eprintln!(
        "reflected {}, too short {}, truncated {}, send errors {}, user-space timestamps {}",
        get(&counters.reflected),
        get(&counters.too_short),
        get(&counters.truncated),
        get(&counters.send_errors),
        get(&counters.user_space_timestamps),
    );
    Ok(ExitCode::SUCCESS)
}

async fn probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let config = SenderConfig {
        interval: args.interval,
        wait: args.wait,
        packet_len: usize::from(args.size),
        format: args.timestamp_format.into(),
        clocks_synchronized: args.clocks_synchronized,
        ..SenderConfig::new(args.target, args.count)
    };
    let report = sender::probe(&config)
        .await
        .with_context(|| format!("probing {}", args.target))?;
    let figures = ProbeFigures::of(&report.summary);
    let text = match args.output {
        Output::Json => format!("{}\n", serde_json::to_string_pretty(&figures)?),
        Output::Text => text(args.target, &report),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    // As ping: no answer at all is a failure of the command, the figures still printed.
    Ok(if report.summary.received == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn us(ns: f64) -> String {
    format!("{:.1}", ns / 1000.0)
}

fn text(target: SocketAddr, report: &ProbeReport) -> String {
    let (s, c) = (&report.summary, &report.counters);
    let mut t = format!(
        "STAMP probe of {target}: {} sent, {} received, {:.2}% loss\n",
        s.sent,
        s.received,
        s.loss_ratio.unwrap_or(0.0) * 100.0
    );
    match s.rtt {
        Some(r) => {
            t += &format!(
                "round trip (us): min {}  mean {}  p50 {}  p90 {}  p99 {}  max {}  (reflector processing removed)\n",
                us(r.min_ns as f64),
                us(r.mean_ns),
                us(r.p50_ns as f64),
                us(r.p90_ns as f64),
                us(r.p99_ns as f64),
                us(r.max_ns as f64)
            )
        }
        None => t += "round trip: no answer\n",
    }
    if let Some(o) = s.one_way {
        if o.estimated {
            t += &format!(
                "one way (us):    p90 {} (half the p90 round trip: clocks not declared synchronized)\n",
                us(o.forward_p90_ns)
            );
        } else {
            t += &format!(
                "one way (us):    p90 forward {}  backward {}\n",
                us(o.forward_p90_ns),
                us(o.backward_p90_ns)
            );
        }
    }
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), us);
    t += &format!(
        "jitter (us):     IPDV {} (mean |IPDV|, forward)  interarrival {} (RFC 3550)\n",
        opt(s.ipdv_ns),
        opt(s.interarrival_jitter_ns)
    );
    if let Some(ttl) = report.sender_ttl {
        // Probes leave with TTL 255 (RFC 8762's Session-Sender TTL).
        t += &format!(
            "hops:            {} (probes reached the reflector with TTL {ttl})\n",
            255 - u16::from(ttl)
        );
    }
    t += &format!(
        "reordered {}, duplicates {}, malformed {}, unknown {}, inconsistent {}, send errors {}\n",
        s.reordered, s.duplicates, c.malformed, c.unknown, c.inconsistent, c.send_errors
    );
    t
}
