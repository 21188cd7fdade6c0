//! Each object defined once: two definitions of one object in the input (two example
//! folders both holding `ar/ar-render-0`) are an error naming both, rather than a silent
//! "last wins" or a refused update when a cluster applies them in turn.

use std::collections::HashMap;

use super::{Document, ManifestError, is_cluster_scoped};

/// Fails on the first object defined twice, naming the object and both documents. An
/// object is its API group (any version), kind, namespace (`default` when absent, none for
/// cluster-scoped kinds) and name; unnamed documents are left to the decoder.
pub fn check_unique(documents: &[Document]) -> Result<(), ManifestError> {
    let mut seen: HashMap<(&str, &str, &str, &str), &Document> = HashMap::new();
    for doc in documents {
        let Some(name) = doc.value.pointer("/metadata/name").and_then(|n| n.as_str()) else {
            continue;
        };
        let kind = doc.kind();
        let group = doc.api_version().rsplit_once('/').map_or("", |(g, _)| g);
        let namespace = if is_cluster_scoped(kind) {
            ""
        } else {
            doc.value
                .pointer("/metadata/namespace")
                .and_then(|n| n.as_str())
                .filter(|n| !n.is_empty())
                .unwrap_or("default")
        };
        if let Some(first) = seen.insert((group, kind, namespace, name), doc) {
            return Err(ManifestError {
                location: doc.location(),
                object: Some(doc.describe()),
                field: None,
                message: format!(
                    "is defined twice: first in {}, again here (each object may be defined once in the input)",
                    first.location()
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::parse_documents;

    fn docs(source: &str, text: &str) -> Vec<Document> {
        parse_documents(source, text).unwrap_or_else(|e| panic!("{e}"))
    }

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: ar-render-0, namespace: ar}\n";

    #[test]
    fn a_second_definition_names_both_files_and_the_object() {
        let namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ar}\n---\n";
        let mut all = docs("examples/ar-app/app.yaml", &format!("{namespace}{POD}"));
        all.extend(docs("examples/metro-plan/app.yaml", POD));
        let err = check_unique(&all).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "examples/metro-plan/app.yaml[0] Pod ar/ar-render-0: is defined twice: first in examples/ar-app/app.yaml[1], again here (each object may be defined once in the input)"
            )
        );
    }

    #[test]
    fn identity_is_group_kind_namespace_and_name() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: other}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: a, namespace: ignored}\n---\napiVersion: v1\nkind: Pod\nmetadata: {generateName: a-}\n---\napiVersion: v1\nkind: Pod\nmetadata: {generateName: a-}\n";
        assert_eq!(check_unique(&docs("a.yaml", text)), Ok(()));
        // `default` is where a namespaced object without a namespace goes; versions of
        // one group name the same object.
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\n";
        assert!(check_unique(&docs("b.yaml", text)).is_err());
        let text = "apiVersion: apps/v1beta2\nkind: Deployment\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n";
        let err = check_unique(&docs("c.yaml", text))
            .err()
            .map(|e| e.location);
        assert_eq!(err.as_deref(), Some("c.yaml[1]"));
        let text = "apiVersion: v1\nkind: Node\nmetadata: {name: edge-1}\n---\napiVersion: v1\nkind: NodeList\nitems: [{metadata: {name: edge-1}}]\n";
        let err = check_unique(&docs("d.yaml", text))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "d.yaml[1].items[0] Node edge-1: is defined twice: first in d.yaml[0], again here (each object may be defined once in the input)"
            )
        );
    }
}
