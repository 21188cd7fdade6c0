//! The disruption controller: keeps each PodDisruptionBudget's status (expected, desired
//! and current healthy pods, disruptions allowed) current as pods come and go. Evictions
//! compute the same arithmetic afresh under the API server's lock, so they never act on a
//! stale status.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiServer, State, Subresource, WriteOptions};
use crate::controller::{Batch, Feed, any_changed};
use crate::object;

const PDBS: &str = "poddisruptionbudgets.policy";

fn refresh_namespace(st: &mut State, ns: &str) {
    let budgets: Vec<Arc<Value>> = st
        .store
        .range(PDBS, Some(ns), None)
        .map(|p| p.value_arc())
        .collect();
    let Some(def) = st.def_by_storage(PDBS) else {
        return;
    };
    for pdb in budgets {
        let b = st.budget(&pdb);
        let pods = st.budget_pods(&pdb);
        // Keep disrupted-pod records only for pods that still exist and are not deleted.
        let disrupted: serde_json::Map<String, Value> =
            object::get_path(&pdb, &["status", "disruptedPods"])
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter(|(name, _)| {
                            pods.iter().any(|p| {
                                object::name(p) == name.as_str()
                                    && object::deletion_timestamp(p).is_none()
                            })
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
        let now = st.now();
        let allowed = b.disruptions_allowed > 0;
        let (reason, message) = if allowed {
            ("SufficientPods", "")
        } else {
            ("InsufficientPods", "")
        };
        let old_cond = object::get_path(&pdb, &["status", "conditions"])
            .and_then(Value::as_array)
            .and_then(|cs| cs.first())
            .cloned();
        let status_word = if allowed { "True" } else { "False" };
        let transition = old_cond
            .filter(|c| c.get("status").and_then(Value::as_str) == Some(status_word))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or(json!(now));
        let generation = object::get_path(&pdb, &["metadata", "generation"])
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let mut status = json!({
            "observedGeneration": generation,
            "expectedPods": b.expected_pods,
            "desiredHealthy": b.desired_healthy,
            "currentHealthy": b.current_healthy,
            "disruptionsAllowed": b.disruptions_allowed,
            "conditions": [{"type": "DisruptionAllowed", "status": status_word, "reason": reason,
                            "message": message, "observedGeneration": generation,
                            "lastTransitionTime": transition}],
        });
        if !disrupted.is_empty() {
            status["disruptedPods"] = Value::Object(disrupted);
        }
        if pdb.get("status") == Some(&status) {
            continue;
        }
        let mut new = (*pdb).clone();
        new["status"] = status;
        let _ = st.update(
            &def,
            Some(ns),
            object::name(&pdb),
            new,
            Subresource::Status,
            &WriteOptions::manager("disruption-controller"),
        );
    }
}

/// Runs the disruption controller until shutdown.
pub(crate) async fn run(api: Arc<ApiServer>, shutdown: CancellationToken) {
    let mut feeds = vec![Feed::new(&api, PDBS), Feed::new(&api, "pods")];
    let mut dirty: BTreeSet<String> = api
        .lock()
        .store
        .range(PDBS, None, None)
        .map(|p| p.namespace().to_string())
        .collect();
    loop {
        for ns in std::mem::take(&mut dirty) {
            refresh_namespace(&mut api.lock(), &ns);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = any_changed(&mut feeds) => {}
        }
        let batches: Vec<Batch> = feeds.iter_mut().map(|f| f.fetch(&api)).collect();
        let st = api.lock();
        for batch in batches {
            match batch {
                Batch::Resync => dirty.extend(
                    st.store
                        .range(PDBS, None, None)
                        .map(|p| p.namespace().to_string()),
                ),
                Batch::Changes(changes) => {
                    for c in changes {
                        let ns = c.object.namespace();
                        if !dirty.contains(ns) && st.store.any_in_namespace(PDBS, ns) {
                            dirty.insert(ns.to_string());
                        }
                    }
                }
            }
        }
    }
}

/// Deletes events older than `ttl` every `period`, as the API server's event TTL does.
pub(crate) async fn expire_events(
    api: Arc<ApiServer>,
    ttl: std::time::Duration,
    shutdown: CancellationToken,
) {
    let period = (ttl / 12).max(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let clock = api.clock();
        let cutoff = clock.now().as_second() - ttl.as_secs() as i64;
        let mut st = api.lock();
        let old: Vec<crate::store::ObjKey> = st
            .store
            .range("events", None, None)
            .filter(|e| {
                let e = e.value();
                let t = ["lastTimestamp", "eventTime"]
                    .iter()
                    .find_map(|k| e.get(*k).and_then(Value::as_str))
                    .or_else(|| object::meta_str(&e, "creationTimestamp"))
                    .and_then(object::parse_time);
                t.is_some_and(|t| t.as_second() < cutoff)
            })
            .map(|e| e.key.clone())
            .collect();
        if let Some(def) = st.registry.find("", "v1", "events") {
            for (ns, name) in old {
                let _ = st.delete(&def, Some(&ns), &name, &Default::default());
            }
        }
    }
}
