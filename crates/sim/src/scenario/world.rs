//! What exists at a point of the scenario: the admission checks of objects and events.

use std::collections::{BTreeMap, BTreeSet};

use edgeplane_api::NetworkTopology;
use edgeplane_cluster::resources::{Registry, defs_from_crd};
use edgeplane_core::manifests::{self, Document, Object};
use edgeplane_core::network::{NetworkGraph, NodeInfo};
use serde_json::Value;

use super::error::{FileErrors, ScenarioError};
use super::model::ObjectRef;

/// What exists at a point of the scenario, as far as the files tell: enough to reject
/// events that cannot work.
pub(super) struct World {
    pub(super) registry: Registry,
    namespaces: BTreeSet<String>,
    pub(super) objects: BTreeSet<ObjectRef>,
    /// Nodes and their labels.
    nodes: BTreeMap<String, BTreeMap<String, String>>,
    pub(super) topology: Option<NetworkTopology>,
    /// Where the topology in force was defined, for messages.
    topology_location: String,
    pub(super) failed: BTreeSet<String>,
}

impl World {
    pub(super) fn new() -> Self {
        let mut registry = Registry::builtin();
        for crd in edgeplane_api::crdgen::all() {
            if let Ok(v) = serde_json::to_value(&crd)
                && let Ok(defs) = defs_from_crd(&v)
            {
                registry.set_crd(&crd.metadata.name.clone().unwrap_or_default(), defs);
            }
        }
        World {
            registry,
            namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"]
                .into_iter()
                .map(String::from)
                .collect(),
            objects: BTreeSet::new(),
            nodes: BTreeMap::new(),
            topology: None,
            topology_location: String::new(),
            failed: BTreeSet::new(),
        }
    }

    /// Validates objects applied together and records them. As the cluster applies them,
    /// CustomResourceDefinitions and Namespaces go first.
    pub(super) fn admit_batch(&mut self, docs: &[Document]) -> Result<(), ScenarioError> {
        let first = |d: &&Document| matches!(d.kind(), "CustomResourceDefinition" | "Namespace");
        for doc in docs.iter().filter(first) {
            self.admit(doc)?;
        }
        for doc in docs.iter().filter(|d| !first(d)) {
            self.admit(doc)?;
        }
        Ok(())
    }

    /// Validates one object and records it.
    fn admit(&mut self, doc: &Document) -> Result<(), ScenarioError> {
        let object = manifests::decode(doc)?;
        let located = |field: &str, message: String| ScenarioError {
            location: doc.location(),
            object: Some(doc.describe()),
            field: Some(field.to_string()),
            message,
        };
        let (api_version, kind) = (doc.api_version().to_string(), doc.kind().to_string());
        if kind == "CustomResourceDefinition" {
            match defs_from_crd(&doc.value) {
                Ok(defs) => {
                    let name = doc
                        .value
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    self.registry.set_crd(&name, defs);
                }
                Err(errors) => {
                    let (field, detail) = errors
                        .into_iter()
                        .next()
                        .map(|e| (e.field, e.detail))
                        .unwrap_or_else(|| ("spec".into(), "invalid".into()));
                    return Err(located(&field, detail));
                }
            }
        }
        let Some(def) = self.registry.find_kind(&api_version, &kind) else {
            return Err(located(
                "kind",
                format!(
                    "the embedded cluster does not serve {api_version} {kind} (add its CustomResourceDefinition to the scenario)"
                ),
            ));
        };
        let name = doc
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            return Err(located("metadata.name", "is required".into()));
        }
        let namespace = if def.namespaced {
            let ns = doc
                .value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("default")
                .to_string();
            if !self.namespaces.contains(&ns) {
                return Err(located(
                    "metadata.namespace",
                    format!("namespace {ns:?} does not exist (add a Namespace object before it)"),
                ));
            }
            Some(ns)
        } else {
            None
        };
        if kind == "Namespace" {
            self.namespaces.insert(name.clone());
        }
        match object {
            Object::Node(node) => {
                self.nodes.insert(
                    name.clone(),
                    node.metadata.labels.clone().unwrap_or_default(),
                );
            }
            Object::Topology(t) if name == edgeplane_core::snapshot::DEFAULT_TOPOLOGY => {
                self.topology = Some(*t);
                self.topology_location = format!("{} {}", doc.location(), doc.describe());
            }
            _ => {}
        }
        self.objects.insert(ObjectRef {
            api_version,
            kind,
            namespace,
            name,
        });
        Ok(())
    }

    pub(super) fn forget(&mut self, r: &ObjectRef) {
        self.objects.remove(r);
        match r.kind.as_str() {
            "Node" => {
                self.nodes.remove(&r.name);
                self.failed.remove(&r.name);
            }
            "NetworkTopology" if r.name == edgeplane_core::snapshot::DEFAULT_TOPOLOGY => {
                self.topology = None;
            }
            "Namespace" => {
                self.namespaces.remove(&r.name);
            }
            _ => {}
        }
    }

    fn node_infos(&self) -> Vec<NodeInfo> {
        self.nodes
            .iter()
            .map(|(name, labels)| NodeInfo {
                name: name.clone(),
                labels: labels.clone(),
            })
            .collect()
    }

    /// The topology must build with the nodes (links between known sites).
    pub(super) fn check_topology(&self) -> Result<(), ScenarioError> {
        let Some(t) = &self.topology else {
            return Ok(());
        };
        NetworkGraph::build(Some(t), &self.node_infos(), jiff::Timestamp::UNIX_EPOCH).map_err(
            |e| ScenarioError {
                location: self.topology_location.clone(),
                object: None,
                field: (!e.field.is_empty()).then(|| e.field.clone()),
                message: e.message.clone(),
            },
        )?;
        Ok(())
    }

    /// Sites known now: declared ones and those of nodes.
    pub(super) fn sites(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let label = self
            .topology
            .as_ref()
            .map(|t| t.spec.site_label.clone())
            .unwrap_or_else(|| edgeplane_api::network::DEFAULT_SITE_LABEL.to_string());
        if let Some(t) = &self.topology {
            out.extend(t.spec.sites.iter().map(|s| s.name.clone()));
        }
        for (name, labels) in &self.nodes {
            match labels.get(&label).filter(|v| !v.is_empty()) {
                Some(site) => out.insert(site.clone()),
                None => out.insert(name.clone()),
            };
        }
        out
    }

    pub(super) fn check_node(
        &self,
        file: &FileErrors,
        field: &str,
        node: &str,
    ) -> Result<(), ScenarioError> {
        if node.is_empty() {
            return Err(file.at(Some(field), "is empty"));
        }
        if !self.nodes.contains_key(node) {
            let known: Vec<&str> = self.nodes.keys().map(String::as_str).take(12).collect();
            let more = if self.nodes.len() > known.len() {
                ", ..."
            } else {
                ""
            };
            return Err(file.at(
                Some(field),
                format!("unknown node {node:?} (nodes: {}{more})", known.join(", ")),
            ));
        }
        Ok(())
    }
}
