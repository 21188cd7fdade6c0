//! Reading manifests from files, directories and standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

use edgeplane_core::manifests::{self, Document, ManifestError, Object};

/// Every document of the given paths: files, directories (recursively, `*.yaml`, `*.yml`
/// and `*.json` in name order) and `-` for standard input.
pub fn read_documents(paths: &[PathBuf]) -> Result<Vec<Document>, ManifestError> {
    let mut documents = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| io_error("-", &e))?;
            documents.extend(manifests::parse_documents("-", &text)?);
            continue;
        }
        for file in files_under(path)? {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(|e| io_error(&name, &e))?;
            documents.extend(manifests::parse_documents(&name, &text)?);
        }
    }
    Ok(documents)
}

/// Decodes and validates documents; the first invalid one is the error.
pub fn decode_all(documents: &[Document]) -> Result<Vec<Object>, ManifestError> {
    documents.iter().map(manifests::decode).collect()
}

fn files_under(path: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| io_error(&name, &e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| io_error(&name, &e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            files.extend(files_under(&entry)?);
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

fn io_error(source: &str, error: &std::io::Error) -> ManifestError {
    ManifestError {
        location: source.to_string(),
        object: None,
        field: None,
        message: format!("cannot read: {error}"),
    }
}
