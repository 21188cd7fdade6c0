//! The API server's semantics over the store: get, list, create, update, patch, delete,
//! the status and scale subresources, pods/binding and pods/eviction, owner-reference
//! garbage collection, finalizers, graceful pod deletion and namespace termination.
//!
//! Everything happens under one lock, so each request is atomic and a rejected request
//! leaves the store exactly as it was. Objects go in and out in their served shape; the
//! HTTP layer and the in-process controllers both call these functions.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use serde_json::{Value, json};

use crate::builtin;
use crate::clock::VirtualClock;
use crate::error::{ApiError, FieldError, qualified};
use crate::events;
use crate::object::{self, format_time};
use crate::patch::{self, FieldSet, Shape};
use crate::pdb;
use crate::resources::{Builtin, Registry, Repr, ResourceDef, defs_from_crd};
use crate::schema;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ObjKey, Store, Stored};

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
}

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// `fieldManager`; defaults to the user agent, then `unknown`.
    pub field_manager: Option<String>,
    /// `fieldValidation=Strict`: unknown fields of custom resources are an error.
    pub strict: bool,
}

impl WriteOptions {
    /// Options for an in-process writer (the simulated kubelet, scheduler, ...).
    pub fn manager(name: &str) -> Self {
        WriteOptions {
            field_manager: Some(name.to_string()),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    #[default]
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (or the fields of an Eviction's `deleteOptions`).
    pub fn from_value(v: &Value) -> Result<Self, ApiError> {
        let mut opts = DeleteOptions::default();
        if v.is_null() {
            return Ok(opts);
        }
        if !v.is_object() {
            return Err(ApiError::bad_request("DeleteOptions must be an object"));
        }
        if let Some(g) = v.get("gracePeriodSeconds").filter(|g| !g.is_null()) {
            opts.grace_period_seconds =
                Some(g.as_i64().ok_or_else(|| {
                    ApiError::bad_request("gracePeriodSeconds must be an integer")
                })?);
        }
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            opts.propagation = Some(parse_propagation(p)?);
        }
        if v.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            opts.propagation = Some(Propagation::Orphan);
        }
        if let Some(pre) = v.get("preconditions") {
            opts.precondition_uid = pre.get("uid").and_then(Value::as_str).map(str::to_string);
            opts.precondition_resource_version = pre
                .get("resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        if let Some(dr) = v.get("dryRun").and_then(Value::as_array) {
            opts.dry_run = dr.iter().any(|x| x.as_str() == Some("All"));
        }
        Ok(opts)
    }
}

pub fn parse_propagation(p: &str) -> Result<Propagation, ApiError> {
    match p {
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        "Orphan" => Ok(Propagation::Orphan),
        other => Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
        ))),
    }
}

/// What a delete did.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object is gone (its last state).
    Gone(Arc<Value>),
    /// Deletion started; finalizers or a grace period hold the object for now.
    Pending(Arc<Value>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply { force: bool },
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchType::Apply { force: false })
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub version_match: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ListResult {
    /// Items as stored (serve them with `served_value`, or as text when
    /// `served_natively`).
    pub items: Vec<Arc<Stored>>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<u64>,
}

enum ManagerOp {
    Update,
    Apply(FieldSet),
}

/// Namespaces every cluster starts with; they cannot be deleted.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// How deep an update's field set is recorded in managedFields: top-level fields of
/// `spec`, `status` and `metadata` (deeper changes are owned as a subtree). Apply entries
/// are exact; updates are coarse, which keeps managedFields small on the thousands of pods
/// a simulation writes (and in every client's cache) and can only make server-side apply
/// keep a field, never drop one another manager set.
const UPDATE_FIELDS_DEPTH: usize = 2;

/// The shape of a resource for list merge semantics.
pub fn shape_of(def: &ResourceDef) -> Shape<'_> {
    match (&def.builtin, &def.crd) {
        (Some(b), _) => Shape::Builtin(*b),
        (None, Some((_, v))) => v.schema.as_ref().map_or(Shape::Opaque, Shape::Schema),
        _ => Shape::Opaque,
    }
}

/// The object as served by `def`: its apiVersion, and for `events.k8s.io` the event shape.
pub fn to_served(def: &ResourceDef, obj: &Arc<Value>) -> Arc<Value> {
    match def.repr {
        Repr::EventsV1 => Arc::new(events::core_to_v1(obj)),
        Repr::Native => {
            let want = def.api_version();
            if obj.get("apiVersion").and_then(Value::as_str) == Some(want.as_str()) {
                obj.clone()
            } else {
                let mut v = (**obj).clone();
                if let Some(m) = v.as_object_mut() {
                    m.insert("apiVersion".into(), Value::String(want));
                }
                Arc::new(v)
            }
        }
    }
}

fn from_served(def: &ResourceDef, obj: Value) -> Value {
    match def.repr {
        Repr::EventsV1 => events::v1_to_core(&obj),
        Repr::Native => obj,
    }
}

/// The value of a selectable field, as a field selector compares it.
pub fn field_value(obj: &Value, field: &str) -> Option<String> {
    if field == "source" {
        return obj
            .get("source")
            .and_then(|s| s.get("component"))
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let mut cur = obj;
    for seg in field.split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => {
                return matches!(field, "spec.unschedulable" | "spec.hostNetwork")
                    .then(|| "false".to_string());
            }
        }
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether a stored object can be served as its stored text (no conversion).
pub fn served_natively(def: &ResourceDef, s: &Stored) -> bool {
    def.repr == Repr::Native && s.api_version == def.api_version()
}

/// A stored object in its served shape.
pub fn served_value(def: &ResourceDef, s: &Stored) -> Arc<Value> {
    to_served(def, &s.value_arc())
}

/// Whether a stored object passes selectors; parses it only for field selectors on fields
/// the store does not index.
pub fn stored_selected(
    def: &ResourceDef,
    s: &Stored,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> bool {
    if !labels.matches_pairs(&s.labels) {
        return false;
    }
    if fields.is_empty() {
        return true;
    }
    let indexed = |f: &str| match f {
        "metadata.name" => Some(s.name().to_string()),
        "metadata.namespace" => Some(s.namespace().to_string()),
        "spec.nodeName" if def.builtin == Some(Builtin::Pod) => Some(s.node_name.clone()),
        _ => None,
    };
    if fields
        .requirements
        .iter()
        .all(|r| indexed(&r.field).is_some())
    {
        return fields.matches(indexed);
    }
    let v = served_value(def, s);
    fields.matches(|f| field_value(&v, f))
}

fn labels_match(sel: &LabelSelector, obj: &Value) -> bool {
    sel.is_empty() || sel.matches(&object::labels(obj))
}

/// Whether a served object passes a list or watch's selectors.
pub fn selected(obj: &Value, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    labels_match(labels, obj) && (fields.is_empty() || fields.matches(|f| field_value(obj, f)))
}

/// Checks the field selector names only fields the resource supports.
pub fn check_fields(def: &ResourceDef, fields: &FieldSelector) -> Result<(), ApiError> {
    for r in &fields.requirements {
        if !def.supports_field(&r.field) {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {}",
                r.field
            )));
        }
    }
    Ok(())
}

fn encode_continue(rv: u64, key: &ObjKey) -> String {
    let doc = json!({"v": "meta.k8s.io/v1", "rv": rv, "ns": key.0, "name": key.1});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(doc.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, ObjKey), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let rv = doc.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    let ns = doc.get("ns").and_then(Value::as_str).ok_or_else(bad)?;
    let name = doc.get("name").and_then(Value::as_str).ok_or_else(bad)?;
    Ok((rv, (ns.to_string(), name.to_string())))
}

/// Parses a resourceVersion parameter; empty means "unset".
pub fn parse_rv(rv: Option<&str>) -> Result<Option<u64>, ApiError> {
    match rv {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!("Invalid value: {s:?}: invalid resource version"))
        }),
    }
}

fn same_ignoring_bookkeeping(a: &Value, b: &Value) -> bool {
    let (Some(am), Some(bm)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let skip_meta = |k: &str| k == "managedFields" || k == "resourceVersion";
    let meta_equal = |x: Option<&Value>, y: Option<&Value>| match (
        x.and_then(Value::as_object),
        y.and_then(Value::as_object),
    ) {
        (Some(xm), Some(ym)) => {
            xm.iter().filter(|(k, _)| !skip_meta(k)).count()
                == ym.iter().filter(|(k, _)| !skip_meta(k)).count()
                && xm
                    .iter()
                    .filter(|(k, _)| !skip_meta(k))
                    .all(|(k, v)| ym.get(k) == Some(v))
        }
        _ => x == y,
    };
    am.len() == bm.len()
        && am.iter().all(|(k, v)| {
            if k == "metadata" {
                meta_equal(Some(v), bm.get(k))
            } else {
                bm.get(k) == Some(v)
            }
        })
}

/// Whether anything besides metadata and status differs (what bumps generation).
fn spec_changed(old: &Value, new: &Value) -> bool {
    let is_spec = |k: &str| !matches!(k, "metadata" | "status" | "apiVersion" | "kind");
    let (Some(om), Some(nm)) = (old.as_object(), new.as_object()) else {
        return old != new;
    };
    om.keys().filter(|k| is_spec(k)).count() != nm.keys().filter(|k| is_spec(k)).count()
        || nm
            .iter()
            .filter(|(k, _)| is_spec(k))
            .any(|(k, v)| om.get(k) != Some(v))
}

/// A mutating admission step run on every pod create, after defaulting and before
/// validation: the in-process stand-in for a mutating admission webhook (the embedded
/// cluster calls no webhooks). edgeplane's gate-mode scheduler uses one to add its
/// scheduling gate to the pods that offers target.
#[derive(Clone)]
pub struct PodAdmission(Arc<dyn Fn(&mut Value) + Send + Sync>);

impl PodAdmission {
    pub fn new(mutate: impl Fn(&mut Value) + Send + Sync + 'static) -> Self {
        PodAdmission(Arc::new(mutate))
    }

    /// Mutates a pod about to be created (storage shape: `metadata`, `spec`, `status`).
    pub fn apply(&self, pod: &mut Value) {
        (self.0)(pod)
    }
}

impl std::fmt::Debug for PodAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PodAdmission(..)")
    }
}

/// The mutable state of the API server.
pub struct State {
    pub store: Store,
    pub registry: Registry,
    clock: VirtualClock,
    rng: u64,
    next_service_ip: u32,
    pod_admission: Vec<PodAdmission>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("store", &self.store).finish()
    }
}

/// The API server: state behind one lock, and the clock.
#[derive(Debug)]
pub struct ApiServer {
    state: Mutex<State>,
    clock: VirtualClock,
}

impl ApiServer {
    /// An API server with the system namespaces and the `default/kubernetes` Service.
    pub fn new(clock: VirtualClock, history_limit: usize, seed: u64) -> Self {
        let mut state = State {
            store: Store::new(history_limit),
            registry: Registry::builtin(),
            clock,
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
            next_service_ip: 0,
            pod_admission: Vec::new(),
        };
        let opts = WriteOptions::manager("kube-apiserver");
        for ns in SYSTEM_NAMESPACES {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            if let Some(def) = state.registry.find("", "v1", "namespaces") {
                let _ = state.create(&def, None, obj, &opts);
            }
        }
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}
        });
        if let Some(def) = state.registry.find("", "v1", "services") {
            let _ = state.create(&def, Some("default"), svc, &opts);
        }
        ApiServer {
            state: Mutex::new(state),
            clock,
        }
    }

    /// The state, locked. Never held across an await.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn clock(&self) -> VirtualClock {
        self.clock
    }

    /// Adds a mutating admission step for pod creates (run in the order added).
    pub fn add_pod_admission(&self, hook: PodAdmission) {
        self.lock().pod_admission.push(hook);
    }
}

impl State {
    pub fn now(&self) -> String {
        format_time(self.clock.now())
    }

    fn rand(&mut self) -> u64 {
        // splitmix64: deterministic per seed, so simulations replay.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn new_uid(&mut self) -> String {
        let a = self.rand();
        let b = self.rand();
        let hex = format!("{a:016x}{b:016x}");
        format!(
            "{}-{}-4{}-{}{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            ["8", "9", "a", "b"][(b & 3) as usize],
            &hex[17..20],
            &hex[20..32]
        )
    }

    /// A `generateName` suffix: five characters of the alphabet Kubernetes uses.
    fn name_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut r = self.rand();
        (0..5)
            .map(|_| {
                let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
                r /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }

    pub fn def_by_storage(&self, storage: &str) -> Option<Arc<ResourceDef>> {
        self.registry.by_storage(storage)
    }

    fn key(def: &ResourceDef, ns: Option<&str>, name: &str) -> ObjKey {
        let ns = if def.namespaced { ns.unwrap_or("") } else { "" };
        (ns.to_string(), name.to_string())
    }

    /// The stored object (in storage shape), or 404.
    pub fn get(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.store
            .get(&def.storage, &Self::key(def, ns, name))
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))
    }

    /// Lists objects, optionally in one namespace, with selectors and pagination.
    pub fn list(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListResult, ApiError> {
        check_fields(def, &opts.fields)?;
        let current = self.store.current_rv();
        let requested = parse_rv(opts.resource_version.as_deref())?;
        if let Some(rv) = requested {
            if rv > current {
                return Err(ApiError::timeout(format!(
                    "Too large resource version: {rv}, current: {current}"
                )));
            }
            if opts.version_match.as_deref() == Some("Exact") && rv != current {
                return Err(ApiError::expired(format!(
                    "The resourceVersion for the provided list is too old: {rv}"
                )));
            }
        }
        let (list_rv, after) = match opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => {
                let (rv, key) = decode_continue(token)?;
                if self.store.is_compacted(&def.storage, rv) {
                    return Err(ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results.",
                    ));
                }
                (rv, Some(key))
            }
            None => (current, None),
        };
        let ns = if def.namespaced { ns } else { None };
        let limit = opts.limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut last_key = None;
        let mut more = false;
        let mut remaining = 0u64;
        let unfiltered = opts.labels.is_empty() && opts.fields.is_empty();
        for obj in self.store.range(&def.storage, ns, after.as_ref()) {
            if !stored_selected(def, obj, &opts.labels, &opts.fields) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                more = true;
                if !unfiltered {
                    break;
                }
                remaining += 1;
                continue;
            }
            last_key = Some(obj.key.clone());
            items.push(obj.clone());
        }
        let continue_token = match (more, last_key) {
            (true, Some(k)) => Some(encode_continue(list_rv, &k)),
            _ => None,
        };
        Ok(ListResult {
            items,
            resource_version: list_rv,
            remaining: (more && unfiltered).then_some(remaining),
            continue_token,
        })
    }

    fn check_type_meta(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if kind.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{}'",
                truncate(&obj.to_string(), 200)
            )));
        }
        if api_version.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Object 'apiVersion' is missing in '{}'",
                truncate(&obj.to_string(), 200)
            )));
        }
        if api_version != def.api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                def.api_version()
            )));
        }
        if kind != def.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                def.kind
            )));
        }
        Ok(())
    }

    fn check_metadata_types(obj: &Value) -> Result<(), ApiError> {
        let Some(meta) = obj.get("metadata") else {
            return Ok(());
        };
        let Some(m) = meta.as_object() else {
            return Err(ApiError::bad_request("metadata must be an object"));
        };
        for f in [
            "name",
            "namespace",
            "generateName",
            "resourceVersion",
            "uid",
        ] {
            if let Some(v) = m.get(f)
                && !v.is_null()
                && !v.is_string()
            {
                return Err(ApiError::bad_request(format!(
                    "metadata.{f} must be a string"
                )));
            }
        }
        for f in ["labels", "annotations"] {
            if let Some(v) = m.get(f).filter(|v| !v.is_null()) {
                let ok = v
                    .as_object()
                    .is_some_and(|mm| mm.values().all(Value::is_string));
                if !ok {
                    return Err(ApiError::bad_request(format!(
                        "json: cannot unmarshal metadata.{f}: must be a map of strings"
                    )));
                }
            }
        }
        for f in ["finalizers", "ownerReferences"] {
            if let Some(v) = m.get(f).filter(|v| !v.is_null())
                && !v.is_array()
            {
                return Err(ApiError::bad_request(format!(
                    "metadata.{f} must be a list"
                )));
            }
        }
        Ok(())
    }

    /// Defaulting, decoding and validation of a write.
    fn admit(
        &self,
        def: &ResourceDef,
        obj: &mut Value,
        old: Option<&Value>,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> Result<(), ApiError> {
        let name = object::name(obj).to_string();
        let mut errs: Vec<FieldError> = Vec::new();
        match (&def.builtin, &def.crd) {
            (Some(kind), _) => {
                builtin::default(*kind, obj);
                builtin::check_decodes(*kind, obj).map_err(|e| {
                    ApiError::bad_request(format!(
                        "{} in version \"{}\" cannot be handled as a {}: {e}",
                        def.kind, def.version, def.kind
                    ))
                })?;
                errs.extend(builtin::validate_meta(
                    obj,
                    builtin::name_is_label(Some(*kind)),
                ));
                errs.extend(builtin::validate(
                    *kind,
                    obj,
                    old,
                    sub == Subresource::Status,
                ));
            }
            (None, Some((_, version))) => {
                errs.extend(builtin::validate_meta(obj, false));
                if let Some(schema) = &version.schema {
                    let outcome = schema::process(obj, schema);
                    if opts.strict && !outcome.unknown_fields.is_empty() {
                        let list: Vec<String> = outcome
                            .unknown_fields
                            .iter()
                            .map(|f| format!("unknown field \"{f}\""))
                            .collect();
                        return Err(ApiError::bad_request(format!(
                            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                            def.kind,
                            def.version,
                            def.kind,
                            list.join(", ")
                        )));
                    }
                    errs.extend(outcome.errors);
                }
            }
            _ => {}
        }
        if def.builtin == Some(Builtin::CustomResourceDefinition)
            && let Err(e) = defs_from_crd(obj)
        {
            errs.extend(e);
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(&def.group, &def.kind, &name, errs))
        }
    }

    /// Records a write in `metadata.managedFields`.
    fn record_manager(
        &self,
        def: &ResourceDef,
        old: Option<&Value>,
        new: &mut Value,
        manager: &str,
        op: &ManagerOp,
        sub: Subresource,
    ) {
        let shape = shape_of(def);
        let (operation, set) = match op {
            ManagerOp::Apply(set) => ("Apply", set.clone()),
            ManagerOp::Update => {
                let set = match old {
                    Some(old) => patch::changed_fields(old, new, shape, UPDATE_FIELDS_DEPTH),
                    None => patch::field_set(new, shape, UPDATE_FIELDS_DEPTH),
                };
                ("Update", set)
            }
        };
        // Main-resource writes do not own status where it is a subresource, and status
        // writes own only status.
        let is_status = |p: &patch::FieldPath| matches!(p.first(), Some(patch::PathElement::Field(f)) if f == "status");
        let set: FieldSet = match sub {
            Subresource::Main if def.status_subresource => {
                set.into_iter().filter(|p| !is_status(p)).collect()
            }
            Subresource::Status => set.into_iter().filter(is_status).collect(),
            Subresource::Main => set,
        };
        let sub_name = match sub {
            Subresource::Status => "status",
            Subresource::Main => "",
        };
        let mut entries: Vec<Value> = new
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let pos = entries.iter().position(|e| {
            e.get("manager").and_then(Value::as_str) == Some(manager)
                && e.get("operation").and_then(Value::as_str) == Some(operation)
                && e.get("subresource").and_then(Value::as_str).unwrap_or("") == sub_name
        });
        let merged = match (op, pos) {
            (ManagerOp::Update, Some(i)) => {
                let mut prev = patch::from_fields_v1(&entries[i]["fieldsV1"]);
                prev.extend(set);
                prev
            }
            _ => set,
        };
        if merged.is_empty() {
            if let (ManagerOp::Apply(_), Some(i)) = (op, pos) {
                entries.remove(i);
            }
        } else {
            let mut entry = json!({
                "manager": manager,
                "operation": operation,
                "apiVersion": def.api_version(),
                "time": self.now(),
                "fieldsType": "FieldsV1",
                "fieldsV1": patch::to_fields_v1(&merged),
            });
            if !sub_name.is_empty() {
                entry["subresource"] = json!(sub_name);
            }
            match pos {
                Some(i) => entries[i] = entry,
                None => entries.push(entry),
            }
        }
        if entries.is_empty() {
            if let Some(m) = object::meta_mut(new) {
                m.remove("managedFields");
            }
        } else {
            object::set_meta(new, "managedFields", Value::Array(entries));
        }
    }

    fn manager_name(opts: &WriteOptions) -> String {
        opts.field_manager
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    }

    /// Kind-specific server-side fields computed on every write.
    fn finish_object(&mut self, def: &ResourceDef, obj: &mut Value, old: Option<&Value>) {
        match def.builtin {
            Some(Builtin::Namespace) => {
                let name = object::name(obj).to_string();
                if let Some(m) = object::meta_mut(obj) {
                    let labels = m.entry("labels").or_insert_with(|| json!({}));
                    if let Some(l) = labels.as_object_mut() {
                        l.insert("kubernetes.io/metadata.name".into(), Value::String(name));
                    }
                }
            }
            Some(Builtin::Service) => {
                let old_ip = old
                    .and_then(|o| object::get_str(o, &["spec", "clusterIP"]))
                    .map(str::to_string);
                let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
                    return;
                };
                let current = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("");
                if current.is_empty() {
                    let ip = match old_ip.filter(|ip| !ip.is_empty()) {
                        Some(ip) => ip,
                        None => {
                            let n = self.next_service_ip;
                            self.next_service_ip += 1;
                            format!("10.96.{}.{}", n / 254, n % 254 + 1)
                        }
                    };
                    spec.insert("clusterIP".into(), json!(ip));
                }
                let ip = spec.get("clusterIP").cloned().unwrap_or(Value::Null);
                spec.insert("clusterIPs".into(), json!([ip]));
                spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
                spec.entry("ipFamilyPolicy")
                    .or_insert_with(|| json!("SingleStack"));
            }
            Some(Builtin::CustomResourceDefinition) => {
                let names = obj.get("spec").and_then(|s| s.get("names")).cloned();
                let storage: Vec<Value> = obj
                    .get("spec")
                    .and_then(|s| s.get("versions"))
                    .and_then(Value::as_array)
                    .map(|vs| {
                        vs.iter()
                            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                            .filter_map(|v| v.get("name").cloned())
                            .collect()
                    })
                    .unwrap_or_default();
                let now = self.now();
                let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
                if let Some(m) = obj.as_object_mut() {
                    m.insert(
                        "status".into(),
                        json!({
                            "acceptedNames": names,
                            "conditions": [
                                cond("NamesAccepted", "NoConflicts", "no conflicts found"),
                                cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                            ],
                            "storedVersions": storage,
                        }),
                    );
                }
            }
            _ => {}
        }
    }

    /// Creates an object. `ns` is the namespace of the request path.
    pub fn create(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        self.create_as(def, ns, body, opts, ManagerOp::Update)
    }

    fn create_as(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        body: Value,
        opts: &WriteOptions,
        op: ManagerOp,
    ) -> Result<Arc<Value>, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        Self::check_type_meta(def, &body)?;
        Self::check_metadata_types(&body)?;
        let mut obj = from_served(def, body);
        // Namespace of the object against the request.
        let body_ns = object::namespace(&obj).to_string();
        if def.namespaced {
            let req_ns = ns.unwrap_or("");
            if req_ns.is_empty() {
                return Err(ApiError::bad_request(
                    "the namespace of the object must be set in the request path",
                ));
            }
            if !body_ns.is_empty() && body_ns != req_ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            object::set_meta(&mut obj, "namespace", json!(req_ns));
        } else {
            object::set_meta(&mut obj, "namespace", Value::Null);
        }
        if !object::resource_version(&obj).is_empty() {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        for f in [
            "uid",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
            "generation",
            "creationTimestamp",
        ] {
            object::set_meta(&mut obj, f, Value::Null);
        }
        let mut name = object::name(&obj).to_string();
        let generate = object::meta_str(&obj, "generateName")
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            if generate.is_empty() {
                return Err(ApiError::invalid(
                    &def.group,
                    &def.kind,
                    "",
                    vec![FieldError::required(
                        "metadata.name",
                        "name or generateName is required",
                    )],
                ));
            }
            name = format!("{generate}{}", self.name_suffix());
            object::set_meta(&mut obj, "name", json!(name));
        }
        let req_ns = object::namespace(&obj).to_string();
        if def.namespaced {
            match self
                .store
                .get("namespaces", &(String::new(), req_ns.clone()))
            {
                None => return Err(ApiError::not_found("", "namespaces", &req_ns)),
                Some(n) if object::deletion_timestamp(&n).is_some() => {
                    return Err(ApiError::forbidden(
                        &def.group,
                        &def.plural,
                        &name,
                        format!(
                            "unable to create new content in namespace {req_ns} because it is being terminated"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if def.is_custom()
            && def.status_subresource
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        if let Some(kind) = def.builtin {
            builtin::prepare_create(kind, &mut obj);
        }
        if def.builtin == Some(Builtin::Pod) {
            for hook in &self.pod_admission {
                hook.apply(&mut obj);
            }
        }
        let uid = self.new_uid();
        object::set_meta(&mut obj, "uid", json!(uid));
        object::set_meta(&mut obj, "creationTimestamp", json!(self.now()));
        if def.generation {
            object::set_meta(&mut obj, "generation", json!(1));
        }
        self.admit(def, &mut obj, None, Subresource::Main, opts)?;
        self.finish_object(def, &mut obj, None);
        let mut key = Self::key(def, Some(&req_ns), &name);
        if self.store.get(&def.storage, &key).is_some() {
            if generate.is_empty() {
                return Err(ApiError::already_exists(&def.group, &def.plural, &name));
            }
            // generateName collided: draw again a few times, as the API server's retry does.
            let mut tries = 0;
            while self.store.get(&def.storage, &key).is_some() {
                tries += 1;
                if tries > 8 {
                    return Err(ApiError::already_exists(&def.group, &def.plural, &name));
                }
                name = format!("{generate}{}", self.name_suffix());
                key = Self::key(def, Some(&req_ns), &name);
            }
            object::set_meta(&mut obj, "name", json!(name));
        }
        let manager = Self::manager_name(opts);
        self.record_manager(def, None, &mut obj, &manager, &op, Subresource::Main);
        if opts.dry_run {
            return Ok(Arc::new(obj));
        }
        let change = self.store.put(&def.storage, obj);
        self.after_write(def, &change);
        Ok(change.clone())
    }

    fn after_write(&mut self, def: &ResourceDef, obj: &Value) {
        if def.builtin == Some(Builtin::CustomResourceDefinition)
            && let Ok(defs) = defs_from_crd(obj)
        {
            let name = object::name(obj).to_string();
            self.registry.set_crd(&name, defs);
        }
    }

    /// Replaces an object (`PUT`), or its status (`PUT .../status`).
    pub fn update(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        name: &str,
        body: Value,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        Self::check_type_meta(def, &body)?;
        Self::check_metadata_types(&body)?;
        let body_name = object::name(&body);
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body_ns = object::namespace(&body);
        if def.namespaced && !body_ns.is_empty() && Some(body_ns) != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let old = self.get(def, ns, name)?;
        if object::resource_version(&body).is_empty() && def.is_custom() {
            return Err(ApiError::invalid(
                &def.group,
                &def.kind,
                name,
                vec![FieldError::invalid(
                    "metadata.resourceVersion",
                    &json!("0x0"),
                    "must be specified for an update",
                )],
            ));
        }
        let candidate = from_served(def, body);
        self.write_update(def, old, candidate, sub, opts, ManagerOp::Update)
    }

    fn write_update(
        &mut self,
        def: &Arc<ResourceDef>,
        old: Arc<Value>,
        candidate: Value,
        sub: Subresource,
        opts: &WriteOptions,
        op: ManagerOp,
    ) -> Result<Arc<Value>, ApiError> {
        let name = object::name(&old).to_string();
        if !candidate.is_object() {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        }
        let rv = object::resource_version(&candidate);
        if !rv.is_empty() && rv != object::resource_version(&old) {
            return Err(ApiError::modified(&def.group, &def.plural, &name));
        }
        let mut new = match sub {
            Subresource::Status => {
                let mut n = (*old).clone();
                if let Some(m) = n.as_object_mut() {
                    match candidate.get("status") {
                        Some(s) => m.insert("status".into(), s.clone()),
                        None => m.remove("status"),
                    };
                }
                n
            }
            Subresource::Main => {
                let mut n = candidate;
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "selfLink",
                    "namespace",
                    "name",
                    "managedFields",
                ] {
                    let v = old
                        .get("metadata")
                        .and_then(|m| m.get(f))
                        .cloned()
                        .unwrap_or(Value::Null);
                    object::set_meta(&mut n, f, v);
                }
                if def.status_subresource
                    && let Some(m) = n.as_object_mut()
                {
                    match old.get("status") {
                        Some(s) => m.insert("status".into(), s.clone()),
                        None => m.remove("status"),
                    };
                }
                n
            }
        };
        for f in ["apiVersion", "kind"] {
            if let (Some(m), Some(v)) = (new.as_object_mut(), old.get(f)) {
                m.insert(f.into(), v.clone());
            }
        }
        if object::deletion_timestamp(&old).is_some() {
            let before = object::finalizers(&old);
            let added: Vec<String> = object::finalizers(&new)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if !added.is_empty() {
                return Err(ApiError::invalid(
                    &def.group,
                    &def.kind,
                    &name,
                    vec![FieldError::forbidden(
                        "metadata.finalizers",
                        format!(
                            "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                        ),
                    )],
                ));
            }
        }
        self.admit(def, &mut new, Some(&old), sub, opts)?;
        self.finish_object(def, &mut new, Some(&old));
        if def.generation && sub == Subresource::Main && spec_changed(&old, &new) {
            let g = old
                .get("metadata")
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            object::set_meta(&mut new, "generation", json!(g + 1));
        }
        let apply_changes_owner = matches!(op, ManagerOp::Apply(_));
        if same_ignoring_bookkeeping(&old, &new) && !apply_changes_owner {
            return Ok(old);
        }
        let manager = Self::manager_name(opts);
        self.record_manager(def, Some(&old), &mut new, &manager, &op, sub);
        if same_ignoring_bookkeeping(&old, &new)
            && old.get("metadata").and_then(|m| m.get("managedFields"))
                == new.get("metadata").and_then(|m| m.get("managedFields"))
        {
            return Ok(old);
        }
        if opts.dry_run {
            return Ok(Arc::new(new));
        }
        let key = crate::store::key_of(&new);
        let finished = object::deletion_timestamp(&new).is_some()
            && object::finalizers(&new).is_empty()
            && new
                .get("metadata")
                .and_then(|m| m.get("deletionGracePeriodSeconds"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
                == 0;
        let change = self.store.put(&def.storage, new);
        let result = change.clone();
        self.after_write(def, &result);
        if finished {
            self.remove_object(&def.storage, &key);
        }
        Ok(result)
    }

    /// Patches an object or its status. Returns the result and whether apply created it.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        name: &str,
        ptype: PatchType,
        patch_body: &Value,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> Result<(Arc<Value>, bool), ApiError> {
        let existing = self.get(def, ns, name);
        if let PatchType::Apply { .. } = ptype {
            return self.apply(def, ns, name, existing.ok(), patch_body, sub, opts);
        }
        let old = existing?;
        let served = to_served(def, &old);
        let mut patched = (*served).clone();
        match ptype {
            PatchType::Merge => {
                if !patch_body.is_object() {
                    return Err(ApiError::bad_request("merge patch must be a JSON object"));
                }
                patch::merge_patch(&mut patched, patch_body);
            }
            PatchType::Json => patch::json_patch(&mut patched, patch_body).map_err(|e| {
                ApiError::invalid(
                    &def.group,
                    &def.kind,
                    name,
                    vec![FieldError::new(
                        crate::error::FieldErrorKind::Invalid,
                        "",
                        e,
                    )],
                )
            })?,
            PatchType::Strategic => {
                if def.is_custom() {
                    return Err(ApiError::unsupported_media_type(
                        "application/strategic-merge-patch+json",
                    ));
                }
                patched = patch::strategic_merge(&served, patch_body, shape_of(def))
                    .map_err(ApiError::bad_request)?;
            }
            PatchType::Apply { .. } => {
                return Err(ApiError::internal("apply patches are handled before"));
            }
        }
        if !patched.is_object() {
            return Err(ApiError::bad_request(
                "the patched object is not a JSON object",
            ));
        }
        Self::check_metadata_types(&patched)?;
        if object::name(&patched) != name {
            return Err(ApiError::invalid(
                &def.group,
                &def.kind,
                name,
                vec![FieldError::invalid(
                    "metadata.name",
                    &json!(object::name(&patched)),
                    "field is immutable",
                )],
            ));
        }
        if def.namespaced && object::namespace(&patched) != object::namespace(&old) {
            return Err(ApiError::invalid(
                &def.group,
                &def.kind,
                name,
                vec![FieldError::invalid(
                    "metadata.namespace",
                    &json!(object::namespace(&patched)),
                    "field is immutable",
                )],
            ));
        }
        for f in ["apiVersion", "kind"] {
            if patched.get(f) != served.get(f) {
                return Err(ApiError::bad_request(format!(
                    "{f} cannot be changed by a patch"
                )));
            }
        }
        let candidate = from_served(def, patched);
        let result = self.write_update(def, old, candidate, sub, opts, ManagerOp::Update)?;
        Ok((result, false))
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        name: &str,
        existing: Option<Arc<Value>>,
        config: &Value,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> Result<(Arc<Value>, bool), ApiError> {
        let manager = opts
            .field_manager
            .clone()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request("PATCH request: fieldManager must be set for apply patches")
            })?;
        if !config.is_object() {
            return Err(ApiError::bad_request(
                "apply configuration must be an object",
            ));
        }
        Self::check_type_meta(def, config)?;
        Self::check_metadata_types(config)?;
        // An apply configuration may leave the name to the URL (kube's controller-rs
        // applies status without metadata).
        let cfg_name = object::name(config);
        if !cfg_name.is_empty() && cfg_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({cfg_name}) does not match the name on the URL ({name})"
            )));
        }
        let shape = shape_of(def);
        let mut cfg = config.clone();
        if let Some(m) = object::meta_mut(&mut cfg) {
            m.remove("managedFields");
            m.insert("name".into(), json!(name));
        }
        match sub {
            Subresource::Main if def.status_subresource => {
                if let Some(m) = cfg.as_object_mut() {
                    m.remove("status");
                }
            }
            Subresource::Status => {
                let status = cfg.get("status").cloned();
                let mut only = json!({"apiVersion": cfg["apiVersion"], "kind": cfg["kind"], "metadata": {"name": name}});
                if let Some(rv) = object::meta_str(&cfg, "resourceVersion") {
                    only["metadata"]["resourceVersion"] = json!(rv);
                }
                if let Some(s) = status {
                    only["status"] = s;
                }
                cfg = only;
            }
            Subresource::Main => {}
        }
        let new_set = patch::field_set(&cfg, shape, usize::MAX);
        let Some(old) = existing else {
            if sub == Subresource::Status {
                return Err(ApiError::not_found(&def.group, &def.plural, name));
            }
            let created = self.create_as(def, ns, cfg, opts, ManagerOp::Apply(new_set))?;
            return Ok((created, true));
        };
        let served = to_served(def, &old);
        let mut merged = patch::apply_merge(&served, &cfg, shape);
        let sub_name = if sub == Subresource::Status {
            "status"
        } else {
            ""
        };
        let entries: Vec<Value> = old
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut prev = FieldSet::new();
        let mut others = FieldSet::new();
        for e in &entries {
            let set = patch::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null));
            let mine = e.get("manager").and_then(Value::as_str) == Some(manager.as_str())
                && e.get("operation").and_then(Value::as_str) == Some("Apply")
                && e.get("subresource").and_then(Value::as_str).unwrap_or("") == sub_name;
            if mine {
                prev = set;
            } else {
                others.extend(set);
            }
        }
        let dropped: FieldSet = prev.difference(&new_set).cloned().collect();
        let keep: FieldSet = new_set.union(&others).cloned().collect();
        patch::remove_fields(&mut merged, &dropped, &keep, shape);
        let candidate = from_served(def, merged);
        let result =
            self.write_update(def, old, candidate, sub, opts, ManagerOp::Apply(new_set))?;
        Ok((result, false))
    }

    /// Deletes an object, honouring preconditions, finalizers, graceful pod deletion and the
    /// propagation policy.
    pub fn delete(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let old = self.get(def, ns, name)?;
        if let Some(uid) = &opts.precondition_uid
            && uid != object::uid(&old)
        {
            return Err(ApiError::conflict(
                &def.group,
                &def.plural,
                name,
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    object::uid(&old)
                ),
            ));
        }
        if let Some(rv) = &opts.precondition_resource_version
            && rv != object::resource_version(&old)
        {
            return Err(ApiError::conflict(
                &def.group,
                &def.plural,
                name,
                format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    object::resource_version(&old)
                ),
            ));
        }
        if opts.dry_run {
            return Ok(Deleted::Gone(old));
        }
        if def.builtin == Some(Builtin::Namespace) {
            return self.delete_namespace(def, old);
        }
        let key = crate::store::key_of(&old);
        let propagation = opts.propagation.unwrap_or_default();
        if propagation == Propagation::Orphan {
            self.orphan_dependents(object::uid(&old));
        }
        let now = self.clock.now();
        if def.builtin == Some(Builtin::Pod) {
            let scheduled = !object::get_str(&old, &["spec", "nodeName"])
                .unwrap_or("")
                .is_empty();
            let terminal = matches!(
                object::get_str(&old, &["status", "phase"]),
                Some("Succeeded") | Some("Failed")
            );
            let grace = opts.grace_period_seconds.unwrap_or_else(|| {
                old.get("spec")
                    .and_then(|s| s.get("terminationGracePeriodSeconds"))
                    .and_then(Value::as_i64)
                    .unwrap_or(30)
            });
            if scheduled && !terminal && grace > 0 {
                let current = old
                    .get("metadata")
                    .and_then(|m| m.get("deletionGracePeriodSeconds"))
                    .and_then(Value::as_i64);
                if object::deletion_timestamp(&old).is_some() && current.is_some_and(|c| c <= grace)
                {
                    return Ok(Deleted::Pending(old));
                }
                let mut new = (*old).clone();
                let at = now
                    .checked_add(jiff::SignedDuration::from_secs(grace))
                    .unwrap_or(now);
                object::set_meta(&mut new, "deletionTimestamp", json!(format_time(at)));
                object::set_meta(&mut new, "deletionGracePeriodSeconds", json!(grace));
                if propagation == Propagation::Foreground {
                    add_finalizer(&mut new, "foregroundDeletion");
                }
                let change = self.store.put(&def.storage, new);
                return Ok(Deleted::Pending(change.clone()));
            }
        }
        if object::deletion_timestamp(&old).is_some() {
            if object::finalizers(&old).is_empty() {
                return Ok(self
                    .remove_object(&def.storage, &key)
                    .map_or(Deleted::Pending(old), Deleted::Gone));
            }
            // Shorten a pending grace period to zero (force) but keep waiting on finalizers.
            let mut new = (*old).clone();
            object::set_meta(&mut new, "deletionGracePeriodSeconds", json!(0));
            if same_ignoring_bookkeeping(&old, &new) {
                return Ok(Deleted::Pending(old));
            }
            let change = self.store.put(&def.storage, new);
            return Ok(Deleted::Pending(change.clone()));
        }
        let uid = object::uid(&old).to_string();
        let has_dependents = !self.store.dependents_of(&uid).is_empty();
        let mut finalizers = object::finalizers(&old);
        if propagation == Propagation::Foreground && has_dependents {
            finalizers.push("foregroundDeletion".to_string());
        }
        if !finalizers.is_empty() {
            let mut new = (*old).clone();
            object::set_meta(&mut new, "deletionTimestamp", json!(format_time(now)));
            object::set_meta(&mut new, "deletionGracePeriodSeconds", json!(0));
            object::set_meta(&mut new, "finalizers", json!(finalizers));
            let change = self.store.put(&def.storage, new);
            let pending = change.clone();
            if propagation == Propagation::Foreground && has_dependents {
                for (storage, dep_key) in self.store.dependents_of(&uid) {
                    if let Some(dep_def) = self.def_by_storage(&storage) {
                        let opts = DeleteOptions {
                            propagation: Some(Propagation::Foreground),
                            ..Default::default()
                        };
                        let _ = self.delete(&dep_def, Some(&dep_key.0), &dep_key.1, &opts);
                    }
                }
                self.check_foreground_owner(&uid);
            }
            return Ok(match self.store.get(&def.storage, &key) {
                Some(obj) => Deleted::Pending(obj.clone()),
                None => Deleted::Gone(pending),
            });
        }
        Ok(self
            .remove_object(&def.storage, &key)
            .map_or(Deleted::Gone(old), Deleted::Gone))
    }

    /// Deletes every object a list would return.
    pub fn delete_collection(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Vec<Arc<Value>>, ApiError> {
        let items = self.list(def, ns, list)?.items;
        let mut out = Vec::new();
        for item in items {
            let (ins, name) = item.key.clone();
            let ins = (!ins.is_empty()).then_some(ins);
            match self.delete(def, ins.as_deref(), &name, opts) {
                Ok(Deleted::Gone(o)) | Ok(Deleted::Pending(o)) => out.push(to_served(def, &o)),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn orphan_dependents(&mut self, uid: &str) {
        for (storage, key) in self.store.dependents_of(uid) {
            if let Some(dep) = self.store.get(&storage, &key) {
                let mut new = (*dep).clone();
                let refs: Vec<Value> = object::owner_refs(&dep)
                    .into_iter()
                    .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid))
                    .collect();
                object::set_meta(
                    &mut new,
                    "ownerReferences",
                    if refs.is_empty() {
                        Value::Null
                    } else {
                        json!(refs)
                    },
                );
                self.store.put(&storage, new);
            }
        }
    }

    /// Removes an object from the store and runs what follows a removal: garbage
    /// collection of dependents, foreground owners, CRD instances, namespace termination.
    fn remove_object(&mut self, storage: &str, key: &ObjKey) -> Option<Arc<Value>> {
        let change = self.store.remove(storage, key)?;
        let removed = change.clone();
        if storage == "customresourcedefinitions.apiextensions.k8s.io" {
            self.remove_crd_instances(&removed);
        }
        let uid = object::uid(&removed).to_string();
        for (dep_storage, dep_key) in self.store.dependents_of(&uid) {
            self.collect_dependent(&dep_storage, &dep_key, &uid);
        }
        for owner in object::owner_uids(&removed) {
            self.check_foreground_owner(&owner);
        }
        if !key.0.is_empty() {
            self.maybe_finish_namespace(&key.0);
        }
        Some(removed)
    }

    fn remove_crd_instances(&mut self, crd: &Value) {
        let name = object::name(crd).to_string();
        let storage = self
            .registry
            .all()
            .iter()
            .find(|d| d.crd.as_ref().is_some_and(|(n, _)| *n == name))
            .map(|d| d.storage.clone());
        self.registry.remove_crd(&name);
        if let Some(storage) = storage {
            let keys: Vec<ObjKey> = self
                .store
                .range(&storage, None, None)
                .map(|o| o.key.clone())
                .collect();
            for k in keys {
                self.remove_object(&storage, &k);
            }
        }
    }

    /// The garbage collector's decision for one dependent of a removed owner: delete it
    /// when no owner remains, else drop the dangling reference.
    fn collect_dependent(&mut self, storage: &str, key: &ObjKey, gone_uid: &str) {
        let Some(dep) = self.store.get(storage, key) else {
            return;
        };
        let refs = object::owner_refs(&dep);
        let live: Vec<Value> = refs
            .iter()
            .filter(|r| {
                let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
                uid != gone_uid && self.store.locate_uid(uid).is_some()
            })
            .cloned()
            .collect();
        if live.is_empty() {
            if let Some(def) = self.def_by_storage(storage) {
                let ns = (!key.0.is_empty()).then(|| key.0.clone());
                let _ = self.delete(&def, ns.as_deref(), &key.1, &DeleteOptions::default());
            }
        } else {
            let mut new = (*dep).clone();
            object::set_meta(&mut new, "ownerReferences", json!(live));
            self.store.put(storage, new);
        }
    }

    fn check_foreground_owner(&mut self, owner_uid: &str) {
        let Some((storage, key)) = self.store.locate_uid(owner_uid).cloned() else {
            return;
        };
        let Some(owner) = self.store.get(&storage, &key) else {
            return;
        };
        if object::deletion_timestamp(&owner).is_none()
            || !object::finalizers(&owner)
                .iter()
                .any(|f| f == "foregroundDeletion")
        {
            return;
        }
        let blocking = self.store.dependents_of(owner_uid).iter().any(|(s, k)| {
            self.store.get(s, k).is_some_and(|d| {
                object::owner_refs(&d).iter().any(|r| {
                    r.get("uid").and_then(Value::as_str) == Some(owner_uid)
                        && r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true)
                })
            })
        });
        if blocking {
            return;
        }
        let mut new = (*owner).clone();
        let rest: Vec<String> = object::finalizers(&owner)
            .into_iter()
            .filter(|f| f != "foregroundDeletion")
            .collect();
        object::set_meta(
            &mut new,
            "finalizers",
            if rest.is_empty() {
                Value::Null
            } else {
                json!(rest)
            },
        );
        let grace = new
            .get("metadata")
            .and_then(|m| m.get("deletionGracePeriodSeconds"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        self.store.put(&storage, new);
        if rest.is_empty() && grace == 0 {
            self.remove_object(&storage, &key);
        }
    }

    fn delete_namespace(
        &mut self,
        def: &Arc<ResourceDef>,
        old: Arc<Value>,
    ) -> Result<Deleted, ApiError> {
        let name = object::name(&old).to_string();
        if SYSTEM_NAMESPACES.contains(&name.as_str()) {
            return Err(ApiError::forbidden(
                "",
                "namespaces",
                &name,
                "this namespace may not be deleted",
            ));
        }
        if object::deletion_timestamp(&old).is_none() {
            let mut new = (*old).clone();
            object::set_meta(&mut new, "deletionTimestamp", json!(self.now()));
            object::set_meta(&mut new, "deletionGracePeriodSeconds", json!(0));
            object::set_path(&mut new, &["status", "phase"], json!("Terminating"));
            self.store.put(&def.storage, new);
            // The namespace controller: delete everything in the namespace.
            let namespaced: Vec<Arc<ResourceDef>> = self
                .store
                .storages()
                .iter()
                .filter_map(|s| self.def_by_storage(s))
                .filter(|d| d.namespaced)
                .collect();
            for d in namespaced {
                let names: Vec<String> = self
                    .store
                    .range(&d.storage, Some(&name), None)
                    .filter(|o| object::deletion_timestamp(&o.value()).is_none())
                    .map(|o| o.name().to_string())
                    .collect();
                for n in names {
                    let _ = self.delete(&d, Some(&name), &n, &DeleteOptions::default());
                }
            }
        }
        self.maybe_finish_namespace(&name);
        let key = (String::new(), name);
        Ok(match self.store.get(&def.storage, &key) {
            Some(o) => Deleted::Pending(o.clone()),
            None => Deleted::Gone(old),
        })
    }

    fn maybe_finish_namespace(&mut self, ns: &str) {
        let key = (String::new(), ns.to_string());
        let terminating = self
            .store
            .get("namespaces", &key)
            .is_some_and(|n| object::deletion_timestamp(&n).is_some());
        if !terminating {
            return;
        }
        let empty = self
            .store
            .storages()
            .iter()
            .filter(|s| self.def_by_storage(s).is_some_and(|d| d.namespaced))
            .all(|s| !self.store.any_in_namespace(s, ns));
        if empty {
            self.remove_object("namespaces", &key);
        }
    }

    /// `POST pods/<name>/binding`: assigns a pod to a node.
    pub fn bind(
        &mut self,
        ns: &str,
        name: &str,
        binding: &Value,
        opts: &WriteOptions,
    ) -> Result<(), ApiError> {
        let def = self
            .registry
            .find("", "v1", "pods")
            .ok_or_else(|| ApiError::internal("pods are not served"))?;
        if !binding.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a Binding object",
            ));
        }
        let bname = object::name(binding);
        if !bname.is_empty() && bname != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({bname}) does not match the name on the URL ({name})"
            )));
        }
        let node = object::get_str(binding, &["target", "name"]).unwrap_or("");
        if node.is_empty() {
            return Err(ApiError::invalid(
                "",
                "Binding",
                name,
                vec![FieldError::required("target.name", "")],
            ));
        }
        let old = self.get(&def, Some(ns), name)?;
        let conflict = |why: String| ApiError::conflict("", "pods/binding", name, why);
        if object::deletion_timestamp(&old).is_some() {
            return Err(conflict(format!(
                "pod {name} is being deleted, cannot be assigned to a host"
            )));
        }
        let current = object::get_str(&old, &["spec", "nodeName"]).unwrap_or("");
        if !current.is_empty() {
            return Err(conflict(format!(
                "pod {name} is already assigned to node {current:?}"
            )));
        }
        if old
            .get("spec")
            .and_then(|s| s.get("schedulingGates"))
            .and_then(Value::as_array)
            .is_some_and(|g| !g.is_empty())
        {
            return Err(conflict(format!(
                "pod {name} has non-empty .spec.schedulingGates"
            )));
        }
        let mut new = (*old).clone();
        object::set_path(&mut new, &["spec", "nodeName"], json!(node));
        for (k, v) in object::annotations(binding) {
            object::set_path(&mut new, &["metadata", "annotations", &k], json!(v));
        }
        let now = self.now();
        set_condition(&mut new, "PodScheduled", "True", None, None, &now);
        if opts.dry_run {
            return Ok(());
        }
        let manager = Self::manager_name(opts);
        self.record_manager(
            &def,
            Some(&old),
            &mut new,
            &manager,
            &ManagerOp::Update,
            Subresource::Main,
        );
        self.store.put(&def.storage, new);
        Ok(())
    }

    /// `POST pods/<name>/eviction`: deletes a pod if its disruption budget allows it.
    pub fn evict(&mut self, ns: &str, name: &str, eviction: &Value) -> Result<(), ApiError> {
        let def = self
            .registry
            .find("", "v1", "pods")
            .ok_or_else(|| ApiError::internal("pods are not served"))?;
        if !eviction.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be an Eviction object",
            ));
        }
        let ename = object::name(eviction);
        if ename != name {
            return Err(ApiError::bad_request(format!(
                "name in URL does not match name in Eviction object: {name:?} != {ename:?}"
            )));
        }
        let del = DeleteOptions::from_value(eviction.get("deleteOptions").unwrap_or(&Value::Null))?;
        let pod = self.get(&def, Some(ns), name)?;
        let phase = object::get_str(&pod, &["status", "phase"]).unwrap_or("");
        let ignore_pdb = matches!(phase, "Succeeded" | "Failed" | "Pending")
            || object::deletion_timestamp(&pod).is_some();
        if !ignore_pdb {
            let pdbs: Vec<Arc<Value>> = self
                .store
                .range("poddisruptionbudgets.policy", Some(ns), None)
                .map(|p| p.value_arc())
                .filter(|p| pdb::selects(p, &pod))
                .collect();
            if pdbs.len() > 1 {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
            if let Some(budget_obj) = pdbs.first() {
                let budget = self.budget(budget_obj);
                if !pdb::allows_eviction(budget_obj, &budget, &pod) {
                    return Err(ApiError::too_many_requests(
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        vec![json!({
                            "reason": "DisruptionBudget",
                            "message": format!(
                                "The disruption budget {} needs {} healthy pods and has {} currently",
                                object::name(budget_obj), budget.desired_healthy, budget.current_healthy
                            ),
                        })],
                    ));
                }
                if !del.dry_run {
                    // Record the disruption so the status is right before the pod goes.
                    let mut new = (**budget_obj).clone();
                    let allowed = (budget.disruptions_allowed - 1).max(0);
                    object::set_path(&mut new, &["status", "disruptionsAllowed"], json!(allowed));
                    let now = self.now();
                    object::set_path(&mut new, &["status", "disruptedPods", name], json!(now));
                    self.store.put("poddisruptionbudgets.policy", new);
                }
            }
        }
        self.delete(&def, Some(ns), name, &del)?;
        Ok(())
    }

    /// Pods a budget covers, in its namespace.
    pub fn budget_pods(&self, budget: &Value) -> Vec<Arc<Value>> {
        let ns = object::namespace(budget);
        // Cheap label check first; parse only the pods the budget covers.
        let Some(sel) = budget
            .get("spec")
            .and_then(|s| s.get("selector"))
            .filter(|s| !s.is_null())
            .and_then(|s| crate::selector::from_api(s).ok())
        else {
            return Vec::new();
        };
        self.store
            .range("pods", Some(ns), None)
            .filter(|p| sel.matches_pairs(&p.labels))
            .map(|p| p.value_arc())
            .collect()
    }

    /// The budget's arithmetic against the current pods and their controllers' scale.
    pub fn budget(&self, budget: &Value) -> pdb::Budget {
        let pods = self.budget_pods(budget);
        let refs: Vec<&Value> = pods.iter().map(|p| &**p).collect();
        let scale = self.controllers_scale(&pods);
        pdb::compute(budget, &refs, scale)
    }

    /// Summed `spec.replicas` of the top-level controllers owning the pods (a ReplicaSet's
    /// Deployment rather than the ReplicaSet), or `None` when a pod has no controller.
    fn controllers_scale(&self, pods: &[Arc<Value>]) -> Option<i64> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut total = 0;
        for pod in pods {
            let mut uid = controller_uid(pod)?;
            let mut obj = self.object_by_uid(&uid)?;
            if obj.get("kind").and_then(Value::as_str) == Some("ReplicaSet")
                && let Some(parent) = controller_uid(&obj)
                && let Some(p) = self.object_by_uid(&parent)
            {
                uid = parent;
                obj = p;
            }
            if seen.insert(uid) {
                total += obj
                    .get("spec")
                    .and_then(|s| s.get("replicas"))
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
            }
        }
        Some(total)
    }

    pub fn object_by_uid(&self, uid: &str) -> Option<Arc<Value>> {
        let (storage, key) = self.store.locate_uid(uid)?;
        self.store.get(storage, key)
    }

    /// `GET .../scale`.
    pub fn get_scale(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let obj = self.get(def, ns, name)?;
        scale_of(def, &obj)
    }

    /// `PUT .../scale` or a patch of it: sets the replicas.
    pub fn set_scale(
        &mut self,
        def: &Arc<ResourceDef>,
        ns: Option<&str>,
        name: &str,
        scale: &Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let paths = def.scale.clone().ok_or_else(ApiError::path_not_found)?;
        let old = self.get(def, ns, name)?;
        let replicas = scale
            .get("spec")
            .and_then(|s| s.get("replicas"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                name,
                vec![FieldError::invalid(
                    "spec.replicas",
                    &json!(replicas),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let rv = object::meta_str(scale, "resourceVersion").unwrap_or("");
        if !rv.is_empty() && rv != object::resource_version(&old) {
            return Err(ApiError::modified(&def.group, &def.plural, name));
        }
        let mut new = (*to_served(def, &old)).clone();
        let path: Vec<&str> = paths
            .spec_replicas
            .trim_start_matches('.')
            .split('.')
            .collect();
        object::set_path(&mut new, &path, json!(replicas));
        let result = self.write_update(
            def,
            old,
            from_served(def, new),
            Subresource::Main,
            opts,
            ManagerOp::Update,
        )?;
        scale_of(def, &result)
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
}

fn add_finalizer(obj: &mut Value, f: &str) {
    let mut fs = object::finalizers(obj);
    if !fs.iter().any(|x| x == f) {
        fs.push(f.to_string());
    }
    object::set_meta(obj, "finalizers", json!(fs));
}

/// The uid of an object's controller owner reference.
pub fn controller_uid(obj: &Value) -> Option<String> {
    object::owner_refs(obj)
        .into_iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
}

/// Sets a status condition, keeping `lastTransitionTime` when the status is unchanged.
pub fn set_condition(
    obj: &mut Value,
    ctype: &str,
    status: &str,
    reason: Option<&str>,
    message: Option<&str>,
    now: &str,
) {
    let mut conds: Vec<Value> = obj
        .get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut cond =
        json!({"type": ctype, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        cond["reason"] = json!(r);
    }
    if let Some(m) = message {
        cond["message"] = json!(m);
    }
    match conds
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ctype))
    {
        Some(existing) => {
            if existing.get("status").and_then(Value::as_str) == Some(status) {
                cond["lastTransitionTime"] = existing
                    .get("lastTransitionTime")
                    .cloned()
                    .unwrap_or(json!(now));
            }
            *existing = cond;
        }
        None => conds.push(cond),
    }
    object::set_path(obj, &["status", "conditions"], json!(conds));
}

/// The `autoscaling/v1` Scale of an object.
pub fn scale_of(def: &ResourceDef, obj: &Value) -> Result<Value, ApiError> {
    let paths = def.scale.as_ref().ok_or_else(ApiError::path_not_found)?;
    let at = |p: &str| -> Option<Value> {
        let segs: Vec<&str> = p.trim_start_matches('.').split('.').collect();
        object::get_path(obj, &segs).cloned()
    };
    let selector = match def.builtin {
        Some(_) => obj
            .get("spec")
            .and_then(|s| s.get("selector"))
            .and_then(|s| crate::selector::from_api(s).ok())
            .map(|s| s.to_query()),
        None => paths
            .label_selector
            .as_deref()
            .and_then(at)
            .and_then(|v| v.as_str().map(str::to_string)),
    };
    let mut status =
        json!({"replicas": at(&paths.status_replicas).and_then(|v| v.as_i64()).unwrap_or(0)});
    if let Some(s) = selector {
        status["selector"] = json!(s);
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": object::name(obj),
            "namespace": object::namespace(obj),
            "uid": object::uid(obj),
            "resourceVersion": object::resource_version(obj),
            "creationTimestamp": object::meta_str(obj, "creationTimestamp"),
        },
        "spec": {"replicas": at(&paths.spec_replicas).and_then(|v| v.as_i64()).unwrap_or(0)},
        "status": status,
    }))
}

pub fn qualified_name(def: &ResourceDef) -> String {
    qualified(&def.group, &def.plural)
}
