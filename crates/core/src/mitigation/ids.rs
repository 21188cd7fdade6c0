//! Offer and allocation ids, the paths allocations keep active, and orphaned allocations.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use edgeplane_api::{ActivatedPath, ConstraintPolicyRule, NetworkPathCatalogue, PathAllocation};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::catalogue::{Catalogue, is_entry_name};

fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for p in parts {
        hasher.update(p.as_bytes());
        hasher.update([0u8]);
    }
    hasher
        .finalize()
        .iter()
        .take(5)
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The id of an offer: `offer.<entry>.<expiry in unix seconds>.<hash>`. The id names the
/// entry and the expiry, so that Allocate needs no memory of the offers made (offers
/// reserve nothing and survive a restart of the controller); the hash of the catalogue,
/// node, source and rules keeps ids of different offers apart.
pub fn offer_id(
    catalogue: &str,
    entry: &str,
    node: &str,
    source: &str,
    rules: &[ConstraintPolicyRule],
    expires: Timestamp,
) -> String {
    let rules: Vec<String> = rules
        .iter()
        .map(|r| {
            format!(
                "{}={}/{}",
                r.name,
                r.request,
                r.limit.as_deref().unwrap_or("")
            )
        })
        .collect();
    let expiry = expires.as_second().to_string();
    let mut parts = vec![catalogue, entry, node, source, expiry.as_str()];
    parts.extend(rules.iter().map(String::as_str));
    format!("offer.{entry}.{expiry}.{}", short_hash(&parts))
}

/// What an offer id says: its entry and expiry. `None` when it is not an offer id.
pub fn parse_offer_id(id: &str) -> Option<(String, Timestamp)> {
    let mut parts = id.split('.');
    let (Some("offer"), Some(entry), Some(expiry), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if !is_entry_name(entry) || hash.is_empty() {
        return None;
    }
    let expires = Timestamp::from_second(expiry.parse().ok()?).ok()?;
    Some((entry.to_string(), expires))
}

/// The id of a binding's Mitigate allocation of an entry: `mitigate.<entry>.<hash of the
/// binding>`. Deterministic, so a retried Mitigate cannot allocate twice.
pub fn mitigation_id(catalogue: &str, entry: &str, binding: &str) -> String {
    format!(
        "mitigate.{entry}.{}",
        short_hash(&[catalogue, entry, binding])
    )
}

/// The paths a catalogue's allocations keep active: one per valid entry with at least one
/// allocation, with the entry's values as written and the bindings that use it, in entry
/// order.
pub fn activated_paths(
    spec: &NetworkPathCatalogue,
    catalogue: &Catalogue,
    allocations: &[PathAllocation],
) -> Vec<ActivatedPath> {
    let mut bindings: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for a in allocations {
        bindings
            .entry(a.entry.as_str())
            .or_default()
            .insert(a.binding.as_str());
    }
    catalogue
        .entries
        .iter()
        .filter_map(|entry| {
            let users = bindings.get(entry.name.as_str())?;
            let written = spec.spec.entries.get(entry.index)?;
            Some(ActivatedPath {
                from: written.from.clone(),
                to: written.to.clone(),
                one_way: written.one_way,
                latency: written.latency.clone(),
                jitter: written.jitter.clone(),
                bandwidth: written.bandwidth.clone(),
                loss: written.loss.clone(),
                catalogue: catalogue.name.clone(),
                entry: entry.name.clone(),
                bindings: users.iter().map(|b| b.to_string()).collect(),
            })
        })
        .collect()
}

/// The allocations whose binding no longer exists, made at least `grace` before `now`
/// (the grace covers a binding being created right after its allocation). Their capacity
/// would otherwise leak when a holder forgets to release.
pub fn orphaned<'a>(
    allocations: &'a [PathAllocation],
    bindings: &BTreeSet<String>,
    now: Timestamp,
    grace: std::time::Duration,
) -> Vec<&'a PathAllocation> {
    allocations
        .iter()
        .filter(|a| !bindings.contains(&a.binding))
        .filter(|a| now.duration_since(a.allocated_at.0).as_secs_f64() >= grace.as_secs_f64())
        .collect()
}
