//! The timeline table: a row per story entry with an anchor (`#t-<index in the report's
//! timeline>`) that the chart marks and the map's moments link to; filters by type and by
//! text (the page's script); messages too long to scan (a `Planned` entry names every rule
//! of every binding) folded to a summary, the whole text on expand and (with the script)
//! on hover.

use std::fmt::Write;

use super::escape::esc;
use crate::report::Report;
use crate::timeline::EntryType;

/// Rows the table holds at most; the JSON report has them all.
pub(super) const TIMELINE_ROWS: usize = 3000;
/// Messages longer than this (in characters) are folded.
const FOLD_OVER: usize = 180;
/// A folded message shows at most about this many characters.
const SHORT: usize = 140;

pub(super) fn badge_colour(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Planned | EntryType::Bound => "#2f6fd6",
        EntryType::PlanRun => "#1d4f9c",
        EntryType::Unplaceable | EntryType::ActionFailed | EntryType::PodFailed => "#d64545",
        EntryType::ComplianceChanged => "#6c5ce7",
        EntryType::Mitigated => "#2f9e5b",
        EntryType::MitigationFailed => "#b5521b",
        EntryType::Evicted | EntryType::TaintEviction => "#e17a00",
        EntryType::Migrated => "#0e7490",
        EntryType::NodeNotReady => "#c2410c",
        EntryType::NodeFailed | EntryType::ClusterFailed => "#b03030",
        EntryType::NodeRecovered | EntryType::ClusterRecovered => "#3c9d76",
        EntryType::LinkChanged => "#c0392b",
        EntryType::Note => "#4b5563",
        EntryType::Applied | EntryType::Deleted | EntryType::Scaled => "#5b6b7f",
        EntryType::Info => "#a3adb8",
    }
}

/// The anchor of the row of the report's timeline entry `index`.
pub(super) fn row_id(index: usize) -> String {
    format!("t-{index}")
}

/// The indices (in the report's timeline) of the entries the table has rows for, in order.
pub(super) fn rows(r: &Report) -> Vec<usize> {
    r.timeline
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.detail)
        .map(|(i, _)| i)
        .take(TIMELINE_ROWS)
        .collect()
}

/// At most `max` characters of `text`, cut after a word when there is one late enough.
fn cut(text: &str, max: usize) -> &str {
    let end = text.char_indices().nth(max).map_or(text.len(), |(i, _)| i);
    let head = &text[..end];
    match head.rfind(' ') {
        Some(space) if end < text.len() && space > end * 3 / 5 => {
            head[..space].trim_end_matches([',', ';', ':'])
        }
        _ => head,
    }
}

/// The folded form of a long message, `None` when it is short enough to show whole.
///
/// A message that lists the verdicts of rules (`latency 2ms (Compliant), ...; ...` after
/// the sentence that says what happened: a `Planned` entry) becomes the sentence and the
/// verdicts counted; any other is cut after a word.
pub(super) fn short_message(message: &str) -> Option<String> {
    if message.chars().count() <= FOLD_OVER {
        return None;
    }
    const VERDICTS: [&str; 4] = ["Compliant", "Limit", "Violation", "Error"];
    if let Some((head, rest)) = message.split_once(": ")
        && head.chars().count() <= SHORT
    {
        let counts: Vec<String> = VERDICTS
            .iter()
            .filter_map(|v| {
                let n = rest.matches(&format!("({v})")).count();
                (n > 0).then(|| format!("{n} {v}"))
            })
            .collect();
        if !counts.is_empty() {
            let bindings = rest.split("; ").count();
            return Some(format!(
                "{head}: {bindings} binding{}, rules {}",
                if bindings == 1 { "" } else { "s" },
                counts.join(", ")
            ));
        }
    }
    Some(format!("{}…", cut(message, SHORT)))
}

fn filters(h: &mut String, r: &Report, shown: &[usize]) {
    let mut kinds: Vec<(EntryType, usize)> = Vec::new();
    for &i in shown {
        let kind = r.timeline[i].kind;
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    kinds.sort_by_key(|(k, _)| *k);
    // Shown once the script runs: without it the buttons would do nothing.
    h.push_str(
        "<div class=\"filters\" id=\"timeline-filters\" hidden><span class=\"note\">show</span>",
    );
    for (kind, n) in kinds {
        let _ = write!(
            h,
            "<button type=\"button\" class=\"chip\" data-kind=\"{}\" aria-pressed=\"true\"><i style=\"background:{}\"></i>{} <b>{n}</b></button>",
            kind.as_str(),
            badge_colour(kind),
            kind.as_str()
        );
    }
    h.push_str("<input type=\"search\" id=\"timeline-search\" placeholder=\"filter by text\" aria-label=\"filter the timeline by text\"><span class=\"note\" id=\"timeline-count\"></span></div>");
}

pub(super) fn timeline(h: &mut String, r: &Report) {
    let story = r.timeline.iter().filter(|e| !e.detail).count();
    let shown = rows(r);
    let details = r.timeline.len() - story;
    let _ = write!(
        h,
        "<section id=\"timeline\"><h2>Timeline <small>{story} entries{}; a mark on a chart links to its row</small></h2>",
        if details > 0 {
            format!(", {details} more details in the JSON report")
        } else {
            String::new()
        }
    );
    filters(h, r, &shown);
    h.push_str("<table id=\"timeline-table\"><thead><tr><th>time</th><th>what</th><th>object</th><th>details</th></tr></thead><tbody>");
    for &i in &shown {
        let e = &r.timeline[i];
        let _ = write!(
            h,
            "<tr id=\"{}\" data-kind=\"{}\"><td class=\"t\">{}</td><td><span class=\"badge\" style=\"background:{}\">{}</span></td><td class=\"o\">{}</td><td class=\"m\">",
            row_id(i),
            e.kind.as_str(),
            esc(&e.at),
            badge_colour(e.kind),
            e.kind.as_str(),
            esc(&e.object),
        );
        match short_message(&e.message) {
            Some(short) => {
                // The whole text once: the page's script makes it the tooltip on hover.
                let _ = write!(
                    h,
                    "<details class=\"more\"><summary><span class=\"short\">{}</span></summary><div class=\"full\">{}</div></details>",
                    esc(&short),
                    esc(&e.message)
                );
            }
            None => h.push_str(&esc(&e.message)),
        }
        h.push_str("</td></tr>");
    }
    h.push_str("</tbody>");
    if story > shown.len() {
        let _ = write!(
            h,
            "<tfoot><tr><td></td><td colspan=\"3\" class=\"note\">... {} more entries in the JSON report</td></tr></tfoot>",
            story - shown.len()
        );
    }
    h.push_str("</table></section>");
}
