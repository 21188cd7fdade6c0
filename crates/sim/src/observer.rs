//! Watches the embedded cluster and turns what changes into timeline entries and series.
//!
//! It reads the store's change history directly (the same feed the API server's watches
//! are served from), so it sees every version of every object in the order of their
//! resourceVersions, with the object before and after each change, and costs no
//! serialization. If it ever falls behind the retained history it re-reads the current
//! state and compares it with what it knew.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use edgeplane_cluster::VirtualClock;
use edgeplane_cluster::api::ApiServer;
use edgeplane_cluster::store::{Change, ChangeKind, ObjKey, Stored};
use edgeplane_core::values::{Unit, Value as Quantity};
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::journal::{ComplianceCounts, PodCounts, SharedJournal};
use crate::lite;
use crate::series::{ActivePath, LinkUse, NodePods};
use crate::timeline::{Entry, EntryType, Source, map_reason};

pub const PODS: &str = "pods";
pub const EVENTS: &str = "events";
pub const NODES: &str = "nodes";
pub const BINDINGS: &str = "constraintpolicybindings.constraint.edgeplane.io";
pub const TOPOLOGIES: &str = "networktopologies.network.edgeplane.io";
pub const CHAINS: &str = "servicechains.network.edgeplane.io";
/// KubeVirt's migrations: served only where the scenario includes KubeVirt's CRDs (the
/// feed is then simply empty).
pub const MIGRATIONS: &str = edgeplane_cluster::kubevirt::VMIM_STORAGE;

const WATCHED: [&str; 7] = [
    EVENTS, NODES, TOPOLOGIES, PODS, BINDINGS, CHAINS, MIGRATIONS,
];

struct Feed {
    storage: &'static str,
    rx: watch::Receiver<u64>,
    pos: u64,
}

/// What matters of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct PodFacts {
    node: String,
    phase: String,
    reason: String,
    message: String,
    deleting: bool,
    controller: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodState {
    Placed,
    Pending,
    Failed,
    Done,
    /// Being deleted: not counted, even on a node (a pod the taint manager deleted stays
    /// Terminating while its node is unreachable, and its replacement is the one placed).
    Terminating,
}

impl PodFacts {
    fn of(pod: &lite::Pod) -> Self {
        PodFacts {
            node: pod.spec.node_name.clone(),
            phase: pod.status.phase.clone(),
            reason: pod.status.reason.clone(),
            message: pod.status.message.clone(),
            deleting: pod.metadata.deleting(),
            controller: pod.metadata.controller(),
        }
    }

    fn state(&self) -> PodState {
        match self.phase.as_str() {
            "Failed" => PodState::Failed,
            "Succeeded" => PodState::Done,
            _ if self.deleting => PodState::Terminating,
            _ if !self.node.is_empty() => PodState::Placed,
            _ => PodState::Pending,
        }
    }

    fn live(&self) -> bool {
        matches!(
            self.state(),
            PodState::Placed | PodState::Pending | PodState::Terminating
        )
    }
}

/// A pod that went away (failed, evicted, deleted), waiting for its replacement.
#[derive(Debug, Clone)]
struct Lost {
    name: String,
    /// `lost with edge-3-a`, `removed from edge-1-a`.
    what: String,
}

/// The observer's state; `run` consumes changes until shutdown.
pub struct Observer {
    api: Arc<ApiServer>,
    clock: VirtualClock,
    journal: SharedJournal,
    feeds: Vec<Feed>,
    pods: HashMap<ObjKey, PodFacts>,
    pod_counts: PodCounts,
    /// Node -> the pods bound to it.
    node_pods: HashMap<String, NodePods>,
    /// Binding -> its compliance.
    bindings: HashMap<ObjKey, String>,
    compliance: ComplianceCounts,
    /// Event uid -> occurrences seen.
    events: HashMap<String, u64>,
    links: HashMap<String, f64>,
    node_labels: HashMap<String, BTreeMap<String, String>>,
    site_label: String,
    /// Controller uid -> pods of it that went away, oldest first.
    lost: HashMap<String, VecDeque<Lost>>,
}

fn object_text(kind: &str, ns: &str, name: &str) -> String {
    if ns.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {ns}/{name}")
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl Observer {
    /// Starts watching now: changes written after this call are seen.
    pub fn new(api: Arc<ApiServer>, journal: SharedJournal) -> Self {
        let clock = api.clock();
        let feeds = {
            let mut st = api.lock();
            let pos = st.store.current_rv();
            WATCHED
                .iter()
                .map(|storage| Feed {
                    storage,
                    rx: st.store.subscribe(storage),
                    pos,
                })
                .collect()
        };
        Observer {
            api,
            clock,
            journal,
            feeds,
            pods: HashMap::new(),
            pod_counts: PodCounts::default(),
            node_pods: HashMap::new(),
            bindings: HashMap::new(),
            compliance: ComplianceCounts::default(),
            events: HashMap::new(),
            links: HashMap::new(),
            node_labels: HashMap::new(),
            site_label: edgeplane_api::network::DEFAULT_SITE_LABEL.to_string(),
            lost: HashMap::new(),
        }
    }

    /// Pods by state now.
    pub fn pod_counts(&self) -> PodCounts {
        self.pod_counts
    }

    /// Consumes changes until `shutdown`, then takes in what is left and returns.
    pub async fn run(mut self, shutdown: CancellationToken) -> Self {
        loop {
            self.drain();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    self.drain();
                    return self;
                }
                alive = changed(&mut self.feeds) => {
                    if !alive {
                        shutdown.cancelled().await;
                        self.drain();
                        return self;
                    }
                }
            }
        }
    }

    /// Takes in every change written since the last look, in resourceVersion order.
    pub fn drain(&mut self) {
        let mut batch: Vec<(usize, Arc<Change>)> = Vec::new();
        let mut resync: Vec<&'static str> = Vec::new();
        {
            let st = self.api.lock();
            for (i, feed) in self.feeds.iter_mut().enumerate() {
                feed.rx.borrow_and_update();
                match st.store.changes_since(feed.storage, feed.pos, usize::MAX) {
                    Ok(changes) => {
                        if let Some(last) = changes.last() {
                            feed.pos = last.rv;
                        }
                        batch.extend(changes.into_iter().map(|c| (i, c)));
                    }
                    Err(_) => {
                        feed.pos = st.store.current_rv();
                        resync.push(feed.storage);
                    }
                }
            }
        }
        batch.sort_by_key(|(_, c)| c.rv);
        let at = self.clock.elapsed();
        for (i, change) in batch {
            let storage = self.feeds[i].storage;
            self.take(storage, &change, at);
        }
        for storage in resync {
            self.resync(storage, at);
        }
    }

    fn take(&mut self, storage: &str, change: &Change, at: Duration) {
        let gone = change.kind == ChangeKind::Deleted;
        let json = change.object.json();
        match storage {
            PODS => {
                let pod: Option<lite::Pod> = (!gone).then(|| lite::decode(json));
                self.pod(&change.object.key, pod.as_ref(), at)
            }
            EVENTS if !gone => self.event(&change.object, &lite::decode(json), at),
            BINDINGS => {
                let b: Option<lite::Binding> = (!gone).then(|| lite::decode(json));
                self.binding(&change.object.key, b.as_ref(), at)
            }
            TOPOLOGIES if !gone => self.topology(&change.object.value(), at),
            CHAINS if !gone => {
                let value = change.object.value();
                self.journal
                    .lock()
                    .series
                    .chains
                    .chain(at.as_secs_f64(), &value);
            }
            MIGRATIONS if !gone => {
                let value = change.object.value();
                self.journal
                    .lock()
                    .series
                    .chains
                    .migration(at.as_secs_f64(), &value);
            }
            NODES => {
                let name = change.object.key.1.clone();
                if gone {
                    self.node_labels.remove(&name);
                    self.journal.lock().series.node_ready_at(at, &name, false);
                } else {
                    let node: lite::Node = lite::decode(json);
                    self.journal
                        .lock()
                        .series
                        .node_ready_at(at, &name, node.ready());
                    self.node_labels.insert(name, change.object.label_map());
                }
            }
            _ => {}
        }
    }

    /// Compares the current state of a storage with what is known, after missing changes.
    fn resync(&mut self, storage: &'static str, at: Duration) {
        let current: Vec<(ObjKey, Arc<Stored>)> = {
            let st = self.api.lock();
            st.store
                .range(storage, None, None)
                .map(|s| (s.key.clone(), s.clone()))
                .collect()
        };
        let keys: HashSet<ObjKey> = current.iter().map(|(k, _)| k.clone()).collect();
        match storage {
            PODS => {
                let gone: Vec<ObjKey> = self
                    .pods
                    .keys()
                    .filter(|k| !keys.contains(*k))
                    .cloned()
                    .collect();
                for k in gone {
                    self.pod(&k, None, at);
                }
                for (k, s) in current {
                    self.pod(&k, Some(&lite::decode(s.json())), at);
                }
            }
            BINDINGS => {
                let gone: Vec<ObjKey> = self
                    .bindings
                    .keys()
                    .filter(|k| !keys.contains(*k))
                    .cloned()
                    .collect();
                for k in gone {
                    self.binding(&k, None, at);
                }
                for (k, s) in current {
                    self.binding(&k, Some(&lite::decode(s.json())), at);
                }
            }
            EVENTS => {
                for (_, s) in current {
                    self.event(&s, &lite::decode(s.json()), at);
                }
            }
            TOPOLOGIES => {
                for (_, s) in current {
                    self.topology(&s.value(), at);
                }
            }
            CHAINS | MIGRATIONS => {
                let mut journal = self.journal.lock();
                for (_, s) in current {
                    let value = s.value();
                    if storage == CHAINS {
                        journal.series.chains.chain(at.as_secs_f64(), &value);
                    } else {
                        journal.series.chains.migration(at.as_secs_f64(), &value);
                    }
                }
            }
            NODES => {
                self.node_labels = current
                    .iter()
                    .map(|(k, s)| (k.1.clone(), s.label_map()))
                    .collect();
                let mut journal = self.journal.lock();
                for (k, s) in &current {
                    let node: lite::Node = lite::decode(s.json());
                    journal.series.node_ready_at(at, &k.1, node.ready());
                }
            }
            _ => {}
        }
    }

    fn site_of(&self, node: &str) -> Option<String> {
        self.node_labels
            .get(node)
            .and_then(|l| l.get(&self.site_label))
            .filter(|s| !s.is_empty())
            .cloned()
    }

    fn pod(&mut self, key: &ObjKey, new: Option<&lite::Pod>, at: Duration) {
        let before = self.pods.get(key).cloned();
        let after = new.map(PodFacts::of);
        let object = object_text("Pod", &key.0, &key.1);
        // Counts.
        fn slot(c: &mut PodCounts, s: PodState) -> Option<&mut usize> {
            match s {
                PodState::Placed => Some(&mut c.placed),
                PodState::Pending => Some(&mut c.pending),
                PodState::Failed => Some(&mut c.failed),
                PodState::Done | PodState::Terminating => None,
            }
        }
        if let Some(b) = &before
            && let Some(n) = slot(&mut self.pod_counts, b.state())
        {
            *n = n.saturating_sub(1);
        }
        if let Some(a) = &after
            && let Some(n) = slot(&mut self.pod_counts, a.state())
        {
            *n += 1;
        }
        if before.as_ref().map(PodFacts::state) != after.as_ref().map(PodFacts::state) {
            let counts = self.pod_counts;
            self.journal.lock().series.pods_at(at, counts);
        }
        self.count_on_node(before.as_ref(), after.as_ref(), at);
        let was = before.clone().unwrap_or_default();
        match &after {
            Some(now) => {
                if !now.node.is_empty() && was.node.is_empty() && now.live() {
                    let mut message = format!("-> {}", now.node);
                    if let Some(site) = self.site_of(&now.node) {
                        message.push_str(&format!(" at {site}"));
                    }
                    if let Some(owner) = &now.controller
                        && let Some(queue) = self.lost.get_mut(owner)
                        && let Some(l) = queue.pop_front()
                    {
                        if l.name == key.1 {
                            message.push_str(&format!(" (re-created; {})", l.what));
                        } else {
                            message.push_str(&format!(" (replaces {}, {})", l.name, l.what));
                        }
                    }
                    self.journal.push(
                        Entry::new(at, EntryType::Bound, object.clone(), message, Source::Watch)
                            .node(now.node.clone()),
                    );
                }
                if now.state() == PodState::Failed && was.state() != PodState::Failed {
                    let why = if now.reason.is_empty() {
                        "Failed".to_string()
                    } else {
                        now.reason.clone()
                    };
                    let mut message = format!("failed: {why}");
                    if !now.message.is_empty() {
                        message.push_str(&format!(" ({})", now.message));
                    }
                    let mut e = Entry::new(
                        at,
                        EntryType::PodFailed,
                        object.clone(),
                        message,
                        Source::Watch,
                    );
                    if !now.node.is_empty() {
                        e = e.node(now.node.clone());
                    }
                    self.journal.push(e);
                    let what = match (now.reason.as_str(), now.node.is_empty()) {
                        ("NodeLost", false) => format!("lost with {}", now.node),
                        (_, false) => format!("failed on {}", now.node),
                        (_, true) => "failed".to_string(),
                    };
                    self.remember_lost(now, &key.1, what);
                }
                if now.deleting && !was.deleting && now.live() {
                    self.remember_lost(now, &key.1, removed(now));
                }
            }
            None => {
                if let Some(b) = &before {
                    if b.live() && !b.deleting {
                        self.remember_lost(b, &key.1, removed(b));
                    }
                    let mut e = Entry::new(
                        at,
                        EntryType::Info,
                        object.clone(),
                        "deleted",
                        Source::Watch,
                    )
                    .detail(true);
                    e.reason = Some("PodDeleted".into());
                    self.journal.push(e);
                }
            }
        }
        match after {
            Some(a) => {
                self.pods.insert(key.clone(), a);
            }
            None => {
                self.pods.remove(key);
                self.journal.lock().forget(&object);
            }
        }
    }

    /// Keeps the pods of each node (placed and terminating) as a pod changes.
    fn count_on_node(&mut self, before: Option<&PodFacts>, after: Option<&PodFacts>, at: Duration) {
        fn slot<'a>(c: &'a mut NodePods, pod: &PodFacts) -> Option<&'a mut usize> {
            match pod.state() {
                PodState::Placed => Some(&mut c.placed),
                PodState::Terminating if !pod.node.is_empty() => Some(&mut c.terminating),
                _ => None,
            }
        }
        let mut touched: Vec<&str> = Vec::new();
        if let Some(b) = before
            && let Some(n) = slot(self.node_pods.entry(b.node.clone()).or_default(), b)
        {
            *n = n.saturating_sub(1);
            touched.push(&b.node);
        }
        if let Some(a) = after
            && let Some(n) = slot(self.node_pods.entry(a.node.clone()).or_default(), a)
        {
            *n += 1;
            touched.push(&a.node);
        }
        touched.dedup();
        let mut journal = self.journal.lock();
        for node in touched {
            let pods = self.node_pods.get(node).copied().unwrap_or_default();
            journal.series.node_pods_at(at, node, pods);
        }
    }

    fn remember_lost(&mut self, pod: &PodFacts, name: &str, what: String) {
        if let Some(owner) = &pod.controller {
            self.lost.entry(owner.clone()).or_default().push_back(Lost {
                name: name.to_string(),
                what,
            });
        }
    }

    fn event(&mut self, stored: &Stored, ev: &lite::Event, at: Duration) {
        let occurrences = ev.occurrences();
        let seen = self.events.get(&stored.uid).copied().unwrap_or(0);
        if occurrences <= seen {
            return;
        }
        self.events.insert(stored.uid.clone(), occurrences);
        let mapping = map_reason(&ev.reason);
        let who = &ev.involved_object;
        let object = object_text(&who.kind, &who.namespace, &who.name);
        let message = if ev.message.is_empty() {
            ev.reason.clone()
        } else {
            let start = self
                .clock
                .now()
                .checked_sub(self.clock.elapsed())
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            crate::timeline::relative_times(&ev.message, start)
        };
        let component = [
            ev.reporting_component.as_str(),
            ev.source.component.as_str(),
        ]
        .into_iter()
        .find(|c| !c.is_empty())
        .map(str::to_string);
        // An eviction is told once, by the pod's Event; the one on its binding is a detail.
        let detail = mapping.detail
            || (mapping.entry == EntryType::Evicted && who.kind != "Pod")
            || (mapping.entry == EntryType::NodeNotReady && who.kind == "Pod")
            // The binding's change is the story; the same news on each of its pods is detail.
            || (mapping.entry == EntryType::ComplianceChanged && who.kind == "Pod");
        let mut entry =
            Entry::new(at, mapping.entry, object, message, Source::Event).detail(detail);
        entry.reason = Some(ev.reason.clone());
        entry.component = component;
        entry.plan_run = mapping.plan_run;
        self.journal.push(entry);
    }

    fn binding(&mut self, key: &ObjKey, new: Option<&lite::Binding>, at: Duration) {
        let before = self.bindings.get(key).cloned();
        let object = object_text("ConstraintPolicyBinding", &key.0, &key.1);
        self.binding_history(key, new, at);
        match new {
            Some(b) => {
                let now = b.compliance().to_string();
                if before.as_deref() == Some(now.as_str()) {
                    return;
                }
                if let Some(old) = &before {
                    self.compliance.remove(old);
                }
                self.compliance.add(&now);
                let counts = self.compliance;
                self.journal.lock().series.bindings_at(at, counts);
                let from = before.clone().unwrap_or_else(|| "new".into());
                // A new binding waiting for its first evaluation is not news yet.
                if !(before.is_none() && now == "Pending") {
                    let mut message = format!("{from} -> {now}");
                    let reason = &b.status.first_reason;
                    if !reason.is_empty() {
                        message.push_str(&format!(": {reason}"));
                    }
                    self.journal.push(Entry::new(
                        at,
                        EntryType::ComplianceChanged,
                        object,
                        message,
                        Source::Watch,
                    ));
                }
                self.bindings.insert(key.clone(), now);
            }
            None => {
                if let Some(old) = before {
                    self.compliance.remove(&old);
                    let counts = self.compliance;
                    self.journal.lock().series.bindings_at(at, counts);
                    self.journal.push(
                        Entry::new(
                            at,
                            EntryType::Info,
                            object,
                            format!("deleted (was {old})"),
                            Source::Watch,
                        )
                        .detail(true),
                    );
                    self.bindings.remove(key);
                }
            }
        }
    }

    /// Records a binding's compliance and measured latency for the per-offer table and the
    /// latency chart. A deleted binding keeps the offer it had.
    fn binding_history(&mut self, key: &ObjKey, new: Option<&lite::Binding>, at: Duration) {
        let name = format!("{}/{}", key.0, key.1);
        let offer = match new {
            Some(b) => b.offer(),
            None => match self.journal.lock().series.binding_compliance.get(&name) {
                Some(h) => h.offer.clone(),
                None => return,
            },
        };
        let latency = new
            .and_then(|b| b.rule_value(edgeplane_core::rules::builtin::LATENCY))
            .and_then(latency_ms);
        let mut journal = self.journal.lock();
        journal
            .series
            .binding_compliance_at(at, &name, &offer, new.map(lite::Binding::compliance));
        journal
            .series
            .binding_latency_at(at, &name, &offer, latency);
    }

    fn topology(&mut self, t: &Value, at: Duration) {
        if str_at(t, "/metadata/name") != edgeplane_core::snapshot::DEFAULT_TOPOLOGY {
            return;
        }
        let label = str_at(t, "/spec/siteLabel");
        self.site_label = if label.is_empty() {
            edgeplane_api::network::DEFAULT_SITE_LABEL.to_string()
        } else {
            label.to_string()
        };
        let links = t
            .pointer("/spec/links")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut journal = self.journal.lock();
        for l in &links {
            let name = link_label(
                str_at(l, "/from"),
                str_at(l, "/to"),
                l.get("oneWay").and_then(Value::as_bool) == Some(true),
            );
            let Some(ms) = latency_ms(str_at(l, "/latency")) else {
                continue;
            };
            if self.links.get(&name) != Some(&ms) {
                self.links.insert(name.clone(), ms);
                journal.series.link_at(at, &name, ms);
            }
        }
        journal.series.paths_at(at, activated_paths(t));
        journal.series.bandwidth_at(at, &link_bandwidth(t));
    }
}

/// The reservations in the topology's `status.bandwidth` by directed link (`from -> to`);
/// entries whose figures do not parse are left out.
pub fn link_bandwidth(topology: &Value) -> BTreeMap<String, LinkUse> {
    let links = topology
        .pointer("/status/bandwidth")
        .cloned()
        .and_then(|v| serde_json::from_value::<Vec<edgeplane_api::LinkBandwidth>>(v).ok())
        .unwrap_or_default();
    let bps = |text: &str| {
        Quantity::parse(text, Unit::BitRate)
            .ok()
            .and_then(|v| v.magnitude())
    };
    links
        .into_iter()
        .filter_map(|l| {
            let reserved_bps = bps(&l.reserved)?;
            let capacity_bps = match l.capacity.as_deref() {
                Some(c) => Some(bps(c)?),
                None => None,
            };
            Some((
                link_label(&l.from, &l.to, true),
                LinkUse {
                    reserved_bps,
                    capacity_bps,
                },
            ))
        })
        .collect()
}

/// The paths in the topology's `status.activatedPaths`; entries that do not parse are left
/// out (the report shows what it can).
pub fn activated_paths(topology: &Value) -> Vec<ActivePath> {
    let paths = topology
        .pointer("/status/activatedPaths")
        .cloned()
        .and_then(|v| serde_json::from_value::<Vec<edgeplane_api::ActivatedPath>>(v).ok())
        .unwrap_or_default();
    paths
        .into_iter()
        .map(|p| ActivePath {
            latency_ms: latency_ms(&p.latency).unwrap_or(0.0),
            activated: format!("{}/{}", p.catalogue, p.entry),
            from: p.from,
            to: p.to,
            one_way: p.one_way,
            latency: p.latency,
            bandwidth: p.bandwidth,
            bindings: p.bindings,
        })
        .collect()
}

/// `metro-1 - edge-1`, or `stadium -> edge-1` for a one-way link.
pub fn link_label(from: &str, to: &str, one_way: bool) -> String {
    if one_way {
        format!("{from} -> {to}")
    } else {
        format!("{from} - {to}")
    }
}

/// A latency text in milliseconds.
pub fn latency_ms(text: &str) -> Option<f64> {
    Quantity::parse(text, Unit::Duration)
        .ok()
        .and_then(|v| v.magnitude())
        .map(|ns| ns / 1e6)
}

fn removed(pod: &PodFacts) -> String {
    if pod.node.is_empty() {
        "removed before it was placed".to_string()
    } else {
        format!("removed from {}", pod.node)
    }
}

/// Waits until any feed has news; false when no feed can have news any more.
async fn changed(feeds: &mut [Feed]) -> bool {
    let futs: Vec<_> = feeds.iter_mut().map(|f| Box::pin(f.rx.changed())).collect();
    if futs.is_empty() {
        return false;
    }
    let (result, _, _) = futures::future::select_all(futs).await;
    result.is_ok()
}
