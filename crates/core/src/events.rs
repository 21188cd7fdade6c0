//! What edgeplane tells `kubectl describe`: the vocabulary of its Events.
//!
//! Decisions say which Events to publish as [`EventSpec`]s; the runtime stamps them with
//! the component's clock and writes them. Reasons are constants that never change: the
//! simulator builds its timeline from them, and operators alert on them.

/// Event reasons, stable across releases.
pub mod reasons {
    pub const BINDING_CREATED: &str = "BindingCreated";
    pub const BINDING_DELETED: &str = "BindingDeleted";
    pub const BINDING_RESTORED: &str = "BindingRestored";
    pub const OFFER_INVALID: &str = "OfferInvalid";
    pub const COMPLIANCE_CHANGED: &str = "ComplianceChanged";
    pub const PROVIDER_ERROR: &str = "ProviderError";
    pub const POLICY_INVALID: &str = "PolicyInvalid";
    pub const TOPOLOGY_INVALID: &str = "TopologyInvalid";
    /// A NetworkFunction cannot be rendered (the note names the fields); nothing is created.
    pub const NETWORK_FUNCTION_INVALID: &str = "NetworkFunctionInvalid";
    /// A ServiceChain cannot be wired (the note names the fields); nothing is created.
    pub const SERVICE_CHAIN_INVALID: &str = "ServiceChainInvalid";
    pub const PLANNED: &str = "Planned";
    pub const UNPLACEABLE: &str = "Unplaceable";
    pub const FAILED_PLANNING: &str = "FailedPlanning";
    pub const PLAN_RUN: &str = "PlanRun";
    pub const MITIGATED: &str = "Mitigated";
    pub const MITIGATION_FAILED: &str = "MitigationFailed";
    pub const EVICTED: &str = "Evicted";
    pub const EVICTION_BLOCKED: &str = "EvictionBlocked";
    /// The descheduler created a VirtualMachineInstanceMigration to move a VM hop.
    pub const MIGRATION_STARTED: &str = "MigrationStarted";
    /// A migration the descheduler created succeeded (the VMI runs on the target node).
    pub const MIGRATED: &str = "Migrated";
    /// A migration the descheduler created failed; it is retried after a backoff.
    pub const MIGRATION_FAILED: &str = "MigrationFailed";
    pub const VIOLATION_IGNORED: &str = "ViolationIgnored";
    pub const EVICTION_SKIPPED: &str = "EvictionSkipped";
    pub const PATH_ALLOCATED: &str = "PathAllocated";
    pub const PATH_RELEASED: &str = "PathReleased";
    pub const GATE_REMOVED: &str = "GateRemoved";
    /// The network controller refused a remote call for the binding.
    pub const NETWORK_CALL_REFUSED: &str = "NetworkCallRefused";
    /// The controller renewed the gate webhook's certificate or its CA.
    pub const CERTIFICATE_RENEWED: &str = "CertificateRenewed";
    /// The hub placed an application placed before again (member outage, violation).
    pub const APPLICATION_MOVED: &str = "ApplicationMoved";
    /// The hub cannot read an application, a member or a Karmada policy (the note names
    /// the field).
    pub const HUB_INPUT_INVALID: &str = "HubInputInvalid";
    /// A member cluster turned NotReady (unreachable, kubeconfig Secret missing or
    /// malformed, no ready node).
    pub const MEMBER_NOT_READY: &str = "MemberNotReady";
}

/// `Normal` or `Warning`, as Kubernetes Events have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One Event to publish: `note` is a whole sentence that names the object and says what
/// happened and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    pub type_: EventType,
    pub reason: &'static str,
    /// What the component was doing (`Plan`, `Evaluate`, `Deschedule`, ...).
    pub action: &'static str,
    pub note: String,
}

impl EventSpec {
    pub fn normal(reason: &'static str, action: &'static str, note: String) -> EventSpec {
        EventSpec {
            type_: EventType::Normal,
            reason,
            action,
            note,
        }
    }

    pub fn warning(reason: &'static str, action: &'static str, note: String) -> EventSpec {
        EventSpec {
            type_: EventType::Warning,
            reason,
            action,
            note,
        }
    }
}
