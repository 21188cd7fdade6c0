//! The source of timestamps written into objects.
//!
//! On a real cluster it is the wall clock; on the embedded cluster it follows tokio's
//! (possibly paused) time so that a simulated hour takes a second. Decisions take `now` as
//! an argument; only the thin layers that write objects hold a clock.

use jiff::Timestamp;

/// Something that tells the time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
