//! A scenario generator for scale: a metro-shaped network of `sites` sites (about a tenth
//! of them user populations), `nodes` nodes spread over the regional, metro and edge sites,
//! `apps` applications with `pods` pods in all (a front-end Deployment near its users and
//! a one-replica StatefulSet holding its state, with latency policies and offers), and
//! `events` events over `duration` (link degradations and repairs, node failures and
//! recoveries, scaling, new and removed applications). Seeded: the same options give the
//! same files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::scenario::{API_VERSION, KIND};

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub name: String,
    pub sites: usize,
    pub nodes: usize,
    pub apps: usize,
    /// Pods in all (front-end replicas plus one state pod per application).
    pub pods: usize,
    pub seed: u64,
    pub duration: Duration,
    pub events: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            name: "generated".into(),
            sites: 100,
            nodes: 2000,
            apps: 500,
            pods: 5000,
            seed: 1,
            duration: Duration::from_secs(3600),
            events: 20,
        }
    }
}

/// Files of a generated scenario: `(file name, YAML text)`; `scenario.yaml` first.
#[derive(Debug, Clone)]
pub struct Generated {
    pub files: Vec<(String, String)>,
}

impl Generated {
    /// Writes the files into `dir` (created if missing); returns the scenario's path.
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        for (name, text) in &self.files {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(dir.join("scenario.yaml"))
    }
}

/// Why options cannot make a scenario.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenerateError {
    #[error("--sites must be at least 3 (a regional site, a metro site and one of users)")]
    TooFewSites,
    #[error("--nodes must be at least the number of regional and metro sites ({0})")]
    TooFewNodes(usize),
    #[error("--apps must be at least 1")]
    NoApps,
    #[error("--pods must be at least 2 per app ({0})")]
    TooFewPods(usize),
    #[error("--duration must be longer than 0")]
    NoDuration,
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}

struct Site {
    name: String,
    tier: &'static str,
}

fn ms(x: f64) -> String {
    let v = (x * 10.0).round() / 10.0;
    if (v - v.round()).abs() < 1e-9 {
        format!("{}ms", v.round() as i64)
    } else {
        format!("{v}ms")
    }
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// YAML text of objects: one document each when they are few, else one `kind: List`
/// (YAML readers bound the number of documents in a file; a List is one document).
fn yaml(docs: &[Value]) -> Result<String, GenerateError> {
    let text = if docs.len() <= 100 {
        serde_saphyr::to_string_multiple(docs)
    } else {
        serde_saphyr::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": docs}))
    };
    text.map_err(|e| GenerateError::Yaml(e.to_string()))
}

pub fn generate(o: &GenerateOptions) -> Result<Generated, GenerateError> {
    if o.sites < 3 {
        return Err(GenerateError::TooFewSites);
    }
    if o.apps == 0 {
        return Err(GenerateError::NoApps);
    }
    if o.pods < 2 * o.apps {
        return Err(GenerateError::TooFewPods(2 * o.apps));
    }
    if o.duration.is_zero() {
        return Err(GenerateError::NoDuration);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    // Sites.
    let users = (o.sites / 10).max(1);
    let infra = o.sites - users;
    let regional = (infra / 40).max(1);
    let metro = ((infra - regional) / 9).max(1).min(infra - regional);
    let edge = infra - regional - metro;
    if o.nodes < regional + metro {
        return Err(GenerateError::TooFewNodes(regional + metro));
    }
    let mut sites: Vec<Site> = Vec::new();
    sites.extend((1..=regional).map(|i| Site {
        name: format!("regional-{i}"),
        tier: "regional",
    }));
    sites.extend((1..=metro).map(|i| Site {
        name: format!("metro-{i}"),
        tier: "metro",
    }));
    sites.extend((1..=edge).map(|i| Site {
        name: format!("edge-{i}"),
        tier: "edge",
    }));
    sites.extend((1..=users).map(|i| Site {
        name: format!("users-{i}"),
        tier: "users",
    }));
    let metro_of_edge = |e: usize| e % metro; // edge i (0-based) hangs off metro i % metro
    let mut links: Vec<Value> = Vec::new();
    let link = |from: &str, to: &str, latency: f64, jitter: f64, bandwidth: &str, loss: &str| json!({"from": from, "to": to, "latency": ms(latency), "jitter": ms(jitter), "bandwidth": bandwidth, "loss": loss});
    for m in 1..=metro {
        for r in 1..=regional {
            let lat = rng.random_range(4.0..10.0);
            links.push(link(
                &format!("metro-{m}"),
                &format!("regional-{r}"),
                lat,
                lat / 10.0,
                "100Gbps",
                "0.001%",
            ));
        }
        if metro > 2 || (metro == 2 && m == 1) {
            let next = m % metro + 1;
            let lat = rng.random_range(2.0..4.0);
            links.push(link(
                &format!("metro-{m}"),
                &format!("metro-{next}"),
                lat,
                0.2,
                "40Gbps",
                "0.001%",
            ));
        }
    }
    for e in 0..edge {
        let m = metro_of_edge(e) + 1;
        let lat = rng.random_range(1.0..4.0);
        let bw = if rng.random_bool(0.08) {
            "300Mbps"
        } else if rng.random_bool(0.3) {
            "1Gbps"
        } else {
            "10Gbps"
        };
        links.push(link(
            &format!("edge-{}", e + 1),
            &format!("metro-{m}"),
            lat,
            lat / 10.0,
            bw,
            "0.005%",
        ));
        if metro > 1 && rng.random_bool(0.1) {
            let other = (m % metro) + 1;
            let lat = rng.random_range(3.0..6.0);
            links.push(link(
                &format!("edge-{}", e + 1),
                &format!("metro-{other}"),
                lat,
                lat / 10.0,
                "1Gbps",
                "0.01%",
            ));
        }
    }
    // Users reach one or two edge sites (or a metro site when there is no edge).
    let mut user_home: Vec<String> = Vec::new();
    for u in 1..=users {
        let first = if edge > 0 {
            format!("edge-{}", rng.random_range(1..=edge))
        } else {
            format!("metro-{}", rng.random_range(1..=metro))
        };
        links.push(link(
            &format!("users-{u}"),
            &first,
            rng.random_range(0.5..2.0),
            0.3,
            "1Gbps",
            "0.05%",
        ));
        if edge > 1 && rng.random_bool(0.5) {
            let second = format!("edge-{}", rng.random_range(1..=edge));
            if second != first {
                links.push(link(
                    &format!("users-{u}"),
                    &second,
                    rng.random_range(1.5..3.5),
                    0.5,
                    "1Gbps",
                    "0.05%",
                ));
            }
        }
        user_home.push(first);
    }
    let topology = json!({
        "apiVersion": "network.edgeplane.io/v1alpha1",
        "kind": "NetworkTopology",
        "metadata": {"name": "default"},
        "spec": {
            "siteLabel": "topology.kubernetes.io/zone",
            "sites": sites.iter().map(|s| if s.tier == "users" {
                json!({"name": s.name, "labels": {"kind": "users"}, "transit": false})
            } else {
                json!({"name": s.name, "labels": {"tier": s.tier}})
            }).collect::<Vec<_>>(),
            "links": links,
        }
    });
    // Nodes: a tenth in regional sites, a fifth in metro sites, the rest at the edge; at
    // least one per site.
    let infra_sites: Vec<&Site> = sites.iter().filter(|s| s.tier != "users").collect();
    // One node per site while they last (regional and metro sites first), then the rest
    // by weight.
    let mut per_site: Vec<usize> = (0..infra_sites.len())
        .map(|i| usize::from(i < o.nodes))
        .collect();
    let mut left = o.nodes.saturating_sub(infra_sites.len());
    let weights: Vec<f64> = infra_sites
        .iter()
        .map(|s| match s.tier {
            "regional" => 0.1 / regional as f64,
            "metro" => 0.2 / metro as f64,
            _ => 0.7 / edge.max(1) as f64,
        })
        .collect();
    let total_w: f64 = weights.iter().sum();
    let share: Vec<usize> = weights
        .iter()
        .map(|w| ((w / total_w) * left as f64).floor() as usize)
        .collect();
    for (i, s) in share.iter().enumerate() {
        per_site[i] += s;
        left -= s;
    }
    for i in 0..left {
        let k = infra_sites.len() - 1 - (i % infra_sites.len());
        per_site[k] += 1;
    }
    let mut nodes: Vec<Value> = Vec::new();
    let mut edge_nodes: Vec<String> = Vec::new();
    for (site, count) in infra_sites.iter().zip(&per_site) {
        let (cpu, mem) = match site.tier {
            "regional" => ("64", "256Gi"),
            "metro" => ("32", "128Gi"),
            _ => ("16", "64Gi"),
        };
        for k in 0..*count {
            let name = format!("{}-n{}", site.name, k + 1);
            if site.tier == "edge" {
                edge_nodes.push(name.clone());
            }
            nodes.push(json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": site.name, "edgeplane.io/tier": site.tier}},
                "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"}, "capacity": {"cpu": cpu, "memory": mem, "pods": "110"}},
            }));
        }
    }
    // Applications.
    let namespaces = o.apps.div_ceil(50);
    let mut apps: Vec<Value> = Vec::new();
    for n in 0..namespaces {
        let ns = format!("tenant-{}", n + 1);
        apps.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        apps.push(json!({
            "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicy",
            "metadata": {"name": "near-users", "namespace": ns},
            "spec": {"rules": [{"name": "latency", "request": "5ms", "limit": "10ms"}, {"name": "jitter", "request": "1ms", "limit": "2ms"}]},
        }));
        apps.push(json!({
            "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicy",
            "metadata": {"name": "near-state", "namespace": ns},
            "spec": {"rules": [{"name": "latency", "request": "10ms", "limit": "20ms"}]},
        }));
    }
    let fronts = o.pods - o.apps;
    let mut app_list: Vec<(String, String)> = Vec::new();
    for a in 0..o.apps {
        let ns = format!("tenant-{}", a / 50 + 1);
        let name = format!("app-{}", a + 1);
        let replicas = fronts / o.apps + usize::from(a < fronts % o.apps);
        let users_site = format!("users-{}", rng.random_range(1..=users));
        apps.extend(app_objects(&ns, &name, replicas, &users_site));
        app_list.push((ns, name));
    }
    // Events, evenly spread with a little jitter, cycling through kinds of trouble.
    let mut events: Vec<Value> = Vec::new();
    let mut degraded: Vec<(String, String, String)> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut extra = 0usize;
    let span = o.duration.as_secs_f64();
    let edge_links: Vec<(String, String, String)> = links
        .iter()
        .filter(|l| l["from"].as_str().is_some_and(|f| f.starts_with("edge-")))
        .map(|l| {
            (
                l["from"].as_str().unwrap_or_default().to_string(),
                l["to"].as_str().unwrap_or_default().to_string(),
                l["latency"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for k in 0..o.events {
        let at_s = ((k as f64 + 0.5) / o.events as f64 * span
            + rng.random_range(-0.2..0.2) * span / o.events as f64)
            .clamp(1.0, span - 1.0)
            .round() as u64;
        let at = minutes(Duration::from_secs(at_s));
        let choice = k % 8;
        let event = match choice {
            0 | 3 if !edge_links.is_empty() => {
                // Degrade a link, or repair the oldest degraded one.
                if choice == 3 && !degraded.is_empty() {
                    let (from, to, latency) = degraded.remove(0);
                    json!({"at": at, "note": format!("link {from} - {to} repaired"), "setLink": {"from": from, "to": to, "latency": latency}})
                } else {
                    let (from, to, latency) =
                        edge_links[rng.random_range(0..edge_links.len())].clone();
                    if degraded.iter().any(|d| d.0 == from && d.1 == to) {
                        json!({"at": at, "scale": scale_event(&mut rng, &app_list, fronts / o.apps + 2)})
                    } else {
                        degraded.push((from.clone(), to.clone(), latency));
                        let bad = ms(rng.random_range(15.0..40.0));
                        json!({"at": at, "note": format!("congestion between {from} and {to}"), "setLink": {"from": from, "to": to, "latency": bad}})
                    }
                }
            }
            1 | 4 if !edge_nodes.is_empty() => {
                if choice == 4 && !failed.is_empty() {
                    let node = failed.remove(0);
                    json!({"at": at, "recoverNode": node})
                } else {
                    let up: Vec<&String> =
                        edge_nodes.iter().filter(|n| !failed.contains(n)).collect();
                    if up.is_empty() {
                        json!({"at": at, "scale": scale_event(&mut rng, &app_list, fronts / o.apps + 2)})
                    } else {
                        let node = up[rng.random_range(0..up.len())].clone();
                        failed.push(node.clone());
                        json!({"at": at, "note": format!("power loss at {node}"), "failNode": node})
                    }
                }
            }
            5 => {
                extra += 1;
                let ns = "tenant-1".to_string();
                let name = format!("late-app-{extra}");
                let users_site = format!("users-{}", rng.random_range(1..=users));
                app_list.push((ns.clone(), name.clone()));
                json!({"at": at, "note": format!("a new application arrives: {name}"), "apply": app_objects(&ns, &name, 4, &users_site)})
            }
            7 if app_list.len() > 1 => {
                let (ns, name) = app_list.remove(rng.random_range(0..app_list.len()));
                json!({"at": at, "note": format!("application {name} is removed"), "delete": [
                    {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": ns, "name": format!("{name}-front")},
                    {"apiVersion": "apps/v1", "kind": "StatefulSet", "namespace": ns, "name": format!("{name}-state")},
                ]})
            }
            _ => json!({"at": at, "scale": scale_event(&mut rng, &app_list, fronts / o.apps + 2)}),
        };
        events.push(event);
    }
    let scenario = json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": o.name},
        "spec": {
            "description": format!(
                "Generated (seed {}): {} sites ({} of users), {} nodes, {} applications with {} pods, {} events over {}.",
                o.seed, o.sites, users, o.nodes, o.apps, o.pods, o.events, minutes(o.duration)
            ),
            "duration": minutes(o.duration),
            "settings": {"seed": o.seed},
            "include": ["topology.yaml", "nodes.yaml", "apps.yaml"],
            "events": events,
        }
    });
    Ok(Generated {
        files: vec![
            (
                "scenario.yaml".into(),
                format!(
                    "# Generated by `edgeplane sim generate`.\n{}",
                    yaml(&[scenario])?
                ),
            ),
            ("topology.yaml".into(), yaml(&[topology])?),
            ("nodes.yaml".into(), yaml(&nodes)?),
            ("apps.yaml".into(), yaml(&apps)?),
        ],
    })
}

fn scale_event(rng: &mut ChaCha8Rng, apps: &[(String, String)], max: usize) -> Value {
    let (ns, name) = &apps[rng.random_range(0..apps.len())];
    json!({"kind": "Deployment", "namespace": ns, "name": format!("{name}-front"), "replicas": rng.random_range(1..=max.max(2))})
}

/// A front-end Deployment near `users`, its state, and the offers binding them.
fn app_objects(ns: &str, name: &str, replicas: usize, users: &str) -> Vec<Value> {
    let front = format!("{name}-front");
    let state = format!("{name}-state");
    vec![
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": front, "namespace": ns},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name, "role": "front"}},
                "template": {
                    "metadata": {"labels": {"app": name, "role": "front"}},
                    "spec": {"containers": [{"name": "front", "image": "registry.example.com/front:1", "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}]},
                },
            },
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": state, "namespace": ns},
            "spec": {
                "serviceName": state,
                "replicas": 1,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app": name, "role": "state"}},
                "template": {
                    "metadata": {"labels": {"app": name, "role": "state"}},
                    "spec": {"containers": [{"name": "state", "image": "registry.example.com/state:1", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}]},
                },
            },
        }),
        json!({
            "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicyOffer",
            "metadata": {"name": format!("{name}-users"), "namespace": ns},
            "spec": {
                "targets": [
                    {"name": "front", "kind": "Pod", "labelSelector": {"matchLabels": {"app": name, "role": "front"}}},
                    {"name": "users", "kind": "Site", "sites": [users]},
                ],
                "policies": ["near-users"], "period": "30s", "grace": "1m", "violationPolicy": "Evict",
            },
        }),
        json!({
            "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicyOffer",
            "metadata": {"name": format!("{name}-state"), "namespace": ns},
            "spec": {
                "targets": [
                    {"name": "front", "kind": "Pod", "labelSelector": {"matchLabels": {"app": name, "role": "front"}}},
                    {"name": "state", "kind": "Pod", "labelSelector": {"matchLabels": {"app": name, "role": "state"}}},
                ],
                "policies": ["near-state"], "period": "1m", "grace": "2m", "violationPolicy": "Mediate",
            },
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_scenarios_load_and_are_reproducible() {
        let o = GenerateOptions {
            sites: 12,
            nodes: 30,
            apps: 4,
            pods: 20,
            events: 9,
            duration: Duration::from_secs(1800),
            ..Default::default()
        };
        let a = generate(&o).unwrap();
        let b = generate(&o).unwrap();
        assert_eq!(a.files, b.files);
        let dir = std::env::temp_dir().join(format!("edgeplane-sim-gen-{}", std::process::id()));
        let path = a.write(&dir).unwrap();
        let s = crate::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.events.len(), 9);
        let count = |k: &str| s.objects.iter().filter(|v| v["kind"] == k).count();
        assert_eq!(count("Node"), 30);
        assert_eq!(count("Deployment"), 4);
        let replicas: i64 = s
            .objects
            .iter()
            .filter(|v| v["kind"] == "Deployment")
            .map(|v| v["spec"]["replicas"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(replicas + 4, 20);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn small_and_lopsided_options_still_make_valid_scenarios() {
        for (sites, nodes, apps, events) in [(3, 2, 1, 12), (5, 3, 2, 30), (40, 10, 3, 25)] {
            let o = GenerateOptions {
                sites,
                nodes,
                apps,
                pods: apps * 3,
                events,
                duration: Duration::from_secs(600),
                ..Default::default()
            };
            let g = generate(&o).unwrap_or_else(|e| panic!("{sites}/{nodes}: {e}"));
            let dir = std::env::temp_dir()
                .join(format!("edgeplane-sim-gen-{}-{sites}", std::process::id()));
            let path = g.write(&dir).unwrap();
            let s = crate::scenario::load(&path).unwrap_or_else(|e| panic!("{sites}/{nodes}: {e}"));
            assert_eq!(
                s.objects.iter().filter(|v| v["kind"] == "Node").count(),
                nodes
            );
            assert_eq!(s.events.len(), events);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn options_are_checked() {
        let bad = GenerateOptions {
            sites: 2,
            ..Default::default()
        };
        assert_eq!(generate(&bad).err(), Some(GenerateError::TooFewSites));
        let bad = GenerateOptions {
            apps: 10,
            pods: 5,
            ..Default::default()
        };
        assert_eq!(generate(&bad).err(), Some(GenerateError::TooFewPods(20)));
    }
}
