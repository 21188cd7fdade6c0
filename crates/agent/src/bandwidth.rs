//! Bandwidth from a packet train's dispersion: the sender sends a train of equal packets
//! back to back (faster than the path can carry them, up to a rate cap), the bottleneck
//! spaces them out by its rate, and the reflector's receive timestamps (T2) show that
//! spacing. The rate is the octets that arrived after the first quarter of the train over
//! the time they took: the head of the train is left out because a token-bucket shaper
//! (and a link's queue draining) lets a first burst through faster than its rate.
//!
//! Packets lost between the first and the last measured are counted as carried (they
//! crossed the bottleneck and were dropped behind it, typically by a reflector's full
//! socket buffer).
//!
//! Octets are counted at the IP layer (the STAMP payload plus the UDP and IP headers),
//! which is what shapers and link rates count, less the link layer's own header.

use serde::Serialize;

use crate::timestamp::Nanos;

/// IPv4 and UDP headers; IPv6 adds 20 octets more, which the estimate ignores (under 2 %
/// at the default 1400-octet packets).
pub const IP_UDP_HEADERS: usize = 28;

/// One packet of the train that reached the reflector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub sequence: u32,
    /// When the sender sent it (T1).
    pub sent: Nanos,
    /// When the reflector received it (T2).
    pub received: Nanos,
}

/// What a train measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// Packets sent and received by the reflector.
    pub sent: u32,
    pub received: u32,
    /// The path's rate, bits per second at the IP layer.
    pub bits_per_second: f64,
    /// The rate the sender put them on the wire (over the same packets).
    pub sender_bits_per_second: f64,
    /// The sender could not send faster than the path carried them: the path may carry
    /// more (the estimate is a lower bound). Raise the rate cap to measure it.
    pub sender_limited: bool,
    /// How long the train took to arrive, microseconds.
    pub train_us: f64,
}

/// The estimate from a train of `sent` packets of `packet_len` octets (STAMP payload) of
/// which `arrivals` reached the reflector, in any order. `None` with fewer than 4
/// arrivals or no measurable spread (all stamped in the same nanosecond).
pub fn estimate(arrivals: &[Arrival], sent: u32, packet_len: usize) -> Option<Estimate> {
    let mut by_arrival = arrivals.to_vec();
    by_arrival.sort_by_key(|a| (a.received, a.sequence));
    if by_arrival.len() < 4 {
        return None;
    }
    let octets = (packet_len + IP_UDP_HEADERS) as f64;
    // The packets after the first quarter: the time from the last one left out to the
    // last one carried those packets' octets.
    let first = by_arrival.len() / 4;
    let tail = &by_arrival[first..];
    let spread = tail.last()?.received - tail.first()?.received;
    if spread <= 0 {
        return None;
    }
    // Packets missing between the tail's first and last were carried by the bottleneck and
    // lost after it (a receiver's full buffer): count them, by sequence number. A loss at
    // the bottleneck itself (its queue overflowing) makes this an overestimate, which
    // `received` against `sent` shows.
    let (lo, hi) = tail.iter().fold((u32::MAX, 0), |(lo, hi), a| {
        (lo.min(a.sequence), hi.max(a.sequence))
    });
    let carried = f64::from(hi.saturating_sub(lo)) * octets * 8.0;
    if carried <= 0.0 {
        return None;
    }
    let bits_per_second = carried / (spread as f64 / 1e9);
    let (min_sent, max_sent) = tail.iter().fold((Nanos::MAX, Nanos::MIN), |(lo, hi), a| {
        (lo.min(a.sent), hi.max(a.sent))
    });
    let send_spread = (max_sent - min_sent).max(1);
    let sender_bits_per_second = carried / (send_spread as f64 / 1e9);
    let whole = by_arrival.last()?.received - by_arrival.first()?.received;
    Some(Estimate {
        sent,
        received: arrivals.len() as u32,
        bits_per_second,
        sender_bits_per_second,
        // Within 10 %: the packets arrived about as fast as they were sent.
        sender_limited: sender_bits_per_second < bits_per_second * 1.1,
        train_us: whole as f64 / 1e3,
    })
}

/// Octets a train of `packets` packets of `packet_len` octets puts on the path (IP layer),
/// for the duty-cycle budget.
pub fn train_octets(packets: u32, packet_len: usize) -> u64 {
    u64::from(packets) * (packet_len + IP_UDP_HEADERS) as u64
}

/// The shortest time between two trains so that the probe traffic stays within `share`
/// (0 to 1] of a path of `path_bits_per_second`: a train that occupies the path for t
/// seconds may run once every t / share.
pub fn min_train_interval(
    packets: u32,
    packet_len: usize,
    path_bits_per_second: f64,
    share: f64,
) -> Option<std::time::Duration> {
    if !(share > 0.0 && share <= 1.0 && path_bits_per_second > 0.0) {
        return None;
    }
    let busy = train_octets(packets, packet_len) as f64 * 8.0 / path_bits_per_second;
    std::time::Duration::try_from_secs_f64(busy / share).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A train whose packets leave every `gap_sent` ns and arrive every `gap_received`
    /// ns, after a head of `burst` packets that arrive 1 µs apart (a shaper's bucket).
    fn train(n: u32, gap_sent: i64, gap_received: i64, burst: u32) -> Vec<Arrival> {
        let mut received = 1_000_000;
        (0..n)
            .map(|i| {
                received += if i == 0 {
                    0
                } else if i < burst {
                    1_000
                } else {
                    gap_received
                };
                Arrival {
                    sequence: i,
                    sent: i64::from(i) * gap_sent,
                    received,
                }
            })
            .collect()
    }

    #[test]
    fn the_rate_is_the_spacing_the_bottleneck_imposed() {
        // 1428 octets on the wire every 571.2 µs: 20 Mbit/s.
        let e = estimate(&train(100, 10_000, 571_200, 1), 100, 1400)
            .unwrap_or_else(|| panic!("estimate"));
        assert!((e.bits_per_second - 20e6).abs() < 1.0, "{e:?}");
        assert!(!e.sender_limited);
        assert_eq!((e.sent, e.received), (100, 100));
        assert!((e.train_us - 99.0 * 571.2).abs() < 1e-6, "{e:?}");
    }

    #[test]
    fn a_shapers_first_burst_does_not_inflate_the_estimate() {
        // 20 packets through the bucket at once, then 100 Mbit/s (114.24 µs apart).
        let e = estimate(&train(100, 1_000, 114_240, 20), 100, 1400)
            .unwrap_or_else(|| panic!("estimate"));
        assert!((e.bits_per_second - 100e6).abs() < 1.0, "{e:?}");
    }

    #[test]
    fn a_slow_sender_is_flagged_and_order_does_not_matter() {
        let mut arrivals = train(40, 1_000_000, 1_000_000, 1);
        arrivals.reverse();
        arrivals.swap(3, 17);
        let e = estimate(&arrivals, 50, 1400).unwrap_or_else(|| panic!("estimate"));
        assert!(e.sender_limited, "{e:?}");
        assert_eq!((e.sent, e.received), (50, 40));
        assert!(
            (e.bits_per_second - 1428.0 * 8.0 * 1000.0).abs() < 1e-6,
            "{e:?}"
        );
    }

    #[test]
    fn packets_lost_behind_the_bottleneck_still_count_as_carried() {
        let mut arrivals = train(100, 10_000, 571_200, 1);
        arrivals.retain(|a| a.sequence % 5 != 3);
        let e = estimate(&arrivals, 100, 1400).unwrap_or_else(|| panic!("estimate"));
        assert!((e.bits_per_second - 20e6).abs() < 1.0, "{e:?}");
        assert_eq!(e.received, 80);
    }

    #[test]
    fn too_few_or_simultaneous_arrivals_give_nothing() {
        assert_eq!(estimate(&train(3, 1, 1_000, 1), 3, 1400), None);
        assert_eq!(estimate(&train(10, 1, 0, 1), 10, 1400), None);
    }

    #[test]
    fn the_duty_cycle_spaces_trains() {
        // 100 x 1428 octets at 100 Mbit/s occupy 11.424 ms; at 1 % once every 1.1424 s.
        let d = min_train_interval(100, 1400, 100e6, 0.01).unwrap_or_default();
        assert!((d.as_secs_f64() - 1.1424).abs() < 1e-9, "{d:?}");
        assert_eq!(min_train_interval(100, 1400, 100e6, 0.0), None);
        assert_eq!(min_train_interval(100, 1400, 0.0, 0.5), None);
    }
}
