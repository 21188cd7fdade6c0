//! The planner's input from what the caches hold. Pure: objects in, [`Built`] out.
//!
//! - **Nodes** become [`PlanNode`]s (a node whose taints do not parse is left out, with a
//!   warning).
//! - **Pending pods** are the pods that wait for this scheduler ([`is_pending`]): gated by
//!   `constraint.edgeplane.io/planner` in gate mode, unbound pods of the `edgeplane`
//!   scheduler without gates in bind mode. A pod whose spec the planner cannot read is not
//!   planned; it is reported in [`Built::invalid`] with the field at fault.
//! - **Placed pods** are the pods that hold capacity on a node: bound and not finished or
//!   terminating; unbound pods pinned to one node by `matchFields metadata.name In [node]`
//!   (or `kubernetes.io/hostname In [..]`) that no longer wait for the planner (gate mode:
//!   ungated, waiting for kube-scheduler to bind them, also after a restart of the
//!   scheduler); and pods this scheduler has just written (`in_flight`) while the cache
//!   still shows them waiting.
//! - **Bindings** are computed by expanding every offer against the pods in the cache (the
//!   pending ones included) and the sites, with the offer controller's own function
//!   (`offers::expand`), rather than read from the ConstraintPolicyBinding objects: the
//!   planner must see the bindings of the pods it places, and those of a pod created a
//!   moment ago may not have been written yet. Names are deterministic, so they are the
//!   names the offer controller gives the binding objects. Only bindings with a pending
//!   pod take part, so an offer none of whose Pod roles selects a pending pod is not
//!   expanded at all; pods are matched through an index by namespace and label
//!   (`offers::PodIndex`), not against every pod. An offer that does not expand is skipped
//!   with a warning (the offer controller reports it on the offer).
//! - **Rules** come from the policies of the offer's namespace; a rule served by an
//!   external provider gets an empty cost table, which the runtime fills (asking the
//!   provider) before planning; a missing policy makes its rules Broken (reported in
//!   Error, not constraining).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::offers::{Candidate, Inventory, PodIndex};
use crate::placement::RulesContext;
use crate::planner::convert::running_rules;
use crate::planner::{
    PendingPod, PlacedPod, PlanBinding, PlanNode, PlanRule, PodKey, RuleProvider, pod_requests,
};
use edgeplane_api::{ConstraintPolicy, ConstraintPolicyOffer, ConstraintPolicyRule, TargetKind};
use k8s_openapi::api::core::v1::Pod;

use super::Mode;
pub use super::compiled::Observed;
use super::compiled::{CompiledCluster, PodRole};
pub use super::pod_state::{
    HOSTNAME_LABEL, hostnames, is_finished_or_terminating, is_pending, is_running, pinned_node,
};

/// The planner's input, owned (the planner borrows the cluster view separately).
#[derive(Clone, Debug, Default)]
pub struct Built {
    pub nodes: Vec<PlanNode>,
    pub placed: Vec<PlacedPod>,
    pub pending: Vec<PendingPod>,
    pub bindings: Vec<PlanBinding>,
    /// Pods waiting for the planner whose spec it cannot read, with the reason.
    pub invalid: Vec<(PodKey, String)>,
    /// Input problems that did not stop planning.
    pub warnings: Vec<String>,
}

/// `pod` holding capacity on `node`, which its spec does not name yet (a placement
/// written but not seen, or a node its affinity pins it to).
fn placed_on(key: &PodKey, node: String, pod: &Pod) -> PlacedPod {
    PlacedPod {
        key: key.clone(),
        node,
        requests: pod
            .spec
            .as_ref()
            .and_then(|s| pod_requests(s).ok())
            .unwrap_or_default(),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        pod_rules: running_rules(pod, &RulesContext::default()),
    }
}

/// Builds the planner's input. `in_flight` holds pods this scheduler has written a
/// placement for, with the node, that the cache may still show waiting; `external` the
/// rules an external provider serves. Compiles every object: a caller that plans again
/// and again keeps a [`CompiledCluster`] and calls [`build_kept`].
pub fn build(
    mode: Mode,
    observed: Observed<'_>,
    in_flight: &BTreeMap<PodKey, String>,
    external: &BTreeSet<String>,
) -> Built {
    let mut compiled = CompiledCluster::new(mode);
    build_kept(&mut compiled, observed, in_flight, external)
}

/// [`build`] with the objects compiled in earlier runs kept in `compiled` (brought up to
/// date with `observed` first): the same input, compiling only what changed.
pub fn build_kept(
    compiled: &mut CompiledCluster,
    observed: Observed<'_>,
    in_flight: &BTreeMap<PodKey, String>,
    external: &BTreeSet<String>,
) -> Built {
    compiled.update(observed);
    let compiled = &*compiled;
    let mut built = Built::default();
    // The planner breaks ties by input order: nodes and pods go in by name (the kept
    // entries are ordered so), and the same cluster always gets the same plan.
    for entry in compiled.nodes.values() {
        match &entry.value {
            Ok(n) => built.nodes.push(n.clone()),
            Err(e) => built.warnings.push(format!(
                "node {}: {e}; it receives no pod",
                entry.object.metadata.name.as_deref().unwrap_or_default()
            )),
        }
    }
    let mut pending_keys: BTreeSet<PodKey> = BTreeSet::new();
    let mut waiting: Vec<Candidate> = Vec::new();
    for entry in compiled.pods.values() {
        let pod = &*entry.object;
        let key = &entry.value.key;
        if let Some(node) = in_flight.get(key)
            && !is_running(pod)
            && !is_finished_or_terminating(pod)
        {
            // Written, not yet seen: it holds the planned node.
            built.placed.push(placed_on(key, node.clone(), pod));
            continue;
        }
        match &entry.value.role {
            PodRole::Pending(Ok(p)) => {
                pending_keys.insert(key.clone());
                waiting.extend(Candidate::from_pod(pod));
                built.pending.push(p.clone());
            }
            PodRole::Pending(Err(e)) => built.invalid.push((key.clone(), e.clone())),
            PodRole::Placed(p) => built.placed.push(p.clone()),
            PodRole::Other => {
                if !is_finished_or_terminating(pod)
                    && let Some(node) = pinned_node(pod, &compiled.hosts)
                {
                    built.placed.push(placed_on(key, node, pod));
                }
            }
        }
    }
    if pending_keys.is_empty() {
        return built;
    }
    let inventory = compiled.inventory.inventory();
    let index = compiled.inventory.index();
    let waiting = Inventory {
        pods: waiting,
        sites: Vec::new(),
        // NF and chain roles stand for pods: the waiting ones among them count.
        functions: inventory.functions.clone(),
    };
    let waiting_index = PodIndex::new(&waiting);
    let policies: HashMap<(&str, &str), &ConstraintPolicy> = observed
        .policies
        .iter()
        .filter_map(|p| {
            Some((
                (
                    p.metadata.namespace.as_deref().unwrap_or("default"),
                    p.metadata.name.as_deref()?,
                ),
                &**p,
            ))
        })
        .collect();
    for entry in compiled.offers.values() {
        let offer = &*entry.object;
        let namespace = offer.metadata.namespace.as_deref().unwrap_or("default");
        let desired = match &entry.value {
            // Only bindings with a waiting pod take part: an offer that selects none of
            // them is not expanded (with thousands of running pods, that is most offers).
            Ok(compiled) if !compiled.selects_a_pod(&waiting, &waiting_index) => continue,
            Ok(compiled) => compiled.expand(inventory, index),
            Err(e) => Err(e.clone()),
        };
        let offer_key = format!(
            "{namespace}/{}",
            offer.metadata.name.as_deref().unwrap_or_default()
        );
        let desired = match desired {
            Ok(d) => d,
            Err(e) => {
                built.warnings.push(format!(
                    "offer {offer_key}: {e}; its bindings are not planned"
                ));
                continue;
            }
        };
        let involved: Vec<_> = desired
            .into_iter()
            .filter(|b| {
                b.targets.values().any(|t| {
                    t.kind == TargetKind::Pod
                        && pending_keys.contains(&PodKey::new(
                            t.namespace.as_deref().unwrap_or("default"),
                            &t.name,
                        ))
                })
            })
            .collect();
        if involved.is_empty() {
            continue;
        }
        let rules = offer_rules(offer, namespace, &policies, external);
        for binding in involved {
            built.bindings.push(PlanBinding {
                name: binding.name,
                offer: offer_key.clone(),
                targets: binding.targets,
                rules: rules.clone(),
            });
        }
    }
    built
}

/// The rules of an offer's policies: built-in, external (empty cost table), or Broken
/// when the policy does not exist.
fn offer_rules(
    offer: &ConstraintPolicyOffer,
    namespace: &str,
    policies: &HashMap<(&str, &str), &ConstraintPolicy>,
    external: &BTreeSet<String>,
) -> Vec<PlanRule> {
    let mut rules = Vec::new();
    for policy in &offer.spec.policies {
        match policies.get(&(namespace, policy.as_str())) {
            Some(p) => {
                for spec in &p.spec.rules {
                    if external.contains(&spec.name) {
                        rules.push(PlanRule {
                            policy: policy.clone(),
                            spec: spec.clone(),
                            provider: RuleProvider::External(Default::default()),
                        });
                    } else {
                        rules.push(PlanRule::builtin(policy, spec));
                    }
                }
            }
            None => rules.push(PlanRule {
                policy: policy.clone(),
                spec: ConstraintPolicyRule {
                    name: "(policy)".into(),
                    request: String::new(),
                    limit: None,
                },
                provider: RuleProvider::Broken(format!(
                    "policy {namespace}/{policy} does not exist"
                )),
            }),
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use edgeplane_api::NetworkTopology;
    use k8s_openapi::api::core::v1::Node;

    use super::*;
    use crate::manifests::{Object, decode, parse_documents};

    struct World {
        nodes: Vec<Arc<Node>>,
        pods: Vec<Arc<Pod>>,
        policies: Vec<Arc<ConstraintPolicy>>,
        offers: Vec<Arc<ConstraintPolicyOffer>>,
        topology: Option<NetworkTopology>,
    }

    impl World {
        fn observed(&self) -> Observed<'_> {
            Observed {
                nodes: &self.nodes,
                pods: &self.pods,
                policies: &self.policies,
                offers: &self.offers,
                topology: self.topology.as_ref(),
                functions: crate::nf::targets::FunctionInventory::none(),
            }
        }
    }

    fn world(text: &str) -> World {
        let docs = parse_documents("t.yaml", text).unwrap_or_else(|e| panic!("{e}"));
        let mut w = World {
            nodes: vec![],
            pods: vec![],
            policies: vec![],
            offers: vec![],
            topology: None,
        };
        for d in &docs {
            // Offers and pods unchecked, as a cache may hold them: an offer that does not
            // expand, a quantity the planner cannot read.
            if d.value["kind"] == "ConstraintPolicyOffer" {
                w.offers.push(Arc::new(
                    serde_json::from_value(d.value.clone()).unwrap_or_else(|e| panic!("{e}")),
                ));
                continue;
            }
            if d.value["kind"] == "Pod" {
                w.pods.push(Arc::new(
                    serde_json::from_value(d.value.clone()).unwrap_or_else(|e| panic!("{e}")),
                ));
                continue;
            }
            match decode(d).unwrap_or_else(|e| panic!("{e}")) {
                Object::Node(n) => w.nodes.push(Arc::new(*n)),
                Object::Policy(p) => w.policies.push(Arc::new(p)),
                Object::Topology(t) => w.topology = Some(*t),
                _ => {}
            }
        }
        w
    }

    const WORLD: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: edge-1-a, labels: {topology.kubernetes.io/zone: edge-1, kubernetes.io/hostname: host-e1a}}
status: {allocatable: {cpu: "8", memory: 32Gi}}
---
apiVersion: v1
kind: Node
metadata: {name: metro-1-a, labels: {topology.kubernetes.io/zone: metro-1}}
status: {allocatable: {cpu: "32", memory: 128Gi}}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: near-users, namespace: ar}
spec:
  rules: [{name: latency, request: 2ms, limit: 5ms}, {name: gpu-temperature, request: "60", limit: "80"}]
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: ar-latency, namespace: ar}
spec:
  targets:
  - {name: renderer, kind: Pod, labelSelector: {matchLabels: {app: render}}}
  - {name: users, kind: Site, sites: [stadium]}
  policies: [near-users, missing]
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: broken, namespace: ar}
spec:
  targets: [{name: x, kind: Cluster}]
  policies: [near-users]
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites: [{name: stadium}]
  links: [{from: stadium, to: edge-1, latency: 1ms}, {from: edge-1, to: metro-1, latency: 3ms}]
---
apiVersion: v1
kind: Pod
metadata: {name: render-0, namespace: ar, labels: {app: render}}
spec:
  schedulingGates: [{name: constraint.edgeplane.io/planner}]
  containers: [{name: c, image: i, resources: {requests: {cpu: "2"}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: render-1, namespace: ar, labels: {app: render}}
spec:
  schedulingGates: [{name: constraint.edgeplane.io/planner}]
  containers: [{name: c, image: i, resources: {requests: {cpu: "two"}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: render-2, namespace: ar, labels: {app: render}}
spec:
  nodeName: metro-1-a
  containers: [{name: c, image: i, resources: {requests: {cpu: "1"}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: render-3, namespace: ar, labels: {app: render}}
spec:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms: [{matchFields: [{key: metadata.name, operator: In, values: [edge-1-a]}]}]
  containers: [{name: c, image: i, resources: {requests: {cpu: "3"}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  schedulerName: edgeplane
  containers: [{name: c, image: i}]
"#;

    /// The kept input and a build from scratch, compared whole (`Debug`: the rules'
    /// compiled providers have no `PartialEq`).
    fn same_input(kept: &mut CompiledCluster, w: &World, in_flight: &BTreeMap<PodKey, String>) {
        let external = BTreeSet::from(["gpu-temperature".to_string()]);
        let incremental = build_kept(kept, w.observed(), in_flight, &external);
        let scratch = build(kept.mode(), w.observed(), in_flight, &external);
        assert_eq!(format!("{incremental:?}"), format!("{scratch:?}"));
    }

    fn object<T: serde::de::DeserializeOwned>(yaml: &str) -> Arc<T> {
        let docs = parse_documents("t.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
        Arc::new(serde_json::from_value(docs[0].value.clone()).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn a_kept_compiled_cluster_gives_the_input_a_build_from_scratch_gives() {
        let mut w = world(WORLD);
        let mut kept = CompiledCluster::new(Mode::Gate);
        let none = BTreeMap::new();
        same_input(&mut kept, &w, &none);
        same_input(&mut kept, &w, &none);

        // render-0 is bound; a new renderer waits; the web pod goes; a node grows; the
        // broken offer is fixed; the topology gains a site.
        w.pods[0] = object(
            "{apiVersion: v1, kind: Pod, metadata: {name: render-0, namespace: ar, labels: {app: render}},
              spec: {nodeName: edge-1-a, containers: [{name: c, image: i, resources: {requests: {cpu: '2'}}}]}}",
        );
        w.pods.push(object(
            "{apiVersion: v1, kind: Pod, metadata: {name: render-4, namespace: ar, labels: {app: render}},
              spec: {schedulingGates: [{name: constraint.edgeplane.io/planner}], containers: [{name: c, image: i}]}}",
        ));
        w.pods.retain(|p| p.metadata.name.as_deref() != Some("web"));
        w.nodes[1] = object(
            "{apiVersion: v1, kind: Node, metadata: {name: metro-1-a, labels: {topology.kubernetes.io/zone: metro-1}},
              status: {allocatable: {cpu: '64', memory: 256Gi}}}",
        );
        w.offers[1] = object(
            "{apiVersion: constraint.edgeplane.io/v1alpha1, kind: ConstraintPolicyOffer,
              metadata: {name: broken, namespace: ar},
              spec: {targets: [{name: x, kind: Pod, labelSelector: {matchLabels: {app: render}}},
                               {name: place, kind: Site, sites: [campus]}], policies: [near-users]}}",
        );
        if let Some(t) = w.topology.as_mut() {
            let mut campus = t.spec.sites[0].clone();
            campus.name = "campus".into();
            t.spec.sites.push(campus);
        }
        same_input(&mut kept, &w, &none);
        let built = build_kept(&mut kept, w.observed(), &none, &BTreeSet::new());
        let pending: Vec<String> = built.pending.iter().map(|p| p.key.to_string()).collect();
        assert_eq!(pending, ["ar/render-4"]);
        let mut offers: Vec<&str> = built.bindings.iter().map(|b| b.offer.as_str()).collect();
        offers.sort();
        assert_eq!(offers, ["ar/ar-latency", "ar/broken"]);

        // A placement written but not seen yet; then the renderer is deleted.
        let in_flight = BTreeMap::from([(PodKey::new("ar", "render-4"), "edge-1-a".to_string())]);
        same_input(&mut kept, &w, &in_flight);
        w.pods
            .retain(|p| p.metadata.name.as_deref() != Some("render-4"));
        same_input(&mut kept, &w, &none);
        // Everything listed anew (a relist): the same input again.
        w.pods = w.pods.iter().map(|p| Arc::new((**p).clone())).collect();
        w.nodes = w.nodes.iter().map(|n| Arc::new((**n).clone())).collect();
        same_input(&mut kept, &w, &none);
    }

    #[test]
    fn gate_mode_plans_gated_pods_with_the_bindings_of_their_offers() {
        let w = world(WORLD);
        let external = BTreeSet::from(["gpu-temperature".to_string()]);
        let built = build(Mode::Gate, w.observed(), &BTreeMap::new(), &external);
        let pending: Vec<String> = built.pending.iter().map(|p| p.key.to_string()).collect();
        assert_eq!(pending, ["ar/render-0"]);
        assert_eq!(built.invalid.len(), 1);
        assert_eq!(built.invalid[0].0, PodKey::new("ar", "render-1"));
        assert!(
            built.invalid[0]
                .1
                .starts_with("spec.containers[0].resources.requests[\"cpu\"]"),
            "{:?}",
            built.invalid
        );
        // Bound pods and the pod pinned by affinity (ungated, not bound yet) hold capacity.
        let placed: Vec<(String, &str)> = built
            .placed
            .iter()
            .map(|p| (p.key.to_string(), p.node.as_str()))
            .collect();
        assert_eq!(
            placed,
            [
                ("ar/render-2".into(), "metro-1-a"),
                ("ar/render-3".into(), "edge-1-a")
            ]
        );
        // One binding per renderer, but only the pending one's takes part; the broken
        // offer is skipped with a warning.
        assert_eq!(built.bindings.len(), 1);
        let b = &built.bindings[0];
        assert_eq!(b.offer, "ar/ar-latency");
        assert_eq!(b.targets["renderer"].name, "render-0");
        assert_eq!(b.targets["users"].name, "stadium");
        assert_eq!(
            b.name,
            crate::offers::binding_name("ar-latency", &b.targets)
        );
        let kinds: Vec<(&str, &str)> = b
            .rules
            .iter()
            .map(|r| {
                (
                    r.spec.name.as_str(),
                    match r.provider {
                        RuleProvider::Builtin(_) => "builtin",
                        RuleProvider::External(_) => "external",
                        RuleProvider::Broken(_) => "broken",
                        RuleProvider::Lane(_) => "lane",
                    },
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("latency", "builtin"),
                ("gpu-temperature", "external"),
                ("(policy)", "broken")
            ]
        );
        assert!(
            built
                .warnings
                .iter()
                .any(|w| w.starts_with("offer ar/broken: spec.targets[0].kind")),
            "{:?}",
            built.warnings
        );
    }

    #[test]
    fn in_flight_pods_hold_their_planned_node() {
        let w = world(WORLD);
        let in_flight = BTreeMap::from([(PodKey::new("ar", "render-0"), "edge-1-a".to_string())]);
        let built = build(Mode::Gate, w.observed(), &in_flight, &BTreeSet::new());
        assert!(built.pending.is_empty());
        assert!(built.bindings.is_empty());
        assert!(
            built
                .placed
                .iter()
                .any(|p| p.key == PodKey::new("ar", "render-0") && p.node == "edge-1-a")
        );
    }

    #[test]
    fn bind_mode_plans_pods_of_the_edgeplane_scheduler() {
        let w = world(WORLD);
        let built = build(Mode::Bind, w.observed(), &BTreeMap::new(), &BTreeSet::new());
        let pending: Vec<String> = built.pending.iter().map(|p| p.key.to_string()).collect();
        assert_eq!(pending, ["shop/web"]);
        assert!(built.bindings.is_empty());
    }

    /// The planner sees the rules between pods: a running pod's anti-affinity and host
    /// ports, a gated pod's spread constraints and priority.
    #[test]
    fn pod_rules_reach_the_planner() {
        let w = world(
            r#"
apiVersion: v1
kind: Node
metadata: {name: edge-1-a}
---
apiVersion: v1
kind: Pod
metadata: {name: guard, namespace: ar}
spec:
  nodeName: edge-1-a
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - {labelSelector: {matchLabels: {app: noisy}}, topologyKey: kubernetes.io/hostname}
  containers: [{name: c, image: i, ports: [{containerPort: 80, hostPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: ar, labels: {app: web}}
spec:
  schedulingGates: [{name: constraint.edgeplane.io/planner}]
  priority: 500
  topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
  containers: [{name: c, image: i}]
"#,
        );
        let built = build(Mode::Gate, w.observed(), &BTreeMap::new(), &BTreeSet::new());
        let guard = &built.placed[0].pod_rules;
        assert_eq!(
            guard.anti_affinity[0].topology_key,
            "kubernetes.io/hostname"
        );
        assert_eq!(guard.host_ports[0].port, 8080);
        let web = &built.pending[0].pod_rules;
        assert_eq!(web.priority, 500);
        assert_eq!(web.spread[0].max_skew, 1);
        assert!(web.spread[0].hard);
    }

    #[test]
    fn pinned_by_hostname_label() {
        let w = world(
            r#"
apiVersion: v1
kind: Node
metadata: {name: edge-1-a, labels: {kubernetes.io/hostname: host-e1a}}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ar}
spec:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: tier, operator: In, values: [edge]}
          - {key: kubernetes.io/hostname, operator: In, values: [host-e1a]}
        - matchExpressions:
          - {key: kubernetes.io/hostname, operator: In, values: [host-e1a]}
  containers: [{name: c, image: i}]
---
apiVersion: v1
kind: Pod
metadata: {name: q, namespace: ar}
spec:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: tier, operator: In, values: [edge]}]
  containers: [{name: c, image: i}]
"#,
        );
        let hosts = hostnames(&w.nodes);
        assert_eq!(pinned_node(&w.pods[0], &hosts).as_deref(), Some("edge-1-a"));
        assert_eq!(pinned_node(&w.pods[1], &hosts), None);
    }
}
