//! How long to wait after `accept` fails.
//!
//! `accept` fails when the process is out of file descriptors (EMFILE, ENFILE) or the
//! kernel is out of memory (ENOBUFS, ENOMEM); retrying at once fails again at once and
//! spins a core while nothing else runs. Go's `net/http` waits 5ms, doubling up to 1s,
//! and so do we: long enough to let connections close, short enough to recover quickly.

use std::time::Duration;

/// The first wait.
pub const FIRST_DELAY: Duration = Duration::from_millis(5);
/// The longest wait.
pub const MAX_DELAY: Duration = Duration::from_secs(1);

/// The wait after the `failures`-th consecutive failed `accept` (1 for the first):
/// 5ms, 10ms, 20ms, ... up to 1s. `0` (no failure) waits nothing.
pub fn accept_backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    // 5ms * 2^8 = 1.28s is past the cap: stop doubling there (and never overflow).
    let doublings = (failures - 1).min(8);
    (FIRST_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_5ms_to_at_most_1s() {
        let waits: Vec<u128> = (0..=12).map(|n| accept_backoff(n).as_millis()).collect();
        assert_eq!(
            waits,
            [0, 5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000]
        );
        assert_eq!(accept_backoff(u32::MAX), MAX_DELAY);
    }
}
