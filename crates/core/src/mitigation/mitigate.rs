//! Mitigate: which entry restores a binding's compliance (see the module documentation).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use edgeplane_api::{AllocationPurpose, PathAllocation};

use super::capacity::{has_room, usage};
use super::catalogue::Catalogue;
use super::judge::{Judgement, PathRules, judge};
use crate::network::{ExtraLink, Location, NetworkGraph};

/// What Mitigate is asked, with the endpoints located on the graph.
#[derive(Clone, Copy, Debug)]
pub struct MitigationInput<'a> {
    /// The graph without the paths this catalogue activated: a binding relies only on the
    /// paths it holds, so every binding that needs a path holds (and counts against) its
    /// capacity, even when another binding activated it first.
    pub graph: &'a NetworkGraph,
    pub catalogue: &'a Catalogue,
    pub allocations: &'a [PathAllocation],
    /// `namespace/name`.
    pub binding: &'a str,
    /// The endpoints and their names for reasons.
    pub source: (Location, &'a str),
    pub destination: (Location, &'a str),
    pub rules: &'a PathRules,
}

/// What to do about a binding.
#[derive(Clone, Debug, PartialEq)]
pub enum Mitigation {
    /// The rules hold (at least Limit) with the paths already active.
    NotNeeded { judgement: Judgement },
    /// The binding's allocation `id` (of entry `entry`) keeps the rules holding.
    Held {
        id: String,
        entry: String,
        judgement: Judgement,
    },
    /// Allocate the entry at `entry` (an index into the catalogue's entries) for the
    /// binding, releasing `replaces` (an allocation of the binding that no longer helps).
    Allocate {
        entry: usize,
        judgement: Judgement,
        replaces: Option<String>,
    },
    /// Nothing restores compliance.
    Refuse { reason: String },
}

/// Decides how to mitigate a binding (see the module documentation).
pub fn decide_mitigation(input: &MitigationInput<'_>) -> Mitigation {
    let MitigationInput {
        graph,
        catalogue,
        allocations,
        binding,
        source,
        destination,
        rules,
    } = *input;
    if rules.is_empty() {
        return Mitigation::Refuse {
            reason: format!(
                "none of the rules is a network rule (latency, jitter, bandwidth, packet-loss){}",
                ignored_note(rules)
            ),
        };
    }
    // The binding relies on the paths it holds: its mitigation allocation (at most one)
    // and those the planner allocated for it.
    let held = allocations
        .iter()
        .find(|a| a.binding == binding && a.purpose == AllocationPurpose::Mitigate);
    let held_entry = held.and_then(|a| catalogue.entry(&a.entry));
    let own: BTreeSet<&str> = allocations
        .iter()
        .filter(|a| a.binding == binding)
        .map(|a| a.entry.as_str())
        .collect();
    let kept: Vec<ExtraLink> = allocations
        .iter()
        .filter(|a| a.binding == binding && held.is_none_or(|h| h.id != a.id))
        .filter_map(|a| catalogue.entry(&a.entry))
        .map(|e| e.link)
        .collect();
    let with_held: Vec<ExtraLink> = kept
        .iter()
        .copied()
        .chain(held_entry.map(|e| e.link))
        .collect();
    let now = judge(graph, source, destination, rules, &with_held);
    if let (Some(a), Some(_)) = (held, held_entry)
        && now.holds()
    {
        return Mitigation::Held {
            id: a.id.clone(),
            entry: a.entry.clone(),
            judgement: now,
        };
    }
    if held.is_none() && now.holds() {
        return Mitigation::NotNeeded { judgement: now };
    }

    let used = usage(allocations);
    let reserve = rules.bandwidth_reservation_bps();
    let mut best: Option<(usize, Judgement)> = None;
    let mut tried = Vec::new();
    let mut all_full = true;
    // The candidate goes last among the extra links.
    let candidate = kept.len();
    for (i, entry) in catalogue.entries.iter().enumerate() {
        if own.contains(entry.name.as_str()) {
            tried.push(format!(
                "{}: held by this binding already",
                entry.describe()
            ));
            all_full = false;
            continue;
        }
        let in_use = used.get(&entry.name).copied().unwrap_or_default();
        if let Err(why) = has_room(entry, in_use, reserve) {
            tried.push(format!("{} is {why}", entry.describe()));
            continue;
        }
        all_full = false;
        let mut extra = kept.clone();
        extra.push(entry.link);
        let judgement = judge(graph, source, destination, rules, &extra);
        if !judgement.uses(candidate) {
            tried.push(format!(
                "{}: not on the path between {} and {}",
                entry.describe(),
                source.1,
                destination.1
            ));
            continue;
        }
        if !judgement.holds() {
            tried.push(format!(
                "{}: would leave {}",
                entry.describe(),
                judgement.reason
            ));
            continue;
        }
        let better = best.as_ref().is_none_or(|(j, b)| {
            let current = &catalogue.entries[*j];
            (
                entry.cost,
                judgement.limit_count,
                judgement.cost,
                &entry.name,
            ) < (current.cost, b.limit_count, b.cost, &current.name)
        });
        if better {
            best = Some((i, judgement));
        }
    }
    if let Some((entry, judgement)) = best {
        return Mitigation::Allocate {
            entry,
            judgement,
            replaces: held.map(|a| a.id.clone()),
        };
    }
    let mut reason = String::new();
    let head = if catalogue.entries.is_empty() {
        format!("catalogue {} has no usable entry", catalogue.name)
    } else if all_full {
        format!("catalogue {} is exhausted", catalogue.name)
    } else {
        format!(
            "no entry of catalogue {} restores compliance",
            catalogue.name
        )
    };
    let _ = write!(reason, "{head} ({})", now.reason);
    if !tried.is_empty() {
        let _ = write!(reason, ": {}", tried.join("; "));
    }
    reason.push_str(&ignored_note(rules));
    Mitigation::Refuse { reason }
}

fn ignored_note(rules: &PathRules) -> String {
    if rules.ignored.is_empty() {
        String::new()
    } else {
        format!(
            " (not network rules, ignored: {})",
            rules.ignored.join(", ")
        )
    }
}
