//! Charts over time: bindings by compliance (stacked) and pods.

use std::fmt::Write;

use super::chart::{
    CH, Frame, PAD_B, PAD_L, PAD_T, axes, chart_open, empty_message, legend, nice_step,
    run_seconds, step_path, steps,
};
use crate::report::{Report, ReportEntry};

pub(super) fn bindings_chart(r: &Report) -> String {
    let samples = &r.series.bindings;
    let x_max = run_seconds(r);
    let y_max = samples
        .iter()
        .map(|s| s.value.total())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let f = Frame {
        x_max,
        y_max: y_max.max(nice_step(y_max, 4.0)).max(4.0),
        left: PAD_L,
    };
    let mut svg = chart_open(
        "chart-bindings",
        "Bindings by compliance",
        "stacked: compliant, limit, violation, error, pending",
    );
    axes(&mut svg, &f, "");
    if samples.is_empty() {
        empty_message(
            &mut svg,
            "no ConstraintPolicyBindings (no offer controller ran)",
        );
    } else {
        // Stacked bands, bottom to top.
        type Get = fn(&crate::journal::ComplianceCounts) -> usize;
        let bands: [(Get, &str); 5] = [
            (|c| c.compliant, "#2f9e5b"),
            (|c| c.limit, "#e6a700"),
            (|c| c.violation, "#d64545"),
            (|c| c.error, "#8e44ad"),
            (|c| c.pending, "#a3adb8"),
        ];
        let mut below: Vec<(f64, f64)> = samples.iter().map(|s| (s.at, 0.0)).collect();
        for (get, colour) in bands {
            let above: Vec<(f64, f64)> = samples
                .iter()
                .zip(&below)
                .map(|(s, b)| (s.at, b.1 + get(&s.value) as f64))
                .collect();
            if above.iter().zip(&below).all(|(a, b)| a.1 == b.1) {
                continue;
            }
            let top = steps(&above, &f);
            let bottom = steps(&below, &f);
            let mut d = step_path(&top, &f);
            // Back along the bottom edge, right to left.
            for w in bottom.windows(2).rev() {
                let _ = write!(d, " H{:.1} V{:.1}", f.x(w[1].0), f.y(w[0].1));
            }
            if let Some(first) = bottom.first() {
                let _ = write!(d, " H{:.1} V{:.1} Z", f.x(first.0), f.y(first.1));
            }
            let _ = write!(
                svg,
                "<path d=\"{d}\" fill=\"{colour}\" fill-opacity=\"0.85\" stroke=\"{colour}\" stroke-width=\"0.5\"/>"
            );
            below = above;
        }
    }
    svg.push_str("</svg>");
    svg.push_str(&legend(&[
        ("Compliant".into(), "#2f9e5b"),
        ("Limit".into(), "#e6a700"),
        ("Violation".into(), "#d64545"),
        ("Error".into(), "#8e44ad"),
        ("Pending".into(), "#a3adb8"),
    ]));
    svg.push_str("</div>");
    svg
}

pub(super) fn pods_chart(r: &Report) -> String {
    let samples = &r.series.pods;
    let x_max = run_seconds(r);
    let y_max = samples
        .iter()
        .map(|s| s.value.placed.max(s.value.pending).max(s.value.failed))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let f = Frame {
        x_max,
        y_max: y_max.max(nice_step(y_max, 4.0)).max(4.0),
        left: PAD_L,
    };
    let mut svg = chart_open(
        "chart-pods",
        "Pods",
        "placed, waiting to be placed, failed; purple ticks: plan runs",
    );
    axes(&mut svg, &f, "");
    // Plan runs as ticks along the top.
    let mut runs: Vec<f64> = r
        .timeline
        .iter()
        .filter(|e| is_plan_run(e))
        .map(|e| e.at_seconds)
        .collect();
    runs.dedup();
    for t in &runs {
        let x = f.x(*t);
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{PAD_T}\" y2=\"{:.1}\" stroke=\"#8e44ad\" stroke-opacity=\"0.35\"/>",
            CH - PAD_B
        );
    }
    if samples.is_empty() {
        empty_message(&mut svg, "no pods");
    } else {
        type Get = fn(&crate::journal::PodCounts) -> usize;
        let lines: [(Get, &str); 3] = [
            (|c| c.placed, "#2f6fd6"),
            (|c| c.pending, "#e6a700"),
            (|c| c.failed, "#d64545"),
        ];
        for (get, colour) in lines {
            let pts: Vec<(f64, f64)> = samples
                .iter()
                .map(|s| (s.at, get(&s.value) as f64))
                .collect();
            if pts.iter().all(|p| p.1 == 0.0) {
                continue;
            }
            let d = step_path(&steps(&pts, &f), &f);
            let _ = write!(
                svg,
                "<path d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>"
            );
        }
    }
    svg.push_str("</svg>");
    svg.push_str(&legend(&[
        ("placed".into(), "#2f6fd6"),
        ("waiting".into(), "#e6a700"),
        ("failed".into(), "#d64545"),
        (format!("plan runs ({})", runs.len()), "#8e44ad"),
    ]));
    svg.push_str("</div>");
    svg
}

fn is_plan_run(e: &ReportEntry) -> bool {
    e.source == crate::timeline::Source::Event
        && matches!(e.reason.as_deref(), Some(r) if crate::timeline::map_reason(r).plan_run)
}
