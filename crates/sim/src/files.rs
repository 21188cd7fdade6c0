//! The manifest files of a path, as every command that reads manifests (`check`, `plan`,
//! `sim`, `cluster serve -f`, a scenario's includes) lists them.

use std::path::{Path, PathBuf};

/// A file or directory that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// A file, or the `.yaml`, `.yml` and `.json` files of a directory (recursively, in name
/// order).
pub fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, ReadError> {
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
