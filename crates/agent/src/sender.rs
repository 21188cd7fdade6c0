//! The Session-Sender (RFC 8762 section 4.2): probes one reflector at a fixed interval and
//! matches the answers to its probes by the Session-Sender sequence number and timestamp
//! they carry back, into a [`Window`].

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::packet::{BASE_LEN, ReflectorPacket, SenderPacket};
use crate::socket::StampSocket;
use crate::stats::{ReplyOutcome, Summary, Window};
use crate::timestamp::{self, ErrorEstimate, TimestampFormat};

/// One probe session towards one reflector.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub target: SocketAddr,
    /// The local address; the unspecified address of the target's family when `None`.
    pub bind: Option<SocketAddr>,
    /// Probes to send (at least 1).
    pub count: u32,
    /// Time between probes.
    pub interval: Duration,
    /// How long answers are awaited after the last probe; unanswered ones are lost then.
    pub wait: Duration,
    /// Octets per probe, at least 44 (padding makes both directions the same size).
    pub packet_len: usize,
    pub format: TimestampFormat,
    /// Whether both clocks are declared synchronized: one-way delays are measured, not
    /// estimated as half the round trip. Also sent as the S bit.
    pub clocks_synchronized: bool,
    /// The Session-Sender Identifier (RFC 8972).
    pub ssid: u16,
}

impl SenderConfig {
    /// Probes every 10 ms, awaits answers for 1 s after the last, 44-octet NTP probes.
    pub fn new(target: SocketAddr, count: u32) -> SenderConfig {
        SenderConfig {
            target,
            bind: None,
            count,
            interval: Duration::from_millis(10),
            wait: Duration::from_secs(1),
            packet_len: BASE_LEN,
            format: TimestampFormat::Ntp,
            clocks_synchronized: false,
            ssid: 1,
        }
    }
}

/// Packets the sender received and did not measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderCounters {
    /// Too short, truncated, or with an unreadable timestamp.
    pub malformed: u64,
    /// For no probe in the window, or with a sender timestamp that is not the probe's.
    pub unknown: u64,
    /// With a negative round trip or processing time.
    pub inconsistent: u64,
    /// Probes the OS refused to send (they count as lost).
    pub send_errors: u64,
    /// Answers stamped in user space because the kernel gave no receive timestamp.
    pub user_space_timestamps: u64,
}

/// What a probe session measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    pub summary: Summary,
    pub counters: SenderCounters,
    /// The TTL (hop limit) the last answered probe reached the reflector with, as the
    /// reflector wrote it; probes leave with 255, so `255 - ttl` routers forwarded it.
    /// `None` when no answer had one (0: the reflector did not know).
    pub sender_ttl: Option<u8>,
}

/// Runs a probe session to its end: `count` probes, then answers until all came back or
/// `wait` passed after the last probe.
pub async fn probe(config: &SenderConfig) -> io::Result<ProbeReport> {
    let bind = config.bind.unwrap_or(match config.target {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    });
    let socket = StampSocket::bind(bind).await?;
    socket.connect(config.target).await?;
    socket.set_max_ttl()?;

    let count = config.count.max(1);
    let error_estimate = ErrorEstimate::microsecond(config.clocks_synchronized, config.format);
    let mut window = Window::new(count as usize);
    let mut counters = SenderCounters::default();
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; 65_536];
    let mut sent = 0u32;
    let mut answered = 0u32;
    let mut deadline: Option<Instant> = None;
    let mut sender_ttl = None;

    while answered < count {
        // Disabled branches' futures are still built: a far deadline stands in.
        let until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            _ = ticker.tick(), if sent < count => {
                let sequence = sent;
                let t1 = timestamp::now();
                let packet = SenderPacket {
                    sequence,
                    timestamp: t1,
                    error_estimate,
                    ssid: config.ssid,
                }
                .encode(config.packet_len);
                window.sent(sequence, t1);
                if socket.send(&packet).await.is_err() {
                    counters.send_errors += 1;
                }
                sent += 1;
                if sent == count {
                    deadline = Some(Instant::now() + config.wait);
                }
            }
            received = socket.recv(&mut buf) => {
                let received = match received {
                    Ok(r) => r,
                    // The reflector's port is closed (an ICMP error): the probes are lost.
                    Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) => continue,
                    Err(e) => return Err(e),
                };
                if !received.kernel_timestamp {
                    counters.user_space_timestamps += 1;
                }
                if received.truncated {
                    counters.malformed += 1;
                    continue;
                }
                let Ok(answer) = ReflectorPacket::decode(&buf[..received.len]) else {
                    counters.malformed += 1;
                    continue;
                };
                // The echoed timestamp must be the probe's own: an answer to an earlier
                // session that used the same port and numbers is not this probe's.
                if window.sent_at(answer.sender_sequence) != Some(answer.sender_timestamp) {
                    counters.unknown += 1;
                    continue;
                }
                let reply = crate::stats::Reply {
                    reflector_received: answer.receive_timestamp,
                    reflector_sent: answer.timestamp,
                    received: received.at,
                };
                match window.reply(answer.sender_sequence, reply) {
                    ReplyOutcome::Recorded | ReplyOutcome::Reordered => {
                        answered += 1;
                        sender_ttl = Some(answer.sender_ttl).filter(|t| *t != 0).or(sender_ttl);
                    }
                    ReplyOutcome::Duplicate => {}
                    ReplyOutcome::Unknown => counters.unknown += 1,
                    ReplyOutcome::Inconsistent => counters.inconsistent += 1,
                }
            }
            () = tokio::time::sleep_until(until), if deadline.is_some() => break,
        }
    }
    Ok(ProbeReport {
        // Every probe is settled now: answered, or lost after its wait.
        summary: window.summary(i64::MAX, 0, config.clocks_synchronized),
        counters,
        sender_ttl,
    })
}

/// `edgeplane agent probe -o json`: durations in microseconds, `null` where nothing was
/// measured (no answer, or a single one for the jitter figures).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeFigures {
    pub sent: u64,
    pub received: u64,
    pub loss_ratio: Option<f64>,
    pub rtt_us: Option<RttFigures>,
    pub jitter_us: JitterFigures,
    /// Forward one-way delay when clocks are declared synchronized, else half the mean
    /// round trip.
    pub one_way_us: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RttFigures {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct JitterFigures {
    pub ipdv: Option<f64>,
    pub interarrival: Option<f64>,
}

fn us(ns: f64) -> f64 {
    // Rounded to the nanosecond, so that printed figures carry no binary noise.
    ns.round() / 1000.0
}

impl ProbeFigures {
    pub fn of(summary: &Summary) -> ProbeFigures {
        ProbeFigures {
            sent: summary.sent,
            received: summary.received,
            loss_ratio: summary.loss_ratio,
            rtt_us: summary.rtt.map(|d| RttFigures {
                min: us(d.min_ns as f64),
                mean: us(d.mean_ns),
                p50: us(d.p50_ns as f64),
                p90: us(d.p90_ns as f64),
                p99: us(d.p99_ns as f64),
                max: us(d.max_ns as f64),
            }),
            jitter_us: JitterFigures {
                ipdv: summary.ipdv_ns.map(us),
                interarrival: summary.interarrival_jitter_ns.map(us),
            },
            one_way_us: summary.one_way.map(|o| us(o.forward_ns)),
        }
    }
}
