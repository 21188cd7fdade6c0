//! Latency and errors of the external constraint providers (gRPC), per rule and call.
//! Built-in rules are evaluated in process and not timed here; their Error outcomes count
//! in `edgeplane_provider_errors_total` with every other rule's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use edgeplane_api::{Compliance, ConstraintPolicyRule, TargetRef};
use edgeplane_core::status::RuleOutcome;
use edgeplane_providers::{CostRequest, NodeCost, Provider, ProviderError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use super::{Metrics, latency_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub rule: String,
    /// `evaluate` (a binding's rule) or `cost` (the planner's node costs).
    pub call: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallOutcomeLabels {
    pub rule: String,
    pub call: String,
    /// `ok` or `error` (unreachable, failed, or a rule outcome in Error).
    pub outcome: String,
}

/// The provider call metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ProviderMetrics {
    /// `edgeplane_provider_requests_total{rule,call,outcome}`.
    pub requests: Family<CallOutcomeLabels, Counter>,
    /// `edgeplane_provider_request_duration_seconds{rule,call}`.
    pub duration: Family<CallLabels, Histogram>,
}

impl ProviderMetrics {
    pub fn register(metrics: &Metrics) -> ProviderMetrics {
        let m = ProviderMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram as _),
        };
        metrics.register(
            "provider_requests",
            "Calls to external constraint providers, by rule, call and outcome",
            m.requests.clone(),
        );
        metrics.register(
            "provider_request_duration_seconds",
            "Time external constraint providers took to answer, by rule and call",
            m.duration.clone(),
        );
        m
    }

    fn observe(&self, rule: &str, call: &str, started: Instant, ok: bool) {
        self.duration
            .get_or_create(&CallLabels {
                rule: rule.into(),
                call: call.into(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.requests
            .get_or_create(&CallOutcomeLabels {
                rule: rule.into(),
                call: call.into(),
                outcome: if ok { "ok" } else { "error" }.into(),
            })
            .inc();
    }
}

/// An external provider whose calls are timed and counted.
pub struct Timed {
    pub inner: Arc<dyn Provider>,
    pub metrics: ProviderMetrics,
}

#[tonic::async_trait]
impl Provider for Timed {
    async fn evaluate(
        &self,
        targets: &BTreeMap<String, TargetRef>,
        rule: &ConstraintPolicyRule,
    ) -> RuleOutcome {
        let started = Instant::now();
        let outcome = self.inner.evaluate(targets, rule).await;
        self.metrics.observe(
            &rule.name,
            "evaluate",
            started,
            outcome.compliance != Compliance::Error,
        );
        outcome
    }

    async fn endpoint_cost(&self, request: &CostRequest) -> Result<Vec<NodeCost>, ProviderError> {
        let started = Instant::now();
        let answer = self.inner.endpoint_cost(request).await;
        self.metrics
            .observe(&request.rule.name, "cost", started, answer.is_ok());
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Compliance);

    #[tonic::async_trait]
    impl Provider for Fixed {
        async fn evaluate(
            &self,
            _targets: &BTreeMap<String, TargetRef>,
            rule: &ConstraintPolicyRule,
        ) -> RuleOutcome {
            RuleOutcome {
                rule: rule.name.clone(),
                compliance: self.0,
                value: None,
                reason: None,
            }
        }

        async fn endpoint_cost(
            &self,
            _request: &CostRequest,
        ) -> Result<Vec<NodeCost>, ProviderError> {
            Err(ProviderError::Failed("down".into()))
        }
    }

    fn rule(name: &str) -> ConstraintPolicyRule {
        serde_json::from_value(serde_json::json!({"name": name, "request": "1", "limit": "2"}))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn calls_are_counted_by_rule_call_and_outcome() {
        let metrics = Metrics::new();
        let m = ProviderMetrics::register(&metrics);
        let ok = Timed {
            inner: Arc::new(Fixed(Compliance::Compliant)),
            metrics: m.clone(),
        };
        let broken = Timed {
            inner: Arc::new(Fixed(Compliance::Error)),
            metrics: m,
        };
        ok.evaluate(&BTreeMap::new(), &rule("gpu")).await;
        ok.evaluate(&BTreeMap::new(), &rule("gpu")).await;
        broken.evaluate(&BTreeMap::new(), &rule("slice")).await;
        let text = metrics.encode();
        for line in [
            "edgeplane_provider_requests_total{rule=\"gpu\",call=\"evaluate\",outcome=\"ok\"} 2",
            "edgeplane_provider_requests_total{rule=\"slice\",call=\"evaluate\",outcome=\"error\"} 1",
            "edgeplane_provider_request_duration_seconds_count{rule=\"gpu\",call=\"evaluate\"} 2",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(!text.contains("outcome=\"ok\"} 3"), "{text}");
    }
}
