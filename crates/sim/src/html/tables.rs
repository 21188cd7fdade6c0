//! The tables: compliance by offer (the SLO view), and the workloads at the end.

use std::fmt::Write;

use super::escape::esc;
use crate::report::{BindingTime, Report};
use crate::series::ComplianceCounts;

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

/// `45s`, `3m 00s`, `1h 02m`; `—` for none.
pub(super) fn duration_text(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s == 0 {
        if seconds > 0.0 {
            "<1s".into()
        } else {
            "—".into()
        }
    } else if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s / 60) % 60)
    }
}

fn worst(w: &Option<BindingTime>) -> String {
    match w {
        Some(w) => {
            let name = w.binding.rsplit('/').next().unwrap_or(&w.binding);
            format!(
                "<span title=\"{}\">{}</span> <span class=\"note\">{}</span>",
                esc(&w.binding),
                esc(name),
                esc(&duration_text(w.seconds))
            )
        }
        None => "<span class=\"note\">—</span>".into(),
    }
}

fn at_end(c: &ComplianceCounts) -> String {
    let parts: Vec<String> = [
        (c.compliant, "Compliant", "ok"),
        (c.limit, "Limit", "limit"),
        (c.violation, "Violation", "bad"),
        (c.error, "Error", "bad"),
        (c.pending, "Pending", "note"),
    ]
    .iter()
    .filter(|(n, _, _)| *n > 0)
    .map(|(n, name, class)| format!("<span class=\"{class}\">{n} {name}</span>"))
    .collect();
    if parts.is_empty() {
        "<span class=\"note\">none left</span>".into()
    } else {
        parts.join(" · ")
    }
}

/// Time in Violation and in Limit by offer: the binding-time summed over each offer's
/// bindings, and the binding that spent longest there.
pub(super) fn offers(h: &mut String, r: &Report) {
    h.push_str("<section id=\"slo\"><h2>Time out of compliance by offer <small>binding-time in Violation and in Limit during the run, summed over each offer's bindings, and the worst binding</small></h2>");
    if r.offers.is_empty() {
        h.push_str("<p class=\"note\">No ConstraintPolicyBindings (no offer controller ran).</p></section>");
        return;
    }
    h.push_str("<table id=\"slo-table\"><thead><tr><th>offer</th><th>bindings</th><th>in Violation</th><th>worst binding</th><th>in Limit</th><th>worst binding</th><th>at the end</th></tr></thead><tbody>");
    for o in &r.offers {
        let _ = write!(
            h,
            "<tr data-offer=\"{}\"><td class=\"o\">{}</td><td>{}</td><td class=\"num{}\" data-seconds=\"{}\">{}</td><td>{}</td><td class=\"num{}\" data-seconds=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&o.offer),
            esc(&o.offer),
            o.bindings,
            if o.violation_seconds > 0.0 {
                " bad"
            } else {
                ""
            },
            o.violation_seconds,
            esc(&duration_text(o.violation_seconds)),
            worst(&o.worst_violation),
            if o.limit_seconds > 0.0 { " limit" } else { "" },
            o.limit_seconds,
            esc(&duration_text(o.limit_seconds)),
            worst(&o.worst_limit),
            at_end(&o.at_end)
        );
    }
    h.push_str("</tbody></table></section>");
}
