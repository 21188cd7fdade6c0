//! `edgeplane bench agent`: one measurement agent (a reflector and a monitor on one thread,
//! as `edgeplane agent run` has them) serving `--peers` peers on loopback at `--rate`
//! probes per second each, both ways: it probes every peer's reflector, and every peer's
//! probes reach its reflector. Prints the agent thread's CPU use (as % of one core) and
//! the process's memory, first for an idle agent (no peers: the baseline, same run), then
//! loaded; and the round trip the agent measured on loopback, which bounds its
//! timestamping error: the path itself is a copy in the kernel, so what the round trip
//! holds is the time from T1 (read in user space before `send`) through the send call and
//! both kernel paths to T4 (the kernel's receive timestamp), less the reflector's own
//! processing (T3 - T2), which is removed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgeplane_agent::monitor::{Monitor, MonitorConfig, Peer};
use edgeplane_agent::packet::BASE_LEN;
use edgeplane_agent::reflector::{Reflector, ReflectorConfig};
use edgeplane_agent::sender::ProbeFigures;
use edgeplane_agent::timestamp::{self, ErrorEstimate, TimestampFormat};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Peers (1 to 5000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub peers: u32,
    /// Probes per second to each peer, and from each peer (1 to 100).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rate: u32,
    /// Seconds each phase (idle, loaded) runs (1 to 600).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
}

/// CPU time (user + system) of the calling thread, from /proc/thread-self/stat.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which may hold spaces, closed by the last ')').
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture edgeplane builds for.
    Some(Duration::from_millis(ticks * 10))
}

/// Resident set size of the process now (VmRSS), bytes.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What one phase of the agent measured about itself.
struct Phase {
    cpu: Option<Duration>,
    wall: Duration,
    rss: Option<u64>,
    figures: Vec<ProbeFigures>,
    replies: u64,
    sent: u64,
}

/// The agent: a reflector and a monitor probing `peers` on one current-thread runtime on a
/// thread of its own, for `run`; its reflector's address goes to `announce` (the peers'
/// sender) once bound.
type Announce = tokio::sync::watch::Sender<Option<SocketAddr>>;

fn agent(
    peers: Vec<Peer>,
    interval: Duration,
    run: Duration,
    announce: Option<Announce>,
) -> anyhow::Result<Phase> {
    let handle = std::thread::spawn(move || -> anyhow::Result<Phase> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let reflector = Reflector::bind(ReflectorConfig {
                listen: "127.0.0.1:0".parse()?,
                format: TimestampFormat::Ntp,
                synchronized: false,
            })
            .await?;
            if let Some(tx) = &announce {
                tx.send_replace(Some(reflector.local_addr()?));
            }
            let stop = Arc::new(tokio::sync::Notify::new());
            let stopped = stop.clone();
            let reflecting = tokio::spawn(reflector.run(async move { stopped.notified().await }));
            let mut monitor = Monitor::bind(
                "127.0.0.1:0".parse()?,
                MonitorConfig {
                    interval,
                    // The last 10 s of probes.
                    window: (10.0 / interval.as_secs_f64()).ceil() as usize,
                    ..MonitorConfig::default()
                },
            )
            .await?;
            monitor.set_peers(&peers);
            let cpu0 = thread_cpu();
            let started = Instant::now();
            monitor.run_until(tokio::time::sleep(run)).await?;
            let cpu = cpu0.zip(thread_cpu()).map(|(a, b)| b.saturating_sub(a));
            let wall = started.elapsed();
            let rss = rss_bytes();
            stop.notify_one();
            reflecting.await??;
            let counters = monitor.counters();
            Ok(Phase {
                cpu,
                wall,
                rss,
                figures: monitor
                    .figures()
                    .iter()
                    .map(|f| ProbeFigures::of(&f.summary))
                    .collect(),
                replies: counters.replies,
                sent: counters.sent,
            })
        })
    });
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the agent thread panicked"))?
}

/// The peers' reflector addresses, where to announce the agent's reflector, how to stop
/// them, and their thread.
type Peers = (
    Vec<SocketAddr>,
    Announce,
    Arc<tokio::sync::Notify>,
    std::thread::JoinHandle<anyhow::Result<()>>,
);

/// The peers: `count` reflectors, and a sender that probes the agent's reflector `count`
/// times per `interval` (once the agent's address is known), on one thread. Returns their
/// addresses, where to send the agent's address, and how to stop them.
fn peers(count: u32, interval: Duration) -> anyhow::Result<Peers> {
    let (addrs_tx, addrs_rx) = std::sync::mpsc::channel();
    let (target_tx, mut target_rx) = tokio::sync::watch::channel(None::<SocketAddr>);
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let handle = std::thread::spawn(move || -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let done = tokio_util::sync::CancellationToken::new();
            let mut addrs = Vec::new();
            for _ in 0..count {
                let r = Reflector::bind(ReflectorConfig {
                    listen: "127.0.0.1:0".parse()?,
                    format: TimestampFormat::Ntp,
                    synchronized: false,
                })
                .await?;
                addrs.push(r.local_addr()?);
                let done = done.clone();
                tokio::spawn(async move { r.run(done.cancelled_owned()).await });
            }
            addrs_tx.send(addrs)?;
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            // The peers' probes spread over the interval as the agent spreads its own.
            let slices = edgeplane_agent::monitor::SLICES_PER_INTERVAL;
            let per_slice = count.div_ceil(slices);
            let mut ticker = tokio::time::interval(interval / slices);
            let mut buf = vec![0u8; 2048];
            let mut sequence = 0u32;
            loop {
                let target = *target_rx.borrow_and_update();
                tokio::select! {
                    () = stopped.notified() => break,
                    _ = target_rx.changed() => {}
                    _ = ticker.tick(), if target.is_some() => {
                        let Some(target) = target else { continue };
                        for _ in 0..per_slice {
                            let packet = edgeplane_agent::packet::SenderPacket {
                                sequence,
                                timestamp: timestamp::now(),
                                error_estimate: ErrorEstimate::microsecond(false, TimestampFormat::Ntp),
                                ssid: 9,
                            }
                            .encode(BASE_LEN);
                            sequence = sequence.wrapping_add(1);
                            let _ = socket.send_to(&packet, target).await;
                        }
                    }
                    // The agent's answers are read and dropped.
                    _ = socket.recv_from(&mut buf) => {}
                }
            }
            done.cancel();
            anyhow::Ok(())
        })
    });
    let addrs = addrs_rx.recv()?;
    Ok((addrs, target_tx, stop, handle))
}

fn percent(cpu: Option<Duration>, wall: Duration) -> String {
    cpu.map_or("n/a".into(), |c| {
        format!("{:.2} %", c.as_secs_f64() / wall.as_secs_f64() * 100.0)
    })
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
}

fn nearest_rank(sorted: &[f64], percent: usize) -> Option<f64> {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let run = Duration::from_secs(args.seconds);
    let (addrs, target_tx, stop, peer_thread) = peers(args.peers, interval)?;
    let rss_peers = rss_bytes();

    // Baseline: the same agent with no peers and nobody probing it.
    let idle = agent(Vec::new(), interval, run, None)?;

    let list: Vec<Peer> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| Peer {
            name: format!("peer-{i}"),
            address: *a,
        })
        .collect();
    let loaded = agent(list, interval, run, Some(target_tx))?;
    stop.notify_one();
    peer_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the peers' thread panicked"))??;
    print(&args, rss_peers, &idle, &loaded);
    Ok(ExitCode::SUCCESS)
}

fn print(args: &Args, rss_peers: Option<u64>, idle: &Phase, loaded: &Phase) {
    println!(
        "edgeplane bench agent: {} peers, {} probes/s each way, {} s per phase (loopback)",
        args.peers, args.rate, args.seconds
    );
    println!(
        "idle agent (baseline): cpu {} of one core, process rss {}",
        percent(idle.cpu, idle.wall),
        mib(idle.rss)
    );
    println!(
        "loaded agent:          cpu {} of one core, process rss {} ({} with the peers alone)",
        percent(loaded.cpu, loaded.wall),
        mib(loaded.rss),
        mib(rss_peers)
    );
    println!(
        "probes: {} sent, {} answered ({:.2} %)",
        loaded.sent,
        loaded.replies,
        loaded.replies as f64 / loaded.sent.max(1) as f64 * 100.0
    );
    let mut p50: Vec<f64> = loaded
        .figures
        .iter()
        .filter_map(|f| f.rtt_us.map(|r| r.p50))
        .collect();
    let mut p99: Vec<f64> = loaded
        .figures
        .iter()
        .filter_map(|f| f.rtt_us.map(|r| r.p99))
        .collect();
    p50.sort_by(f64::total_cmp);
    p99.sort_by(f64::total_cmp);
    let show = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.1} us"));
    println!(
        "loopback round trip (bounds the timestamping error): p50 {} (median over peers), p99 {} (median over peers), worst peer p99 {}",
        show(nearest_rank(&p50, 50)),
        show(nearest_rank(&p99, 50)),
        show(p99.last().copied())
    );
}
