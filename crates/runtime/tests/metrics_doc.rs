//! docs/metrics.md lists every metric the code registers, with its type, and nothing else.
//! The registered metrics come from `catalogue::all_metrics()` (every component's
//! registration functions); a scan of the sources catches a registration added somewhere
//! the catalogue does not call.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use edgeplane_runtime::catalogue::all_metrics as catalogue;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `name -> type` from the tables of docs/metrics.md (rows whose first cell is a code span).
fn documented() -> BTreeMap<String, String> {
    let path = root().join("docs/metrics.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", name, type, labels, meaning, ""
        if cells.len() < 5 {
            continue;
        }
        let Some(name) = cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
            continue;
        };
        let previous = out.insert(name.to_string(), cells[2].to_string());
        assert!(previous.is_none(), "docs/metrics.md lists {name} twice");
    }
    out
}

#[test]
fn every_registered_metric_is_documented_with_its_type_and_no_other() {
    let registered: BTreeMap<String, String> = catalogue()
        .registered()
        .into_iter()
        .map(|(name, kind)| (name, kind.to_string()))
        .collect();
    let documented = documented();
    assert!(registered.len() > 40, "{registered:?}");
    let missing: Vec<&String> = registered
        .keys()
        .filter(|n| !documented.contains_key(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "registered but missing from docs/metrics.md: {missing:?}"
    );
    let stale: Vec<&String> = documented
        .keys()
        .filter(|n| !registered.contains_key(*n))
        .collect();
    assert!(
        stale.is_empty(),
        "in docs/metrics.md but not registered: {stale:?}"
    );
    for (name, kind) in &registered {
        assert_eq!(
            &documented[name], kind,
            "docs/metrics.md gives {name} the wrong type"
        );
    }
}

/// The string literal names passed to `register(` and to `register_collector(` in the
/// Rust sources under `dir` (the name is the first argument, maybe on the next line).
fn names_registered_in_sources(dir: &Path, out: &mut BTreeSet<String>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            names_registered_in_sources(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (i, _) in text.match_indices("register(") {
            let after = text[i + "register(".len()..].trim_start();
            if let Some(rest) = after.strip_prefix('"')
                && let Some(end) = rest.find('"')
            {
                out.insert(rest[..end].to_string());
            }
        }
        for (i, _) in text.match_indices("MetricType::") {
            // `("name", MetricType::Gauge)` in a collector's family list.
            let before = text[..i].trim_end().trim_end_matches(',').trim_end();
            if let Some(stripped) = before.strip_suffix('"')
                && let Some(start) = stripped.rfind('"')
            {
                out.insert(stripped[start + 1..].to_string());
            }
        }
    }
}

#[test]
fn every_registration_in_the_sources_is_in_the_catalogue() {
    let mut names = BTreeSet::new();
    for dir in ["crates/runtime/src", "crates/cli/src", "crates/sim/src"] {
        names_registered_in_sources(&root().join(dir), &mut names);
    }
    assert!(names.contains("binding_evaluations"), "{names:?}");
    assert!(names.contains("bindings_past_grace"), "{names:?}");
    let registered: BTreeSet<String> = catalogue()
        .registered()
        .into_iter()
        .map(|(name, _)| {
            let name = name.strip_prefix("edgeplane_").unwrap_or(&name);
            name.strip_suffix("_total").unwrap_or(name).to_string()
        })
        .collect();
    let outside: Vec<&String> = names.difference(&registered).collect();
    assert!(
        outside.is_empty(),
        "registered in the sources but not by catalogue::all_metrics(): {outside:?}"
    );
}
