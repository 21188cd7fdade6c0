//! The Helm chart (deploy/helm/edgeplane): renders with monitoring off and on; its
//! ServiceMonitor, the agents' PodMonitor and the PrometheusRule are accepted by the embedded cluster under the
//! upstream prometheus-operator CRD schemas (and a broken one is refused); the dashboard
//! and the alerts name only metrics the code registers; every value is in the schema and
//! the README; bad values fail `helm lint --strict`; components with replicas get
//! PodDisruptionBudgets and anti-affinity; the reference network controller is found by
//! the discovery the scheduler uses. Helm comes from scripts/install-helm.sh (.tools/).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use edgeplane_cluster::{ClusterConfig, EmbeddedCluster};
use serde_json::{Value, json};

const NAMESPACE: &str = "edgeplane-system";
const CHART: &str = "deploy/helm/edgeplane";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Helm, installed once per test process (scripts/install-helm.sh also locks, for the
/// other test binaries).
fn helm() -> PathBuf {
    static HELM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HELM.get_or_init(install_helm).clone()
}

fn install_helm() -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("scripts/install-helm.sh"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/install-helm.sh: {e}"));
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(
        out.status.success() && !path.is_empty(),
        "Helm is needed to check the chart and scripts/install-helm.sh could not provide it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn yaml_documents(text: &str, what: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("{what} is not YAML: {e}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// `helm template` with `--set` values: the documents, or Helm's error.
fn try_render(helm: &Path, set: &[&str]) -> Result<Vec<Value>, String> {
    let mut cmd = Command::new(helm);
    cmd.args(["template", "edgeplane"])
        .arg(root().join(CHART))
        .args(["--namespace", NAMESPACE]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("running helm: {e}"));
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(yaml_documents(
        &String::from_utf8_lossy(&out.stdout),
        "the rendered chart",
    ))
}

fn render(helm: &Path, set: &[&str]) -> Vec<Value> {
    try_render(helm, set).unwrap_or_else(|e| panic!("helm template {set:?} failed: {e}"))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn component(doc: &Value) -> &str {
    doc["metadata"]["labels"]["app.kubernetes.io/component"]
        .as_str()
        .unwrap_or_default()
}

fn monitoring_kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .filter(|d| {
            d["apiVersion"]
                .as_str()
                .is_some_and(|a| a.starts_with("monitoring.coreos.com/"))
                || d["metadata"]["labels"]["grafana_dashboard"] == "1"
        })
        .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_chart_renders_with_monitoring_off_and_on() {
    let helm = helm();
    let off = render(&helm, &[]);
    assert!(
        monitoring_kinds(&off).is_empty(),
        "{:?}",
        monitoring_kinds(&off)
    );
    let on = render(&helm, &["monitoring.enabled=true"]);
    let mut kinds = monitoring_kinds(&on);
    kinds.sort();
    assert_eq!(kinds, ["ConfigMap", "PrometheusRule", "ServiceMonitor"]);
    // Monitoring adds objects and changes nothing else.
    assert_eq!(on.len(), off.len() + 3);
    let dashboard = of_kind(&on, "ConfigMap")[0];
    assert_eq!(dashboard["metadata"]["namespace"], NAMESPACE);
    let json_text = dashboard["data"]["edgeplane.json"]
        .as_str()
        .unwrap_or_default();
    let rendered: Value = serde_json::from_str(json_text)
        .unwrap_or_else(|e| panic!("the dashboard in the ConfigMap is not JSON: {e}"));
    let file: Value =
        serde_json::from_str(&read("deploy/helm/edgeplane/dashboards/edgeplane.json"))
            .unwrap_or_else(|e| panic!("dashboards/edgeplane.json: {e}"));
    assert_eq!(rendered, file);
    // The ServiceMonitor selects exactly the metrics Services, by the port they name.
    let monitor = of_kind(&on, "ServiceMonitor")[0];
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap_or_else(|| panic!("{monitor}"));
    let selected: Vec<&Value> = of_kind(&on, "Service")
        .into_iter()
        .filter(|s| {
            selector
                .iter()
                .all(|(k, v)| s["metadata"]["labels"][k.as_str()] == *v)
        })
        .collect();
    let mut components: Vec<&str> = selected.iter().map(|s| component(s)).collect();
    components.sort();
    assert_eq!(components, ["controller", "descheduler", "scheduler"]);
    let port = &monitor["spec"]["endpoints"][0]["port"];
    assert!(
        selected.iter().all(|s| s["spec"]["ports"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == *port))),
        "every selected Service has the port {port}"
    );
    // Labels for the Prometheus and Grafana selectors come from the values.
    let labelled = render(
        &helm,
        &[
            "monitoring.enabled=true",
            "monitoring.serviceMonitor.labels.release=kps",
            "monitoring.prometheusRule.labels.release=kps",
            "monitoring.dashboard.namespace=grafana",
        ],
    );
    assert_eq!(
        of_kind(&labelled, "ServiceMonitor")[0]["metadata"]["labels"]["release"],
        "kps"
    );
    assert_eq!(
        of_kind(&labelled, "PrometheusRule")[0]["metadata"]["labels"]["release"],
        "kps"
    );
    assert_eq!(
        of_kind(&labelled, "ConfigMap")[0]["metadata"]["namespace"],
        "grafana"
    );
}

#[test]
fn the_agents_pod_monitor_comes_with_the_agent_and_selects_its_pods_by_the_metrics_port() {
    let helm = helm();
    let without = render(&helm, &["monitoring.enabled=true"]);
    assert!(of_kind(&without, "PodMonitor").is_empty());
    let agent_alone = render(&helm, &["agent.enabled=true"]);
    assert!(of_kind(&agent_alone, "PodMonitor").is_empty());
    let on = render(
        &helm,
        &[
            "monitoring.enabled=true",
            "agent.enabled=true",
            "monitoring.serviceMonitor.labels.release=kps",
        ],
    );
    let monitors = of_kind(&on, "PodMonitor");
    assert_eq!(monitors.len(), 1);
    let monitor = monitors[0];
    assert_eq!(monitor["metadata"]["labels"]["release"], "kps");
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!([NAMESPACE])
    );
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap_or_else(|| panic!("{monitor}"));
    // Of every pod template the chart renders, it selects the agent's alone.
    let selected: Vec<&Value> = on
        .iter()
        .filter(|d| d["spec"]["template"]["metadata"]["labels"].is_object())
        .filter(|d| {
            selector
                .iter()
                .all(|(k, v)| d["spec"]["template"]["metadata"]["labels"][k.as_str()] == *v)
        })
        .collect();
    assert_eq!(selected.len(), 1, "{selected:?}");
    assert_eq!(selected[0]["kind"], "DaemonSet");
    assert_eq!(component(selected[0]), "agent");
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    let ports = selected[0]["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let port = ports
        .iter()
        .find(|p| p["name"] == endpoint["port"])
        .unwrap_or_else(|| panic!("the agent has no port {}", endpoint["port"]));
    assert_eq!(port["containerPort"], 8085);
}

/// The upstream prometheus-operator CRDs, from the shared reference data (never copied
/// into the project).
fn prometheus_operator_crds() -> String {
    let dir = root().join("../shared/crds/prometheus-operator");
    ["servicemonitors", "podmonitors", "prometheusrules"]
        .iter()
        .map(|kind| {
            let path = dir.join(format!("monitoring.coreos.com_{kind}.yaml"));
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[tokio::test]
async fn monitoring_objects_validate_against_the_prometheus_operator_crds() {
    let helm = helm();
    let on = render(
        &helm,
        &[
            "monitoring.enabled=true",
            "netctl.enabled=true",
            "agent.enabled=true",
        ],
    );
    let objects: Vec<Value> = on
        .iter()
        .filter(|d| {
            d["apiVersion"]
                .as_str()
                .is_some_and(|a| a.starts_with("monitoring.coreos.com/"))
        })
        .cloned()
        .collect();
    assert_eq!(objects.len(), 3);
    let cluster = EmbeddedCluster::start(ClusterConfig::default()).await;
    cluster
        .load_yaml(&prometheus_operator_crds())
        .await
        .unwrap_or_else(|e| panic!("loading the prometheus-operator CRDs: {e}"));
    cluster
        .apply_objects([json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NAMESPACE}})])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let accepted = cluster
        .apply_objects(objects.clone())
        .await
        .unwrap_or_else(|e| panic!("the chart's monitoring objects were refused: {e}"));
    assert_eq!(accepted.len(), 3);

    // Broken copies are refused, naming the field.
    let mut monitor = objects
        .iter()
        .find(|o| o["kind"] == "ServiceMonitor")
        .cloned()
        .unwrap_or_default();
    monitor["metadata"]["name"] = json!("broken");
    monitor["spec"]["endpoints"][0]["scheme"] = json!("ftp");
    let err = cluster
        .apply_objects([monitor])
        .await
        .map(|_| ())
        .expect_err("a ServiceMonitor scraping ftp was accepted");
    assert!(err.to_string().contains("scheme"), "{err}");
    let mut rule = objects
        .iter()
        .find(|o| o["kind"] == "PrometheusRule")
        .cloned()
        .unwrap_or_default();
    rule["metadata"]["name"] = json!("broken");
    if let Some(first) = rule["spec"]["groups"][0]["rules"][0].as_object_mut() {
        first.remove("expr");
    }
    let err = cluster
        .apply_objects([rule])
        .await
        .map(|_| ())
        .expect_err("an alert without expr was accepted");
    assert!(err.to_string().contains("expr"), "{err}");
    cluster.shutdown().await;
}

/// Names PromQL may use for what the code registers: counters and gauges as registered,
/// histograms with their `_bucket`, `_sum` and `_count` series.
fn registered_series() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, kind) in edgeplane_runtime::catalogue::all_metrics().registered() {
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                out.insert(format!("{name}{suffix}"));
            }
        }
        out.insert(name);
    }
    out
}

/// The metric names an expression uses: identifiers followed by a selector or a range
/// (`name{`, `name[`), and every identifier in edgeplane's and the process's namespaces.
/// Label names (in `{}` and `by (...)`), functions and keywords are none of these.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c == '"' {
            in_string = !in_string;
            i += 1;
            continue;
        }
        if in_string || !(c.is_ascii_alphabetic() || c == '_' || c == ':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && ((bytes[i] as char).is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
        {
            i += 1;
        }
        // `$__rate_interval`, `$namespace`: Grafana variables.
        if start > 0 && (bytes[start - 1] == b'$' || bytes[start - 1] == b'_') {
            continue;
        }
        let name = &expr[start..i];
        let next = expr[i..].trim_start().chars().next();
        if name.starts_with("edgeplane_")
            || name.starts_with("process_")
            || matches!(next, Some('{') | Some('['))
        {
            out.insert(name.to_string());
        }
    }
    out
}

#[test]
fn the_expression_scanner_finds_metrics_not_labels_or_functions() {
    let names = metric_names(
        "histogram_quantile(0.95, sum by (le, rule) (rate(edgeplane_provider_request_duration_seconds_bucket{job=~\"$job\", x=\"up{\"}[$__rate_interval]))) / up",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["edgeplane_provider_request_duration_seconds_bucket"]
    );
    assert_eq!(
        metric_names("absent(kube_pod_info{namespace=\"a\"}) or max(process_threads)")
            .into_iter()
            .collect::<Vec<_>>(),
        ["kube_pod_info", "process_threads"]
    );
}

#[test]
fn every_dashboard_panel_queries_registered_metrics() {
    let registered = registered_series();
    let dashboard: Value =
        serde_json::from_str(&read("deploy/helm/edgeplane/dashboards/edgeplane.json"))
            .unwrap_or_else(|e| panic!("dashboards/edgeplane.json: {e}"));
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
    let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    let mut used = BTreeSet::new();
    let mut queried = 0;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap_or_default();
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            let names = metric_names(expr);
            assert!(
                !names.is_empty(),
                "panel {title:?}: {expr:?} names no metric"
            );
            for name in names {
                assert!(
                    registered.contains(&name),
                    "panel {title:?} queries {name}, which the code does not register"
                );
                used.insert(name);
            }
            queried += 1;
        }
    }
    assert!(queried >= 20, "{queried} queries");
    // What the issue asks the dashboard to show.
    for wanted in [
        "edgeplane_bindings",
        "edgeplane_binding_violation_longest_seconds",
        "edgeplane_scheduler_plan_runs_total",
        "edgeplane_scheduler_plan_duration_seconds_bucket",
        "edgeplane_scheduler_unplaced_pods",
        "edgeplane_descheduler_mitigations_total",
        "edgeplane_descheduler_evictions_total",
        "edgeplane_provider_request_duration_seconds_bucket",
        "edgeplane_provider_errors_total",
        "edgeplane_network_controller_request_duration_seconds_bucket",
        "edgeplane_network_controller_requests_total",
        "edgeplane_leader",
    ] {
        assert!(used.contains(wanted), "no panel shows {wanted}");
    }
    // Template variables query registered metrics too.
    for variable in dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if let Some(query) = variable["definition"].as_str() {
            for name in metric_names(query) {
                assert!(registered.contains(&name), "variable queries {name}");
            }
        }
    }
}

/// GitHub's anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_names_registered_metrics_and_has_a_runbook() {
    let helm = helm();
    let registered = registered_series();
    let docs = render(&helm, &["monitoring.enabled=true", "agent.enabled=true"]);
    let rule = of_kind(&docs, "PrometheusRule")[0];
    let operations = read("docs/operations.md");
    let anchors: BTreeSet<String> = operations
        .lines()
        .filter_map(|l| l.strip_prefix("### ").or_else(|| l.strip_prefix("## ")))
        .map(anchor)
        .collect();
    let mut alerts = BTreeSet::new();
    for group in rule["spec"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        for r in group["rules"].as_array().cloned().unwrap_or_default() {
            let alert = r["alert"].as_str().unwrap_or_default().to_string();
            let expr = r["expr"].as_str().unwrap_or_default();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{alert}: {expr:?} names no metric");
            for name in names {
                assert!(
                    registered.contains(&name),
                    "{alert} reads {name}, which the code does not register"
                );
            }
            assert!(
                matches!(
                    r["labels"]["severity"].as_str(),
                    Some("critical" | "warning")
                ),
                "{alert} has no severity"
            );
            let url = r["annotations"]["runbook_url"].as_str().unwrap_or_default();
            let (base, fragment) = url
                .split_once('#')
                .unwrap_or_else(|| panic!("{alert}: runbook_url {url:?} names no section"));
            assert!(base.ends_with("docs/operations.md"), "{alert}: {url}");
            assert!(
                anchors.contains(fragment),
                "{alert}: docs/operations.md has no section #{fragment}"
            );
            alerts.insert(alert);
        }
    }
    for wanted in [
        "EdgeplaneBindingViolationPastGrace",
        "EdgeplaneMitigationFailing",
        "EdgeplanePodsUnplaced",
        "EdgeplanePodsGatedTooLong",
        "EdgeplaneNoLeader",
        "EdgeplaneComponentDown",
        "EdgeplaneProviderErrors",
        "EdgeplaneAgentPeersStale",
    ] {
        assert!(alerts.contains(wanted), "no alert {wanted}: {alerts:?}");
    }
    // Without agents, no alert about them.
    let without = render(&helm, &["monitoring.enabled=true"]);
    let text = serde_json::to_string(of_kind(&without, "PrometheusRule")[0]).unwrap_or_default();
    assert!(!text.contains("EdgeplaneAgentPeersStale"), "{text}");
}

/// The paths of values.yaml that a user sets: leaves, and maps the schema leaves open
/// (nodeSelector, labels...). `schema` is the matching values.schema.json node.
fn value_paths(values: &Value, schema: &Value, prefix: &str, out: &mut Vec<(String, bool)>) {
    let Some(map) = values.as_object() else {
        return;
    };
    for (key, value) in map {
        let path = format!("{prefix}{key}");
        let node = &schema["properties"][key.as_str()];
        out.push((path.clone(), !node.is_null()));
        if node.is_null() {
            continue;
        }
        let nested = value.as_object().is_some_and(|m| !m.is_empty());
        if nested && node["properties"].is_object() {
            value_paths(value, node, &format!("{path}."), out);
        }
    }
}

fn values_and_schema() -> (Value, Value) {
    let values: Value = serde_saphyr::from_str(&read("deploy/helm/edgeplane/values.yaml"))
        .unwrap_or_else(|e| panic!("values.yaml: {e}"));
    let schema: Value = serde_json::from_str(&read("deploy/helm/edgeplane/values.schema.json"))
        .unwrap_or_else(|e| panic!("values.schema.json: {e}"));
    (values, schema)
}

#[test]
fn the_schema_covers_every_value_and_the_readme_lists_it() {
    let (values, schema) = values_and_schema();
    let mut paths = Vec::new();
    value_paths(&values, &schema, "", &mut paths);
    assert!(paths.len() > 60, "{paths:?}");
    let missing: Vec<&String> = paths.iter().filter(|(_, ok)| !ok).map(|(p, _)| p).collect();
    assert!(
        missing.is_empty(),
        "in values.yaml, not in values.schema.json: {missing:?}"
    );
    // Closed objects: a misspelt value is an error, not ignored.
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"]["monitoring"]["additionalProperties"],
        false
    );
    let readme = read("deploy/helm/edgeplane/README.md");
    let listed: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(p, _)| p.to_string()))
        .collect();
    let unlisted: Vec<&String> = paths
        .iter()
        .map(|(p, _)| p)
        // A parent of listed values is listed through them.
        .filter(|p| !listed.contains(*p) && !listed.iter().any(|l| l.starts_with(&format!("{p}."))))
        .collect();
    assert!(
        unlisted.is_empty(),
        "deploy/helm/edgeplane/README.md does not list {unlisted:?}: run python3 scripts/chart-readme.py"
    );
}

#[test]
fn bad_values_fail_lint_and_template() {
    let helm = helm();
    for set in [
        "monitoring.enabeld=true",
        "netctl.replicas=2",
        "podAntiAffinity=sometimes",
        "monitoring.prometheusRule.runbookBaseUrl=docs/operations.md",
        "controller.resources.requests=null",
        "scheduler.mode=later",
    ] {
        let out = Command::new(&helm)
            .args(["lint", "--strict"])
            .arg(root().join(CHART))
            .args(["--set", set])
            .output()
            .unwrap_or_else(|e| panic!("running helm: {e}"));
        assert!(!out.status.success(), "helm lint --strict accepted {set}");
        assert!(
            try_render(&helm, &[set]).is_err(),
            "helm template accepted {set}"
        );
    }
    let out = Command::new(&helm)
        .args(["lint", "--strict"])
        .arg(root().join(CHART))
        .args(["--set", "monitoring.enabled=true,netctl.enabled=true"])
        .output()
        .unwrap_or_else(|e| panic!("running helm: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn replicated_components_get_disruption_budgets_anti_affinity_and_requests() {
    let helm = helm();
    let docs = render(&helm, &["netctl.enabled=true"]);
    let mut budgets: Vec<&str> = of_kind(&docs, "PodDisruptionBudget")
        .into_iter()
        .map(component)
        .collect();
    budgets.sort();
    assert_eq!(budgets, ["controller", "descheduler", "scheduler"]);
    for d in of_kind(&docs, "Deployment") {
        let name = component(d);
        let spec = &d["spec"]["template"]["spec"];
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or_default();
        let anti = &spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            [0];
        if replicas > 1 {
            assert_eq!(
                anti["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname",
                "{name}"
            );
            assert_eq!(
                anti["podAffinityTerm"]["labelSelector"]["matchLabels"],
                d["spec"]["selector"]["matchLabels"],
                "{name}"
            );
        } else {
            assert!(spec["affinity"].is_null(), "{name}: {}", spec["affinity"]);
        }
        for c in spec["containers"].as_array().cloned().unwrap_or_default() {
            let requests = &c["resources"]["requests"];
            assert!(
                requests["cpu"].is_string() && requests["memory"].is_string(),
                "{name}: container {} has no requests",
                c["name"]
            );
        }
    }
    // One replica: no budget. Hard anti-affinity: required. An explicit affinity wins.
    let docs = render(
        &helm,
        &[
            "scheduler.replicas=1",
            "podAntiAffinity=hard",
            "descheduler.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=edge",
            "descheduler.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=DoesNotExist",
        ],
    );
    let mut budgets: Vec<&str> = of_kind(&docs, "PodDisruptionBudget")
        .into_iter()
        .map(component)
        .collect();
    budgets.sort();
    assert_eq!(budgets, ["controller", "descheduler"]);
    for d in of_kind(&docs, "Deployment") {
        let affinity = &d["spec"]["template"]["spec"]["affinity"];
        match component(d) {
            "controller" => assert!(
                affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"]
                    == "kubernetes.io/hostname"
            ),
            "descheduler" => {
                assert!(affinity["podAntiAffinity"].is_null());
                assert!(affinity["nodeAffinity"].is_object());
            }
            "scheduler" => assert!(affinity.is_null()),
            other => panic!("{other}"),
        }
    }
}

#[test]
fn the_image_tag_follows_the_app_version() {
    let helm = helm();
    let chart: Value = serde_saphyr::from_str(&read("deploy/helm/edgeplane/Chart.yaml"))
        .unwrap_or_else(|e| panic!("Chart.yaml: {e}"));
    let app_version = chart["appVersion"].as_str().unwrap_or_default();
    assert!(!app_version.is_empty());
    // The binary the image carries has the same version.
    assert_eq!(app_version, env!("CARGO_PKG_VERSION"));
    let images = |docs: &[Value]| -> BTreeSet<String> {
        of_kind(docs, "Deployment")
            .into_iter()
            .flat_map(|d| {
                d["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|c| c["image"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        images(&render(&helm, &["netctl.enabled=true"])),
        BTreeSet::from([format!("ghcr.io/edgeplane/edgeplane:{app_version}")])
    );
    assert_eq!(
        images(&render(&helm, &["image.tag=dev"])),
        BTreeSet::from(["ghcr.io/edgeplane/edgeplane:dev".to_string()])
    );
    // The Dockerfile builds the binary of this workspace, as a non-root user.
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("cargo build --release --locked -p edgeplane"));
    assert!(dockerfile.contains("USER 65532:65532"));
    assert!(
        dockerfile.contains(&format!("ARG VERSION={app_version}")),
        "the Dockerfile labels the image with another version than {app_version}"
    );
}

#[test]
fn the_network_controller_is_found_where_the_scheduler_looks() {
    let helm = helm();
    let off = render(&helm, &[]);
    assert!(
        of_kind(&off, "Deployment")
            .iter()
            .all(|d| component(d) != "netctl"),
        "the network controller is optional and off by default"
    );
    let docs = render(&helm, &["netctl.enabled=true"]);
    let deployment = of_kind(&docs, "Deployment")
        .into_iter()
        .find(|d| component(d) == "netctl")
        .unwrap_or_else(|| panic!("no netctl Deployment"));
    assert_eq!(deployment["spec"]["replicas"], 1);
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    assert_eq!(&args[..2], ["netctl", "serve"]);
    assert!(
        args.contains(&"--listen=0.0.0.0:50052".to_string()),
        "{args:?}"
    );
    assert!(
        args.contains(&"--metrics-addr=0.0.0.0:8084".to_string()),
        "{args:?}"
    );
    let services: Vec<k8s_openapi::api::core::v1::Service> = of_kind(&docs, "Service")
        .into_iter()
        .filter(|s| {
            s["metadata"]["labels"]
                .get(edgeplane_api::names::NETWORK_CONTROLLER_LABEL)
                .is_some()
        })
        .map(|s| serde_json::from_value(s.clone()).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let (found, problems) = edgeplane_netctl::discovery::locate(None, &services);
    assert!(problems.is_empty(), "{problems:?}");
    // Mutual TLS is the default: discovery calls https:// on the port named grpcs.
    assert_eq!(
        found.map(|f| f.url),
        Some(format!("https://edgeplane-netctl.{NAMESPACE}.svc:50052"))
    );
}

/// The args of a component's first container.
fn container_args(docs: &[Value], name: &str) -> Vec<String> {
    let deployment = of_kind(docs, "Deployment")
        .into_iter()
        .find(|d| component(d) == name)
        .unwrap_or_else(|| panic!("no {name} Deployment"));
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

/// By default (tls.enabled) the network controller serves mutual TLS and its callers
/// present certificates, all from Secrets: written by Helm and renewed by the
/// controller's certificate keeper, or cert-manager Certificates when asked; discovery
/// then finds it at https://, on the port named grpcs.
#[test]
fn tls_enabled_means_mutual_tls_between_the_components() {
    let helm = helm();
    let plain = render(&helm, &["netctl.enabled=true", "tls.enabled=false"]);
    assert!(
        container_args(&plain, "netctl")
            .iter()
            .all(|a| !a.starts_with("--tls-")),
        "tls.enabled=false turns TLS off"
    );
    assert!(
        container_args(&plain, "controller")
            .iter()
            .all(|a| !a.starts_with("--grpc-certificate")),
        "nothing to keep without TLS"
    );
    let docs = render(
        &helm,
        &[
            "netctl.enabled=true",
            "tls.enabled=true",
            "tls.certManager.enabled=true",
        ],
    );
    let dir = "/etc/edgeplane/grpc-tls";
    let netctl = container_args(&docs, "netctl");
    for arg in [
        format!("--tls-cert={dir}/tls.crt"),
        format!("--tls-key={dir}/tls.key"),
        format!("--tls-client-ca={dir}/ca.crt"),
    ] {
        assert!(netctl.contains(&arg), "{arg} not in {netctl:?}");
    }
    for client in ["scheduler", "descheduler"] {
        let args = container_args(&docs, client);
        for arg in [
            format!("--grpc-ca={dir}/ca.crt"),
            format!("--grpc-cert={dir}/tls.crt"),
            format!("--grpc-key={dir}/tls.key"),
        ] {
            assert!(args.contains(&arg), "{client}: {arg} not in {args:?}");
        }
    }
    // Each Secret mounted is one a Certificate writes.
    let certificates: Vec<&Value> = of_kind(&docs, "Certificate");
    let secrets: BTreeSet<String> = certificates
        .iter()
        .filter_map(|c| c["spec"]["secretName"].as_str().map(str::to_string))
        .collect();
    for name in ["netctl", "scheduler", "descheduler"] {
        let deployment = of_kind(&docs, "Deployment")
            .into_iter()
            .find(|d| component(d) == name)
            .unwrap_or_else(|| panic!("no {name} Deployment"));
        let secret = deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(secret, format!("edgeplane-{name}-grpc-tls"));
        assert!(secrets.contains(&secret), "{secret} has no Certificate");
    }
    // The network controller's certificate names the host discovery dials.
    let netctl_certificate = certificates
        .iter()
        .find(|c| c["spec"]["secretName"] == "edgeplane-netctl-grpc-tls")
        .unwrap_or_else(|| panic!("no netctl Certificate"));
    let services: Vec<k8s_openapi::api::core::v1::Service> = of_kind(&docs, "Service")
        .into_iter()
        .filter(|s| {
            s["metadata"]["labels"]
                .get(edgeplane_api::names::NETWORK_CONTROLLER_LABEL)
                .is_some()
        })
        .map(|s| serde_json::from_value(s.clone()).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let (found, _) = edgeplane_netctl::discovery::locate(None, &services);
    let host = format!("edgeplane-netctl.{NAMESPACE}.svc");
    assert_eq!(found.map(|f| f.url), Some(format!("https://{host}:50052")));
    assert!(
        netctl_certificate["spec"]["dnsNames"]
            .as_array()
            .is_some_and(|names| names.iter().any(|n| n == host.as_str())),
        "{netctl_certificate}"
    );
    // Without cert-manager (the default) the controller's certificate keeper issues each
    // party's certificate into an empty Secret the chart creates, and keeps it renewed;
    // the parties wait for their files; nothing asks for cert-manager.
    let own = render(&helm, &["netctl.enabled=true"]);
    assert!(of_kind(&own, "Certificate").is_empty());
    let secrets: BTreeSet<String> = of_kind(&own, "Secret")
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let controller = container_args(&own, "controller");
    assert!(
        controller.contains(&"--ca-secret=edgeplane-ca".to_string()),
        "{controller:?}"
    );
    assert!(secrets.contains("edgeplane-ca"), "{secrets:?}");
    for name in ["netctl", "scheduler", "descheduler"] {
        let secret = format!("edgeplane-{name}-grpc-tls");
        assert!(
            secrets.contains(&secret),
            "{secret} is not written: {secrets:?}"
        );
        let flag = format!("--grpc-certificate={secret}=edgeplane-{name}");
        assert!(controller.contains(&flag), "{flag} not in {controller:?}");
    }
    let netctl_secret = of_kind(&own, "Secret")
        .into_iter()
        .find(|s| s["metadata"]["name"] == "edgeplane-netctl-grpc-tls")
        .unwrap_or_else(|| panic!("no netctl Secret"));
    assert!(
        netctl_secret.get("data").is_none(),
        "the chart renders no certificate (nothing random): {netctl_secret}"
    );
    assert!(container_args(&own, "netctl").contains(&"--tls-wait=10m".to_string()));
    for client in ["scheduler", "descheduler"] {
        assert!(container_args(&own, client).contains(&"--grpc-tls-wait=10m".to_string()));
    }
}

/// networkPolicy.enabled: a NetworkPolicy per component selecting its pods, letting in
/// only its ports; the network controller's gRPC only from the scheduler and the
/// descheduler, metrics only from networkPolicy.metricsFrom.
#[test]
fn network_policies_admit_only_each_components_callers() {
    let helm = helm();
    assert!(of_kind(&render(&helm, &["netctl.enabled=true"]), "NetworkPolicy").is_empty());
    let docs = render(
        &helm,
        &[
            "netctl.enabled=true",
            "networkPolicy.enabled=true",
            "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring",
        ],
    );
    let policies = of_kind(&docs, "NetworkPolicy");
    let deployments = of_kind(&docs, "Deployment");
    assert_eq!(policies.len(), deployments.len());
    let pod_labels = |name: &str| {
        deployments
            .iter()
            .find(|d| component(d) == name)
            .map(|d| d["spec"]["template"]["metadata"]["labels"].clone())
            .unwrap_or_else(|| panic!("no {name} Deployment"))
    };
    let selects = |selector: &Value, labels: &Value| {
        selector["matchLabels"]
            .as_object()
            .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| labels[k] == *v))
    };
    let metrics_from = json!([{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}]);
    for policy in &policies {
        let name = component(policy).to_string();
        assert!(
            selects(&policy["spec"]["podSelector"], &pod_labels(&name)),
            "{policy}"
        );
        assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
        let ingress = policy["spec"]["ingress"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(ingress[0]["from"], metrics_from, "{name}: metrics from");
        let ports: Vec<i64> = ingress
            .iter()
            .filter_map(|r| r["ports"][0]["port"].as_i64())
            .collect();
        match name.as_str() {
            "controller" => assert_eq!(ports, [8081, 9443]),
            "scheduler" => assert_eq!(ports, [8082]),
            "descheduler" => assert_eq!(ports, [8083]),
            "netctl" => {
                assert_eq!(ports, [8084, 50052]);
                let from = ingress[1]["from"].as_array().cloned().unwrap_or_default();
                assert_eq!(from.len(), 2);
                assert!(selects(&from[0]["podSelector"], &pod_labels("scheduler")));
                assert!(selects(&from[1]["podSelector"], &pod_labels("descheduler")));
                assert!(!selects(&from[0]["podSelector"], &pod_labels("controller")));
            }
            other => panic!("a NetworkPolicy for {other}"),
        }
    }
}

#[tokio::test]
async fn the_sample_topology_is_a_valid_network_topology() {
    let cluster = EmbeddedCluster::start(ClusterConfig::default()).await;
    let crds: Vec<Value> = edgeplane_api::crdgen::all()
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    cluster
        .apply_objects(crds)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let applied = cluster
        .load_yaml(&read("deploy/samples/networktopology.yaml"))
        .await
        .unwrap_or_else(|e| panic!("deploy/samples/networktopology.yaml was refused: {e}"));
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["metadata"]["name"], "default");
    let topology: edgeplane_api::NetworkTopology =
        serde_json::from_value(applied[0].clone()).unwrap_or_else(|e| panic!("{e}"));
    let graph = edgeplane_core::network::NetworkGraph::build(
        Some(&topology),
        &[],
        jiff::Timestamp::UNIX_EPOCH,
    );
    assert!(graph.is_ok(), "{:?}", graph.err());
    cluster.shutdown().await;
}

/// NOTES.txt, as `helm install` prints it (client-side dry run: no cluster).
fn notes(helm: &Path, set: &[&str]) -> String {
    let mut cmd = Command::new(helm);
    cmd.args(["install", "--dry-run=client", "edgeplane"])
        .arg(root().join(CHART))
        .args(["--namespace", NAMESPACE]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("running helm: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_once("NOTES:")
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| panic!("no NOTES in {text}"))
}

#[test]
fn the_notes_name_the_leases_the_sample_and_the_next_steps() {
    let helm = helm();
    let text = notes(&helm, &[]);
    // The Leases the components take (their component names).
    let leases: Vec<&str> = text
        .lines()
        .find_map(|l| l.split_once(" get lease "))
        .map(|(_, rest)| {
            rest.split_whitespace()
                .take_while(|w| w.starts_with("edgeplane-"))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        leases,
        [
            "edgeplane-controller",
            edgeplane_runtime::scheduler::COMPONENT,
            edgeplane_runtime::descheduler::COMPONENT,
        ],
        "{text}"
    );
    // Readiness through each component's metrics Service.
    for component in ["controller", "scheduler", "descheduler"] {
        assert!(
            text.contains(&format!(
                "services/edgeplane-{component}-metrics:metrics/proxy/readyz"
            )),
            "{component} readiness in\n{text}"
        );
    }
    // The sample it names exists, and is the topology it tells to look at.
    let sample = "deploy/samples/networktopology.yaml";
    assert!(text.contains(sample), "{text}");
    assert!(read(sample).contains("name: default"));
    assert!(text.contains("kubectl get ntop default"), "{text}");
    assert!(text.contains("monitoring.enabled=true"), "{text}");
    let with_monitoring = notes(&helm, &["monitoring.enabled=true"]);
    assert!(
        with_monitoring.contains("edgeplane-dashboard"),
        "{with_monitoring}"
    );
    assert!(
        with_monitoring.contains("docs/operations.md"),
        "{with_monitoring}"
    );
}
