//! Reading manifests from files, directories and standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

use edgeplane_core::manifests::{self, Document, ManifestError, Object};

/// Every document of the given paths: files, directories (recursively, `*.yaml`, `*.yml`
/// and `*.json` in name order) and `-` for standard input. An object defined twice is read
/// once when both definitions are the same, and is an error naming both places otherwise.
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
    manifests::unique(documents)
}

/// Decodes and validates documents; the first invalid one is the error.
pub fn decode_all(documents: &[Document]) -> Result<Vec<Object>, ManifestError> {
    documents.iter().map(manifests::decode).collect()
}

fn files_under(path: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    edgeplane_sim::files::manifest_files(path)
        .map_err(|e| io_error(&e.path.display().to_string(), &e.source))
}

fn io_error(source: &str, error: &std::io::Error) -> ManifestError {
    ManifestError {
        location: source.to_string(),
        object: None,
        field: None,
        message: format!("cannot read: {error}"),
    }
}
