//! The binding controller's metrics: its evaluation counters, and gauges computed from the
//! bindings cache at every scrape (counts by namespace, offer and compliance; bindings in
//! Violation past their grace; the longest current Violation), so that they are true on
//! every replica, leader or not.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgeplane_api::{Compliance, ConstraintPolicyBinding, ConstraintPolicyBindingStatus};
use edgeplane_core::clock::Clock;
use edgeplane_core::status::CONDITION_GRACE_ELAPSED;
use jiff::Timestamp;
use kube::ResourceExt;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::{Metrics, latency_histogram};

/// The binding controller's counters. Cheap to clone (the metrics are shared).
#[derive(Clone, Debug)]
pub struct BindingMetrics {
    /// `edgeplane_binding_evaluation_duration_seconds`: one binding through its providers.
    pub evaluation_duration: Histogram,
    /// `edgeplane_binding_evaluations_total`.
    pub evaluations: Counter,
    /// `edgeplane_binding_evaluations_skipped_total`: periodic evaluations skipped because
    /// nothing they read had changed.
    pub evaluations_skipped: Counter,
}

impl BindingMetrics {
    /// Registers the counters and the gauges read from `bindings` (the cache's list) at
    /// scrape time.
    pub fn register(
        metrics: &Metrics,
        bindings: impl Fn() -> Vec<Arc<ConstraintPolicyBinding>> + Send + Sync + 'static,
        clock: Arc<dyn Clock>,
    ) -> BindingMetrics {
        let m = BindingMetrics {
            evaluation_duration: latency_histogram(),
            evaluations: Counter::default(),
            evaluations_skipped: Counter::default(),
        };
        metrics.register(
            "binding_evaluation_duration_seconds",
            "Time to evaluate one binding through its providers",
            m.evaluation_duration.clone(),
        );
        metrics.register(
            "binding_evaluations",
            "Bindings evaluated",
            m.evaluations.clone(),
        );
        metrics.register(
            "binding_evaluations_skipped",
            "Periodic binding evaluations skipped: the binding, its offer and policies and the cluster view were unchanged and every rule is built in",
            m.evaluations_skipped.clone(),
        );
        metrics.register_collector(
            &[
                ("bindings", MetricType::Gauge),
                ("bindings_past_grace", MetricType::Gauge),
                ("binding_violation_longest_seconds", MetricType::Gauge),
            ],
            Box::new(BindingGauges {
                bindings: Box::new(bindings),
                clock,
            }),
        );
        m
    }
}

/// What the gauges say about one offer's bindings in one namespace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OfferSummary {
    pub by_compliance: BTreeMap<Compliance, i64>,
    /// In Violation with the GraceElapsed condition True: the descheduler acts on these.
    pub past_grace: i64,
    /// The longest current Violation, in seconds (0 when none is in Violation).
    pub longest_violation_seconds: f64,
}

/// Bindings summarised by (namespace, offer), at `now`. A binding without status counts as
/// Pending; a Violation with no `violatingSince` counts in the counts, not in the age.
pub fn summarize<'a>(
    bindings: impl IntoIterator<Item = &'a ConstraintPolicyBinding>,
    now: Timestamp,
) -> BTreeMap<(String, String), OfferSummary> {
    let mut out: BTreeMap<(String, String), OfferSummary> = BTreeMap::new();
    for b in bindings {
        let key = (b.namespace().unwrap_or_default(), b.spec.offer.clone());
        let summary = out.entry(key).or_default();
        let status = b.status.as_ref();
        let compliance = status.map(|s| s.compliance).unwrap_or_default();
        *summary.by_compliance.entry(compliance).or_default() += 1;
        if compliance != Compliance::Violation {
            continue;
        }
        if status.is_some_and(past_grace) {
            summary.past_grace += 1;
        }
        if let Some(since) = status.and_then(|s| s.violating_since.as_ref()) {
            let age = now.duration_since(since.0).as_secs_f64().max(0.0);
            summary.longest_violation_seconds = summary.longest_violation_seconds.max(age);
        }
    }
    out
}

fn past_grace(status: &ConstraintPolicyBindingStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == CONDITION_GRACE_ELAPSED && c.status == "True")
}

type ListBindings = Box<dyn Fn() -> Vec<Arc<ConstraintPolicyBinding>> + Send + Sync>;

struct BindingGauges {
    bindings: ListBindings,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for BindingGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindingGauges").finish_non_exhaustive()
    }
}

type Labels = Vec<(&'static str, String)>;

impl Collector for BindingGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let bindings = (self.bindings)();
        let summaries = summarize(bindings.iter().map(|b| &**b), self.clock.now());
        let counts = Family::<Labels, Gauge>::default();
        let past = Family::<Labels, Gauge>::default();
        let longest = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        for ((namespace, offer), s) in &summaries {
            for (compliance, n) in &s.by_compliance {
                counts
                    .get_or_create(&vec![
                        ("namespace", namespace.clone()),
                        ("offer", offer.clone()),
                        ("compliance", compliance.to_string()),
                    ])
                    .set(*n);
            }
            let labels = vec![("namespace", namespace.clone()), ("offer", offer.clone())];
            past.get_or_create(&labels).set(s.past_grace);
            longest
                .get_or_create(&labels)
                .set(s.longest_violation_seconds);
        }
        counts.encode(encoder.encode_descriptor(
            "bindings",
            "Bindings by namespace, offer and compliance",
            None,
            counts.metric_type(),
        )?)?;
        past.encode(encoder.encode_descriptor(
            "bindings_past_grace",
            "Bindings in Violation longer than their offer's grace (the descheduler acts on them)",
            None,
            past.metric_type(),
        )?)?;
        longest.encode(encoder.encode_descriptor(
            "binding_violation_longest_seconds",
            "How long the offer's longest current Violation has lasted (0: none in Violation)",
            None,
            longest.metric_type(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_api::ConstraintPolicyBindingSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn binding(
        ns: &str,
        name: &str,
        offer: &str,
        status: Option<(Compliance, Option<&str>, bool)>,
    ) -> ConstraintPolicyBinding {
        let mut b = ConstraintPolicyBinding::new(
            name,
            ConstraintPolicyBindingSpec {
                offer: offer.into(),
                targets: Default::default(),
            },
        );
        b.metadata.namespace = Some(ns.into());
        b.status = status.map(|(compliance, since, grace)| ConstraintPolicyBindingStatus {
            compliance,
            violating_since: since.map(|s| Time(at(s))),
            conditions: vec![Condition {
                type_: CONDITION_GRACE_ELAPSED.into(),
                status: if grace { "True" } else { "False" }.into(),
                reason: "r".into(),
                message: String::new(),
                last_transition_time: Time(at("2026-01-01T00:00:00Z")),
                observed_generation: None,
            }],
            ..Default::default()
        });
        b
    }

    #[test]
    fn counts_by_offer_past_grace_and_longest_violation() {
        let now = at("2026-01-01T00:10:00Z");
        let bindings = [
            binding("ar", "a", "latency", None),
            binding(
                "ar",
                "b",
                "latency",
                Some((Compliance::Compliant, None, false)),
            ),
            binding(
                "ar",
                "c",
                "latency",
                Some((Compliance::Violation, Some("2026-01-01T00:09:30Z"), false)),
            ),
            binding(
                "ar",
                "d",
                "latency",
                Some((Compliance::Violation, Some("2026-01-01T00:05:00Z"), true)),
            ),
            binding("ar", "e", "other", Some((Compliance::Limit, None, false))),
            binding(
                "vr",
                "f",
                "latency",
                Some((Compliance::Violation, None, true)),
            ),
        ];
        let s = summarize(&bindings, now);
        let key = |ns: &str, offer: &str| (ns.to_string(), offer.to_string());
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[&key("ar", "latency")],
            OfferSummary {
                by_compliance: [
                    (Compliance::Pending, 1),
                    (Compliance::Compliant, 1),
                    (Compliance::Violation, 2)
                ]
                .into(),
                past_grace: 1,
                longest_violation_seconds: 300.0,
            }
        );
        assert_eq!(
            s[&key("ar", "other")],
            OfferSummary {
                by_compliance: [(Compliance::Limit, 1)].into(),
                past_grace: 0,
                longest_violation_seconds: 0.0,
            }
        );
        // In Violation past grace, with no violatingSince: counted, no age.
        assert_eq!(
            s[&key("vr", "latency")],
            OfferSummary {
                by_compliance: [(Compliance::Violation, 1)].into(),
                past_grace: 1,
                longest_violation_seconds: 0.0,
            }
        );
    }

    #[test]
    fn a_violation_stamped_after_now_has_no_negative_age() {
        let bindings = [binding(
            "ar",
            "a",
            "latency",
            Some((Compliance::Violation, Some("2026-01-01T00:11:00Z"), false)),
        )];
        let s = summarize(&bindings, at("2026-01-01T00:10:00Z"));
        assert_eq!(
            s[&("ar".to_string(), "latency".to_string())].longest_violation_seconds,
            0.0
        );
    }
}
