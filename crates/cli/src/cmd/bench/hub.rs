//! `edgeplane bench hub`: a seeded hub instance (1,000 member clusters at 1,000 sites, 50
//! user sites, 10,000 applications of 1-5 components with latency rules by default)
//! placed by the hub planner, timed, with the process's peak memory; then, in the same
//! run, the share of applications whose constraints hold with edgeplane's placement
//! against two placements that do not know where the users are:
//!
//! - Karmada-style: each component to the region of its users (spread by region, as a
//!   PropagationPolicy's spreadConstraints would), its replicas divided over that
//!   region's clusters by static weights proportional to their cpu (Divided, weighted);
//! - OCM-style: one score per cluster (free cpu and nearness to the nearest user site of
//!   any application, as a Placement's prioritizers), each component on the best-scored
//!   cluster with room.
//!
//! The baselines' placements are judged by the hub planner as Prescriptive applications,
//! so the three are held to the same rules. Generating the instance is not timed.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use edgeplane_core::hub::instances::{self, REGION_LABEL, Size};
use edgeplane_core::hub::{self, Application, Cluster, HubInput, HubOptions, HubPlan};
use edgeplane_core::network::Location;
use edgeplane_core::planner::Resources;

use crate::output::Table;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = Size::BENCH.clusters)]
    pub clusters: usize,
    #[arg(long = "user-sites", default_value_t = Size::BENCH.user_sites)]
    pub user_sites: usize,
    #[arg(long, default_value_t = Size::BENCH.applications)]
    pub applications: usize,
    /// Seed of the instance.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let size = Size {
        clusters: args.clusters,
        user_sites: args.user_sites,
        applications: args.applications,
    };
    let instance = match instances::generate(size, args.seed) {
        Ok(i) => i,
        Err(e) => anyhow::bail!(e),
    };
    let started = Instant::now();
    let view = match hub::objects::view(
        Some(&instance.topology),
        &instance.clusters,
        jiff::Timestamp::UNIX_EPOCH,
    ) {
        Ok(v) => v,
        Err(e) => anyhow::bail!("the generated topology: {e}"),
    };
    let graph_ms = started.elapsed().as_secs_f64() * 1000.0;
    let input = HubInput {
        view: &view,
        clusters: instance.clusters.clone(),
        applications: instance.applications.clone(),
    };
    let started = Instant::now();
    let plan = hub::plan(&input, &HubOptions::default());
    let plan_ms = started.elapsed().as_secs_f64() * 1000.0;
    let peak_mb = super::rss::peak_rss_bytes().map_or(0.0, |b| b as f64 / (1024.0 * 1024.0));

    let karmada = judge(&input, karmada_style(&instance, &view));
    let ocm = judge(&input, ocm_style(&instance, &view));

    let components: usize = instance
        .applications
        .iter()
        .map(|a| a.components.len())
        .sum();
    let replicas: u64 = instance
        .applications
        .iter()
        .flat_map(|a| &a.components)
        .map(|c| u64::from(c.replicas))
        .sum();
    println!(
        "{} clusters, {} sites, {} applications, {} components, {} replicas (seed {})",
        instance.clusters.len(),
        view.graph().site_count(),
        instance.applications.len(),
        components,
        replicas,
        args.seed
    );
    println!(
        "edgeplane placement: {plan_ms:.0} ms (graph {graph_ms:.0} ms before it), peak memory {peak_mb:.0} MB"
    );
    let mut table = Table::new([
        "PLACEMENT",
        "HOLD",
        "APPS-HOLD",
        "REPLICAS-PLACED",
        "RULES-LIMIT",
        "RULES-VIOLATION",
    ]);
    for (name, plan) in [
        ("edgeplane", &plan),
        ("karmada-style", &karmada),
        ("ocm-style", &ocm),
    ] {
        let (hold, placed, limit, violation) = figures(plan);
        table.row([
            name.to_string(),
            format!(
                "{:.1}%",
                100.0 * hold as f64 / plan.applications.len().max(1) as f64
            ),
            hold.to_string(),
            placed.to_string(),
            limit.to_string(),
            violation.to_string(),
        ]);
    }
    print!("{table}");
    Ok(ExitCode::SUCCESS)
}

/// Applications whose constraints hold, replicas placed, rules in Limit and Violation.
fn figures(plan: &HubPlan) -> (usize, u64, usize, usize) {
    let mut out = (0, 0, 0, 0);
    for app in &plan.applications {
        out.0 += usize::from(app.holds());
        out.1 += app
            .placement
            .iter()
            .flat_map(|s| s.components.values())
            .map(|n| u64::from(*n))
            .sum::<u64>();
        let counts = app.rule_counts();
        out.2 += counts.limit;
        out.3 += counts.violation;
    }
    out
}

/// Judges a baseline's placements with the hub planner (Prescriptive: only checked).
fn judge(
    input: &HubInput<'_>,
    placements: Vec<BTreeMap<String, BTreeMap<String, u32>>>,
) -> HubPlan {
    let applications = input
        .applications
        .iter()
        .zip(placements)
        .map(|(app, given)| Application {
            prescribed: Some(given),
            ..app.clone()
        })
        .collect();
    hub::plan(
        &HubInput {
            view: input.view,
            clusters: input.clusters.clone(),
            applications,
        },
        &HubOptions::default(),
    )
}

/// How many replicas of `req` fit in `free`.
fn room(free: &Resources, req: &Resources) -> u32 {
    let mut n = u32::MAX;
    for (have, want) in [
        (free.cpu_millis, req.cpu_millis),
        (free.memory_bytes, req.memory_bytes),
        (free.pods, req.pods),
    ] {
        if want > 0 {
            n = n.min(u32::try_from(have.max(0) / want).unwrap_or(u32::MAX));
        }
    }
    n
}

fn take(free: &mut Resources, req: &Resources, n: u32) {
    let n = i64::from(n);
    free.cpu_millis -= req.cpu_millis * n;
    free.memory_bytes -= req.memory_bytes * n;
    free.pods -= req.pods * n;
}

/// The user site an application is bound to (its first site target).
fn users_of(app: &Application) -> Option<&str> {
    app.constraints
        .iter()
        .flat_map(|c| &c.targets)
        .find_map(|t| match t {
            hub::Target::Site(s) => Some(s.as_str()),
            hub::Target::Component(_) => None,
        })
}

/// Karmada-style: the users' region, replicas divided by static cpu weights (largest
/// remainders first), what does not fit left out.
fn karmada_style(
    instance: &instances::Instance,
    _view: &edgeplane_core::evaluate::ClusterView,
) -> Vec<BTreeMap<String, BTreeMap<String, u32>>> {
    let mut free: Vec<Resources> = instance.clusters.iter().map(|c| c.free.clone()).collect();
    let region_of = |c: &Cluster| c.labels.get(REGION_LABEL).cloned().unwrap_or_default();
    instance
        .applications
        .iter()
        .map(|app| {
            let region = users_of(app)
                .and_then(|u| instance.user_regions.get(u))
                .cloned()
                .unwrap_or_default();
            let members: Vec<usize> = (0..instance.clusters.len())
                .filter(|k| region_of(&instance.clusters[*k]) == region)
                .collect();
            let weight: Vec<f64> = members
                .iter()
                .map(|k| instance.clusters[*k].free.cpu_millis.max(0) as f64)
                .collect();
            let total: f64 = weight.iter().sum::<f64>().max(1.0);
            let mut given: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
            for component in &app.components {
                // Divided by weight: whole shares first, then the largest remainders.
                let exact: Vec<f64> = weight
                    .iter()
                    .map(|w| w / total * f64::from(component.replicas))
                    .collect();
                let mut shares: Vec<u32> = exact.iter().map(|x| x.floor() as u32).collect();
                let mut left = component.replicas - shares.iter().sum::<u32>();
                let mut order: Vec<usize> = (0..members.len()).collect();
                order.sort_by(|a, b| {
                    (exact[*b] - exact[*b].floor()).total_cmp(&(exact[*a] - exact[*a].floor()))
                });
                for i in order {
                    if left == 0 {
                        break;
                    }
                    shares[i] += 1;
                    left -= 1;
                }
                for (i, share) in shares.into_iter().enumerate() {
                    let k = members[i];
                    let n = share.min(room(&free[k], &component.requests));
                    if n > 0 {
                        take(&mut free[k], &component.requests, n);
                        given
                            .entry(instance.clusters[k].name.clone())
                            .or_default()
                            .insert(component.name.clone(), n);
                    }
                }
            }
            given
        })
        .collect()
}

/// OCM-style: one score per cluster (half free cpu relative to the largest, half
/// nearness to the nearest user site of any application), each component on the best
/// cluster with room for all its replicas.
fn ocm_style(
    instance: &instances::Instance,
    view: &edgeplane_core::evaluate::ClusterView,
) -> Vec<BTreeMap<String, BTreeMap<String, u32>>> {
    let graph = view.graph();
    let user_sites: Vec<_> = instance
        .user_regions
        .keys()
        .filter_map(|u| graph.site_id(u))
        .collect();
    let nearness: Vec<f64> = instance
        .clusters
        .iter()
        .map(|c| {
            let Some(node) = graph.node_id(&c.name) else {
                return 0.0;
            };
            let nearest = user_sites
                .iter()
                .filter_map(|s| graph.metrics(Location::Node(node), Location::Site(*s)))
                .map(|m| f64::from(m.latency_ns))
                .fold(f64::INFINITY, f64::min);
            1.0 - (nearest / 20e6).min(1.0)
        })
        .collect();
    let mut free: Vec<Resources> = instance.clusters.iter().map(|c| c.free.clone()).collect();
    instance
        .applications
        .iter()
        .map(|app| {
            let mut given: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
            for component in &app.components {
                let largest = free.iter().map(|f| f.cpu_millis).max().unwrap_or(1).max(1) as f64;
                let best = (0..free.len())
                    .filter(|k| room(&free[*k], &component.requests) >= component.replicas)
                    .max_by(|a, b| {
                        let score = |k: usize| {
                            0.5 * free[k].cpu_millis as f64 / largest + 0.5 * nearness[k]
                        };
                        score(*a).total_cmp(&score(*b)).then(b.cmp(a))
                    });
                if let Some(k) = best {
                    take(&mut free[k], &component.requests, component.replicas);
                    given
                        .entry(instance.clusters[k].name.clone())
                        .or_default()
                        .insert(component.name.clone(), component.replicas);
                }
            }
            given
        })
        .collect()
}
