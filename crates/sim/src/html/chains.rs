//! The "Service chains" section: for each chain, its lanes whenever they changed (where
//! each hop ran, the latency along ingress > hops > egress, the lane's compliance) and the
//! live migrations of its VM hops.

use std::fmt::Write;

use super::escape::esc;
use crate::chains::{ChainRecord, LaneState};
use crate::report::Report;
use crate::timeline::clock_text;

fn at(seconds: f64) -> String {
    clock_text(std::time::Duration::from_secs_f64(seconds.max(0.0)))
}

/// `fw a1 > dpi a1 > nat b1`.
fn hops_text(l: &LaneState) -> String {
    l.hops
        .iter()
        .map(|h| format!("{} {}", h.name, h.node.as_deref().unwrap_or("(not placed)")))
        .collect::<Vec<_>>()
        .join(" > ")
}

fn compliance_cell(c: &str) -> String {
    let class = match c {
        "Compliant" => "ok",
        "Violation" => "bad",
        _ => "limit",
    };
    format!("<span class=\"{class}\">{}</span>", esc(c))
}

fn chain(h: &mut String, c: &ChainRecord) {
    let path: Vec<&str> = c
        .ingress
        .iter()
        .map(String::as_str)
        .chain(c.hops.iter().map(String::as_str))
        .chain(c.egress.iter().map(String::as_str))
        .collect();
    let _ = write!(
        h,
        "<h3 data-chain=\"{}\">{} <small>{}</small></h3><table class=\"chain-lanes\"><tr><th>at</th><th>lane</th><th>hops (node)</th><th>latency</th><th>compliance</th></tr>",
        esc(&c.name),
        esc(&c.name),
        esc(&path.join(" > "))
    );
    // Each lane whenever it changed.
    let mut last: Vec<&LaneState> = Vec::new();
    for sample in &c.history {
        for l in &sample.lanes {
            if last.contains(&l) {
                continue;
            }
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                at(sample.at),
                l.lane,
                esc(&hops_text(l)),
                esc(l.latency.as_deref().unwrap_or("—")),
                compliance_cell(&l.compliance)
            );
        }
        last = sample.lanes.iter().collect();
    }
    h.push_str("</table>");
    if c.migrations.is_empty() {
        h.push_str("<p class=\"note\">No live migration.</p>");
        return;
    }
    h.push_str("<table class=\"chain-migrations\"><tr><th>created</th><th>migration</th><th>VMI</th><th>from</th><th>to</th><th>phase</th><th>ended</th><th>for binding</th></tr>");
    for m in &c.migrations {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            at(m.created_at),
            esc(&m.name),
            esc(&m.vmi),
            esc(m.source_node.as_deref().unwrap_or("—")),
            esc(m.target_node.as_deref().unwrap_or("—")),
            esc(&m.phase),
            m.ended_at.map(at).unwrap_or_else(|| "—".into()),
            esc(m.binding.as_deref().unwrap_or("—"))
        );
    }
    h.push_str("</table>");
}

pub(super) fn chains(h: &mut String, r: &Report) {
    if r.chains.is_empty() {
        return;
    }
    h.push_str("<section id=\"chains\"><h2>Service chains <small>each lane whenever it changed: where its hops ran, the latency from ingress to egress, the compliance of its binding; the live migrations of VM hops</small></h2><div class=\"panel\">");
    for c in &r.chains {
        chain(h, c);
    }
    h.push_str("</div></section>");
}
