//! `edgeplane bench scheduler`: the planning scheduler's steady state. A cluster of 5,000
//! nodes over 100 sites already runs 5,000 pods (a generated instance planned once by the
//! greedy baseline, kept with their offers); then applications of 5 pods arrive one at a
//! time, each gated for the planner with its offers (one to a user site, four along the
//! chain), and each arrival is one plan run through the scheduler's own code:
//!
//! 1. the cluster view as the scheduler's view cache rebuilds it after pods moved (the
//!    network graph is built once, as the cache keeps it while nodes and topology stay;
//!    the pods are placed into a copy of it);
//! 2. the planner's input built from the cached objects by
//!    `edgeplane_core::scheduler::input::build_kept`, as `observe::Facts::input` does,
//!    with the compiled objects (`scheduler::compiled::CompiledCluster`) kept from run
//!    to run as the scheduler keeps them (the first run compiles everything; it is
//!    timed too);
//! 3. `planner::plan` with the scheduler's default options;
//! 4. the writes (`scheduler::decide::placements`: the gate patches).
//!
//! What is not in it: the API server (the caches are pre-filled lists of objects, as the
//! reflectors hold them), the writes' round trips and Events, the external providers and
//! link reservations of existing bindings (none in this cluster). After each run the
//! arrival's pods are bound where they were planned, as kube-scheduler would bind them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgeplane_api::names::PLANNER_GATE;
use edgeplane_api::{ConstraintPolicy, ConstraintPolicyOffer, NetworkTopology};
use edgeplane_core::evaluate::ClusterView;
use edgeplane_core::planner::instances::{self, Size};
use edgeplane_core::planner::{self, PendingPod, PlanInput, PlanOptions, PodKey, Resources};
use edgeplane_core::scheduler::Mode;
use edgeplane_core::scheduler::compiled::CompiledCluster;
use edgeplane_core::scheduler::decide;
use edgeplane_core::scheduler::input::{self, Observed};
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use super::instance_yaml;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Nodes of the cluster (sites: one per 50 nodes).
    #[arg(long, default_value_t = 5000)]
    pub nodes: usize,
    /// Pods already running.
    #[arg(long, default_value_t = 5000)]
    pub running: usize,
    /// Applications arriving, one plan run each.
    #[arg(long, default_value_t = 200)]
    pub arrivals: usize,
    /// Pods per arriving application.
    #[arg(long = "app-pods", default_value_t = 5)]
    pub app_pods: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let setup = Instant::now();
    let size = Size {
        pods: args.running,
        nodes: args.nodes,
        sites: (args.nodes / 50).max(3),
        load: 0.45,
    };
    let inst = instances::generate(size, args.seed);
    // The running pods: where the greedy baseline puts them.
    let first = planner::plan(
        &inst.input(),
        &PlanOptions {
            strategy: planner::Strategy::Greedy,
            ..PlanOptions::default()
        },
    );
    let mut nodes: Vec<Arc<Node>> = Vec::new();
    let mut pods: Vec<Arc<Pod>> = Vec::new();
    let mut policies: Vec<Arc<ConstraintPolicy>> = Vec::new();
    let mut offers: Vec<Arc<ConstraintPolicyOffer>> = Vec::new();
    let mut topology: Option<NetworkTopology> = None;
    let planned: HashMap<&PodKey, &str> = first
        .assignments
        .iter()
        .map(|a| (&a.pod, a.node.as_str()))
        .collect();
    for object in instance_yaml::manifests(&inst).map_err(anyhow::Error::msg)? {
        match object["kind"].as_str() {
            Some("Node") => nodes.push(Arc::new(serde_json::from_value(object)?)),
            Some("NetworkTopology") => topology = Some(serde_json::from_value(object)?),
            Some("ConstraintPolicy") => policies.push(Arc::new(serde_json::from_value(object)?)),
            Some("ConstraintPolicyOffer") => offers.push(Arc::new(serde_json::from_value(object)?)),
            Some("Pod") => {
                let mut pod: Pod = serde_json::from_value(object)?;
                let key = PodKey::new(
                    pod.metadata.namespace.as_deref().unwrap_or("default"),
                    pod.metadata.name.as_deref().unwrap_or_default(),
                );
                if let Some(node) = planned.get(&key) {
                    bind(&mut pod, node);
                    pods.push(Arc::new(pod));
                }
            }
            _ => {}
        }
    }
    let Some(topology) = topology else {
        anyhow::bail!("the generated instance has no topology");
    };
    // The network graph, as the view cache keeps it while nodes and topology stay.
    let sorted: Vec<Node> = nodes.iter().map(|n| (**n).clone()).collect();
    let base = ClusterView::build(Some(&topology), &sorted, &[], jiff::Timestamp::now())?;
    let running = pods.len();
    println!(
        "cluster: {} nodes, {} sites, {} pods running, {} offers; set up in {:.1} s",
        nodes.len(),
        size.sites,
        running,
        offers.len(),
        setup.elapsed().as_secs_f64()
    );

    let options = PlanOptions::default().with_time_budget(Duration::from_secs(5));
    let users: Vec<String> = topology
        .spec
        .sites
        .iter()
        .filter(|s| s.transit == Some(false))
        .map(|s| s.name.clone())
        .collect();
    let mut times: Vec<Duration> = Vec::with_capacity(args.arrivals);
    let mut phases = [Duration::ZERO; 4];
    let (mut placed, mut asked, mut limit) = (0, 0, 0);
    // The scheduler compiles the cluster at its first run and keeps it: the steady state
    // starts compiled (the first compile is timed apart).
    let mut compiled = CompiledCluster::new(Mode::Gate);
    let first_compile = Instant::now();
    compiled.update(observed(&nodes, &pods, &policies, &offers, &topology));
    println!(
        "first compile of the cluster (once, at the scheduler's first run): {:.1} ms",
        first_compile.elapsed().as_secs_f64() * 1000.0
    );
    for i in 0..args.arrivals {
        let (new_pods, new_offers) = arrival(i, args.app_pods, &users[i % users.len().max(1)])?;
        pods.extend(new_pods);
        offers.extend(new_offers);

        let t0 = Instant::now();
        let mut view = base.clone();
        for pod in &pods {
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
            let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
            view.place(
                namespace,
                pod.metadata.name.as_deref().unwrap_or_default(),
                node,
            );
        }
        let t1 = Instant::now();
        let built = input::build_kept(
            &mut compiled,
            observed(&nodes, &pods, &policies, &offers, &topology),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        let plan_input = PlanInput {
            view: &view,
            nodes: built.nodes,
            placed: built.placed,
            pending: built.pending,
            bindings: built.bindings,
        };
        let t2 = Instant::now();
        let plan = planner::plan(&plan_input, &options);
        let t3 = Instant::now();
        // As the scheduler does: the pods this run writes to, looked up in the kept cluster.
        let by_key: HashMap<PodKey, Arc<Pod>> = compiled.pods_by_key(
            plan.assignments
                .iter()
                .map(|a| &a.pod)
                .chain(plan.unplaced.iter().map(|u| &u.pod)),
        );
        let hostnames: HashMap<&str, &str> = nodes
            .iter()
            .filter_map(|n| {
                let host = n.metadata.labels.as_ref()?.get(input::HOSTNAME_LABEL)?;
                Some((n.metadata.name.as_deref()?, host.as_str()))
            })
            .collect();
        let writes = decide::placements(&plan, Mode::Gate, &by_key, &hostnames);
        let t4 = Instant::now();
        times.push(t4 - t0);
        for (k, d) in [t1 - t0, t2 - t1, t3 - t2, t4 - t3].into_iter().enumerate() {
            phases[k] += d;
        }
        asked += plan.summary.pods;
        placed += writes.len();
        limit += plan.summary.rules_limit;
        // kube-scheduler binds them where the patches pin them.
        let at: HashMap<&PodKey, &str> = plan
            .assignments
            .iter()
            .map(|a| (&a.pod, a.node.as_str()))
            .collect();
        for pod in pods.iter_mut().rev().take(args.app_pods) {
            let key = edgeplane_core::planner::convert::pod_key(pod);
            if let Some(node) = at.get(&key) {
                let mut bound = (**pod).clone();
                bind(&mut bound, node);
                *pod = Arc::new(bound);
            }
        }
    }
    let mut sorted_times = times.clone();
    sorted_times.sort();
    let pct = |q: f64| {
        let i = ((sorted_times.len() as f64 * q).ceil() as usize).clamp(1, sorted_times.len());
        sorted_times[i - 1].as_secs_f64() * 1000.0
    };
    let n = times.len().max(1) as f64;
    println!(
        "arrivals: {} of {} pods each; {} pods planned, {} placed; rules in Limit per run {:.1}",
        times.len(),
        args.app_pods,
        asked,
        placed,
        limit as f64 / n
    );
    if !times.is_empty() {
        println!(
            "plan run: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
        println!(
            "mean per phase: view {:.1} ms, input {:.1} ms, plan {:.1} ms, writes {:.1} ms",
            phases[0].as_secs_f64() * 1000.0 / n,
            phases[1].as_secs_f64() * 1000.0 / n,
            phases[2].as_secs_f64() * 1000.0 / n,
            phases[3].as_secs_f64() * 1000.0 / n
        );
    }
    if let Some(mb) = super::peak_rss_mb() {
        println!("peak RSS (VmHWM): {mb:.1} MiB");
    }
    Ok(ExitCode::SUCCESS)
}

/// Binds a pod to a node, running, with no scheduling gate left.
/// What the scheduler's caches would hold: the cluster's objects, no network functions.
fn observed<'a>(
    nodes: &'a [Arc<Node>],
    pods: &'a [Arc<Pod>],
    policies: &'a [Arc<ConstraintPolicy>],
    offers: &'a [Arc<ConstraintPolicyOffer>],
    topology: &'a NetworkTopology,
) -> Observed<'a> {
    Observed {
        nodes,
        pods,
        policies,
        offers,
        topology: Some(topology),
        functions: edgeplane_core::nf::targets::FunctionInventory::none(),
    }
}

fn bind(pod: &mut Pod, node: &str) {
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(node.to_string());
        spec.scheduling_gates = None;
    }
    pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
        phase: Some("Running".into()),
        ..Default::default()
    });
}

/// An arriving application's pods and offers.
type Arrival = (Vec<Arc<Pod>>, Vec<Arc<ConstraintPolicyOffer>>);

/// Application `i`: `n` gated pods in a chain, the first bound to the users of `site`.
fn arrival(i: usize, n: usize, site: &str) -> anyhow::Result<Arrival> {
    let namespace = "app-0";
    let name = |k: usize| format!("arrival{i}-{k}");
    let mut pods = Vec::new();
    for k in 0..n {
        let pod = PendingPod {
            key: PodKey::new(namespace, name(k)),
            requests: Resources::pod(500, 1 << 30),
            node_selector: BTreeMap::new(),
            affinity: vec![],
            tolerations: vec![],
            labels: BTreeMap::from([("app".to_string(), format!("arrival{i}"))]),
            pod_rules: Default::default(),
        };
        let mut object = instance_yaml::pod_manifest(&pod).map_err(anyhow::Error::msg)?;
        object["spec"]["schedulingGates"] = json!([{"name": PLANNER_GATE}]);
        pods.push(Arc::new(serde_json::from_value(object)?));
    }
    let select =
        |k: usize| -> Value { json!({"matchLabels": {instance_yaml::POD_LABEL: name(k)}}) };
    let mut offers = vec![json!({
        "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicyOffer",
        "metadata": {"name": format!("arrival{i}-users"), "namespace": namespace},
        "spec": {"targets": [{"name": "front", "kind": "Pod", "labelSelector": select(0)},
                             {"name": "users", "kind": "Site", "sites": [site]}],
                 "policies": ["ps-medium"]},
    })];
    for k in 1..n {
        offers.push(json!({
            "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicyOffer",
            "metadata": {"name": format!("arrival{i}-link{k}"), "namespace": namespace},
            "spec": {"targets": [{"name": "a", "kind": "Pod", "labelSelector": select(k - 1)},
                                 {"name": "b", "kind": "Pod", "labelSelector": select(k)}],
                     "policies": ["pp-medium"]},
        }));
    }
    let offers = offers
        .into_iter()
        .map(|o| serde_json::from_value(o).map(Arc::new))
        .collect::<Result<_, _>>()?;
    Ok((pods, offers))
}
