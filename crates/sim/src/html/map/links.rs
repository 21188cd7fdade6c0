//! Links on the map: their lines (straight, or an arc over a row), colours by latency, and
//! labels placed where they cover neither a site nor another label.

use std::fmt::Write;

use super::layout::{Placed, text_width};
use super::{ACTIVATED, latency_colour};
use crate::html::escape::esc;
use crate::report::MapLink;

/// A link's line: straight, or a quadratic curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Geometry {
    Line((f64, f64), (f64, f64)),
    Quad((f64, f64), (f64, f64), (f64, f64)),
}

impl Geometry {
    pub fn point(&self, t: f64) -> (f64, f64) {
        match *self {
            Geometry::Line(a, b) => (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t),
            Geometry::Quad(a, c, b) => {
                let u = 1.0 - t;
                (
                    u * u * a.0 + 2.0 * u * t * c.0 + t * t * b.0,
                    u * u * a.1 + 2.0 * u * t * c.1 + t * t * b.1,
                )
            }
        }
    }

    /// The unit normal at `t`.
    fn normal(&self, t: f64) -> (f64, f64) {
        let (p, q) = (
            self.point((t - 0.01).max(0.0)),
            self.point((t + 0.01).min(1.0)),
        );
        let (dx, dy) = (q.0 - p.0, q.1 - p.1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-9);
        (-dy / len, dx / len)
    }

    pub fn d(&self) -> String {
        match *self {
            Geometry::Line(a, b) => format!("M{:.1},{:.1} L{:.1},{:.1}", a.0, a.1, b.0, b.1),
            Geometry::Quad(a, c, b) => format!(
                "M{:.1},{:.1} Q{:.1},{:.1} {:.1},{:.1}",
                a.0, a.1, c.0, c.1, b.0, b.1
            ),
        }
    }
}

/// The line between two sites: sites of one row with none between them are joined
/// straight, edge to edge; an `arc` goes over the row (sites between them, or an activated
/// path beside the link it backs up).
pub(super) fn geometry(a: &Placed, b: &Placed, arc: bool) -> Geometry {
    let (ax, ay) = (a.x + a.w / 2.0, a.y + a.h / 2.0);
    let (bx, by) = (b.x + b.w / 2.0, b.y + b.h / 2.0);
    if arc {
        let lift = ((bx - ax).abs() / 5.0).clamp(24.0, 54.0);
        let top = ay - a.h / 2.0;
        Geometry::Quad(
            (ax, top),
            ((ax + bx) / 2.0, top - 2.0 * lift),
            (bx, by - b.h / 2.0),
        )
    } else if (ay - by).abs() < 1.0 {
        let (l, r) = if a.x < b.x { (a, b) } else { (b, a) };
        Geometry::Line((l.x + l.w, ay), (r.x, by))
    } else {
        Geometry::Line((ax, ay), (bx, by))
    }
}

/// Font size of link labels.
const LABEL_SIZE: f64 = 10.5;

/// The box of a label of `text` centred at `(x, y)`.
pub(super) fn label_box(text: &str, bold: bool, x: f64, y: f64) -> Placed {
    let w = text_width(text, LABEL_SIZE, bold) + 6.0;
    let h = LABEL_SIZE + 3.0;
    Placed {
        x: x - w / 2.0,
        y: y - h / 2.0,
        w,
        h,
    }
}

/// Where along its line a label of `text` goes: the first spot from the middle outwards,
/// on the line or beside it, that covers nothing in `taken`; the least covered one when
/// every spot covers something. The spot is added to `taken`.
pub(super) fn place_label(
    geom: &Geometry,
    text: &str,
    bold: bool,
    taken: &mut Vec<Placed>,
) -> (f64, f64) {
    const ALONG: [f64; 9] = [0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78, 0.15, 0.85];
    const BESIDE: [f64; 3] = [0.0, 11.0, -11.0];
    let mut best: Option<(f64, (f64, f64), Placed)> = None;
    'search: for t in ALONG {
        for off in BESIDE {
            let (px, py) = geom.point(t);
            let (nx, ny) = geom.normal(t);
            let (x, y) = (px + nx * off, py + ny * off);
            let b = label_box(text, bold, x, y);
            let covered: f64 = taken.iter().map(|o| o.overlaps(&b)).sum();
            if best.as_ref().is_none_or(|(c, _, _)| covered < *c) {
                best = Some((covered, (x, y), b));
            }
            if covered == 0.0 {
                break 'search;
            }
        }
    }
    match best {
        Some((_, at, b)) => {
            taken.push(b);
            at
        }
        None => geom.point(0.5),
    }
}

/// A link as drawn: its key in the page (`data-link` for the spec's links, `data-path`
/// for activated paths), whether it shows at the end, and the widest label it takes at any
/// moment (the page's script changes the text).
pub(super) struct Drawn<'a> {
    pub link: &'a MapLink,
    pub key: String,
    pub visible: bool,
    pub widest: String,
}

/// The label's text at the end.
pub(super) fn label_text(l: &MapLink) -> String {
    match &l.activated {
        Some(path) => {
            let entry = path.rsplit('/').next().unwrap_or(path);
            format!("{entry} {}", l.latency)
        }
        None => l.latency.clone(),
    }
}

pub(super) fn link_svg(
    svg: &mut String,
    d: &Drawn<'_>,
    geom: &Geometry,
    label_at: Option<(f64, f64)>,
) {
    let l = d.link;
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
    let (attribute, hidden) = if activated {
        (
            "data-path",
            if d.visible {
                ""
            } else {
                " style=\"display:none\""
            },
        )
    } else {
        ("data-link", "")
    };
    let _ = write!(
        svg,
        "<g class=\"link\" {attribute}=\"{}\"{hidden}><title>{}</title><path class=\"stroke\" d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\" stroke-linecap=\"round\"{dash} opacity=\"0.9\"/>",
        esc(&d.key),
        esc(&title),
        geom.d()
    );
    if let Some((x, y)) = label_at {
        let weight = if l.changed || activated { "700" } else { "400" };
        let fill = match (activated, l.changed) {
            (true, _) => ACTIVATED,
            (false, true) => "#c0392b",
            (false, false) => "#66717f",
        };
        let _ = write!(
            svg,
            "<text class=\"lat\" x=\"{x:.1}\" y=\"{:.1}\" font-size=\"{LABEL_SIZE}\" text-anchor=\"middle\" fill=\"{fill}\" font-weight=\"{weight}\" paint-order=\"stroke\" stroke=\"#fff\" stroke-width=\"3\">{}</text>",
            y + 3.5,
            esc(&label_text(l))
        );
    }
    svg.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_links_side_by_side_do_not_cover_each_other() {
        // A link and the activated path beside it, and a site box on the way.
        let a = Placed {
            x: 40.0,
            y: 300.0,
            w: 80.0,
            h: 56.0,
        };
        let b = Placed {
            x: 300.0,
            y: 170.0,
            w: 80.0,
            h: 56.0,
        };
        let link = geometry(&a, &b, false);
        let path = geometry(&a, &b, true);
        let mut taken = vec![a, b];
        let first = place_label(&link, "12ms", true, &mut taken);
        let second = place_label(&path, "backup-1 3ms", true, &mut taken);
        let one = label_box("12ms", true, first.0, first.1);
        let two = label_box("backup-1 3ms", true, second.0, second.1);
        assert_eq!(one.overlaps(&two), 0.0, "{one:?} {two:?}");
        assert_eq!(one.overlaps(&a) + one.overlaps(&b), 0.0);
        assert_eq!(two.overlaps(&a) + two.overlaps(&b), 0.0);
        // Both labels were taken.
        assert_eq!(taken.len(), 4);
        // The same label twice at one place moves the second aside.
        let mut taken = Vec::new();
        let p = place_label(&link, "2ms", false, &mut taken);
        let q = place_label(&link, "2ms", false, &mut taken);
        assert_ne!(p, q);
    }
}
