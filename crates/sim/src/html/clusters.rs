//! Many clusters (a scenario with `spec.clusters`): each member's readiness as the hub
//! saw it, each application's placements, and the hub's workloads in the members over
//! time (the members themselves are drawn on the map, at their sites).

use std::fmt::Write;
use std::time::Duration;

use super::escape::esc;
use crate::multicluster::record::Placement;
use crate::report::Report;
use crate::timeline::clock_text;

fn at(seconds: f64) -> String {
    clock_text(Duration::from_secs_f64(seconds.max(0.0).floor()))
}

/// `edge-west render=4; metro-1 render=2`.
pub(super) fn placement_text(p: &Placement) -> String {
    if p.is_empty() {
        return "nowhere".into();
    }
    p.iter()
        .map(|(cluster, components)| {
            let c: Vec<String> = components.iter().map(|(k, n)| format!("{k}={n}")).collect();
            format!("{cluster} {}", c.join(","))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn clusters(h: &mut String, r: &Report) {
    let Some(m) = &r.multicluster else {
        return;
    };
    let _ = write!(
        h,
        "<section id=\"clusters\"><h2>Clusters <small>the hub in {} mode; readiness as the hub's MemberCluster status says</small></h2><table><tr><th>cluster</th><th>site</th><th>nodes</th><th>readiness over time</th></tr>",
        esc(&m.mode)
    );
    for c in &m.clusters {
        let changes: Vec<String> = c
            .readiness
            .iter()
            .map(|x| {
                let (class, word) = if x.ready {
                    ("ok", "Ready")
                } else {
                    ("bad", "NotReady")
                };
                format!(
                    "{} <span class=\"{class}\" title=\"{}\">{word}</span>",
                    at(x.at_seconds),
                    esc(&x.reason)
                )
            })
            .collect();
        let _ = write!(
            h,
            "<tr class=\"cluster\" data-cluster=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.name),
            esc(&c.site),
            c.nodes,
            changes.join(" · ")
        );
    }
    h.push_str("</table><h3>Applications</h3><table><tr><th>application</th><th>placement over time</th><th>moves</th></tr>");
    for a in &m.applications {
        let steps: Vec<String> = a
            .placements
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    at(p.at_seconds),
                    esc(&placement_text(&p.placement))
                )
            })
            .collect();
        let _ = write!(
            h,
            "<tr class=\"application\"><td>{}/{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.namespace),
            esc(&a.name),
            steps.join(" &rarr; "),
            a.moves.len()
        );
    }
    h.push_str("</table><h3>Workloads in the members</h3><table><tr><th>cluster</th><th>workload</th><th>replicas (ready) over time</th></tr>");
    for w in &m.workloads {
        let steps: Vec<String> = w
            .history
            .iter()
            .map(|x| match x.replicas {
                Some(n) => format!("{} {n} ({} ready)", at(x.at_seconds), x.ready),
                None => format!("{} <span class=\"bad\">removed</span>", at(x.at_seconds)),
            })
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}/{}</td><td>{}</td></tr>",
            esc(&w.cluster),
            esc(&w.namespace),
            esc(&w.name),
            steps.join(" · ")
        );
    }
    h.push_str("</table></section>");
}
