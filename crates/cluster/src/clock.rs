//! Virtual time: one clock for every timestamp the embedded cluster writes.
//!
//! The clock is a wall-time anchor plus the `tokio::time::Instant` elapsed since the
//! cluster started. With real time it tracks the wall clock; with paused tokio time
//! (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`) it jumps with it, so a
//! scenario can cover hours in a second and still read consistent `creationTimestamp`s,
//! condition times and event times.

use std::time::Duration;

use edgeplane_core::clock::Clock;
use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

/// The embedded cluster's clock. Cheap to clone; clones tell the same time.
#[derive(Debug, Clone, Copy)]
pub struct VirtualClock {
    anchor: Timestamp,
    started: Instant,
}

impl VirtualClock {
    /// A clock that reads `anchor` now and advances with tokio time. Call it inside the
    /// tokio runtime whose (possibly paused) time it should follow.
    pub fn new(anchor: Timestamp) -> Self {
        VirtualClock {
            anchor,
            started: Instant::now(),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Timestamp {
        self.at(Instant::now())
    }

    /// Virtual time elapsed since the clock started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The virtual time at a tokio instant.
    pub fn at(&self, instant: Instant) -> Timestamp {
        let elapsed = instant.saturating_duration_since(self.started);
        SignedDuration::try_from(elapsed)
            .ok()
            .and_then(|d| self.anchor.checked_add(d).ok())
            .unwrap_or(self.anchor)
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        VirtualClock::now(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_tokio_time() {
        let anchor: Timestamp = "2025-06-01T00:00:00Z".parse().unwrap();
        let clock = VirtualClock::new(anchor);
        assert_eq!(clock.now(), anchor);
        tokio::time::advance(Duration::from_secs(3 * 3600)).await;
        assert_eq!(clock.now().to_string(), "2025-06-01T03:00:00Z");
        assert_eq!(clock.elapsed(), Duration::from_secs(3 * 3600));
    }
}
