//! A [`NetworkController`] with scripted answers that records every call, for the tests of
//! the planner and the descheduler.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use edgeplane_netctl::fake::FakeNetworkController;
//! use edgeplane_netctl::{Endpoint, MitigateRequest, NetworkController};
//! let fake = FakeNetworkController::new();
//! fake.refuse_mitigation("catalogue exhausted");
//! let answer = fake
//!     .mitigate(&MitigateRequest {
//!         binding: "ar/b".into(),
//!         source: Endpoint::Node("n1".into()),
//!         destination: Endpoint::Site("stadium".into()),
//!         rules: vec![],
//!     })
//!     .await;
//! assert!(matches!(answer, Ok(o) if !o.accepted));
//! assert_eq!(fake.calls().len(), 1);
//! # }
//! ```

use std::sync::Mutex;

use crate::controller::{
    AllocateRequest, Allocated, DiscoverRequest, MitigateOutcome, MitigateRequest, NetctlError,
    NetworkController, PathOffer, ReleaseRequest, Released,
};

/// One call the fake received.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    Discover(DiscoverRequest),
    Allocate(AllocateRequest),
    Release(ReleaseRequest),
    Mitigate(MitigateRequest),
}

#[derive(Debug, Default)]
struct Script {
    offers: Option<Result<Vec<PathOffer>, NetctlError>>,
    allocate: Option<Result<Allocated, NetctlError>>,
    release: Option<Result<Released, NetctlError>>,
    mitigate: Option<Result<MitigateOutcome, NetctlError>>,
    calls: Vec<Call>,
}

/// Answers what it is told to (by default: no offers, allocations and releases succeed,
/// mitigations are refused with `fake: no mitigation scripted`) and remembers the calls.
#[derive(Debug, Default)]
pub struct FakeNetworkController {
    script: Mutex<Script>,
}

impl FakeNetworkController {
    pub fn new() -> FakeNetworkController {
        FakeNetworkController::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Script) -> T) -> T {
        // A panicking test thread poisons the lock; the script is still usable.
        let mut guard = match self.script.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Discover answers these offers.
    pub fn offer(&self, offers: Vec<PathOffer>) {
        self.with(|s| s.offers = Some(Ok(offers)));
    }

    /// Mitigate answers this outcome.
    pub fn mitigation(&self, outcome: MitigateOutcome) {
        self.with(|s| s.mitigate = Some(Ok(outcome)));
    }

    /// Mitigate answers `accepted: false` with this reason.
    pub fn refuse_mitigation(&self, reason: &str) {
        self.mitigation(MitigateOutcome {
            accepted: false,
            expected: None,
            reason: reason.to_string(),
            allocation_id: None,
            entry: None,
            path: Vec::new(),
            compliance: None,
        });
    }

    /// Every operation fails with this error (an unreachable controller, say).
    pub fn fail_with(&self, error: NetctlError) {
        self.with(|s| {
            s.offers = Some(Err(error.clone()));
            s.allocate = Some(Err(error.clone()));
            s.release = Some(Err(error.clone()));
            s.mitigate = Some(Err(error));
        });
    }

    /// Allocate answers this error (`AtCapacity`, say).
    pub fn fail_allocation(&self, error: NetctlError) {
        self.with(|s| s.allocate = Some(Err(error)));
    }

    /// The calls received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.with(|s| s.calls.clone())
    }
}

#[tonic::async_trait]
impl NetworkController for FakeNetworkController {
    async fn discover(&self, request: &DiscoverRequest) -> Result<Vec<PathOffer>, NetctlError> {
        self.with(|s| {
            s.calls.push(Call::Discover(request.clone()));
            s.offers.clone().unwrap_or(Ok(Vec::new()))
        })
    }

    async fn allocate(&self, request: &AllocateRequest) -> Result<Allocated, NetctlError> {
        self.with(|s| {
            s.calls.push(Call::Allocate(request.clone()));
            s.allocate.clone().unwrap_or_else(|| {
                Ok(Allocated {
                    id: request.id.clone(),
                    entry: String::new(),
                    created: true,
                })
            })
        })
    }

    async fn release(&self, request: &ReleaseRequest) -> Result<Released, NetctlError> {
        self.with(|s| {
            s.calls.push(Call::Release(request.clone()));
            s.release.clone().unwrap_or(Ok(Released {
                released: true,
                deactivated: true,
            }))
        })
    }

    async fn mitigate(&self, request: &MitigateRequest) -> Result<MitigateOutcome, NetctlError> {
        self.with(|s| {
            s.calls.push(Call::Mitigate(request.clone()));
            s.mitigate.clone().unwrap_or_else(|| {
                Ok(MitigateOutcome {
                    accepted: false,
                    expected: None,
                    reason: "fake: no mitigation scripted".into(),
                    allocation_id: None,
                    entry: None,
                    path: Vec::new(),
                    compliance: None,
                })
            })
        })
    }
}
