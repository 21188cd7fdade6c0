//! A snapshot of the objects edgeplane reasons about, assembled from manifests (offline
//! commands) or from a cluster's caches (controllers).

use std::collections::BTreeMap;

use edgeplane_api::{
    ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyOffer, NetworkPathCatalogue,
    NetworkTopology,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::manifests::Object;
use crate::offers::{Candidate, Inventory};

/// The name of the topology edgeplane uses when there are several.
pub const DEFAULT_TOPOLOGY: &str = "default";

/// Objects by kind, in input order.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub policies: Vec<ConstraintPolicy>,
    pub offers: Vec<ConstraintPolicyOffer>,
    pub bindings: Vec<ConstraintPolicyBinding>,
    pub pods: Vec<Pod>,
    pub nodes: Vec<Node>,
    pub topologies: Vec<NetworkTopology>,
    pub catalogues: Vec<NetworkPathCatalogue>,
    pub deployments: Vec<Deployment>,
    pub stateful_sets: Vec<StatefulSet>,
    pub replica_sets: Vec<ReplicaSet>,
    pub virtual_machines: Vec<crate::kubevirt::VirtualMachine>,
    pub functions: Vec<edgeplane_api::NetworkFunction>,
    pub chains: Vec<edgeplane_api::ServiceChain>,
    pub namespaces: Vec<k8s_openapi::api::core::v1::Namespace>,
    pub priority_classes: Vec<k8s_openapi::api::scheduling::v1::PriorityClass>,
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
            Object::Topology(t) => self.topologies.push(*t),
            Object::Catalogue(c) => self.catalogues.push(*c),
            Object::Deployment(d) => self.deployments.push(*d),
            Object::StatefulSet(s) => self.stateful_sets.push(*s),
            Object::ReplicaSet(r) => self.replica_sets.push(*r),
            Object::VirtualMachine(vm) => self.virtual_machines.push(*vm),
            Object::NetworkFunction(f) => self.functions.push(*f),
            Object::ServiceChain(c) => self.chains.push(*c),
            Object::Namespace(n) => self.namespaces.push(*n),
            Object::PriorityClass(c) => self.priority_classes.push(*c),
            Object::Other { api_version, kind } => {
                *self
                    .skipped
                    .entry(format!("{api_version} {kind}"))
                    .or_default() += 1;
            }
        }
    }

    /// What pods' placement rules refer to: namespace labels and PriorityClasses.
    pub fn rules_context(&self) -> crate::placement::RulesContext {
        crate::placement::RulesContext::new(&self.namespaces, &self.priority_classes)
    }

    /// The policy `name` in `namespace`.
    pub fn policy(&self, namespace: &str, name: &str) -> Option<&ConstraintPolicy> {
        self.policies.iter().find(|p| {
            p.metadata.name.as_deref() == Some(name)
                && p.metadata.namespace.as_deref() == Some(namespace)
        })
    }

    /// The topology in force: the one named `default`, or the only one. `None` when there
    /// is none, or several and none is named `default`.
    pub fn topology(&self) -> Option<&NetworkTopology> {
        let named_default = self
            .topologies
            .iter()
            .find(|t| t.metadata.name.as_deref() == Some(DEFAULT_TOPOLOGY));
        match (named_default, self.topologies.as_slice()) {
            (Some(t), _) => Some(t),
            (None, [only]) => Some(only),
            _ => None,
        }
    }

    /// What offers can select from: pods, and the sites of the topology and of the nodes.
    pub fn inventory(&self) -> Inventory {
        Inventory {
            pods: self.pods.iter().filter_map(Candidate::from_pod).collect(),
            sites: crate::sites::site_candidates(self.topology(), &self.nodes),
            functions: crate::nf::targets::FunctionInventory::new(&self.functions, &self.chains),
        }
    }
}
