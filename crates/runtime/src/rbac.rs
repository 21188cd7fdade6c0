//! The Kubernetes API calls each component makes, so that the Helm chart's RBAC can be
//! checked against them (crates/runtime/tests/rbac.rs renders the chart and asserts that
//! every call is granted to the component's ServiceAccount, and that no rule grants `*`).
//!
//! Each list sits next to a description of the code that makes the calls; when a
//! component starts calling something new, add it here and to the chart.

use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::scheduler::Mode;

/// Where a call is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// In every namespace, or on cluster-scoped objects: a ClusterRole.
    Cluster,
    /// In the component's own namespace only (its Lease): a Role there, or a ClusterRole.
    OwnNamespace,
}

/// Calls of some verbs on one resource (`pods`, or a subresource: `pods/binding`,
/// `constraintpolicyoffers/status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiCall {
    /// The API group (`""` for core).
    pub group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    pub scope: Scope,
    /// Which code makes the call.
    pub why: &'static str,
    /// The call touches only objects the chart names, so a rule limited to them by
    /// `resourceNames` grants it.
    pub named: bool,
}

const fn call(
    group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
    why: &'static str,
) -> ApiCall {
    ApiCall {
        group,
        resource,
        verbs,
        scope: Scope::Cluster,
        why,
        named: false,
    }
}

const WATCH: &[&str] = &["list", "watch"];

/// [`crate::cache::Caches::start`]: one reflector (list + watch, cluster-wide) per kind.
pub const CACHES: &[ApiCall] = &[
    call("", "nodes", WATCH, "caches: nodes"),
    call("", "pods", WATCH, "caches: pods"),
    call("", "services", WATCH, "caches: provider Services"),
    call(
        "network.edgeplane.io",
        "networktopologies",
        WATCH,
        "caches: topology",
    ),
    call(
        "constraint.edgeplane.io",
        "constraintpolicies",
        WATCH,
        "caches: policies",
    ),
    call(
        "constraint.edgeplane.io",
        "constraintpolicyoffers",
        WATCH,
        "caches: offers",
    ),
    call(
        "constraint.edgeplane.io",
        "constraintpolicybindings",
        WATCH,
        "caches: bindings",
    ),
];

/// [`crate::leader`]: reads, creates and replaces the component's Lease.
pub const LEADER_ELECTION: &[ApiCall] = &[ApiCall {
    group: "coordination.k8s.io",
    resource: "leases",
    verbs: &["get", "create", "update"],
    scope: Scope::OwnNamespace,
    why: "leader election",
    named: false,
}];

/// [`crate::events::EventRecorder`]: creates `events.k8s.io/v1` Events in the namespace
/// of the object they regard.
pub const EVENTS: &[ApiCall] = &[call("events.k8s.io", "events", &["create"], "events")];

/// [`crate::scheduler`] in gate mode: one JSON patch per planned pod (affinity + gate),
/// a merge patch for the unplaced reason.
pub const SCHEDULER_GATE: &[ApiCall] = &[call(
    "",
    "pods",
    &["patch"],
    "scheduler: placement patch, unplaced reason",
)];

/// [`crate::scheduler`] in bind mode: `pods/binding`, and a merge patch for the unplaced
/// reason.
pub const SCHEDULER_BIND: &[ApiCall] = &[
    call("", "pods/binding", &["create"], "scheduler: binding"),
    call("", "pods", &["patch"], "scheduler: unplaced reason"),
];

/// The controllers of `edgeplane controller` (offer, binding, policy and topology
/// status): server-side apply of bindings (a PATCH that may create), their deletion, and
/// server-side apply of the status of offers, bindings, policies and topologies
/// ([`crate::context::Context::apply`], [`crate::context::Context::apply_status`],
/// [`crate::context::Context::delete`]). The webhook reads offers from the caches.
pub const CONTROLLERS: &[ApiCall] = &[
    call(
        "constraint.edgeplane.io",
        "constraintpolicybindings",
        &["create", "patch", "delete"],
        "offer controller: bindings",
    ),
    call(
        "constraint.edgeplane.io",
        "constraintpolicybindings/status",
        &["patch"],
        "binding controller: compliance",
    ),
    call(
        "constraint.edgeplane.io",
        "constraintpolicyoffers/status",
        &["patch"],
        "offer controller: counts",
    ),
    call(
        "constraint.edgeplane.io",
        "constraintpolicies/status",
        &["patch"],
        "policy status",
    ),
    call(
        "network.edgeplane.io",
        "networktopologies/status",
        &["patch"],
        "topology status",
    ),
];

/// [`crate::controllers::run_functions`] (the NF and chain controllers, in `edgeplane
/// controller`): watches NFs, chains and the KubeVirt and Multus kinds
/// ([`crate::cache::FunctionCaches`]); creates the pods of Container NFs and deletes those
/// of removed replicas; server-side applies VirtualMachines, NetworkAttachmentDefinitions
/// and lane bindings (and deletes them when no longer wanted); applies the status of NFs,
/// chains and lane bindings.
pub const FUNCTIONS: &[ApiCall] = &[
    call(
        "network.edgeplane.io",
        "networkfunctions",
        WATCH,
        "NF caches: network functions",
    ),
    call(
        "network.edgeplane.io",
        "servicechains",
        WATCH,
        "NF caches: service chains",
    ),
    call("kubevirt.io", "virtualmachines", WATCH, "NF caches: VMs"),
    call(
        "kubevirt.io",
        "virtualmachineinstances",
        WATCH,
        "NF caches: VMIs",
    ),
    call(
        "k8s.cni.cncf.io",
        "network-attachment-definitions",
        WATCH,
        "NF caches: networks",
    ),
    call(
        "",
        "pods",
        &["patch", "delete"],
        "NF controller: replicas of Container NFs",
    ),
    call(
        "kubevirt.io",
        "virtualmachines",
        &["patch", "delete"],
        "NF controller: replicas of VM NFs",
    ),
    call(
        "k8s.cni.cncf.io",
        "network-attachment-definitions",
        &["patch", "delete"],
        "chain controller: links",
    ),
    call(
        "constraint.edgeplane.io",
        "constraintpolicybindings",
        &["patch", "delete"],
        "chain controller: lane bindings",
    ),
    call(
        "constraint.edgeplane.io",
        "constraintpolicybindings/status",
        &["patch"],
        "chain controller: lane compliance",
    ),
    call(
        "network.edgeplane.io",
        "networkfunctions/status",
        &["patch"],
        "NF controller: status",
    ),
    call(
        "network.edgeplane.io",
        "servicechains/status",
        &["patch"],
        "chain controller: status",
    ),
];

/// [`crate::watchdog`] (in `edgeplane controller`): watches the scheduler's Lease (also read
/// by the webhook there) and patches the pods whose planner gate it removes.
pub const GATE_WATCHDOG: &[ApiCall] = &[
    ApiCall {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["list", "watch"],
        scope: Scope::OwnNamespace,
        why: "gate watchdog and webhook: the scheduler's Lease",
        named: false,
    },
    call(
        "",
        "pods",
        &["patch"],
        "gate watchdog: planner gate removed",
    ),
];

/// [`crate::descheduler`]: evictions through `pods/eviction` (never a delete, so
/// PodDisruptionBudgets hold), and server-side apply of a binding's
/// `status.lastMitigatedTimestamp` as `edgeplane-descheduler`. Mitigate goes to the
/// network controller over gRPC, not to the API server.
pub const DESCHEDULER: &[ApiCall] = &[
    call("", "pods/eviction", &["create"], "descheduler: eviction"),
    call(
        "constraint.edgeplane.io",
        "constraintpolicybindings/status",
        &["patch"],
        "descheduler: lastMitigatedTimestamp",
    ),
];

/// [`crate::descheduler::Descheduler::with_lanes`] (`edgeplane descheduler
/// --network-functions`): watches service chains and KubeVirt's migrations
/// ([`crate::cache::LaneCaches`]) and creates a `VirtualMachineInstanceMigration` to move a
/// VM hop. Granted whether or not the flag is given, like the controller's [`FUNCTIONS`].
pub const DESCHEDULER_LANES: &[ApiCall] = &[
    call(
        "network.edgeplane.io",
        "servicechains",
        WATCH,
        "descheduler lane caches: service chains",
    ),
    call(
        "kubevirt.io",
        "virtualmachineinstancemigrations",
        &["create", "list", "watch"],
        "descheduler: live migration of VM hops",
    ),
];

/// [`crate::scheduler::Scheduler::with_functions`] (`edgeplane scheduler
/// --service-chains`): watches service chains to plan their lanes as units, and network
/// functions for the offers that target them. Granted whether or not the flag is given.
pub const SCHEDULER_CHAINS: &[ApiCall] = &[
    call(
        "network.edgeplane.io",
        "servicechains",
        WATCH,
        "scheduler: lanes of service chains",
    ),
    call(
        "network.edgeplane.io",
        "networkfunctions",
        WATCH,
        "scheduler: offers that target network functions",
    ),
];

/// The reference network controller (`edgeplane netctl serve`, crates/netctl
/// `reference`): watches nodes and bindings (`NetworkReads`; it lists them itself until
/// the watches have listed), reads the NetworkTopology and the NetworkPathCatalogue it
/// manages, and server-side applies the catalogue's status (allocations) and the
/// topology's `status.activatedPaths` as `edgeplane-netctl`. To authorise a remote call it
/// gets the binding the call names and the pods of its Pod targets, and publishes a Warning
/// Event on the binding when it refuses one. One replica, no Lease.
pub const NETWORK_CONTROLLER: &[ApiCall] = &[
    call("", "nodes", WATCH, "netctl: node locations"),
    call(
        "constraint.edgeplane.io",
        "constraintpolicybindings",
        &["get", "list", "watch"],
        "netctl: orphaned allocations; the binding a call names",
    ),
    call(
        "",
        "pods",
        &["get"],
        "netctl: the nodes of a binding's pods",
    ),
    call(
        "network.edgeplane.io",
        "networktopologies",
        &["get"],
        "netctl: the topology",
    ),
    call(
        "network.edgeplane.io",
        "networkpathcatalogues",
        &["get"],
        "netctl: the catalogue",
    ),
    call(
        "network.edgeplane.io",
        "networkpathcatalogues/status",
        &["patch"],
        "netctl: allocations",
    ),
    call(
        "network.edgeplane.io",
        "networktopologies/status",
        &["patch"],
        "netctl: activated paths",
    ),
];

/// [`crate::hub`] (`edgeplane hub`), every mode: lists the hub's kinds each round, reads
/// the members' kubeconfig Secrets, applies the status of members and applications.
/// (What it does inside a member is granted by the member's kubeconfig, not by the
/// chart.)
pub const HUB: &[ApiCall] = &[
    call(
        "multicluster.edgeplane.io",
        "memberclusters",
        &["list"],
        "hub: members",
    ),
    call(
        "multicluster.edgeplane.io",
        "mecapplications",
        &["list"],
        "hub: applications",
    ),
    call(
        "constraint.edgeplane.io",
        "constraintpolicies",
        &["list"],
        "hub: policies",
    ),
    call(
        "network.edgeplane.io",
        "networktopologies",
        &["list"],
        "hub: topology",
    ),
    // The chart keeps the kubeconfig Secrets in its own namespace.
    ApiCall {
        group: "",
        resource: "secrets",
        verbs: &["get"],
        scope: Scope::OwnNamespace,
        why: "hub: the members' kubeconfig Secrets",
        named: false,
    },
    call(
        "multicluster.edgeplane.io",
        "memberclusters/status",
        &["patch"],
        "hub: member health and capacity",
    ),
    call(
        "multicluster.edgeplane.io",
        "mecapplications/status",
        &["patch"],
        "hub: application placement",
    ),
];

/// `edgeplane hub --mode karmada`: reads PropagationPolicies and ResourceBindings, writes
/// the bindings' `spec.clusters` (server-side apply).
pub const HUB_KARMADA: &[ApiCall] = &[
    call(
        "policy.karmada.io",
        "propagationpolicies",
        &["list"],
        "hub: Karmada policies",
    ),
    call(
        "work.karmada.io",
        "resourcebindings",
        &["list", "patch"],
        "hub: Karmada bindings",
    ),
    call(
        "cluster.karmada.io",
        "clusters",
        &["list"],
        "hub: members' health from Karmada",
    ),
];

/// `edgeplane hub --mode karmada-policy`: applies the applications' resources (the
/// workload kinds the hub places, Services and ConfigMaps) and plain
/// PropagationPolicies into the Karmada control plane, and deletes its policies no
/// longer wanted.
pub const HUB_KARMADA_POLICY: &[ApiCall] = &[
    call(
        "policy.karmada.io",
        "propagationpolicies",
        &["list", "patch", "delete"],
        "hub: plain policies",
    ),
    call(
        "apps",
        "deployments",
        &["patch"],
        "hub: resources for Karmada",
    ),
    call(
        "apps",
        "statefulsets",
        &["patch"],
        "hub: resources for Karmada",
    ),
    call(
        "apps",
        "replicasets",
        &["patch"],
        "hub: resources for Karmada",
    ),
    call("", "services", &["patch"], "hub: resources for Karmada"),
    call("", "configmaps", &["patch"], "hub: resources for Karmada"),
    call(
        "cluster.karmada.io",
        "clusters",
        &["list"],
        "hub: members' health from Karmada",
    ),
];

/// How `edgeplane hub` carries the placement out (its RBAC differs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HubMode {
    Direct,
    Karmada,
    KarmadaPolicy,
}

/// `edgeplane agent run` ([`crate::measurement`]): watches nodes, the agent pods and the
/// topologies (its own caches, not [`CACHES`]), and applies its site's entries of the
/// topology's `status.measured`. No Lease, no Events, nothing created or deleted.
pub const AGENT: &[ApiCall] = &[
    call("", "nodes", WATCH, "agent: the nodes and their sites"),
    call(
        "",
        "pods",
        WATCH,
        "agent: the agent pods (its peers' addresses)",
    ),
    call(
        "network.edgeplane.io",
        "networktopologies",
        WATCH,
        "agent: the site label",
    ),
    call(
        "network.edgeplane.io",
        "networktopologies/status",
        &["patch"],
        "agent: status.measured",
    ),
];

/// A component of the chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// `edgeplane controller`: offer, binding, policy and topology controllers, webhook.
    Controller,
    /// `edgeplane scheduler` in a mode.
    Scheduler(Mode),
    /// `edgeplane descheduler`.
    Descheduler,
    /// `edgeplane netctl serve`, the reference network controller.
    NetworkController,
    /// `edgeplane hub` in a mode.
    Hub(HubMode),
    /// `edgeplane agent run`, the measurement agent (a DaemonSet).
    Agent,
}

impl Component {
    /// The chart's `app.kubernetes.io/component` label of the component.
    pub fn label(self) -> &'static str {
        match self {
            Component::Controller => "controller",
            Component::Scheduler(_) => "scheduler",
            Component::Descheduler => "descheduler",
            Component::NetworkController => "netctl",
            Component::Hub(_) => "hub",
            Component::Agent => "agent",
        }
    }
}

/// [`crate::certificates`] (the controller, when the chart lets it keep certificates):
/// reads and patches the Secrets and the MutatingWebhookConfiguration the chart names.
pub const CERTIFICATES: &[ApiCall] = &[
    ApiCall {
        group: "",
        resource: "secrets",
        verbs: &["get", "patch"],
        scope: Scope::OwnNamespace,
        why: "certificate keeper: the CA and the kept certificates",
        named: true,
    },
    ApiCall {
        group: "admissionregistration.k8s.io",
        resource: "mutatingwebhookconfigurations",
        verbs: &["get", "patch"],
        scope: Scope::Cluster,
        why: "certificate keeper: the gate webhook's caBundle",
        named: true,
    },
];

/// Every call the component makes.
pub fn requirements(component: Component) -> Vec<ApiCall> {
    let mut out: Vec<ApiCall> = Vec::new();
    // Not built on the shared caches or the Lease; events for refused calls only.
    if component == Component::NetworkController {
        out.extend(NETWORK_CONTROLLER);
        out.extend(EVENTS);
        return out;
    }
    if component == Component::Agent {
        out.extend(AGENT);
        return out;
    }
    // Lists each round instead of caches.
    if let Component::Hub(mode) = component {
        out.extend(HUB);
        out.extend(LEADER_ELECTION);
        out.extend(EVENTS);
        match mode {
            HubMode::Direct => {}
            HubMode::Karmada => out.extend(HUB_KARMADA),
            HubMode::KarmadaPolicy => out.extend(HUB_KARMADA_POLICY),
        }
        return out;
    }
    out.extend(CACHES);
    out.extend(LEADER_ELECTION);
    out.extend(EVENTS);
    match component {
        Component::Controller => {
            out.extend(CONTROLLERS);
            out.extend(GATE_WATCHDOG);
            out.extend(FUNCTIONS);
        }
        Component::Scheduler(Mode::Gate) => {
            out.extend(SCHEDULER_GATE);
            out.extend(SCHEDULER_CHAINS);
        }
        Component::Scheduler(Mode::Bind) => {
            out.extend(SCHEDULER_BIND);
            out.extend(SCHEDULER_CHAINS);
        }
        Component::Descheduler => {
            out.extend(DESCHEDULER);
            out.extend(DESCHEDULER_LANES);
        }
        Component::NetworkController | Component::Hub(_) | Component::Agent => {}
    }
    out
}

/// Whether `rule` grants `verb` on `group`/`resource` (no wildcards are honoured: the
/// chart must not use them).
pub fn grants(rule: &PolicyRule, group: &str, resource: &str, verb: &str) -> bool {
    grants_some(rule, group, resource, verb)
        && rule.resource_names.as_ref().is_none_or(|n| n.is_empty())
}

/// The same, also for a rule limited to named objects.
pub fn grants_some(rule: &PolicyRule, group: &str, resource: &str, verb: &str) -> bool {
    let groups = rule.api_groups.as_deref().unwrap_or_default();
    let resources = rule.resources.as_deref().unwrap_or_default();
    groups.iter().any(|g| g == group)
        && resources.iter().any(|r| r == resource)
        && rule.verbs.iter().any(|v| v == verb)
}

/// Rules that grant a wildcard (`*` in groups, resources or verbs), described.
pub fn wildcards(rules: &[PolicyRule]) -> Vec<String> {
    rules
        .iter()
        .filter(|r| {
            r.api_groups.iter().flatten().any(|g| g.contains('*'))
                || r.resources.iter().flatten().any(|g| g.contains('*'))
                || r.verbs.iter().any(|v| v.contains('*'))
        })
        .map(|r| format!("{r:?}"))
        .collect()
}

/// The calls of `required` that neither `cluster_rules` (ClusterRoles bound cluster-wide)
/// nor, for calls in the component's own namespace, `namespace_rules` (Roles there) grant,
/// one line each: `"" pods/binding create (scheduler: binding)`.
pub fn missing(
    required: &[ApiCall],
    cluster_rules: &[PolicyRule],
    namespace_rules: &[PolicyRule],
) -> Vec<String> {
    let mut out = Vec::new();
    for call in required {
        let check = if call.named { grants_some } else { grants };
        for verb in call.verbs {
            let granted = cluster_rules
                .iter()
                .any(|r| check(r, call.group, call.resource, verb))
                || (call.scope == Scope::OwnNamespace
                    && namespace_rules
                        .iter()
                        .any(|r| check(r, call.group, call.resource, verb)));
            if !granted {
                out.push(format!(
                    "{:?} {} {verb} ({})",
                    call.group, call.resource, call.why
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        PolicyRule {
            api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
            resources: Some(resources.iter().map(|s| s.to_string()).collect()),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            ..PolicyRule::default()
        }
    }

    #[test]
    fn finds_what_the_rules_do_not_grant() {
        let required = requirements(Component::Scheduler(Mode::Bind));
        let cluster = vec![
            rule(
                &[""],
                &["pods", "nodes", "services"],
                &["get", "list", "watch", "patch"],
            ),
            rule(
                &["constraint.edgeplane.io"],
                &[
                    "constraintpolicies",
                    "constraintpolicyoffers",
                    "constraintpolicybindings",
                ],
                &["list", "watch"],
            ),
            rule(
                &["network.edgeplane.io"],
                &["networktopologies", "servicechains", "networkfunctions"],
                &["list", "watch"],
            ),
            rule(&["events.k8s.io"], &["events"], &["create"]),
        ];
        let namespace = vec![rule(
            &["coordination.k8s.io"],
            &["leases"],
            &["get", "create", "update"],
        )];
        assert_eq!(
            missing(&required, &cluster, &namespace),
            ["\"\" pods/binding create (scheduler: binding)"]
        );
        // Leases in a Role only count for calls in the component's own namespace.
        assert!(missing(&LEADER_ELECTION[..1], &[], &namespace).is_empty());
        assert_eq!(
            missing(
                EVENTS,
                &[],
                &[rule(&["events.k8s.io"], &["events"], &["create"])]
            )
            .len(),
            1
        );
    }

    #[test]
    fn wildcards_are_reported() {
        let rules = vec![
            rule(&[""], &["pods"], &["get"]),
            rule(&["*"], &["pods"], &["get"]),
            rule(&[""], &["pods"], &["*"]),
        ];
        assert_eq!(wildcards(&rules).len(), 2);
        assert!(!grants(&rule(&["*"], &["*"], &["*"]), "", "pods", "get"));
    }
}
