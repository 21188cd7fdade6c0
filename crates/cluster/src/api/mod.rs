//! The API server's semantics over the store: get, list, create, update, patch, delete,
//! the status and scale subresources, pods/binding and pods/eviction, owner-reference
//! garbage collection, finalizers, graceful pod deletion and namespace termination.
//!
//! Everything happens under one lock, so each request is atomic and a rejected request
//! leaves the store exactly as it was. Objects go in and out in their served shape; the
//! HTTP layer and the in-process controllers both call these functions.
//!
//! One file per concept: `served` (the served shape of objects, selectors on them),
//! `read` (get, list), `write` (admission, create, update), `managed_fields` (field
//! managers), `patches` (patches and server-side apply), `delete`, `gc` (owner
//! references, finalizers, garbage collection), `namespaces` (namespace termination),
//! `pods` (binding, eviction, disruption budgets) and `scale`.

mod delete;
mod gc;
mod managed_fields;
mod namespaces;
mod patches;
mod pods;
mod read;
mod scale;
mod served;
mod write;

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::clock::VirtualClock;
use crate::error::{ApiError, qualified};
use crate::object::{self, format_time};
use crate::resources::{Registry, ResourceDef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ObjKey, Store, Stored};

pub use gc::controller_uid;
pub use namespaces::SYSTEM_NAMESPACES;
pub use read::parse_rv;
pub use scale::scale_of;
pub use served::{
    check_fields, field_value, selected, served_natively, served_value, shape_of, stored_selected,
    to_served,
};

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
    /// Who writes, as admission sees it; `None` is the cluster admin.
    pub user: Option<UserInfo>,
}

/// The requesting user as admission sees it (`request.userInfo`). The embedded cluster
/// authenticates no one: a request acts as the admin, or as whom its `Impersonate-User`
/// and `Impersonate-Group` headers name (`kubectl --as`, kube-rs' `impersonate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The user of requests that name no one.
    pub fn admin() -> Self {
        UserInfo {
            username: "system:admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    /// A service account, with the groups the API server gives its tokens.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        UserInfo {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
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
    /// The patch media types a resource accepts, as a real API server lists them
    /// (strategic merge patch only for built-in kinds).
    pub fn media_types(custom: bool) -> &'static [&'static str] {
        if custom {
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ]
        } else {
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
                "application/apply-patch+yaml",
            ]
        }
    }

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

    /// The current virtual time, as a timestamp.
    pub fn clock_now(&self) -> jiff::Timestamp {
        self.clock.now()
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

    pub fn object_by_uid(&self, uid: &str) -> Option<Arc<Value>> {
        let (storage, key) = self.store.locate_uid(uid)?;
        self.store.get(storage, key)
    }
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

pub fn qualified_name(def: &ResourceDef) -> String {
    qualified(&def.group, &def.plural)
}
