use super::*;

const US: Nanos = 1_000;
/// The reflector's clock runs this far ahead of the sender's.
const OFFSET: Nanos = 7_000_000 * US;

/// A reply for a probe sent at `sent` with forward delay `fwd`, reflector processing
/// `proc` and backward delay `back` (all in µs), read through the offset clock.
fn reply(sent: Nanos, fwd: Nanos, proc: Nanos, back: Nanos, offset: Nanos) -> Reply {
    let t2 = (sent + fwd) * US + offset;
    Reply {
        reflector_received: t2,
        reflector_sent: t2 + proc * US,
        received: (sent + fwd + proc + back) * US,
    }
}

/// Five probes 1 ms apart; the third is lost.
fn window(offset: Nanos) -> Window {
    let mut w = Window::new(10);
    for seq in 0..5 {
        w.sent(seq, i64::from(seq) * 1000 * US);
    }
    let answers = [
        (0, 100, 10, 100),
        (1, 120, 20, 100),
        (3, 90, 5, 110),
        (4, 150, 0, 130),
    ];
    for (seq, fwd, proc, back) in answers {
        let sent = i64::from(seq) * 1000;
        assert_eq!(
            w.reply(seq, reply(sent, fwd, proc, back, offset)),
            ReplyOutcome::Recorded
        );
    }
    w
}

#[test]
fn round_trip_removes_the_reflectors_processing_and_takes_nearest_rank_percentiles() {
    let s = window(OFFSET).summary(10_000 * US, 500 * US, false);
    // Round trips 200, 220, 200, 280 µs.
    assert_eq!(
        s.rtt,
        Some(Distribution {
            min_ns: 200 * US,
            mean_ns: 225_000.0,
            p50_ns: 200 * US,
            p90_ns: 280 * US,
            p99_ns: 280 * US,
            max_ns: 280 * US,
        })
    );
    assert_eq!((s.sent, s.settled, s.received), (5, 5, 4));
    assert_eq!(s.loss_ratio, Some(0.2));
    assert_eq!((s.duplicates, s.reordered), (0, 0));
}

#[test]
fn jitter_is_unaffected_by_the_clock_offset() {
    for offset in [0, OFFSET, -OFFSET] {
        let s = window(offset).summary(10_000 * US, 500 * US, false);
        // IPDV pairs (0,1): +20 µs and (3,4): +60 µs; (1,2), (2,3) lack probe 2.
        assert_eq!(s.ipdv_ns, Some(40_000.0), "offset {offset}");
        // D = +20, -30, +60 µs: J = 1250, then 3046.875, then 6606.4453125 ns.
        assert_eq!(
            s.interarrival_jitter_ns,
            Some(6606.4453125),
            "offset {offset}"
        );
    }
}

#[test]
fn one_way_is_the_p90_measured_when_synchronized_and_half_the_p90_round_trip_otherwise() {
    let synced = window(0).summary(10_000 * US, 500 * US, true);
    // Forward 90, 100, 120, 150 µs and backward 100, 100, 110, 130 µs: the p90 of four
    // is the fourth.
    assert_eq!(
        synced.one_way,
        Some(OneWay {
            forward_p90_ns: 150_000.0,
            backward_p90_ns: 130_000.0,
            estimated: false
        })
    );
    let estimated = window(OFFSET).summary(10_000 * US, 500 * US, false);
    // Round trips 200, 200, 220, 280 µs: p90 280, halved.
    assert_eq!(
        estimated.one_way,
        Some(OneWay {
            forward_p90_ns: 140_000.0,
            backward_p90_ns: 140_000.0,
            estimated: true
        })
    );
}

#[test]
fn the_one_way_p90_is_the_ninth_of_ten_forward_delays_not_the_mean_or_the_max() {
    let mut w = Window::new(10);
    // Forward delays 10, 20, ... 100 µs (sent in a shuffled order of size), backward 50.
    let forwards = [30, 100, 10, 90, 20, 80, 40, 70, 50, 60];
    for (seq, fwd) in (0u32..).zip(forwards) {
        let sent = i64::from(seq) * 1000;
        w.sent(seq, sent * US);
        assert_eq!(
            w.reply(seq, reply(sent, fwd, 0, 50, 0)),
            ReplyOutcome::Recorded
        );
    }
    let s = w.summary(20_000 * US, 500 * US, true);
    assert_eq!(
        s.one_way,
        Some(OneWay {
            forward_p90_ns: 90_000.0,
            backward_p90_ns: 50_000.0,
            estimated: false
        })
    );
    // Round trips 60..150 µs: p90 140, so the estimate without synchronized clocks is 70.
    let s = w.summary(20_000 * US, 500 * US, false);
    assert_eq!(s.one_way.map(|o| o.forward_p90_ns), Some(70_000.0));
}

#[test]
fn an_unanswered_probe_is_lost_only_once_its_wait_is_over() {
    let w = window(OFFSET);
    // Probe 2 was sent at 2000 µs: at 2400 µs it may still be on its way.
    let early = w.summary(2_400 * US, 500 * US, false);
    assert_eq!((early.settled, early.received), (4, 4));
    assert_eq!(early.loss_ratio, Some(0.0));
    let late = w.summary(2_500 * US, 500 * US, false);
    assert_eq!((late.settled, late.loss_ratio), (5, Some(0.2)));
}

#[test]
fn reordered_duplicate_unknown_and_inconsistent_replies_are_told_apart() {
    let mut w = Window::new(10);
    for seq in 0..3 {
        w.sent(seq, i64::from(seq) * 1000 * US);
    }
    assert_eq!(
        w.reply(1, reply(1000, 100, 0, 100, 0)),
        ReplyOutcome::Recorded
    );
    assert_eq!(
        w.reply(0, reply(0, 900, 0, 900, 0)),
        ReplyOutcome::Reordered
    );
    assert_eq!(
        w.reply(0, reply(0, 900, 0, 900, 0)),
        ReplyOutcome::Duplicate
    );
    assert_eq!(
        w.reply(1, reply(1000, 100, 0, 100, 0)),
        ReplyOutcome::Duplicate
    );
    assert_eq!(
        w.reply(3, reply(3000, 100, 0, 100, 0)),
        ReplyOutcome::Unknown
    );
    let mut stepped = reply(2000, 100, 0, 100, 0);
    stepped.reflector_sent = stepped.reflector_received - 1;
    assert_eq!(w.reply(2, stepped), ReplyOutcome::Inconsistent);
    let mut slow = reply(2000, 100, 0, 100, 0);
    slow.reflector_sent += 1_000 * US; // processing longer than the round trip
    assert_eq!(w.reply(2, slow), ReplyOutcome::Inconsistent);

    let s = w.summary(10_000 * US, 500 * US, false);
    assert_eq!((s.received, s.duplicates, s.reordered), (2, 2, 1));
    assert_eq!(
        s.loss_ratio,
        Some(1.0 / 3.0),
        "the inconsistent reply counts for nothing"
    );
}

#[test]
fn the_window_slides_and_follows_sequence_numbers_across_the_wrap() {
    let mut w = Window::new(3);
    let first = u32::MAX - 1;
    for (i, seq) in [first, u32::MAX, 0, 1].into_iter().enumerate() {
        w.sent(seq, i as i64 * 1000 * US);
    }
    assert_eq!(w.sent_at(first), None, "slid out");
    assert_eq!(w.reply(first, reply(0, 1, 0, 1, 0)), ReplyOutcome::Unknown);
    assert_eq!(w.sent_at(0), Some(2000 * US));
    for (i, seq) in [u32::MAX, 0, 1].into_iter().enumerate() {
        let sent = (i as i64 + 1) * 1000;
        let fwd = 100 + 10 * i as i64;
        assert_eq!(
            w.reply(seq, reply(sent, fwd, 0, 100, 0)),
            ReplyOutcome::Recorded
        );
    }
    let s = w.summary(10_000 * US, 500 * US, false);
    assert_eq!((s.sent, s.received), (3, 3));
    assert_eq!(s.ipdv_ns, Some(10_000.0), "pairs across the wrap count");
}

#[test]
fn a_gap_in_sequence_numbers_starts_a_new_window() {
    let mut w = Window::new(10);
    w.sent(0, 0);
    w.sent(5, 1000);
    assert_eq!(w.sent_at(0), None);
    assert_eq!(w.sent_at(5), Some(1000));
}

#[test]
fn percentiles_by_nearest_rank() {
    let mut hundred: Vec<Nanos> = (1..=100).rev().collect();
    let d = Distribution::of(&mut hundred).expect("values");
    assert_eq!(
        (d.min_ns, d.p50_ns, d.p90_ns, d.p99_ns, d.max_ns),
        (1, 50, 90, 99, 100)
    );
    assert_eq!(d.mean_ns, 50.5);
    let one = Distribution::of(&mut [7]).expect("a value");
    assert_eq!((one.p50_ns, one.p99_ns, one.mean_ns), (7, 7, 7.0));
    assert_eq!(Distribution::of(&mut []), None);
}

#[test]
fn an_empty_window_has_no_figures() {
    let s = Window::new(4).summary(0, 0, false);
    assert_eq!((s.sent, s.received, s.loss_ratio), (0, 0, None));
    assert_eq!(
        (s.rtt, s.one_way, s.ipdv_ns, s.interarrival_jitter_ns),
        (None, None, None, None)
    );
}
