//! Karmada's own scheduler, as far as the hub's karmada-policy mode needs it: the
//! `spec.clusters` of a ResourceBinding that Karmada schedules itself (no
//! `schedulerName`, or `default-scheduler`), from the binding's `spec.placement` as the
//! plain PropagationPolicy gave it (docs/simulator.md, "Many clusters").
//!
//! Following Karmada's scheduler (`pkg/scheduler/core`, `pkg/util/helper`):
//!
//! - the candidates are the Ready clusters that `clusterAffinity.clusterNames` names
//!   (every Ready cluster without it);
//! - `replicaScheduling` absent or `Duplicated`: every candidate gets all the replicas;
//! - `Divided` by static weights: a candidate's weight is the largest `weight` of the
//!   `staticWeightList` entries whose `targetCluster` matches it; candidates without one
//!   are left out; when no candidate has a weight (or there is no `weightPreference`)
//!   every candidate weighs 1. The replicas are apportioned by the Webster (Sainte-Laguë)
//!   method: one at a time to the cluster with the largest `weight / (2 * replicas + 1)`;
//!   a tie goes to the cluster with fewer replicas, then by name, ascending or
//!   descending as the FNV-1a hash of the workload's uid is even or odd; clusters left
//!   with none are dropped.
//!
//! Not simulated: other affinity fields (label and field selectors, exclusions), spread
//! constraints, the dynamic divisions (`Aggregated`, `dynamicWeight`: divided here as by
//! equal static weights) and the scheduler's steady mode keeping earlier results.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Whether Karmada's own scheduler schedules the binding.
pub fn is_karmadas(binding: &Value) -> bool {
    matches!(
        binding
            .pointer("/spec/schedulerName")
            .and_then(Value::as_str),
        None | Some("") | Some("default-scheduler")
    )
}

/// Whether a `targetCluster` (a ClusterAffinity) matches `cluster`, by its
/// `clusterNames` (absent: every cluster, as an empty affinity does in Karmada).
fn matches(affinity: &Value, cluster: &str) -> bool {
    match affinity.get("clusterNames").and_then(Value::as_array) {
        Some(names) => names.iter().any(|n| n.as_str() == Some(cluster)),
        None => true,
    }
}

/// 32-bit FNV-1a, the hash Karmada's tie-breaker reads the workload's uid with.
fn fnv1a32(text: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Apportions `replicas` over `weights` (cluster -> weight > 0) by the Webster method.
fn webster(replicas: u32, weights: &BTreeMap<String, i64>, uid: &str) -> BTreeMap<String, u32> {
    let descending = !uid.is_empty() && fnv1a32(uid) & 1 == 1;
    let mut seats: BTreeMap<&str, u32> = weights.keys().map(|k| (k.as_str(), 0)).collect();
    for _ in 0..replicas {
        let best = weights.iter().max_by(|(a, wa), (b, wb)| {
            let (sa, sb) = (seats[a.as_str()], seats[b.as_str()]);
            // wa / (2 sa + 1) against wb / (2 sb + 1), exactly.
            let left = i128::from(**wa) * i128::from(2 * sb + 1);
            let right = i128::from(**wb) * i128::from(2 * sa + 1);
            left.cmp(&right).then_with(|| sb.cmp(&sa)).then_with(|| {
                let by_name = b.cmp(a);
                if descending {
                    by_name.reverse()
                } else {
                    by_name
                }
            })
        });
        if let Some((name, _)) = best
            && let Some(n) = seats.get_mut(name.as_str())
        {
            *n += 1;
        }
    }
    seats
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), n))
        .collect()
}

/// The `spec.clusters` Karmada's scheduler gives `binding` with `ready` clusters (by
/// Karmada cluster name), in name order.
pub fn schedule(binding: &Value, ready: &[String]) -> Vec<Value> {
    let placement = binding
        .pointer("/spec/placement")
        .cloned()
        .unwrap_or(Value::Null);
    let candidates: Vec<&String> = ready
        .iter()
        .filter(|c| match placement.get("clusterAffinity") {
            Some(affinity) => matches(affinity, c),
            None => true,
        })
        .collect();
    let replicas = binding
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);
    let scheduling = placement.get("replicaScheduling");
    let divided = scheduling
        .and_then(|s| s.get("replicaSchedulingType"))
        .and_then(Value::as_str)
        == Some("Divided");
    let mut out: BTreeMap<String, u32> = BTreeMap::new();
    if divided {
        let rules = scheduling
            .and_then(|s| s.pointer("/weightPreference/staticWeightList"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut weights: BTreeMap<String, i64> = candidates
            .iter()
            .filter_map(|c| {
                let w = rules
                    .iter()
                    .filter(|r| r.get("targetCluster").is_some_and(|t| matches(t, c)))
                    .filter_map(|r| r.get("weight").and_then(Value::as_i64))
                    .max()
                    .unwrap_or(0);
                (w > 0).then(|| ((*c).clone(), w))
            })
            .collect();
        if weights.is_empty() {
            weights = candidates.iter().map(|c| ((*c).clone(), 1)).collect();
        }
        let uid = binding
            .pointer("/spec/resource/uid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        out = webster(replicas, &weights, uid);
    } else if replicas > 0 {
        out = candidates
            .iter()
            .map(|c| ((*c).clone(), replicas))
            .collect();
    }
    out.into_iter()
        .map(|(name, n)| json!({"name": name, "replicas": n}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn binding(replicas: u32, uid: &str, placement: Value) -> Value {
        json!({"spec": {"replicas": replicas, "resource": {"uid": uid}, "placement": placement}})
    }

    fn weighted(list: Value) -> Value {
        json!({"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
               "weightPreference": {"staticWeightList": list}})
    }

    fn clusters(pairs: &[(&str, u32)]) -> Vec<Value> {
        pairs
            .iter()
            .map(|(n, r)| json!({"name": n, "replicas": r}))
            .collect()
    }

    #[test]
    fn the_hubs_weights_divide_the_replicas_exactly_as_planned() {
        // What karmada::propagation_policies writes for a share of 4 and 2.
        let b = binding(
            6,
            "u",
            json!({"clusterAffinity": {"clusterNames": ["edge-east", "edge-west"]},
                   "replicaScheduling": weighted(json!([
                       {"targetCluster": {"clusterNames": ["edge-east"]}, "weight": 4},
                       {"targetCluster": {"clusterNames": ["edge-west"]}, "weight": 2}]))}),
        );
        assert_eq!(
            schedule(&b, &ready(&["edge-east", "edge-west", "metro-1"])),
            clusters(&[("edge-east", 4), ("edge-west", 2)])
        );
        // A cluster the affinity names that is not Ready gets nothing.
        assert_eq!(
            schedule(&b, &ready(&["edge-west", "metro-1"])),
            clusters(&[("edge-west", 6)])
        );
    }

    #[test]
    fn webster_apportions_as_karmadas_examples_say() {
        // Karmada's assignByStaticWeightStrategy: 9 replicas at 1:2 -> 3:6; at 1:3 -> 2:7.
        let list = |a: i64, b: i64| {
            weighted(json!([
                {"targetCluster": {"clusterNames": ["a"]}, "weight": a},
                {"targetCluster": {"clusterNames": ["b"]}, "weight": b}]))
        };
        let two = ready(&["a", "b"]);
        let b = binding(9, "", json!({"replicaScheduling": list(1, 2)}));
        assert_eq!(schedule(&b, &two), clusters(&[("a", 3), ("b", 6)]));
        let b = binding(9, "", json!({"replicaScheduling": list(1, 3)}));
        assert_eq!(schedule(&b, &two), clusters(&[("a", 2), ("b", 7)]));
        // 5 at 1:1: the tie goes by name, ascending without a uid ...
        let b = binding(5, "", json!({"replicaScheduling": list(1, 1)}));
        assert_eq!(schedule(&b, &two), clusters(&[("a", 3), ("b", 2)]));
        // ... and descending for a uid whose FNV-1a hash is odd.
        let odd = (0..100)
            .map(|i| format!("uid-{i}"))
            .find(|u| fnv1a32(u) & 1 == 1)
            .unwrap_or_default();
        let b = binding(5, &odd, json!({"replicaScheduling": list(1, 1)}));
        assert_eq!(schedule(&b, &two), clusters(&[("a", 2), ("b", 3)]));
        // 1 replica at 1:1:1: one cluster, the others dropped.
        let b = binding(1, "", json!({"replicaScheduling": weighted(json!([]))}));
        assert_eq!(
            schedule(&b, &ready(&["a", "b", "c"])),
            clusters(&[("a", 1)])
        );
    }

    #[test]
    fn weights_take_the_largest_matching_entry_and_default_to_one() {
        let b = binding(
            4,
            "",
            json!({"replicaScheduling": weighted(json!([
                {"targetCluster": {"clusterNames": ["a", "b"]}, "weight": 1},
                {"targetCluster": {"clusterNames": ["a"]}, "weight": 3}]))}),
        );
        // c has no weight: left out.
        assert_eq!(
            schedule(&b, &ready(&["a", "b", "c"])),
            clusters(&[("a", 3), ("b", 1)])
        );
        // No candidate with a weight: all weigh 1.
        let b = binding(
            4,
            "",
            json!({"replicaScheduling": weighted(json!([
                {"targetCluster": {"clusterNames": ["z"]}, "weight": 5}]))}),
        );
        assert_eq!(
            schedule(&b, &ready(&["a", "b"])),
            clusters(&[("a", 2), ("b", 2)])
        );
    }

    #[test]
    fn duplicated_gives_every_candidate_all_replicas() {
        let b = binding(
            3,
            "",
            json!({"clusterAffinity": {"clusterNames": ["a", "c"]}}),
        );
        assert_eq!(
            schedule(&b, &ready(&["a", "b", "c"])),
            clusters(&[("a", 3), ("c", 3)])
        );
        assert!(is_karmadas(&b));
        assert!(!is_karmadas(
            &json!({"spec": {"schedulerName": "edgeplane"}})
        ));
    }
}
