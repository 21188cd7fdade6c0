//! Compliance by offer: how long each offer's bindings spent in Violation and in Limit
//! during the run (summed over its bindings, and the worst binding), from the compliance
//! of every binding that the observer records. The SLO view an operator asks for first.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::series::{ComplianceCounts, ComplianceHistory, Series};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferCompliance {
    /// `namespace/name`.
    pub offer: String,
    /// Bindings of the offer that existed during the run.
    pub bindings: usize,
    /// Binding-seconds in Violation: the sum over the offer's bindings.
    pub violation_seconds: f64,
    /// The binding that spent longest in Violation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_violation: Option<BindingTime>,
    /// Binding-seconds in Limit.
    pub limit_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_limit: Option<BindingTime>,
    /// The offer's bindings at the end, by compliance.
    pub at_end: ComplianceCounts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BindingTime {
    /// `namespace/name`.
    pub binding: String,
    pub seconds: f64,
}

/// Seconds the binding spent in each compliance until `end`.
fn time_in(history: &ComplianceHistory, end: f64) -> BTreeMap<&str, f64> {
    let mut out: BTreeMap<&str, f64> = BTreeMap::new();
    for (k, (at, compliance)) in history.samples.iter().enumerate() {
        let until = history
            .samples
            .get(k + 1)
            .map_or(end, |next| next.0)
            .min(end);
        if let Some(c) = compliance
            && until > *at
        {
            *out.entry(c.as_str()).or_default() += until - at;
        }
    }
    out
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// Keeps the longer time; ties go to the binding named first (bindings come in name order).
fn worse(worst: &mut Option<BindingTime>, binding: &str, seconds: f64) {
    if seconds > 0.0 && worst.as_ref().is_none_or(|w| seconds > w.seconds) {
        *worst = Some(BindingTime {
            binding: binding.to_string(),
            seconds: round_ms(seconds),
        });
    }
}

/// Every offer with bindings, the longest in Violation first, then the longest in Limit.
pub fn offers(series: &Series, end: f64) -> Vec<OfferCompliance> {
    let mut by_offer: BTreeMap<&str, OfferCompliance> = BTreeMap::new();
    for (binding, history) in &series.binding_compliance {
        let o = by_offer
            .entry(history.offer.as_str())
            .or_insert_with(|| OfferCompliance {
                offer: history.offer.clone(),
                bindings: 0,
                violation_seconds: 0.0,
                worst_violation: None,
                limit_seconds: 0.0,
                worst_limit: None,
                at_end: ComplianceCounts::default(),
            });
        o.bindings += 1;
        let times = time_in(history, end);
        let violation = times.get("Violation").copied().unwrap_or(0.0);
        let limit = times.get("Limit").copied().unwrap_or(0.0);
        o.violation_seconds += violation;
        o.limit_seconds += limit;
        worse(&mut o.worst_violation, binding, violation);
        worse(&mut o.worst_limit, binding, limit);
        if let Some((_, Some(last))) = history.samples.last() {
            o.at_end.add(last);
        }
    }
    let mut out: Vec<OfferCompliance> = by_offer
        .into_values()
        .map(|mut o| {
            o.violation_seconds = round_ms(o.violation_seconds);
            o.limit_seconds = round_ms(o.limit_seconds);
            o
        })
        .collect();
    out.sort_by(|a, b| {
        b.violation_seconds
            .total_cmp(&a.violation_seconds)
            .then(b.limit_seconds.total_cmp(&a.limit_seconds))
            .then_with(|| a.offer.cmp(&b.offer))
    });
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn time_in_violation_is_summed_per_offer_with_its_worst_binding() {
        let s = Duration::from_secs;
        let mut series = Series::default();
        // b1: Compliant, Violation 60..120, Limit from 120 to the end (300).
        series.binding_compliance_at(s(0), "ar/b1", "ar/game", Some("Pending"));
        series.binding_compliance_at(s(2), "ar/b1", "ar/game", Some("Compliant"));
        series.binding_compliance_at(s(60), "ar/b1", "ar/game", Some("Violation"));
        series.binding_compliance_at(s(120), "ar/b1", "ar/game", Some("Limit"));
        // b2: Violation 60..200, then deleted; back at 250 Compliant.
        series.binding_compliance_at(s(2), "ar/b2", "ar/game", Some("Compliant"));
        series.binding_compliance_at(s(60), "ar/b2", "ar/game", Some("Violation"));
        series.binding_compliance_at(s(200), "ar/b2", "ar/game", None);
        series.binding_compliance_at(s(250), "ar/b2", "ar/game", Some("Compliant"));
        // Another offer, never out of its request.
        series.binding_compliance_at(s(2), "ar/v1", "ar/video", Some("Compliant"));
        let offers = offers(&series, 300.0);
        assert_eq!(offers.len(), 2);
        let game = &offers[0];
        assert_eq!(game.offer, "ar/game");
        assert_eq!(game.bindings, 2);
        assert_eq!(game.violation_seconds, 60.0 + 140.0);
        assert_eq!(
            game.worst_violation,
            Some(BindingTime {
                binding: "ar/b2".into(),
                seconds: 140.0
            })
        );
        assert_eq!(game.limit_seconds, 180.0);
        assert_eq!(
            game.worst_limit.as_ref().map(|w| w.binding.as_str()),
            Some("ar/b1")
        );
        assert_eq!((game.at_end.limit, game.at_end.compliant), (1, 1));
        let video = &offers[1];
        assert_eq!((video.violation_seconds, video.limit_seconds), (0.0, 0.0));
        assert_eq!(video.worst_violation, None);
    }
}
