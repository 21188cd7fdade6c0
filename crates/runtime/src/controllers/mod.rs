//! edgeplane's controllers on Kubernetes:
//!
//! - [`offer`]: offers -> bindings (create, restore, delete) and offer status;
//! - [`binding`]: evaluates bindings through the providers and writes their status;
//! - [`policy`]: policy status (rule count, Valid);
//! - [`topology`]: topology status (site, link and measurement counts, Valid);
//! - [`nf`] and [`chain`]: network functions rendered as pods or VMs, service chains
//!   wired over Multus with a binding per lane ([`run_functions`]: started apart, since
//!   they watch KubeVirt and Multus kinds that not every cluster has).
//!
//! Each is a kube-runtime `Controller` fed from the shared [`Caches`] (no watch of its
//! own): triggers are mapped from cache changes to the objects they concern. Followers
//! keep the caches warm and reconcile nothing; when a replica becomes the leader every
//! object is reconciled once. Every write goes through [`Context`], which refuses it on a
//! follower, and a failed reconcile is requeued with per-object exponential backoff in
//! one error policy.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio::task::JoinSet;

use crate::cache::{Cache, Cached, Caches};
use crate::context::Context;
use crate::error::{Backoff, Error};
use crate::metrics::{ControllerLabels, ErrorLabels};
use crate::providers::ProviderRegistry;
use crate::view::ViewCache;

pub mod binding;
pub mod chain;
pub mod nf;
pub mod offer;
pub mod policy;
pub mod topology;

/// How the controllers run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Bindings evaluated at once.
    pub binding_concurrency: u16,
    /// Offers reconciled at once.
    pub offer_concurrency: u16,
    /// How often every offer is reconciled even when nothing changed (a safety net for
    /// missed notifications; a reconcile with nothing to do writes nothing).
    pub offer_resync: Duration,
    /// Requests to reconcile an offer within this time of each other are folded into one
    /// (kube-runtime's trailing debounce): a Deployment's pods arrive, and its bindings
    /// turn Compliant, in bursts, and each used to re-expand the offer. Short, so bindings
    /// still exist well before the planner's quiet period ends.
    pub offer_debounce: Duration,
    /// NetworkFunctions and ServiceChains, where the NF controllers run: offers may then
    /// target them. `None`: such targets match nothing.
    pub functions: Option<crate::cache::FunctionTargets>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            binding_concurrency: 8,
            offer_concurrency: 4,
            offer_resync: Duration::from_secs(300),
            offer_debounce: Duration::from_millis(100),
            functions: None,
        }
    }
}

/// Runs the offer, binding, policy-status and topology-status controllers until
/// `ctx.shutdown` is cancelled (they finish the reconciles in flight, then return).
pub async fn run(
    ctx: Context,
    caches: Caches,
    views: ViewCache,
    providers: Arc<ProviderRegistry>,
    options: Options,
) {
    let mut tasks = JoinSet::new();
    tasks.spawn(offer::run(
        ctx.clone(),
        caches.clone(),
        views.clone(),
        options.clone(),
    ));
    tasks.spawn(binding::run(
        ctx.clone(),
        caches.clone(),
        views.clone(),
        providers.clone(),
        options.clone(),
    ));
    tasks.spawn(policy::run(ctx.clone(), caches.clone(), providers));
    tasks.spawn(topology::run(ctx.clone(), caches.clone(), views));
    while tasks.join_next().await.is_some() {}
}

/// Runs the NF and chain controllers until `ctx.shutdown` is cancelled.
pub async fn run_functions(ctx: Context, caches: Caches, functions: nf::Functions) {
    let mut tasks = JoinSet::new();
    tasks.spawn(nf::run(ctx.clone(), caches.clone(), functions.clone()));
    tasks.spawn(chain::run(ctx, caches, functions));
    while tasks.join_next().await.is_some() {}
}

/// What each controller's reconciler receives: the component's context, the caches, and
/// the per-object backoff.
pub struct Shared<K: Cached, S> {
    pub ctx: Context,
    pub caches: Caches,
    pub backoff: Backoff<ObjectRef<K>>,
    /// The controller's name in metrics and logs.
    pub name: &'static str,
    pub extra: S,
}

/// The one error policy: a follower waits (it does no work), anything else is counted
/// and retried with per-object exponential backoff (1s, 2s, 4s, ... 5m): conflicts,
/// throttling (429), server errors and timeouts alike.
pub fn error_policy<K: Cached, S>(
    object: Arc<K>,
    error: &Error,
    shared: Arc<Shared<K, S>>,
) -> Action {
    if matches!(error, Error::NotLeader(_)) {
        return Action::await_change();
    }
    shared
        .ctx
        .metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            controller: shared.name.into(),
            kind: error.kind().into(),
        })
        .inc();
    let wait = shared.backoff.fail(ObjectRef::from_obj(&*object));
    tracing::warn!(controller = shared.name, object = %ObjectRef::from_obj(&*object), %error, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

/// Counts a reconcile and its duration, and forgets the object's failures on success.
pub async fn instrumented<K: Cached, S>(
    object: Arc<K>,
    shared: Arc<Shared<K, S>>,
    reconcile: impl Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    let labels = ControllerLabels {
        controller: shared.name.into(),
    };
    shared.ctx.metrics.reconciles.get_or_create(&labels).inc();
    let started = tokio::time::Instant::now();
    let result = reconcile.await;
    shared
        .ctx
        .metrics
        .reconcile_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    if result.is_ok() {
        shared.backoff.succeed(&ObjectRef::from_obj(&*object));
    }
    result
}

/// Every object of a cache, as references.
pub fn all_refs<K: Cached>(cache: &Cache<K>) -> Vec<ObjectRef<K>> {
    cache
        .list()
        .iter()
        .map(|o| ObjectRef::from_obj(&**o))
        .collect()
}

/// A trigger that yields once the caches have listed, then again each time this replica
/// becomes the leader: the moments when everything must be reconciled.
pub fn reconcile_everything(
    ctx: &Context,
    caches: &Caches,
) -> impl Stream<Item = ()> + Send + 'static {
    let caches = caches.clone();
    let acquisitions = ctx.leadership.acquisitions();
    futures::stream::once(async move {
        caches.wait_ready().await;
        acquisitions
    })
    .flatten()
}

/// Runs a controller over the objects of `cache`, reconciling the objects that `triggers`
/// name, until the context's shutdown.
pub async fn drive<K, S, F, Fut>(
    shared: Arc<Shared<K, S>>,
    cache: &Cache<K>,
    triggers: impl Stream<Item = ObjectRef<K>> + Send + 'static,
    concurrency: u16,
    debounce: Duration,
    reconcile: F,
) where
    K: Cached + Resource<DynamicType = ()>,
    S: Send + Sync + 'static,
    F: FnMut(Arc<K>, Arc<Shared<K, S>>) -> Fut,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let name = shared.name;
    Controller::for_stream(
        futures::stream::pending::<Result<K, watcher::Error>>(),
        cache.store().clone(),
    )
    .with_config(
        Config::default()
            .concurrency(concurrency)
            .debounce(debounce),
    )
    .reconcile_on(triggers)
    .graceful_shutdown_on(shared.ctx.shutdown.clone().cancelled_owned())
    .run(reconcile, error_policy, shared)
    .for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(controller = name, %error, "controller");
        }
    })
    .await;
}

/// `namespace/name` references of a namespaced kind.
pub fn object_ref<K: Resource<DynamicType = ()>>(namespace: &str, name: &str) -> ObjectRef<K> {
    ObjectRef::new(name).within(namespace)
}
