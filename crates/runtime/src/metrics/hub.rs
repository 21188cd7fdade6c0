//! The hub's own metrics (`edgeplane hub`): its rounds, how long they take, its members'
//! readiness, the applications placed and how often one moves.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::{Metrics, latency_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabels {
    /// `true` or `false`.
    pub ready: String,
}

/// What one round saw and did, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundFacts {
    pub members_ready: usize,
    pub members_not_ready: usize,
    /// Applications (or, in karmada mode, PropagationPolicies) with replicas placed.
    pub placed: usize,
    /// Applications placed again somewhere else this round.
    pub moved: usize,
}

/// The hub's metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HubMetrics {
    /// `edgeplane_hub_rounds_total`.
    pub rounds: Counter,
    /// `edgeplane_hub_round_duration_seconds`.
    pub round_duration: Histogram,
    /// `edgeplane_hub_members{ready}`.
    pub members: Family<ReadyLabels, Gauge>,
    /// `edgeplane_hub_placements`.
    pub placements: Gauge,
    /// `edgeplane_hub_moves_total`.
    pub moves: Counter,
}

impl HubMetrics {
    pub fn register(metrics: &Metrics) -> HubMetrics {
        let m = HubMetrics {
            rounds: Counter::default(),
            round_duration: latency_histogram(),
            members: Family::default(),
            placements: Gauge::default(),
            moves: Counter::default(),
        };
        metrics.register("hub_rounds", "Rounds of the hub", m.rounds.clone());
        metrics.register(
            "hub_round_duration_seconds",
            "Time a round of the hub took (observe, decide, act)",
            m.round_duration.clone(),
        );
        metrics.register(
            "hub_members",
            "Member clusters by readiness, as the last round saw them",
            m.members.clone(),
        );
        metrics.register(
            "hub_placements",
            "Applications with replicas placed, after the last round",
            m.placements.clone(),
        );
        metrics.register(
            "hub_moves",
            "Applications placed again on other clusters (failover, violation past grace)",
            m.moves.clone(),
        );
        m
    }

    pub fn record(&self, facts: RoundFacts, seconds: f64) {
        self.rounds.inc();
        self.round_duration.observe(seconds);
        for (ready, n) in [
            ("true", facts.members_ready),
            ("false", facts.members_not_ready),
        ] {
            self.members
                .get_or_create(&ReadyLabels {
                    ready: ready.into(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.placements
            .set(i64::try_from(facts.placed).unwrap_or(i64::MAX));
        self.moves.inc_by(facts.moved as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_sets_the_members_and_placements_and_counts_the_moves() {
        let metrics = Metrics::new();
        let hub = HubMetrics::register(&metrics);
        let facts = RoundFacts {
            members_ready: 2,
            members_not_ready: 1,
            placed: 3,
            moved: 1,
        };
        hub.record(facts, 0.01);
        hub.record(
            RoundFacts {
                members_ready: 3,
                members_not_ready: 0,
                placed: 3,
                moved: 0,
            },
            0.02,
        );
        let text = metrics.encode();
        for line in [
            "edgeplane_hub_rounds_total 2",
            "edgeplane_hub_members{ready=\"true\"} 3",
            "edgeplane_hub_members{ready=\"false\"} 0",
            "edgeplane_hub_placements 3",
            "edgeplane_hub_moves_total 1",
            "edgeplane_hub_round_duration_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
