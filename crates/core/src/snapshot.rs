//! A snapshot of the objects edgeplane reasons about, assembled from manifests (offline
//! commands) or from a cluster's caches (controllers).

use std::collections::BTreeMap;

use edgeplane_api::{ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyOffer};
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::manifests::Object;
use crate::offers::{Candidate, Inventory};

/// Objects by kind, in input order.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub policies: Vec<ConstraintPolicy>,
    pub offers: Vec<ConstraintPolicyOffer>,
    pub bindings: Vec<ConstraintPolicyBinding>,
    pub pods: Vec<Pod>,
    pub nodes: Vec<Node>,
    /// Objects of other kinds, counted by `apiVersion kind`.
    pub skipped: BTreeMap<String, usize>,
}

impl Snapshot {
    pub fn from_objects(objects: impl IntoIterator<Item = Object>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for object in objects {
            snapshot.add(object);
        }
        snapshot
    }

    pub fn add(&mut self, object: Object) {
        match object {
            Object::Policy(p) => self.policies.push(p),
            Object::Offer(o) => self.offers.push(o),
            Object::Binding(b) => self.bindings.push(b),
            Object::Pod(p) => self.pods.push(*p),
            Object::Node(n) => self.nodes.push(*n),
            Object::Other { api_version, kind } => {
                *self
                    .skipped
                    .entry(format!("{api_version} {kind}"))
                    .or_default() += 1;
            }
        }
    }

    /// The policy `name` in `namespace`.
    pub fn policy(&self, namespace: &str, name: &str) -> Option<&ConstraintPolicy> {
        self.policies.iter().find(|p| {
            p.metadata.name.as_deref() == Some(name)
                && p.metadata.namespace.as_deref() == Some(namespace)
        })
    }

    /// What offers can select from.
    pub fn inventory(&self) -> Inventory {
        Inventory {
            pods: self.pods.iter().filter_map(Candidate::from_pod).collect(),
            sites: Vec::new(),
        }
    }
}
