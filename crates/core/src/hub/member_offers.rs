//! Inside a member that runs edgeplane: the hub's constraint to a user site becomes the
//! member's binding to the same Site, so the member's own planner places the pods on its
//! nodes by the constraint the hub placed the component by.
//!
//! For each constraint of an application that binds a component to a user site, and each
//! member running edgeplane (`MemberCluster::runs_edgeplane`) where one of the
//! constraint's components has replicas, the member gets, in the application's namespace:
//!
//! - a copy of the ConstraintPolicy, named [`copy_name`] (`<application>.<policy>`, so two
//!   applications using one policy, or a policy of the member's own with that name, never
//!   share an object);
//! - a ConstraintPolicyOffer of the same name with the copy as its one policy, a `Pod`
//!   target per component of the constraint placed on that member (its workload's pod
//!   template labels as the selector) and a `Site` target per site of the constraint.
//!
//! The member's offer controller then makes the bindings, and its planner places the pods
//! by them. Components of the constraint placed on other members are not targets: the
//! pairs across clusters are the hub's to judge. Constraints between components only (no
//! site) are not copied. The member's NetworkTopology must have the site (docs/
//! multicluster.md); when it does not, the member's bindings say so, as any binding does.

use std::collections::{BTreeMap, BTreeSet};

use edgeplane_api::ConstraintPolicy;
use edgeplane_api::multicluster::MecApplication;
use edgeplane_api::names::CONSTRAINT_API_VERSION;
use serde_json::{Map, Value as Json, json};

use super::AppPlan;
use super::digest;

/// The longest offer name: offers are named in their bindings' label
/// (`constraint.edgeplane.io/offer`), and a label value has at most 63 characters.
const MAX_NAME: usize = 63;

/// The name of the policy copy and of the offer for `policy` of `application`:
/// `<application>.<policy>`, or, when longer than a label value may be, its first
/// characters and a digest of the whole.
pub fn copy_name(application: &str, policy: &str) -> String {
    let name = format!("{application}.{policy}");
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = digest(&name);
    let head: String = name.chars().take(MAX_NAME - hash.len() - 1).collect();
    let head = head.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{head}-{hash}")
}

/// A workload's pod template labels, which select its pods.
fn pod_labels(app: &MecApplication, kind: &str, name: &str) -> Option<Map<String, Json>> {
    let workload = app.spec.resources.iter().find(|r| {
        r.get("kind").and_then(Json::as_str) == Some(kind)
            && r.pointer("/metadata/name").and_then(Json::as_str) == Some(name)
    })?;
    workload
        .pointer("/spec/template/metadata/labels")
        .and_then(Json::as_object)
        .filter(|labels| !labels.is_empty())
        .cloned()
}

/// Whether `name` can name an offer's target (a DNS label).
fn is_target_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Member -> the policy copies and offers the application needs there, for the members in
/// `edgeplane_members` its plan uses. `policies` are the hub's ConstraintPolicies; a
/// constraint naming one that is not among them is skipped (the hub reports it when
/// reading the application). A component whose workload has no pod template labels
/// cannot be selected and is left out.
pub fn member_offers(
    app: &MecApplication,
    plan: &AppPlan,
    policies: &[ConstraintPolicy],
    edgeplane_members: &BTreeSet<String>,
) -> BTreeMap<String, Vec<Json>> {
    let namespace = app.metadata.namespace.as_deref().unwrap_or("default");
    let app_name = app.metadata.name.as_deref().unwrap_or_default();
    let mut out: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for share in &plan.placement {
        if !edgeplane_members.contains(&share.cluster) {
            continue;
        }
        for constraint in &app.spec.constraints {
            let sites: Vec<&str> = constraint
                .targets
                .iter()
                .filter_map(|t| t.site.as_deref())
                .collect();
            if sites.is_empty() {
                continue;
            }
            let Some(policy) = policies.iter().find(|p| {
                p.metadata.name.as_deref() == Some(constraint.policy.as_str())
                    && p.metadata.namespace.as_deref().unwrap_or("default") == namespace
            }) else {
                continue;
            };
            let mut targets = Vec::new();
            let mut seen = BTreeSet::new();
            for component in constraint
                .targets
                .iter()
                .filter_map(|t| t.component.as_deref())
            {
                if share.components.get(component).copied().unwrap_or(0) == 0
                    || !seen.insert(component)
                {
                    continue;
                }
                let Some(spec) = app.spec.components.iter().find(|c| c.name == component) else {
                    continue;
                };
                let Some(labels) =
                    pod_labels(app, spec.workload.kind.as_str(), &spec.workload.name)
                else {
                    continue;
                };
                targets.push(json!({
                    "name": component,
                    "kind": "Pod",
                    "labelSelector": {"matchLabels": labels},
                }));
            }
            if targets.is_empty() {
                continue;
            }
            for site in &sites {
                let mut target = json!({"kind": "Site", "sites": [site]});
                // A site named like a component would give two roles one name.
                if is_target_name(site) && !seen.contains(site) {
                    target["name"] = json!(site);
                }
                targets.push(target);
            }
            let name = copy_name(app_name, &constraint.policy);
            let objects = out.entry(share.cluster.clone()).or_default();
            objects.push(json!({
                "apiVersion": CONSTRAINT_API_VERSION,
                "kind": "ConstraintPolicy",
                "metadata": {"name": name, "namespace": namespace},
                "spec": policy.spec,
            }));
            objects.push(json!({
                "apiVersion": CONSTRAINT_API_VERSION,
                "kind": "ConstraintPolicyOffer",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"targets": targets, "policies": [name]},
            }));
        }
    }
    out
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
                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ar-render"},
                     "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "ar-render"}},
                              "template": {"metadata": {"labels": {"app": "ar-render", "tier": "gpu"}}}}},
                    {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "game-state"},
                     "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "state"}}}}}
                ],
                "components": [
                    {"name": "render", "workload": {"kind": "Deployment", "name": "ar-render"}, "replicas": 6},
                    {"name": "state", "workload": {"kind": "StatefulSet", "name": "game-state"}, "replicas": 1}
                ],
                "constraints": [
                    {"policy": "near-fans", "targets": [{"component": "render"}, {"site": "stadium"}]},
                    {"policy": "near-state", "targets": [{"component": "render"}, {"component": "state"}]},
                    {"policy": "all-near", "targets": [{"component": "render"}, {"component": "state"}, {"site": "stadium"}]}
                ]
            }
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn policy(name: &str, latency: &str) -> ConstraintPolicy {
        serde_json::from_value(json!({
            "apiVersion": CONSTRAINT_API_VERSION, "kind": "ConstraintPolicy",
            "metadata": {"name": name, "namespace": "ar", "uid": "u-1", "resourceVersion": "7"},
            "spec": {"rules": [{"name": "latency", "request": latency, "limit": "5ms"}]},
            "status": {"ruleCount": 1}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn policies() -> Vec<ConstraintPolicy> {
        vec![
            policy("near-fans", "2ms"),
            policy("near-state", "1ms"),
            policy("all-near", "3ms"),
        ]
    }

    fn plan(shares: &[(&str, &[(&str, u32)])]) -> AppPlan {
        AppPlan {
            namespace: "ar".into(),
            name: "ar-game".into(),
            placement: shares
                .iter()
                .map(|(cluster, components)| Share {
                    cluster: cluster.to_string(),
                    components: components
                        .iter()
                        .map(|(c, n)| (c.to_string(), *n))
                        .collect(),
                })
                .collect(),
            unplaced: BTreeMap::new(),
            rules: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn members(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn render_target() -> Json {
        json!({"name": "render", "kind": "Pod",
               "labelSelector": {"matchLabels": {"app": "ar-render", "tier": "gpu"}}})
    }

    fn stadium_target() -> Json {
        json!({"name": "stadium", "kind": "Site", "sites": ["stadium"]})
    }

    fn copy(name: &str, latency: &str) -> Json {
        json!({"apiVersion": CONSTRAINT_API_VERSION, "kind": "ConstraintPolicy",
               "metadata": {"name": name, "namespace": "ar"},
               "spec": {"rules": [{"name": "latency", "request": latency, "limit": "5ms"}]}})
    }

    fn offer(name: &str, targets: Vec<Json>) -> Json {
        json!({"apiVersion": CONSTRAINT_API_VERSION, "kind": "ConstraintPolicyOffer",
               "metadata": {"name": name, "namespace": "ar"},
               "spec": {"targets": targets, "policies": [name]}})
    }

    #[test]
    fn a_member_running_edgeplane_gets_the_site_constraints_of_what_runs_there() {
        let out = member_offers(
            &app(),
            &plan(&[
                ("edge-east", &[("render", 4), ("state", 1)]),
                ("edge-west", &[("render", 2)]),
                ("metro", &[]),
            ]),
            &policies(),
            &members(&["edge-east", "edge-west", "metro"]),
        );
        // near-state binds no site: the hub's alone. all-near on edge-west: only render
        // runs there.
        assert_eq!(
            out,
            BTreeMap::from([
                (
                    "edge-east".to_string(),
                    vec![
                        copy("ar-game.near-fans", "2ms"),
                        offer("ar-game.near-fans", vec![render_target(), stadium_target()]),
                        copy("ar-game.all-near", "3ms"),
                        offer(
                            "ar-game.all-near",
                            vec![
                                render_target(),
                                json!({"name": "state", "kind": "Pod",
                                       "labelSelector": {"matchLabels": {"app": "state"}}}),
                                stadium_target(),
                            ]
                        ),
                    ]
                ),
                (
                    "edge-west".to_string(),
                    vec![
                        copy("ar-game.near-fans", "2ms"),
                        offer("ar-game.near-fans", vec![render_target(), stadium_target()]),
                        copy("ar-game.all-near", "3ms"),
                        offer("ar-game.all-near", vec![render_target(), stadium_target()]),
                    ]
                ),
            ])
        );
    }

    #[test]
    fn members_not_running_edgeplane_get_nothing() {
        let out = member_offers(
            &app(),
            &plan(&[
                ("edge-east", &[("render", 6)]),
                ("edge-west", &[("state", 1)]),
            ]),
            &policies(),
            &members(&["edge-west", "elsewhere"]),
        );
        // edge-east does not run edgeplane; edge-west holds only state, which all-near
        // binds to the stadium.
        assert_eq!(
            out,
            BTreeMap::from([(
                "edge-west".to_string(),
                vec![
                    copy("ar-game.all-near", "3ms"),
                    offer(
                        "ar-game.all-near",
                        vec![
                            json!({"name": "state", "kind": "Pod",
                                   "labelSelector": {"matchLabels": {"app": "state"}}}),
                            stadium_target(),
                        ]
                    ),
                ]
            )])
        );
    }

    #[test]
    fn a_missing_policy_or_unlabelled_template_gives_no_offer() {
        let mut app = app();
        app.spec.resources[0]["spec"]["template"]["metadata"]["labels"] = json!({});
        let out = member_offers(
            &app,
            &plan(&[("edge-east", &[("render", 6), ("state", 1)])]),
            &[policy("near-fans", "2ms")],
            &members(&["edge-east"]),
        );
        // near-fans: render cannot be selected; all-near: its policy is not there.
        assert_eq!(out, BTreeMap::new());
    }

    #[test]
    fn long_names_are_cut_to_a_label_value_with_a_digest() {
        assert_eq!(copy_name("ar-game", "near-fans"), "ar-game.near-fans");
        let app = "a".repeat(40);
        let policy = format!("{}-b", "p".repeat(30));
        let name = copy_name(&app, &policy);
        assert_eq!(name.len(), 63);
        assert!(name.starts_with(&format!("{app}.ppppp")), "{name}");
        assert_ne!(name, copy_name(&app, &format!("{}-c", "p".repeat(30))));
        // The head never ends on a dot.
        let name = copy_name(&"a".repeat(45), "policies-of-the-app");
        assert_eq!(name.len(), 62);
        assert!(name.starts_with(&format!("{}-", "a".repeat(45))), "{name}");
    }
}
