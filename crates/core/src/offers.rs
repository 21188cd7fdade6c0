//! Offers to bindings: one binding per combination of matched objects across an offer's
//! roles, with deterministic names so that a restart never duplicates or loses one.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use edgeplane_api::constraint::binding_selector;
use edgeplane_api::names::OFFER_LABEL;
use edgeplane_api::{
    ConstraintPolicyBinding, ConstraintPolicyBindingSpec, ConstraintPolicyOffer, TargetKind,
    TargetMode, TargetRef,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

use crate::nf::targets::{self, FunctionInventory};
use crate::selector::{Requirement, Selector};

/// Bindings an offer may produce before it is refused: combinations grow as the product
/// of the roles' matches, and an unbounded offer could flood the API server.
pub const MAX_BINDINGS_PER_OFFER: usize = 10_000;

/// The target kinds offers expand, for error messages.
pub const SUPPORTED_KINDS: &str = "Pod, Site, NetworkFunction, ServiceChain";

/// An object that can fill a role: its reference and its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub reference: TargetRef,
    pub labels: BTreeMap<String, String>,
}

impl Candidate {
    /// A pod that can be a target: not terminating and not finished. Pods that are
    /// waiting to be placed count (the planner needs their bindings).
    pub fn from_pod(pod: &Pod) -> Option<Candidate> {
        if pod.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return None;
        }
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        Some(Candidate {
            reference: TargetRef::pod(namespace, pod.metadata.name.clone()?),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
        })
    }

    /// A site of the network topology.
    pub fn site(name: &str, labels: BTreeMap<String, String>) -> Candidate {
        Candidate {
            reference: TargetRef::site(name),
            labels,
        }
    }
}

/// Everything an offer's targets can select from.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Pods of every namespace; an offer selects only from its own.
    pub pods: Vec<Candidate>,
    /// Sites of the network topology.
    pub sites: Vec<Candidate>,
    /// Network functions and service chains (empty where their controllers are off:
    /// then NF and chain targets match nothing).
    pub functions: FunctionInventory,
}

/// A reason why an offer cannot be expanded, with the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct OfferError {
    pub field: String,
    pub message: String,
}

impl OfferError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        OfferError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A binding the offer should have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredBinding {
    pub name: String,
    pub targets: BTreeMap<String, TargetRef>,
}

/// The role name of target `index`: its `name`, or `target-<index>`.
pub fn role_name(offer: &ConstraintPolicyOffer, index: usize) -> String {
    offer
        .spec
        .targets
        .get(index)
        .and_then(|t| t.name.clone())
        .unwrap_or_else(|| format!("target-{index}"))
}

/// The label selectors of an offer's Pod targets, compiled once: which pods the offer
/// can select at all. The offer controller uses it to reconcile an offer only when a pod
/// it could select changes, and to read only those pods from the cache; with hundreds of
/// offers and thousands of pods per namespace, re-expanding every offer on every pod
/// change is what made reconciling quadratic.
#[derive(Clone, Debug, Default)]
pub struct PodSelectors {
    /// `None` when a Pod target's selector does not compile: the offer is invalid and
    /// [`expand`] reports why; any pod is then treated as relevant, which is harmless.
    selectors: Option<Vec<Selector>>,
    /// Whether the offer targets NetworkFunctions or ServiceChains: then any pod that
    /// runs a network function may fill a role.
    functions: bool,
}

impl PodSelectors {
    pub fn of(offer: &ConstraintPolicyOffer) -> PodSelectors {
        let selectors = offer
            .spec
            .targets
            .iter()
            .filter(|t| t.kind == TargetKind::Pod)
            .map(|t| match &t.label_selector {
                Some(s) => Selector::compile(s).ok(),
                None => Some(Selector::default()),
            })
            .collect();
        let functions = offer.spec.targets.iter().any(|t| {
            matches!(
                t.kind,
                TargetKind::NetworkFunction | TargetKind::ServiceChain
            )
        });
        PodSelectors {
            selectors,
            functions,
        }
    }

    /// Whether a pod with these labels can fill one of the offer's Pod, NetworkFunction
    /// or ServiceChain roles.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        if self.functions && targets::runs_a_function(labels) {
            return true;
        }
        match &self.selectors {
            Some(selectors) => selectors.iter().any(|s| s.matches(labels)),
            None => true,
        }
    }
}

/// The pods of an inventory by namespace and by label, so that an offer's Pod roles are
/// matched only against the pods that can fill them: expanding every offer against every
/// pod is what made the planner's input quadratic (hundreds of offers, tens of thousands
/// of pods). Build it once per inventory and expand every offer with [`expand_indexed`],
/// or keep it with the inventory and update both pod by pod ([`KeptInventory`]).
#[derive(Clone, Debug, Default)]
pub struct PodIndex {
    namespaces: HashMap<String, NamespacePods>,
}

/// Positions in `Inventory::pods`, in no particular order (expansions sort their
/// bindings by name).
#[derive(Clone, Debug, Default)]
struct NamespacePods {
    all: Vec<usize>,
    /// Label key -> value -> positions (nested so a lookup borrows, never allocates).
    by_label: HashMap<String, HashMap<String, Vec<usize>>>,
}

impl PodIndex {
    pub fn new(inventory: &Inventory) -> PodIndex {
        let mut index = PodIndex::default();
        for (i, pod) in inventory.pods.iter().enumerate() {
            index.insert(i, pod);
        }
        index
    }

    /// Indexes the pod at `position`.
    fn insert(&mut self, position: usize, pod: &Candidate) {
        let Some(namespace) = pod.reference.namespace.as_deref() else {
            return;
        };
        if !self.namespaces.contains_key(namespace) {
            self.namespaces
                .insert(namespace.to_string(), NamespacePods::default());
        }
        let Some(entry) = self.namespaces.get_mut(namespace) else {
            return;
        };
        entry.all.push(position);
        for (k, v) in &pod.labels {
            if !entry.by_label.contains_key(k) {
                entry.by_label.insert(k.clone(), HashMap::new());
            }
            if let Some(values) = entry.by_label.get_mut(k) {
                values.entry(v.clone()).or_default().push(position);
            }
        }
    }

    /// Replaces `from` by `to` in the entries of `pod` (`to = None`: removes them).
    fn relocate(&mut self, from: usize, to: Option<usize>, pod: &Candidate) {
        let Some(namespace) = pod.reference.namespace.as_deref() else {
            return;
        };
        let Some(entry) = self.namespaces.get_mut(namespace) else {
            return;
        };
        let replace = |list: &mut Vec<usize>| {
            if let Some(at) = list.iter().position(|p| *p == from) {
                match to {
                    Some(to) => list[at] = to,
                    None => {
                        list.swap_remove(at);
                    }
                }
            }
        };
        replace(&mut entry.all);
        for (k, v) in &pod.labels {
            let Some(values) = entry.by_label.get_mut(k) else {
                continue;
            };
            if let Some(list) = values.get_mut(v) {
                replace(list);
                if list.is_empty() {
                    values.remove(v);
                }
            }
            if values.is_empty() {
                entry.by_label.remove(k);
            }
        }
        if entry.all.is_empty() {
            self.namespaces.remove(namespace);
        }
    }

    /// Positions of the pods of `namespace` that may match `selector`: those carrying
    /// one of its required label values (the fewest of its `Equals`/`In` requirements),
    /// or every pod of the namespace when it requires no value. The caller still checks
    /// the whole selector.
    fn candidates(&self, namespace: &str, selector: &Selector) -> Vec<usize> {
        let Some(pods) = self.namespaces.get(namespace) else {
            return Vec::new();
        };
        let mut best: Option<Vec<usize>> = None;
        for requirement in selector.requirements() {
            let values: &[String] = match requirement {
                Requirement::Equals(_, v) => std::slice::from_ref(v),
                Requirement::In(_, vs) => vs,
                _ => continue,
            };
            let by_value = pods.by_label.get(requirement.key());
            let mut positions: Vec<usize> = values
                .iter()
                .filter_map(|v| by_value.and_then(|m| m.get(v)))
                .flatten()
                .copied()
                .collect();
            if values.len() > 1 {
                positions.sort_unstable();
                positions.dedup();
            }
            if best.as_ref().is_none_or(|b| positions.len() < b.len()) {
                best = Some(positions);
            }
        }
        best.unwrap_or_else(|| pods.all.clone())
    }
}

/// An inventory and its [`PodIndex`] kept together and updated pod by pod, for a caller
/// that expands offers again and again while few pods change (the scheduler's plan
/// runs). Pods are identified by namespace and name.
#[derive(Clone, Debug, Default)]
pub struct KeptInventory {
    inventory: Inventory,
    index: PodIndex,
    position: HashMap<(String, String), usize>,
}

impl KeptInventory {
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    pub fn index(&self) -> &PodIndex {
        &self.index
    }

    /// Sets the sites and network functions (not indexed).
    pub fn set_targets(&mut self, sites: Vec<Candidate>, functions: FunctionInventory) {
        self.inventory.sites = sites;
        self.inventory.functions = functions;
    }

    pub fn set_functions(&mut self, functions: FunctionInventory) {
        self.inventory.functions = functions;
    }

    /// Adds a pod, or replaces the pod of the same namespace and name.
    pub fn set(&mut self, pod: Candidate) {
        let id = candidate_id(&pod);
        if let Some(&at) = self.position.get(&id) {
            let old = std::mem::replace(&mut self.inventory.pods[at], pod);
            if old.labels != self.inventory.pods[at].labels {
                self.index.relocate(at, None, &old);
                self.index.insert(at, &self.inventory.pods[at]);
            }
            return;
        }
        let at = self.inventory.pods.len();
        self.index.insert(at, &pod);
        self.inventory.pods.push(pod);
        self.position.insert(id, at);
    }

    /// Removes the pod of `namespace` and `name`, if there is one.
    pub fn remove(&mut self, namespace: &str, name: &str) {
        let Some(at) = self
            .position
            .remove(&(namespace.to_string(), name.to_string()))
        else {
            return;
        };
        let last = self.inventory.pods.len() - 1;
        self.index.relocate(at, None, &self.inventory.pods[at]);
        if at != last {
            // The last pod moves into the hole.
            self.index
                .relocate(last, Some(at), &self.inventory.pods[last]);
            self.position
                .insert(candidate_id(&self.inventory.pods[last]), at);
        }
        self.inventory.pods.swap_remove(at);
    }
}

fn candidate_id(pod: &Candidate) -> (String, String) {
    (
        pod.reference.namespace.clone().unwrap_or_default(),
        pod.reference.name.clone(),
    )
}

/// Computes the bindings an offer should have given the objects that exist. Expanding
/// many offers against one inventory: index it once and use [`expand_indexed`].
pub fn expand(
    offer: &ConstraintPolicyOffer,
    inventory: &Inventory,
) -> Result<Vec<DesiredBinding>, OfferError> {
    expand_indexed(offer, inventory, &PodIndex::new(inventory))
}

/// [`expand`] with the inventory's pods indexed by `index` (built from the same inventory).
pub fn expand_indexed(
    offer: &ConstraintPolicyOffer,
    inventory: &Inventory,
    index: &PodIndex,
) -> Result<Vec<DesiredBinding>, OfferError> {
    CompiledOffer::of(offer)?.expand(inventory, index)
}

/// An offer whose targets are checked and whose selectors are compiled: everything about
/// it that does not depend on the objects that exist.
#[derive(Clone, Debug)]
pub struct CompiledOffer {
    name: String,
    namespace: String,
    roles: Vec<CompiledRole>,
}

#[derive(Clone, Debug)]
struct CompiledRole {
    name: String,
    kind: TargetKind,
    /// ServiceChain targets: which end of the chain.
    mode: Option<TargetMode>,
    selector: Selector,
    /// Site targets: the sites listed by name.
    sites: Option<Vec<String>>,
    /// Site targets: whether the selector selects too (listing sites narrows the
    /// selection; a bare list selects exactly those).
    by_selector: bool,
}

impl CompiledOffer {
    /// Checks the offer's name and targets; the first problem is the error. Owned, so
    /// the scheduler can keep it while the offer does not change.
    pub fn of(offer: &ConstraintPolicyOffer) -> Result<CompiledOffer, OfferError> {
        let name = offer.metadata.name.as_deref().unwrap_or_default();
        let namespace = offer.metadata.namespace.as_deref().unwrap_or("default");
        if name.len() > 63 {
            return Err(OfferError::new(
                "metadata.name",
                "an offer's name must be at most 63 characters (it labels its bindings)",
            ));
        }
        let mut roles = Vec::new();
        let mut seen_roles = BTreeSet::new();
        for (i, target) in offer.spec.targets.iter().enumerate() {
            let field = format!("spec.targets[{i}]");
            let role = role_name(offer, i);
            if !seen_roles.insert(role.clone()) {
                return Err(OfferError::new(
                    format!("{field}.name"),
                    format!("role {role:?} is used twice"),
                ));
            }
            let selector = match &target.label_selector {
                Some(s) => Selector::compile(s).map_err(|e| {
                    OfferError::new(
                        format!("{field}.labelSelector.{}", e.field),
                        e.problem.to_string(),
                    )
                })?,
                None => Selector::default(),
            };
            if let Some(api_version) = &target.api_version
                && api_version != target.kind.default_api_version()
            {
                return Err(OfferError::new(
                    format!("{field}.apiVersion"),
                    format!(
                        "{api_version:?} does not serve {} (expected {})",
                        target.kind,
                        target.kind.default_api_version()
                    ),
                ));
            }
            if target.mode.is_some() && target.kind != TargetKind::ServiceChain {
                return Err(OfferError::new(
                    format!("{field}.mode"),
                    "only ServiceChain targets have a mode",
                ));
            }
            match target.kind {
                TargetKind::Pod | TargetKind::NetworkFunction | TargetKind::ServiceChain
                    if target.sites.is_some() =>
                {
                    return Err(OfferError::new(
                        format!("{field}.sites"),
                        "only Site targets list sites",
                    ));
                }
                TargetKind::Pod
                | TargetKind::Site
                | TargetKind::NetworkFunction
                | TargetKind::ServiceChain => {}
                TargetKind::Cluster => {
                    return Err(OfferError::new(
                        format!("{field}.kind"),
                        format!(
                            "Cluster targets are not supported yet (supported: {SUPPORTED_KINDS})"
                        ),
                    ));
                }
            }
            roles.push(CompiledRole {
                name: role,
                kind: target.kind,
                mode: target.mode,
                selector,
                sites: target.sites.clone(),
                by_selector: target.label_selector.is_some() || target.sites.is_none(),
            });
        }
        Ok(CompiledOffer {
            name: name.to_string(),
            namespace: namespace.to_string(),
            roles,
        })
    }

    /// The pods of the offer's namespace in `inventory` that fill `role`.
    fn pods<'i>(
        &'i self,
        role: &'i CompiledRole,
        inventory: &'i Inventory,
        index: &PodIndex,
    ) -> impl Iterator<Item = &'i Candidate> {
        let namespace = self.namespace.as_str();
        let selector = &role.selector;
        index
            .candidates(namespace, &role.selector)
            .into_iter()
            .filter_map(|i| inventory.pods.get(i))
            .filter(move |c| {
                c.reference.namespace.as_deref() == Some(namespace) && selector.matches(&c.labels)
            })
    }

    /// The pods of the offer's namespace that a NetworkFunction or ServiceChain role
    /// stands for.
    fn function_pods<'i>(
        &self,
        role: &CompiledRole,
        inventory: &'i Inventory,
    ) -> Vec<&'i Candidate> {
        let functions =
            inventory
                .functions
                .selected(role.kind, role.mode, &role.selector, &self.namespace);
        let namespace = self.namespace.as_str();
        inventory
            .pods
            .iter()
            .filter(|c| c.reference.namespace.as_deref() == Some(namespace))
            .filter(|c| targets::runs_one_of(&c.labels, &functions))
            .collect()
    }

    /// Whether some pod of `inventory` can fill one of the offer's Pod roles (or
    /// NetworkFunction and ServiceChain roles, which stand for pods). The scheduler asks
    /// it of the waiting pods only: an offer that can select none of them has no binding
    /// that takes part in the plan, and is not expanded.
    pub fn selects_a_pod(&self, inventory: &Inventory, index: &PodIndex) -> bool {
        self.roles.iter().any(|r| match r.kind {
            TargetKind::Pod => self.pods(r, inventory, index).next().is_some(),
            TargetKind::NetworkFunction | TargetKind::ServiceChain => {
                !self.function_pods(r, inventory).is_empty()
            }
            TargetKind::Site | TargetKind::Cluster => false,
        })
    }

    /// The bindings the offer should have given the objects that exist.
    pub fn expand(
        &self,
        inventory: &Inventory,
        index: &PodIndex,
    ) -> Result<Vec<DesiredBinding>, OfferError> {
        let mut roles = Vec::new();
        for role in &self.roles {
            let matched: Vec<&TargetRef> = match role.kind {
                TargetKind::Pod => self
                    .pods(role, inventory, index)
                    .map(|c| &c.reference)
                    .collect(),
                TargetKind::NetworkFunction | TargetKind::ServiceChain => self
                    .function_pods(role, inventory)
                    .into_iter()
                    .map(|c| &c.reference)
                    .collect(),
                _ => inventory
                    .sites
                    .iter()
                    .filter(|c| {
                        role.sites
                            .as_ref()
                            .is_some_and(|n| n.contains(&c.reference.name))
                            || (role.by_selector && role.selector.matches(&c.labels))
                    })
                    .map(|c| &c.reference)
                    .collect(),
            };
            roles.push((role.name.clone(), matched));
        }
        let mut bindings = Vec::new();
        let mut chosen: Vec<(String, TargetRef)> = Vec::with_capacity(roles.len());
        combine(&roles, &mut chosen, &mut |targets| {
            if bindings.len() >= MAX_BINDINGS_PER_OFFER {
                return Err(OfferError::new(
                    "spec.targets",
                    format!(
                        "the targets match more than {MAX_BINDINGS_PER_OFFER} combinations; narrow the selectors"
                    ),
                ));
            }
            let targets: BTreeMap<String, TargetRef> = targets.iter().cloned().collect();
            bindings.push(DesiredBinding {
                name: binding_name(&self.name, &targets),
                targets,
            });
            Ok(())
        })?;
        bindings.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(bindings)
    }
}

/// One role and the objects it matched.
type Role<'a> = (String, Vec<&'a TargetRef>);
/// A (partial) combination: role name and the object filling it.
type Combination = [(String, TargetRef)];

/// Depth-first cartesian product over roles, skipping combinations that reuse an object.
fn combine(
    roles: &[Role<'_>],
    chosen: &mut Vec<(String, TargetRef)>,
    emit: &mut dyn FnMut(&Combination) -> Result<(), OfferError>,
) -> Result<(), OfferError> {
    let Some(((role, matched), rest)) = roles.split_first() else {
        return emit(chosen);
    };
    for reference in matched {
        if chosen.iter().any(|(_, r)| r == *reference) {
            continue;
        }
        chosen.push((role.clone(), (*reference).clone()));
        combine(rest, chosen, emit)?;
        chosen.pop();
    }
    Ok(())
}

/// `<offer>-<10 hex digits of sha256 over the sorted target references>`, at most 63
/// characters and a valid DNS-1123 label.
pub fn binding_name(offer: &str, targets: &BTreeMap<String, TargetRef>) -> String {
    let mut hasher = Sha256::new();
    for (role, r) in targets {
        for part in [
            role.as_str(),
            r.cluster.as_deref().unwrap_or_default(),
            r.namespace.as_deref().unwrap_or_default(),
            r.api_version.as_str(),
            r.kind.as_str(),
            r.name.as_str(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hasher.update([b'\n']);
    }
    let digest = hasher.finalize();
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    let mut prefix: String = offer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(63 - 1 - hash.len())
        .collect();
    while prefix.ends_with('-') {
        prefix.pop();
    }
    if prefix.is_empty() {
        format!("b-{hash}")
    } else {
        format!("{prefix}-{hash}")
    }
}

/// The binding object for a desired binding, labelled with and owned by its offer.
pub fn binding_object(
    offer: &ConstraintPolicyOffer,
    desired: &DesiredBinding,
) -> ConstraintPolicyBinding {
    let offer_name = offer.metadata.name.clone().unwrap_or_default();
    let owner = offer.metadata.uid.as_ref().map(|uid| OwnerReference {
        api_version: edgeplane_api::names::CONSTRAINT_API_VERSION.into(),
        kind: "ConstraintPolicyOffer".into(),
        name: offer_name.clone(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    });
    ConstraintPolicyBinding {
        metadata: ObjectMeta {
            name: Some(desired.name.clone()),
            namespace: offer.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([(
                OFFER_LABEL.to_string(),
                offer_name.clone(),
            )])),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: ConstraintPolicyBindingSpec {
            offer: offer_name,
            targets: desired.targets.clone(),
        },
        status: None,
    }
}

/// What must change so that an offer's bindings match the desired set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BindingChanges {
    pub create: Vec<ConstraintPolicyBinding>,
    /// Existing bindings whose spec differs from the desired one (edited by hand).
    pub update: Vec<ConstraintPolicyBinding>,
    /// Names of bindings to delete.
    pub delete: Vec<String>,
}

impl BindingChanges {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// Compares the desired bindings of an offer with the existing ones (those labelled with
/// the offer's name in its namespace).
///
/// `existing` may be bindings or shared ones (`&[Arc<ConstraintPolicyBinding>]` from a
/// cache), so callers need not copy them.
pub fn diff<B: std::borrow::Borrow<ConstraintPolicyBinding>>(
    offer: &ConstraintPolicyOffer,
    desired: &[DesiredBinding],
    existing: &[B],
) -> BindingChanges {
    let offer_name = offer.metadata.name.as_deref().unwrap_or_default();
    let existing: BTreeMap<&str, &ConstraintPolicyBinding> = existing
        .iter()
        .map(|b| b.borrow())
        .filter(|b| b.spec.offer == offer_name || owned_by(b, offer_name))
        .filter_map(|b| Some((b.metadata.name.as_deref()?, b)))
        .collect();
    let mut changes = BindingChanges::default();
    for want in desired {
        let object = binding_object(offer, want);
        match existing.get(want.name.as_str()) {
            None => changes.create.push(object),
            Some(have) if have.spec != object.spec => changes.update.push(object),
            Some(_) => {}
        }
    }
    let wanted: BTreeSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    changes.delete = existing
        .keys()
        .filter(|name| !wanted.contains(*name))
        .map(|n| n.to_string())
        .collect();
    changes
}

fn owned_by(binding: &ConstraintPolicyBinding, offer: &str) -> bool {
    binding
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(OFFER_LABEL))
        .is_some_and(|o| o == offer)
}

/// The label selector of an offer's bindings, for the offer's status.
pub fn offer_binding_selector(offer: &ConstraintPolicyOffer) -> String {
    binding_selector(offer.metadata.name.as_deref().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_api::{ConstraintPolicyOfferSpec, OfferTarget, TargetMode, ViolationPolicy};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

    fn offer(name: &str, targets: Vec<OfferTarget>) -> ConstraintPolicyOffer {
        let mut offer = ConstraintPolicyOffer::new(
            name,
            ConstraintPolicyOfferSpec {
                targets,
                policies: vec!["low-latency".into()],
                period: "30s".into(),
                grace: "1m".into(),
                violation_policy: ViolationPolicy::Ignore,
                mitigation_grace: None,
            },
        );
        offer.metadata.namespace = Some("default".into());
        offer.metadata.uid = Some("offer-uid".into());
        offer
    }

    fn target(role: &str, kind: TargetKind, app: Option<&str>) -> OfferTarget {
        OfferTarget {
            name: Some(role.into()),
            api_version: None,
            kind,
            mode: None,
            label_selector: app.map(|a| LabelSelector {
                match_labels: Some(BTreeMap::from([("app".to_string(), a.to_string())])),
                match_expressions: None,
            }),
            sites: None,
        }
    }

    fn pod(ns: &str, name: &str, app: &str) -> Candidate {
        Candidate {
            reference: TargetRef::pod(ns, name),
            labels: BTreeMap::from([("app".to_string(), app.to_string())]),
        }
    }

    fn inventory() -> Inventory {
        Inventory {
            pods: vec![
                pod("default", "render-0", "render"),
                pod("default", "render-1", "render"),
                pod("default", "state-0", "state"),
                pod("other", "render-9", "render"),
            ],
            sites: vec![
                Candidate::site("stadium", BTreeMap::from([("kind".into(), "users".into())])),
                Candidate::site("campus", BTreeMap::from([("kind".into(), "users".into())])),
                Candidate::site("edge-1", BTreeMap::new()),
            ],
            functions: FunctionInventory::default(),
        }
    }

    fn names(bindings: &[DesiredBinding]) -> Vec<String> {
        bindings
            .iter()
            .map(|b| {
                b.targets
                    .values()
                    .map(|t| t.name.clone())
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect()
    }

    fn expand_ok(offer: &ConstraintPolicyOffer, inventory: &Inventory) -> Vec<DesiredBinding> {
        match expand(offer, inventory) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn one_binding_per_combination_in_the_offer_namespace() {
        let o = offer(
            "ar",
            vec![
                target("renderer", TargetKind::Pod, Some("render")),
                target("state", TargetKind::Pod, Some("state")),
            ],
        );
        let bindings = expand_ok(&o, &inventory());
        let mut got = names(&bindings);
        got.sort();
        assert_eq!(got, vec!["render-0+state-0", "render-1+state-0"]);
        for b in &bindings {
            assert!(
                b.name.starts_with("ar-") && b.name.len() == 13,
                "{}",
                b.name
            );
        }
    }

    #[test]
    fn no_object_fills_two_roles() {
        let o = offer(
            "mesh",
            vec![
                target("a", TargetKind::Pod, Some("render")),
                target("b", TargetKind::Pod, Some("render")),
            ],
        );
        let mut got = names(&expand_ok(&o, &inventory()));
        got.sort();
        // (render-0, render-1) and (render-1, render-0); never (render-0, render-0).
        assert_eq!(got, vec!["render-0+render-1", "render-1+render-0"]);
    }

    #[test]
    fn selector_matching_nothing_gives_no_bindings() {
        let o = offer(
            "none",
            vec![
                target("x", TargetKind::Pod, Some("nothing")),
                target("s", TargetKind::Site, None),
            ],
        );
        assert!(expand_ok(&o, &inventory()).is_empty());
    }

    /// The index only narrows: for every kind of requirement the roles match exactly the
    /// pods a plain scan of the namespace matches.
    #[test]
    fn indexed_matching_selects_what_a_scan_selects() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
        let mut inv = inventory();
        for (ns, name, labels) in [
            ("default", "a", vec![("app", "render"), ("tier", "edge")]),
            ("default", "b", vec![("app", "state"), ("tier", "core")]),
            ("default", "c", vec![("tier", "edge")]),
            ("other", "d", vec![("app", "state"), ("tier", "edge")]),
        ] {
            inv.pods.push(Candidate {
                reference: TargetRef::pod(ns, name),
                labels: labels
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            });
        }
        let expr = |key: &str, operator: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        };
        let selectors = [
            LabelSelector::default(),
            LabelSelector {
                match_labels: Some(BTreeMap::from([("app".into(), "render".into())])),
                match_expressions: Some(vec![expr("tier", "In", &["edge", "core"])]),
            },
            LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![expr("app", "In", &["state", "render", "x"])]),
            },
            LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![expr("app", "NotIn", &["render"])]),
            },
            LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![
                    expr("tier", "Exists", &[]),
                    expr("app", "DoesNotExist", &[]),
                ]),
            },
            LabelSelector {
                match_labels: Some(BTreeMap::from([("app".into(), "nothing".into())])),
                match_expressions: None,
            },
        ];
        let index = PodIndex::new(&inv);
        for selector in selectors {
            let mut t = target("r", TargetKind::Pod, None);
            t.label_selector = Some(selector.clone());
            let o = offer("s", vec![t]);
            let compiled = Selector::compile(&selector).unwrap_or_else(|e| panic!("{e}"));
            let mut scanned: Vec<String> = inv
                .pods
                .iter()
                .filter(|c| c.reference.namespace.as_deref() == Some("default"))
                .filter(|c| compiled.matches(&c.labels))
                .map(|c| c.reference.name.clone())
                .collect();
            scanned.sort();
            let indexed = expand_indexed(&o, &inv, &index).unwrap_or_else(|e| panic!("{e}"));
            let mut got = names(&indexed);
            got.sort();
            assert_eq!(got, scanned, "{selector:?}");
            assert_eq!(indexed, expand_ok(&o, &inv));
        }
    }

    #[test]
    fn a_kept_inventory_expands_as_one_built_from_scratch() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
        let pod = |ns: &str, name: &str, labels: &[(&str, &str)]| Candidate {
            reference: TargetRef::pod(ns, name),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let selectors = [
            LabelSelector::default(),
            LabelSelector {
                match_labels: Some(BTreeMap::from([("app".into(), "render".into())])),
                match_expressions: None,
            },
            LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["edge".into(), "core".into()]),
                }]),
            },
        ];
        let mut kept = KeptInventory::default();
        kept.set_targets(inventory().sites, FunctionInventory::default());
        // The model: pods by (namespace, name), as a fresh inventory would list them.
        let mut model: BTreeMap<(String, String), Candidate> = BTreeMap::new();
        let steps: Vec<(bool, Candidate)> = vec![
            (
                true,
                pod("default", "a", &[("app", "render"), ("tier", "edge")]),
            ),
            (
                true,
                pod("default", "b", &[("app", "state"), ("tier", "core")]),
            ),
            (true, pod("default", "c", &[("tier", "edge")])),
            (true, pod("other", "d", &[("app", "render")])),
            // Relabelled, removed from the middle (the last pod moves), added again.
            (true, pod("default", "a", &[("app", "state")])),
            (false, pod("default", "b", &[])),
            (
                true,
                pod("default", "e", &[("app", "render"), ("tier", "core")]),
            ),
            (false, pod("default", "a", &[])),
            (false, pod("default", "missing", &[])),
            (true, pod("default", "b", &[("app", "render")])),
            (false, pod("other", "d", &[])),
        ];
        for (step, (set, candidate)) in steps.into_iter().enumerate() {
            let id = candidate_id(&candidate);
            if set {
                kept.set(candidate.clone());
                model.insert(id, candidate);
            } else {
                kept.remove(&id.0, &id.1);
                model.remove(&id);
            }
            let mut fresh = inventory();
            fresh.pods = model.values().cloned().collect();
            assert_eq!(kept.inventory().pods.len(), fresh.pods.len(), "step {step}");
            for selector in &selectors {
                let mut t = target("r", TargetKind::Pod, None);
                t.label_selector = Some(selector.clone());
                let mut users = target("users", TargetKind::Site, None);
                users.sites = Some(vec!["stadium".into()]);
                let o = offer("s", vec![t, users]);
                let got = expand_indexed(&o, kept.inventory(), kept.index())
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(got, expand_ok(&o, &fresh), "step {step}, {selector:?}");
            }
        }
        // What is left: e (render, core) and c (edge), b (render).
        let mut left: Vec<&str> = kept
            .inventory()
            .pods
            .iter()
            .map(|c| c.reference.name.as_str())
            .collect();
        left.sort();
        assert_eq!(left, ["b", "c", "e"]);
    }

    #[test]
    fn site_targets_by_name_and_by_label() {
        let mut by_name = target("users", TargetKind::Site, None);
        by_name.sites = Some(vec!["stadium".into()]);
        let o = offer(
            "near",
            vec![target("r", TargetKind::Pod, Some("state")), by_name],
        );
        assert_eq!(names(&expand_ok(&o, &inventory())), vec!["state-0+stadium"]);

        let mut by_label = target("users", TargetKind::Site, None);
        by_label.label_selector = Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("kind".to_string(), "users".to_string())])),
            match_expressions: None,
        });
        let o = offer(
            "near",
            vec![target("r", TargetKind::Pod, Some("state")), by_label],
        );
        let mut got = names(&expand_ok(&o, &inventory()));
        got.sort();
        assert_eq!(got, vec!["state-0+campus", "state-0+stadium"]);
    }

    /// A user-plane chain fw -> dpi -> nat with two lanes, a lone NF `probe` labelled
    /// `tier: monitoring`, and the same chain's name in another namespace.
    fn functions_inventory() -> Inventory {
        use crate::nf::targets::FunctionCandidate;
        let nf_pod = |ns: &str, name: &str, nf: &str| Candidate {
            reference: TargetRef::pod(ns, name),
            labels: BTreeMap::from([
                (crate::nf::NF_LABEL.to_string(), nf.to_string()),
                (
                    crate::nf::REPLICA_LABEL.to_string(),
                    name[name.len() - 1..].to_string(),
                ),
            ]),
        };
        let function =
            |ns: &str, name: &str, labels: &[(&str, &str)], hops: &[&str]| FunctionCandidate {
                namespace: ns.into(),
                name: name.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                functions: hops.iter().map(|h| h.to_string()).collect(),
            };
        let mut inv = inventory();
        for nf in ["fw", "dpi", "nat"] {
            for i in 0..2 {
                inv.pods.push(nf_pod("default", &format!("{nf}-{i}"), nf));
            }
        }
        inv.pods.push(nf_pod("default", "probe-0", "probe"));
        inv.pods.push(nf_pod("other", "fw-0", "fw"));
        inv.functions = FunctionInventory {
            functions: vec![
                function("default", "fw", &[], &["fw"]),
                function("default", "dpi", &[], &["dpi"]),
                function("default", "nat", &[], &["nat"]),
                function("default", "probe", &[("tier", "monitoring")], &["probe"]),
                function("other", "fw", &[], &["fw"]),
            ],
            chains: vec![
                function("default", "upf", &[("app", "upf")], &["fw", "dpi", "nat"]),
                function("other", "upf", &[("app", "upf")], &["fw"]),
            ],
        };
        inv
    }

    #[test]
    fn a_network_function_target_stands_for_each_of_its_replicas() {
        let mut nf = target("nf", TargetKind::NetworkFunction, None);
        nf.label_selector = Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("tier".into(), "monitoring".into())])),
            match_expressions: None,
        });
        let mut site = target("users", TargetKind::Site, None);
        site.sites = Some(vec!["stadium".into()]);
        let o = offer("probe-near", vec![nf, site.clone()]);
        assert_eq!(
            names(&expand_ok(&o, &functions_inventory())),
            vec!["probe-0+stadium"]
        );
        // No selector: every NF of the offer's namespace, each replica its own binding.
        let o = offer(
            "all",
            vec![target("nf", TargetKind::NetworkFunction, None), site],
        );
        let mut got = names(&expand_ok(&o, &functions_inventory()));
        got.sort();
        assert_eq!(
            got,
            vec![
                "dpi-0+stadium",
                "dpi-1+stadium",
                "fw-0+stadium",
                "fw-1+stadium",
                "nat-0+stadium",
                "nat-1+stadium",
                "probe-0+stadium",
            ]
        );
        // The targets are the pods themselves, so judging and planning need nothing new.
        let bindings = expand_ok(&o, &functions_inventory());
        assert!(
            bindings
                .iter()
                .all(|b| b.targets["nf"].kind == TargetKind::Pod
                    && b.targets["nf"].namespace.as_deref() == Some("default"))
        );
        // Without the NF controllers (empty function inventory) it selects nothing.
        assert!(expand_ok(&o, &inventory()).is_empty());
    }

    #[test]
    fn a_chain_target_stands_for_its_first_hop_its_last_or_all() {
        let chain = |mode: Option<TargetMode>| {
            let mut t = target("chain", TargetKind::ServiceChain, Some("upf"));
            t.mode = mode;
            t
        };
        let render = target("render", TargetKind::Pod, Some("state"));
        let run = |mode| {
            let o = offer("c", vec![chain(mode), render.clone()]);
            let mut got = names(&expand_ok(&o, &functions_inventory()));
            got.sort();
            got
        };
        assert_eq!(
            run(Some(TargetMode::Start)),
            vec!["fw-0+state-0", "fw-1+state-0"]
        );
        assert_eq!(
            run(Some(TargetMode::End)),
            vec!["nat-0+state-0", "nat-1+state-0"]
        );
        assert_eq!(run(None).len(), 6);
    }

    #[test]
    fn a_pod_running_a_function_is_relevant_to_offers_with_function_targets() {
        let labels = BTreeMap::from([(crate::nf::NF_LABEL.to_string(), "fw".to_string())]);
        let with = offer(
            "f",
            vec![target("chain", TargetKind::ServiceChain, Some("upf"))],
        );
        let without = offer("p", vec![target("p", TargetKind::Pod, Some("render"))]);
        assert!(PodSelectors::of(&with).selects(&labels));
        assert!(!PodSelectors::of(&without).selects(&labels));
    }

    #[test]
    fn unsupported_kinds_and_bad_targets_are_errors_naming_the_field() {
        let o = offer(
            "mc",
            vec![
                target("a", TargetKind::Pod, None),
                target("b", TargetKind::Cluster, None),
            ],
        );
        assert_eq!(
            expand(&o, &inventory()).err().map(|e| e.to_string()),
            Some("spec.targets[1].kind: Cluster targets are not supported yet (supported: Pod, Site, NetworkFunction, ServiceChain)".into())
        );
        let mut moded = target("a", TargetKind::NetworkFunction, None);
        moded.mode = Some(TargetMode::End);
        assert_eq!(
            expand(&offer("m", vec![moded]), &inventory())
                .err()
                .map(|e| e.to_string()),
            Some("spec.targets[0].mode: only ServiceChain targets have a mode".into())
        );
        let mut listed = target("a", TargetKind::ServiceChain, None);
        listed.sites = Some(vec!["stadium".into()]);
        assert_eq!(
            expand(&offer("s", vec![listed]), &inventory())
                .err()
                .map(|e| e.field),
            Some("spec.targets[0].sites".into())
        );
        let o = offer(
            "dup",
            vec![
                target("a", TargetKind::Pod, None),
                target("a", TargetKind::Pod, None),
            ],
        );
        assert_eq!(
            expand(&o, &inventory()).err().map(|e| e.field),
            Some("spec.targets[1].name".into())
        );
        let mut bad = target("a", TargetKind::Pod, None);
        bad.api_version = Some("apps/v1".into());
        assert_eq!(
            expand(&offer("v", vec![bad]), &inventory())
                .err()
                .map(|e| e.field),
            Some("spec.targets[0].apiVersion".into())
        );
    }

    #[test]
    fn names_are_deterministic_bounded_and_dns_labels() {
        let targets = BTreeMap::from([("r".to_string(), pod("default", "x", "y").reference)]);
        let a = binding_name("ar-latency", &targets);
        assert_eq!(a, binding_name("ar-latency", &targets));
        let long = "a".repeat(80) + ".b";
        let n = binding_name(&long, &targets);
        assert!(n.len() <= 63);
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        let other = BTreeMap::from([("r".to_string(), pod("default", "z", "y").reference)]);
        assert_ne!(a, binding_name("ar-latency", &other));
        // Role names take part: the same object in another role is another binding.
        let renamed = BTreeMap::from([("s".to_string(), pod("default", "x", "y").reference)]);
        assert_ne!(a, binding_name("ar-latency", &renamed));
    }

    #[test]
    fn diff_creates_missing_deletes_gone_and_keeps_the_rest() {
        let o = offer(
            "ar",
            vec![
                target("renderer", TargetKind::Pod, Some("render")),
                target("state", TargetKind::Pod, Some("state")),
            ],
        );
        let mut inv = inventory();
        let desired = expand_ok(&o, &inv);
        let first = diff::<ConstraintPolicyBinding>(&o, &desired, &[]);
        assert_eq!(first.create.len(), 2);
        assert!(first.delete.is_empty() && first.update.is_empty());
        let created = first.create.clone();
        let binding = &created[0];
        assert_eq!(
            binding
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(OFFER_LABEL))
                .map(String::as_str),
            Some("ar")
        );
        let owner = binding
            .metadata
            .owner_references
            .as_ref()
            .and_then(|o| o.first());
        assert_eq!(
            owner.map(|o| (o.kind.as_str(), o.uid.as_str())),
            Some(("ConstraintPolicyOffer", "offer-uid"))
        );

        // Nothing changed: nothing to do (a restart duplicates nothing).
        assert!(diff(&o, &desired, &created).is_empty());

        // A pod disappears: its binding goes, the other stays.
        inv.pods.retain(|p| p.reference.name != "render-1");
        let desired = expand_ok(&o, &inv);
        let changes = diff(&o, &desired, &created);
        assert!(changes.create.is_empty());
        assert_eq!(changes.delete.len(), 1);
        let gone = created.iter().find(|b| {
            b.spec
                .targets
                .get("renderer")
                .is_some_and(|t| t.name == "render-1")
        });
        assert_eq!(
            gone.and_then(|b| b.metadata.name.clone()),
            changes.delete.first().cloned()
        );

        // A binding edited by hand is put back.
        let mut edited = created.clone();
        if let Some(t) = edited[0].spec.targets.get_mut("state") {
            t.name = "other".into();
        }
        let desired = expand_ok(&o, &inventory());
        assert_eq!(diff(&o, &desired, &edited).update.len(), 1);
    }

    #[test]
    fn terminating_and_finished_pods_are_not_candidates() {
        let mut p = Pod::default();
        p.metadata.name = Some("p".into());
        assert!(Candidate::from_pod(&p).is_some());
        p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        assert!(Candidate::from_pod(&p).is_none());
        p.metadata.deletion_timestamp = None;
        p.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Failed".into()),
            ..Default::default()
        });
        assert!(Candidate::from_pod(&p).is_none());
    }
}
