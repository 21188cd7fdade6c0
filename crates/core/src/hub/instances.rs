//! Seeded random hub instances for the benchmark (`edgeplane bench hub`).
//!
//! Regions of 100 sites each: a region site, 9 metro sites below it and 10 edge sites
//! below each metro, one member cluster per site (edges small, metros larger, the region
//! largest). Regions form a ring. User sites hang off two edges of one region and carry
//! no transit traffic. Applications have 1-5 components of 1-3 replicas; the first is
//! bound to a user site by a latency rule, each later one either to the component before
//! it or to the same users.

use std::collections::BTreeMap;

use edgeplane_api::{ConstraintPolicyRule, NetworkTopology};
use serde_json::json;

use super::{Application, Cluster, Component, Constraint, Target};
use crate::planner::Resources;
use crate::rng::Rng;

/// The label naming a cluster's region, as Karmada's `Cluster.spec.region` would.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// Member clusters, one per site (rounded up to whole regions of 100).
    pub clusters: usize,
    pub user_sites: usize,
    pub applications: usize,
}

impl Size {
    /// The benchmark: 1,000 clusters, 50 user sites, 10,000 applications.
    pub const BENCH: Size = Size {
        clusters: 1000,
        user_sites: 50,
        applications: 10_000,
    };
}

#[derive(Clone, Debug)]
pub struct Instance {
    pub topology: NetworkTopology,
    pub clusters: Vec<Cluster>,
    pub applications: Vec<Application>,
    /// The region of each user site.
    pub user_regions: BTreeMap<String, String>,
}

const GI: i64 = 1 << 30;

fn ms(rng: &mut Rng, lo: f64, hi: f64) -> String {
    format!("{:.1}ms", rng.range(lo, hi))
}

/// A deterministic instance for a size and seed (an error only if the generated topology
/// does not read, which would be a bug here).
pub fn generate(size: Size, seed: u64) -> Result<Instance, String> {
    let mut rng = Rng::new(seed);
    let regions = size.clusters.div_ceil(100).max(1);
    let mut sites = Vec::new();
    let mut links = Vec::new();
    let mut clusters = Vec::new();
    let mut edges_of_region: Vec<Vec<String>> = vec![Vec::new(); regions];
    let mut add_cluster = |rng: &mut Rng, site: &str, region: usize, tier: &str| {
        let (cpu, pods) = match tier {
            "edge" => (16 + rng.below(49) as i64, 110),
            "metro" => (256 + rng.below(257) as i64, 1100),
            _ => (2048 + rng.below(2049) as i64, 5000),
        };
        let used = rng.range(0.1, 0.3);
        let free_cpu = ((cpu as f64) * (1.0 - used)) as i64;
        clusters.push(Cluster {
            name: format!("c-{site}"),
            site: site.to_string(),
            labels: BTreeMap::from([
                (REGION_LABEL.to_string(), format!("r{region}")),
                ("tier".to_string(), tier.to_string()),
            ]),
            taints: Vec::new(),
            ready: true,
            free: Resources {
                cpu_millis: free_cpu * 1000,
                memory_bytes: free_cpu * 4 * GI,
                pods: pods - (pods as f64 * used) as i64,
                extended: BTreeMap::new(),
            },
        });
    };
    for (r, region_edges) in edges_of_region.iter_mut().enumerate() {
        let region = format!("r{r}");
        sites.push(json!({"name": region}));
        add_cluster(&mut rng, &region, r, "region");
        for m in 0..9 {
            let metro = format!("r{r}-m{m}");
            sites.push(json!({"name": metro}));
            links.push(json!({"from": metro, "to": region, "latency": ms(&mut rng, 4.0, 8.0)}));
            add_cluster(&mut rng, &metro, r, "metro");
            for e in 0..10 {
                let edge = format!("r{r}-m{m}-e{e}");
                sites.push(json!({"name": edge}));
                links.push(json!({"from": edge, "to": metro, "latency": ms(&mut rng, 2.0, 5.0)}));
                add_cluster(&mut rng, &edge, r, "edge");
                region_edges.push(edge);
            }
        }
        // A ring; two regions are joined once.
        if regions > 2 || (regions == 2 && r == 0) {
            let next = format!("r{}", (r + 1) % regions);
            links.push(json!({"from": region, "to": next, "latency": ms(&mut rng, 15.0, 30.0)}));
        }
    }
    let mut user_regions = BTreeMap::new();
    let mut users = Vec::new();
    for u in 0..size.user_sites {
        let name = format!("users-{u}");
        let r = rng.below(regions);
        sites.push(json!({"name": name, "transit": false}));
        // Two different edges of the region.
        let edges = &edges_of_region[r];
        let first = rng.below(edges.len());
        let second = (first + 1 + rng.below(edges.len() - 1)) % edges.len();
        for e in [first, second] {
            let edge = &edges[e];
            links.push(json!({"from": name, "to": edge, "latency": ms(&mut rng, 1.0, 3.0)}));
        }
        user_regions.insert(name.clone(), format!("r{r}"));
        users.push(name);
    }
    let topology: NetworkTopology = serde_json::from_value(json!({
        "apiVersion": "network.edgeplane.io/v1alpha1",
        "kind": "NetworkTopology",
        "metadata": {"name": "hub"},
        "spec": {"sites": sites, "links": links}
    }))
    .map_err(|e| format!("the generated topology does not read: {e}"))?;
    let latency = |rng: &mut Rng, request: (f64, f64), slack: (f64, f64)| {
        let request = rng.range(request.0, request.1);
        let limit = request + rng.range(slack.0, slack.1);
        ConstraintPolicyRule {
            name: "latency".into(),
            request: format!("{request:.1}ms"),
            limit: Some(format!("{limit:.1}ms")),
        }
    };
    let applications = (0..size.applications)
        .map(|a| {
            let count = 1 + rng.below(5);
            let user = users
                .get(rng.below(users.len().max(1)))
                .cloned()
                .unwrap_or_default();
            let mut components = Vec::new();
            let mut constraints = Vec::new();
            for i in 0..count {
                let replicas = 1 + rng.below(3) as u32;
                let max = (1 + rng.below(3) as u32).min(replicas);
                let min = if replicas >= 2 && rng.chance(0.2) {
                    2
                } else {
                    1
                };
                let cpu = 250 * (1 + rng.below(6) as i64);
                components.push(Component {
                    name: format!("c{i}"),
                    replicas,
                    requests: Resources::pod(cpu, cpu * 4 * (GI / 1000)),
                    tolerations: Vec::new(),
                    min_clusters: min,
                    max_clusters: max.max(min),
                });
                let this = Target::Component(format!("c{i}"));
                let (policy, other, rule) = if i > 0 && (users.is_empty() || rng.chance(0.6)) {
                    (
                        "near-peer",
                        Target::Component(format!("c{}", i - 1)),
                        latency(&mut rng, (1.0, 3.0), (5.0, 12.0)),
                    )
                } else if users.is_empty() {
                    continue;
                } else if i == 0 {
                    (
                        "near-users",
                        Target::Site(user.clone()),
                        latency(&mut rng, (3.0, 8.0), (2.0, 10.0)),
                    )
                } else {
                    (
                        "near-users",
                        Target::Site(user.clone()),
                        latency(&mut rng, (5.0, 10.0), (5.0, 10.0)),
                    )
                };
                let targets = vec![this, other];
                constraints.push(Constraint {
                    policy: policy.to_string(),
                    targets,
                    rules: vec![rule],
                });
            }
            Application {
                namespace: format!("ns-{}", a % 100),
                name: format!("app-{a}"),
                components,
                constraints,
                prescribed: None,
            }
        })
        .collect();
    Ok(Instance {
        topology,
        clusters,
        applications,
        user_regions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_deterministic_and_have_the_asked_size() {
        let size = Size {
            clusters: 200,
            user_sites: 5,
            applications: 30,
        };
        let a = generate(size, 7).unwrap_or_else(|e| panic!("{e}"));
        let b = generate(size, 7).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.clusters, b.clusters);
        assert_eq!(a.applications, b.applications);
        assert_eq!(a.clusters.len(), 200);
        assert_eq!(a.topology.spec.sites.len(), 205);
        assert_eq!(a.applications.len(), 30);
        assert!(a.applications.iter().all(|app| {
            (1..=5).contains(&app.components.len())
                && matches!(app.constraints[0].targets[1], Target::Site(_))
        }));
        let c = generate(size, 8).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(c.applications, a.applications);
    }
}
