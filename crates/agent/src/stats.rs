//! Per-peer figures over a sliding window of probes: pure, no clock, no I/O.
//!
//! Each probe has the four timestamps of a STAMP exchange: T1 (sender transmit), T2
//! (reflector receive), T3 (reflector transmit), T4 (sender receive), in nanoseconds.
//! - round-trip delay: `(T4 - T1) - (T3 - T2)`, the reflector's processing removed;
//! - forward one-way delay `T2 - T1` and backward `T4 - T3`: true delays only when both
//!   clocks are synchronized, otherwise they carry the clocks' offset, which cancels in
//!   the jitter figures below (both are differences of delays);
//! - IPDV (RFC 3393) between probes of consecutive sequence numbers, on the forward
//!   delay; reported as the mean of its absolute values;
//! - the RFC 3550 (section 6.4.1) interarrival jitter estimator `J += (|D| - J) / 16`
//!   over the probes in the order the reflector received them (T2), on the forward delay;
//! - percentiles by the nearest-rank method: the smallest sample with at least p % of
//!   the samples at or below it (always a measured value, never an interpolation).

use std::collections::VecDeque;

use crate::timestamp::Nanos;

/// The timestamps a reply brought back for a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub reflector_received: Nanos,
    pub reflector_sent: Nanos,
    pub received: Nanos,
}

#[derive(Debug, Clone)]
struct Probe {
    sequence: u32,
    sent: Nanos,
    reply: Option<Reply>,
    duplicates: u32,
    reordered: bool,
}

/// What became of a reply given to [`Window::reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// The first reply for that probe, in order.
    Recorded,
    /// The first reply for that probe, after a reply for a later probe.
    Reordered,
    /// A probe already answered.
    Duplicate,
    /// No probe of that sequence number in the window (too old, or never sent).
    Unknown,
    /// Timestamps that give a negative round trip or processing time: a reflector whose
    /// clock stepped, or a forged packet. Kept out of the figures.
    Inconsistent,
}

/// The last `capacity` probes sent to one peer, with their replies.
#[derive(Debug, Clone)]
pub struct Window {
    capacity: usize,
    probes: VecDeque<Probe>,
    highest_answered: Option<usize>,
}

impl Window {
    /// A window of at least one probe.
    pub fn new(capacity: usize) -> Window {
        Window {
            capacity: capacity.max(1),
            probes: VecDeque::new(),
            highest_answered: None,
        }
    }

    /// Records a probe sent at `sent`. Sequence numbers follow each other (wrapping at
    /// 2^32), so a reply finds its probe by offset from the oldest one.
    pub fn sent(&mut self, sequence: u32, sent: Nanos) {
        if let Some(last) = self.probes.back()
            && last.sequence.wrapping_add(1) != sequence
        {
            // A gap means a new numbering: start over rather than mismatch replies.
            self.probes.clear();
            self.highest_answered = None;
        }
        self.probes.push_back(Probe {
            sequence,
            sent,
            reply: None,
            duplicates: 0,
            reordered: false,
        });
        if self.probes.len() > self.capacity {
            self.probes.pop_front();
            self.highest_answered = self.highest_answered.and_then(|h| h.checked_sub(1));
        }
    }

    /// The sending time of the probe `sequence`, while in the window.
    pub fn sent_at(&self, sequence: u32) -> Option<Nanos> {
        self.index(sequence).map(|i| self.probes[i].sent)
    }

    fn index(&self, sequence: u32) -> Option<usize> {
        let first = self.probes.front()?.sequence;
        let offset = sequence.wrapping_sub(first) as usize;
        (offset < self.probes.len()).then_some(offset)
    }

    /// Records the reply to probe `sequence`.
    pub fn reply(&mut self, sequence: u32, reply: Reply) -> ReplyOutcome {
        let Some(index) = self.index(sequence) else {
            return ReplyOutcome::Unknown;
        };
        let probe = &mut self.probes[index];
        if probe.reply.is_some() {
            probe.duplicates += 1;
            return ReplyOutcome::Duplicate;
        }
        let processing = reply.reflector_sent - reply.reflector_received;
        if processing < 0 || reply.received - probe.sent < processing {
            return ReplyOutcome::Inconsistent;
        }
        probe.reply = Some(reply);
        if self.highest_answered.is_some_and(|h| index < h) {
            probe.reordered = true;
            ReplyOutcome::Reordered
        } else {
            self.highest_answered = Some(index);
            ReplyOutcome::Recorded
        }
    }

    /// The figures of the window at `now`: a probe without a reply counts as lost once
    /// `loss_after` has passed since it was sent, and is left out before that.
    /// `clocks_synchronized` says whether T2 - T1 is a true one-way delay.
    pub fn summary(&self, now: Nanos, loss_after: Nanos, clocks_synchronized: bool) -> Summary {
        let mut settled = 0u64;
        let mut received = 0u64;
        let mut rtts = Vec::new();
        let mut forward = Vec::new();
        let mut backward = Vec::new();
        let mut by_arrival = Vec::new();
        let mut ipdvs = Vec::new();
        let mut previous: Option<(u32, Nanos)> = None;
        let mut duplicates = 0u64;
        let mut reordered = 0u64;
        for probe in &self.probes {
            duplicates += u64::from(probe.duplicates);
            reordered += u64::from(probe.reordered);
            let Some(reply) = probe.reply else {
                if now.saturating_sub(probe.sent) >= loss_after {
                    settled += 1;
                }
                previous = None;
                continue;
            };
            settled += 1;
            received += 1;
            let processing = reply.reflector_sent - reply.reflector_received;
            rtts.push(reply.received - probe.sent - processing);
            let fwd = reply.reflector_received - probe.sent;
            forward.push(fwd);
            backward.push(reply.received - reply.reflector_sent);
            by_arrival.push((reply.reflector_received, probe.sequence, fwd));
            if let Some((seq, prev)) = previous
                && seq.wrapping_add(1) == probe.sequence
            {
                ipdvs.push(fwd - prev);
            }
            previous = Some((probe.sequence, fwd));
        }
        by_arrival.sort_unstable();
        let mut interarrival = 0f64;
        for pair in by_arrival.windows(2) {
            let d = (pair[1].2 - pair[0].2).unsigned_abs() as f64;
            interarrival += (d - interarrival) / 16.0;
        }
        let rtt = Distribution::of(&mut rtts);
        // The p90, as the round-trip path publishes (p90 halved): one figure, whichever
        // way it was measured.
        let one_way = rtt.map(|rtt| {
            if clocks_synchronized {
                forward.sort_unstable();
                backward.sort_unstable();
                OneWay {
                    forward_p90_ns: nearest_rank(&forward, 90) as f64,
                    backward_p90_ns: nearest_rank(&backward, 90) as f64,
                    estimated: false,
                }
            } else {
                OneWay {
                    forward_p90_ns: rtt.p90_ns as f64 / 2.0,
                    backward_p90_ns: rtt.p90_ns as f64 / 2.0,
                    estimated: true,
                }
            }
        });
        Summary {
            sent: self.probes.len() as u64,
            settled,
            received,
            loss_ratio: (settled > 0).then(|| (settled - received) as f64 / settled as f64),
            rtt,
            one_way,
            ipdv_ns: (!ipdvs.is_empty()).then(|| {
                ipdvs.iter().map(|d| d.unsigned_abs() as f64).sum::<f64>() / ipdvs.len() as f64
            }),
            interarrival_jitter_ns: (by_arrival.len() > 1).then_some(interarrival),
            duplicates,
            reordered,
        }
    }
}

fn mean(values: &[Nanos]) -> f64 {
    values.iter().map(|v| *v as f64).sum::<f64>() / values.len().max(1) as f64
}

/// The figures of one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Probes in the window.
    pub sent: u64,
    /// Probes answered or given up on: what the loss ratio is over.
    pub settled: u64,
    pub received: u64,
    /// Lost over settled; `None` before any probe settled.
    pub loss_ratio: Option<f64>,
    /// Round-trip delay, the reflector's processing removed.
    pub rtt: Option<Distribution>,
    pub one_way: Option<OneWay>,
    /// Mean absolute IPDV between consecutive probes, forward direction.
    pub ipdv_ns: Option<f64>,
    /// RFC 3550 interarrival jitter, forward direction.
    pub interarrival_jitter_ns: Option<f64>,
    pub duplicates: u64,
    pub reordered: u64,
}

/// One-way delay, the p90 over the window: of the measured delays when clocks are
/// declared synchronized, otherwise half the p90 round trip (`estimated`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneWay {
    pub forward_p90_ns: f64,
    pub backward_p90_ns: f64,
    pub estimated: bool,
}

/// Order statistics of a set of delays, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distribution {
    pub min_ns: Nanos,
    pub mean_ns: f64,
    pub p50_ns: Nanos,
    pub p90_ns: Nanos,
    pub p99_ns: Nanos,
    pub max_ns: Nanos,
}

impl Distribution {
    /// Sorts `values`; `None` when there are none.
    pub fn of(values: &mut [Nanos]) -> Option<Distribution> {
        values.sort_unstable();
        Some(Distribution {
            min_ns: *values.first()?,
            mean_ns: mean(values),
            p50_ns: nearest_rank(values, 50),
            p90_ns: nearest_rank(values, 90),
            p99_ns: nearest_rank(values, 99),
            max_ns: *values.last()?,
        })
    }
}

/// The nearest-rank percentile of sorted, non-empty `values`.
fn nearest_rank(values: &[Nanos], percent: usize) -> Nanos {
    let rank = (percent * values.len()).div_ceil(100).max(1);
    values[rank - 1]
}

#[cfg(test)]
mod tests;
