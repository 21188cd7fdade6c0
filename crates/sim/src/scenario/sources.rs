//! Where a scenario's objects come from: included files and directories, and objects
//! written inline.

use std::path::{Component, Path, PathBuf};

use edgeplane_core::manifests::Document;
use serde_json::Value;

use super::error::ScenarioError;

/// An inline object as a manifest document located in the scenario:
/// `stadium-ar.yaml: spec.resources[2]`.
pub(super) fn inline_document(
    source: &str,
    list: &str,
    index: usize,
    value: Value,
) -> Result<Document, ScenarioError> {
    let doc = Document {
        source: format!("{source}: {list}"),
        index,
        item: None,
        value,
    };
    if !doc.value.is_object() {
        return Err(ScenarioError {
            location: doc.location(),
            object: None,
            field: None,
            message: "must be a Kubernetes object (a mapping)".into(),
        });
    }
    Ok(doc)
}

/// Removes `.` and resolvable `..` components without touching the file system, so
/// messages show `examples/metro/topology.yaml` rather than
/// `examples/scenarios/stadium-ar/../../metro/topology.yaml`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}
