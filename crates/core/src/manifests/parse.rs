//! A source's text into documents: JSON or multi-document YAML, lists opened into their
//! objects.

use serde_json::Value as Json;

use super::yaml::{YamlLimits, yaml_document, yaml_documents};
use super::{Document, ManifestError};

/// Splits a source into documents, under the YAML limits of the environment
/// ([`YamlLimits::from_env`]). See [`parse_documents_with`].
pub fn parse_documents(source: &str, text: &str) -> Result<Vec<Document>, ManifestError> {
    let limits = YamlLimits::from_env().map_err(|message| ManifestError {
        location: source.to_string(),
        object: None,
        field: None,
        message,
    })?;
    parse_documents_with(source, text, &limits)
}

/// One JSON or YAML document (a scenario file, a request body), under the YAML limits of
/// the environment. Errors are located at `source`.
pub fn parse_single(source: &str, text: &str) -> Result<Json, ManifestError> {
    let syntax = |message: String| ManifestError {
        location: source.to_string(),
        object: None,
        field: None,
        message,
    };
    if text.trim_start().starts_with('{')
        && let Ok(value) = serde_json::from_str::<Json>(text)
    {
        return Ok(value);
    }
    let limits = YamlLimits::from_env().map_err(syntax)?;
    yaml_document(text, &limits).map_err(|e| syntax(format!("invalid YAML: {e}")))
}

/// Splits a source into documents. JSON sources (starting with `{` or `[`) are one
/// document, an array of them, or several concatenated (`{...}{...}` or one per line, as
/// `kubectl` reads them); everything else, and JSON-looking text that is not
/// JSON (a YAML flow mapping), is parsed as multi-document YAML. A `List` (what `kubectl
/// get -o yaml` prints) or typed list (`PodList`, `NodeList`: what the API returns) gives
/// its items, which take the list's kind without `List` and its apiVersion when they
/// carry none (the API leaves them out of typed lists).
pub fn parse_documents_with(
    source: &str,
    text: &str,
    limits: &YamlLimits,
) -> Result<Vec<Document>, ManifestError> {
    let syntax = |message: String| ManifestError {
        location: source.to_string(),
        object: None,
        field: None,
        message,
    };
    let values: Vec<Json> = if text.trim_start().starts_with(['{', '[']) {
        match json_stream(text) {
            Ok(values) => values,
            Err(json) => match yaml_documents(text, limits) {
                Ok(values) => values,
                Err(_) => return Err(syntax(format!("invalid JSON: {json}"))),
            },
        }
    } else {
        yaml_documents(text, limits).map_err(|e| syntax(format!("invalid YAML: {e}")))?
    };
    let mut documents = Vec::with_capacity(values.len());
    for (index, value) in values.into_iter().filter(|v| !v.is_null()).enumerate() {
        let doc = Document {
            source: source.to_string(),
            index,
            item: None,
            value,
        };
        if !doc.value.is_object() {
            return Err(ManifestError::at(
                &doc,
                None,
                "a document must be a Kubernetes object (a mapping)",
            ));
        }
        if is_list(&doc) {
            open_list(doc, &mut documents)?;
        } else {
            documents.push(doc);
        }
    }
    Ok(documents)
}

/// The values of a JSON text holding one or more values one after another, arrays opened
/// into their items.
fn json_stream(text: &str) -> Result<Vec<Json>, serde_json::Error> {
    let mut values = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<Json>() {
        match value? {
            Json::Array(items) => values.extend(items),
            value => values.push(value),
        }
    }
    Ok(values)
}

/// `kind: List`, or a kind ending in `List` that holds `items`.
fn is_list(doc: &Document) -> bool {
    doc.kind() == "List" || doc.kind().ends_with("List") && doc.value.get("items").is_some()
}

/// Appends the items of a list document.
fn open_list(mut doc: Document, out: &mut Vec<Document>) -> Result<(), ManifestError> {
    // Taken, not cloned: a list may hold tens of thousands of objects.
    let items = doc.value.get_mut("items").map(Json::take);
    let items = match items {
        None | Some(Json::Null) => return Ok(()),
        Some(Json::Array(items)) => items,
        Some(_) => {
            return Err(ManifestError::at(
                &doc,
                Some("items".into()),
                "must be a list of objects",
            ));
        }
    };
    // A typed list's items leave out their kind and apiVersion.
    let item_kind = doc.kind().strip_suffix("List").filter(|k| !k.is_empty());
    let api_version = doc.api_version().to_string();
    for (i, mut value) in items.into_iter().enumerate() {
        let Some(object) = value.as_object_mut() else {
            return Err(ManifestError {
                location: format!("{}.items[{i}]", doc.location()),
                object: None,
                field: None,
                message: "a list item must be a Kubernetes object (a mapping)".into(),
            });
        };
        if let Some(kind) = item_kind {
            object
                .entry("kind")
                .or_insert_with(|| Json::String(kind.to_string()));
            if !api_version.is_empty() {
                object
                    .entry("apiVersion")
                    .or_insert_with(|| Json::String(api_version.clone()));
            }
        }
        out.push(Document {
            source: doc.source.clone(),
            index: doc.index,
            item: Some(i),
            value,
        });
    }
    Ok(())
}
