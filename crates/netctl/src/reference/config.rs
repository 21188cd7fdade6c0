//! How the reference controller runs, and the caches it may read instead of the API.

use std::collections::BTreeSet;
use std::time::Duration;

use edgeplane_api::names::{DEFAULT_CATALOGUE, NETCTL_FIELD_MANAGER};
use edgeplane_core::network::NodeInfo;
use edgeplane_core::snapshot::DEFAULT_TOPOLOGY;

/// How the reference controller runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceConfig {
    /// The NetworkPathCatalogue it manages.
    pub catalogue: String,
    /// The NetworkTopology it activates paths in.
    pub topology: String,
    /// How long an offer from Discover can be allocated.
    pub offer_ttl: Duration,
    /// Release allocations whose binding has been gone this long; `None` keeps them until
    /// released.
    pub orphan_grace: Option<Duration>,
    /// Interval between reconciliations.
    pub resync: Duration,
    /// Field manager of its writes.
    pub field_manager: String,
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        ReferenceConfig {
            catalogue: DEFAULT_CATALOGUE.to_string(),
            topology: DEFAULT_TOPOLOGY.to_string(),
            offer_ttl: Duration::from_secs(60),
            orphan_grace: Some(Duration::from_secs(600)),
            resync: Duration::from_secs(30),
            field_manager: NETCTL_FIELD_MANAGER.to_string(),
        }
    }
}

/// Nodes and bindings read from a process's watch caches instead of listed from the API
/// server on every operation. The reference controller reads the nodes for each
/// operation's network graph and the bindings at each resync; when it runs in a process
/// that already watches them (the simulator), listing 2,000 nodes per Mitigate and 10,000
/// bindings per resync cost more than everything it decides.
pub trait CachedReads: Send + Sync {
    /// The nodes, or `None` while the cache has not listed them yet (then they are listed
    /// from the API server).
    fn nodes(&self) -> Option<Vec<NodeInfo>>;
    /// `namespace/name` of every binding, or `None` while the cache has not listed them
    /// (then they are listed from the API server: an empty cache must never make every
    /// allocation look orphaned).
    fn binding_names(&self) -> Option<BTreeSet<String>>;
}

/// Where the reference controller reports a refused remote call about a binding that
/// exists (`netctl serve`: a Warning Event `NetworkCallRefused` on the binding, written by
/// the runtime). Called without waiting: reporting must not delay the answer.
pub trait RefusalReporter: Send + Sync {
    /// `binding` is `namespace/name`; `note` says which call, who asked, and why not.
    fn refused(&self, binding: &str, note: String);
}
