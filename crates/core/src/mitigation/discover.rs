//! Discover: which entries would make a candidate node suitable.

use edgeplane_api::PathAllocation;

use super::capacity::{has_room, usage};
use super::catalogue::Catalogue;
use super::judge::{Judgement, PathRules, judge};
use crate::network::{Location, NetworkGraph};

/// What Discover is asked, with the source and the candidates located on the graph.
#[derive(Clone, Copy, Debug)]
pub struct DiscoverInput<'a> {
    /// The graph without the paths this catalogue activated (see [`MitigationInput`]).
    ///
    /// [`MitigationInput`]: super::MitigationInput
    pub graph: &'a NetworkGraph,
    pub catalogue: &'a Catalogue,
    pub allocations: &'a [PathAllocation],
    pub source: (Location, &'a str),
    /// Candidate nodes: their location and name.
    pub candidates: &'a [(Location, &'a str)],
    pub rules: &'a PathRules,
}

/// An entry that would make the rules hold between the source and a candidate node.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferPlan {
    /// Index into `candidates`.
    pub candidate: usize,
    /// Index into the catalogue's entries.
    pub entry: usize,
    pub judgement: Judgement,
}

/// For every candidate node, the entries with room that would make the rules hold (at
/// least Limit) between the source and that node, with the entry on the route. Ordered
/// best first: Compliant before Limit, then entry cost, fewest rules in Limit, least rule
/// cost, candidate order, entry name. Offers reserve nothing.
pub fn discover(input: &DiscoverInput<'_>) -> Vec<OfferPlan> {
    let DiscoverInput {
        graph,
        catalogue,
        allocations,
        source,
        candidates,
        rules,
    } = *input;
    if rules.is_empty() {
        return Vec::new();
    }
    let used = usage(allocations);
    let reserve = rules.bandwidth_reservation_bps();
    let open: Vec<usize> = catalogue
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            has_room(e, used.get(&e.name).copied().unwrap_or_default(), reserve).is_ok()
        })
        .map(|(i, _)| i)
        .collect();
    let mut plans = Vec::new();
    for (c, candidate) in candidates.iter().enumerate() {
        for &e in &open {
            let judgement = judge(
                graph,
                source,
                *candidate,
                rules,
                &[catalogue.entries[e].link],
            );
            if judgement.uses(0) && judgement.holds() {
                plans.push(OfferPlan {
                    candidate: c,
                    entry: e,
                    judgement,
                });
            }
        }
    }
    plans.sort_by(|x, y| {
        let (ex, ey) = (&catalogue.entries[x.entry], &catalogue.entries[y.entry]);
        (x.judgement.compliance, ex.cost, x.judgement.limit_count)
            .cmp(&(y.judgement.compliance, ey.cost, y.judgement.limit_count))
            .then(x.judgement.cost.total_cmp(&y.judgement.cost))
            .then((x.candidate, &ex.name).cmp(&(y.candidate, &ey.name)))
    });
    plans
}
