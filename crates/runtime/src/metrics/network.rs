//! Latency and errors of network-controller calls (Discover, Allocate, Release, Mitigate).
//! The scheduler and the descheduler time the calls they make (the network included);
//! `edgeplane netctl serve` times the calls it answers, under the same names.

use std::sync::Arc;
use std::time::Instant;

use edgeplane_netctl::{
    AllocateRequest, Allocated, Caller, DiscoverRequest, MitigateOutcome, MitigateRequest,
    NetctlError, NetworkController, PathOffer, ReleaseRequest, Released,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use super::{Metrics, latency_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// `discover`, `allocate`, `release`, `mitigate`.
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodOutcomeLabels {
    pub method: String,
    /// `ok` (answered; a refused mitigation is an answer) or `error`.
    pub outcome: String,
}

/// The network-controller call metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct NetworkControllerMetrics {
    /// `edgeplane_network_controller_requests_total{method,outcome}`.
    pub requests: Family<MethodOutcomeLabels, Counter>,
    /// `edgeplane_network_controller_request_duration_seconds{method}`.
    pub duration: Family<MethodLabels, Histogram>,
}

impl NetworkControllerMetrics {
    pub fn register(metrics: &Metrics) -> NetworkControllerMetrics {
        let m = NetworkControllerMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram as _),
        };
        metrics.register(
            "network_controller_requests",
            "Network controller calls, by method and outcome",
            m.requests.clone(),
        );
        metrics.register(
            "network_controller_request_duration_seconds",
            "Time network controller calls took, by method",
            m.duration.clone(),
        );
        m
    }

    fn observe(&self, method: &str, started: Instant, ok: bool) {
        self.duration
            .get_or_create(&MethodLabels {
                method: method.into(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.requests
            .get_or_create(&MethodOutcomeLabels {
                method: method.into(),
                outcome: if ok { "ok" } else { "error" }.into(),
            })
            .inc();
    }

    /// `controller`, its calls timed and counted.
    pub fn wrap(&self, controller: Arc<dyn NetworkController>) -> Arc<dyn NetworkController> {
        Arc::new(Timed {
            inner: controller,
            metrics: self.clone(),
        })
    }
}

struct Timed {
    inner: Arc<dyn NetworkController>,
    metrics: NetworkControllerMetrics,
}

#[tonic::async_trait]
impl NetworkController for Timed {
    async fn discover(&self, request: &DiscoverRequest) -> Result<Vec<PathOffer>, NetctlError> {
        let started = Instant::now();
        let answer = self.inner.discover(request).await;
        self.metrics.observe("discover", started, answer.is_ok());
        answer
    }

    async fn allocate(&self, request: &AllocateRequest) -> Result<Allocated, NetctlError> {
        let started = Instant::now();
        let answer = self.inner.allocate(request).await;
        self.metrics.observe("allocate", started, answer.is_ok());
        answer
    }

    async fn release(&self, request: &ReleaseRequest) -> Result<Released, NetctlError> {
        let started = Instant::now();
        let answer = self.inner.release(request).await;
        self.metrics.observe("release", started, answer.is_ok());
        answer
    }

    async fn mitigate(&self, request: &MitigateRequest) -> Result<MitigateOutcome, NetctlError> {
        let started = Instant::now();
        let answer = self.inner.mitigate(request).await;
        self.metrics.observe("mitigate", started, answer.is_ok());
        answer
    }

    // The caller is forwarded: the wrapped controller authorises on it.
    async fn allocate_as(
        &self,
        request: &AllocateRequest,
        caller: &Caller,
    ) -> Result<Allocated, NetctlError> {
        let started = Instant::now();
        let answer = self.inner.allocate_as(request, caller).await;
        self.metrics.observe("allocate", started, answer.is_ok());
        answer
    }

    async fn release_as(
        &self,
        request: &ReleaseRequest,
        caller: &Caller,
    ) -> Result<Released, NetctlError> {
        let started = Instant::now();
        let answer = self.inner.release_as(request, caller).await;
        self.metrics.observe("release", started, answer.is_ok());
        answer
    }

    async fn mitigate_as(
        &self,
        request: &MitigateRequest,
        caller: &Caller,
    ) -> Result<MitigateOutcome, NetctlError> {
        let started = Instant::now();
        let answer = self.inner.mitigate_as(request, caller).await;
        self.metrics.observe("mitigate", started, answer.is_ok());
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_netctl::fake::FakeNetworkController;

    #[tokio::test]
    async fn calls_are_counted_by_method_and_outcome() {
        let metrics = Metrics::new();
        let m = NetworkControllerMetrics::register(&metrics);
        let fake = Arc::new(FakeNetworkController::new());
        let timed = m.wrap(fake.clone());
        let release = ReleaseRequest {
            id: "a-1".into(),
            binding: None,
            rules: Vec::new(),
        };
        timed.release(&release).await.expect("the fake releases");
        fake.fail_with(NetctlError::NotFound("a-1".into()));
        assert!(timed.release(&release).await.is_err());
        assert!(timed.release(&release).await.is_err());
        let text = metrics.encode();
        for line in [
            "edgeplane_network_controller_requests_total{method=\"release\",outcome=\"ok\"} 1",
            "edgeplane_network_controller_requests_total{method=\"release\",outcome=\"error\"} 2",
            "edgeplane_network_controller_request_duration_seconds_count{method=\"release\"} 3",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(!text.contains("method=\"mitigate\""), "{text}");
    }
}
