//! Loading: a scenario file read, its objects admitted and its events checked in time
//! order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use edgeplane_core::manifests::{self, Document, Validation};
use serde_json::Value;

use super::error::{FileErrors, ScenarioError, scalar_text};
use super::events::{Clusters, FieldCheck, event_action};
use super::expect;
use super::members;
use super::model::{API_VERSION, Action, Event, KIND, MultiCluster, Scenario, Settings};
use super::raw::{RawEvent, RawScenario, RawSettings};
use super::sources::{inline_document, normalize};
use super::world::World;
use crate::files::manifest_files;

/// Reads, decodes and validates a scenario file and the files it includes; an object
/// field its kind does not have is an error.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    load_with(path, Validation::Strict)
}

/// [`load`], with unknown fields of the objects treated as `validation` says (warnings in
/// [`Scenario::warnings`]).
pub fn load_with(path: &Path, validation: Validation) -> Result<Scenario, ScenarioError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        location: display.clone(),
        object: None,
        field: None,
        message: format!("cannot read: {e}"),
    })?;
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    parse_with(&display, &text, &dir, validation).map(|mut s| {
        s.source = path.to_path_buf();
        s
    })
}

/// Parses and validates scenario text; `source` names it in errors and `dir` is where
/// includes are resolved. Unknown fields of the objects are errors.
pub fn parse(source: &str, text: &str, dir: &Path) -> Result<Scenario, ScenarioError> {
    parse_with(source, text, dir, Validation::Strict)
}

/// [`parse`], with unknown fields treated as `validation` says.
pub fn parse_with(
    source: &str,
    text: &str,
    dir: &Path,
    validation: Validation,
) -> Result<Scenario, ScenarioError> {
    let file = FileErrors { source };
    let value: Value = manifests::parse_single(source, text)?;
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
    let expect = expect::expectations(&file, spec.expect)?;

    // Objects present from the start.
    let mut documents: Vec<Document> = Vec::new();
    for (i, include) in spec.include.iter().enumerate() {
        let field = format!("spec.include[{i}]");
        if include.trim().is_empty() {
            return Err(file.at(Some(&field), "is empty"));
        }
        let path = normalize(&dir.join(include));
        for f in manifest_files(&path).map_err(|e| file.at(Some(&field), e.to_string()))? {
            let name = f.display().to_string();
            let text = std::fs::read_to_string(&f)
                .map_err(|e| file.at(Some(&field), format!("cannot read {name}: {e}")))?;
            documents.extend(manifests::parse_documents(&name, &text)?);
        }
    }
    for (i, value) in spec.resources.into_iter().enumerate() {
        documents.push(inline_document(source, "spec.resources", i, value)?);
    }
    // A hub and its members: the objects above are the hub's.
    let mut warnings = Vec::new();
    let hub_given = spec.hub.is_some();
    let hub = members::hub_settings(&file, spec.hub)?;
    let members = match spec.clusters {
        Some(raw) => {
            let members = members::members(&file, source, dir, raw, validation, &mut warnings)?;
            documents.extend(members::member_clusters(source, &members, hub.mode)?);
            documents.extend(members::applications(source, spec.applications)?);
            Some(members)
        }
        None => {
            if !spec.applications.is_empty() {
                return Err(file.at(
                    Some("spec.applications"),
                    "MecApplications are placed by the hub: give the member clusters in spec.clusters",
                ));
            }
            if hub_given {
                return Err(file.at(
                    Some("spec.hub"),
                    "a hub needs member clusters: give them in spec.clusters",
                ));
            }
            None
        }
    };
    let documents = manifests::unique(documents)?;
    for doc in &documents {
        warnings.extend(manifests::check_fields(doc, validation)?);
    }
    let mut world = World::new();
    world.admit_batch(&documents)?;
    world.check_topology()?;
    super::functions::check_crds(&documents, &world)?;
    if let Some(members) = &members {
        members::check_sites(&file, members, &world)?;
        if hub.mode.is_karmada() {
            members::check_karmada(&file, &world)?;
        }
    }
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
    let mut fields = FieldCheck {
        validation,
        warnings,
    };
    let mut clusters = members.as_deref().map(|members| Clusters {
        members,
        failed: Default::default(),
        failed_nodes: Default::default(),
    });
    for (index, at, mut ev) in raw_events {
        let note = ev.note.take().filter(|n| !n.trim().is_empty());
        let (action, cluster) = event_action(
            &file,
            source,
            index,
            ev,
            &mut world,
            &mut fields,
            clusters.as_mut(),
        )?;
        events.push(Event {
            at,
            index,
            note,
            action,
            cluster,
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
        expect,
        warnings: fields.warnings,
        multicluster: members.map(|clusters| MultiCluster { hub, clusters }),
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

fn settings(file: &FileErrors, raw: Option<RawSettings>) -> Result<Settings, ScenarioError> {
    let mut s = Settings::default();
    let Some(raw) = raw else { return Ok(s) };
    let fields: [(&str, Option<Value>, &mut Duration); 5] = [
        ("quietPeriod", raw.quiet_period, &mut s.quiet_period),
        ("maxWait", raw.max_wait, &mut s.max_wait),
        ("podStartup", raw.pod_startup, &mut s.pod_startup),
        ("period", raw.period, &mut s.period),
        (
            "nodeMonitorGracePeriod",
            raw.node_monitor_grace_period,
            &mut s.node_monitor_grace_period,
        ),
    ];
    for (name, value, slot) in fields {
        if let Some(v) = value {
            *slot = file.duration(&format!("spec.settings.{name}"), &v)?;
        }
    }
    if let Some(seed) = raw.seed {
        s.seed = seed;
    }
    if let Some(v) = raw.default_toleration_seconds {
        s.default_toleration_seconds = v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
            file.at(
                Some("spec.settings.defaultTolerationSeconds"),
                format!("{v} is not a whole number of seconds of 0 or more"),
            )
        })?;
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
