//! Series over virtual time that the observer records as a run goes: counts for the charts,
//! and the histories the report's map moments, latency chart and per-offer compliance
//! table are computed from. Every series gets a new sample only when its value changes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Bindings by compliance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ComplianceCounts {
    #[serde(rename = "Pending")]
    pub pending: usize,
    #[serde(rename = "Compliant")]
    pub compliant: usize,
    #[serde(rename = "Limit")]
    pub limit: usize,
    #[serde(rename = "Violation")]
    pub violation: usize,
    #[serde(rename = "Error")]
    pub error: usize,
}

impl ComplianceCounts {
    pub fn add(&mut self, compliance: &str) {
        *self.slot(compliance) += 1;
    }

    pub fn remove(&mut self, compliance: &str) {
        let slot = self.slot(compliance);
        *slot = slot.saturating_sub(1);
    }

    fn slot(&mut self, compliance: &str) -> &mut usize {
        match compliance {
            "Compliant" => &mut self.compliant,
            "Limit" => &mut self.limit,
            "Violation" => &mut self.violation,
            "Error" => &mut self.error,
            _ => &mut self.pending,
        }
    }

    pub fn total(&self) -> usize {
        self.pending + self.compliant + self.limit + self.violation + self.error
    }
}

/// Pods by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PodCounts {
    /// Bound to a node and not failed (starting or running).
    pub placed: usize,
    /// Not bound yet (waiting at a gate or for the scheduler).
    pub pending: usize,
    /// Failed (rejected by the kubelet, or ended in error).
    pub failed: usize,
}

/// A value at a point of virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample<T> {
    /// Seconds of virtual time since the start.
    pub at: f64,
    #[serde(flatten)]
    pub value: T,
}

/// Latency of a link, for the charts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinkLatency {
    #[serde(rename = "latencyMs")]
    pub latency_ms: f64,
}

/// What bandwidth rules reserve on one direction of a link (the topology's
/// `status.bandwidth`), for the utilisation chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkUse {
    pub reserved_bps: f64,
    /// `None`: the link is unlimited.
    pub capacity_bps: Option<f64>,
}

impl LinkUse {
    /// Reserved over capacity, in percent; `None` on an unlimited link.
    pub fn percent(&self) -> Option<f64> {
        self.capacity_bps
            .filter(|c| *c > 0.0)
            .map(|c| self.reserved_bps / c * 100.0)
    }
}

/// Pods bound to one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NodePods {
    /// Placed and not being deleted.
    pub placed: usize,
    /// Being deleted (a pod the taint manager deleted stays Terminating on its lost node).
    pub terminating: usize,
}

/// A path the network controller activated (one entry of the topology's
/// `status.activatedPaths`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivePath {
    pub from: String,
    pub to: String,
    pub one_way: bool,
    pub latency: String,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<String>,
    /// `catalogue/entry`.
    pub activated: String,
    /// The bindings whose allocations keep it up, `namespace/name`.
    pub bindings: Vec<String>,
}

impl ActivePath {
    /// Names the path on the map and in the moments: its entry and its ends.
    pub fn key(&self) -> String {
        path_key(&self.activated, &self.from, &self.to)
    }
}

/// `catalogue/entry|from|to`: an activated path on the map (the page's script builds the
/// same key).
pub fn path_key(activated: &str, from: &str, to: &str) -> String {
    format!("{activated}|{from}|{to}")
}

/// The paths active from a point of virtual time on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathsSample {
    pub at: f64,
    pub paths: Vec<ActivePath>,
}

/// The latency edgeplane measured for one binding, for the latency chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencySample {
    pub at: f64,
    /// `null` once the binding has no latency value (deleted, or no longer measured).
    pub latency_ms: Option<f64>,
}

/// A binding's measured latency over time (from the `latency` rule in its status details).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BindingLatency {
    /// The offer that made the binding, `namespace/name`.
    pub offer: String,
    pub samples: Vec<LatencySample>,
}

impl BindingLatency {
    /// The latency took more than one value while the binding existed.
    pub fn changed(&self) -> bool {
        let mut values = self.samples.iter().filter_map(|s| s.latency_ms);
        values
            .next()
            .is_some_and(|first| values.any(|v| v != first))
    }
}

/// A binding's compliance over time (`None` while it does not exist), with its offer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComplianceHistory {
    pub offer: String,
    pub samples: Vec<(f64, Option<String>)>,
}

/// Series over virtual time (a new sample whenever the value changes).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    pub bindings: Vec<Sample<ComplianceCounts>>,
    pub pods: Vec<Sample<PodCounts>>,
    /// Link label (`metro-1 - edge-1`) -> latency over time; every link's first value is
    /// its value at the start.
    pub links: BTreeMap<String, Vec<Sample<LinkLatency>>>,
    /// The paths the network controller activated, whenever they change.
    pub activated_paths: Vec<PathsSample>,
    /// Directed link (`edge-1 -> stadium`) -> what bandwidth rules reserve on it, from the
    /// topology's status; absent in runs where no binding reserves bandwidth.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub link_bandwidth: BTreeMap<String, Vec<Sample<LinkUse>>>,
    /// Binding `namespace/name` -> its measured latency. The report keeps the bindings
    /// whose latency changed.
    pub binding_latency: BTreeMap<String, BindingLatency>,
    /// Binding `namespace/name` -> its compliance (the report sums it per offer).
    #[serde(skip)]
    pub binding_compliance: BTreeMap<String, ComplianceHistory>,
    /// Node -> its Ready condition is `True` (the map's moments read it).
    #[serde(skip)]
    pub node_ready: BTreeMap<String, Vec<(f64, bool)>>,
    /// Node -> the pods bound to it (the map's moments read it).
    #[serde(skip)]
    pub node_pods: BTreeMap<String, Vec<Sample<NodePods>>>,
    /// Service chains' lanes and their VM hops' migrations (the report's `chains`).
    #[serde(skip)]
    pub chains: crate::chains::Chains,
}

/// Appends `value` at `at` unless it is the last value; a second value at the same instant
/// replaces the first (and goes away if it brings back the value before it).
fn push_changed<T: PartialEq>(list: &mut Vec<(f64, T)>, at: Duration, value: T) {
    let at = at.as_secs_f64();
    match list.last_mut() {
        Some(last) if last.1 == value => {}
        Some(last) if last.0 == at => {
            last.1 = value;
            let n = list.len();
            if n >= 2 && list[n - 2].1 == list[n - 1].1 {
                list.pop();
            }
        }
        _ => list.push((at, value)),
    }
}

fn push_sample<T: PartialEq + Copy>(list: &mut Vec<Sample<T>>, at: Duration, value: T) {
    let at = at.as_secs_f64();
    match list.last_mut() {
        Some(last) if last.value == value => {}
        Some(last) if last.at == at => {
            last.value = value;
            let n = list.len();
            if n >= 2 && list[n - 2].value == list[n - 1].value {
                list.pop();
            }
        }
        _ => list.push(Sample { at, value }),
    }
}

impl Series {
    pub fn bindings_at(&mut self, at: Duration, counts: ComplianceCounts) {
        push_sample(&mut self.bindings, at, counts);
    }

    pub fn pods_at(&mut self, at: Duration, counts: PodCounts) {
        push_sample(&mut self.pods, at, counts);
    }

    pub fn link_at(&mut self, at: Duration, link: &str, latency_ms: f64) {
        let list = self.links.entry(link.to_string()).or_default();
        push_sample(list, at, LinkLatency { latency_ms });
    }

    /// The reservations on every directed link of the topology's status; a link that left
    /// it (nothing reserved there any more) drops to 0.
    pub fn bandwidth_at(&mut self, at: Duration, links: &BTreeMap<String, LinkUse>) {
        for (link, list) in self.link_bandwidth.iter_mut() {
            if !links.contains_key(link)
                && let Some(last) = list.last().map(|s| s.value)
            {
                push_sample(
                    list,
                    at,
                    LinkUse {
                        reserved_bps: 0.0,
                        ..last
                    },
                );
            }
        }
        for (link, value) in links {
            let list = self.link_bandwidth.entry(link.clone()).or_default();
            push_sample(list, at, *value);
        }
    }

    pub fn paths_at(&mut self, at: Duration, paths: Vec<ActivePath>) {
        let seconds = at.as_secs_f64();
        match self.activated_paths.last_mut() {
            Some(last) if last.paths == paths => {}
            Some(last) if last.at == seconds => last.paths = paths,
            None if paths.is_empty() => {}
            _ => self
                .activated_paths
                .push(PathsSample { at: seconds, paths }),
        }
    }

    pub fn binding_latency_at(
        &mut self,
        at: Duration,
        binding: &str,
        offer: &str,
        latency_ms: Option<f64>,
    ) {
        let entry = self.binding_latency.entry(binding.to_string()).or_default();
        if entry.samples.is_empty() && latency_ms.is_none() {
            // Nothing measured yet: no line to start.
            self.binding_latency.remove(binding);
            return;
        }
        entry.offer = offer.to_string();
        let seconds = at.as_secs_f64();
        match entry.samples.last_mut() {
            Some(last) if last.latency_ms == latency_ms => {}
            Some(last) if last.at == seconds => last.latency_ms = latency_ms,
            _ => entry.samples.push(LatencySample {
                at: seconds,
                latency_ms,
            }),
        }
    }

    pub fn binding_compliance_at(
        &mut self,
        at: Duration,
        binding: &str,
        offer: &str,
        compliance: Option<&str>,
    ) {
        let history = self
            .binding_compliance
            .entry(binding.to_string())
            .or_default();
        history.offer = offer.to_string();
        push_changed(&mut history.samples, at, compliance.map(str::to_string));
    }

    pub fn node_ready_at(&mut self, at: Duration, node: &str, ready: bool) {
        push_changed(
            self.node_ready.entry(node.to_string()).or_default(),
            at,
            ready,
        );
    }

    pub fn node_pods_at(&mut self, at: Duration, node: &str, pods: NodePods) {
        push_sample(
            self.node_pods.entry(node.to_string()).or_default(),
            at,
            pods,
        );
    }
}

/// The value of a step series at `at` (its last sample at or before it).
pub fn value_at<T: Copy>(samples: &[(f64, T)], at: f64) -> Option<T> {
    let i = samples.partition_point(|s| s.0 <= at);
    (i > 0).then(|| samples[i - 1].1)
}

/// The value of a series of samples at `at` (its last sample at or before it).
pub fn sample_at<T: Copy>(samples: &[Sample<T>], at: f64) -> Option<T> {
    let i = samples.partition_point(|s| s.at <= at);
    (i > 0).then(|| samples[i - 1].value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn samples_are_taken_on_change_and_the_last_of_an_instant_wins() {
        let mut s = Series::default();
        s.node_ready_at(secs(0), "n", true);
        s.node_ready_at(secs(5), "n", true);
        s.node_ready_at(secs(50), "n", false);
        s.node_ready_at(secs(60), "n", true);
        s.node_ready_at(secs(60), "n", false);
        assert_eq!(s.node_ready["n"], [(0.0, true), (50.0, false)]);
        assert_eq!(value_at(&s.node_ready["n"], 49.9), Some(true));
        assert_eq!(value_at(&s.node_ready["n"], 50.0), Some(false));
        assert_eq!(value_at(&s.node_ready["n"], -1.0), None);
    }

    #[test]
    fn a_binding_latency_changes_only_with_a_second_value() {
        let mut s = Series::default();
        s.binding_latency_at(secs(1), "ns/b", "ns/o", None);
        assert!(s.binding_latency.is_empty(), "nothing measured: no line");
        s.binding_latency_at(secs(2), "ns/b", "ns/o", Some(2.0));
        s.binding_latency_at(secs(30), "ns/b", "ns/o", Some(2.0));
        assert!(!s.binding_latency["ns/b"].changed());
        s.binding_latency_at(secs(40), "ns/b", "ns/o", None);
        assert!(
            !s.binding_latency["ns/b"].changed(),
            "a deletion is no value"
        );
        s.binding_latency_at(secs(60), "ns/b", "ns/o", Some(12.0));
        assert!(s.binding_latency["ns/b"].changed());
        assert_eq!(s.binding_latency["ns/b"].samples.len(), 3);
    }

    #[test]
    fn activated_paths_start_with_the_first_activation() {
        let mut s = Series::default();
        s.paths_at(secs(0), Vec::new());
        assert!(s.activated_paths.is_empty());
        let path = ActivePath {
            from: "a".into(),
            to: "b".into(),
            one_way: false,
            latency: "3ms".into(),
            latency_ms: 3.0,
            bandwidth: None,
            activated: "default/backup".into(),
            bindings: vec!["ns/b".into()],
        };
        s.paths_at(secs(10), vec![path.clone()]);
        s.paths_at(secs(11), vec![path.clone()]);
        s.paths_at(secs(20), Vec::new());
        assert_eq!(s.activated_paths.len(), 2);
        assert_eq!(path.key(), "default/backup|a|b");
    }
}
