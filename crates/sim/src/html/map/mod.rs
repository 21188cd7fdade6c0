//! The map of sites and links. It shows the end of the run, and a slider shows it at each
//! moment of the run (the report's `map.moments`): nodes failed, NotReady, the pods on
//! each, the latency of the links that changed, the paths the network controller had
//! activated, and the lanes of service chains. Without the page's script the map stays at
//! the end.
//!
//! Files: `layout` (where sites go), `links` (lines and their labels), `sites` (site and
//! node boxes), `lanes` (service chains' lanes), `slider` (the moments and their controls).

mod lanes;
mod layout;
mod links;
mod sites;
mod slider;

use std::collections::HashMap;
use std::fmt::Write;

use super::escape::esc;
use crate::observer::link_label;
use crate::report::{MapLink, MomentNode, Report};
use crate::series::path_key;

/// Paths the network controller activated: a colour no latency band uses.
pub(super) const ACTIVATED: &str = "#8e44ad";

/// Link colours by latency: up to each bound (ms) its colour; above the last,
/// [`LATENCY_OVER`]. The page's script colours links at each moment from the same table.
pub(super) const LATENCY_BANDS: [(f64, &str); 3] =
    [(2.0, "#2f9e5b"), (5.0, "#7cb342"), (10.0, "#e6a700")];
pub(super) const LATENCY_OVER: &str = "#d64545";

pub fn latency_colour(ms: f64) -> &'static str {
    LATENCY_BANDS
        .iter()
        .find(|(bound, _)| ms <= *bound)
        .map_or(LATENCY_OVER, |(_, colour)| colour)
}

const MAP_LEGEND: &str = "<div class=\"legend\"><span><i style=\"background:#2f9e5b\"></i>link latency &le; 2ms</span><span><i style=\"background:#7cb342\"></i>&le; 5ms</span><span><i style=\"background:#e6a700\"></i>&le; 10ms</span><span><i style=\"background:#d64545\"></i>&gt; 10ms</span><span><i style=\"background:#fff;border:2px dashed #c0392b\"></i>link changed during the run</span><span><i style=\"background:#fff;border:2px dotted #8e44ad\"></i>path activated by the network controller</span><span><i style=\"background:#2f6fd6\"></i>node with pods (count)</span><span><i style=\"background:#e9edf2\"></i>node without pods</span><span><i style=\"background:#fde2e2;border:1px dashed #b03030\"></i>node failed, not noticed yet</span><span><i style=\"background:#d64545\"></i>node NotReady (pods still bound)</span><span><i style=\"background:#eef6ff;border:1px dashed #7aa7e6\"></i>users</span></div>";

/// Every link the map draws: the spec's links and the paths activated at the end, then the
/// paths activated at some moment but not at the end (hidden until a moment shows them).
fn all_links(r: &Report) -> Vec<(MapLink, bool)> {
    let mut all: Vec<(MapLink, bool)> = r.map.links.iter().map(|l| (l.clone(), true)).collect();
    for m in &r.map.moments {
        for p in &m.paths {
            let known = all.iter().any(|(l, _)| {
                l.activated.as_deref() == Some(p.activated.as_str())
                    && l.from == p.from
                    && l.to == p.to
            });
            if !known {
                all.push((
                    MapLink {
                        from: p.from.clone(),
                        to: p.to.clone(),
                        one_way: p.one_way,
                        latency: p.latency.clone(),
                        latency_ms: p.latency_ms,
                        bandwidth: p.bandwidth.clone(),
                        changed: false,
                        activated: Some(p.activated.clone()),
                        bindings: p.bindings.clone(),
                    },
                    false,
                ));
            }
        }
    }
    all
}

/// The key of a link in the page and in the moments.
fn key(l: &MapLink) -> String {
    match &l.activated {
        Some(path) => path_key(path, &l.from, &l.to),
        None => link_label(&l.from, &l.to, l.one_way),
    }
}

/// The longest label a link shows at any moment, to keep room for it.
fn widest(r: &Report, l: &MapLink, key: &str) -> String {
    let mut widest = links::label_text(l);
    if l.activated.is_none() {
        for m in &r.map.moments {
            if let Some(at) = m.links.get(key)
                && at.latency.len() > widest.len()
            {
                widest = at.latency.clone();
            }
        }
    }
    widest
}

/// The map, and what the script shows of the chains' lanes at each moment.
fn map_svg(r: &Report) -> (String, serde_json::Value) {
    let sites = &r.map.sites;
    let all = all_links(r);
    let spec: Vec<MapLink> = all.iter().map(|(l, _)| l.clone()).collect();
    let lay = layout::layout(sites, &spec);
    let index: HashMap<&str, usize> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let drawn: Vec<links::Drawn<'_>> = all
        .iter()
        .map(|(l, visible)| {
            let key = key(l);
            links::Drawn {
                widest: widest(r, l, &key),
                link: l,
                key,
                visible: *visible,
            }
        })
        .collect();
    // Lines, then labels where they cover no site and no other label: the links that
    // changed and the activated paths first.
    let mut geoms: Vec<Option<links::Geometry>> = Vec::new();
    for d in &drawn {
        let ends = (
            index.get(d.link.from.as_str()),
            index.get(d.link.to.as_str()),
        );
        let (Some(&a), Some(&b)) = ends else {
            geoms.push(None);
            continue;
        };
        let (Some(pa), Some(pb)) = (&lay.pos[a], &lay.pos[b]) else {
            geoms.push(None);
            continue;
        };
        let (lo, hi) = (pa.x.min(pb.x), pa.x.max(pb.x));
        let between = (pa.y - pb.y).abs() < 1.0
            && lay
                .pos
                .iter()
                .flatten()
                .any(|p| (p.y - pa.y).abs() < 1.0 && p.x > lo && p.x < hi);
        // An activated path stands beside a link of the spec between the same sites:
        // always an arc so that both show.
        geoms.push(Some(links::geometry(
            pa,
            pb,
            between || d.link.activated.is_some(),
        )));
    }
    let label_all = drawn.len() <= 60;
    let mut taken: Vec<layout::Placed> = lay.pos.iter().flatten().copied().collect();
    let mut label_at: Vec<Option<(f64, f64)>> = vec![None; drawn.len()];
    let mut order: Vec<usize> = (0..drawn.len()).collect();
    order.sort_by_key(|&i| !(drawn[i].link.changed || drawn[i].link.activated.is_some()));
    for i in order {
        let d = &drawn[i];
        let wanted = label_all || d.link.changed || d.link.activated.is_some();
        if let (true, Some(g)) = (wanted, &geoms[i]) {
            let bold = d.link.changed || d.link.activated.is_some();
            label_at[i] = Some(links::place_label(g, &d.widest, bold, &mut taken));
        }
    }
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"site-map\" data-moment=\"{}\" viewBox=\"0 0 {} {:.0}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"map of sites and links\">",
        r.map.moments.len().saturating_sub(1),
        layout::WIDTH,
        lay.height
    );
    for (i, d) in drawn.iter().enumerate() {
        if let Some(g) = &geoms[i] {
            links::link_svg(&mut svg, d, g, label_at[i]);
        }
    }
    let end: HashMap<&str, &MomentNode> = r
        .map
        .moments
        .last()
        .map(|m| m.nodes.iter().map(|n| (n.name.as_str(), n)).collect())
        .unwrap_or_default();
    for (i, s) in sites.iter().enumerate() {
        if let Some(p) = &lay.pos[i] {
            sites::site_svg(&mut svg, s, p, lay.compact, &end);
        }
    }
    // Over the sites, so that a lane shows through the nodes it passes.
    let lanes = lanes::lanes_svg(&mut svg, r, &lay);
    svg.push_str("</svg>");
    (svg, lanes)
}

pub(super) fn map_section(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<section id=\"map\"><h2>Sites, links and placements <small>at the end of the run ({}), or at the moment the slider below picks; hover a node for its pods, a link for its metrics</small></h2><div class=\"panel\">",
        esc(&r.summary.simulated)
    );
    if r.map.sites.is_empty() {
        h.push_str(
            "<p class=\"note\">No sites: the scenario has no nodes and no NetworkTopology.</p>",
        );
    } else {
        let (svg, lanes) = map_svg(r);
        h.push_str(&svg);
        slider::slider(h, r, lanes);
    }
    h.push_str(MAP_LEGEND);
    if !r.chains.is_empty() {
        h.push_str("<div class=\"legend\" id=\"lanes-legend\">");
        for (compliance, colour) in lanes::LANE_COLOURS {
            let _ = write!(
                h,
                "<span><i style=\"background:{colour}\"></i>chain lane {compliance}</span>"
            );
        }
        h.push_str("<span>each lane of a service chain runs from its ingress site through its hops' nodes (dots) to its egress site</span></div>");
    }
    if r.multicluster.is_some() {
        h.push_str("<p class=\"note\" id=\"clusters-on-map\">Each member cluster is drawn as a node at its site: its number is the ready replicas of the hub's workloads in it; NotReady as the hub saw it, \"failed, not noticed yet\" between the scenario's failCluster and the hub's next round.</p>");
    }
    h.push_str("</div></section>");
}
