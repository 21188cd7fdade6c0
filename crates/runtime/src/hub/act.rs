//! The hub's writes, all through [`Context`]: member and application statuses, Events,
//! and per mode the objects in the members (direct), Karmada's ResourceBindings
//! (karmada) or plain PropagationPolicies and the resources they propagate
//! (karmada-policy).

use std::collections::{BTreeMap, BTreeSet};

use edgeplane_api::multicluster::{AppliedKind, MecApplication, MemberClusterStatus};
use edgeplane_core::hub::closed_loop::{Decision, Round, build_tolerant, round};
use edgeplane_core::hub::direct::{self, APPLICATION_LABEL, ObjectKey, application_key};
use edgeplane_core::hub::karmada::{self, FIELD_MANAGER};
use edgeplane_core::hub::members::CONDITION_READY;
use edgeplane_core::hub::objects::InputError;
use edgeplane_core::hub::render::resources;
use edgeplane_core::hub::{self, HubInput};
use edgeplane_core::manifests::is_cluster_scoped;
use edgeplane_core::status::application_status;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{Resource, ResourceExt};
use serde_json::{Value as Json, json};

use super::observe::{MemberClients, Observed, edgeplane_members, resource_of};
use super::{HubConfig, Mode};
use crate::context::Context;
use crate::events::{EventSpec, EventType, reasons};
use crate::metrics::hub::RoundFacts;

pub async fn act(
    ctx: &Context,
    config: &HubConfig,
    clients: &mut MemberClients,
    observed: Observed,
) -> RoundFacts {
    member_statuses(ctx, &observed).await;
    let mut facts = match config.mode {
        Mode::Direct | Mode::KarmadaPolicy => applications(ctx, config, clients, &observed).await,
        Mode::Karmada => bindings(ctx, config, clients, &observed).await,
    };
    for m in &observed.members {
        match m.status.as_ref().and_then(ready) {
            Some(true) => facts.members_ready += 1,
            Some(false) => facts.members_not_ready += 1,
            None => {}
        }
    }
    facts
}

/// `west render=4; east state=1`.
fn shares(plan: &hub::AppPlan) -> String {
    plan.placement
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s.cluster,
                s.components
                    .iter()
                    .map(|(c, n)| format!("{c}={n}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn ready(status: &MemberClusterStatus) -> Option<bool> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_READY)
        .map(|c| c.status == "True")
}

async fn member_statuses(ctx: &Context, observed: &Observed) {
    for (name, stored, computed) in &observed.statuses {
        if stored == computed {
            continue;
        }
        if let Err(error) = ctx.apply_status(None, name, computed).await {
            tracing::warn!(member = %name, %error, "hub: writing the member's status failed");
            continue;
        }
        if ready(computed) == Some(false) && ready(stored) != Some(false) {
            let message = computed
                .conditions
                .first()
                .map(|c| format!("{}: {}", c.reason, c.message))
                .unwrap_or_default();
            tracing::warn!(member = %name, %message, "hub: member NotReady");
            if let Some(member) = observed.members.iter().find(|m| m.name_any() == *name) {
                ctx.events()
                    .publish_or_log(
                        &member.object_ref(&()),
                        EventSpec {
                            type_: EventType::Warning,
                            reason: reasons::MEMBER_NOT_READY,
                            action: "Probe",
                            note: message,
                        },
                    )
                    .await;
            }
        }
    }
}

/// An Event about an input error, once per distinct message per object.
async fn report(
    ctx: &Context,
    clients: &mut MemberClients,
    regarding: ObjectReference,
    error: &InputError,
    reason: &'static str,
) {
    let message = error.to_string();
    if clients.reported.get(&error.object) == Some(&message) {
        return;
    }
    tracing::warn!(%message, "hub: input error");
    clients
        .reported
        .insert(error.object.clone(), message.clone());
    ctx.events()
        .publish_or_log(
            &regarding,
            EventSpec {
                type_: EventType::Warning,
                reason,
                action: "Place",
                note: message,
            },
        )
        .await;
}

fn reference(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.to_string()),
        kind: Some(kind.to_string()),
        namespace: namespace.map(str::to_string),
        name: Some(name.to_string()),
        ..ObjectReference::default()
    }
}

/// The object an input error names, as a reference for an Event.
fn regarding(error: &InputError, observed: &Observed) -> ObjectReference {
    let object = &error.object;
    if let Some(rest) = object.strip_prefix("MecApplication ")
        && let Some(app) = observed.applications.iter().find(|a| {
            format!(
                "{}/{}",
                a.metadata.namespace.as_deref().unwrap_or("default"),
                a.name_any()
            ) == rest
        })
    {
        return app.object_ref(&());
    }
    if let Some(rest) = object.strip_prefix("MemberCluster ")
        && let Some(member) = observed.members.iter().find(|m| m.name_any() == rest)
    {
        return member.object_ref(&());
    }
    if let Some(topology) = &observed.topology {
        return topology.object_ref(&());
    }
    reference("v1", "Namespace", None, "default")
}

async fn applications(
    ctx: &Context,
    config: &HubConfig,
    clients: &mut MemberClients,
    observed: &Observed,
) -> RoundFacts {
    let mut facts = RoundFacts::default();
    let now = ctx.clock.now();
    let Round {
        plans,
        moved,
        errors,
    } = round(
        observed.topology.as_ref(),
        &observed.members,
        &observed.applications,
        &observed.policies,
        config.grace,
        now,
        &config.options,
    );
    for error in &errors {
        report(
            ctx,
            clients,
            regarding(error, observed),
            error,
            reasons::HUB_INPUT_INVALID,
        )
        .await;
    }
    // Statuses, and Events for what moved.
    for app in &observed.applications {
        let namespace = app.metadata.namespace.clone().unwrap_or_default();
        let key = (namespace.clone(), app.name_any());
        let Some(plan) = plans.get(&key) else {
            continue;
        };
        let previous = app.status.clone().unwrap_or_default();
        let status = application_status(app, plan, &previous, now);
        if status != previous
            && let Err(error) = ctx.apply_status(Some(&namespace), &key.1, &status).await
        {
            tracing::warn!(application = %format!("{}/{}", key.0, key.1), %error, "hub: writing the status failed");
        }
        // Placed again to where it already was (nothing better for a violation past
        // grace): nothing moved, nothing to tell.
        if !plan.placement.is_empty() {
            facts.placed += 1;
        }
        if let Some(why) = moved.get(&key)
            && status.placement != previous.placement
        {
            facts.moved += 1;
            ctx.events()
                .publish_or_log(
                    &app.object_ref(&()),
                    EventSpec {
                        type_: EventType::Normal,
                        reason: reasons::APPLICATION_MOVED,
                        action: "Place",
                        note: format!("placed again ({why}): {}", shares(plan)),
                    },
                )
                .await;
        }
    }
    // Applications without a plan this round (an input error, a broken topology) keep
    // whatever they have in the members.
    let held: BTreeSet<String> = observed
        .applications
        .iter()
        .filter(|a| {
            !plans.contains_key(&(
                a.metadata.namespace.clone().unwrap_or_default(),
                a.name_any(),
            ))
        })
        .map(|a| {
            application_key(
                a.metadata.namespace.as_deref().unwrap_or("default"),
                &a.name_any(),
            )
        })
        .collect();
    let with_plans: Vec<(&MecApplication, &hub::AppPlan)> = observed
        .applications
        .iter()
        .filter_map(|a| {
            let key = (
                a.metadata.namespace.clone().unwrap_or_default(),
                a.name_any(),
            );
            plans.get(&key).map(|p| (a, p))
        })
        .collect();
    match config.mode {
        Mode::Direct => direct_mode(ctx, clients, observed, &with_plans, held).await,
        Mode::KarmadaPolicy => policy_mode(ctx, observed, &with_plans, &held).await,
        Mode::Karmada => {}
    }
    facts
}

async fn direct_mode(
    ctx: &Context,
    clients: &MemberClients,
    observed: &Observed,
    plans: &[(&MecApplication, &hub::AppPlan)],
    mut held: BTreeSet<String>,
) {
    let mut desired: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    let edgeplane = edgeplane_members(&observed.members);
    for (app, plan) in plans {
        for (member, objects) in direct::desired(app, plan, &observed.policies, &edgeplane) {
            desired.entry(member).or_default().extend(objects);
        }
    }
    held.extend(direct::starting(&desired, &observed.in_members));
    for (member, there) in &observed.in_members {
        let Some(client) = clients.get(member) else {
            continue;
        };
        let mctx = ctx.clone().with_client(client.clone());
        let wanted = desired.get(member).map(Vec::as_slice).unwrap_or_default();
        let mut changes = direct::member_changes(wanted, there, &held);
        // Cluster-scoped objects (Namespaces) before the namespaced ones in them, and the
        // namespaces themselves, which the hub creates but never removes (other things
        // may live there).
        changes
            .apply
            .sort_by_key(|o| !is_cluster_scoped(o["kind"].as_str().unwrap_or_default()));
        let namespaces: BTreeSet<&str> = changes
            .apply
            .iter()
            .filter_map(|o| o.pointer("/metadata/namespace").and_then(Json::as_str))
            .collect();
        let (namespace_resource, _) = resource_of("v1", "Namespace");
        for ns in namespaces {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            if let Err(error) = mctx
                .apply_json(&namespace_resource, false, &body, FIELD_MANAGER)
                .await
            {
                tracing::warn!(%member, %error, "hub: creating a namespace failed");
            }
        }
        for object in &changes.apply {
            let (resource, namespaced) = resource_of(
                object["apiVersion"].as_str().unwrap_or_default(),
                object["kind"].as_str().unwrap_or_default(),
            );
            if let Err(error) = mctx
                .apply_json(&resource, namespaced, object, FIELD_MANAGER)
                .await
            {
                tracing::warn!(%member, %error, "hub: applying failed");
            }
        }
        for key in &changes.delete {
            delete(&mctx, member, key).await;
        }
        applied_kinds(
            ctx,
            observed,
            member,
            direct::applied_kinds(there, &changes),
        )
        .await;
    }
    for member in desired.keys() {
        if !observed.in_members.contains_key(member) {
            tracing::warn!(%member, "hub: the member did not answer; its share waits");
        }
    }
}

/// Notes in the member's status the kinds the hub has objects of there, when they changed.
async fn applied_kinds(ctx: &Context, observed: &Observed, member: &str, kinds: Vec<AppliedKind>) {
    let Some(mut status) = observed
        .members
        .iter()
        .find(|m| m.name_any() == member)
        .and_then(|m| m.status.clone())
    else {
        return;
    };
    if status.applied_kinds == kinds {
        return;
    }
    status.applied_kinds = kinds;
    if let Err(error) = ctx.apply_status(None, member, &status).await {
        tracing::warn!(%member, %error, "hub: noting the kinds applied failed");
    }
}

async fn delete(ctx: &Context, member: &str, key: &ObjectKey) {
    let (resource, namespaced) = resource_of(&key.api_version, &key.kind);
    if let Err(error) = ctx
        .delete_json(&resource, namespaced, key.namespace.as_deref(), &key.name)
        .await
    {
        tracing::warn!(%member, %error, "hub: removing failed");
    }
}

/// karmada-policy: the application's resources and a plain PropagationPolicy per placed
/// component, in the hub (the Karmada control plane); policies of the hub's no longer
/// wanted are removed.
async fn policy_mode(
    ctx: &Context,
    observed: &Observed,
    plans: &[(&MecApplication, &hub::AppPlan)],
    held: &BTreeSet<String>,
) {
    let names = karmada::karmada_names(&observed.members);
    let existing: BTreeMap<ObjectKey, &Json> = observed
        .propagation_policies
        .iter()
        .filter_map(|p| Some((ObjectKey::of(p)?, p)))
        .collect();
    let mut wanted = BTreeSet::new();
    for (app, plan) in plans {
        let key = application_key(
            app.metadata.namespace.as_deref().unwrap_or("default"),
            &app.name_any(),
        );
        let policies: Vec<Json> = karmada::propagation_policies(app, plan, &names)
            .into_iter()
            .map(|p| direct::mark(p, &key))
            .collect();
        let changed: Vec<&Json> = policies
            .iter()
            .filter(|p| {
                let key = ObjectKey::of(p);
                if let Some(k) = &key {
                    wanted.insert(k.clone());
                }
                !key.and_then(|k| existing.get(&k).copied())
                    .is_some_and(|e| direct::is_applied(e, p))
            })
            .collect();
        if changed.is_empty() {
            continue;
        }
        // The resources Karmada propagates, then the policies that propagate them.
        for object in resources(app) {
            let object = direct::mark(object, &key);
            let (resource, namespaced) = resource_of(
                object["apiVersion"].as_str().unwrap_or_default(),
                object["kind"].as_str().unwrap_or_default(),
            );
            if let Err(error) = ctx
                .apply_json(&resource, namespaced, &object, FIELD_MANAGER)
                .await
            {
                tracing::warn!(%error, "hub: applying a resource for Karmada failed");
            }
        }
        let (resource, _) = resource_of("policy.karmada.io/v1alpha1", "PropagationPolicy");
        for policy in changed {
            if let Err(error) = ctx.apply_json(&resource, true, policy, FIELD_MANAGER).await {
                tracing::warn!(%error, "hub: applying a PropagationPolicy failed");
            }
        }
    }
    for (key, policy) in &existing {
        let app = policy
            .pointer(&format!(
                "/metadata/labels/{}",
                APPLICATION_LABEL.replace('/', "~1")
            ))
            .and_then(Json::as_str)
            .unwrap_or_default();
        if !wanted.contains(key) && !held.contains(app) {
            delete(ctx, "hub", key).await;
        }
    }
}

/// karmada: `spec.clusters` of the ResourceBindings of PropagationPolicies with
/// `schedulerName: edgeplane`.
async fn bindings(
    ctx: &Context,
    config: &HubConfig,
    clients: &mut MemberClients,
    observed: &Observed,
) -> RoundFacts {
    let mut facts = RoundFacts::default();
    let now = ctx.clock.now();
    let (built, errors, _, _) = build_tolerant(
        observed.topology.as_ref(),
        &observed.members,
        &[],
        &observed.policies,
        now,
    );
    for error in &errors {
        report(
            ctx,
            clients,
            regarding(error, observed),
            error,
            reasons::HUB_INPUT_INVALID,
        )
        .await;
    }
    let Some(built) = built else {
        return facts;
    };
    let names = karmada::karmada_names(&observed.members);
    // What Karmada's bindings already say stays unless `karmada::decide` says otherwise
    // (a member NotReady past the policy's toleration, rules in Violation past grace).
    let mut moved: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut applications = Vec::new();
    let mut theirs = Vec::new();
    for policy in observed
        .propagation_policies
        .iter()
        .filter(|p| karmada::is_ours(p))
    {
        let bindings: Vec<Json> = karmada::bindings_of(policy, &observed.bindings)
            .into_iter()
            .cloned()
            .collect();
        if bindings.is_empty() {
            continue;
        }
        match karmada::application_from_bindings(policy, &bindings, &observed.policies) {
            Ok(mut app) => {
                let key = (app.namespace.clone(), app.name.clone());
                match karmada::decide(
                    policy,
                    &bindings,
                    &names,
                    &observed.members,
                    karmada::violated_since(&bindings),
                    config.grace,
                    now,
                ) {
                    Decision::Keep(placement) => app.prescribed = Some(placement),
                    Decision::Place { moved: Some(why) } => {
                        moved.insert(key, why);
                    }
                    Decision::Place { moved: None } => {}
                }
                applications.push(app);
                theirs.push((policy, bindings));
            }
            Err(error) => {
                let name = policy
                    .pointer("/metadata/name")
                    .and_then(Json::as_str)
                    .unwrap_or_default();
                let namespace = policy.pointer("/metadata/namespace").and_then(Json::as_str);
                let r = reference(
                    "policy.karmada.io/v1alpha1",
                    "PropagationPolicy",
                    namespace,
                    name,
                );
                report(ctx, clients, r, &error, reasons::HUB_INPUT_INVALID).await;
            }
        }
    }
    let input = HubInput {
        view: &built.view,
        clusters: built.clusters.clone(),
        applications,
    };
    let plan = hub::plan(&input, &config.options);
    let (resource, _) = resource_of("work.karmada.io/v1alpha2", "ResourceBinding");
    for (app, (policy, bindings)) in plan.applications.iter().zip(&theirs) {
        for (component, unplaced) in &app.unplaced {
            let name = policy
                .pointer("/metadata/name")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let namespace = policy.pointer("/metadata/namespace").and_then(Json::as_str);
            let error = InputError {
                object: format!("PropagationPolicy {}/{name}", namespace.unwrap_or_default()),
                field: format!("component {component}"),
                message: format!(
                    "{} replicas unplaced: {}",
                    unplaced.replicas, unplaced.reason
                ),
            };
            let r = reference(
                "policy.karmada.io/v1alpha1",
                "PropagationPolicy",
                namespace,
                name,
            );
            report(ctx, clients, r, &error, reasons::UNPLACEABLE).await;
        }
        // Since when its rules are in Violation: noted on its bindings, so that a hub
        // that restarts counts the grace from the same time.
        let key = (app.namespace.clone(), app.name.clone());
        let since = karmada::next_violated_since(app, karmada::violated_since(bindings), now);
        let refs: Vec<&Json> = bindings.iter().collect();
        let changes = karmada::binding_changes(app, &refs, &names, since);
        if !app.placement.is_empty() {
            facts.placed += 1;
        }
        if let Some(why) = moved.get(&key)
            && !changes.is_empty()
        {
            facts.moved += 1;
            let name = policy
                .pointer("/metadata/name")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let namespace = policy.pointer("/metadata/namespace").and_then(Json::as_str);
            ctx.events()
                .publish_or_log(
                    &reference(
                        "policy.karmada.io/v1alpha1",
                        "PropagationPolicy",
                        namespace,
                        name,
                    ),
                    EventSpec {
                        type_: EventType::Normal,
                        reason: reasons::APPLICATION_MOVED,
                        action: "Place",
                        note: format!("placed again ({why}): {}", shares(app)),
                    },
                )
                .await;
        }
        for body in changes {
            if let Err(error) = ctx.apply_json(&resource, true, &body, FIELD_MANAGER).await {
                tracing::warn!(%error, "hub: writing a ResourceBinding failed");
            }
        }
    }
    facts
}
