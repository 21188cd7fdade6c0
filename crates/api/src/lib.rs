//! edgeplane's Kubernetes API: custom resource types, well-known names and CRD generation.
//!
//! This crate does no I/O. Everything that talks to an API server lives in
//! `edgeplane-runtime`; everything that decides lives in `edgeplane-core`.

pub mod chain;
pub mod constraint;
pub mod crdgen;
pub mod multicluster;
pub mod names;
pub mod netctl;
pub mod network;
pub mod nf;
pub mod patterns;

pub use chain::{
    ChainConstraints, ChainEnd, ChainNetwork, ChainPlacement, Colocate, EndToEnd, Hop, LaneHop,
    LaneStatus, LinkStatus, LinkType, ServiceChain, ServiceChainSpec, ServiceChainStatus,
};
pub use constraint::{
    Compliance, ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyBindingSpec,
    ConstraintPolicyBindingStatus, ConstraintPolicyOffer, ConstraintPolicyOfferSpec,
    ConstraintPolicyOfferStatus, ConstraintPolicyRule, ConstraintPolicySpec,
    ConstraintPolicyStatus, OfferTarget, PolicyDetail, RuleDetail, TargetKind, TargetMode,
    TargetRef, ViolationPolicy,
};
pub use netctl::{
    AllocationPurpose, CatalogueEntry, NetworkPathCatalogue, NetworkPathCatalogueSpec,
    NetworkPathCatalogueStatus, PathAllocation, PathCapacity,
};
pub use network::{
    ActivatedPath, Link, LinkBandwidth, MeasuredLink, NetworkTopology, NetworkTopologySpec,
    NetworkTopologyStatus, PathSpec, TopologySite,
};
pub use nf::{
    InterfaceBinding, InterfaceStatus, NetworkFunction, NetworkFunctionSpec, NetworkFunctionStatus,
    NfInterface, NfRuntime, ReplicaStatus,
};
