//! What every component carries: the client, the clock, leadership, metrics, readiness,
//! the shutdown signal; and the one place writes go through, so that every write is gated
//! on leadership, counted, and its error says what was being written.
//!
//! No other module calls a writing method of `kube::Api`: each takes `PatchParams`,
//! `PostParams`, `DeleteParams` or `EvictParams`, and a test (`tests/write_path.rs`) fails
//! when another module names one. The one exception is the Lease in [`crate::leader`]: taking the
//! lease is how a replica becomes the leader, so it cannot wait for leadership.

use std::fmt::Debug;
use std::sync::Arc;

use edgeplane_api::names::FIELD_MANAGER;
use edgeplane_core::clock::{Clock, SystemClock};
use edgeplane_core::status::OwnedStatus;
use k8s_openapi::api::core::v1::{Binding, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, EvictParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::{ApiResource, ClusterResourceScope, DynamicObject, NamespaceResourceScope};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, is_not_found};
use crate::http::Readiness;
use crate::leader::Leadership;
use crate::metrics::Metrics;

/// The shared state of one component (`edgeplane-controller`, `edgeplane-scheduler`, ...).
/// Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    /// Timestamps written into objects come from it (virtual time on the embedded cluster).
    pub clock: Arc<dyn Clock>,
    /// The component's name: the Lease's name, the events' `reportingController`, the
    /// `component` label of the write metrics.
    pub component: Arc<str>,
    /// This replica (the pod name in a cluster).
    pub identity: Arc<str>,
    pub leadership: Leadership,
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    /// Cancelled to stop the component gracefully.
    pub shutdown: CancellationToken,
}

impl Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("component", &self.component)
            .field("identity", &self.identity)
            .field("role", &self.leadership.role())
            .finish()
    }
}

/// The bounds of an object type the context writes.
pub trait Object:
    Resource<DynamicType = (), Scope: Scope> + Clone + DeserializeOwned + Debug
{
}
impl<K> Object for K where
    K: Resource<DynamicType = (), Scope: Scope> + Clone + DeserializeOwned + Debug
{
}

/// Where the objects of a scope are addressed: namespaced kinds in their namespace,
/// cluster-scoped ones at the root.
pub trait Scope {
    fn api<K: Resource<DynamicType = (), Scope = Self>>(
        client: Client,
        namespace: Option<&str>,
    ) -> Api<K>;
}

impl Scope for NamespaceResourceScope {
    fn api<K: Resource<DynamicType = (), Scope = Self>>(
        client: Client,
        namespace: Option<&str>,
    ) -> Api<K> {
        Api::namespaced(client, namespace.unwrap_or("default"))
    }
}

impl Scope for ClusterResourceScope {
    fn api<K: Resource<DynamicType = (), Scope = Self>>(
        client: Client,
        _namespace: Option<&str>,
    ) -> Api<K> {
        Api::all(client)
    }
}

impl Context {
    /// A context with the wall clock, identity = component, always the leader, a fresh
    /// registry and shutdown token. Adjust with the `with_*` methods.
    pub fn new(client: Client, component: impl Into<Arc<str>>) -> Context {
        let component = component.into();
        Context {
            client,
            clock: Arc::new(SystemClock),
            identity: component.clone(),
            component,
            leadership: Leadership::always(),
            metrics: Arc::new(Metrics::new()),
            readiness: Readiness::default(),
            shutdown: CancellationToken::new(),
        }
    }

    /// The same component against another API server (the hub's members): writes there
    /// are gated on this component's leadership and counted in its metrics.
    pub fn with_client(mut self, client: Client) -> Context {
        self.client = client;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Context {
        self.clock = clock;
        self
    }

    pub fn with_identity(mut self, identity: impl Into<Arc<str>>) -> Context {
        self.identity = identity.into();
        self
    }

    pub fn with_leadership(mut self, leadership: Leadership) -> Context {
        self.leadership = leadership;
        self
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Context {
        self.metrics = metrics;
        self
    }

    pub fn with_readiness(mut self, readiness: Readiness) -> Context {
        self.readiness = readiness;
        self
    }

    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Context {
        self.shutdown = shutdown;
        self
    }

    /// `Ok` when this replica may write; [`Error::NotLeader`] otherwise.
    pub fn ensure_leader(&self, what: impl FnOnce() -> String) -> Result<(), Error> {
        if self.leadership.is_leader() {
            Ok(())
        } else {
            Err(Error::NotLeader(what()))
        }
    }

    /// The API of `K` in `namespace` (ignored for cluster-scoped kinds).
    fn api<K: Object>(&self, namespace: Option<&str>) -> Api<K> {
        K::Scope::api(self.client.clone(), namespace)
    }

    /// The gate in front of every write: leadership, then the write metric.
    fn begin(&self, verb: &str, kind: &str, what: impl FnOnce() -> String) -> Result<(), Error> {
        self.ensure_leader(what)?;
        self.metrics.count_write(&self.component, verb, kind);
        Ok(())
    }

    /// Server-side apply of `object`'s metadata and spec as field manager `edgeplane`,
    /// forcing ownership of the fields it sets (its status is never sent: status has its
    /// own writers, see [`Context::apply_status`]).
    pub async fn apply<K: Object + Serialize>(&self, object: &K) -> Result<K, Error> {
        let kind = K::kind(&());
        let name = object.meta().name.clone().unwrap_or_default();
        let namespace = object.meta().namespace.clone();
        let what = || format!("{kind} {}", qualified(namespace.as_deref(), &name));
        let mut body = serde_json::to_value(object).map_err(|source| Error::Encode {
            what: what(),
            source,
        })?;
        if let Some(map) = body.as_object_mut() {
            map.insert("apiVersion".into(), json!(K::api_version(&())));
            map.insert("kind".into(), json!(kind));
            map.remove("status");
        }
        self.begin("apply", &kind, what)?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.api::<K>(namespace.as_deref())
            .patch(&name, &params, &Patch::Apply(body))
            .await
            .map_err(|e| Error::kube(format!("applying {}", what()), e))
    }

    /// Creates `object` as field manager `edgeplane` (`generateName` allowed): for objects
    /// that are events in themselves, one per occurrence (a VMI migration), which
    /// server-side apply, create-or-update by name, cannot express. Returns what the API
    /// server stored (with its name).
    pub async fn create<K: Object + Serialize>(&self, object: &K) -> Result<K, Error> {
        let kind = K::kind(&());
        let meta = object.meta();
        let name = meta
            .name
            .clone()
            .or_else(|| meta.generate_name.as_ref().map(|g| format!("{g}*")))
            .unwrap_or_default();
        let namespace = meta.namespace.clone();
        let what = || format!("{kind} {}", qualified(namespace.as_deref(), &name));
        self.begin("create", &kind, what)?;
        let params = kube::api::PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        self.api::<K>(namespace.as_deref())
            .create(&params, object)
            .await
            .map_err(|e| Error::kube(format!("creating {}", what()), e))
    }

    /// Server-side apply of `status` on the status subresource of the object `name`. The
    /// kind, its apiVersion and the field manager come from the status type (a type per
    /// owner: the descheduler's `lastMitigatedTimestamp` is not the binding controller's).
    pub async fn apply_status<S>(
        &self,
        namespace: Option<&str>,
        name: &str,
        status: &S,
    ) -> Result<S::Object, Error>
    where
        S: OwnedStatus,
        S::Object: Object,
    {
        self.apply_status_as::<S::Object, S>(S::FIELD_MANAGER, namespace, name, status)
            .await
    }

    /// [`Context::apply_status`] as the field manager `manager`, for writers whose manager
    /// is known only at run time (each site's measurement agent owns its own entries of a
    /// topology's `status.measured`).
    pub async fn apply_status_as<K: Object, S: Serialize>(
        &self,
        manager: &str,
        namespace: Option<&str>,
        name: &str,
        status: &S,
    ) -> Result<K, Error> {
        let kind = K::kind(&());
        let what = || format!("the status of {kind} {}", qualified(namespace, name));
        let mut metadata = json!({"name": name});
        if let Some(ns) = namespace {
            metadata["namespace"] = json!(ns);
        }
        let body = json!({
            "apiVersion": K::api_version(&()),
            "kind": kind,
            "metadata": metadata,
            "status": status,
        });
        self.begin("apply_status", &kind, what)?;
        let params = PatchParams::apply(manager).force();
        self.api::<K>(namespace)
            .patch_status(name, &params, &Patch::Apply(body))
            .await
            .map_err(|e| Error::kube(format!("applying {}", what()), e))
    }

    /// A JSON, merge or strategic merge patch of the object `name`, as field manager
    /// `edgeplane`; `action` says what the patch does ("placing pod ns/a on node-1"), for
    /// the error.
    pub async fn patch<K: Object, P: Serialize + Debug>(
        &self,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch<P>,
        action: &str,
    ) -> Result<K, Error> {
        self.begin("patch", &K::kind(&()), || action.to_string())?;
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        self.api::<K>(namespace)
            .patch(name, &params, patch)
            .await
            .map_err(|e| Error::kube(action, e))
    }

    /// Binds `pod` to `node` through `pods/binding`, as a scheduler does.
    pub async fn bind(&self, pod: &Pod, binding: &Binding) -> Result<(), Error> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let node = binding.target.name.as_deref().unwrap_or_default();
        let key = qualified(Some(namespace), &name);
        self.begin("create", "Binding", || format!("binding of pod {key}"))?;
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        self.api::<Pod>(Some(namespace))
            .create_subresource::<_, serde_json::Value>("binding", &name, &params, binding)
            .await
            .map(|_| ())
            .map_err(|e| Error::kube(format!("binding pod {key} to {node}"), e))
    }

    /// Evicts a pod through `pods/eviction`, so PodDisruptionBudgets hold. `uid` is a
    /// precondition: a replacement that took the same name is not evicted.
    pub async fn evict(
        &self,
        namespace: &str,
        name: &str,
        uid: Option<String>,
    ) -> Result<(), Error> {
        let key = qualified(Some(namespace), name);
        self.begin("evict", "Pod", || format!("eviction of pod {key}"))?;
        let params = EvictParams {
            delete_options: Some(DeleteParams {
                preconditions: Some(Preconditions {
                    uid,
                    resource_version: None,
                }),
                ..DeleteParams::default()
            }),
            ..EvictParams::default()
        };
        self.api::<Pod>(Some(namespace))
            .evict(name, &params)
            .await
            .map(|_| ())
            .map_err(|e| Error::kube(format!("evicting pod {key}"), e))
    }

    /// Creates an Event (see [`crate::events`] for how they are built).
    pub async fn create_event(&self, event: &Event) -> Result<(), Error> {
        let namespace = event.metadata.namespace.as_deref().unwrap_or("default");
        let reason = event.reason.as_deref().unwrap_or_default();
        self.begin("event", "Event", || format!("event {reason}"))?;
        self.api::<Event>(Some(namespace))
            .create(&PostParams::default(), event)
            .await
            .map(|_| ())
            .map_err(|e| Error::kube(format!("creating event {reason} in {namespace}"), e))
    }

    /// Deletes an object; one that is already gone counts as deleted.
    pub async fn delete<K: Object>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), Error> {
        let kind = K::kind(&());
        let what = || format!("deletion of {kind} {}", qualified(namespace, name));
        self.begin("delete", &kind, what)?;
        match self
            .api::<K>(namespace)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::kube(
                format!("deleting {kind} {}", qualified(namespace, name)),
                e,
            )),
        }
    }
}

impl Context {
    /// Server-side apply of an object of any kind, given as JSON (`apiVersion`, `kind`,
    /// `metadata.name`, and `metadata.namespace` for namespaced kinds), as
    /// `field_manager`, forcing ownership of the fields it sets. `resource` addresses it
    /// (its plural and scope).
    pub async fn apply_json(
        &self,
        resource: &ApiResource,
        namespaced: bool,
        body: &serde_json::Value,
        field_manager: &str,
    ) -> Result<(), Error> {
        let name = body
            .pointer("/metadata/name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let namespace = body
            .pointer("/metadata/namespace")
            .and_then(serde_json::Value::as_str);
        let what = || format!("{} {}", resource.kind, qualified(namespace, name));
        self.begin("apply", &resource.kind, what)?;
        let params = PatchParams::apply(field_manager).force();
        dynamic_api(self.client.clone(), resource, namespaced, namespace)
            .patch(name, &params, &Patch::Apply(body))
            .await
            .map(|_| ())
            .map_err(|e| Error::kube(format!("applying {}", what()), e))
    }

    /// Deletes an object of any kind; one that is already gone counts as deleted.
    pub async fn delete_json(
        &self,
        resource: &ApiResource,
        namespaced: bool,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), Error> {
        let what = || {
            format!(
                "deletion of {} {}",
                resource.kind,
                qualified(namespace, name)
            )
        };
        self.begin("delete", &resource.kind, what)?;
        match dynamic_api(self.client.clone(), resource, namespaced, namespace)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::kube(
                format!("deleting {} {}", resource.kind, qualified(namespace, name)),
                e,
            )),
        }
    }
}

fn dynamic_api(
    client: Client,
    resource: &ApiResource,
    namespaced: bool,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match (namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client, ns, resource),
        (true, None) => Api::namespaced_with(client, "default", resource),
        (false, _) => Api::all_with(client, resource),
    }
}

/// `namespace/name`, or `name` for cluster-scoped objects.
fn qualified(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}
