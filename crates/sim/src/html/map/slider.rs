//! The map's moments in the page: the slider and its buttons (shown once the script runs),
//! and the data the script shows each moment from (the report's `map.moments` and the
//! latency colours), as JSON in the page.

use std::fmt::Write;

use super::{LATENCY_BANDS, LATENCY_OVER};
use crate::html::escape::esc;
use crate::html::timeline::{row_id, rows};
use crate::report::Report;

/// JSON to put inside a `<script>` element: `<` escaped, so no text in it can close the
/// element.
pub(in crate::html) fn script_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

/// `lanes`: the chains' lanes at each moment (`lanes::lanes_svg`), null without chains.
pub(super) fn slider(h: &mut String, r: &Report, lanes: serde_json::Value) {
    let moments = &r.map.moments;
    if moments.len() < 2 {
        return;
    }
    let last = moments.len() - 1;
    let linked = rows(r);
    let end = &moments[last];
    let _ = write!(
        h,
        "<div class=\"moments\" id=\"map-moments\" hidden><button type=\"button\" id=\"map-prev\" title=\"the moment before\">&#9664;</button><input type=\"range\" id=\"map-slider\" min=\"0\" max=\"{last}\" step=\"1\" value=\"{last}\" list=\"map-ticks\" aria-label=\"moment of the run\"><button type=\"button\" id=\"map-next\" title=\"the moment after\">&#9654;</button><span class=\"moment-count\">{} moments</span><div id=\"map-moment\" class=\"moment\"><b>{}</b> {}</div></div><datalist id=\"map-ticks\">",
        moments.len(),
        esc(&end.at),
        esc(&end.what)
    );
    for (i, m) in moments.iter().enumerate() {
        let _ = write!(
            h,
            "<option value=\"{i}\" label=\"{}\"></option>",
            esc(&m.at)
        );
    }
    h.push_str("</datalist>");
    // Moments link to their rows only where the table has them.
    let moments_json: Vec<serde_json::Value> = moments
        .iter()
        .map(|m| {
            let mut v = serde_json::to_value(m).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                let row = m
                    .entry
                    .filter(|i| linked.binary_search(i).is_ok())
                    .map(row_id);
                obj.insert("row".into(), serde_json::json!(row));
            }
            v
        })
        .collect();
    let data = serde_json::json!({
        "bands": LATENCY_BANDS,
        "over": LATENCY_OVER,
        "moments": moments_json,
        "lanes": lanes,
    });
    let _ = write!(
        h,
        "<script type=\"application/json\" id=\"map-data\">{}</script>",
        script_json(&data)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_in_a_script_cannot_close_it() {
        let v = serde_json::json!({"what": "</script><script>alert(1)</script>"});
        let text = script_json(&v);
        assert!(!text.contains("</"));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }
}
