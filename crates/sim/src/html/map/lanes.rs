//! Service chains on the map: each lane a path from its ingress site through the nodes of
//! its hops, in order, to its egress site, coloured by the lane's compliance, at the end
//! and (by the page's script) at each moment.

use std::collections::HashMap;
use std::fmt::Write;

use serde_json::{Value, json};

use super::layout::{Layout, Placed};
use crate::html::escape::esc;
use crate::report::{MapSite, MomentLane, Report};

/// Lane colours by compliance (Compliant, Limit, Violation; anything else: Pending).
pub(super) const LANE_COLOURS: [(&str, &str); 3] = [
    ("Compliant", "#0e7490"),
    ("Limit", "#e6a700"),
    ("Violation", "#d64545"),
];
const LANE_PENDING: &str = "#9aa5b1";

pub(super) fn lane_colour(compliance: &str) -> &'static str {
    LANE_COLOURS
        .iter()
        .find(|(c, _)| *c == compliance)
        .map_or(LANE_PENDING, |(_, colour)| colour)
}

/// A lane's key in the page: `namespace/chain#lane`.
pub(super) fn lane_key(l: &MomentLane) -> String {
    format!("{}#{}", l.chain, l.lane)
}

/// Where things are on the map: the centre of each site's box, and of each node's box
/// where the site draws a box per node (its site's centre where it draws counts).
struct Points {
    sites: HashMap<String, (f64, f64)>,
    nodes: HashMap<String, (f64, f64)>,
}

impl Points {
    fn new(sites: &[MapSite], lay: &Layout) -> Points {
        let mut points = Points {
            sites: HashMap::new(),
            nodes: HashMap::new(),
        };
        for (s, p) in sites.iter().zip(&lay.pos) {
            let Some(p) = p else { continue };
            points
                .sites
                .insert(s.name.clone(), (p.x + p.w / 2.0, p.y + p.h / 2.0));
            for (k, n) in s.nodes.iter().enumerate() {
                points
                    .nodes
                    .insert(n.name.clone(), node_centre(s, p, lay.compact, k));
            }
        }
        points
    }

    /// The path of a lane, offset by its index so that lanes along the same places show
    /// side by side; `None` while a hop is not placed or a place is not on the map.
    fn path(&self, l: &MomentLane) -> Option<String> {
        let mut points = Vec::new();
        if let Some(site) = &l.ingress {
            points.push(*self.sites.get(site)?);
        }
        for node in &l.nodes {
            points.push(*self.nodes.get(node.as_deref()?)?);
        }
        if let Some(site) = &l.egress {
            points.push(*self.sites.get(site)?);
        }
        if points.len() < 2 {
            return None;
        }
        let shift = (l.lane % 4) as f64 * 4.0 - 2.0;
        let mut d = String::new();
        for (i, (x, y)) in points.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { " L" },
                x + shift,
                y + shift
            );
        }
        Some(d)
    }
}

/// The centre of node `k`'s box as `sites::site_svg` draws it.
fn node_centre(s: &MapSite, p: &Placed, compact: bool, k: usize) -> (f64, f64) {
    if compact || s.nodes.len() > 6 {
        return (p.x + p.w / 2.0, p.y + p.h / 2.0);
    }
    let n = s.nodes.len() as f64;
    let start = p.x + (p.w - (n * 30.0 - 4.0)) / 2.0;
    (start + k as f64 * 30.0 + 13.0, p.y + 24.0 + 11.0)
}

fn title(l: &MomentLane, at: &str) -> String {
    let hops: Vec<&str> = l
        .nodes
        .iter()
        .map(|n| n.as_deref().unwrap_or("not placed"))
        .collect();
    format!(
        "lane {} of {} at {at}: {} > {} > {}: {} ({})",
        l.lane,
        l.chain,
        l.ingress.as_deref().unwrap_or("-"),
        hops.join(" > "),
        l.egress.as_deref().unwrap_or("-"),
        l.latency.as_deref().unwrap_or("no latency yet"),
        l.compliance
    )
}

/// Draws every lane as it is at the end (a lane gone by then is drawn hidden) and returns
/// what the script shows at each moment: lane key -> per moment `{d, colour, nodes,
/// compliance, title}` or null.
pub(super) fn lanes_svg(svg: &mut String, r: &Report, lay: &Layout) -> Value {
    let moments = &r.map.moments;
    let mut keys: Vec<String> = Vec::new();
    for m in moments {
        for l in &m.lanes {
            let key = lane_key(l);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    if keys.is_empty() {
        return Value::Null;
    }
    let points = Points::new(&r.map.sites, lay);
    let mut data = serde_json::Map::new();
    svg.push_str("<defs><marker id=\"lane-hop\" viewBox=\"0 0 8 8\" refX=\"4\" refY=\"4\" markerWidth=\"4\" markerHeight=\"4\"><circle cx=\"4\" cy=\"4\" r=\"3.2\" fill=\"#1d2733\"/></marker></defs>");
    for key in &keys {
        let states: Vec<Value> = moments
            .iter()
            .map(|m| {
                let Some(l) = m.lanes.iter().find(|l| lane_key(l) == *key) else {
                    return Value::Null;
                };
                let Some(d) = points.path(l) else {
                    return Value::Null;
                };
                let nodes: Vec<&str> = l.nodes.iter().flatten().map(String::as_str).collect();
                json!({
                    "d": d,
                    "colour": lane_colour(&l.compliance),
                    "compliance": l.compliance,
                    "nodes": nodes.join(" "),
                    "title": title(l, &m.at),
                })
            })
            .collect();
        let end = states.last().cloned().unwrap_or(Value::Null);
        let text = |k: &str| end.get(k).and_then(Value::as_str).unwrap_or_default();
        let _ = write!(
            svg,
            "<g class=\"lane\" data-lane=\"{}\" data-nodes=\"{}\" data-compliance=\"{}\"{}><title>{}</title><path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"3\" stroke-opacity=\"0.85\" stroke-linejoin=\"round\" stroke-linecap=\"round\" marker-mid=\"url(#lane-hop)\"/></g>",
            esc(key),
            esc(text("nodes")),
            esc(text("compliance")),
            if end.is_null() {
                " style=\"display:none\""
            } else {
                ""
            },
            esc(text("title")),
            esc(text("d")),
            if end.is_null() {
                LANE_PENDING
            } else {
                text("colour")
            },
        );
        data.insert(key.clone(), Value::Array(states));
    }
    Value::Object(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::MapNode;

    fn site(name: &str, nodes: &[&str]) -> MapSite {
        MapSite {
            name: name.into(),
            tier: "edge".into(),
            labels: Default::default(),
            nodes: nodes
                .iter()
                .map(|n| MapNode {
                    name: n.to_string(),
                    ready: true,
                    pods: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_lane_goes_from_its_ingress_through_its_hops_nodes_to_its_egress() {
        let sites = vec![
            site("ran", &[]),
            site("edge", &["a1", "a2"]),
            site("core", &[]),
        ];
        let placed = |x: f64| {
            Some(Placed {
                x,
                y: 10.0,
                w: 100.0,
                h: 60.0,
            })
        };
        let lay = Layout {
            pos: vec![placed(0.0), placed(200.0), placed(400.0)],
            height: 100.0,
            compact: false,
        };
        let points = Points::new(&sites, &lay);
        let lane = |nodes: [Option<&str>; 2]| MomentLane {
            chain: "upf/up".into(),
            lane: 1,
            ingress: Some("ran".into()),
            egress: Some("core".into()),
            nodes: nodes.iter().map(|n| n.map(str::to_string)).collect(),
            latency: Some("720us".into()),
            compliance: "Compliant".into(),
        };
        // Two node boxes of 26 in a box 100 wide: a1 at 200 + 22 + 13, a2 30 further;
        // lane 1 is shifted by 2.
        assert_eq!(
            points.path(&lane([Some("a1"), Some("a2")])).as_deref(),
            Some("M52.0 42.0 L237.0 47.0 L267.0 47.0 L452.0 42.0")
        );
        assert_eq!(points.path(&lane([Some("a1"), None])), None);
        assert_eq!(lane_colour("Violation"), "#d64545");
        assert_eq!(lane_colour("Pending"), LANE_PENDING);
    }
}
