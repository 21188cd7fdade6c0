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

/// A file or directory of an include that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub(super) struct ReadError {
    path: PathBuf,
    source: std::io::Error,
}

/// A file, or the `.yaml`, `.yml` and `.json` files of a directory (recursively, in name
/// order).
pub(super) fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let unreadable = |source| ReadError {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(unreadable)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            files.extend(manifest_files(&entry)?);
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            files.push(entry);
        }
    }
    Ok(files)
}
