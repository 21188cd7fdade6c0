//! The HTML report: one self-contained page (inline CSS and SVG, no scripts, nothing
//! fetched) with the summary, a map of sites and links with the placements at the end,
//! charts over time (bindings by compliance, pods, latency of the links that changed,
//! and a strip of repairs and failures), the workloads and the timeline.
//!
//! The map is laid out in layers by site tier (regional, metro, edge, users: from the
//! sites' `tier` label, `kind: users` or `transit: false`); within a layer sites follow
//! the average position of the sites they link to above them, so edge sites sit under
//! their metro site and users under their edge sites. Everything is deterministic.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use crate::journal::Sample;
use crate::report::{MapLink, MapSite, Report, ReportEntry, natural_cmp};
use crate::timeline::EntryType;

const WIDTH: f64 = 1320.0;

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root { --ink:#1d2733; --muted:#66717f; --line:#d9dee5; --bg:#f6f7f9; --card:#fff;
  --ok:#2f9e5b; --limit:#e6a700; --bad:#d64545; --err:#8e44ad; --pending:#a3adb8; --blue:#2f6fd6; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); font:14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1380px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
header h1 small { font-weight: 400; color: var(--muted); font-size: 15px; margin-left: 8px; }
header p { margin: 4px 0; max-width: 980px; }
.meta { color: var(--muted); font-size: 13px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
h2 small { font-weight: 400; color: var(--muted); font-size: 13px; margin-left: 6px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin-top:18px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; min-width:112px; }
.card .v { font-size:26px; font-weight:650; line-height:1.1; }
.card .k { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card.wide { min-width: 250px; }
.card .small { color:var(--muted); font-size:11.5px; margin-top:2px; }
.bar { display:flex; height:10px; border-radius:5px; overflow:hidden; margin-top:8px; background:#eef0f3; }
.bar span { display:block; height:100%; }
.panel { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:10px 12px; }
.grid { display:grid; grid-template-columns: 1fr 1fr; gap:14px; }
svg { display:block; width:100%; height:auto; }
svg text { font-family: inherit; }
.legend { display:flex; flex-wrap:wrap; gap:14px; color:var(--muted); font-size:12px; margin:8px 4px 2px; }
.legend i { display:inline-block; width:12px; height:12px; border-radius:3px; vertical-align:-2px; margin-right:5px; }
table { border-collapse: collapse; width:100%; background:var(--card); border:1px solid var(--line); border-radius:10px; overflow:hidden; }
th, td { text-align:left; padding:5px 10px; border-bottom:1px solid #eef0f3; vertical-align: top; }
th { background:#f0f2f5; font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); }
td.t { font-variant-numeric: tabular-nums; color: var(--muted); white-space:nowrap; }
td.o { white-space:nowrap; }
tr.detail td { color:#97a0ab; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; color:#fff; white-space:nowrap; }
.note { color: var(--muted); font-size: 13px; }
.ok { color: var(--ok); } .bad { color: var(--bad); }
"#;

fn badge_colour(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Planned | EntryType::Bound => "#2f6fd6",
        EntryType::PlanRun => "#1d4f9c",
        EntryType::Unplaceable | EntryType::ActionFailed | EntryType::PodFailed => "#d64545",
        EntryType::ComplianceChanged => "#6c5ce7",
        EntryType::Mitigated => "#2f9e5b",
        EntryType::MitigationFailed => "#b5521b",
        EntryType::Evicted => "#e17a00",
        EntryType::NodeFailed => "#b03030",
        EntryType::NodeRecovered => "#3c9d76",
        EntryType::LinkChanged => "#c0392b",
        EntryType::Note => "#4b5563",
        EntryType::Applied | EntryType::Deleted | EntryType::Scaled => "#5b6b7f",
        EntryType::Info => "#a3adb8",
    }
}

/// The whole page.
pub fn render(r: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>edgeplane sim: {}</title><style>{CSS}</style></head><body><main>",
        esc(&r.scenario)
    );
    header(&mut h, r);
    cards(&mut h, r);
    let _ = write!(
        h,
        "<section id=\"map\"><h2>Sites, links and placements <small>at the end of the run ({}); hover a node for its pods, a link for its metrics</small></h2><div class=\"panel\">",
        esc(&r.summary.simulated)
    );
    h.push_str(&map_svg(r));
    h.push_str(MAP_LEGEND);
    h.push_str("</div></section>");
    h.push_str("<section id=\"charts\"><h2>Over time</h2><div class=\"grid\">");
    h.push_str(&bindings_chart(r));
    h.push_str(&pods_chart(r));
    h.push_str(&links_chart(r));
    h.push_str(&events_strip(r));
    h.push_str("</div></section>");
    workloads(&mut h, r);
    timeline(&mut h, r);
    h.push_str("<p class=\"note\">Generated by <code>edgeplane sim</code>. Times are simulated time since the start of the scenario.</p></main></body></html>\n");
    h
}

fn header(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<header><h1>{} <small>edgeplane simulation</small></h1>",
        esc(&r.scenario)
    );
    if !r.description.is_empty() {
        let _ = write!(h, "<p>{}</p>", esc(&r.description));
    }
    let components = if r.components.is_empty() {
        "none (edgeplane's controllers were not wired in: placements by the embedded cluster's default scheduler, no binding evaluated)".to_string()
    } else {
        r.components.join(", ")
    };
    let _ = write!(
        h,
        "<p class=\"meta\">{} of simulated time in {:.2} s of wall time · {} scenario events · components: {}</p></header>",
        esc(&r.duration),
        r.summary.wall_millis as f64 / 1000.0,
        r.summary.scenario_events,
        esc(&components)
    );
}

fn cards(h: &mut String, r: &Report) {
    let s = &r.summary;
    h.push_str("<section class=\"cards\" id=\"summary\">");
    let card = |h: &mut String, v: String, k: &str, class: &str| {
        let _ = write!(
            h,
            "<div class=\"card\"><div class=\"v {class}\">{v}</div><div class=\"k\">{}</div></div>",
            esc(k)
        );
    };
    card(h, s.pods_placed.to_string(), "pods placed", "");
    card(
        h,
        s.pods_unplaced.to_string(),
        "pods unplaced",
        if s.pods_unplaced > 0 { "bad" } else { "" },
    );
    card(
        h,
        s.pods_lost.to_string(),
        "pods lost",
        if s.pods_lost > 0 { "bad" } else { "ok" },
    );
    card(h, s.plan_runs.to_string(), "plan runs", "");
    card(h, s.mitigations.to_string(), "mitigations", "");
    card(h, s.evictions.to_string(), "evictions", "");
    card(h, s.node_failures.to_string(), "node failures", "");
    let b = &s.bindings;
    let total = b.total().max(1) as f64;
    let _ = write!(
        h,
        "<div class=\"card wide\"><div class=\"v\">{}</div><div class=\"k\">bindings at the end</div><div class=\"small\">{} compliant · {} limit · {} violation · {} pending · {} error</div><div class=\"bar\">",
        b.total(),
        b.compliant,
        b.limit,
        b.violation,
        b.pending,
        b.error
    );
    for (n, colour) in [
        (b.compliant, "var(--ok)"),
        (b.limit, "var(--limit)"),
        (b.violation, "var(--bad)"),
        (b.error, "var(--err)"),
        (b.pending, "var(--pending)"),
    ] {
        if n > 0 {
            let _ = write!(
                h,
                "<span style=\"width:{:.2}%;background:{colour}\"></span>",
                n as f64 / total * 100.0
            );
        }
    }
    h.push_str("</div></div></section>");
}

// ---- map ------------------------------------------------------------------------------

/// Paths the network controller activated: a colour no latency band uses.
const ACTIVATED: &str = "#8e44ad";

const MAP_LEGEND: &str = "<div class=\"legend\"><span><i style=\"background:#2f9e5b\"></i>link latency &le; 2ms</span><span><i style=\"background:#7cb342\"></i>&le; 5ms</span><span><i style=\"background:#e6a700\"></i>&le; 10ms</span><span><i style=\"background:#d64545\"></i>&gt; 10ms</span><span><i style=\"background:#fff;border:2px dashed #c0392b\"></i>link changed during the run</span><span><i style=\"background:#fff;border:2px dotted #8e44ad\"></i>path activated by the network controller</span><span><i style=\"background:#2f6fd6\"></i>node with pods (count)</span><span><i style=\"background:#e9edf2\"></i>node without pods</span><span><i style=\"background:#fde2e2;border:1px solid #d64545\"></i>node not ready</span><span><i style=\"background:#eef6ff;border:1px dashed #7aa7e6\"></i>users</span></div>";

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

fn map_svg(r: &Report) -> String {
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

// ---- charts ---------------------------------------------------------------------------

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
fn nice_step(max: f64, n: f64) -> f64 {
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

fn time_label(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}h", s / 3600, (s / 60) % 60)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn time_step(total: f64) -> f64 {
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

fn bindings_chart(r: &Report) -> String {
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

fn pods_chart(r: &Report) -> String {
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

fn links_chart(r: &Report) -> String {
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

fn events_strip(r: &Report) -> String {
    let x_max = run_seconds(r);
    let f = Frame {
        x_max,
        y_max: 1.0,
        left: 82.0,
    };
    let lanes: [(&str, &[EntryType], &str); 6] = [
        (
            "nodes",
            &[EntryType::NodeFailed, EntryType::NodeRecovered],
            "#b03030",
        ),
        ("links", &[EntryType::LinkChanged], "#c0392b"),
        (
            "mitigations",
            &[EntryType::Mitigated, EntryType::MitigationFailed],
            "#2f9e5b",
        ),
        ("evictions", &[EntryType::Evicted], "#e17a00"),
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

// ---- tables ---------------------------------------------------------------------------

fn workloads(h: &mut String, r: &Report) {
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

fn timeline(h: &mut String, r: &Report) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_step(10.0, 4.0), 2.5);
        assert_eq!(nice_step(7.0, 4.0), 2.0);
        assert_eq!(time_step(2700.0), 300.0);
        assert_eq!(time_label(2700.0), "45m");
        assert_eq!(time_label(5400.0), "1:30h");
        assert_eq!(latency_colour(30.0), "#d64545");
    }
}
