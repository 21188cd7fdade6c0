//! The clusters on the report's map: each member is drawn as a node at its site (the
//! hub's topology gives the sites and links), holding the ready replicas of the hub's
//! workloads in it; its state is the hub's view (Ready, NotReady) or, between
//! `failCluster` and the hub noticing, "failed, not noticed yet". The map gets a moment at
//! each change of a member's readiness and each move of an application, so the slider
//! shows the failover and the make-before-break.

use std::collections::BTreeMap;
use std::time::Duration;

use super::record::{MultiClusterReport, WorkloadReport};
use crate::report::{MapNode, Moment, MomentNode, NodeState, Report};
use crate::timeline::{EntryType, clock_text};

/// Ready replicas of the hub's workloads in `cluster` at `at`.
fn ready_in(workloads: &[WorkloadReport], cluster: &str, at: f64) -> usize {
    workloads
        .iter()
        .filter(|w| w.cluster == cluster)
        .filter_map(|w| w.history.iter().rev().find(|h| h.at_seconds <= at))
        .filter(|h| h.replicas.is_some())
        .map(|h| usize::try_from(h.ready).unwrap_or(0))
        .sum()
}

fn state_at(
    m: &MultiClusterReport,
    failed: &[(String, f64, bool)],
    cluster: &str,
    at: f64,
) -> NodeState {
    let ready = m
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .and_then(|c| c.readiness.iter().rev().find(|r| r.at_seconds <= at))
        .is_none_or(|r| r.ready);
    let down = failed
        .iter()
        .rev()
        .find(|(c, t, _)| c == cluster && *t <= at)
        .is_some_and(|(_, _, down)| *down);
    match (ready, down) {
        (false, _) => NodeState::NotReady,
        (true, true) => NodeState::Failed,
        (true, false) => NodeState::Ready,
    }
}

/// Adds the clusters to `report.map` (its sites at the end, and every moment).
pub fn draw_clusters(report: &mut Report) {
    let Some(m) = report.multicluster.clone() else {
        return;
    };
    // When the scenario failed and recovered each cluster.
    let failed: Vec<(String, f64, bool)> = report
        .timeline
        .iter()
        .filter_map(|e| {
            let down = match e.kind {
                EntryType::ClusterFailed => true,
                EntryType::ClusterRecovered => false,
                _ => return None,
            };
            Some((
                e.object.strip_prefix("Cluster ")?.to_string(),
                e.at_seconds,
                down,
            ))
        })
        .collect();
    // Moments at each readiness change and each move, told in words.
    let mut extra: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for c in &m.clusters {
        for r in c.readiness.iter().skip(1) {
            extra.entry(r.at_seconds as u64).or_default().push(format!(
                "cluster {} {}",
                c.name,
                if r.ready { "Ready" } else { "NotReady" }
            ));
        }
    }
    for a in &m.applications {
        for mv in &a.moves {
            let to: Vec<&str> = mv.to.keys().map(String::as_str).collect();
            extra.entry(mv.at_seconds as u64).or_default().push(format!(
                "{}/{} moved to {}",
                a.namespace,
                a.name,
                to.join(", ")
            ));
        }
    }
    let moments = &mut report.map.moments;
    for (second, what) in extra {
        let text = what.join("; ");
        match moments
            .iter_mut()
            .find(|mo| mo.at_seconds as u64 == second && mo.what != "the end of the run")
        {
            Some(mo) => mo.what = format!("{}; {text}", mo.what),
            None => {
                let end = moments.last().cloned();
                let mut mo = end.unwrap_or_else(|| Moment {
                    at: String::new(),
                    at_seconds: 0.0,
                    what: String::new(),
                    entry: None,
                    nodes: Vec::new(),
                    links: BTreeMap::new(),
                    paths: Vec::new(),
                    lanes: Vec::new(),
                });
                mo.at = clock_text(Duration::from_secs(second));
                mo.at_seconds = second as f64;
                mo.what = text;
                mo.entry = report
                    .timeline
                    .iter()
                    .position(|e| !e.detail && e.at_seconds as u64 == second);
                let at = mo.at_seconds;
                let i = moments
                    .partition_point(|x| x.at_seconds < at && x.what != "the end of the run");
                moments.insert(i, mo);
            }
        }
    }
    // The clusters in every moment (as at the end of its second) and at the end.
    for mo in moments.iter_mut() {
        let at = if mo.what == "the end of the run" {
            mo.at_seconds
        } else {
            mo.at_seconds + 0.999
        };
        mo.nodes
            .retain(|n| !m.clusters.iter().any(|c| c.name == n.name));
        for c in &m.clusters {
            mo.nodes.push(MomentNode {
                name: c.name.clone(),
                state: state_at(&m, &failed, &c.name, at),
                pods: ready_in(&m.workloads, &c.name, at),
                terminating: 0,
            });
        }
    }
    let end = report
        .map
        .moments
        .last()
        .map(|mo| mo.at_seconds)
        .unwrap_or(0.0);
    for c in &m.clusters {
        let Some(site) = report.map.sites.iter_mut().find(|s| s.name == c.site) else {
            continue;
        };
        let mut pods = Vec::new();
        for w in m.workloads.iter().filter(|w| w.cluster == c.name) {
            if let Some(h) = w.history.last().filter(|h| h.replicas.is_some()) {
                for _ in 0..h.ready.max(0) {
                    pods.push(format!("{}/{}", w.namespace, w.name));
                }
            }
        }
        site.nodes.retain(|n| n.name != c.name);
        site.nodes.push(MapNode {
            name: c.name.clone(),
            ready: state_at(&m, &failed, &c.name, end) == NodeState::Ready,
            pods,
        });
    }
}
