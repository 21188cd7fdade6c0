//! `edgeplane bench topology`: builds the network graph of a synthetic metro-style topology
//! and measures metric lookups between random node pairs. Figures are printed, never
//! asserted: docs/performance.md records them.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use edgeplane_api::network::DEFAULT_SITE_LABEL;
use edgeplane_api::{Link, NetworkTopology, NetworkTopologySpec, TopologySite};
use edgeplane_core::network::{Location, NetworkGraph, NodeId, NodeInfo};
use edgeplane_core::rng::Rng;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Sites in all: 1% regional, 10% metro, 10% of users, the rest edge.
    #[arg(long, default_value_t = 1000)]
    pub sites: usize,
    /// Nodes, spread over the regional, metro and edge sites.
    #[arg(long, default_value_t = 20_000)]
    pub nodes: usize,
    /// Metric lookups between random node pairs.
    #[arg(long, default_value_t = 1_000_000)]
    pub lookups: usize,
    /// Seed of the generator; the same seed gives the same topology.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// A latency between `low_us` and `high_us` microseconds, in steps of 10us.
fn latency(random: &mut Rng, low_us: usize, high_us: usize) -> String {
    let steps = (high_us - low_us) / 10 + 1;
    format!("{}us", low_us + 10 * random.below(steps))
}

/// A metro-style topology: regional sites in a ring, each metro site linked to two
/// regional ones, each edge site to a metro site (some to two), user sites to one or two
/// edge sites, and a few one-way shortcuts between edge sites.
pub(super) fn synthetic(args: &Args) -> (NetworkTopology, Vec<NodeInfo>, usize) {
    let mut random = Rng::new(args.seed);
    let total = args.sites.max(3);
    let users = (total / 10).max(1);
    let regional = (total / 100).max(1);
    let metro = (total / 10).max(1);
    let edge = total.saturating_sub(users + regional + metro).max(1);
    let name = |kind: &str, i: usize| format!("{kind}-{i:04}");
    let mut sites = Vec::new();
    let mut links = Vec::new();
    let mut link = |from: String, to: String, latency: String, one_way: bool| {
        links.push(Link {
            from,
            to,
            latency,
            jitter: Some("50us".into()),
            bandwidth: Some("10Gbps".into()),
            loss: Some("0.001%".into()),
            one_way,
        });
    };
    for r in 0..regional {
        sites.push(TopologySite {
            name: name("regional", r),
            labels: BTreeMap::from([("tier".to_string(), "regional".to_string())]),
            transit: None,
        });
        if regional > 1 && (r + 1 < regional || regional > 2) {
            let next = (r + 1) % regional;
            link(
                name("regional", r),
                name("regional", next),
                latency(&mut random, 5_000, 20_000),
                false,
            );
        }
    }
    for m in 0..metro {
        let first = m % regional;
        link(
            name("metro", m),
            name("regional", first),
            latency(&mut random, 5_000, 10_000),
            false,
        );
        if regional > 1 {
            let second = (first + 1 + random.below(regional - 1)) % regional;
            link(
                name("metro", m),
                name("regional", second),
                latency(&mut random, 5_000, 10_000),
                false,
            );
        }
    }
    for e in 0..edge {
        let first = random.below(metro);
        link(
            name("edge", e),
            name("metro", first),
            latency(&mut random, 2_000, 4_000),
            false,
        );
        if metro > 1 && random.below(10) == 0 {
            let second = (first + 1 + random.below(metro - 1)) % metro;
            link(
                name("edge", e),
                name("metro", second),
                latency(&mut random, 2_000, 4_000),
                false,
            );
        }
    }
    for e in 0..edge / 100 {
        let to = (e + 1 + random.below(edge.max(2) - 1)) % edge;
        if to != e {
            link(
                name("edge", e),
                name("edge", to),
                latency(&mut random, 1_000, 3_000),
                true,
            );
        }
    }
    for u in 0..users {
        sites.push(TopologySite {
            name: name("users", u),
            labels: BTreeMap::from([("kind".to_string(), "users".to_string())]),
            transit: Some(false),
        });
        let first = random.below(edge);
        link(
            name("users", u),
            name("edge", first),
            latency(&mut random, 1_000, 3_000),
            false,
        );
        if edge > 1 && random.below(2) == 0 {
            let second = (first + 1 + random.below(edge - 1)) % edge;
            link(
                name("users", u),
                name("edge", second),
                latency(&mut random, 1_000, 3_000),
                false,
            );
        }
    }
    let node_sites = regional + metro + edge;
    let nodes = (0..args.nodes)
        .map(|i| {
            let s = random.below(node_sites);
            let site = if s < regional {
                name("regional", s)
            } else if s < regional + metro {
                name("metro", s - regional)
            } else {
                name("edge", s - regional - metro)
            };
            NodeInfo {
                name: format!("node-{i:06}"),
                labels: BTreeMap::from([(DEFAULT_SITE_LABEL.to_string(), site)]),
            }
        })
        .collect();
    let topology = NetworkTopology::new(
        "bench",
        NetworkTopologySpec {
            site_label: DEFAULT_SITE_LABEL.into(),
            same_node: None,
            intra_site: None,
            sites,
            links,
            measurement_max_age: None,
        },
    );
    (topology, nodes, users)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (topology, nodes, users) = synthetic(&args);
    println!(
        "topology: {} sites ({users} of users), {} nodes, {} links, seed {}",
        args.sites.max(3),
        nodes.len(),
        topology.spec.links.len(),
        args.seed
    );
    let started = Instant::now();
    let graph = NetworkGraph::build(Some(&topology), &nodes, jiff::Timestamp::now())?;
    let build = started.elapsed();
    println!(
        "build: {:.3} s ({} sites, {} directed edges, graph tables {})",
        build.as_secs_f64(),
        graph.site_count(),
        graph.edge_count(),
        mib(graph.memory_bytes() as u64)
    );

    // Pairs are drawn before timing so that only lookups are measured.
    let mut random = Rng::new(args.seed ^ 0x5eed);
    let n = graph.node_count().max(1);
    let pairs: Vec<(NodeId, NodeId)> = (0..args.lookups)
        .map(|_| {
            (
                NodeId(random.below(n) as u32),
                NodeId(random.below(n) as u32),
            )
        })
        .collect();
    let started = Instant::now();
    let mut reachable = 0usize;
    let mut total_latency = 0f64;
    for (a, b) in &pairs {
        if let Some(m) = graph.metrics(Location::Node(*a), Location::Node(*b)) {
            reachable += 1;
            total_latency += f64::from(m.latency_ns);
        }
    }
    black_box(total_latency);
    let lookups = started.elapsed();
    let rate = args.lookups as f64 / lookups.as_secs_f64().max(1e-9);
    println!(
        "lookups: {} in {:.4} s = {:.1} M lookups/s ({:.2}% of pairs reachable, mean latency {:.2} ms)",
        args.lookups,
        lookups.as_secs_f64(),
        rate / 1e6,
        100.0 * reachable as f64 / args.lookups.max(1) as f64,
        total_latency / reachable.max(1) as f64 / 1e6
    );
    match super::rss::peak_rss_bytes() {
        Some(bytes) => println!("peak RSS (VmHWM): {}", mib(bytes)),
        None => println!("peak RSS: unknown (no /proc/self/status)"),
    }
    Ok(ExitCode::SUCCESS)
}
