//! Writes: type and metadata checks, admission (defaulting, decoding, validation),
//! server-side fields, create and update, generation and no-op detection.

use std::sync::Arc;

use serde_json::{Value, json};

use super::managed_fields::ManagerOp;
use super::served::from_served;
use super::{State, Subresource, WriteOptions};
use crate::builtin;
use crate::error::{ApiError, FieldError};
use crate::object::{self};
use crate::resources::{Builtin, ResourceDef, defs_from_crd};
use crate::schema;

pub(super) fn same_ignoring_bookkeeping(a: &Value, b: &Value) -> bool {
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

impl State {
    pub(super) fn check_type_meta(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
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

    pub(super) fn check_metadata_types(obj: &Value) -> Result<(), ApiError> {
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
                if opts.strict
                    && let Some(unknown) = builtin::schemas::schemas().unknown_fields(obj)
                    && !unknown.is_empty()
                {
                    return Err(strict_error(def, &unknown));
                }
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
                        return Err(strict_error(def, &outcome.unknown_fields));
                    }
                    if outcome.errors.is_empty() {
                        errs.extend(crate::crd_rules::check(obj, old, schema));
                    }
                    errs.extend(outcome.errors);
                }
            }
            _ => {}
        }
        if def.builtin == Some(Builtin::CustomResourceDefinition) {
            if let Err(e) = defs_from_crd(obj) {
                errs.extend(e);
            }
            errs.extend(crate::crd_rules::compile_all(obj));
        }
        if !errs.is_empty() {
            return Err(ApiError::invalid(&def.group, &def.kind, &name, errs));
        }
        self.admission_policies(def, obj, old, sub, opts)
    }

    /// Validating admission: the ValidatingAdmissionPolicies bound in this cluster.
    fn admission_policies(
        &self,
        def: &ResourceDef,
        obj: &Value,
        old: Option<&Value>,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> Result<(), ApiError> {
        use crate::admission_policy::{self, Attributes, BINDINGS, POLICIES};
        if self.store.len(BINDINGS) == 0 {
            return Ok(());
        }
        let all = |storage: &str| -> Vec<Arc<Value>> {
            self.store
                .range(storage, None, None)
                .map(|s| s.value_arc())
                .collect()
        };
        let namespace = object::namespace(obj);
        let namespace_object = (def.namespaced && !namespace.is_empty())
            .then(|| {
                self.store
                    .get("namespaces", &(String::new(), namespace.to_string()))
            })
            .flatten();
        let admin = crate::api::UserInfo::admin();
        let attrs = Attributes {
            def,
            subresource: if sub == Subresource::Status {
                "status"
            } else {
                ""
            },
            namespace,
            name: object::name(obj),
            object: obj,
            old_object: old,
            namespace_object: namespace_object.as_deref(),
            user: opts.user.as_ref().unwrap_or(&admin),
            dry_run: opts.dry_run,
        };
        admission_policy::admit(&all(POLICIES), &all(BINDINGS), &attrs)
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

    pub(super) fn create_as(
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
        // A uid in the body is a precondition (the registry's DefaultUpdatedObjectInfo).
        let body_uid = object::uid(&body);
        if !body_uid.is_empty() && body_uid != object::uid(&old) {
            return Err(ApiError::conflict(
                &def.group,
                &def.plural,
                name,
                format!(
                    "Precondition failed: UID in precondition: {body_uid}, UID in object meta: {}",
                    object::uid(&old)
                ),
            ));
        }
        let candidate = from_served(def, body);
        self.write_update(def, old, candidate, sub, opts, ManagerOp::Update)
    }

    pub(super) fn write_update(
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
        // A patch that changes the uid: ValidateObjectMetaUpdate's immutable field.
        let uid = object::uid(&candidate);
        if !uid.is_empty() && uid != object::uid(&old) {
            return Err(ApiError::invalid(
                &def.group,
                &def.kind,
                &name,
                vec![FieldError::invalid(
                    "metadata.uid",
                    &json!(uid),
                    "field is immutable",
                )],
            ));
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

/// 400 for `fieldValidation=Strict` with unknown fields, in the API server's words.
fn strict_error(def: &ResourceDef, unknown: &[String]) -> ApiError {
    let list: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
        def.kind,
        def.version,
        def.kind,
        list.join(", ")
    ))
}
