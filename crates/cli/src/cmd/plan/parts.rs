//! What the planner reads, built from a snapshot of the cluster: the commands that plan
//! (`plan`) and the one that explains a placement (`explain`) build it alike.

use edgeplane_core::evaluate::ClusterView;
use edgeplane_core::planner::{PlacedPod, PlanBinding, PlanInput, PlanNode, convert};
use edgeplane_core::snapshot::Snapshot;
use edgeplane_core::workloads::{self, Workload};

/// The planner's input, owned.
pub struct PlanParts {
    pub view: ClusterView,
    pub nodes: Vec<PlanNode>,
    pub workloads: Vec<Workload>,
    pub placed: Vec<PlacedPod>,
    pub bindings: Vec<PlanBinding>,
}

impl PlanParts {
    /// Builds the parts; the error is the message to print. `external_rules`: the rules an
    /// external provider judges (the planner asks it for costs).
    pub fn build(
        snapshot: &Snapshot,
        external_rules: &[String],
        now: jiff::Timestamp,
    ) -> Result<PlanParts, String> {
        let view = ClusterView::build(snapshot.topology(), &snapshot.nodes, &snapshot.pods, now)
            .map_err(|e| format!("network topology: {e}"))?;
        let nodes = snapshot
            .nodes
            .iter()
            .filter_map(|n| convert::plan_node(n).ok())
            .collect();
        let workloads = workloads::workloads(snapshot);
        let inventory = workloads::inventory(snapshot, &workloads);
        let mut bindings = workloads::plan_bindings(snapshot, &inventory, external_rules)
            .map_err(|(offer, e)| format!("offer {offer}: {e}"))?;
        bindings.extend(edgeplane_core::gitops::functions::lane_bindings(
            snapshot, &workloads,
        ));
        Ok(PlanParts {
            view,
            nodes,
            placed: workloads::running(snapshot),
            workloads,
            bindings,
        })
    }

    /// The planner's input: every pod of the workloads to place.
    pub fn input(&self) -> PlanInput<'_> {
        PlanInput {
            view: &self.view,
            nodes: self.nodes.clone(),
            placed: self.placed.clone(),
            pending: self.workloads.iter().flat_map(|w| w.pods.clone()).collect(),
            bindings: self.bindings.clone(),
        }
    }
}
