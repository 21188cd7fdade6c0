//! The cluster as the input files describe it: the snapshot, and the view that evaluation
//! and the providers answer from, with topology errors located in their file.

use std::path::PathBuf;

use edgeplane_core::evaluate::ClusterView;
use edgeplane_core::manifests::{Document, Object};
use edgeplane_core::mitigation::Catalogue;
use edgeplane_core::network::NetworkGraph;
use edgeplane_core::snapshot::{DEFAULT_TOPOLOGY, Snapshot};

use crate::input;

/// What the input holds.
pub struct World {
    pub snapshot: Snapshot,
    /// `file.yaml[3] NetworkTopology default` of each topology, in snapshot order.
    topology_locations: Vec<String>,
    /// The same for each NetworkPathCatalogue.
    catalogue_locations: Vec<String>,
}

impl World {
    /// Reads, decodes and validates the files. The error is the message to print.
    pub fn read(paths: &[PathBuf], validate: input::ValidateArg) -> Result<World, String> {
        let documents: Vec<Document> =
            input::read_documents(paths, validate).map_err(|e| e.to_string())?;
        let objects = input::decode_all(&documents).map_err(|e| e.to_string())?;
        let locations = |wanted: fn(&Object) -> bool| {
            documents
                .iter()
                .zip(&objects)
                .filter(|(_, o)| wanted(o))
                .map(|(d, _)| format!("{} {}", d.location(), d.describe()))
                .collect()
        };
        let topology_locations = locations(|o| matches!(o, Object::Topology(_)));
        let catalogue_locations = locations(|o| matches!(o, Object::Catalogue(_)));
        Ok(World {
            snapshot: Snapshot::from_objects(objects),
            topology_locations,
            catalogue_locations,
        })
    }

    /// Warnings about the input as a whole.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.snapshot.topologies.len() > 1 && self.snapshot.topology().is_none() {
            warnings.push(format!(
                "{} NetworkTopologies and none is named {DEFAULT_TOPOLOGY:?}: using none",
                self.snapshot.topologies.len()
            ));
        }
        warnings
    }

    /// The location of the topology in force, for messages.
    fn topology_location(&self) -> String {
        let chosen = self.snapshot.topology();
        self.snapshot
            .topologies
            .iter()
            .position(|t| Some(t) == chosen)
            .and_then(|i| self.topology_locations.get(i).cloned())
            .unwrap_or_else(|| "NetworkTopology".to_string())
    }

    /// The view of the cluster at this moment (the clock decides which measurements are
    /// fresh), and the graph's warnings. The error is the message to print.
    pub fn view(&self) -> Result<(ClusterView, Vec<String>), String> {
        let s = &self.snapshot;
        let view = ClusterView::build(s.topology(), &s.nodes, &s.pods, jiff::Timestamp::now())
            .map_err(|e| {
                if e.field.is_empty() {
                    e.message
                } else {
                    format!("{}: {e}", self.topology_location())
                }
            })?;
        let warnings = view
            .graph()
            .warnings()
            .iter()
            .map(|w| format!("{}: {w}", self.topology_location()))
            .collect();
        Ok((view, warnings))
    }

    /// Checks every NetworkPathCatalogue against the graph (entries must join its sites);
    /// the error is the first problem, located in its file.
    pub fn check_catalogues(&self, graph: &NetworkGraph) -> Result<(), String> {
        for (catalogue, location) in self
            .snapshot
            .catalogues
            .iter()
            .zip(&self.catalogue_locations)
        {
            if let Some(problem) = Catalogue::parse(catalogue, graph).problems.first() {
                return Err(format!("{location}: {problem}"));
            }
        }
        Ok(())
    }
}
