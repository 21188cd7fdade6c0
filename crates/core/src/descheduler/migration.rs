//! Live migration: a pod that must move and is a VM's virt-launcher pod is not evicted
//! (that would kill the guest) but migrated, with a KubeVirt
//! `VirtualMachineInstanceMigration` whose `spec.addedNodeSelector` pins the target to the
//! node the planner chose.
//!
//! At most one migration is in flight per VMI: while one is (this process's just created,
//! or any the cluster shows not finished), the binding waits. A failed migration is
//! reported once and the VMI is not migrated again before a backoff that doubles with each
//! failure since its last success ([`backoff`]).

use std::time::Duration;

use jiff::Timestamp;

use crate::planner::PodKey;

/// The label every virt-launcher pod carries (`kubevirt.io: virt-launcher`).
pub const KUBEVIRT_LABEL: &str = "kubevirt.io";
/// Its value on a launcher pod.
pub const VIRT_LAUNCHER: &str = "virt-launcher";
/// The label of a launcher pod naming its VM (and so its VMI, which has the VM's name).
pub const VM_NAME_LABEL: &str = "vm.kubevirt.io/name";
/// The label KubeVirt puts on a migration's target launcher pod (the migration's uid).
pub const MIGRATION_JOB_LABEL: &str = "kubevirt.io/migrationJobUID";
/// The label edgeplane puts on the migrations it creates (the binding they restore).
pub const MIGRATION_BINDING_LABEL: &str = "constraint.edgeplane.io/binding";

/// The first wait after a failed migration; doubled for each further failure.
pub const MIGRATION_BACKOFF: Duration = Duration::from_secs(30);
/// The longest wait after failed migrations.
pub const MAX_MIGRATION_BACKOFF: Duration = Duration::from_secs(300);

/// Where a `VirtualMachineInstanceMigration` is (`status.phase`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationPhase {
    /// Not finished (no phase yet, Pending, Scheduling, ..., Running).
    InFlight,
    Succeeded,
    Failed,
}

impl MigrationPhase {
    /// From `status.phase` (absent: just created).
    pub fn from_phase(phase: Option<&str>) -> MigrationPhase {
        match phase {
            Some("Succeeded") => MigrationPhase::Succeeded,
            Some("Failed") => MigrationPhase::Failed,
            _ => MigrationPhase::InFlight,
        }
    }
}

/// What the descheduler reads from a `VirtualMachineInstanceMigration`.
#[derive(Clone, Debug, PartialEq)]
pub struct MigrationFacts {
    /// `namespace/name` of the migration.
    pub key: PodKey,
    /// The VMI it migrates (same namespace).
    pub vmi: String,
    pub phase: MigrationPhase,
    pub created: Option<Timestamp>,
    /// `status.migrationState.endTimestamp`, when it finished.
    pub ended: Option<Timestamp>,
    /// Why it failed, as far as the status says (a condition's message).
    pub reason: Option<String>,
}

impl MigrationFacts {
    fn vmi_key(&self) -> PodKey {
        PodKey::new(&self.key.namespace, &self.vmi)
    }

    /// When it finished, or else when it was created.
    fn instant(&self) -> Option<Timestamp> {
        self.ended.or(self.created)
    }
}

/// How long to wait after `failures` consecutive failed migrations of one VMI.
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    MIGRATION_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_MIGRATION_BACKOFF)
}

/// What the migrations of one VMI allow now.
#[derive(Clone, Debug, PartialEq)]
pub enum MigrationState {
    /// No migration in flight, none failed recently: it may be migrated.
    Free,
    /// A migration is in flight (this one).
    InFlight(String),
    /// The last migration failed; not before `retry_at`.
    BackingOff {
        migration: String,
        reason: Option<String>,
        failures: u32,
        retry_at: Timestamp,
    },
}

/// The state of `vmi`'s migrations at `now`: `migrations` are the cluster's (any order),
/// `ours` the one this process created and may not see in its cache yet.
pub fn migration_state(
    vmi: &PodKey,
    migrations: &[MigrationFacts],
    ours: Option<&str>,
    now: Timestamp,
) -> MigrationState {
    let mut of_vmi: Vec<&MigrationFacts> =
        migrations.iter().filter(|m| m.vmi_key() == *vmi).collect();
    if let Some(m) = of_vmi.iter().find(|m| m.phase == MigrationPhase::InFlight) {
        return MigrationState::InFlight(m.key.name.clone());
    }
    if let Some(name) = ours
        && !of_vmi.iter().any(|m| m.key.name == name)
    {
        return MigrationState::InFlight(name.to_string());
    }
    // Newest first (by when they finished), name as the tie-break.
    of_vmi.sort_by(|a, b| (b.instant(), &b.key.name).cmp(&(a.instant(), &a.key.name)));
    let failures = of_vmi
        .iter()
        .take_while(|m| m.phase == MigrationPhase::Failed)
        .count();
    let Some(last) = of_vmi.first().filter(|_| failures > 0) else {
        return MigrationState::Free;
    };
    let failures = u32::try_from(failures).unwrap_or(u32::MAX);
    let wait = backoff(failures);
    let since = last.instant().unwrap_or(now);
    let retry_at = since
        .checked_add(jiff::SignedDuration::try_from(wait).unwrap_or_default())
        .unwrap_or(since);
    if now >= retry_at {
        return MigrationState::Free;
    }
    MigrationState::BackingOff {
        migration: last.key.name.clone(),
        reason: last.reason.clone(),
        failures,
        retry_at,
    }
}
