//! The Helm chart grants every component exactly what its code calls: renders the chart
//! with Helm (scripts/install-helm.sh installs it into .tools/ when missing) and checks
//! the rules bound to each component's ServiceAccount against
//! `edgeplane_runtime::rbac::requirements`.

#[path = "support/chart.rs"]
mod chart;

use edgeplane_runtime::rbac::{self, Component, HubMode};
use edgeplane_runtime::scheduler::Mode;
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

use std::path::Path;

use chart::{NAMESPACE, helm, render, root};

fn of_kind<'a>(docs: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    docs.iter().filter(move |d| d["kind"] == kind)
}

fn rules(role: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(role["rules"].clone()).unwrap_or_default()
}

/// The rules bound to a component's ServiceAccount: cluster-wide (ClusterRoleBindings) and
/// in the release namespace (RoleBindings).
fn bound_rules(docs: &[Value], component: &str) -> (Vec<PolicyRule>, Vec<PolicyRule>) {
    let account = of_kind(docs, "ServiceAccount")
        .find(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] == component)
        .unwrap_or_else(|| panic!("no ServiceAccount for {component}"));
    let name = account["metadata"]["name"].as_str().unwrap_or_default();
    let binds_account = |binding: &Value| {
        binding["subjects"].as_array().is_some_and(|subjects| {
            subjects.iter().any(|s| {
                s["kind"] == "ServiceAccount" && s["name"] == name && s["namespace"] == NAMESPACE
            })
        })
    };
    let role = |kind: &str, name: &Value| {
        of_kind(docs, kind)
            .find(|r| r["metadata"]["name"] == *name)
            .map(rules)
            .unwrap_or_default()
    };
    let mut cluster = Vec::new();
    for b in of_kind(docs, "ClusterRoleBinding").filter(|b| binds_account(b)) {
        cluster.extend(role("ClusterRole", &b["roleRef"]["name"]));
    }
    let mut namespaced = Vec::new();
    for b in of_kind(docs, "RoleBinding").filter(|b| binds_account(b)) {
        assert_eq!(b["metadata"]["namespace"], NAMESPACE);
        let kind = b["roleRef"]["kind"].as_str().unwrap_or("Role");
        namespaced.extend(role(kind, &b["roleRef"]["name"]));
    }
    (cluster, namespaced)
}

fn check(docs: &[Value], component: Component) -> (Vec<PolicyRule>, Vec<PolicyRule>) {
    let (cluster, namespaced) = bound_rules(docs, component.label());
    let missing = rbac::missing(&rbac::requirements(component), &cluster, &namespaced);
    assert!(
        missing.is_empty(),
        "the chart does not grant {component:?}:\n{}",
        missing.join("\n")
    );
    let mut all = cluster.clone();
    all.extend(namespaced.iter().cloned());
    let wild = rbac::wildcards(&all);
    assert!(
        wild.is_empty(),
        "{component:?} has wildcard rules: {wild:?}"
    );
    (cluster, namespaced)
}

#[test]
fn the_chart_grants_every_call_and_nothing_wild() {
    let helm = helm();
    let gate = render(&helm, &[]);
    let (cluster, namespaced) = check(&gate, Component::Controller);
    // The certificate keeper: its Secrets and the webhook configuration, by name only; and
    // no access to Secrets at all when it keeps nothing.
    let missing = rbac::missing(rbac::CERTIFICATES, &cluster, &namespaced);
    assert!(missing.is_empty(), "the keeper lacks {missing:?}");
    let secret_rules = |rules: &[PolicyRule]| -> Vec<PolicyRule> {
        rules
            .iter()
            .filter(|r| rbac::grants_some(r, "", "secrets", "get"))
            .cloned()
            .collect()
    };
    let kept: Vec<String> = [
        "edgeplane-ca",
        "edgeplane-webhook-cert",
        "edgeplane-scheduler-grpc-tls",
        "edgeplane-descheduler-grpc-tls",
    ]
    .map(String::from)
    .to_vec();
    assert!(
        secret_rules(&namespaced)
            .iter()
            .chain(&secret_rules(&cluster))
            .all(|r| r.resource_names.as_ref() == Some(&kept)),
        "the controller may read Secrets it does not keep"
    );
    for set in [
        &["scheduler.mode=bind", "tls.enabled=false"][..],
        &[
            "webhook.certificate.certManager.enabled=true",
            "webhook.certificate.certManager.issuerRef.name=ca",
            "tls.certManager.enabled=true",
        ][..],
    ] {
        let docs = render(&helm, set);
        let (cluster, namespaced) = bound_rules(&docs, "controller");
        assert!(
            secret_rules(&cluster).is_empty() && secret_rules(&namespaced).is_empty(),
            "{set:?}: the controller reads Secrets though it keeps no certificate"
        );
    }
    let (scheduler, _) = check(&gate, Component::Scheduler(Mode::Gate));
    // Least privilege: binding is for bind mode only.
    assert!(
        !scheduler
            .iter()
            .any(|r| rbac::grants(r, "", "pods/binding", "create")),
        "the gate-mode scheduler may bind pods"
    );

    let (descheduler, _) = check(&gate, Component::Descheduler);
    // The descheduler evicts through the Eviction API and never deletes pods.
    assert!(
        !descheduler
            .iter()
            .any(|r| rbac::grants(r, "", "pods", "delete")),
        "the descheduler may delete pods"
    );

    let bind = render(&helm, &["scheduler.mode=bind"]);
    check(&bind, Component::Controller);
    check(&bind, Component::Scheduler(Mode::Bind));

    // The reference network controller, when the chart deploys it: reads and status
    // patches only, and Events (about refused calls).
    assert!(
        of_kind(&gate, "ServiceAccount")
            .all(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] != "netctl"),
        "the network controller is deployed by default"
    );
    let with_netctl = render(&helm, &["netctl.enabled=true"]);
    let (netctl, _) = check(&with_netctl, Component::NetworkController);
    assert!(
        !netctl.iter().any(|r| r.verbs.iter().any(|v| v == "delete"
            || v == "update"
            || (v == "create" && !rbac::grants(r, "events.k8s.io", "events", "create")))),
        "the network controller may create, update or delete: {netctl:?}"
    );

    // The hub, when the chart deploys it (off by default), in each mode: it never deletes
    // in direct or karmada mode, and reads Secrets only in its own namespace.
    assert!(
        of_kind(&gate, "ServiceAccount")
            .all(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] != "hub"),
        "the hub is deployed by default"
    );
    for (mode, component) in [
        ("direct", Component::Hub(HubMode::Direct)),
        ("karmada", Component::Hub(HubMode::Karmada)),
        ("karmada-policy", Component::Hub(HubMode::KarmadaPolicy)),
    ] {
        let mode_set = format!("hub.mode={mode}");
        let docs = render(&helm, &["hub.enabled=true", &mode_set]);
        let (cluster, _) = check(&docs, component);
        assert!(
            !cluster
                .iter()
                .any(|r| rbac::grants_some(r, "", "secrets", "get")),
            "{mode}: the hub may read Secrets in every namespace"
        );
        if mode != "karmada-policy" {
            assert!(
                !cluster
                    .iter()
                    .any(|r| r.verbs.iter().any(|v| v == "delete")),
                "{mode}: the hub may delete in the hub cluster: {cluster:?}"
            );
        }
    }
    // The measurement agent, when the chart deploys it: reads, and patches of the
    // topology's status only.
    assert!(
        of_kind(&gate, "ServiceAccount")
            .all(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] != "agent"),
        "the measurement agent is deployed by default"
    );
    let with_agent = render(&helm, &["agent.enabled=true"]);
    let (agent, namespaced) = check(&with_agent, Component::Agent);
    assert!(namespaced.is_empty(), "{namespaced:?}");
    let writes: Vec<&PolicyRule> = agent
        .iter()
        .filter(|r| {
            r.verbs
                .iter()
                .any(|v| !["get", "list", "watch"].contains(&v.as_str()))
        })
        .collect();
    assert!(
        writes.len() == 1
            && writes[0].verbs == ["patch"]
            && writes[0].resources.as_deref()
                == Some(&["networktopologies/status".to_string()][..]),
        "the agent may write more than the topology's status: {writes:?}"
    );

    // Nothing in the chart grants a wildcard, bound or not.
    for kind in ["ClusterRole", "Role"] {
        for role in of_kind(&gate, kind).chain(of_kind(&bind, kind)) {
            assert!(rbac::wildcards(&rules(role)).is_empty(), "{role}");
        }
    }
}

#[test]
fn the_chart_carries_the_generated_crds() {
    let generated = root().join("deploy/crds");
    let chart = root().join("deploy/helm/edgeplane/crds");
    let names = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&generated), names(&chart));
    for name in names(&generated) {
        let a = std::fs::read_to_string(generated.join(&name)).unwrap_or_default();
        let b = std::fs::read_to_string(chart.join(&name)).unwrap_or_default();
        assert!(
            a == b,
            "deploy/helm/edgeplane/crds/{name} differs from deploy/crds/{name}: run `cargo run -p edgeplane -- crds -d deploy/crds -d deploy/helm/edgeplane/crds`"
        );
    }
}
