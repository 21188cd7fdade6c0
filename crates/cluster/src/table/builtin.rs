//! The columns kubectl shows for the built-in kinds, and how their cells are computed.

use serde_json::{Value, json};

use super::col;
use crate::object;
use crate::resources::Builtin;

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    object::get_str(v, path).unwrap_or("")
}

fn i(v: &Value, path: &[&str]) -> i64 {
    object::get_path(v, path)
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn containers_images(spec: Option<&Value>) -> (String, String) {
    let cs = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = cs
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    let images: Vec<&str> = cs
        .iter()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .collect();
    (names.join(","), images.join(","))
}

fn selector_string(v: Option<&Value>) -> String {
    v.and_then(|s| crate::selector::from_api(s).ok())
        .map(|s| {
            let q = s.to_query();
            if q.is_empty() {
                "<none>".to_string()
            } else {
                q
            }
        })
        .unwrap_or_else(|| "<none>".into())
}

/// The STATUS column of a pod, computed as kubectl does.
pub fn pod_status(pod: &Value) -> String {
    let mut reason = s(pod, &["status", "phase"]).to_string();
    let r = s(pod, &["status", "reason"]);
    if !r.is_empty() {
        reason = r.to_string();
    }
    let conds = object::get_path(pod, &["status", "conditions"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if conds.iter().any(|c| {
        c.get("type").and_then(Value::as_str) == Some("PodScheduled")
            && c.get("reason").and_then(Value::as_str) == Some("SchedulingGated")
    }) {
        reason = "SchedulingGated".into();
    }
    let statuses = object::get_path(pod, &["status", "containerStatuses"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for cs in statuses.iter().rev() {
        if let Some(w) =
            object::get_str(cs, &["state", "waiting", "reason"]).filter(|w| !w.is_empty())
        {
            reason = w.to_string();
        } else if let Some(t) = object::get_path(cs, &["state", "terminated"]) {
            let tr = s(t, &["reason"]);
            reason = if tr.is_empty() {
                format!("ExitCode:{}", i(t, &["exitCode"]))
            } else {
                tr.to_string()
            };
        }
    }
    if object::deletion_timestamp(pod).is_some() {
        reason = if r == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let total = object::get_path(pod, &["spec", "containers"])
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let statuses = object::get_path(pod, &["status", "containerStatuses"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ready = statuses
        .iter()
        .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: i64 = statuses
        .iter()
        .map(|c| c.get("restartCount").and_then(Value::as_i64).unwrap_or(0))
        .sum();
    let none = |x: &str| {
        if x.is_empty() {
            "<none>".to_string()
        } else {
            x.to_string()
        }
    };
    vec![
        json!(format!("{ready}/{total}")),
        json!(pod_status(pod)),
        json!(restarts.to_string()),
        Value::Null, // age, filled by the caller
        json!(none(s(pod, &["status", "podIP"]))),
        json!(none(s(pod, &["spec", "nodeName"]))),
        json!(none(s(pod, &["status", "nominatedNodeName"]))),
        json!("<none>"),
    ]
}

fn node_cells(node: &Value) -> Vec<Value> {
    let conds = object::get_path(node, &["status", "conditions"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut status = match conds
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        .and_then(|c| c.get("status").and_then(Value::as_str))
    {
        Some("True") => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if object::get_path(node, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = object::labels(node)
        .keys()
        .filter_map(|k| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_string)
        })
        .collect();
    roles.sort();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let addr = |t: &str| {
        object::get_path(node, &["status", "addresses"])
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|x| x.get("type").and_then(Value::as_str) == Some(t))
                    .and_then(|x| x.get("address").and_then(Value::as_str))
            })
            .unwrap_or("<none>")
            .to_string()
    };
    vec![
        json!(status),
        json!(roles),
        Value::Null,
        json!(s(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(addr("InternalIP")),
        json!(addr("ExternalIP")),
        json!(s(node, &["status", "nodeInfo", "osImage"])),
        json!(s(node, &["status", "nodeInfo", "kernelVersion"])),
        json!(s(node, &["status", "nodeInfo", "containerRuntimeVersion"])),
    ]
}

/// Column definitions and a row builder for a resource: cells after the name; `Null` marks
/// the age cell, computed from creationTimestamp.
type Cells = fn(&Value) -> Vec<Value>;

pub(super) fn builtin_columns(kind: Builtin) -> (Vec<Value>, Cells) {
    match kind {
        Builtin::Pod => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Status", "string", 0),
                col("Restarts", "string", 0),
                col("Age", "string", 0),
                col("IP", "string", 1),
                col("Node", "string", 1),
                col("Nominated Node", "string", 1),
                col("Readiness Gates", "string", 1),
            ],
            pod_cells,
        ),
        Builtin::Node => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Roles", "string", 0),
                col("Age", "string", 0),
                col("Version", "string", 0),
                col("Internal-IP", "string", 1),
                col("External-IP", "string", 1),
                col("OS-Image", "string", 1),
                col("Kernel-Version", "string", 1),
                col("Container-Runtime", "string", 1),
            ],
            node_cells,
        ),
        Builtin::Namespace => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Age", "string", 0),
            ],
            |o| vec![json!(s(o, &["status", "phase"])), Value::Null],
        ),
        Builtin::Service => (
            vec![
                col("Name", "string", 0),
                col("Type", "string", 0),
                col("Cluster-IP", "string", 0),
                col("External-IP", "string", 0),
                col("Port(s)", "string", 0),
                col("Age", "string", 0),
                col("Selector", "string", 1),
            ],
            |o| {
                let ports: Vec<String> = object::get_path(o, &["spec", "ports"])
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| format!("{}/{}", i(p, &["port"]), s(p, &["protocol"])))
                            .collect()
                    })
                    .unwrap_or_default();
                let sel: Vec<String> =
                    object::string_map(object::get_path(o, &["spec", "selector"]))
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                vec![
                    json!(s(o, &["spec", "type"])),
                    json!(s(o, &["spec", "clusterIP"])),
                    json!("<none>"),
                    json!(if ports.is_empty() {
                        "<none>".into()
                    } else {
                        ports.join(",")
                    }),
                    Value::Null,
                    json!(if sel.is_empty() {
                        "<none>".into()
                    } else {
                        sel.join(",")
                    }),
                ]
            },
        ),
        Builtin::ConfigMap | Builtin::Secret => (
            vec![
                col("Name", "string", 0),
                col("Data", "integer", 0),
                col("Age", "string", 0),
            ],
            |o| {
                let n = ["data", "binaryData"]
                    .iter()
                    .filter_map(|k| o.get(*k).and_then(Value::as_object))
                    .map(|m| m.len())
                    .sum::<usize>();
                vec![json!(n), Value::Null]
            },
        ),
        Builtin::Event => (
            vec![
                col("Last Seen", "string", 0),
                col("Type", "string", 0),
                col("Reason", "string", 0),
                col("Object", "string", 0),
                col("Message", "string", 0),
            ],
            |o| {
                let obj = format!(
                    "{}/{}",
                    s(o, &["involvedObject", "kind"]).to_ascii_lowercase(),
                    s(o, &["involvedObject", "name"])
                );
                vec![
                    Value::Null,
                    json!(s(o, &["type"])),
                    json!(s(o, &["reason"])),
                    json!(obj),
                    json!(s(o, &["message"])),
                ]
            },
        ),
        Builtin::Deployment => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Up-to-date", "integer", 0),
                col("Available", "integer", 0),
                col("Age", "string", 0),
                col("Containers", "string", 1),
                col("Images", "string", 1),
                col("Selector", "string", 1),
            ],
            |o| {
                let (c, im) = containers_images(object::get_path(o, &["spec", "template", "spec"]));
                vec![
                    json!(format!(
                        "{}/{}",
                        i(o, &["status", "readyReplicas"]),
                        i(o, &["spec", "replicas"])
                    )),
                    json!(i(o, &["status", "updatedReplicas"])),
                    json!(i(o, &["status", "availableReplicas"])),
                    Value::Null,
                    json!(c),
                    json!(im),
                    json!(selector_string(object::get_path(o, &["spec", "selector"]))),
                ]
            },
        ),
        Builtin::ReplicaSet => (
            vec![
                col("Name", "string", 0),
                col("Desired", "integer", 0),
                col("Current", "integer", 0),
                col("Ready", "integer", 0),
                col("Age", "string", 0),
                col("Containers", "string", 1),
                col("Images", "string", 1),
                col("Selector", "string", 1),
            ],
            |o| {
                let (c, im) = containers_images(object::get_path(o, &["spec", "template", "spec"]));
                vec![
                    json!(i(o, &["spec", "replicas"])),
                    json!(i(o, &["status", "replicas"])),
                    json!(i(o, &["status", "readyReplicas"])),
                    Value::Null,
                    json!(c),
                    json!(im),
                    json!(selector_string(object::get_path(o, &["spec", "selector"]))),
                ]
            },
        ),
        Builtin::StatefulSet => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Age", "string", 0),
                col("Containers", "string", 1),
                col("Images", "string", 1),
            ],
            |o| {
                let (c, im) = containers_images(object::get_path(o, &["spec", "template", "spec"]));
                vec![
                    json!(format!(
                        "{}/{}",
                        i(o, &["status", "readyReplicas"]),
                        i(o, &["spec", "replicas"])
                    )),
                    Value::Null,
                    json!(c),
                    json!(im),
                ]
            },
        ),
        Builtin::DaemonSet => (
            vec![
                col("Name", "string", 0),
                col("Desired", "integer", 0),
                col("Current", "integer", 0),
                col("Ready", "integer", 0),
                col("Up-to-date", "integer", 0),
                col("Available", "integer", 0),
                col("Age", "string", 0),
            ],
            |o| {
                vec![
                    json!(i(o, &["status", "desiredNumberScheduled"])),
                    json!(i(o, &["status", "currentNumberScheduled"])),
                    json!(i(o, &["status", "numberReady"])),
                    json!(i(o, &["status", "updatedNumberScheduled"])),
                    json!(i(o, &["status", "numberAvailable"])),
                    Value::Null,
                ]
            },
        ),
        Builtin::Lease => (
            vec![
                col("Name", "string", 0),
                col("Holder", "string", 0),
                col("Age", "string", 0),
            ],
            |o| vec![json!(s(o, &["spec", "holderIdentity"])), Value::Null],
        ),
        Builtin::PodDisruptionBudget => (
            vec![
                col("Name", "string", 0),
                col("Min Available", "string", 0),
                col("Max Unavailable", "string", 0),
                col("Allowed Disruptions", "integer", 0),
                col("Age", "string", 0),
            ],
            |o| {
                let show = |k: &str| match object::get_path(o, &["spec", k]) {
                    Some(Value::String(x)) => x.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => "N/A".to_string(),
                };
                vec![
                    json!(show("minAvailable")),
                    json!(show("maxUnavailable")),
                    json!(i(o, &["status", "disruptionsAllowed"])),
                    Value::Null,
                ]
            },
        ),
        Builtin::CustomResourceDefinition => (
            vec![col("Name", "string", 0), col("Created At", "date", 0)],
            |o| {
                vec![json!(
                    object::meta_str(o, "creationTimestamp").unwrap_or("")
                )]
            },
        ),
        Builtin::ServiceAccount => (
            vec![col("Name", "string", 0), col("Age", "string", 0)],
            |_| vec![Value::Null],
        ),
        // kubectl's columns for both kinds.
        Builtin::ValidatingAdmissionPolicy => (
            vec![
                col("Name", "string", 0),
                col("Validations", "integer", 0),
                col("ParamKind", "string", 0),
                col("Age", "string", 0),
            ],
            |o| {
                let count = object::get_path(o, &["spec", "validations"])
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let param = match object::get_path(o, &["spec", "paramKind"]) {
                    Some(p) => format!("{}/{}", s(p, &["apiVersion"]), s(p, &["kind"])),
                    None => "<unset>".to_string(),
                };
                vec![json!(count), json!(param), Value::Null]
            },
        ),
        Builtin::MutatingWebhookConfiguration => (
            vec![
                col("Name", "string", 0),
                col("Webhooks", "integer", 0),
                col("Age", "string", 0),
            ],
            |o| {
                let count = object::get_path(o, &["webhooks"])
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                vec![json!(count), Value::Null]
            },
        ),
        Builtin::ValidatingAdmissionPolicyBinding => (
            vec![
                col("Name", "string", 0),
                col("PolicyName", "string", 0),
                col("ParamRef", "string", 0),
                col("Age", "string", 0),
            ],
            |o| {
                let param = match object::get_path(o, &["spec", "paramRef"]) {
                    Some(p) => s(p, &["name"]).to_string(),
                    None => "<unset>".to_string(),
                };
                vec![
                    json!(s(o, &["spec", "policyName"])),
                    json!(param),
                    Value::Null,
                ]
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_status_column() {
        let gated = json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}});
        assert_eq!(pod_status(&gated), "SchedulingGated");
        let creating = json!({"status": {"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(pod_status(&creating), "ContainerCreating");
        let deleting =
            json!({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}});
        assert_eq!(pod_status(&deleting), "Terminating");
    }
}
