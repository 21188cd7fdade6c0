//! The tables: workloads at the end, and the timeline.

use std::fmt::Write;

use super::escape::esc;
use crate::report::{Report, ReportEntry};
use crate::timeline::EntryType;

fn badge_colour(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Planned | EntryType::Bound => "#2f6fd6",
        EntryType::PlanRun => "#1d4f9c",
        EntryType::Unplaceable | EntryType::ActionFailed | EntryType::PodFailed => "#d64545",
        EntryType::ComplianceChanged => "#6c5ce7",
        EntryType::Mitigated => "#2f9e5b",
        EntryType::MitigationFailed => "#b5521b",
        EntryType::Evicted | EntryType::TaintEviction => "#e17a00",
        EntryType::NodeNotReady => "#c2410c",
        EntryType::NodeFailed => "#b03030",
        EntryType::NodeRecovered => "#3c9d76",
        EntryType::LinkChanged => "#c0392b",
        EntryType::Note => "#4b5563",
        EntryType::Applied | EntryType::Deleted | EntryType::Scaled => "#5b6b7f",
        EntryType::Info => "#a3adb8",
    }
}

pub(super) fn workloads(h: &mut String, r: &Report) {
    if r.workloads.is_empty() {
        return;
    }
    h.push_str("<section id=\"workloads\"><h2>Workloads at the end</h2><table><tr><th>workload</th><th>replicas</th><th>pods</th><th>running</th><th></th></tr>");
    for w in &r.workloads {
        let state = if w.pods >= w.replicas {
            "<span class=\"ok\">complete</span>"
        } else {
            "<span class=\"bad\">pods missing</span>"
        };
        let _ = write!(
            h,
            "<tr><td>{} {}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{state}</td></tr>",
            esc(&w.kind),
            esc(&w.namespace),
            esc(&w.name),
            w.replicas,
            w.pods,
            w.running
        );
    }
    h.push_str("</table></section>");
}

const TIMELINE_ROWS: usize = 3000;

pub(super) fn timeline(h: &mut String, r: &Report) {
    let shown: Vec<&ReportEntry> = r.timeline.iter().filter(|e| !e.detail).collect();
    let details = r.timeline.len() - shown.len();
    let _ = write!(
        h,
        "<section id=\"timeline\"><h2>Timeline <small>{} entries{}</small></h2><table><tr><th>time</th><th>what</th><th>object</th><th>details</th></tr>",
        shown.len(),
        if details > 0 {
            format!(", {details} more details in the JSON report")
        } else {
            String::new()
        }
    );
    for e in shown.iter().take(TIMELINE_ROWS) {
        let _ = write!(
            h,
            "<tr><td class=\"t\">{}</td><td><span class=\"badge\" style=\"background:{}\">{}</span></td><td class=\"o\">{}</td><td>{}</td></tr>",
            esc(&e.at),
            badge_colour(e.kind),
            e.kind.as_str(),
            esc(&e.object),
            esc(&e.message)
        );
    }
    if shown.len() > TIMELINE_ROWS {
        let _ = write!(
            h,
            "<tr><td></td><td colspan=\"3\" class=\"note\">... {} more entries in the JSON report</td></tr>",
            shown.len() - TIMELINE_ROWS
        );
    }
    h.push_str("</table></section>");
}
