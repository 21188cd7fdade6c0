//! edgeplane's Kubernetes API: custom resource types, well-known names and CRD generation.
//!
//! This crate does no I/O. Everything that talks to an API server lives in
//! `edgeplane-runtime`; everything that decides lives in `edgeplane-core`.

pub mod constraint;
pub mod crdgen;
pub mod names;
pub mod netctl;
pub mod network;
pub mod patterns;

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
