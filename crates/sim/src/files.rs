//! The manifest files of a path, as every command that reads manifests (`check`, `plan`,
//! `sim`, `cluster serve -f`, a scenario's includes) lists them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A file or directory that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// A file, or the `.yaml`, `.yml` and `.json` files of a directory (recursively, in name
/// order). Symbolic links are followed, but each directory and each file is visited once,
/// by its canonical path: a link to an ancestor (`ln -s . loop`) would otherwise recurse
/// without end, and two links to one folder would read its files twice.
pub fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let mut walk = Walk::default();
    walk.visit(path)?;
    Ok(walk.files)
}

#[derive(Default)]
struct Walk {
    /// Canonical paths of the directories and files already visited.
    seen: HashSet<PathBuf>,
    files: Vec<PathBuf>,
}

impl Walk {
    fn visit(&mut self, path: &Path) -> Result<(), ReadError> {
        let unreadable = |source| ReadError {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        let canonical = std::fs::canonicalize(path).map_err(unreadable)?;
        if !self.seen.insert(canonical) {
            return Ok(());
        }
        if !meta.is_dir() {
            self.files.push(path.to_path_buf());
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(unreadable)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let is_manifest = entry
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
            // A dangling link inside a folder is not a manifest to read: skipped as
            // before, as `is_dir` and the extension test skipped it.
            if entry.is_dir() || (is_manifest && entry.exists()) {
                self.visit(&entry)?;
            } else if is_manifest {
                self.files.push(entry);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory of this test, emptied first.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("edgeplane-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok();
        dir
    }

    #[cfg(unix)]
    #[test]
    fn links_to_ancestors_and_twin_links_are_visited_once() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = scratch("loops");
        std::fs::write(dir.join("a.yaml"), "")?;
        std::fs::create_dir(dir.join("sub"))?;
        std::fs::write(dir.join("sub/b.yml"), "")?;
        // One link to an ancestor read each file 41 times (until the system's limit on
        // links in a path); two made the walk exponential (the CLI test has that case).
        std::os::unix::fs::symlink(".", dir.join("l1"))?;
        std::os::unix::fs::symlink("sub", dir.join("twin"))?;
        let files = manifest_files(&dir)?;
        assert_eq!(files, vec![dir.join("a.yaml"), dir.join("sub/b.yml")]);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
