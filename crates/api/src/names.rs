//! Well-known names shared by every component: API groups, labels, annotations, gates.

/// API group of constraint policies, offers and bindings.
pub const CONSTRAINT_GROUP: &str = "constraint.edgeplane.io";
/// API group of the network model (topology, later network functions and chains).
pub const NETWORK_GROUP: &str = "network.edgeplane.io";
/// The one version every edgeplane group serves today.
pub const VERSION: &str = "v1alpha1";

/// `apiVersion` of constraint objects.
pub const CONSTRAINT_API_VERSION: &str = "constraint.edgeplane.io/v1alpha1";
/// `apiVersion` of network objects (and of `Site` targets).
pub const NETWORK_API_VERSION: &str = "network.edgeplane.io/v1alpha1";

/// Label on every binding naming the offer it was expanded from.
pub const OFFER_LABEL: &str = "constraint.edgeplane.io/offer";
/// Scheduling gate held by pods that wait for the planner.
pub const PLANNER_GATE: &str = "constraint.edgeplane.io/planner";
/// Annotation the planner writes on a pod it could not place, with the reason.
pub const UNPLACED_ANNOTATION: &str = "constraint.edgeplane.io/unplaced-reason";
/// Annotation the gate watchdog writes on a pod whose planner gate it removed because no
/// planning scheduler was alive, with the reason.
pub const GATE_REMOVED_ANNOTATION: &str = "edgeplane.io/gate-removed";
/// Prefix of the Service label that registers an external rule provider:
/// `constraint.edgeplane.io/provider-<rule>: enabled`.
pub const PROVIDER_LABEL_PREFIX: &str = "constraint.edgeplane.io/provider-";
/// Label on the network controller's Service.
pub const NETWORK_CONTROLLER_LABEL: &str = "network.edgeplane.io/controller";
/// Field manager of the network controller's writes (catalogue status, the topology's
/// `status.activatedPaths`), so that they never clobber other status writers.
pub const NETCTL_FIELD_MANAGER: &str = "edgeplane-netctl";
/// Field manager of the descheduler's one status field, `lastMitigatedTimestamp` of a
/// binding (the binding controller, as `edgeplane`, owns the rest of the status).
pub const DESCHEDULER_FIELD_MANAGER: &str = "edgeplane-descheduler";
/// Annotation the planning scheduler puts on a pod for which it allocated a network path
/// (Discover, then Allocate): the allocation's id, released when the pod goes away.
pub const ALLOCATION_ANNOTATION: &str = "network.edgeplane.io/allocation";
/// Finalizer that holds a pod with an allocated path until the path is released.
pub const PATH_RELEASE_FINALIZER: &str = "network.edgeplane.io/path-release";
/// The NetworkPathCatalogue the reference network controller uses unless told otherwise.
pub const DEFAULT_CATALOGUE: &str = "default";
/// Value of the registration labels above.
pub const ENABLED: &str = "enabled";
/// Name of the secondary scheduler (bind mode) and of the field manager of edgeplane writes.
pub const SCHEDULER_NAME: &str = "edgeplane";
/// Field manager used for server-side apply by edgeplane's controllers.
pub const FIELD_MANAGER: &str = "edgeplane";

/// The label key of the Service that registers an external provider for `rule`.
pub fn provider_label(rule: &str) -> String {
    format!("{PROVIDER_LABEL_PREFIX}{rule}")
}

/// The namespace the Helm chart installs into and where the components' Leases live
/// (`edgeplane cluster serve` creates it).
pub const SYSTEM_NAMESPACE: &str = "edgeplane-system";

/// The planning scheduler's Lease: its leader election, and how the gate webhook and the
/// gate watchdog tell that a scheduler is alive.
pub const SCHEDULER_LEASE: &str = "edgeplane-scheduler";
