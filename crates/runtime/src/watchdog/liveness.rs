//! Whether a planning scheduler is alive, as the gate webhook and the watchdog read it:
//! from a cache of the scheduler's Lease, judged on the component's clock
//! (`edgeplane_core::gate::liveness`), or, in process, assumed.

use std::sync::Arc;

use edgeplane_core::clock::Clock;
use edgeplane_core::gate::{LeaseFacts, Liveness, liveness};
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;

/// Where the liveness of the planning scheduler comes from. Cheap to clone.
#[derive(Clone)]
pub enum SchedulerWatch {
    /// The scheduler runs in this process without a Lease (the simulator, tests that start
    /// it with `Context::new`): it is alive as long as the process is.
    InProcess,
    /// The scheduler's Lease, watched.
    Lease {
        cache: Cache<Lease>,
        namespace: String,
        name: String,
        clock: Arc<dyn Clock>,
    },
}

impl std::fmt::Debug for SchedulerWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchedulerWatch::InProcess => f.write_str("SchedulerWatch::InProcess"),
            SchedulerWatch::Lease {
                namespace, name, ..
            } => write!(f, "SchedulerWatch::Lease({namespace}/{name})"),
        }
    }
}

impl SchedulerWatch {
    /// Watches the Lease `namespace/name` (only that object: a field selector on its name)
    /// until `shutdown` is cancelled; liveness is judged on `clock`.
    pub fn start(
        client: &Client,
        namespace: &str,
        name: &str,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
    ) -> SchedulerWatch {
        let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        SchedulerWatch::Lease {
            cache: Cache::spawn(api, config, shutdown),
            namespace: namespace.to_string(),
            name: name.to_string(),
            clock,
        }
    }

    /// Whether a scheduler is alive now; `None` until the Lease has been read once (the
    /// callers then behave as before: the webhook gates, the watchdog waits).
    pub fn liveness(&self) -> Option<Liveness> {
        match self {
            SchedulerWatch::InProcess => Some(Liveness::Alive {
                holder: "in process".into(),
                until: jiff::Timestamp::MAX,
            }),
            SchedulerWatch::Lease {
                cache,
                namespace,
                name,
                clock,
            } => {
                if !cache.is_ready() {
                    return None;
                }
                let facts = cache.get(Some(namespace), name).map(|l| LeaseFacts::of(&l));
                Some(liveness(
                    &format!("{namespace}/{name}"),
                    facts.as_ref(),
                    clock.now(),
                ))
            }
        }
    }

    /// Waits until the Lease has been read once.
    pub async fn wait_ready(&self) {
        if let SchedulerWatch::Lease { cache, .. } = self {
            cache.wait_ready().await;
        }
    }
}
