//! Whether a planning scheduler is alive to lift the planner's gate: it holds the
//! scheduler's Lease and renewed it less than `leaseDurationSeconds` ago.

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;

/// client-go's lease duration, for a Lease that does not say.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);

/// What the scheduler's Lease says, by `namespace/name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseFacts {
    /// `namespace/name`.
    pub lease: String,
    pub holder: Option<String>,
    pub renewed: Option<Timestamp>,
    pub duration: Option<Duration>,
}

impl LeaseFacts {
    /// The facts of a Lease object.
    pub fn of(lease: &Lease) -> LeaseFacts {
        let spec = lease.spec.clone().unwrap_or_default();
        LeaseFacts {
            lease: format!(
                "{}/{}",
                lease.metadata.namespace.as_deref().unwrap_or("default"),
                lease.metadata.name.as_deref().unwrap_or_default()
            ),
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            renewed: spec.renew_time.map(|t| t.0),
            duration: spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs),
        }
    }
}

/// Whether a planning scheduler is alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// `holder` renewed the Lease; it expires at `until` unless renewed again.
    Alive { holder: String, until: Timestamp },
    /// No scheduler is alive. `since`: when the last one stopped being alive, when known
    /// (the Lease expired or was released then).
    Dead {
        since: Option<Timestamp>,
        why: Death,
    },
}

impl Liveness {
    pub fn is_alive(&self) -> bool {
        matches!(self, Liveness::Alive { .. })
    }
}

/// Why no planning scheduler is alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Death {
    /// There is no Lease: no scheduler with leader election ever ran here.
    NoLease { lease: String },
    /// The Lease has no holder: the scheduler stepped down (a graceful stop).
    Released {
        lease: String,
        at: Option<Timestamp>,
    },
    /// The holder has not renewed it within its duration.
    Expired {
        lease: String,
        holder: String,
        renewed: Option<Timestamp>,
        duration: Duration,
    },
}

impl fmt::Display for Death {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Death::NoLease { lease } => write!(
                f,
                "the planning scheduler's Lease {lease} does not exist (no scheduler with leader election runs)"
            ),
            Death::Released {
                lease,
                at: Some(at),
            } => write!(
                f,
                "the planning scheduler's Lease {lease} has no holder since {at} (the scheduler stopped)"
            ),
            Death::Released { lease, at: None } => {
                write!(f, "the planning scheduler's Lease {lease} has no holder")
            }
            Death::Expired {
                lease,
                holder,
                renewed: Some(renewed),
                duration,
            } => write!(
                f,
                "the planning scheduler's Lease {lease} was last renewed by {holder} at {renewed} and expired {}s later",
                duration.as_secs()
            ),
            Death::Expired { lease, holder, .. } => write!(
                f,
                "the planning scheduler's Lease {lease} held by {holder} has never been renewed"
            ),
        }
    }
}

/// Whether the Lease `lease` (`namespace/name`; `facts` is `None` when it does not exist)
/// shows a live scheduler at `now`: a holder that renewed it at most `leaseDurationSeconds`
/// (15s when it does not say) ago. `now` comes from the caller's clock (virtual time on
/// the embedded cluster).
pub fn liveness(lease: &str, facts: Option<&LeaseFacts>, now: Timestamp) -> Liveness {
    let Some(facts) = facts else {
        return Liveness::Dead {
            since: None,
            why: Death::NoLease {
                lease: lease.to_string(),
            },
        };
    };
    let Some(holder) = facts.holder.clone() else {
        return Liveness::Dead {
            since: facts.renewed,
            why: Death::Released {
                lease: lease.to_string(),
                at: facts.renewed,
            },
        };
    };
    let duration = facts.duration.unwrap_or(DEFAULT_LEASE_DURATION);
    let until = facts
        .renewed
        .and_then(|r| r.checked_add(SignedDuration::try_from(duration).ok()?).ok());
    match until {
        Some(until) if now < until => Liveness::Alive { holder, until },
        _ => Liveness::Dead {
            since: until,
            why: Death::Expired {
                lease: lease.to_string(),
                holder,
                renewed: facts.renewed,
                duration,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_750_000_000 + secs).unwrap_or_else(|e| panic!("{e}"))
    }

    fn held(renewed: i64) -> LeaseFacts {
        LeaseFacts {
            lease: "edgeplane-system/edgeplane-scheduler".into(),
            holder: Some("scheduler-a".into()),
            renewed: Some(t(renewed)),
            duration: Some(Duration::from_secs(15)),
        }
    }

    const LEASE: &str = "edgeplane-system/edgeplane-scheduler";

    #[test]
    fn alive_while_renewed_within_the_lease_duration() {
        assert_eq!(
            liveness(LEASE, Some(&held(100)), t(114)),
            Liveness::Alive {
                holder: "scheduler-a".into(),
                until: t(115)
            }
        );
        let dead = liveness(LEASE, Some(&held(100)), t(115));
        assert_eq!(
            dead,
            Liveness::Dead {
                since: Some(t(115)),
                why: Death::Expired {
                    lease: LEASE.into(),
                    holder: "scheduler-a".into(),
                    renewed: Some(t(100)),
                    duration: Duration::from_secs(15)
                }
            }
        );
        let Liveness::Dead { why, .. } = dead else {
            panic!()
        };
        assert_eq!(
            why.to_string(),
            "the planning scheduler's Lease edgeplane-system/edgeplane-scheduler was last renewed by scheduler-a at 2025-06-15T15:08:20Z and expired 15s later"
        );
        // A Lease without a duration lasts client-go's 15s.
        let mut no_duration = held(100);
        no_duration.duration = None;
        assert!(liveness(LEASE, Some(&no_duration), t(114)).is_alive());
        assert!(!liveness(LEASE, Some(&no_duration), t(116)).is_alive());
    }

    #[test]
    fn released_missing_or_never_renewed_leases_are_dead() {
        let mut released = held(100);
        released.holder = None;
        assert_eq!(
            liveness(LEASE, Some(&released), t(101)),
            Liveness::Dead {
                since: Some(t(100)),
                why: Death::Released {
                    lease: LEASE.into(),
                    at: Some(t(100))
                }
            }
        );
        let missing = liveness(LEASE, None, t(0));
        assert_eq!(
            missing,
            Liveness::Dead {
                since: None,
                why: Death::NoLease {
                    lease: LEASE.into()
                }
            }
        );
        let mut never = held(0);
        never.renewed = None;
        assert!(matches!(
            liveness(LEASE, Some(&never), t(0)),
            Liveness::Dead { since: None, .. }
        ));
    }

    #[test]
    fn facts_of_a_lease_object() {
        let lease: Lease = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "edgeplane-scheduler", "namespace": "edgeplane-system"},
            "spec": {"holderIdentity": "", "leaseDurationSeconds": 20,
                     "renewTime": "2025-06-01T00:00:00.000000Z"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let facts = LeaseFacts::of(&lease);
        assert_eq!(facts.lease, LEASE);
        assert_eq!(facts.holder, None);
        assert_eq!(facts.duration, Some(Duration::from_secs(20)));
        assert!(facts.renewed.is_some());
    }
}
