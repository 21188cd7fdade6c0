//! Reading manifests from files, directories and standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

use edgeplane_core::manifests::{self, Document, ManifestError, Object, Validation};

/// `--validate`: what to do about fields an object's kind does not have, as kubectl's flag.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValidateArg {
    /// An unknown field is an error naming it.
    #[default]
    Strict,
    /// An unknown field is a warning; the object is read without it.
    Warn,
    /// Unknown fields are not looked for.
    Ignore,
}

impl From<ValidateArg> for Validation {
    fn from(arg: ValidateArg) -> Validation {
        match arg {
            ValidateArg::Strict => Validation::Strict,
            ValidateArg::Warn => Validation::Warn,
            ValidateArg::Ignore => Validation::Ignore,
        }
    }
}

/// Every document of the given paths: files, directories (recursively, `*.yaml`, `*.yml`
/// and `*.json` in name order) and `-` for standard input. An object defined twice is read
/// once when both definitions are the same, and is an error naming both places otherwise.
/// Fields an object's kind does not have are an error, a warning on standard error, or
/// not looked for, as `validate` says.
pub fn read_documents(
    paths: &[PathBuf],
    validate: ValidateArg,
) -> Result<Vec<Document>, ManifestError> {
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
    let documents = manifests::unique(documents)?;
    for doc in &documents {
        for warning in manifests::check_fields(doc, validate.into())? {
            eprintln!("warning: {warning}");
        }
    }
    Ok(documents)
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
