//! The link utilisation chart: what bandwidth rules reserve on each direction of a link, as
//! a share of its capacity (the topology's `status.bandwidth`). Above 100 % the link is
//! over-subscribed and its bindings get a fair share below their request. Drawn only in
//! runs where some binding reserves bandwidth on a finite link.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::chart::{
    CW, Frame, PAD_L, PAD_R, axes, chart_open, line_legend, nice_step, run_seconds, step_path,
    steps,
};
use super::escape::esc;
use crate::report::Report;
use crate::series::{LinkUse, Sample};

/// At most this many links get a line: the most used ones.
const SHOWN: usize = 8;

const LINES: [&str; SHOWN] = [
    "#2f6fd6", "#d64545", "#e6a700", "#2f9e5b", "#e17a00", "#16a2b8", "#6b7785", "#c2185b",
];

/// The finite links that ever carried a reservation, the most used first (by their peak
/// utilisation, then by name): (label, points in percent). The two directions of a link
/// with the same utilisation throughout are one line, `a - b`.
pub(super) fn used_links(
    series: &BTreeMap<String, Vec<Sample<LinkUse>>>,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let directed: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .filter_map(|(name, samples)| {
            let pts = percent_points(samples);
            pts.iter()
                .any(|p| p.1 > 0.0)
                .then_some((name.as_str(), pts))
        })
        .collect();
    let mut links: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (name, pts) in &directed {
        let Some((from, to)) = name.split_once(" -> ") else {
            links.push((name.to_string(), pts.clone()));
            continue;
        };
        let reverse = format!("{to} -> {from}");
        match directed.iter().find(|(n, _)| *n == reverse) {
            // Drawn once, under the first of the two names.
            Some((_, back)) if back == pts && from < to => {
                links.push((format!("{from} - {to}"), pts.clone()));
            }
            Some((_, back)) if back == pts => {}
            _ => links.push((name.to_string(), pts.clone())),
        }
    }
    let peak = |pts: &[(f64, f64)]| pts.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    links.sort_by(|a, b| peak(&b.1).total_cmp(&peak(&a.1)).then(a.0.cmp(&b.0)));
    links
}

/// The samples of a finite link in percent of its capacity at the time.
fn percent_points(samples: &[Sample<LinkUse>]) -> Vec<(f64, f64)> {
    samples
        .iter()
        .filter_map(|s| s.value.percent().map(|p| (s.at, p)))
        .collect()
}

pub(super) fn bandwidth_chart(r: &Report) -> Option<String> {
    let links = used_links(&r.series.link_bandwidth);
    if links.is_empty() {
        return None;
    }
    let peak = links
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
        .fold(100.0_f64, f64::max);
    let f = Frame {
        x_max: run_seconds(r),
        y_max: peak.max(nice_step(peak, 4.0)),
        left: PAD_L,
    };
    let mut svg = chart_open(
        "chart-bandwidth",
        "Link utilisation",
        "bandwidth reserved by bindings, in % of each link direction's capacity (a - b: both ways alike); above 100 %: over-subscribed",
    );
    axes(&mut svg, &f, "%");
    let full = f.y(100.0);
    let _ = write!(
        svg,
        "<line x1=\"{PAD_L}\" x2=\"{:.1}\" y1=\"{full:.1}\" y2=\"{full:.1}\" stroke=\"#d64545\" stroke-dasharray=\"3 3\"/>",
        CW - PAD_R
    );
    let mut legend: Vec<(String, &str, bool)> = Vec::new();
    for ((name, pts), colour) in links.iter().zip(LINES) {
        let d = step_path(&steps(pts, &f), &f);
        let peak = pts.iter().map(|p| p.1).fold(0.0_f64, f64::max);
        let _ = write!(
            svg,
            "<path class=\"link-use\" data-link=\"{}\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"><title>{}: peak {:.0} %</title></path>",
            esc(name),
            esc(name),
            peak
        );
        legend.push((name.clone(), colour, false));
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9.5\" fill=\"#d64545\" text-anchor=\"end\">capacity</text>",
        CW - PAD_R - 2.0,
        full - 3.0
    );
    svg.push_str("</svg>");
    svg.push_str(&line_legend(&legend));
    if links.len() > SHOWN {
        let _ = write!(
            svg,
            "<p class=\"note\">{} more links in the JSON report (series.linkBandwidth)</p>",
            links.len() - SHOWN
        );
    }
    svg.push_str("</div>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: f64, reserved_bps: f64, capacity_bps: Option<f64>) -> Sample<LinkUse> {
        Sample {
            at,
            value: LinkUse {
                reserved_bps,
                capacity_bps,
            },
        }
    }

    #[test]
    fn the_two_directions_of_a_link_alike_are_one_line() {
        let mut series = BTreeMap::new();
        let alike = vec![sample(0.0, 1e9, Some(2e9))];
        series.insert("stadium -> edge-a".into(), alike.clone());
        series.insert("edge-a -> stadium".into(), alike);
        series.insert(
            "edge-b -> stadium".into(),
            vec![sample(0.0, 1e9, Some(1e9))],
        );
        series.insert(
            "stadium -> edge-b".into(),
            vec![sample(0.0, 5e8, Some(1e9))],
        );
        // Unlimited, or never used: no line.
        series.insert("a -> b".into(), vec![sample(0.0, 1e9, None)]);
        series.insert("c -> d".into(), vec![sample(0.0, 0.0, Some(1e9))]);
        let names: Vec<String> = used_links(&series).into_iter().map(|l| l.0).collect();
        assert_eq!(
            names,
            ["edge-b -> stadium", "edge-a - stadium", "stadium -> edge-b"]
        );
    }

    #[test]
    fn utilisation_is_reserved_over_the_capacity_at_the_time() {
        let pts = percent_points(&[
            sample(0.0, 4e9, Some(5e9)),
            // The capacity drops: the same reservations are now 200 %.
            sample(600.0, 3e9, Some(1.5e9)),
            // Unlimited for a while: no point.
            sample(900.0, 3e9, None),
            sample(1200.0, 0.0, Some(5e9)),
        ]);
        assert_eq!(pts, [(0.0, 80.0), (600.0, 200.0), (1200.0, 0.0)]);
    }
}
