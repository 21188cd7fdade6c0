//! Defaulting: the fields the API server fills in on every write, and on create.

use serde_json::{Map, Value, json};

use crate::resources::Builtin;

fn map_at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let mut cur = v;
    for seg in path {
        cur = cur.get_mut(*seg)?;
    }
    cur.as_object_mut()
}

fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

fn default_container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else {
        return;
    };
    set_default(m, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(m, "terminationMessagePolicy", json!("File"));
    let image = m.get("image").and_then(Value::as_str).unwrap_or("");
    let last = image.rsplit('/').next().unwrap_or("");
    let policy = if !last.contains(':') || image.ends_with(":latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    set_default(m, "imagePullPolicy", json!(policy));
    set_default(m, "resources", json!({}));
    if let Some(res) = m.get_mut("resources").and_then(Value::as_object_mut)
        && let Some(limits) = res.get("limits").and_then(Value::as_object).cloned()
    {
        let requests = res.entry("requests").or_insert_with(|| json!({}));
        if let Some(req) = requests.as_object_mut() {
            for (k, v) in limits {
                req.entry(k).or_insert(v);
            }
        }
    }
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
        }
    }
}

/// Scheme defaults of a pod spec (also applied to workload templates).
pub fn default_pod_spec(spec: &mut Value) {
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    set_default(m, "restartPolicy", json!("Always"));
    set_default(m, "terminationGracePeriodSeconds", json!(30));
    set_default(m, "dnsPolicy", json!("ClusterFirst"));
    set_default(m, "schedulerName", json!("default-scheduler"));
    set_default(m, "securityContext", json!({}));
    set_default(m, "enableServiceLinks", json!(true));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
        }
    }
}

/// The scheme defaults of a kind, applied to every write.
pub fn default(kind: Builtin, obj: &mut Value) {
    match kind {
        Builtin::Pod => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        Builtin::Deployment | Builtin::ReplicaSet | Builtin::StatefulSet | Builtin::DaemonSet => {
            if let Some(spec) = obj.get_mut("spec").and_then(|s| s.get_mut("template"))
                && let Some(ps) = spec.get_mut("spec")
            {
                default_pod_spec(ps);
            }
            let Some(spec) = map_at(obj, &["spec"]) else {
                return;
            };
            match kind {
                Builtin::Deployment => {
                    set_default(spec, "replicas", json!(1));
                    set_default(
                        spec,
                        "strategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
                    );
                    set_default(spec, "revisionHistoryLimit", json!(10));
                    set_default(spec, "progressDeadlineSeconds", json!(600));
                }
                Builtin::ReplicaSet => set_default(spec, "replicas", json!(1)),
                Builtin::StatefulSet => {
                    set_default(spec, "replicas", json!(1));
                    set_default(spec, "podManagementPolicy", json!("OrderedReady"));
                    set_default(
                        spec,
                        "updateStrategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                    );
                    set_default(spec, "revisionHistoryLimit", json!(10));
                    set_default(
                        spec,
                        "persistentVolumeClaimRetentionPolicy",
                        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                    );
                }
                _ => {
                    set_default(
                        spec,
                        "updateStrategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                    );
                    set_default(spec, "revisionHistoryLimit", json!(10));
                }
            }
        }
        Builtin::Service => {
            let Some(spec) = map_at(obj, &["spec"]) else {
                return;
            };
            set_default(spec, "type", json!("ClusterIP"));
            set_default(spec, "sessionAffinity", json!("None"));
            set_default(spec, "internalTrafficPolicy", json!("Cluster"));
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(p, "protocol", json!("TCP"));
                    if let Some(port) = p.get("port").cloned() {
                        set_default(p, "targetPort", port);
                    }
                }
            }
        }
        Builtin::Secret => {
            // stringData is write-only: merged into data, base64-encoded.
            use base64::Engine;
            let Some(m) = obj.as_object_mut() else {
                return;
            };
            if let Some(Value::Object(sd)) = m.remove("stringData") {
                let data = m.entry("data").or_insert_with(|| json!({}));
                if let Some(d) = data.as_object_mut() {
                    for (k, v) in sd {
                        if let Some(s) = v.as_str() {
                            let enc = base64::engine::general_purpose::STANDARD.encode(s);
                            d.insert(k, Value::String(enc));
                        }
                    }
                }
            }
            set_default(m, "type", json!("Opaque"));
        }
        Builtin::CustomResourceDefinition => {
            if let Some(spec) = map_at(obj, &["spec"]) {
                set_default(spec, "conversion", json!({"strategy": "None"}));
            }
        }
        _ => {}
    }
}

/// QoS class of a pod from its containers' requests and limits.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let res = c.get("resources");
        let req = res
            .and_then(|r| r.get("requests"))
            .and_then(Value::as_object);
        let lim = res.and_then(|r| r.get("limits")).and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for r in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(r));
            let q = req.and_then(|q| q.get(r));
            if l.is_none() || l != q {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// What the API server does on create besides defaulting: reset status, add admission
/// defaults.
pub fn prepare_create(kind: Builtin, obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    match kind {
        Builtin::Pod => {
            let qos = m.get("spec").map_or("BestEffort", qos_class);
            m.insert(
                "status".into(),
                json!({"phase": "Pending", "qosClass": qos}),
            );
            if let Some(spec) = m.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "priority", json!(0));
                set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
                // DefaultTolerationSeconds admission.
                let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
                if let Some(list) = tolerations.as_array_mut() {
                    for key in [
                        "node.kubernetes.io/not-ready",
                        "node.kubernetes.io/unreachable",
                    ] {
                        let present = list.iter().any(|t| {
                            t.get("key").and_then(Value::as_str) == Some(key)
                                && t.get("effect").and_then(Value::as_str) == Some("NoExecute")
                        });
                        if !present {
                            list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
                        }
                    }
                }
            }
        }
        Builtin::Deployment
        | Builtin::ReplicaSet
        | Builtin::StatefulSet
        | Builtin::DaemonSet
        | Builtin::PodDisruptionBudget => {
            m.remove("status");
        }
        Builtin::Namespace => {
            m.insert("status".into(), json!({"phase": "Active"}));
            let spec = m.entry("spec").or_insert_with(|| json!({}));
            if let Some(s) = spec.as_object_mut() {
                set_default(s, "finalizers", json!(["kubernetes"]));
            }
        }
        Builtin::Service => {
            m.insert("status".into(), json!({"loadBalancer": {}}));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::tests::gated_pod;

    #[test]
    fn pod_defaults() {
        let mut pod = gated_pod();
        default(Builtin::Pod, &mut pod);
        prepare_create(Builtin::Pod, &mut pod);
        assert_eq!(pod["spec"]["schedulerName"], "default-scheduler");
        assert_eq!(
            pod["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 2);
    }
}
