//! Direct mode: the hub applies each member's share of an application to the member's
//! API server itself (server-side apply, field manager `edgeplane-hub`), and removes what
//! moved away. Every object it applies carries [`APPLICATION_LABEL`] (`namespace.name` of
//! the MecApplication), so what it owns in a member is found by label, and
//! [`APPLIED_ANNOTATION`], a digest of what was applied, so an unchanged object is not
//! applied again.
//!
//! Make-before-break: while an application's workloads are not all running where the plan
//! puts them (`status.readyReplicas` below the share, or not yet the applied version),
//! its objects elsewhere are neither removed nor shrunk ([`starting`],
//! [`member_changes`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use edgeplane_api::ConstraintPolicy;
use edgeplane_api::multicluster::{AppliedKind, MecApplication};
use serde_json::{Value as Json, json};

use super::member_offers::member_offers;
use super::render::render;
use super::{AppPlan, digest};

/// On every object the hub applies to a member: the application it belongs to.
pub const APPLICATION_LABEL: &str = "multicluster.edgeplane.io/application";
/// On every object the hub applies to a member: a digest of what was applied.
pub const APPLIED_ANNOTATION: &str = "multicluster.edgeplane.io/applied";

/// The value of [`APPLICATION_LABEL`] for an application.
pub fn application_key(namespace: &str, name: &str) -> String {
    format!("{namespace}.{name}")
}

/// An object in a member, by what addresses it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn of(object: &Json) -> Option<ObjectKey> {
        let text = |pointer: &str| object.pointer(pointer).and_then(Json::as_str);
        Some(ObjectKey {
            api_version: text("/apiVersion")?.to_string(),
            kind: text("/kind")?.to_string(),
            namespace: text("/metadata/namespace").map(str::to_string),
            name: text("/metadata/name")?.to_string(),
        })
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// What the hub sees of an object it applied in a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub key: ObjectKey,
    /// Its [`APPLICATION_LABEL`].
    pub application: String,
    /// Its [`APPLIED_ANNOTATION`].
    pub applied: Option<String>,
    pub replicas: Option<i64>,
    pub ready_replicas: Option<i64>,
}

impl Observed {
    /// `None` for an object without the hub's label (not the hub's).
    pub fn from_json(object: &Json) -> Option<Observed> {
        let key = ObjectKey::of(object)?;
        let application = object
            .pointer(&format!(
                "/metadata/labels/{}",
                APPLICATION_LABEL.replace('/', "~1")
            ))
            .and_then(Json::as_str)?
            .to_string();
        let applied = object
            .pointer(&format!(
                "/metadata/annotations/{}",
                APPLIED_ANNOTATION.replace('/', "~1")
            ))
            .and_then(Json::as_str)
            .map(str::to_string);
        Some(Observed {
            key,
            application,
            applied,
            replicas: object.pointer("/spec/replicas").and_then(Json::as_i64),
            ready_replicas: object
                .pointer("/status/readyReplicas")
                .and_then(Json::as_i64),
        })
    }
}

/// `manifest` with the hub's label (`key`, from [`application_key`]) and the digest of
/// what it says.
pub fn mark(mut manifest: Json, key: &str) -> Json {
    if let Some(meta) = manifest.get_mut("metadata").and_then(Json::as_object_mut) {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(APPLICATION_LABEL.into(), json!(key));
        }
    }
    let text = serde_json::to_string(&manifest).unwrap_or_default();
    if let Some(meta) = manifest.get_mut("metadata").and_then(Json::as_object_mut) {
        let notes = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(notes) = notes.as_object_mut() {
            notes.insert(APPLIED_ANNOTATION.into(), json!(digest(&text)));
        }
    }
    manifest
}

/// Whether `existing` (as read back) was applied from `desired` (as [`mark`] made it).
pub fn is_applied(existing: &Json, desired: &Json) -> bool {
    let digest = annotation(desired, APPLIED_ANNOTATION);
    digest.is_some() && annotation(existing, APPLIED_ANNOTATION) == digest
}

/// Member -> the application's objects for it (its share of each component, and in the
/// members in `edgeplane_members` the policy copies and offers of
/// [`member_offers`](super::member_offers)), each with the hub's label and digest.
pub fn desired(
    app: &MecApplication,
    plan: &AppPlan,
    policies: &[ConstraintPolicy],
    edgeplane_members: &BTreeSet<String>,
) -> BTreeMap<String, Vec<Json>> {
    let namespace = app.metadata.namespace.as_deref().unwrap_or("default");
    let key = application_key(namespace, app.metadata.name.as_deref().unwrap_or_default());
    let mut out = member_offers(app, plan, policies, edgeplane_members);
    // The offers before the workloads: the member's planner then knows the constraint
    // when the first pods come.
    for (cluster, manifests) in render(app, plan) {
        out.entry(cluster).or_default().extend(manifests);
    }
    out.into_iter()
        .map(|(cluster, manifests)| {
            let marked = manifests.into_iter().map(|m| mark(m, &key)).collect();
            (cluster, marked)
        })
        .collect()
}

fn annotation(object: &Json, name: &str) -> Option<String> {
    object
        .pointer(&format!(
            "/metadata/annotations/{}",
            name.replace('/', "~1")
        ))
        .and_then(Json::as_str)
        .map(str::to_string)
}

/// The applications (by [`APPLICATION_LABEL`]) whose workloads do not all run where the
/// plan puts them yet: on some member, a desired workload is missing, not the applied
/// version, or has fewer ready replicas than its share. A member missing from `observed`
/// (not reached) counts as not running.
pub fn starting(
    desired: &BTreeMap<String, Vec<Json>>,
    observed: &BTreeMap<String, Vec<Observed>>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (member, objects) in desired {
        let there = observed.get(member);
        for object in objects {
            let Some(replicas) = object.pointer("/spec/replicas").and_then(Json::as_i64) else {
                continue;
            };
            let Some(key) = ObjectKey::of(object) else {
                continue;
            };
            let running = there
                .and_then(|list| list.iter().find(|o| o.key == key))
                .is_some_and(|o| {
                    o.applied == annotation(object, APPLIED_ANNOTATION)
                        && o.ready_replicas.unwrap_or(0) >= replicas
                });
            if !running {
                let app = object
                    .pointer(&format!(
                        "/metadata/labels/{}",
                        APPLICATION_LABEL.replace('/', "~1")
                    ))
                    .and_then(Json::as_str)
                    .unwrap_or_default();
                out.insert(app.to_string());
            }
        }
    }
    out
}

/// What to do in one member.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberChanges {
    /// Objects to apply (new, or changed since applied).
    pub apply: Vec<Json>,
    /// The hub's objects no longer wanted here.
    pub delete: Vec<ObjectKey>,
    /// Removals and shrinks held until the application's new placement runs.
    pub waiting: Vec<ObjectKey>,
}

/// The kinds of the hub's objects in a member after this round: those found there (a
/// removal may fail; the next round lists the kind again and finds it gone) and those
/// applied now. Kept in the member's status (`appliedKinds`) so the hub goes on finding
/// its objects of a kind no application has any more, and removes them.
pub fn applied_kinds(observed: &[Observed], changes: &MemberChanges) -> Vec<AppliedKind> {
    let found = observed
        .iter()
        .map(|o| (o.key.api_version.clone(), o.key.kind.clone()));
    let applied = changes.apply.iter().filter_map(|o| {
        Some((
            o.get("apiVersion")?.as_str()?.to_string(),
            o.get("kind")?.as_str()?.to_string(),
        ))
    });
    found
        .chain(applied)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|(api_version, kind)| AppliedKind { api_version, kind })
        .collect()
}

/// The changes that bring a member from `observed` (the hub's objects there) to
/// `desired`, holding removals and shrinks of the applications in `starting`.
pub fn member_changes(
    desired: &[Json],
    observed: &[Observed],
    starting: &BTreeSet<String>,
) -> MemberChanges {
    let mut changes = MemberChanges::default();
    let by_key: BTreeMap<&ObjectKey, &Observed> = observed.iter().map(|o| (&o.key, o)).collect();
    let mut wanted = BTreeSet::new();
    for object in desired {
        let Some(key) = ObjectKey::of(object) else {
            continue;
        };
        let there = by_key.get(&key);
        wanted.insert(key.clone());
        if there.is_some_and(|o| o.applied == annotation(object, APPLIED_ANNOTATION)) {
            continue;
        }
        let shrinks = match (
            there.and_then(|o| o.replicas),
            object.pointer("/spec/replicas").and_then(Json::as_i64),
        ) {
            (Some(now), Some(next)) => next < now,
            _ => false,
        };
        let app = there.map(|o| o.application.as_str()).unwrap_or_default();
        if shrinks && starting.contains(app) {
            changes.waiting.push(key);
        } else {
            changes.apply.push(object.clone());
        }
    }
    for o in observed {
        if wanted.contains(&o.key) {
            continue;
        }
        if starting.contains(&o.application) {
            changes.waiting.push(o.key.clone());
        } else {
            changes.delete.push(o.key.clone());
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Share;

    fn app() -> MecApplication {
        serde_json::from_value(json!({
            "apiVersion": "multicluster.edgeplane.io/v1alpha1", "kind": "MecApplication",
            "metadata": {"name": "ar-game", "namespace": "ar"},
            "spec": {
                "resources": [
                    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "render"}},
                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ar-render"},
                     "spec": {"replicas": 6}}
                ],
                "components": [
                    {"name": "render", "workload": {"kind": "Deployment", "name": "ar-render"}, "replicas": 6}
                ]
            }
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn plan(shares: &[(&str, u32)]) -> AppPlan {
        AppPlan {
            namespace: "ar".into(),
            name: "ar-game".into(),
            placement: shares
                .iter()
                .map(|(c, n)| Share {
                    cluster: c.to_string(),
                    components: BTreeMap::from([("render".to_string(), *n)]),
                })
                .collect(),
            unplaced: BTreeMap::new(),
            rules: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// What a member shows after applying `objects`, with `ready` ready replicas each.
    fn observe(objects: &[Json], ready: i64) -> Vec<Observed> {
        objects
            .iter()
            .map(|o| {
                let mut o = o.clone();
                if o["spec"]["replicas"].is_i64() {
                    o["status"] = json!({"readyReplicas": ready});
                }
                Observed::from_json(&o).unwrap_or_else(|| panic!("{o}"))
            })
            .collect()
    }

    /// `desired` with no member running edgeplane.
    fn desired_here(app: &MecApplication, plan: &AppPlan) -> BTreeMap<String, Vec<Json>> {
        desired(app, plan, &[], &BTreeSet::new())
    }

    fn key(kind: &str, name: &str) -> ObjectKey {
        ObjectKey {
            api_version: if matches!(kind, "Service" | "ConfigMap") {
                "v1"
            } else {
                "apps/v1"
            }
            .into(),
            kind: kind.into(),
            namespace: Some("ar".into()),
            name: name.into(),
        }
    }

    #[test]
    fn desired_objects_carry_the_label_and_a_digest_of_what_is_applied() {
        let out = desired_here(&app(), &plan(&[("east", 4), ("west", 2)]));
        let deployment = &out["east"][1];
        assert_eq!(deployment["spec"]["replicas"], 4);
        assert_eq!(
            deployment["metadata"]["labels"][APPLICATION_LABEL],
            "ar.ar-game"
        );
        let east = annotation(deployment, APPLIED_ANNOTATION);
        let west = annotation(&out["west"][1], APPLIED_ANNOTATION);
        assert!(east.is_some() && west.is_some() && east != west);
        // The same plan gives the same digests.
        let again = desired_here(&app(), &plan(&[("east", 4), ("west", 2)]));
        assert_eq!(again, out);
    }

    #[test]
    fn the_kinds_the_hub_leaves_in_a_member_are_those_found_there_and_those_applied() {
        let out = desired_here(&app(), &plan(&[("east", 6)]));
        let stray = Observed {
            key: key("ConfigMap", "old"),
            application: "ar.gone".into(),
            applied: None,
            replicas: None,
            ready_replicas: None,
        };
        let kind = |api_version: &str, kind: &str| AppliedKind {
            api_version: api_version.into(),
            kind: kind.into(),
        };
        // First round: nothing there yet; the Service and the Deployment are applied.
        let first = member_changes(&out["east"], &[], &BTreeSet::new());
        assert_eq!(
            applied_kinds(&[], &first),
            [kind("apps/v1", "Deployment"), kind("v1", "Service")]
        );
        // A ConfigMap of an application that is gone is found (its kind was kept) and
        // removed; its kind stays until a round finds none.
        let mut there = observe(&out["east"], 6);
        there.push(stray);
        let changes = member_changes(&out["east"], &there, &BTreeSet::new());
        assert_eq!(changes.delete, [key("ConfigMap", "old")]);
        assert_eq!(
            applied_kinds(&there, &changes),
            [
                kind("apps/v1", "Deployment"),
                kind("v1", "ConfigMap"),
                kind("v1", "Service")
            ]
        );
        // The application gone too: nothing wanted, everything found is removed.
        let there = observe(&out["east"], 6);
        let changes = member_changes(&[], &there, &BTreeSet::new());
        assert_eq!(changes.delete.len(), 2);
        assert_eq!(
            applied_kinds(&[], &member_changes(&[], &[], &BTreeSet::new())),
            []
        );
    }

    #[test]
    fn unchanged_objects_are_not_applied_again_and_strays_are_deleted() {
        let out = desired_here(&app(), &plan(&[("east", 6)]));
        let mut there = observe(&out["east"], 6);
        there.push(Observed {
            key: key("ConfigMap", "old"),
            application: "ar.ar-game".into(),
            applied: None,
            replicas: None,
            ready_replicas: None,
        });
        let changes = member_changes(&out["east"], &there, &BTreeSet::new());
        assert_eq!(
            changes,
            MemberChanges {
                apply: vec![],
                delete: vec![key("ConfigMap", "old")],
                waiting: vec![],
            }
        );
    }

    #[test]
    fn a_move_makes_the_new_replicas_run_before_the_old_are_removed() {
        // Placed on east; the plan moves it to west.
        let before = desired_here(&app(), &plan(&[("east", 6)]));
        let after = desired_here(&app(), &plan(&[("west", 6)]));
        let mut observed = BTreeMap::from([
            ("east".to_string(), observe(&before["east"], 6)),
            ("west".to_string(), vec![]),
        ]);
        let held = starting(&after, &observed);
        assert_eq!(held, BTreeSet::from(["ar.ar-game".to_string()]));
        let west = member_changes(&after["west"], &observed["west"], &held);
        assert_eq!(west.apply, after["west"]);
        let east = member_changes(&[], &observed["east"], &held);
        assert_eq!(
            east,
            MemberChanges {
                apply: vec![],
                delete: vec![],
                waiting: vec![key("Service", "render"), key("Deployment", "ar-render")],
            }
        );
        // Applied on west but not ready yet: still held.
        observed.insert("west".into(), observe(&after["west"], 3));
        assert_eq!(starting(&after, &observed), held);
        // Ready on west: the old ones go.
        observed.insert("west".into(), observe(&after["west"], 6));
        let held = starting(&after, &observed);
        assert!(held.is_empty());
        let east = member_changes(&[], &observed["east"], &held);
        assert_eq!(
            east.delete,
            vec![key("Service", "render"), key("Deployment", "ar-render")]
        );
    }

    #[test]
    fn a_member_running_edgeplane_gets_the_offer_marked_and_loses_it_when_the_component_moves() {
        let mut app = app();
        app.spec.resources[1]["spec"]["template"] =
            json!({"metadata": {"labels": {"app": "ar-render"}}});
        app.spec.constraints = serde_json::from_value(
            json!([{"policy": "near-fans", "targets": [{"component": "render"}, {"site": "stadium"}]}]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let policies: Vec<ConstraintPolicy> = vec![
            serde_json::from_value(json!({
                "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicy",
                "metadata": {"name": "near-fans", "namespace": "ar"},
                "spec": {"rules": [{"name": "latency", "request": "2ms", "limit": "5ms"}]}
            }))
            .unwrap_or_else(|e| panic!("{e}")),
        ];
        let edgeplane = BTreeSet::from(["east".to_string()]);
        let before = desired(&app, &plan(&[("east", 6)]), &policies, &edgeplane);
        let kinds: Vec<&str> = before["east"]
            .iter()
            .map(|o| o["kind"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            kinds,
            [
                "ConstraintPolicy",
                "ConstraintPolicyOffer",
                "Service",
                "Deployment"
            ]
        );
        let offer = &before["east"][1];
        assert_eq!(offer["metadata"]["labels"][APPLICATION_LABEL], "ar.ar-game");
        assert!(annotation(offer, APPLIED_ANNOTATION).is_some());
        // west does not run edgeplane: moved there, the offer is not written, and once
        // the new replicas run the old member's policy and offer go with the rest.
        let after = desired(&app, &plan(&[("west", 6)]), &policies, &edgeplane);
        assert_eq!(after["west"].len(), 2);
        let observed = BTreeMap::from([
            ("east".to_string(), observe(&before["east"], 6)),
            ("west".to_string(), observe(&after["west"], 6)),
        ]);
        let held = starting(&after, &observed);
        assert!(held.is_empty());
        let offer_key = |kind: &str| ObjectKey {
            api_version: "constraint.edgeplane.io/v1alpha1".into(),
            kind: kind.into(),
            namespace: Some("ar".into()),
            name: "ar-game.near-fans".into(),
        };
        assert_eq!(
            member_changes(&[], &observed["east"], &held).delete,
            vec![
                offer_key("ConstraintPolicy"),
                offer_key("ConstraintPolicyOffer"),
                key("Service", "render"),
                key("Deployment", "ar-render"),
            ]
        );
    }

    #[test]
    fn a_shrink_waits_for_the_growth_elsewhere() {
        let before = desired_here(&app(), &plan(&[("east", 6)]));
        let after = desired_here(&app(), &plan(&[("east", 2), ("west", 4)]));
        let observed = BTreeMap::from([("east".to_string(), observe(&before["east"], 6))]);
        let held = starting(&after, &observed);
        let east = member_changes(&after["east"], &observed["east"], &held);
        assert_eq!(east.waiting, vec![key("Deployment", "ar-render")]);
        assert!(east.apply.is_empty(), "the Service is unchanged");
        // With nothing starting, the shrink is applied.
        let east = member_changes(&after["east"], &observed["east"], &BTreeSet::new());
        assert_eq!(east.apply, vec![after["east"][1].clone()]);
    }
}
