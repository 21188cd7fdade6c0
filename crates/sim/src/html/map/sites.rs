//! Sites on the map: a box per site with its name, and a box per node with the pods it
//! holds and its state (Ready, failed but not yet noticed, NotReady). The states are
//! classes the page's style colours, so the script can show any moment by changing them.

use std::collections::HashMap;
use std::fmt::Write;

use super::layout::{Placed, name_size, text_width};
use crate::html::escape::esc;
use crate::report::{MapSite, MomentNode, NodeState};

/// How a node looks: its `data-state` and the number in its box. A Ready node counts the
/// pods placed on it; a failed or NotReady one every pod still bound to it (they are
/// stuck there until the taint manager deletes them or the node returns).
pub(super) fn node_look(node: Option<&MomentNode>) -> (&'static str, usize) {
    match node {
        None => ("empty", 0),
        Some(n) => match n.state {
            NodeState::Ready if n.pods > 0 => ("pods", n.pods),
            NodeState::Ready => ("empty", 0),
            NodeState::Failed => ("failed", n.pods + n.terminating),
            NodeState::NotReady => ("notready", n.pods + n.terminating),
        },
    }
}

fn state_text(node: Option<&MomentNode>) -> String {
    let Some(n) = node else {
        return "Ready".into();
    };
    let state = match n.state {
        NodeState::Ready => "Ready",
        NodeState::Failed => "failed, not noticed yet",
        NodeState::NotReady => "NotReady",
    };
    if n.terminating > 0 {
        format!("{state}, {} terminating", n.terminating)
    } else {
        state.to_string()
    }
}

/// `name` shortened with an ellipsis to fit `width` pixels.
fn fit(name: &str, size: f64, width: f64) -> String {
    if text_width(name, size, true) <= width {
        return name.to_string();
    }
    let mut out: String = name.to_string();
    while !out.is_empty() && text_width(&format!("{out}…"), size, true) > width {
        out.pop();
    }
    format!("{out}…")
}

pub(super) fn site_svg(
    svg: &mut String,
    s: &MapSite,
    p: &Placed,
    compact: bool,
    nodes: &HashMap<&str, &MomentNode>,
) {
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
            "{} ({}): {} node{}, {} pod{} at the end",
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
    let size = name_size(compact);
    let name_y = if users {
        p.y + p.h / 2.0 + 4.0
    } else {
        p.y + 15.0
    };
    // Boxes are as wide as their names but for compact maps, which shorten long ones.
    let shown = fit(&s.name, size, p.w - 8.0);
    let _ = write!(
        svg,
        "<text class=\"name\" x=\"{:.1}\" y=\"{name_y:.1}\" font-size=\"{size}\" font-weight=\"600\" text-anchor=\"middle\" fill=\"{}\">{}</text>",
        p.x + p.w / 2.0,
        if users { "#2f5f9e" } else { "#1d2733" },
        esc(&shown)
    );
    if users {
        svg.push_str("</g>");
        return;
    }
    if compact || s.nodes.len() > 6 {
        compact_counts(svg, s, p, compact, nodes);
        svg.push_str("</g>");
        return;
    }
    let n = s.nodes.len() as f64;
    let start = p.x + (p.w - (n * 30.0 - 4.0)) / 2.0;
    for (k, node) in s.nodes.iter().enumerate() {
        let x = start + k as f64 * 30.0;
        let y = p.y + 24.0;
        let at_end = nodes.get(node.name.as_str()).copied();
        let (state, count) = node_look(at_end);
        let mut tip = format!("{} ({})", node.name, state_text(at_end));
        if node.pods.is_empty() {
            tip.push_str(": no pods");
        } else {
            tip.push_str(&format!(": {}", node.pods.join(", ")));
        }
        let _ = write!(
            svg,
            "<g class=\"node\" data-node=\"{}\" data-state=\"{state}\"><title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"26\" height=\"22\" rx=\"4\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" font-weight=\"600\" text-anchor=\"middle\">{count}</text></g>",
            esc(&node.name),
            esc(&tip),
            x + 13.0,
            y + 15.0
        );
    }
    svg.push_str("</g>");
}

/// A site with many nodes (or a map of many sites): `3n · 12p`, red when a node is not
/// Ready.
fn compact_counts(
    svg: &mut String,
    s: &MapSite,
    p: &Placed,
    compact: bool,
    nodes: &HashMap<&str, &MomentNode>,
) {
    let mut pods = 0;
    let mut down = false;
    for n in &s.nodes {
        let (state, count) = node_look(nodes.get(n.name.as_str()).copied());
        pods += count;
        down |= matches!(state, "failed" | "notready");
    }
    let state = if down {
        "down"
    } else if pods > 0 {
        "pods"
    } else {
        "empty"
    };
    let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
    let tip: Vec<String> = s
        .nodes
        .iter()
        .map(|n| {
            let at_end = nodes.get(n.name.as_str()).copied();
            format!(
                "{} ({}): {} pods",
                n.name,
                state_text(at_end),
                node_look(at_end).1
            )
        })
        .collect();
    let _ = write!(
        svg,
        "<text class=\"site-count\" data-nodes=\"{}\" data-state=\"{state}\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"{}\" text-anchor=\"middle\"><title>{}</title>{}n · {pods}p</text>",
        esc(&names.join(" ")),
        p.x + p.w / 2.0,
        p.y + p.h - 10.0,
        if compact { 9.0 } else { 11.0 },
        esc(&tip.join("\n")),
        s.nodes.len(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_node_counts_the_pods_stuck_on_it() {
        let node = |state, pods, terminating| MomentNode {
            name: "n".into(),
            state,
            pods,
            terminating,
        };
        assert_eq!(node_look(None), ("empty", 0));
        assert_eq!(node_look(Some(&node(NodeState::Ready, 3, 1))), ("pods", 3));
        assert_eq!(node_look(Some(&node(NodeState::Ready, 0, 4))), ("empty", 0));
        assert_eq!(
            node_look(Some(&node(NodeState::Failed, 4, 0))),
            ("failed", 4)
        );
        assert_eq!(
            node_look(Some(&node(NodeState::NotReady, 1, 3))),
            ("notready", 4)
        );
    }

    #[test]
    fn long_names_are_shortened_to_fit() {
        assert_eq!(fit("edge-1", 9.5, 80.0), "edge-1");
        let short = fit("festival-grounds-north-entrance", 9.5, 80.0);
        assert!(short.ends_with('…') && short.len() < 31, "{short}");
        assert!(text_width(&short, 9.5, true) <= 80.0);
    }
}
