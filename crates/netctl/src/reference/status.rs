//! The catalogue's status.

use edgeplane_api::{NetworkPathCatalogue, NetworkPathCatalogueStatus, PathAllocation};
use edgeplane_core::mitigation::Catalogue;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The catalogue's status: allocations, counts, and the `Valid` condition (its transition
/// time moves only when its status does).
pub(super) fn catalogue_status(
    object: &NetworkPathCatalogue,
    catalogue: &Catalogue,
    allocations: Vec<PathAllocation>,
    now: Timestamp,
) -> NetworkPathCatalogueStatus {
    let previous = object
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Valid"));
    let (status, reason, message) = if catalogue.problems.is_empty() {
        (
            "True",
            "EntriesValid",
            format!("{} entries", catalogue.entries.len()),
        )
    } else {
        let problems: Vec<String> = catalogue.problems.iter().map(|p| p.to_string()).collect();
        (
            "False",
            "InvalidEntries",
            format!(
                "{} of {} entries cannot be used: {}",
                object.spec.entries.len() - catalogue.entries.len(),
                object.spec.entries.len(),
                problems.join("; ")
            ),
        )
    };
    let transition = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Time(now),
    };
    NetworkPathCatalogueStatus {
        entry_count: Some(catalogue.entries.len() as i32),
        allocation_count: Some(allocations.len() as i32),
        allocations,
        observed_generation: object.metadata.generation,
        conditions: vec![Condition {
            type_: "Valid".into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: object.metadata.generation,
            last_transition_time: transition,
        }],
    }
}
