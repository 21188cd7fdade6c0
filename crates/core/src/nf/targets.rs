//! Offers that target a `NetworkFunction` or a `ServiceChain`: which pods such a target
//! stands for.
//!
//! A network function runs as replicas, each a pod (a VM's virt-launcher pod carries the
//! same labels), so a constraint on an NF is a constraint on each replica: the offer
//! expands an NF target into the NF's pods, one binding per replica (and per combination
//! with the other roles), exactly as a Pod target with a selector would. Everything that
//! judges, plans and repairs bindings then works unchanged. A chain target stands for the
//! pods of its first hop (`mode: Start`: where traffic enters), of its last hop
//! (`mode: End`: where it leaves), or of every hop (no mode).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use edgeplane_api::{NetworkFunction, ServiceChain, TargetKind, TargetMode};

use super::NF_LABEL;
use crate::selector::Selector;

/// A network function or service chain an offer can select, by namespace and labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionCandidate {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The network functions whose pods it stands for: the NF itself, or a chain's hops
    /// in order.
    pub functions: Vec<String>,
}

impl FunctionCandidate {
    pub fn function(nf: &NetworkFunction) -> Option<FunctionCandidate> {
        let name = nf.metadata.name.clone()?;
        Some(FunctionCandidate {
            namespace: nf
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            labels: nf.metadata.labels.clone().unwrap_or_default(),
            functions: vec![name.clone()],
            name,
        })
    }

    pub fn chain(chain: &ServiceChain) -> Option<FunctionCandidate> {
        Some(FunctionCandidate {
            namespace: chain
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            name: chain.metadata.name.clone()?,
            labels: chain.metadata.labels.clone().unwrap_or_default(),
            functions: chain
                .spec
                .hops
                .iter()
                .map(|h| h.network_function.clone())
                .collect(),
        })
    }

    /// The functions a target with this mode means: the first hop, the last, or all.
    fn functions_for(&self, mode: Option<TargetMode>) -> &[String] {
        let n = self.functions.len();
        match mode {
            Some(TargetMode::Start) => &self.functions[..n.min(1)],
            Some(TargetMode::End) => &self.functions[n.saturating_sub(1)..],
            None => &self.functions,
        }
    }
}

/// The network functions and service chains offers can target.
#[derive(Clone, Debug, Default)]
pub struct FunctionInventory {
    pub functions: Vec<FunctionCandidate>,
    pub chains: Vec<FunctionCandidate>,
}

/// No network functions or chains: where they are not watched.
static NONE: FunctionInventory = FunctionInventory {
    functions: Vec::new(),
    chains: Vec::new(),
};

impl FunctionInventory {
    pub fn none() -> &'static FunctionInventory {
        &NONE
    }

    pub fn new<'a>(
        functions: impl IntoIterator<Item = &'a NetworkFunction>,
        chains: impl IntoIterator<Item = &'a ServiceChain>,
    ) -> Self {
        FunctionInventory {
            functions: functions
                .into_iter()
                .filter_map(FunctionCandidate::function)
                .collect(),
            chains: chains
                .into_iter()
                .filter_map(FunctionCandidate::chain)
                .collect(),
        }
    }

    /// From the caches' shared objects.
    pub fn of_shared(functions: &[Arc<NetworkFunction>], chains: &[Arc<ServiceChain>]) -> Self {
        FunctionInventory::new(functions.iter().map(|f| &**f), chains.iter().map(|c| &**c))
    }

    /// The names of the network functions a NetworkFunction or ServiceChain target
    /// selects in `namespace`.
    pub fn selected(
        &self,
        kind: TargetKind,
        mode: Option<TargetMode>,
        selector: &Selector,
        namespace: &str,
    ) -> BTreeSet<String> {
        let (objects, mode) = match kind {
            TargetKind::NetworkFunction => (&self.functions, None),
            TargetKind::ServiceChain => (&self.chains, mode),
            TargetKind::Pod | TargetKind::Site | TargetKind::Cluster => return BTreeSet::new(),
        };
        objects
            .iter()
            .filter(|o| o.namespace == namespace && selector.matches(&o.labels))
            .flat_map(|o| o.functions_for(mode).iter().cloned())
            .collect()
    }
}

/// Whether a pod with these labels runs one of `functions`.
pub fn runs_one_of(labels: &BTreeMap<String, String>, functions: &BTreeSet<String>) -> bool {
    labels.get(NF_LABEL).is_some_and(|f| functions.contains(f))
}

/// Whether a pod with these labels runs some network function (the offer controller
/// re-expands offers with NF or chain targets when such a pod changes).
pub fn runs_a_function(labels: &BTreeMap<String, String>) -> bool {
    labels.contains_key(NF_LABEL)
}
