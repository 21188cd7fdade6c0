//! The network controller's decisions, as pure functions of the network graph, a
//! NetworkPathCatalogue and its allocations: which catalogue entry restores a binding's
//! compliance (Mitigate), which entries would make a candidate node suitable (Discover),
//! how much capacity is in use, and which paths are active.
//!
//! # Model
//!
//! - A **catalogue entry** is an alternate path or slice between two sites with the
//!   metrics it gives (latency, jitter, bandwidth, loss, like a topology link) and a finite
//!   capacity: a number of bindings, a total bandwidth, or both.
//! - An **allocation** holds capacity of one entry for one binding. An entry with at least
//!   one allocation is **active**: the graph sees it as a link between its sites beside the
//!   others (`NetworkTopology.status.activatedPaths`, see [`crate::network`]), and traffic
//!   between those sites takes it when its latency is lower (or equal).
//! - Only the **network rules** (latency, jitter, bandwidth, packet-loss) can be repaired by
//!   the network; others in a request are ignored and named.
//!
//! # Mitigate
//!
//! Decisions are taken on the network without the catalogue's active paths: a binding
//! relies only on the paths it holds, so an entry already active for another binding is
//! joined (and its capacity counted) rather than used for free. Given the binding's two
//! endpoints (a node or a site each) and its rules, [`decide_mitigation`]:
//!
//! 1. keeps the binding's Mitigate allocation when it has one and the rules hold with it
//!    (at least Limit): Mitigate is idempotent;
//! 2. answers that nothing is needed when the rules already hold with the paths the
//!    binding holds (from Discover), or none;
//! 3. otherwise tries every valid entry with room that the binding does not hold yet,
//!    alone (beside the binding's Discover paths): the route between the endpoints (both
//!    directions) must use the entry, and every rule must end at least at Limit. Among those, the cheapest wins:
//!    lowest entry `cost`, then fewest rules in Limit, then least total normalized rule
//!    cost (0 at the request, 1 at the limit), then the entry's name;
//! 4. refuses with a reason that names every entry tried and why it did not do.

mod capacity;
mod catalogue;
mod discover;
mod ids;
mod judge;
mod mitigate;

#[cfg(test)]
mod tests;

pub use capacity::{NoRoom, Usage, has_room, usage};
pub use catalogue::{
    Capacity, Catalogue, DEFAULT_ENTRY_COST, Entry, check_catalogue, is_entry_name,
};
pub use discover::{DiscoverInput, OfferPlan, discover};
pub use ids::{activated_paths, mitigation_id, offer_id, orphaned, parse_offer_id};
pub use judge::{Judgement, PathRules, RuleInputError, judge};
pub use mitigate::{Mitigation, MitigationInput, decide_mitigation};
