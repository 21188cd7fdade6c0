//! The map of sites and links, with the placements at the end of the run.

use std::collections::HashMap;
use std::fmt::Write;

use super::escape::esc;
use crate::report::{MapLink, MapSite, Report, natural_cmp};

const WIDTH: f64 = 1320.0;

/// Paths the network controller activated: a colour no latency band uses.
const ACTIVATED: &str = "#8e44ad";

pub(super) const MAP_LEGEND: &str = "<div class=\"legend\"><span><i style=\"background:#2f9e5b\"></i>link latency &le; 2ms</span><span><i style=\"background:#7cb342\"></i>&le; 5ms</span><span><i style=\"background:#e6a700\"></i>&le; 10ms</span><span><i style=\"background:#d64545\"></i>&gt; 10ms</span><span><i style=\"background:#fff;border:2px dashed #c0392b\"></i>link changed during the run</span><span><i style=\"background:#fff;border:2px dotted #8e44ad\"></i>path activated by the network controller</span><span><i style=\"background:#2f6fd6\"></i>node with pods (count)</span><span><i style=\"background:#e9edf2\"></i>node without pods</span><span><i style=\"background:#fde2e2;border:1px solid #d64545\"></i>node not ready</span><span><i style=\"background:#eef6ff;border:1px dashed #7aa7e6\"></i>users</span></div>";

fn tier_rank(tier: &str) -> f64 {
    match tier {
        "regional" | "region" | "core" | "cloud" | "dc" | "datacenter" => 0.0,
        "metro" | "aggregation" => 1.0,
        "edge" => 2.0,
        "far-edge" | "access" => 3.0,
        "users" => 5.0,
        _ => 2.5,
    }
}

pub fn latency_colour(ms: f64) -> &'static str {
    if ms <= 2.0 {
        "#2f9e5b"
    } else if ms <= 5.0 {
        "#7cb342"
    } else if ms <= 10.0 {
        "#e6a700"
    } else {
        "#d64545"
    }
}

struct Placed {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

fn site_size(site: &MapSite, compact: bool) -> (f64, f64) {
    if site.tier == "users" {
        return (if compact { 60.0 } else { 96.0 }, 34.0);
    }
    let n = site.nodes.len();
    if compact {
        return (60.0, 40.0);
    }
    if n == 0 || n > 6 {
        (96.0, 50.0)
    } else {
        ((n as f64 * 30.0 + 12.0).max(80.0), 56.0)
    }
}

pub(super) fn map_svg(r: &Report) -> String {
    let sites = &r.map.sites;
    if sites.is_empty() {
        return "<p class=\"note\">No sites: the scenario has no nodes and no NetworkTopology.</p>"
            .into();
    }
    let compact = sites.len() > 40;
    // Layers by tier.
    let mut tiers: Vec<(f64, String)> = Vec::new();
    for s in sites {
        if !tiers.iter().any(|(_, t)| *t == s.tier) {
            tiers.push((tier_rank(&s.tier), s.tier.clone()));
        }
    }
    tiers.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let index: HashMap<&str, usize> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); sites.len()];
    for l in &r.map.links {
        if let (Some(&a), Some(&b)) = (index.get(l.from.as_str()), index.get(l.to.as_str())) {
            neighbours[a].push(b);
            neighbours[b].push(a);
        }
    }
    let gap = if compact { 8.0 } else { 18.0 };
    let row_gap = if compact { 46.0 } else { 70.0 };
    let mut pos: Vec<Option<Placed>> = (0..sites.len()).map(|_| None).collect();
    let mut y = 20.0;
    for (_, tier) in &tiers {
        let mut members: Vec<usize> = (0..sites.len())
            .filter(|&i| sites[i].tier == *tier)
            .collect();
        // Order by the mean x of the neighbours already placed, then by name.
        let key = |i: usize, pos: &Vec<Option<Placed>>| -> Option<f64> {
            let xs: Vec<f64> = neighbours[i]
                .iter()
                .filter_map(|&j| pos[j].as_ref().map(|p| p.x + p.w / 2.0))
                .collect();
            (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
        };
        members.sort_by(|&a, &b| match (key(a, &pos), key(b, &pos)) {
            (Some(x), Some(y)) => x
                .total_cmp(&y)
                .then_with(|| natural_cmp(&sites[a].name, &sites[b].name)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => natural_cmp(&sites[a].name, &sites[b].name),
        });
        // Rows that fit the width.
        let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
        let mut used = 0.0;
        for i in members {
            let (w, _) = site_size(&sites[i], compact);
            if used + w > WIDTH - 40.0 && !rows.last().is_some_and(Vec::is_empty) {
                rows.push(Vec::new());
                used = 0.0;
            }
            used += w + gap;
            if let Some(row) = rows.last_mut() {
                row.push(i);
            }
        }
        for row in rows {
            let total: f64 = row
                .iter()
                .map(|&i| site_size(&sites[i], compact).0)
                .sum::<f64>()
                + gap * (row.len().saturating_sub(1)) as f64;
            // Spread the row over the width, but keep sites near their neighbours when the
            // row is short.
            let spare = (WIDTH - 40.0 - total).max(0.0);
            let extra = if row.len() > 1 {
                (spare / row.len() as f64).min(140.0)
            } else {
                0.0
            };
            let span = total + extra * row.len().saturating_sub(1) as f64;
            let mut x = (WIDTH - span) / 2.0;
            let mut tallest: f64 = 0.0;
            for &i in &row {
                let (w, hgt) = site_size(&sites[i], compact);
                pos[i] = Some(Placed { x, y, w, h: hgt });
                x += w + gap + extra;
                tallest = tallest.max(hgt);
            }
            y += tallest + row_gap;
        }
    }
    let height = y - row_gap + 40.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"site-map\" viewBox=\"0 0 {WIDTH} {height:.0}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"map of sites and links\">"
    );
    // Links under the sites.
    let label_links = r.map.links.len() <= 60;
    for l in &r.map.links {
        let (Some(&a), Some(&b)) = (index.get(l.from.as_str()), index.get(l.to.as_str())) else {
            continue;
        };
        let (Some(pa), Some(pb)) = (&pos[a], &pos[b]) else {
            continue;
        };
        // Two sites of one row with none between them are joined straight; others by an
        // arc over the row.
        let (lo, hi) = (pa.x.min(pb.x), pa.x.max(pb.x));
        let arc = (pa.y - pb.y).abs() < 1.0
            && pos
                .iter()
                .flatten()
                .any(|p| (p.y - pa.y).abs() < 1.0 && p.x > lo && p.x < hi);
        // An activated path stands beside a link of the spec between the same sites:
        // always drawn as an arc so that both show.
        link_svg(
            &mut svg,
            l,
            pa,
            pb,
            label_links,
            arc || l.activated.is_some(),
        );
    }
    for (i, s) in sites.iter().enumerate() {
        if let Some(p) = &pos[i] {
            site_svg(&mut svg, s, p, compact);
        }
    }
    svg.push_str("</svg>");
    svg
}

fn link_svg(svg: &mut String, l: &MapLink, a: &Placed, b: &Placed, label: bool, arc: bool) {
    let (ax, ay) = (a.x + a.w / 2.0, a.y + a.h / 2.0);
    let (bx, by) = (b.x + b.w / 2.0, b.y + b.h / 2.0);
    let activated = l.activated.is_some();
    let colour = if activated {
        ACTIVATED
    } else {
        latency_colour(l.latency_ms)
    };
    let width = if l.changed || activated { 3.5 } else { 2.2 };
    let dash = if activated {
        " stroke-dasharray=\"2 5\""
    } else if l.changed {
        " stroke-dasharray=\"7 4\""
    } else {
        ""
    };
    let title = format!(
        "{} {} {}: latency {}{}{}",
        l.from,
        if l.one_way { "->" } else { "-" },
        l.to,
        l.latency,
        l.bandwidth
            .as_ref()
            .map(|b| format!(", bandwidth {b}"))
            .unwrap_or_default(),
        match &l.activated {
            Some(path) => format!(
                " (path {path} activated by the network controller for {})",
                l.bindings.join(", ")
            ),
            None if l.changed => " (changed during the run)".to_string(),
            None => String::new(),
        }
    );
    let (path, mx, my) = if arc {
        // Same row with sites between: an arc above the row.
        let lift = ((bx - ax).abs() / 5.0).clamp(24.0, 54.0);
        let top = ay - a.h / 2.0;
        let (cx, cy) = ((ax + bx) / 2.0, top - 2.0 * lift);
        (
            format!(
                "M{ax:.1},{top:.1} Q{cx:.1},{cy:.1} {bx:.1},{:.1}",
                by - b.h / 2.0
            ),
            cx,
            top - lift - 1.0,
        )
    } else if (ay - by).abs() < 1.0 {
        let (l, r) = if a.x < b.x { (a, b) } else { (b, a) };
        let (x1, x2) = (l.x + l.w, r.x);
        (
            format!("M{x1:.1},{ay:.1} L{x2:.1},{by:.1}"),
            (x1 + x2) / 2.0,
            ay - 5.0,
        )
    } else {
        (
            format!("M{ax:.1},{ay:.1} L{bx:.1},{by:.1}"),
            (ax + bx) / 2.0,
            (ay + by) / 2.0,
        )
    };
    let _ = write!(
        svg,
        "<g class=\"link\"><title>{}</title><path d=\"{path}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\" stroke-linecap=\"round\"{dash} opacity=\"0.9\"/>",
        esc(&title)
    );
    if label || l.changed || activated {
        let weight = if l.changed || activated { "700" } else { "400" };
        let fill = match (activated, l.changed) {
            (true, _) => ACTIVATED,
            (false, true) => "#c0392b",
            (false, false) => "#66717f",
        };
        // An activated path is labelled with its catalogue entry.
        let text = match &l.activated {
            Some(path) => {
                let entry = path.rsplit('/').next().unwrap_or(path);
                format!("{entry} {}", l.latency)
            }
            None => l.latency.clone(),
        };
        let _ = write!(
            svg,
            "<text x=\"{mx:.1}\" y=\"{:.1}\" font-size=\"10.5\" text-anchor=\"middle\" fill=\"{fill}\" font-weight=\"{weight}\" paint-order=\"stroke\" stroke=\"#fff\" stroke-width=\"3\">{}</text>",
            my + 3.5,
            esc(&text)
        );
    }
    svg.push_str("</g>");
}

fn site_svg(svg: &mut String, s: &MapSite, p: &Placed, compact: bool) {
    let pods: usize = s.nodes.iter().map(|n| n.pods.len()).sum();
    let users = s.tier == "users";
    let (fill, stroke, dash) = if users {
        ("#eef6ff", "#7aa7e6", " stroke-dasharray=\"4 3\"")
    } else {
        ("#ffffff", "#b8c2cd", "")
    };
    let title = if users {
        format!("{} (users)", s.name)
    } else {
        format!(
            "{} ({}): {} node{}, {} pod{}",
            s.name,
            s.tier,
            s.nodes.len(),
            if s.nodes.len() == 1 { "" } else { "s" },
            pods,
            if pods == 1 { "" } else { "s" }
        )
    };
    let _ = write!(
        svg,
        "<g class=\"site\" data-site=\"{}\"><title>{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.3\"{dash}/>",
        esc(&s.name),
        esc(&title),
        p.x,
        p.y,
        p.w,
        p.h,
        if users { 17 } else { 8 }
    );
    let name_size = if compact { 9.5 } else { 12.0 };
    let name_y = if users {
        p.y + p.h / 2.0 + 4.0
    } else {
        p.y + 15.0
    };
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{name_y:.1}\" font-size=\"{name_size}\" font-weight=\"600\" text-anchor=\"middle\" fill=\"{}\">{}</text>",
        p.x + p.w / 2.0,
        if users { "#2f5f9e" } else { "#1d2733" },
        esc(&s.name)
    );
    if users {
        svg.push_str("</g>");
        return;
    }
    let all_ready = s.nodes.iter().all(|n| n.ready);
    if compact || s.nodes.len() > 6 {
        let colour = if !all_ready {
            "#d64545"
        } else if pods > 0 {
            "#2f6fd6"
        } else {
            "#66717f"
        };
        let pod_names: Vec<String> = s
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{}: {} pods{}",
                    n.name,
                    n.pods.len(),
                    if n.ready { "" } else { " (not ready)" }
                )
            })
            .collect();
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{}\" text-anchor=\"middle\" fill=\"{colour}\"><title>{}</title>{}n · {}p</text>",
            p.x + p.w / 2.0,
            p.y + p.h - 10.0,
            if compact { 9.0 } else { 11.0 },
            esc(&pod_names.join("\n")),
            s.nodes.len(),
            pods
        );
        svg.push_str("</g>");
        return;
    }
    let n = s.nodes.len() as f64;
    let start = p.x + (p.w - (n * 30.0 - 4.0)) / 2.0;
    for (k, node) in s.nodes.iter().enumerate() {
        let x = start + k as f64 * 30.0;
        let y = p.y + 24.0;
        let (fill, stroke, text) = if !node.ready {
            ("#fde2e2", "#d64545", "#b03030")
        } else if node.pods.is_empty() {
            ("#e9edf2", "#cfd6de", "#66717f")
        } else {
            ("#2f6fd6", "#2f6fd6", "#ffffff")
        };
        let mut tip = format!(
            "{}{}",
            node.name,
            if node.ready { "" } else { " (not ready)" }
        );
        if node.pods.is_empty() {
            tip.push_str(": no pods");
        } else {
            tip.push_str(&format!(": {}", node.pods.join(", ")));
        }
        let label = if node.ready {
            node.pods.len().to_string()
        } else {
            "✕".to_string()
        };
        let _ = write!(
            svg,
            "<g class=\"node\" data-node=\"{}\"><title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"26\" height=\"22\" rx=\"4\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" font-weight=\"600\" text-anchor=\"middle\" fill=\"{text}\">{label}</text></g>",
            esc(&node.name),
            esc(&tip),
            x + 13.0,
            y + 15.0
        );
    }
    svg.push_str("</g>");
}
