//! What every component carries: the client, the clock, leadership, metrics, readiness,
//! the shutdown signal; and the one place writes go through, so that every write is gated
//! on leadership and counted.

use std::fmt::Debug;
use std::sync::Arc;

use edgeplane_api::names::FIELD_MANAGER;
use edgeplane_core::clock::{Clock, SystemClock};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, is_not_found};
use crate::events::EventRecorder;
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

    /// The component's event recorder (clock-stamped, leader-gated).
    pub fn events(&self) -> EventRecorder {
        EventRecorder::new(
            self.client.clone(),
            self.clock.clone(),
            self.component.clone(),
            self.identity.clone(),
            self.leadership.clone(),
            self.metrics.clone(),
        )
    }

    /// `Ok` when this replica may write; [`Error::NotLeader`] otherwise.
    pub fn ensure_leader(&self, what: impl FnOnce() -> String) -> Result<(), Error> {
        if self.leadership.is_leader() {
            Ok(())
        } else {
            Err(Error::NotLeader(what()))
        }
    }

    /// Server-side apply of `body` (which carries apiVersion and kind) as field manager
    /// `edgeplane`, forcing ownership of the fields it sets.
    pub async fn apply<K>(
        &self,
        api: &Api<K>,
        name: &str,
        body: serde_json::Value,
    ) -> Result<K, Error>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let kind = K::kind(&());
        self.ensure_leader(|| format!("{kind} {name}"))?;
        self.metrics.count_write(&self.component, "apply", &kind);
        api.patch(name, &apply_params(), &Patch::Apply(body))
            .await
            .map_err(|e| Error::kube(format!("applying {kind} {name}"), e))
    }

    /// Server-side apply on the status subresource (`body` carries apiVersion, kind,
    /// metadata.name and `status`).
    pub async fn apply_status<K>(
        &self,
        api: &Api<K>,
        name: &str,
        body: serde_json::Value,
    ) -> Result<K, Error>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let kind = K::kind(&());
        self.ensure_leader(|| format!("status of {kind} {name}"))?;
        self.metrics
            .count_write(&self.component, "apply_status", &kind);
        api.patch_status(name, &apply_params(), &Patch::Apply(body))
            .await
            .map_err(|e| Error::kube(format!("applying the status of {kind} {name}"), e))
    }

    /// Deletes an object; one that is already gone counts as deleted.
    pub async fn delete<K>(&self, api: &Api<K>, name: &str) -> Result<(), Error>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let kind = K::kind(&());
        self.ensure_leader(|| format!("deletion of {kind} {name}"))?;
        self.metrics.count_write(&self.component, "delete", &kind);
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::kube(format!("deleting {kind} {name}"), e)),
        }
    }
}

/// Server-side apply as `edgeplane`, forced: edgeplane owns the fields it writes.
pub fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}
