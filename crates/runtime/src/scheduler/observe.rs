//! What one plan run reads from the caches: the facts the pure decisions take.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use edgeplane_api::{
    ConstraintPolicy, ConstraintPolicyOffer, NetworkFunction, NetworkTopology, ServiceChain,
};
use edgeplane_core::nf::targets::FunctionInventory;
use edgeplane_core::planner::PodKey;
use edgeplane_core::scheduler::compiled::CompiledCluster;
use edgeplane_core::scheduler::input::{self, Built, HOSTNAME_LABEL, Observed};
use edgeplane_providers::Provider;
use k8s_openapi::api::core::v1::{Node, Pod, Service};

use super::external::ExternalProviders;
use crate::cache::{Cache, Caches};

/// A snapshot of the caches, taken once per plan run.
pub struct Facts {
    pub pods: Vec<Arc<Pod>>,
    pub nodes: Vec<Arc<Node>>,
    pub policies: Vec<Arc<ConstraintPolicy>>,
    pub offers: Vec<Arc<ConstraintPolicyOffer>>,
    /// The NetworkTopology named `default`.
    pub topology: Option<Arc<NetworkTopology>>,
    pub services: Vec<Arc<Service>>,
    /// The external providers by rule: given explicitly, or registered by Services.
    pub providers: BTreeMap<String, Arc<dyn Provider>>,
    /// Service chains, when the scheduler watches them: their lanes are planned as units.
    pub chains: Vec<Arc<ServiceChain>>,
    /// Network functions and chains that offers may target (empty when not watched).
    pub functions: FunctionInventory,
}

impl Facts {
    pub fn read(
        caches: &Caches,
        external: &ExternalProviders,
        chains: Option<&Cache<ServiceChain>>,
        nfs: Option<&Cache<NetworkFunction>>,
    ) -> Facts {
        let services = caches.services.list();
        let chains = chains.map(Cache::list).unwrap_or_default();
        let functions = match nfs {
            Some(nfs) => FunctionInventory::of_shared(&nfs.list(), &chains),
            None => FunctionInventory::default(),
        };
        Facts {
            pods: caches.pods.list(),
            nodes: caches.nodes.list(),
            policies: caches.policies.list(),
            offers: caches.offers.list(),
            topology: caches.topology(),
            providers: external.resolve(&services),
            services,
            chains,
            functions,
        }
    }

    /// The planner's input (`in_flight`: pods whose placement was written, with the node,
    /// that the cache may still show waiting), compiling only the objects that changed
    /// since `compiled` last saw the caches.
    pub fn input(
        &self,
        compiled: &mut CompiledCluster,
        in_flight: &BTreeMap<PodKey, String>,
    ) -> Built {
        let external_rules: BTreeSet<String> = self.providers.keys().cloned().collect();
        let mut built = input::build_kept(
            compiled,
            Observed {
                nodes: &self.nodes,
                pods: &self.pods,
                policies: &self.policies,
                offers: &self.offers,
                topology: self.topology.as_deref(),
                functions: &self.functions,
            },
            in_flight,
            &external_rules,
        );
        if !self.chains.is_empty() {
            let pending: BTreeSet<PodKey> = built.pending.iter().map(|p| p.key.clone()).collect();
            let lanes =
                edgeplane_core::chain::plan::lane_plan_bindings(&self.chains, &self.pods, &pending);
            // A lane is placed as a unit: its pods wait until every hop has one.
            built
                .pending
                .retain(|p| !lanes.waiting.contains_key(&p.key));
            built.bindings.extend(lanes.bindings);
        }
        built
    }

    /// Node name -> its `kubernetes.io/hostname` label.
    pub fn hostnames(&self) -> HashMap<&str, &str> {
        self.nodes
            .iter()
            .filter_map(|n| {
                let host = n.metadata.labels.as_ref()?.get(HOSTNAME_LABEL)?;
                Some((n.metadata.name.as_deref()?, host.as_str()))
            })
            .collect()
    }
}
