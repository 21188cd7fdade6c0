//! Each object defined once: two different definitions of one object in the input (two
//! example folders both holding `ar/ar-render-0`) are an error naming both, rather than a
//! silent "last wins" or a refused update when a cluster applies them in turn. The same
//! definition read twice (a file given on its own and within its folder) is read once.

use std::collections::HashMap;

use super::{Document, ManifestError, is_cluster_scoped};

/// The documents with repeated identical definitions left out (the first kept); fails on
/// the first object defined twice differently, naming the object and both documents. An
/// object is its API group (any version), kind, namespace (`default` when absent, none for
/// cluster-scoped kinds) and name; unnamed documents are left to the decoder.
pub fn unique(documents: Vec<Document>) -> Result<Vec<Document>, ManifestError> {
    let mut seen: HashMap<(String, String, String, String), usize> = HashMap::new();
    let mut out: Vec<Document> = Vec::with_capacity(documents.len());
    for doc in documents {
        let Some(key) = identity(&doc) else {
            out.push(doc);
            continue;
        };
        match seen.get(&key) {
            Some(&first) if out[first].value == doc.value => {}
            Some(&first) => {
                return Err(ManifestError {
                    location: doc.location(),
                    object: Some(doc.describe()),
                    field: None,
                    message: format!(
                        "is defined twice, differently: first in {}, again here (each object may be defined once in the input)",
                        out[first].location()
                    ),
                });
            }
            None => {
                seen.insert(key, out.len());
                out.push(doc);
            }
        }
    }
    Ok(out)
}

/// (group, kind, namespace, name), for named documents.
fn identity(doc: &Document) -> Option<(String, String, String, String)> {
    let name = doc.value.pointer("/metadata/name")?.as_str()?;
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
    Some((group.into(), kind.into(), namespace.into(), name.into()))
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
        let other = format!("{POD}spec: {{nodeName: edge-1-a}}\n");
        all.extend(docs("examples/metro-plan/app.yaml", &other));
        let err = unique(all).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "examples/metro-plan/app.yaml[0] Pod ar/ar-render-0: is defined twice, differently: first in examples/ar-app/app.yaml[1], again here (each object may be defined once in the input)"
            )
        );
    }

    #[test]
    fn the_same_definition_twice_is_read_once() {
        // `-f examples/metro/workloads.yaml -f examples/metro`.
        let mut all = docs("examples/metro/workloads.yaml", POD);
        all.extend(docs("examples/metro/workloads.yaml", POD));
        all.extend(docs(
            "examples/metro/nodes.yaml",
            "apiVersion: v1\nkind: Node\nmetadata: {name: edge-n}\n",
        ));
        let kept = unique(all).unwrap_or_default();
        assert_eq!(
            kept.iter().map(Document::describe).collect::<Vec<_>>(),
            ["Pod ar/ar-render-0", "Node edge-n"]
        );
    }

    #[test]
    fn identity_is_group_kind_namespace_and_name() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: other}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: a, namespace: ignored}\n---\napiVersion: v1\nkind: Pod\nmetadata: {generateName: a-}\n---\napiVersion: v1\nkind: Pod\nmetadata: {generateName: a-}\n";
        assert_eq!(unique(docs("a.yaml", text)).map(|d| d.len()), Ok(6));
        // `default` is where a namespaced object without a namespace goes; versions of
        // one group name the same object.
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\n";
        assert!(unique(docs("b.yaml", text)).is_err());
        let text = "apiVersion: apps/v1beta2\nkind: Deployment\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n";
        let err = unique(docs("c.yaml", text)).err().map(|e| e.location);
        assert_eq!(err.as_deref(), Some("c.yaml[1]"));
        let text = "apiVersion: v1\nkind: Node\nmetadata: {name: edge-1}\n---\napiVersion: v1\nkind: NodeList\nitems: [{metadata: {name: edge-1, labels: {zone: a}}}]\n";
        let err = unique(docs("d.yaml", text)).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "d.yaml[1].items[0] Node edge-1: is defined twice, differently: first in d.yaml[0], again here (each object may be defined once in the input)"
            )
        );
    }
}
