//! `edgeplane bench evaluate`: one pairwise rule evaluated for a binding with many targets
//! (pods spread over the nodes of a synthetic topology), as a provider's `Evaluate` does.
//! The work is linear in the targets (each pair of distinct places is judged once); this
//! prints how long it takes, never asserts it (docs/performance.md records the figures).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use edgeplane_api::{ConstraintPolicyRule, TargetRef};
use edgeplane_core::evaluate::{ClusterView, evaluate_rule};
use edgeplane_core::network::NetworkGraph;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Pod targets of the binding, spread round-robin over the nodes.
    #[arg(long, default_value_t = 10_000)]
    pub targets: usize,
    /// Sites of the synthetic topology (see `bench topology`).
    #[arg(long, default_value_t = 100)]
    pub sites: usize,
    /// Nodes of the synthetic topology: the targets are on at most this many places.
    #[arg(long, default_value_t = 200)]
    pub nodes: usize,
    /// Evaluations to time.
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let shape = super::topology::Args {
        sites: args.sites,
        nodes: args.nodes,
        lookups: 0,
        seed: args.seed,
    };
    let (topology, nodes, _) = super::topology::synthetic(&shape);
    let graph = NetworkGraph::build(Some(&topology), &nodes, jiff::Timestamp::now())?;
    let node_names: Vec<String> = (0..graph.node_count())
        .map(|i| {
            graph
                .node_name(edgeplane_core::network::NodeId(i as u32))
                .to_string()
        })
        .collect();
    let mut view = ClusterView::from_parts(graph, Vec::new());
    let mut targets = BTreeMap::new();
    for i in 0..args.targets {
        let pod = format!("p-{i:06}");
        view.place(
            "bench",
            &pod,
            node_names
                .get(i % node_names.len().max(1))
                .map(String::as_str),
        );
        targets.insert(format!("role-{i:06}"), TargetRef::pod("bench", &pod));
    }
    let rule = ConstraintPolicyRule {
        name: "latency".into(),
        request: "5ms".into(),
        limit: Some("20ms".into()),
    };
    let places = args.targets.min(node_names.len());
    println!(
        "evaluate: latency for {} targets on {places} nodes ({} pairs of targets, {} pairs of places), {} rounds",
        args.targets,
        args.targets * args.targets.saturating_sub(1) / 2,
        places * (places + 1) / 2,
        args.rounds
    );
    let started = Instant::now();
    let mut last = None;
    for _ in 0..args.rounds.max(1) {
        last = Some(evaluate_rule(&view, &targets, &rule));
    }
    let each = started.elapsed().as_secs_f64() / args.rounds.max(1) as f64;
    println!("time: {:.4} s per evaluation", each);
    if let Some(outcome) = last {
        println!(
            "outcome: {:?} {}",
            outcome.compliance,
            outcome.value.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
