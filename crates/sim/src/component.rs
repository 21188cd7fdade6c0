//! The seam where edgeplane's controllers plug into the simulator.
//!
//! A [`Component`] is started once, after the edgeplane CRDs are installed and before the
//! scenario's objects are applied, on the embedded cluster's client and clock. It runs
//! until the context's `shutdown` token is cancelled at the end of the run. Registering a
//! controller is one [`component`] call, here the reference network controller's
//! reconciler:
//!
//! ```
//! use edgeplane_netctl::reference::{ReferenceConfig, ReferenceController};
//! use edgeplane_sim::{Component, SimContext, component};
//!
//! let components: Vec<Box<dyn Component>> = vec![
//!     Box::new(component("network-controller", |ctx: SimContext| async move {
//!         let controller =
//!             ReferenceController::new(ctx.client, ctx.clock, ReferenceConfig::default());
//!         controller.run_reconciler(ctx.shutdown.cancelled_owned()).await;
//!         Ok(())
//!     })),
//! ];
//! assert_eq!(components[0].name(), "network-controller");
//! ```
//!
//! A component whose pods need a mutating webhook on a real cluster (the gate-mode
//! scheduler's gate) gives its mutation as [`Component::pod_admission`]; the embedded
//! cluster runs it on every pod create.

use std::future::Future;
use std::sync::Arc;

use edgeplane_cluster::{PodAdmission, VirtualClock};
use edgeplane_core::clock::Clock;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::scenario::Settings;

/// What a component's run ends with.
pub type ComponentResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// What a component gets to run with.
#[derive(Clone)]
pub struct SimContext {
    /// A client of the embedded cluster (in-process; no sockets).
    pub client: kube::Client,
    /// The virtual clock, for timestamps written into objects.
    pub clock: Arc<dyn Clock>,
    /// The same clock with its elapsed time, for components that want it.
    pub virtual_clock: VirtualClock,
    /// The scenario's timing settings (quiet period, max wait, period, ...).
    pub settings: Settings,
    /// The scenario has NetworkFunctions or ServiceChains: run what they need (the NF
    /// and chain controllers, lane planning, lane repair).
    pub functions: bool,
    /// Cancelled when the run ends; components stop promptly.
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for SimContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimContext")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A controller (or anything else) that runs inside the simulation.
pub trait Component: Send + Sync {
    /// A short name for messages (`offer-controller`).
    fn name(&self) -> &str;

    /// A mutating admission step for pod creates, standing in for the component's
    /// webhook on a real cluster.
    fn pod_admission(&self) -> Option<PodAdmission> {
        None
    }

    /// The component's run. The simulator spawns it on the simulation's runtime.
    fn start(&self, ctx: SimContext) -> BoxFuture<'static, ComponentResult>;
}

/// A component from a closure.
pub struct FnComponent<F> {
    name: String,
    run: F,
    admission: Option<PodAdmission>,
}

impl<F> FnComponent<F> {
    /// Adds a pod admission step (see [`Component::pod_admission`]).
    pub fn with_admission(mut self, hook: PodAdmission) -> Self {
        self.admission = Some(hook);
        self
    }
}

impl<F, Fut> Component for FnComponent<F>
where
    F: Fn(SimContext) -> Fut + Send + Sync,
    Fut: Future<Output = ComponentResult> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn pod_admission(&self) -> Option<PodAdmission> {
        self.admission.clone()
    }

    fn start(&self, ctx: SimContext) -> BoxFuture<'static, ComponentResult> {
        Box::pin((self.run)(ctx))
    }
}

/// A component that runs `run(ctx)`.
pub fn component<F, Fut>(name: impl Into<String>, run: F) -> FnComponent<F>
where
    F: Fn(SimContext) -> Fut + Send + Sync,
    Fut: Future<Output = ComponentResult> + Send + 'static,
{
    FnComponent {
        name: name.into(),
        run,
        admission: None,
    }
}
