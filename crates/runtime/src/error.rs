//! Errors of the runtime, and the one retry policy every controller uses.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

/// What can go wrong while reconciling or writing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed (conflict, throttling, timeout, ...).
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// This replica does not hold the lease; the write was not attempted.
    #[error("not the leader: {0} was not written")]
    NotLeader(String),
    /// An object could not be encoded for the API server.
    #[error("encoding {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// An object the API server returned lacks a field the runtime needs.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Error {
        Error::Kube {
            action: action.into(),
            source,
        }
    }

    /// The HTTP status of an API error, if the server answered one.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::Kube {
                source: kube::Error::Api(status),
                ..
            } => Some(status.code),
            _ => None,
        }
    }

    /// A label for metrics: `conflict`, `throttled`, `server`, `client`, `transport`,
    /// `not-leader`, `encode`, `invalid`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube { source, .. } => match source {
                kube::Error::Api(s) if s.code == 409 => "conflict",
                kube::Error::Api(s) if s.code == 429 => "throttled",
                kube::Error::Api(s) if s.code >= 500 => "server",
                kube::Error::Api(_) => "client",
                _ => "transport",
            },
            Error::NotLeader(_) => "not-leader",
            Error::Encode { .. } => "encode",
            Error::Invalid(_) => "invalid",
        }
    }
}

/// `true` for a 404 from the API server (the object is already gone).
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 404)
}

/// Exponential backoff per object: `base * 2^(failures-1)`, at most `max`. A success
/// forgets the object's failures. Deterministic (no jitter) so that tests on virtual time
/// replay; the API server's own 429 answers spread the load.
#[derive(Debug)]
pub struct Backoff<K> {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<K, u32>>,
}

impl<K: Eq + Hash> Backoff<K> {
    pub fn new(base: Duration, max: Duration) -> Backoff<K> {
        Backoff {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `key` and returns how long to wait before the next try.
    pub fn fail(&self, key: K) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        let factor = 2u32.saturating_pow(n.saturating_sub(1).min(20));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Forgets the failures of `key`.
    pub fn succeed(&self, key: &K) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(key);
    }
}

impl<K: Eq + Hash> Default for Backoff<K> {
    /// 1s, 2s, 4s, ... up to 5 minutes.
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(300))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_max_and_resets() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let waits: Vec<u64> = (0..6).map(|_| b.fail("a").as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(b.fail("b").as_secs(), 1);
        b.succeed(&"a");
        assert_eq!(b.fail("a").as_secs(), 1);
    }
}
