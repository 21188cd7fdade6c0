//! Scenarios: what a simulation starts from and what happens to it.
//!
//! ```yaml
//! apiVersion: sim.edgeplane.io/v1alpha1
//! kind: Scenario
//! metadata: {name: stadium-ar}
//! spec:
//!   description: AR renderers near the users of a stadium ...
//!   duration: 45m
//!   settings: {quietPeriod: 2s, maxWait: 30s, podStartup: 3s, period: 30s, seed: 1}
//!   include: [topology.yaml, nodes.yaml, app.yaml]   # relative to the scenario file
//!   resources: []                                     # inline Kubernetes objects
//!   events:
//!   - {at: 5m,  apply: [ ...objects... ]}
//!   - {at: 10m, delete: [{apiVersion: v1, kind: Pod, namespace: default, name: x}]}
//!   - {at: 12m, setLink: {from: metro-1, to: edge-3, latency: 30ms}, note: fibre cut}
//!   - {at: 20m, failNode: edge-3-a}
//!   - {at: 25m, recoverNode: edge-3-a}
//!   - {at: 30m, scale: {kind: Deployment, namespace: default, name: ar, replicas: 8}}
//! ```
//!
//! [`load`] reads and validates a scenario completely before anything runs: every object
//! (included or inline) is decoded and validated by `edgeplane_core::manifests::decode`,
//! must be of a kind the embedded cluster serves and live in a namespace that exists, the
//! topology must build with the scenario's nodes, and every event must make sense at its
//! time (the node it fails exists and is up, the link it changes joins known sites, the
//! workload it scales was created before). Errors name the file and the field:
//!
//! `stadium-ar.yaml: spec.events[3].setLink.latency: "fast" is not a duration (...)`
//! `examples/metro/topology.yaml[0] NetworkTopology default: spec.links[2].to: unknown site ...`

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use edgeplane_api::NetworkTopology;
use edgeplane_cluster::resources::{Registry, defs_from_crd};
use edgeplane_core::manifests::{self, Document, ManifestError, Object};
use edgeplane_core::network::{NetworkGraph, NodeInfo};
use edgeplane_core::values::{self, Unit, Value as Quantity};
use serde::Deserialize;
use serde_json::Value;

/// `apiVersion` of scenario files.
pub const API_VERSION: &str = "sim.edgeplane.io/v1alpha1";
/// `kind` of scenario files.
pub const KIND: &str = "Scenario";

/// A scenario that loaded and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// `metadata.name`.
    pub name: String,
    /// `spec.description`: what the scenario shows, for the header of the run.
    pub description: String,
    /// The scenario file (as given).
    pub source: PathBuf,
    /// How much simulated time the run covers.
    pub duration: Duration,
    /// `spec.duration` as written (`45m`).
    pub duration_text: String,
    pub settings: Settings,
    /// Objects present from the start: included files in order, then `spec.resources`.
    pub objects: Vec<Value>,
    /// Events in time order (ties keep the order of the file).
    pub events: Vec<Event>,
}

/// Timing knobs. Components (the planner, the binding controller) read theirs from the
/// simulation context; the embedded cluster's kubelets use `pod_startup`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The planner plans when no new gated pod arrived for this long.
    pub quiet_period: Duration,
    /// ... or when the oldest waiting pod has waited this long.
    pub max_wait: Duration,
    /// How long a simulated kubelet takes to start a pod.
    pub pod_startup: Duration,
    /// Default re-evaluation period of bindings whose offer gives none.
    pub period: Duration,
    /// Seed of the embedded cluster's uids and generated names.
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            quiet_period: Duration::from_secs(2),
            max_wait: Duration::from_secs(30),
            pod_startup: Duration::from_secs(3),
            period: Duration::from_secs(30),
            seed: 1,
        }
    }
}

/// One thing that happens at a point of simulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Simulated time since the start.
    pub at: Duration,
    /// Position in `spec.events` (for messages).
    pub index: usize,
    /// A sentence for the timeline ("fibre cut between metro-1 and edge-1").
    pub note: Option<String>,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create or update objects (server-side apply).
    Apply(Vec<Value>),
    /// Delete objects.
    Delete(Vec<ObjectRef>),
    /// Change (or add) the link between two sites of the NetworkTopology `default`.
    SetLink(LinkChange),
    FailNode(String),
    RecoverNode(String),
    /// Set the replicas of a Deployment, StatefulSet or ReplicaSet.
    Scale(ScaleTarget),
}

impl Action {
    /// The key the action is written under.
    pub fn key(&self) -> &'static str {
        match self {
            Action::Apply(_) => "apply",
            Action::Delete(_) => "delete",
            Action::SetLink(_) => "setLink",
            Action::FailNode(_) => "failNode",
            Action::RecoverNode(_) => "recoverNode",
            Action::Scale(_) => "scale",
        }
    }
}

/// An object named by kind and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// New metrics of a link; metrics not given keep their value.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkChange {
    pub from: String,
    pub to: String,
    pub latency: Option<String>,
    pub jitter: Option<String>,
    pub bandwidth: Option<String>,
    pub loss: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScaleTarget {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub replicas: i32,
}

impl ScaleTarget {
    pub fn api_version(&self) -> &'static str {
        "apps/v1"
    }
}

/// A scenario that is not valid. Displays as `file: field: message`, or as the located
/// manifest error of an included object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file (`stadium-ar.yaml`), or a manifest location (`topology.yaml[0]`).
    pub location: String,
    /// `NetworkTopology default`, when the error is in an object.
    pub object: Option<String>,
    /// `spec.events[3].setLink.latency`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location)?;
        if let Some(object) = &self.object {
            write!(f, " {object}")?;
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScenarioError {}

impl From<ManifestError> for ScenarioError {
    fn from(e: ManifestError) -> Self {
        ScenarioError {
            location: e.location,
            object: e.object,
            field: e.field,
            message: e.message,
        }
    }
}

// ---- the file as written -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawScenario {
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<RawMeta>,
    spec: Option<RawSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // accepted for tooling, not used
    labels: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    #[serde(default)]
    description: Option<String>,
    duration: Option<Value>,
    #[serde(default)]
    settings: Option<RawSettings>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    resources: Vec<Value>,
    #[serde(default)]
    events: Vec<RawEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSettings {
    quiet_period: Option<Value>,
    max_wait: Option<Value>,
    pod_startup: Option<Value>,
    period: Option<Value>,
    seed: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawEvent {
    at: Option<Value>,
    note: Option<String>,
    apply: Option<Vec<Value>>,
    delete: Option<Vec<RawRef>>,
    set_link: Option<RawLink>,
    fail_node: Option<String>,
    recover_node: Option<String>,
    scale: Option<RawScale>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRef {
    api_version: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawLink {
    from: Option<String>,
    to: Option<String>,
    latency: Option<Value>,
    jitter: Option<Value>,
    bandwidth: Option<Value>,
    loss: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawScale {
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    replicas: Option<i64>,
}

// ---- loading -------------------------------------------------------------------------

/// Reads, decodes and validates a scenario file and the files it includes.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        location: display.clone(),
        object: None,
        field: None,
        message: format!("cannot read: {e}"),
    })?;
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    parse(&display, &text, &dir).map(|mut s| {
        s.source = path.to_path_buf();
        s
    })
}

/// Parses and validates scenario text; `source` names it in errors and `dir` is where
/// includes are resolved.
pub fn parse(source: &str, text: &str, dir: &Path) -> Result<Scenario, ScenarioError> {
    let file = FileErrors { source };
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| file.at(None, format!("invalid JSON: {e}")))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| file.at(None, format!("invalid YAML: {e}")))?
    };
    if !value.is_object() {
        return Err(file.at(
            None,
            "a scenario must be a mapping (apiVersion, kind, metadata, spec)",
        ));
    }
    let raw: RawScenario = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != "." && !path.is_empty()).then_some(path);
        file.at(field.as_deref(), e.into_inner().to_string())
    })?;
    match raw.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(other) => {
            return Err(file.at(
                Some("apiVersion"),
                format!("{other:?} is not a scenario version (expected {API_VERSION})"),
            ));
        }
        None => return Err(file.at(Some("apiVersion"), format!("is required ({API_VERSION})"))),
    }
    match raw.kind.as_deref() {
        Some(KIND) => {}
        Some(other) => {
            return Err(file.at(Some("kind"), format!("{other:?} is not {KIND:?}")));
        }
        None => return Err(file.at(Some("kind"), "is required (Scenario)")),
    }
    let name = raw.metadata.and_then(|m| m.name).unwrap_or_default();
    if name.is_empty() {
        return Err(file.at(Some("metadata.name"), "is required"));
    }
    if !edgeplane_core::validate::is_dns_label(&name) {
        return Err(file.at(
            Some("metadata.name"),
            format!(
                "{name:?} is not a valid name (lower-case letters, digits and '-', at most 63)"
            ),
        ));
    }
    let Some(spec) = raw.spec else {
        return Err(file.at(Some("spec"), "is required"));
    };
    let Some(duration_value) = &spec.duration else {
        return Err(file.at(Some("spec.duration"), "is required (for example 45m)"));
    };
    let duration = file.duration("spec.duration", duration_value)?;
    if duration.is_zero() {
        return Err(file.at(Some("spec.duration"), "must be longer than 0"));
    }
    let duration_text = scalar_text(duration_value);
    let settings = settings(&file, spec.settings)?;

    // Objects present from the start.
    let mut documents: Vec<Document> = Vec::new();
    for (i, include) in spec.include.iter().enumerate() {
        let field = format!("spec.include[{i}]");
        if include.trim().is_empty() {
            return Err(file.at(Some(&field), "is empty"));
        }
        let path = normalize(&dir.join(include));
        for f in manifest_files(&path).map_err(|m| file.at(Some(&field), m))? {
            let name = f.display().to_string();
            let text = std::fs::read_to_string(&f)
                .map_err(|e| file.at(Some(&field), format!("cannot read {name}: {e}")))?;
            documents.extend(manifests::parse_documents(&name, &text)?);
        }
    }
    for (i, value) in spec.resources.into_iter().enumerate() {
        documents.push(inline_document(source, "spec.resources", i, value)?);
    }
    let mut world = World::new();
    world.admit_batch(&documents)?;
    world.check_topology()?;
    let mut objects: Vec<Value> = documents.into_iter().map(|d| d.value).collect();
    default_periods(&mut objects, settings.period);

    // Events, validated against the world as it will be at their time.
    let mut raw_events: Vec<(usize, Duration, RawEvent)> = Vec::new();
    for (i, ev) in spec.events.into_iter().enumerate() {
        let field = format!("spec.events[{i}].at");
        let at = match &ev.at {
            Some(v) => file.duration(&field, v)?,
            None => return Err(file.at(Some(&field), "is required (for example 5m)")),
        };
        if at > duration {
            return Err(file.at(
                Some(&field),
                format!(
                    "{} is after the end of the scenario (spec.duration {duration_text})",
                    scalar_text(ev.at.as_ref().unwrap_or(&Value::Null))
                ),
            ));
        }
        raw_events.push((i, at, ev));
    }
    raw_events.sort_by_key(|(i, at, _)| (*at, *i));
    let mut events = Vec::new();
    for (index, at, ev) in raw_events {
        let action = event_action(
            &file,
            source,
            index,
            ev.apply,
            ev.delete,
            ev.set_link,
            ev.fail_node,
            ev.recover_node,
            ev.scale,
            &mut world,
        )?;
        events.push(Event {
            at,
            index,
            note: ev.note.filter(|n| !n.trim().is_empty()),
            action,
        });
    }
    for event in &mut events {
        if let Action::Apply(objects) = &mut event.action {
            default_periods(objects, settings.period);
        }
    }
    Ok(Scenario {
        name,
        description: spec.description.unwrap_or_default().trim().to_string(),
        source: PathBuf::from(source),
        duration,
        duration_text,
        settings,
        objects,
        events,
    })
}

/// Gives `spec.settings.period` to the ConstraintPolicyOffers that set no `spec.period`
/// (the offer's own default would be 30s): the binding controller re-evaluates their
/// bindings that often.
fn default_periods(objects: &mut [Value], period: Duration) {
    for object in objects {
        let is_offer = object.get("kind").and_then(Value::as_str) == Some("ConstraintPolicyOffer")
            && object
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("constraint.edgeplane.io/"));
        if !is_offer {
            continue;
        }
        if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
            spec.entry("period")
                .or_insert_with(|| Value::String(edgeplane_core::values::format_duration(period)));
        }
    }
}

struct FileErrors<'a> {
    source: &'a str,
}

impl FileErrors<'_> {
    fn at(&self, field: Option<&str>, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            location: self.source.to_string(),
            object: None,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    fn duration(&self, field: &str, value: &Value) -> Result<Duration, ScenarioError> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.as_f64() == Some(0.0) => "0".to_string(),
            other => {
                return Err(self.at(
                    Some(field),
                    format!(
                        "{} is not a duration (write a unit: 90s, 5m, 1h30m)",
                        scalar_text(other)
                    ),
                ));
            }
        };
        values::parse_duration_field(&text).map_err(|e| self.at(Some(field), e.to_string()))
    }

    fn quantity(&self, field: &str, value: &Value, unit: Unit) -> Result<String, ScenarioError> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => scalar_text(other),
        };
        Quantity::parse(&text, unit).map_err(|e| self.at(Some(field), e.to_string()))?;
        Ok(text)
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn settings(file: &FileErrors, raw: Option<RawSettings>) -> Result<Settings, ScenarioError> {
    let mut s = Settings::default();
    let Some(raw) = raw else { return Ok(s) };
    let fields: [(&str, Option<Value>, &mut Duration); 4] = [
        ("quietPeriod", raw.quiet_period, &mut s.quiet_period),
        ("maxWait", raw.max_wait, &mut s.max_wait),
        ("podStartup", raw.pod_startup, &mut s.pod_startup),
        ("period", raw.period, &mut s.period),
    ];
    for (name, value, slot) in fields {
        if let Some(v) = value {
            *slot = file.duration(&format!("spec.settings.{name}"), &v)?;
        }
    }
    if let Some(seed) = raw.seed {
        s.seed = seed;
    }
    if s.max_wait < s.quiet_period {
        return Err(file.at(
            Some("spec.settings.maxWait"),
            "must be at least spec.settings.quietPeriod",
        ));
    }
    if s.period.is_zero() {
        return Err(file.at(Some("spec.settings.period"), "must be longer than 0"));
    }
    Ok(s)
}

/// An inline object as a manifest document located in the scenario:
/// `stadium-ar.yaml: spec.resources[2]`.
fn inline_document(
    source: &str,
    list: &str,
    index: usize,
    value: Value,
) -> Result<Document, ScenarioError> {
    let doc = Document {
        source: format!("{source}: {list}"),
        index,
        value,
    };
    if !doc.value.is_object() {
        return Err(ScenarioError {
            location: doc.location(),
            object: None,
            field: None,
            message: "must be a Kubernetes object (a mapping)".into(),
        });
    }
    Ok(doc)
}

#[allow(clippy::too_many_arguments)]
fn event_action(
    file: &FileErrors,
    source: &str,
    index: usize,
    apply: Option<Vec<Value>>,
    delete: Option<Vec<RawRef>>,
    set_link: Option<RawLink>,
    fail_node: Option<String>,
    recover_node: Option<String>,
    scale: Option<RawScale>,
    world: &mut World,
) -> Result<Action, ScenarioError> {
    let base = format!("spec.events[{index}]");
    let given: Vec<&str> = [
        ("apply", apply.is_some()),
        ("delete", delete.is_some()),
        ("setLink", set_link.is_some()),
        ("failNode", fail_node.is_some()),
        ("recoverNode", recover_node.is_some()),
        ("scale", scale.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    if given.len() != 1 {
        let found = if given.is_empty() {
            "none".to_string()
        } else {
            given.join(" and ")
        };
        return Err(file.at(
            Some(&base),
            format!(
                "an event needs exactly one of apply, delete, setLink, failNode, recoverNode, scale (found {found})"
            ),
        ));
    }
    if let Some(objects) = apply {
        if objects.is_empty() {
            return Err(file.at(Some(&format!("{base}.apply")), "is empty"));
        }
        let list = format!("{base}.apply");
        let docs = objects
            .into_iter()
            .enumerate()
            .map(|(i, value)| inline_document(source, &list, i, value))
            .collect::<Result<Vec<_>, _>>()?;
        world.admit_batch(&docs)?;
        world.check_topology()?;
        return Ok(Action::Apply(docs.into_iter().map(|d| d.value).collect()));
    }
    if let Some(refs) = delete {
        if refs.is_empty() {
            return Err(file.at(Some(&format!("{base}.delete")), "is empty"));
        }
        let mut out = Vec::new();
        for (i, r) in refs.into_iter().enumerate() {
            let field = format!("{base}.delete[{i}]");
            let api_version = r
                .api_version
                .filter(|s| !s.is_empty())
                .ok_or_else(|| file.at(Some(&format!("{field}.apiVersion")), "is required"))?;
            let kind = r
                .kind
                .filter(|s| !s.is_empty())
                .ok_or_else(|| file.at(Some(&format!("{field}.kind")), "is required"))?;
            let name = r
                .name
                .filter(|s| !s.is_empty())
                .ok_or_else(|| file.at(Some(&format!("{field}.name")), "is required"))?;
            let Some(def) = world.registry.find_kind(&api_version, &kind) else {
                return Err(file.at(
                    Some(&format!("{field}.kind")),
                    format!("the embedded cluster does not serve {api_version} {kind}"),
                ));
            };
            let namespace = def.namespaced.then(|| {
                r.namespace
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "default".into())
            });
            let obj = ObjectRef {
                api_version,
                kind,
                namespace,
                name,
            };
            world.forget(&obj);
            out.push(obj);
        }
        return Ok(Action::Delete(out));
    }
    if let Some(link) = set_link {
        let field = format!("{base}.setLink");
        let from = link
            .from
            .filter(|s| !s.is_empty())
            .ok_or_else(|| file.at(Some(&format!("{field}.from")), "is required"))?;
        let to = link
            .to
            .filter(|s| !s.is_empty())
            .ok_or_else(|| file.at(Some(&format!("{field}.to")), "is required"))?;
        let metric =
            |name: &str, v: Option<Value>, unit: Unit| -> Result<Option<String>, ScenarioError> {
                v.map(|v| file.quantity(&format!("{field}.{name}"), &v, unit))
                    .transpose()
            };
        let change = LinkChange {
            latency: metric("latency", link.latency, Unit::Duration)?,
            jitter: metric("jitter", link.jitter, Unit::Duration)?,
            bandwidth: metric("bandwidth", link.bandwidth, Unit::BitRate)?,
            loss: metric("loss", link.loss, Unit::Ratio)?,
            from,
            to,
        };
        if change.latency.is_none()
            && change.jitter.is_none()
            && change.bandwidth.is_none()
            && change.loss.is_none()
        {
            return Err(file.at(
                Some(&field),
                "give at least one of latency, jitter, bandwidth, loss",
            ));
        }
        let Some(topology) = world.topology.as_ref() else {
            return Err(file.at(
                Some(&field),
                "the scenario has no NetworkTopology named \"default\" at this time",
            ));
        };
        if change.from == change.to {
            return Err(file.at(
                Some(&format!("{field}.to")),
                format!(
                    "a link joins two different sites (both ends are {:?})",
                    change.from
                ),
            ));
        }
        let sites = world.sites();
        for (end, site) in [("from", &change.from), ("to", &change.to)] {
            if !sites.contains(site.as_str()) {
                return Err(file.at(
                    Some(&format!("{field}.{end}")),
                    format!(
                        "unknown site {site:?} (known: {})",
                        sites.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        let exists = topology
            .spec
            .links
            .iter()
            .any(|l| link_matches(l, &change.from, &change.to));
        if !exists {
            if change.latency.is_none() {
                return Err(file.at(
                    Some(&format!("{field}.latency")),
                    format!(
                        "there is no link between {:?} and {:?}: give a latency to add one",
                        change.from, change.to
                    ),
                ));
            }
            // The driver adds it; later events may change it again.
            if let Some(t) = world.topology.as_mut() {
                t.spec.links.push(edgeplane_api::Link {
                    from: change.from.clone(),
                    to: change.to.clone(),
                    latency: change.latency.clone().unwrap_or_default(),
                    jitter: None,
                    bandwidth: None,
                    loss: None,
                    one_way: false,
                });
            }
        }
        return Ok(Action::SetLink(change));
    }
    if let Some(node) = fail_node {
        let field = format!("{base}.failNode");
        world.check_node(file, &field, &node)?;
        if !world.failed.insert(node.clone()) {
            return Err(file.at(Some(&field), format!("node {node:?} has already failed")));
        }
        return Ok(Action::FailNode(node));
    }
    if let Some(node) = recover_node {
        let field = format!("{base}.recoverNode");
        world.check_node(file, &field, &node)?;
        if !world.failed.remove(&node) {
            return Err(file.at(
                Some(&field),
                format!("node {node:?} has not failed (fail it first with failNode)"),
            ));
        }
        return Ok(Action::RecoverNode(node));
    }
    if let Some(s) = scale {
        let field = format!("{base}.scale");
        let kind = s
            .kind
            .filter(|k| !k.is_empty())
            .ok_or_else(|| file.at(Some(&format!("{field}.kind")), "is required"))?;
        if !matches!(kind.as_str(), "Deployment" | "StatefulSet" | "ReplicaSet") {
            return Err(file.at(
                Some(&format!("{field}.kind")),
                format!("{kind:?} cannot be scaled (expected Deployment, StatefulSet, ReplicaSet)"),
            ));
        }
        let name = s
            .name
            .filter(|k| !k.is_empty())
            .ok_or_else(|| file.at(Some(&format!("{field}.name")), "is required"))?;
        let namespace = s
            .namespace
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "default".into());
        let replicas = s
            .replicas
            .ok_or_else(|| file.at(Some(&format!("{field}.replicas")), "is required"))?;
        if !(0..=100_000).contains(&replicas) {
            return Err(file.at(
                Some(&format!("{field}.replicas")),
                format!("{replicas} is out of range (0 to 100000)"),
            ));
        }
        let target = ObjectRef {
            api_version: "apps/v1".into(),
            kind: kind.clone(),
            namespace: Some(namespace.clone()),
            name: name.clone(),
        };
        if !world.objects.contains(&target) {
            return Err(file.at(
                Some(&format!("{field}.name")),
                format!("{target} does not exist at this time (create it in spec.include, spec.resources or an earlier apply)"),
            ));
        }
        return Ok(Action::Scale(ScaleTarget {
            kind,
            namespace,
            name,
            replicas: replicas as i32,
        }));
    }
    Err(file.at(Some(&base), "an event needs an action"))
}

/// Whether a spec link joins `from` and `to` in the direction the change names (a
/// bidirectional link matches either way round).
pub fn link_matches(link: &edgeplane_api::Link, from: &str, to: &str) -> bool {
    (link.from == from && link.to == to) || (!link.one_way && link.from == to && link.to == from)
}

/// What exists at a point of the scenario, as far as the files tell: enough to reject
/// events that cannot work.
struct World {
    registry: Registry,
    namespaces: BTreeSet<String>,
    objects: BTreeSet<ObjectRef>,
    /// Nodes and their labels.
    nodes: BTreeMap<String, BTreeMap<String, String>>,
    topology: Option<NetworkTopology>,
    /// Where the topology in force was defined, for messages.
    topology_location: String,
    failed: BTreeSet<String>,
}

impl World {
    fn new() -> Self {
        let mut registry = Registry::builtin();
        for crd in edgeplane_api::crdgen::all() {
            if let Ok(v) = serde_json::to_value(&crd)
                && let Ok(defs) = defs_from_crd(&v)
            {
                registry.set_crd(&crd.metadata.name.clone().unwrap_or_default(), defs);
            }
        }
        World {
            registry,
            namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"]
                .into_iter()
                .map(String::from)
                .collect(),
            objects: BTreeSet::new(),
            nodes: BTreeMap::new(),
            topology: None,
            topology_location: String::new(),
            failed: BTreeSet::new(),
        }
    }

    /// Validates objects applied together and records them. As the cluster applies them,
    /// CustomResourceDefinitions and Namespaces go first.
    fn admit_batch(&mut self, docs: &[Document]) -> Result<(), ScenarioError> {
        let first = |d: &&Document| matches!(d.kind(), "CustomResourceDefinition" | "Namespace");
        for doc in docs.iter().filter(first) {
            self.admit(doc)?;
        }
        for doc in docs.iter().filter(|d| !first(d)) {
            self.admit(doc)?;
        }
        Ok(())
    }

    /// Validates one object and records it.
    fn admit(&mut self, doc: &Document) -> Result<(), ScenarioError> {
        let object = manifests::decode(doc)?;
        let located = |field: &str, message: String| ScenarioError {
            location: doc.location(),
            object: Some(doc.describe()),
            field: Some(field.to_string()),
            message,
        };
        let (api_version, kind) = (doc.api_version().to_string(), doc.kind().to_string());
        if kind == "CustomResourceDefinition" {
            match defs_from_crd(&doc.value) {
                Ok(defs) => {
                    let name = doc
                        .value
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    self.registry.set_crd(&name, defs);
                }
                Err(errors) => {
                    let (field, detail) = errors
                        .into_iter()
                        .next()
                        .map(|e| (e.field, e.detail))
                        .unwrap_or_else(|| ("spec".into(), "invalid".into()));
                    return Err(located(&field, detail));
                }
            }
        }
        let Some(def) = self.registry.find_kind(&api_version, &kind) else {
            return Err(located(
                "kind",
                format!(
                    "the embedded cluster does not serve {api_version} {kind} (add its CustomResourceDefinition to the scenario)"
                ),
            ));
        };
        let name = doc
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            return Err(located("metadata.name", "is required".into()));
        }
        let namespace = if def.namespaced {
            let ns = doc
                .value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("default")
                .to_string();
            if !self.namespaces.contains(&ns) {
                return Err(located(
                    "metadata.namespace",
                    format!("namespace {ns:?} does not exist (add a Namespace object before it)"),
                ));
            }
            Some(ns)
        } else {
            None
        };
        if kind == "Namespace" {
            self.namespaces.insert(name.clone());
        }
        match object {
            Object::Node(node) => {
                self.nodes.insert(
                    name.clone(),
                    node.metadata.labels.clone().unwrap_or_default(),
                );
            }
            Object::Topology(t) if name == edgeplane_core::snapshot::DEFAULT_TOPOLOGY => {
                self.topology = Some(*t);
                self.topology_location = format!("{} {}", doc.location(), doc.describe());
            }
            _ => {}
        }
        self.objects.insert(ObjectRef {
            api_version,
            kind,
            namespace,
            name,
        });
        Ok(())
    }

    fn forget(&mut self, r: &ObjectRef) {
        self.objects.remove(r);
        match r.kind.as_str() {
            "Node" => {
                self.nodes.remove(&r.name);
                self.failed.remove(&r.name);
            }
            "NetworkTopology" if r.name == edgeplane_core::snapshot::DEFAULT_TOPOLOGY => {
                self.topology = None;
            }
            "Namespace" => {
                self.namespaces.remove(&r.name);
            }
            _ => {}
        }
    }

    fn node_infos(&self) -> Vec<NodeInfo> {
        self.nodes
            .iter()
            .map(|(name, labels)| NodeInfo {
                name: name.clone(),
                labels: labels.clone(),
            })
            .collect()
    }

    /// The topology must build with the nodes (links between known sites).
    fn check_topology(&self) -> Result<(), ScenarioError> {
        let Some(t) = &self.topology else {
            return Ok(());
        };
        NetworkGraph::build(Some(t), &self.node_infos(), jiff::Timestamp::UNIX_EPOCH).map_err(
            |e| ScenarioError {
                location: self.topology_location.clone(),
                object: None,
                field: (!e.field.is_empty()).then(|| e.field.clone()),
                message: e.message.clone(),
            },
        )?;
        Ok(())
    }

    /// Sites known now: declared ones and those of nodes.
    fn sites(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let label = self
            .topology
            .as_ref()
            .map(|t| t.spec.site_label.clone())
            .unwrap_or_else(|| edgeplane_api::network::DEFAULT_SITE_LABEL.to_string());
        if let Some(t) = &self.topology {
            out.extend(t.spec.sites.iter().map(|s| s.name.clone()));
        }
        for (name, labels) in &self.nodes {
            match labels.get(&label).filter(|v| !v.is_empty()) {
                Some(site) => out.insert(site.clone()),
                None => out.insert(name.clone()),
            };
        }
        out
    }

    fn check_node(&self, file: &FileErrors, field: &str, node: &str) -> Result<(), ScenarioError> {
        if node.is_empty() {
            return Err(file.at(Some(field), "is empty"));
        }
        if !self.nodes.contains_key(node) {
            let known: Vec<&str> = self.nodes.keys().map(String::as_str).take(12).collect();
            let more = if self.nodes.len() > known.len() {
                ", ..."
            } else {
                ""
            };
            return Err(file.at(
                Some(field),
                format!("unknown node {node:?} (nodes: {}{more})", known.join(", ")),
            ));
        }
        Ok(())
    }
}

/// Removes `.` and resolvable `..` components without touching the file system, so
/// messages show `examples/metro/topology.yaml` rather than
/// `examples/scenarios/stadium-ar/../../metro/topology.yaml`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// A file, or the `.yaml`, `.yml` and `.json` files of a directory (recursively, in name
/// order).
fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            files.extend(manifest_files(&entry)?);
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            files.push(entry);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = r#"
- apiVersion: v1
  kind: Node
  metadata: {name: edge-1-a, labels: {topology.kubernetes.io/zone: edge-1}}
- apiVersion: v1
  kind: Node
  metadata: {name: metro-1-a, labels: {topology.kubernetes.io/zone: metro-1}}
- apiVersion: network.edgeplane.io/v1alpha1
  kind: NetworkTopology
  metadata: {name: default}
  spec:
    sites: [{name: stadium, transit: false}]
    links:
    - {from: edge-1, to: metro-1, latency: 2ms}
    - {from: stadium, to: edge-1, latency: 1ms}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web}
  spec:
    replicas: 2
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web}}
      spec: {containers: [{name: c, image: nginx}]}
"#;

    fn scenario(events: &str) -> String {
        format!(
            "apiVersion: sim.edgeplane.io/v1alpha1\nkind: Scenario\nmetadata: {{name: t}}\nspec:\n  duration: 10m\n  resources:\n{}\n  events:\n{events}\n",
            NODES
                .lines()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    fn err(events: &str) -> String {
        match parse("t.yaml", &scenario(events), Path::new(".")) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_valid_scenario_loads_with_events_in_time_order() {
        let s = parse(
            "t.yaml",
            &scenario(
                "  - {at: 5m, failNode: edge-1-a, note: power cut}\n  - {at: 1m, setLink: {from: metro-1, to: edge-1, latency: 30ms}}\n  - {at: 6m, recoverNode: edge-1-a}\n  - {at: 7m, scale: {kind: Deployment, name: web, replicas: 4}}\n  - {at: 8m, delete: [{apiVersion: apps/v1, kind: Deployment, name: web}]}\n  - {at: 0, apply: [{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}]}",
            ),
            Path::new("."),
        );
        let s = match s {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(s.name, "t");
        assert_eq!(s.duration, Duration::from_secs(600));
        assert_eq!(s.objects.len(), 4);
        let keys: Vec<&str> = s.events.iter().map(|e| e.action.key()).collect();
        assert_eq!(
            keys,
            [
                "apply",
                "setLink",
                "failNode",
                "recoverNode",
                "scale",
                "delete"
            ]
        );
        assert_eq!(s.events[2].note.as_deref(), Some("power cut"));
        assert_eq!(s.events[2].index, 0);
        let Action::Delete(refs) = &s.events[5].action else {
            panic!("not a delete")
        };
        assert_eq!(refs[0].namespace.as_deref(), Some("default"));
        assert_eq!(s.settings, Settings::default());
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let cases = [
            (
                "  - {at: 5m, setLink: {from: metro-1, to: edge-1, latency: fast}}",
                "t.yaml: spec.events[0].setLink.latency: \"fast\" is not a duration",
            ),
            (
                "  - {at: 5m, setLink: {from: metro-9, to: edge-1, latency: 3ms}}",
                "t.yaml: spec.events[0].setLink.from: unknown site \"metro-9\" (known: edge-1, metro-1, stadium)",
            ),
            (
                "  - {at: 5m, setLink: {from: stadium, to: metro-1, jitter: 1ms}}",
                "t.yaml: spec.events[0].setLink.latency: there is no link between \"stadium\" and \"metro-1\"",
            ),
            (
                "  - {at: 5m, failNode: edge-9-a}",
                "t.yaml: spec.events[0].failNode: unknown node \"edge-9-a\"",
            ),
            (
                "  - {at: 5m, recoverNode: edge-1-a}",
                "t.yaml: spec.events[0].recoverNode: node \"edge-1-a\" has not failed",
            ),
            (
                "  - {at: 11m, failNode: edge-1-a}",
                "t.yaml: spec.events[0].at: 11m is after the end of the scenario (spec.duration 10m)",
            ),
            (
                "  - {at: 5m, failNode: edge-1-a, recoverNode: edge-1-a}",
                "t.yaml: spec.events[0]: an event needs exactly one of apply, delete, setLink, failNode, recoverNode, scale (found failNode and recoverNode)",
            ),
            (
                "  - {at: 5m, failnode: edge-1-a}",
                "t.yaml: spec.events[0].failnode: unknown field `failnode`, expected one of `at`, `note`",
            ),
            (
                "  - {at: 5m, scale: {kind: Deployment, name: api, replicas: 3}}",
                "t.yaml: spec.events[0].scale.name: Deployment default/api does not exist at this time",
            ),
            (
                "  - {at: 5m, scale: {kind: Pod, name: api, replicas: 3}}",
                "t.yaml: spec.events[0].scale.kind: \"Pod\" cannot be scaled",
            ),
            (
                "  - {at: 5m, apply: [{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: ar}, spec: {containers: [{name: c, image: i}]}}]}",
                "t.yaml: spec.events[0].apply[0] Pod ar/p: metadata.namespace: namespace \"ar\" does not exist",
            ),
            (
                "  - {at: 5m, apply: [{apiVersion: apps/v1, kind: Deployment, metadata: {name: d}, spec: {replicas: -1, selector: {}, template: {spec: {containers: []}}}}]}",
                "t.yaml: spec.events[0].apply[0] Deployment default/d: spec.replicas: -1 is negative",
            ),
            (
                "  - {at: 5m, apply: [{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}}]}",
                "t.yaml: spec.events[0].apply[0] Widget default/w: kind: the embedded cluster does not serve example.com/v1 Widget",
            ),
            (
                "  - {at: 90, failNode: edge-1-a}",
                "t.yaml: spec.events[0].at: 90 is not a duration (write a unit",
            ),
        ];
        for (events, expected) in cases {
            let got = err(events);
            assert!(
                got.starts_with(expected),
                "events {events}\n  expected: {expected}\n  got:      {got}"
            );
        }
    }

    #[test]
    fn header_errors() {
        let cases = [
            ("kind: Scenario\n", "x.yaml: apiVersion: is required"),
            (
                "apiVersion: sim.edgeplane.io/v1\nkind: Scenario\n",
                "x.yaml: apiVersion: \"sim.edgeplane.io/v1\" is not a scenario version",
            ),
            (
                "apiVersion: sim.edgeplane.io/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec: {}\n",
                "x.yaml: spec.duration: is required",
            ),
            (
                "apiVersion: sim.edgeplane.io/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec: {duration: 1h, settings: {quietPeriod: soon}}\n",
                "x.yaml: spec.settings.quietPeriod: \"soon\" is not a duration",
            ),
            (
                "apiVersion: sim.edgeplane.io/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec: {duration: 1h, include: [nowhere.yaml]}\n",
                "x.yaml: spec.include[0]: cannot read nowhere.yaml:",
            ),
            ("a: [1\n", "x.yaml: invalid YAML"),
            ("- 1\n", "x.yaml: a scenario must be a mapping"),
        ];
        for (text, expected) in cases {
            let got = match parse("x.yaml", text, Path::new("")) {
                Ok(_) => "ok".into(),
                Err(e) => e.to_string(),
            };
            assert!(got.starts_with(expected), "expected {expected}\n got {got}");
        }
    }

    #[test]
    fn topology_errors_are_located_in_their_document() {
        let text =
            scenario("    []").replace("to: metro-1, latency: 2ms", "to: metro-7, latency: 2ms");
        let got = parse("t.yaml", &text, Path::new("."))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            got.as_deref(),
            Some(
                "t.yaml: spec.resources[2] NetworkTopology default: spec.links[0].to: unknown site \"metro-7\" (declare it in spec.sites or label a node with topology.kubernetes.io/zone=metro-7)"
            )
        );
    }

    #[test]
    fn paths_are_normalized() {
        assert_eq!(
            normalize(Path::new(
                "examples/scenarios/stadium-ar/../../metro/topology.yaml"
            )),
            PathBuf::from("examples/metro/topology.yaml")
        );
        assert_eq!(normalize(Path::new("./a/./b")), PathBuf::from("a/b"));
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
    }
}
