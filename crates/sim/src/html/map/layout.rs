//! Where the sites go: layers by tier (regional, metro, edge, users), and within a layer
//! the order of the sites they link to above them, so edge sites sit under their metro site
//! and users under their edge sites. Boxes are as wide as their names and nodes need.

use std::collections::HashMap;

use crate::report::{MapLink, MapSite, natural_cmp};

pub(super) const WIDTH: f64 = 1320.0;

/// A site's box on the map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Placed {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Placed {
    pub fn overlaps(&self, o: &Placed) -> f64 {
        let w = (self.x + self.w).min(o.x + o.w) - self.x.max(o.x);
        let h = (self.y + self.h).min(o.y + o.h) - self.y.max(o.y);
        if w > 0.0 && h > 0.0 { w * h } else { 0.0 }
    }
}

pub(super) struct Layout {
    pub pos: Vec<Option<Placed>>,
    pub height: f64,
    /// Many sites: small boxes with counts instead of a box per node.
    pub compact: bool,
}

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

/// The width of `text` in pixels at `size`, as sans-serif fonts draw it (close enough to
/// size boxes and keep labels apart; the browser check measures the real text).
pub(super) fn text_width(text: &str, size: f64, bold: bool) -> f64 {
    let em: f64 = text
        .chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.28,
            't' | 'f' | 'r' | '-' | ' ' | '(' | ')' | '/' => 0.36,
            'm' | 'w' | 'M' | 'W' | '%' => 0.86,
            c if c.is_ascii_uppercase() => 0.68,
            _ => 0.57,
        })
        .sum();
    em * size * if bold { 1.08 } else { 1.0 }
}

/// Font size of a site's name.
pub(super) fn name_size(compact: bool) -> f64 {
    if compact { 9.5 } else { 12.0 }
}

/// The widest a compact box gets; longer names are shortened (the full name on hover).
pub(super) const COMPACT_MAX_WIDTH: f64 = 100.0;

fn site_size(site: &MapSite, compact: bool) -> (f64, f64) {
    let name = text_width(&site.name, name_size(compact), true) + 16.0;
    if site.tier == "users" {
        let w = if compact {
            name.clamp(60.0, COMPACT_MAX_WIDTH)
        } else {
            name.max(96.0)
        };
        return (w, 34.0);
    }
    if compact {
        return (name.clamp(60.0, COMPACT_MAX_WIDTH), 40.0);
    }
    let n = site.nodes.len();
    if n == 0 || n > 6 {
        (name.max(96.0), 50.0)
    } else {
        ((n as f64 * 30.0 + 12.0).max(80.0).max(name), 56.0)
    }
}

pub(super) fn layout(sites: &[MapSite], links: &[MapLink]) -> Layout {
    let compact = sites.len() > 40;
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
    for l in links {
        if let (Some(&a), Some(&b)) = (index.get(l.from.as_str()), index.get(l.to.as_str())) {
            neighbours[a].push(b);
            neighbours[b].push(a);
        }
    }
    let gap = if compact { 8.0 } else { 18.0 };
    let row_gap = if compact { 46.0 } else { 70.0 };
    let mut pos: Vec<Option<Placed>> = vec![None; sites.len()];
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
                let (w, h) = site_size(&sites[i], compact);
                pos[i] = Some(Placed { x, y, w, h });
                x += w + gap + extra;
                tallest = tallest.max(h);
            }
            y += tallest + row_gap;
        }
    }
    Layout {
        pos,
        height: y - row_gap + 40.0,
        compact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_as_wide_as_their_names() {
        let site = |name: &str, tier: &str| MapSite {
            name: name.into(),
            tier: tier.into(),
            labels: Default::default(),
            nodes: Vec::new(),
        };
        let long = site("festival-grounds-north-entrance", "users");
        let (w, _) = site_size(&long, false);
        assert!(w >= text_width(&long.name, 12.0, true) + 16.0, "{w}");
        assert_eq!(site_size(&site("mall", "users"), false).0, 96.0);
        // Compact boxes stop growing: the name is shortened instead.
        assert_eq!(site_size(&long, true).0, COMPACT_MAX_WIDTH);
        assert!(text_width("mmm", 10.0, false) > text_width("iii", 10.0, false));
    }
}
