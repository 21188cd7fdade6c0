//! The frame every chart over time is drawn in: the time axis, a value axis, step lines,
//! the panel and its legend.

use std::fmt::Write;

use super::escape::esc;
use crate::report::Report;

pub(super) const CW: f64 = 640.0;
pub(super) const CH: f64 = 250.0;
pub(super) const PAD_L: f64 = 48.0;
pub(super) const PAD_R: f64 = 14.0;
pub(super) const PAD_T: f64 = 12.0;
pub(super) const PAD_B: f64 = 30.0;

pub(super) struct Frame {
    pub x_max: f64,
    pub y_max: f64,
    pub left: f64,
}

impl Frame {
    pub fn x(&self, t: f64) -> f64 {
        self.left + (t / self.x_max.max(1e-9)).clamp(0.0, 1.0) * (CW - self.left - PAD_R)
    }
    pub fn y(&self, v: f64) -> f64 {
        CH - PAD_B - (v / self.y_max.max(1e-9)).clamp(0.0, 1.0) * (CH - PAD_T - PAD_B)
    }
}

/// A round step for `max` divided into about `n` parts.
pub(super) fn nice_step(max: f64, n: f64) -> f64 {
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

pub(super) fn time_label(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}h", s / 3600, (s / 60) % 60)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

pub(super) fn time_step(total: f64) -> f64 {
    const STEPS: [f64; 12] = [
        10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| total / s <= 9.0)
        .unwrap_or(86400.0)
}

pub(super) fn axes(svg: &mut String, f: &Frame, y_unit: &str) {
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

/// `4`, `2.5`, `0.05`: an axis value without trailing zeros.
pub(super) fn trim_number(v: f64) -> String {
    let rounded = (v * 1000.0).round() / 1000.0;
    if rounded == rounded.trunc() {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded}")
    }
}

/// Step-function points of a series, thinned to at most one change per pixel column and
/// carried to the end of the run.
pub(super) fn steps(points: &[(f64, f64)], f: &Frame) -> Vec<(f64, f64)> {
    steps_until(points, f, f.x_max)
}

/// Step-function points carried to `until` (the end of the run, or where the series
/// stops).
pub(super) fn steps_until(points: &[(f64, f64)], f: &Frame, until: f64) -> Vec<(f64, f64)> {
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
        out.push((until, v));
    }
    out
}

pub(super) fn step_path(points: &[(f64, f64)], f: &Frame) -> String {
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

pub(super) fn chart_open(id: &str, title: &str, subtitle: &str) -> String {
    format!(
        "<div class=\"panel\" id=\"{id}\"><div style=\"font-weight:600;margin:2px 4px 6px\">{}<span class=\"note\" style=\"font-weight:400;margin-left:6px\">{}</span></div><svg viewBox=\"0 0 {CW} {CH}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(subtitle),
        esc(title)
    )
}

pub(super) fn empty_message(svg: &mut String, message: &str) {
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"middle\" fill=\"#97a0ab\">{}</text>",
        PAD_L + (CW - PAD_L - PAD_R) / 2.0,
        (CH - PAD_B) / 2.0 + 4.0,
        esc(message)
    );
}

/// A legend of lines: solid or dashed strokes.
pub(super) fn line_legend(items: &[(String, &str, bool)]) -> String {
    let mut l = String::from("<div class=\"legend\">");
    for (label, colour, dashed) in items {
        let _ = write!(
            l,
            "<span><i class=\"line\" style=\"border-top:3px {} {colour}\"></i>{}</span>",
            if *dashed { "dashed" } else { "solid" },
            esc(label)
        );
    }
    l.push_str("</div>");
    l
}

pub(super) fn legend(items: &[(String, &str)]) -> String {
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

pub(super) fn run_seconds(r: &Report) -> f64 {
    let mut total = 0.0;
    for part in r.summary.simulated.split(':') {
        total = total * 60.0 + part.parse::<f64>().unwrap_or(0.0);
    }
    total.max(1.0)
}
