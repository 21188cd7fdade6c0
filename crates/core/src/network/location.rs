//! Dense ids of nodes and sites, and the locations a path joins.

/// A node's dense index: its position in the `nodes` given to [`NetworkGraph::build`].
///
/// [`NetworkGraph::build`]: super::NetworkGraph::build
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// A site's dense index: its position among all sites in name order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl SiteId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where one end of a path is: on a node, or at a site (where its users are).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    Node(NodeId),
    Site(SiteId),
}
