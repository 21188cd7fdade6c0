//! `spec.clusters` and `spec.hub`: a scenario of a hub and its member clusters. Each
//! member's objects are admitted as a cluster of its own would admit them; the hub gets a
//! MemberCluster per member (its site checked against the hub's topology) and the
//! scenario's `applications`.

use std::collections::BTreeSet;
use std::path::Path;

use edgeplane_core::manifests::{self, Document, Validation};
use serde_json::{Value, json};

use super::error::{FileErrors, ScenarioError};
use super::model::{HubMode, HubSettings, MemberSpec};
use super::raw::{RawCluster, RawHub};
use super::sources::{inline_document, normalize};
use super::world::World;
use crate::files::manifest_files;

/// Namespace of the Secrets that hold the members' kubeconfigs in the hub.
pub const SECRET_NAMESPACE: &str = "edgeplane-system";

/// Name of the Secret with a member's kubeconfig in the hub.
pub fn secret_name(member: &str) -> String {
    format!("{member}-kubeconfig")
}

pub(super) fn hub_settings(
    file: &FileErrors,
    raw: Option<RawHub>,
) -> Result<HubSettings, ScenarioError> {
    let mut s = HubSettings::default();
    let Some(raw) = raw else { return Ok(s) };
    if let Some(mode) = raw.mode {
        s.mode = match mode.as_str() {
            "direct" => HubMode::Direct,
            "karmada" => HubMode::Karmada,
            "karmada-policy" => HubMode::KarmadaPolicy,
            other => {
                return Err(file.at(
                    Some("spec.hub.mode"),
                    format!(
                        "{other:?} is not a mode the simulator runs (direct, karmada, karmada-policy)"
                    ),
                ));
            }
        };
    }
    let fields: [(&str, Option<Value>, &mut std::time::Duration); 3] = [
        ("interval", raw.interval, &mut s.interval),
        ("grace", raw.grace, &mut s.grace),
        ("probeTimeout", raw.probe_timeout, &mut s.probe_timeout),
    ];
    for (name, value, slot) in fields {
        if let Some(v) = value {
            let d = file.duration(&format!("spec.hub.{name}"), &v)?;
            if name != "grace" && d.is_zero() {
                return Err(file.at(Some(&format!("spec.hub.{name}")), "must be longer than 0"));
            }
            *slot = d;
        }
    }
    Ok(s)
}

/// The members, each with its objects admitted by a world of its own.
pub(super) fn members(
    file: &FileErrors,
    source: &str,
    dir: &Path,
    raw: Vec<RawCluster>,
    validation: Validation,
    warnings: &mut Vec<String>,
) -> Result<Vec<MemberSpec>, ScenarioError> {
    if raw.is_empty() {
        return Err(file.at(Some("spec.clusters"), "is empty (list at least one member)"));
    }
    let mut out: Vec<MemberSpec> = Vec::new();
    let mut karmada_names = BTreeSet::new();
    for (i, c) in raw.into_iter().enumerate() {
        let base = format!("spec.clusters[{i}]");
        let name = file.required(&format!("{base}.name"), c.name)?;
        if !edgeplane_core::validate::is_dns_label(&name) {
            return Err(file.at(
                Some(&format!("{base}.name")),
                format!(
                    "{name:?} is not a valid name (lower-case letters, digits and '-', at most 63)"
                ),
            ));
        }
        if out.iter().any(|m| m.name == name) {
            return Err(file.at(
                Some(&format!("{base}.name")),
                format!("{name:?} is listed twice"),
            ));
        }
        let site = file.required(&format!("{base}.site"), c.site)?;
        let karmada = c.karmada_cluster.clone().unwrap_or_else(|| name.clone());
        if !karmada_names.insert(karmada.clone()) {
            return Err(file.at(
                Some(&format!("{base}.karmadaCluster")),
                format!("{karmada:?} names another member in Karmada as well"),
            ));
        }
        let mut documents: Vec<Document> = Vec::new();
        for (j, include) in c.include.iter().enumerate() {
            let field = format!("{base}.include[{j}]");
            if include.trim().is_empty() {
                return Err(file.at(Some(&field), "is empty"));
            }
            let path = normalize(&dir.join(include));
            for f in manifest_files(&path).map_err(|e| file.at(Some(&field), e.to_string()))? {
                let shown = f.display().to_string();
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| file.at(Some(&field), format!("cannot read {shown}: {e}")))?;
                documents.extend(manifests::parse_documents(&shown, &text)?);
            }
        }
        for (j, value) in c.resources.into_iter().enumerate() {
            documents.push(inline_document(
                source,
                &format!("{base}.resources"),
                j,
                value,
            )?);
        }
        let documents = manifests::unique(documents)?;
        if !documents.iter().any(|d| d.kind() == "Node") {
            return Err(file.at(
                Some(&base),
                format!("member {name:?} has no Node (give its nodes in include or resources)"),
            ));
        }
        for doc in &documents {
            warnings.extend(manifests::check_fields(doc, validation)?);
        }
        let mut world = World::new();
        world.admit_batch(&documents)?;
        world.check_topology()?;
        out.push(MemberSpec {
            name,
            site,
            labels: c.labels,
            karmada_cluster: c.karmada_cluster,
            objects: documents.into_iter().map(|d| d.value).collect(),
        });
    }
    Ok(out)
}

/// The MemberCluster of each member, as documents of the scenario file (so the hub's
/// world admits them like any object: labels and names are checked by the CRD). In
/// direct mode the hub reaches each member by the kubeconfig in its Secret; in karmada
/// mode it knows them from Karmada's Clusters, as a hub on a Karmada control plane
/// without the members' kubeconfigs would.
pub(super) fn member_clusters(
    source: &str,
    members: &[MemberSpec],
    mode: HubMode,
) -> Result<Vec<Document>, ScenarioError> {
    members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut spec = json!({"site": m.site});
            if mode == HubMode::Direct {
                spec["kubeconfigSecretRef"] =
                    json!({"namespace": SECRET_NAMESPACE, "name": secret_name(&m.name)});
            }
            if let Some(k) = &m.karmada_cluster {
                spec["karmadaCluster"] = json!(k);
            }
            let mut metadata = json!({"name": m.name});
            if !m.labels.is_empty() {
                metadata["labels"] = json!(m.labels);
            }
            inline_document(
                source,
                "spec.clusters",
                i,
                json!({
                    "apiVersion": "multicluster.edgeplane.io/v1alpha1",
                    "kind": "MemberCluster",
                    "metadata": metadata,
                    "spec": spec,
                }),
            )
        })
        .collect()
}

/// Each member's site must be a site of the hub's topology.
pub(super) fn check_sites(
    file: &FileErrors,
    members: &[MemberSpec],
    world: &World,
) -> Result<(), ScenarioError> {
    if world.topology.is_none() {
        return Err(file.at(
            Some("spec.clusters"),
            "the hub has no NetworkTopology named \"default\" (give it in spec.include or spec.resources)",
        ));
    }
    let sites = world.sites();
    for (i, m) in members.iter().enumerate() {
        if !sites.contains(&m.site) {
            return Err(file.at(
                Some(&format!("spec.clusters[{i}].site")),
                format!(
                    "{:?} is not a site of the hub's NetworkTopology (sites: {})",
                    m.site,
                    sites.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// `applications`: MecApplications only.
pub(super) fn applications(
    source: &str,
    values: Vec<Value>,
) -> Result<Vec<Document>, ScenarioError> {
    let mut out = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        let doc = inline_document(source, "spec.applications", i, value)?;
        if doc.kind() != "MecApplication" {
            return Err(ScenarioError {
                location: doc.location(),
                object: Some(doc.describe()),
                field: Some("kind".into()),
                message: format!(
                    "{:?} is not a MecApplication (other hub objects go in spec.resources)",
                    doc.kind()
                ),
            });
        }
        out.push(doc);
    }
    Ok(out)
}

/// `failCluster` / `recoverCluster`: a known member, failed or not as the action needs.
pub(super) fn cluster_event(
    file: &FileErrors,
    field: &str,
    name: &str,
    members: &[MemberSpec],
    failed: &mut BTreeSet<String>,
    fail: bool,
) -> Result<(), ScenarioError> {
    if !members.iter().any(|m| m.name == name) {
        return Err(file.at(
            Some(field),
            format!(
                "unknown cluster {name:?} (clusters: {})",
                members
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if fail && !failed.insert(name.to_string()) {
        return Err(file.at(Some(field), format!("cluster {name:?} has already failed")));
    }
    if !fail && !failed.remove(name) {
        return Err(file.at(
            Some(field),
            format!("cluster {name:?} has not failed (fail it first with failCluster)"),
        ));
    }
    Ok(())
}

/// Karmada mode needs Karmada's CRDs in the hub (the scenario includes them), so that
/// its objects are checked by Karmada's own schemas.
pub(super) fn check_karmada(file: &FileErrors, world: &World) -> Result<(), ScenarioError> {
    for (api_version, kind) in [
        ("policy.karmada.io/v1alpha1", "PropagationPolicy"),
        ("work.karmada.io/v1alpha2", "ResourceBinding"),
        ("work.karmada.io/v1alpha1", "Work"),
    ] {
        if world.registry.find_kind(api_version, kind).is_none() {
            return Err(file.at(
                Some("spec.hub.mode"),
                format!(
                    "karmada mode needs Karmada's CRDs in the hub, and {api_version} {kind} is not among the scenario's objects (include Karmada's CRD files, e.g. ../shared/crds/karmada)"
                ),
            ));
        }
    }
    Ok(())
}
