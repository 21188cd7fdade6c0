//! The strip of failures, repairs and scenario actions: a lane per subject (nodes, links,
//! mitigations, evictions, pod failures, unplaceable pods, the scenario), a mark per type
//! of happening. Happenings too close to tell apart on the time axis (one instant, or a
//! few pixels) share a mark with their number above it; marks of different types side by
//! side, never on top of each other. Each mark links to the timeline row of its first
//! happening.

use std::collections::HashSet;
use std::fmt::Write;

use super::chart::{
    CH, CW, Frame, PAD_B, PAD_R, PAD_T, chart_open, run_seconds, time_label, time_step,
};
use super::escape::esc;
use super::timeline::{row_id, rows};
use crate::report::Report;
use crate::timeline::EntryType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    Nodes,
    Links,
    Mitigations,
    Evictions,
    PodFailures,
    Unplaceable,
    Scenario,
}

impl Lane {
    pub const ALL: [Lane; 7] = [
        Lane::Nodes,
        Lane::Links,
        Lane::Mitigations,
        Lane::Evictions,
        Lane::PodFailures,
        Lane::Unplaceable,
        Lane::Scenario,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Lane::Nodes => "nodes",
            Lane::Links => "links",
            Lane::Mitigations => "mitigations",
            Lane::Evictions => "evictions",
            Lane::PodFailures => "pod failures",
            Lane::Unplaceable => "unplaceable",
            Lane::Scenario => "scenario",
        }
    }

    /// The lane's name in the page (`data-lane`).
    pub fn id(self) -> &'static str {
        match self {
            Lane::PodFailures => "pod-failures",
            other => other.label(),
        }
    }
}

/// The lane an entry type is drawn in; `None`: not drawn.
pub(super) fn lane_of(kind: EntryType) -> Option<Lane> {
    use EntryType::*;
    Some(match kind {
        NodeFailed | NodeNotReady | NodeRecovered | ClusterFailed | ClusterRecovered => Lane::Nodes,
        LinkChanged => Lane::Links,
        Mitigated | MitigationFailed => Lane::Mitigations,
        // The descheduler's evictions and the taint manager's deletions.
        Evicted | TaintEviction | Migrated => Lane::Evictions,
        PodFailed => Lane::PodFailures,
        Unplaceable => Lane::Unplaceable,
        Applied | Deleted | Scaled | Note | ActionFailed => Lane::Scenario,
        PlanRun | Planned | ComplianceChanged | Bound | Info => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// Something went wrong.
    Triangle,
    /// Something was repaired or done.
    Circle,
    /// The network changed.
    Diamond,
    /// A pod was deleted by the taint manager.
    Square,
}

pub(super) fn style(kind: EntryType) -> (Shape, &'static str) {
    use EntryType::*;
    match kind {
        NodeFailed | ClusterFailed => (Shape::Triangle, "#b03030"),
        NodeNotReady => (Shape::Triangle, "#e0621b"),
        NodeRecovered | ClusterRecovered => (Shape::Circle, "#3c9d76"),
        LinkChanged => (Shape::Diamond, "#c0392b"),
        Mitigated => (Shape::Circle, "#2f9e5b"),
        MitigationFailed => (Shape::Triangle, "#b5521b"),
        Evicted => (Shape::Circle, "#e17a00"),
        Migrated => (Shape::Circle, "#0e7490"),
        TaintEviction => (Shape::Square, "#c2410c"),
        PodFailed => (Shape::Triangle, "#d64545"),
        Unplaceable => (Shape::Triangle, "#8e2b2b"),
        ActionFailed => (Shape::Triangle, "#d64545"),
        Note => (Shape::Circle, "#a3adb8"),
        Scaled => (Shape::Circle, "#3d7ea6"),
        Deleted => (Shape::Circle, "#8a5a44"),
        _ => (Shape::Circle, "#5b6b7f"),
    }
}

/// Pixels between the marks of one cluster (different types side by side).
const SPACING: f64 = 13.0;
/// A happening this close after a cluster's first (in pixels, plus the room its marks
/// take) joins it.
const JOIN: f64 = 14.0;
const RADIUS: f64 = 5.5;

/// One mark: the happenings of one type in one cluster.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Mark {
    pub lane: Lane,
    pub kind: EntryType,
    /// Where it is drawn.
    pub x: f64,
    /// Indices of its entries in the report's timeline, in time order.
    pub entries: Vec<usize>,
}

/// The marks of every lane: happenings clustered along the time axis, a mark per type in a
/// cluster.
pub(super) fn marks(r: &Report, f: &Frame) -> Vec<Mark> {
    let mut out = Vec::new();
    for lane in Lane::ALL {
        // (first x, marks of the cluster)
        let mut cluster: Option<(f64, Vec<Mark>)> = None;
        for (i, e) in r.timeline.iter().enumerate() {
            if e.detail || lane_of(e.kind) != Some(lane) {
                continue;
            }
            let x = f.x(e.at_seconds);
            if let Some((x0, ms)) = &mut cluster
                && x <= *x0 + JOIN + (ms.len() - 1) as f64 * SPACING
            {
                match ms.iter_mut().find(|m| m.kind == e.kind) {
                    Some(m) => m.entries.push(i),
                    None => {
                        let x = *x0 + ms.len() as f64 * SPACING;
                        ms.push(Mark {
                            lane,
                            kind: e.kind,
                            x,
                            entries: vec![i],
                        });
                    }
                }
                continue;
            }
            if let Some((_, ms)) = cluster.take() {
                out.extend(ms);
            }
            cluster = Some((
                x,
                vec![Mark {
                    lane,
                    kind: e.kind,
                    x,
                    entries: vec![i],
                }],
            ));
        }
        if let Some((_, ms)) = cluster {
            out.extend(ms);
        }
    }
    out
}

fn shape_svg(shape: Shape, x: f64, y: f64, colour: &str) -> String {
    let r = RADIUS;
    match shape {
        Shape::Circle => {
            format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\" fill=\"{colour}\"/>")
        }
        Shape::Triangle => format!(
            "<path d=\"M{x:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z\" fill=\"{colour}\"/>",
            y - r - 1.0,
            x + r + 0.5,
            y + r,
            x - r - 0.5,
            y + r
        ),
        Shape::Diamond => format!(
            "<path d=\"M{x:.1},{:.1} L{:.1},{y:.1} L{x:.1},{:.1} L{:.1},{y:.1} Z\" fill=\"{colour}\"/>",
            y - r - 1.0,
            x + r + 1.0,
            y + r + 1.0,
            x - r - 1.0
        ),
        Shape::Square => format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"1.5\" fill=\"{colour}\"/>",
            x - r + 0.5,
            y - r + 0.5,
            2.0 * r - 1.0,
            2.0 * r - 1.0
        ),
    }
}

/// A small icon of a mark, for legends.
pub(super) fn icon(kind: EntryType) -> String {
    let (shape, colour) = style(kind);
    format!(
        "<svg class=\"ico\" viewBox=\"0 0 14 14\" aria-hidden=\"true\">{}</svg>",
        shape_svg(shape, 7.0, 7.5, colour)
    )
}

fn tip(r: &Report, m: &Mark) -> String {
    const LISTED: usize = 8;
    let mut lines = vec![format!("{} × {}", m.entries.len(), m.kind.as_str())];
    for &i in m.entries.iter().take(LISTED) {
        let e = &r.timeline[i];
        let message: String = e.message.chars().take(110).collect();
        lines.push(format!("{} {}: {}", e.at, e.object, message));
    }
    if m.entries.len() > LISTED {
        lines.push(format!("... and {} more", m.entries.len() - LISTED));
    }
    lines.join("\n")
}

pub(super) fn events_strip(r: &Report) -> String {
    let f = Frame {
        x_max: run_seconds(r),
        y_max: 1.0,
        left: 82.0,
    };
    let mut svg = chart_open(
        "chart-events",
        "Failures and repairs",
        "the number over a mark: how many at that moment; click a mark for its row in the timeline",
    );
    let lane_h = (CH - PAD_T - PAD_B) / Lane::ALL.len() as f64;
    let lane_y = |lane: Lane| {
        let k = Lane::ALL.iter().position(|l| *l == lane).unwrap_or(0);
        PAD_T + lane_h * k as f64 + lane_h / 2.0
    };
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
    for lane in Lane::ALL {
        let y = lane_y(lane);
        let _ = write!(
            svg,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e7ec\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10.5\" text-anchor=\"end\" fill=\"#66717f\">{}</text>",
            f.left,
            CW - PAD_R,
            f.left - 6.0,
            y + 3.5,
            lane.label()
        );
    }
    let linked: HashSet<usize> = rows(r).into_iter().collect();
    let all = marks(r, &f);
    for m in &all {
        let y = lane_y(m.lane);
        let (shape, colour) = style(m.kind);
        let first = m.entries[0];
        let href = if linked.contains(&first) {
            format!(" href=\"#{}\"", row_id(first))
        } else {
            String::new()
        };
        let _ = write!(
            svg,
            "<a class=\"mark\"{href} data-lane=\"{}\" data-kind=\"{}\" data-count=\"{}\" data-at=\"{}\"><title>{}</title>{}",
            m.lane.id(),
            m.kind.as_str(),
            m.entries.len(),
            esc(&r.timeline[first].at),
            esc(&tip(r, m)),
            shape_svg(shape, m.x, y, colour)
        );
        if m.entries.len() > 1 {
            let _ = write!(
                svg,
                "<text class=\"count\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" font-weight=\"700\" text-anchor=\"middle\" fill=\"#1d2733\" paint-order=\"stroke\" stroke=\"#fff\" stroke-width=\"3\">{}</text>",
                m.x,
                y - RADIUS - 3.0,
                m.entries.len()
            );
        }
        svg.push_str("</a>");
    }
    svg.push_str("</svg><div class=\"legend\">");
    let mut kinds: Vec<EntryType> = all.iter().map(|m| m.kind).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let _ = write!(svg, "<span>{}{}</span>", icon(kind), kind.as_str());
    }
    svg.push_str("</div></div>");
    svg
}
