//! The latency chart: the links that changed (dashed, from the NetworkTopology's spec) and
//! the latency edgeplane measured for the bindings whose latency changed (solid: the path
//! their traffic takes, through an activated path when there is one), with the periods in
//! which the network controller kept a path active. A degraded link can stay at 12 ms for
//! half an hour while the bindings it carried are back at 3 ms on a backup path: the chart
//! shows both.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::chart::{
    CH, Frame, PAD_B, axes, chart_open, empty_message, line_legend, nice_step, run_seconds,
    step_path, steps, steps_until,
};
use super::escape::esc;
use crate::report::Report;
use crate::series::{LatencySample, PathsSample};

/// Activated paths are purple on the map too.
const ACTIVE: &str = "#8e44ad";

/// Line colours: no purple (the activated paths').
const LINES: [&str; 8] = [
    "#d64545", "#2f6fd6", "#e6a700", "#2f9e5b", "#e17a00", "#16a2b8", "#6b7785", "#c2185b",
];

/// Bindings with the same latency over time: drawn as one line.
#[derive(Debug, PartialEq)]
pub(super) struct BindingLine<'a> {
    pub offer: &'a str,
    pub bindings: Vec<&'a str>,
    pub samples: &'a [LatencySample],
}

fn without_namespace(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

impl BindingLine<'_> {
    /// `ar-game-state ×2`: the offer without its namespace, and how many bindings.
    pub fn label(&self) -> String {
        let offer = without_namespace(self.offer);
        match self.bindings.len() {
            1 => offer.to_string(),
            n => format!("{offer} ×{n}"),
        }
    }

    /// Its first binding instead of its offer, for lines whose labels would be alike.
    fn binding_label(&self) -> String {
        let first = self.bindings.first().map_or("", |b| without_namespace(b));
        match self.bindings.len() {
            1 => first.to_string(),
            n => format!("{first} ×{n}"),
        }
    }
}

/// The legend's names of the lines: the offer and the number of bindings, or the first
/// binding where two lines would read the same.
pub(super) fn labels(lines: &[BindingLine<'_>]) -> Vec<String> {
    let by_offer: Vec<String> = lines.iter().map(BindingLine::label).collect();
    lines
        .iter()
        .zip(&by_offer)
        .map(|(line, label)| {
            if by_offer.iter().filter(|l| *l == label).count() > 1 {
                line.binding_label()
            } else {
                label.clone()
            }
        })
        .collect()
}

/// The bindings whose latency changed, grouped by identical series, in order of their first
/// sample.
pub(super) fn binding_lines(r: &Report) -> Vec<BindingLine<'_>> {
    let mut lines: Vec<BindingLine<'_>> = Vec::new();
    for (binding, latency) in &r.series.binding_latency {
        match lines
            .iter_mut()
            .find(|l| l.offer == latency.offer && l.samples == latency.samples.as_slice())
        {
            Some(line) => line.bindings.push(binding),
            None => lines.push(BindingLine {
                offer: &latency.offer,
                bindings: vec![binding],
                samples: &latency.samples,
            }),
        }
    }
    lines.sort_by(|a, b| {
        let first = |l: &BindingLine<'_>| l.samples.first().map_or(0.0, |s| s.at);
        first(a)
            .total_cmp(&first(b))
            .then_with(|| a.offer.cmp(b.offer))
            .then_with(|| a.bindings.cmp(&b.bindings))
    });
    lines
}

/// A stretch of a series with values: its points, and where it stops (the next sample
/// without a value; `None`: the end of the run).
type Run = (Vec<(f64, f64)>, Option<f64>);

/// The stretches of a series where it has a value.
fn runs(samples: &[LatencySample]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for s in samples {
        match s.latency_ms {
            Some(v) => current.push((s.at, v)),
            None if !current.is_empty() => out.push((std::mem::take(&mut current), Some(s.at))),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push((current, None));
    }
    out
}

/// When each activated path was up: `catalogue/entry` -> intervals (`None`: to the end).
pub(super) fn active_periods(paths: &[PathsSample]) -> BTreeMap<String, Vec<(f64, Option<f64>)>> {
    let mut out: BTreeMap<String, Vec<(f64, Option<f64>)>> = BTreeMap::new();
    // Path -> since when it has been up.
    let mut up: BTreeMap<String, f64> = BTreeMap::new();
    for sample in paths {
        let now: BTreeSet<&str> = sample.paths.iter().map(|p| p.activated.as_str()).collect();
        let gone: Vec<String> = up
            .keys()
            .filter(|k| !now.contains(k.as_str()))
            .cloned()
            .collect();
        for path in gone {
            if let Some(since) = up.remove(&path) {
                out.entry(path).or_default().push((since, Some(sample.at)));
            }
        }
        for path in now {
            up.entry(path.to_string()).or_insert(sample.at);
        }
    }
    for (path, since) in up {
        out.entry(path).or_default().push((since, None));
    }
    out
}

pub(super) fn latency_chart(r: &Report) -> String {
    let links: Vec<(&String, Vec<(f64, f64)>)> = r
        .series
        .links
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(name, v)| (name, v.iter().map(|s| (s.at, s.value.latency_ms)).collect()))
        .collect();
    let lines = binding_lines(r);
    let periods = active_periods(&r.series.activated_paths);
    let y_max = links
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
        .chain(
            lines
                .iter()
                .flat_map(|l| l.samples.iter().filter_map(|s| s.latency_ms)),
        )
        .fold(0.0_f64, f64::max);
    let f = Frame {
        x_max: run_seconds(r),
        y_max: if y_max > 0.0 {
            y_max.max(nice_step(y_max, 4.0))
        } else {
            1.0
        },
        left: 48.0,
    };
    let mut svg = chart_open(
        "chart-links",
        "Latency",
        "dashed: links that changed; solid: bindings whose measured latency changed (the path their traffic takes)",
    );
    axes(&mut svg, &f, "ms");
    if links.is_empty() && lines.is_empty() {
        empty_message(
            &mut svg,
            "no link and no binding latency changed during the run",
        );
    }
    let mut legend: Vec<(String, &str, bool)> = Vec::new();
    // Periods with an activated path: bands along the bottom, under the lines.
    for (k, (path, spans)) in periods.iter().enumerate() {
        let y = CH - PAD_B - 9.0 - k as f64 * 10.0;
        let entry = path.rsplit('/').next().unwrap_or(path);
        for (from, to) in spans {
            let (x1, x2) = (f.x(*from), f.x(to.unwrap_or(f.x_max)));
            let _ = write!(
                svg,
                "<g class=\"path-active\" data-path=\"{}\"><title>{} active from {}{}</title><rect x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"8\" rx=\"2\" fill=\"{ACTIVE}\" fill-opacity=\"0.25\" stroke=\"{ACTIVE}\" stroke-width=\"0.8\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9.5\" fill=\"{ACTIVE}\" font-weight=\"600\">{} active</text></g>",
                esc(path),
                esc(path),
                crate::timeline::clock_text(std::time::Duration::from_secs_f64(*from)),
                to.map(|t| format!(
                    " to {}",
                    crate::timeline::clock_text(std::time::Duration::from_secs_f64(t))
                ))
                .unwrap_or_default(),
                (x2 - x1).max(2.0),
                x1 + 3.0,
                y - 2.5,
                esc(entry)
            );
        }
    }
    if !periods.is_empty() {
        legend.push(("path activated".into(), ACTIVE, false));
    }
    let mut colours = LINES.iter().copied().cycle();
    for (name, pts) in &links {
        let colour = colours.next().unwrap_or("#6b7785");
        let d = step_path(&steps(pts, &f), &f);
        let _ = write!(
            svg,
            "<path class=\"link-latency\" data-link=\"{}\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.6\" stroke-dasharray=\"6 4\"><title>link {}</title></path>",
            esc(name),
            esc(name)
        );
        legend.push((format!("{name} (link)"), colour, true));
    }
    let room = LINES.len().saturating_sub(links.len()).max(1);
    let names = labels(&lines);
    for (line, label) in lines.iter().zip(names).take(room) {
        let colour = colours.next().unwrap_or("#6b7785");
        let mut d = String::new();
        for (pts, stop) in runs(line.samples) {
            if !d.is_empty() {
                d.push(' ');
            }
            d.push_str(&step_path(
                &steps_until(&pts, &f, stop.unwrap_or(f.x_max)),
                &f,
            ));
        }
        let values: Vec<String> = line
            .samples
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    crate::timeline::clock_text(std::time::Duration::from_secs_f64(s.at)),
                    s.latency_ms
                        .map(crate::report::latency_text)
                        .unwrap_or_else(|| "gone".into())
                )
            })
            .collect();
        let _ = write!(
            svg,
            "<path class=\"binding-latency\" data-bindings=\"{}\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.4\" stroke-linejoin=\"round\"><title>{}: {}</title></path>",
            esc(&line.bindings.join(" ")),
            esc(&line.bindings.join(", ")),
            esc(&values.join(", "))
        );
        legend.push((label, colour, false));
    }
    svg.push_str("</svg>");
    svg.push_str(&line_legend(&legend));
    if lines.len() > room {
        let _ = write!(
            svg,
            "<p class=\"note\">{} more groups of bindings in the JSON report (series.bindingLatency)</p>",
            lines.len() - room
        );
    }
    svg.push_str("</div>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::ActivePath;

    fn path(entry: &str) -> ActivePath {
        ActivePath {
            from: "a".into(),
            to: "b".into(),
            one_way: false,
            latency: "3ms".into(),
            latency_ms: 3.0,
            bandwidth: None,
            activated: entry.into(),
            bindings: Vec::new(),
        }
    }

    #[test]
    fn a_path_is_active_from_its_activation_until_it_goes() {
        let samples = vec![
            PathsSample {
                at: 780.0,
                paths: vec![path("default/backup-1")],
            },
            // Fewer bindings keep it up: the same period.
            PathsSample {
                at: 1560.0,
                paths: vec![path("default/backup-1"), path("default/backup-2")],
            },
            PathsSample {
                at: 2000.0,
                paths: vec![path("default/backup-2")],
            },
        ];
        let periods = active_periods(&samples);
        assert_eq!(periods["default/backup-1"], [(780.0, Some(2000.0))]);
        assert_eq!(periods["default/backup-2"], [(1560.0, None)]);
    }

    #[test]
    fn lines_of_one_offer_are_told_apart() {
        let s = |v| {
            [LatencySample {
                at: 0.0,
                latency_ms: Some(v),
            }]
        };
        let (a, b, c) = (s(1.0), s(1.5), s(3.0));
        let line = |bindings: Vec<&'static str>, samples| BindingLine {
            offer: "vision/analytics-campus",
            bindings,
            samples,
        };
        let lines = [
            line(vec!["vision/analytics-campus-7bb265a778"], &a[..]),
            line(vec!["vision/analytics-campus-c4c276a9f1"], &b[..]),
            line(vec!["vision/x-1", "vision/x-2"], &c[..]),
        ];
        assert_eq!(
            labels(&lines),
            [
                "analytics-campus-7bb265a778",
                "analytics-campus-c4c276a9f1",
                "analytics-campus ×2"
            ]
        );
    }

    #[test]
    fn a_binding_line_breaks_while_it_has_no_value() {
        let s = |at, v| LatencySample { at, latency_ms: v };
        let samples = [
            s(302.0, Some(2.0)),
            s(720.0, Some(12.0)),
            s(780.0, Some(3.0)),
            s(1550.0, None),
            s(1623.0, Some(3.0)),
        ];
        let r = runs(&samples);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, [(302.0, 2.0), (720.0, 12.0), (780.0, 3.0)]);
        assert_eq!(r[0].1, Some(1550.0));
        assert_eq!(r[1], (vec![(1623.0, 3.0)], None));
    }
}
