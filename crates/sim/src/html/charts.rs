//! Charts over time: bindings by compliance, pods, link latencies, and the strip of
//! failures and repairs.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::escape::esc;
use crate::journal::Sample;
use crate::report::{Report, ReportEntry};
use crate::timeline::EntryType;

const CW: f64 = 640.0;
const CH: f64 = 250.0;
const PAD_L: f64 = 48.0;
const PAD_R: f64 = 14.0;
const PAD_T: f64 = 12.0;
const PAD_B: f64 = 30.0;

struct Frame {
    x_max: f64,
    y_max: f64,
    left: f64,
}

impl Frame {
    fn x(&self, t: f64) -> f64 {
        self.left + (t / self.x_max.max(1e-9)).clamp(0.0, 1.0) * (CW - self.left - PAD_R)
    }
    fn y(&self, v: f64) -> f64 {
        CH - PAD_B - (v / self.y_max.max(1e-9)).clamp(0.0, 1.0) * (CH - PAD_T - PAD_B)
    }
}

/// A round step for `max` divided into about `n` parts.
pub(super) fn nice_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

pub(super) fn time_label(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}h", s / 3600, (s / 60) % 60)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

pub(super) fn time_step(total: f64) -> f64 {
    const STEPS: [f64; 12] = [
        10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| total / s <= 9.0)
        .unwrap_or(86400.0)
}

fn axes(svg: &mut String, f: &Frame, y_unit: &str) {
    let ystep = nice_step(f.y_max, 4.0);
    let mut v = 0.0;
    while v <= f.y_max + 1e-9 {
        let y = f.y(v);
        let _ = write!(
            svg,
            "<line x1=\"{PAD_L}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eef0f3\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10.5\" text-anchor=\"end\" fill=\"#66717f\">{}{}</text>",
            CW - PAD_R,
            PAD_L - 6.0,
            y + 3.5,
            trim_number(v),
            y_unit
        );
        v += ystep;
    }
    let xstep = time_step(f.x_max);
    let mut t = 0.0;
    while t <= f.x_max + 1e-9 {
        let x = f.x(t);
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#b8c2cd\"/><text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"10.5\" text-anchor=\"middle\" fill=\"#66717f\">{}</text>",
            CH - PAD_B,
            CH - PAD_B + 4.0,
            CH - PAD_B + 16.0,
            time_label(t)
        );
        t += xstep;
    }
    let _ = write!(
        svg,
        "<line x1=\"{PAD_L}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#b8c2cd\"/>",
        CW - PAD_R,
        CH - PAD_B,
        CH - PAD_B
    );
}

fn trim_number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

/// Step-function points of a series, thinned to at most one change per pixel column and
/// carried to the end of the run.
fn steps(points: &[(f64, f64)], f: &Frame) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut last_col = f64::NEG_INFINITY;
    for &(t, v) in points {
        let col = f.x(t).floor();
        if col == last_col
            && let Some(last) = out.last_mut()
        {
            last.1 = v;
            continue;
        }
        last_col = col;
        out.push((t, v));
    }
    if let Some(&(_, v)) = out.last() {
        out.push((f.x_max, v));
    }
    out
}

fn step_path(points: &[(f64, f64)], f: &Frame) -> String {
    let mut d = String::new();
    for (k, &(t, v)) in points.iter().enumerate() {
        let (x, y) = (f.x(t), f.y(v));
        if k == 0 {
            let _ = write!(d, "M{x:.1},{y:.1}");
        } else {
            let _ = write!(d, " H{x:.1} V{y:.1}");
        }
    }
    d
}

fn chart_open(id: &str, title: &str, subtitle: &str) -> String {
    format!(
        "<div class=\"panel\" id=\"{id}\"><div style=\"font-weight:600;margin:2px 4px 6px\">{}<span class=\"note\" style=\"font-weight:400;margin-left:6px\">{}</span></div><svg viewBox=\"0 0 {CW} {CH}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(subtitle),
        esc(title)
    )
}

fn empty_message(svg: &mut String, message: &str) {
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"middle\" fill=\"#97a0ab\">{}</text>",
        PAD_L + (CW - PAD_L - PAD_R) / 2.0,
        (CH - PAD_B) / 2.0 + 4.0,
        esc(message)
    );
}

fn legend(items: &[(String, &str)]) -> String {
    let mut l = String::from("<div class=\"legend\">");
    for (label, colour) in items {
        let _ = write!(
            l,
            "<span><i style=\"background:{colour}\"></i>{}</span>",
            esc(label)
        );
    }
    l.push_str("</div>");
    l
}

fn run_seconds(r: &Report) -> f64 {
    let mut total = 0.0;
    for part in r.summary.simulated.split(':') {
        total = total * 60.0 + part.parse::<f64>().unwrap_or(0.0);
    }
    total.max(1.0)
}

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

const PALETTE: [&str; 8] = [
    "#d64545", "#2f6fd6", "#e6a700", "#2f9e5b", "#8e44ad", "#e17a00", "#16a2b8", "#6b7785",
];

pub(super) fn links_chart(r: &Report) -> String {
    let changed: BTreeMap<&String, &Vec<Sample<crate::journal::LinkLatency>>> = r
        .series
        .links
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .take(PALETTE.len())
        .collect();
    let x_max = run_seconds(r);
    let y_max = changed
        .values()
        .flat_map(|v| v.iter().map(|s| s.value.latency_ms))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let f = Frame {
        x_max,
        y_max: y_max.max(nice_step(y_max, 4.0)),
        left: PAD_L,
    };
    let mut svg = chart_open(
        "chart-links",
        "Latency of the links that changed",
        "milliseconds, from the NetworkTopology",
    );
    axes(&mut svg, &f, "ms");
    let mut items = Vec::new();
    if changed.is_empty() {
        empty_message(&mut svg, "no link changed during the run");
    }
    for (k, (name, samples)) in changed.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let pts: Vec<(f64, f64)> = samples.iter().map(|s| (s.at, s.value.latency_ms)).collect();
        let d = step_path(&steps(&pts, &f), &f);
        let _ = write!(
            svg,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.2\"><title>{}</title></path>",
            esc(name)
        );
        items.push(((*name).clone(), colour));
    }
    svg.push_str("</svg>");
    svg.push_str(&legend(&items));
    svg.push_str("</div>");
    svg
}

pub(super) fn events_strip(r: &Report) -> String {
    let x_max = run_seconds(r);
    let f = Frame {
        x_max,
        y_max: 1.0,
        left: 82.0,
    };
    let lanes: [(&str, &[EntryType], &str); 6] = [
        (
            "nodes",
            &[
                EntryType::NodeFailed,
                EntryType::NodeNotReady,
                EntryType::NodeRecovered,
            ],
            "#b03030",
        ),
        ("links", &[EntryType::LinkChanged], "#c0392b"),
        (
            "mitigations",
            &[EntryType::Mitigated, EntryType::MitigationFailed],
            "#2f9e5b",
        ),
        (
            "evictions",
            &[EntryType::Evicted, EntryType::TaintEviction],
            "#e17a00",
        ),
        (
            "unplaceable",
            &[EntryType::Unplaceable, EntryType::PodFailed],
            "#d64545",
        ),
        (
            "scenario",
            &[
                EntryType::Applied,
                EntryType::Deleted,
                EntryType::Scaled,
                EntryType::Note,
                EntryType::ActionFailed,
            ],
            "#5b6b7f",
        ),
    ];
    let mut svg = chart_open(
        "chart-events",
        "Failures and repairs",
        "hover a mark for what happened",
    );
    let lane_h = (CH - PAD_T - PAD_B) / lanes.len() as f64;
    // Time axis only.
    let xstep = time_step(f.x_max);
    let mut t = 0.0;
    while t <= f.x_max + 1e-9 {
        let x = f.x(t);
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{PAD_T}\" y2=\"{:.1}\" stroke=\"#f0f2f5\"/><text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"10.5\" text-anchor=\"middle\" fill=\"#66717f\">{}</text>",
            CH - PAD_B,
            CH - PAD_B + 16.0,
            time_label(t)
        );
        t += xstep;
    }
    for (k, (name, kinds, colour)) in lanes.iter().enumerate() {
        let y = PAD_T + lane_h * k as f64 + lane_h / 2.0;
        let _ = write!(
            svg,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e7ec\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10.5\" text-anchor=\"end\" fill=\"#66717f\">{name}</text>",
            f.left,
            CW - PAD_R,
            f.left - 6.0,
            y + 3.5
        );
        let mut shown = 0;
        for e in r
            .timeline
            .iter()
            .filter(|e| kinds.contains(&e.kind) && !e.detail)
        {
            shown += 1;
            if shown > 400 {
                break;
            }
            let x = f.x(e.at_seconds);
            let bad = matches!(
                e.kind,
                EntryType::NodeFailed
                    | EntryType::MitigationFailed
                    | EntryType::ActionFailed
                    | EntryType::PodFailed
                    | EntryType::Unplaceable
            );
            let fill = if matches!(e.kind, EntryType::NodeRecovered) {
                "#3c9d76"
            } else {
                colour
            };
            let tip = format!("{} {} {}: {}", e.at, e.kind.as_str(), e.object, e.message);
            if bad {
                let _ = write!(
                    svg,
                    "<g><title>{}</title><path d=\"M{:.1},{:.1} l5,8 h-10 Z\" fill=\"{fill}\"/></g>",
                    esc(&tip),
                    x,
                    y - 5.0
                );
            } else {
                let _ = write!(
                    svg,
                    "<g><title>{}</title><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4.5\" fill=\"{fill}\" fill-opacity=\"0.9\"/></g>",
                    esc(&tip)
                );
            }
        }
    }
    svg.push_str("</svg><div class=\"legend\"><span>▲ failures</span><span>● repairs and scenario actions</span></div></div>");
    svg
}
