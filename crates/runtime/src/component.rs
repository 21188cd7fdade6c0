//! Starting and stopping a component: the parts every edgeplane process runs (leader
//! election, caches, the view cache, readiness checks, the HTTP endpoints), to which the
//! component adds its own tasks (controllers, the scheduler, the webhook).
//!
//! ```no_run
//! # async fn controller(client: kube::Client) -> std::io::Result<()> {
//! use std::sync::Arc;
//!
//! use edgeplane_runtime::providers::ProviderRegistry;
//! use edgeplane_runtime::{Base, BaseConfig, controllers};
//!
//! let mut base = Base::start(client, BaseConfig::new("edgeplane-controller")).await?;
//! let providers = Arc::new(ProviderRegistry::new(
//!     base.views.builtin_provider(),
//!     Default::default(),
//! ));
//! base.spawn(controllers::run(
//!     base.ctx.clone(),
//!     base.caches.clone(),
//!     base.views.clone(),
//!     providers,
//!     Default::default(),
//! ));
//! tokio::signal::ctrl_c().await?;
//! base.stop().await; // steps down and releases the Lease, finishes reconciles in flight
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use edgeplane_core::clock::{Clock, SystemClock};
use kube::Client;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cache::Caches;
use crate::context::Context;
use crate::leader::{self, Leadership, LeaseConfig, Role};
use crate::metrics::{ComponentLabels, Metrics};
use crate::view::ViewCache;

/// How to start a component.
#[derive(Clone, Debug)]
pub struct BaseConfig {
    /// `edgeplane-controller`, `edgeplane-scheduler`: also the Lease's name.
    pub component: String,
    /// This replica; defaults to the component.
    pub identity: String,
    pub clock: Arc<dyn Clock>,
    /// `None`: no election, this replica is always the leader (single replica, dev).
    pub lease: Option<LeaseConfig>,
    /// Where to serve `/healthz`, `/readyz` and `/metrics`; `None` serves nothing.
    pub http_addr: Option<SocketAddr>,
}

impl BaseConfig {
    pub fn new(component: impl Into<String>) -> BaseConfig {
        let component = component.into();
        BaseConfig {
            identity: component.clone(),
            component,
            clock: Arc::new(SystemClock),
            lease: None,
            http_addr: None,
        }
    }

    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Elects a leader through the Lease named like the component in `namespace`, with
    /// client-go's default timings.
    pub fn leader_election(mut self, namespace: impl Into<String>) -> Self {
        self.lease = Some(LeaseConfig::new(
            namespace,
            self.component.clone(),
            self.identity.clone(),
        ));
        self
    }

    pub fn lease(mut self, lease: Option<LeaseConfig>) -> Self {
        self.lease = lease;
        self
    }

    pub fn http(mut self, addr: SocketAddr) -> Self {
        self.http_addr = Some(addr);
        self
    }
}

/// A running component's shared parts and its tasks.
pub struct Base {
    pub ctx: Context,
    pub caches: Caches,
    pub views: ViewCache,
    /// The bound address of the HTTP endpoints.
    pub http_addr: Option<SocketAddr>,
    tasks: JoinSet<()>,
    elector: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Base")
            .field("ctx", &self.ctx)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

impl Base {
    /// Starts leader election, the caches, the view cache and the HTTP endpoints.
    pub async fn start(client: Client, config: BaseConfig) -> std::io::Result<Base> {
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::new());
        let (leadership, elector) = match config.lease {
            Some(lease) => {
                let (l, task) = leader::spawn(
                    client.clone(),
                    config.clock.clone(),
                    lease,
                    shutdown.clone(),
                );
                (l, Some(task))
            }
            None => (Leadership::always(), None),
        };
        let ctx = Context::new(client.clone(), config.component.clone())
            .with_identity(config.identity.clone())
            .with_clock(config.clock.clone())
            .with_leadership(leadership.clone())
            .with_metrics(metrics.clone())
            .with_shutdown(shutdown.clone());
        let caches = Caches::start(&client, &shutdown);
        let views = ViewCache::start(
            &caches.nodes,
            &caches.pods,
            &caches.topologies,
            config.clock.clone(),
            metrics.clone(),
            shutdown.clone(),
        )
        .with_reservations(
            &caches.bindings,
            &caches.offers,
            &caches.policies,
            shutdown.clone(),
        );
        let c = caches.clone();
        ctx.readiness.add("caches", move || c.is_ready());
        let l = leadership.clone();
        ctx.readiness.add("leader-election", move || l.is_known());
        let mut tasks = JoinSet::new();
        // The leader gauge follows the role.
        let gauge = metrics
            .leader
            .get_or_create(&ComponentLabels {
                component: config.component.clone(),
            })
            .clone();
        let mut role = leadership.watch();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            loop {
                gauge.set(i64::from(*role.borrow_and_update() == Role::Leader));
                tokio::select! {
                    _ = stop.cancelled() => break,
                    changed = role.changed() => if changed.is_err() { break },
                }
            }
        });
        let http_addr = match config.http_addr {
            Some(addr) => {
                let (bound, task) =
                    crate::http::serve(addr, metrics, ctx.readiness.clone(), shutdown.clone())
                        .await?;
                tasks.spawn(async move {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => tracing::error!(%error, "http server failed"),
                        Err(error) => tracing::error!(%error, "http server task failed"),
                    }
                });
                Some(bound)
            }
            None => None,
        };
        Ok(Base {
            ctx,
            caches,
            views,
            http_addr,
            tasks,
            elector,
        })
    }

    /// Runs a task of the component until it ends (tasks watch `ctx.shutdown`).
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Graceful stop: cancels the shutdown token, waits for the tasks (controllers finish
    /// the reconciles in flight), and lets the elector step down and release the Lease.
    pub async fn stop(mut self) {
        self.ctx.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Some(elector) = self.elector.take() {
            let _ = elector.await;
        }
    }

    /// Waits until every task has ended (after a shutdown elsewhere cancelled the token).
    pub async fn wait(self) {
        self.stop().await
    }

    /// Crash: stops every task at once, without releasing the Lease (as a killed process).
    pub fn abort(mut self) {
        if let Some(elector) = self.elector.take() {
            elector.abort();
        }
        self.tasks.abort_all();
        // Caches and the view cache stop with the token; nothing is written by them.
        self.ctx.shutdown.cancel();
    }
}
