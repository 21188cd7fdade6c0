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
use crate::timestamp::{self, ErrorEstimate, Nanos, TimestampFormat};

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
/// A socket connected to the reflector at `target` (from `bind`, or any local address of
/// its family), sending with TTL 255.
async fn connect(target: SocketAddr, bind: Option<SocketAddr>) -> io::Result<StampSocket> {
    let bind = bind.unwrap_or(match target {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    });
    let socket = StampSocket::bind(bind).await?;
    socket.connect(target).await?;
    socket.set_max_ttl()?;
    Ok(socket)
}

pub async fn probe(config: &SenderConfig) -> io::Result<ProbeReport> {
    let socket = connect(config.target, config.bind).await?;

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
    /// Forward one-way delay, the p90: of the measured delays when clocks are declared
    /// synchronized, else half the p90 round trip.
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
            one_way_us: summary.one_way.map(|o| us(o.forward_p90_ns)),
        }
    }
}

/// A packet train for a bandwidth estimate ([`crate::bandwidth`]).
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub target: SocketAddr,
    pub bind: Option<SocketAddr>,
    /// Packets in the train (at least 4).
    pub packets: u32,
    /// Octets per packet (STAMP payload, at least 44).
    pub packet_len: usize,
    /// The fastest the train is sent, bits per second at the IP layer: the cap that keeps
    /// an estimate from flooding a path faster than it needs to.
    pub max_bits_per_second: f64,
    /// How long answers are awaited after the last packet.
    pub wait: Duration,
    pub format: TimestampFormat,
    pub ssid: u16,
}

impl TrainConfig {
    /// 100 packets of 1400 octets at up to 1 Gbit/s, answers awaited 1 s.
    pub fn new(target: SocketAddr) -> TrainConfig {
        TrainConfig {
            target,
            bind: None,
            packets: 100,
            packet_len: 1400,
            max_bits_per_second: 1e9,
            wait: Duration::from_secs(1),
            format: TimestampFormat::Ntp,
            ssid: 2,
        }
    }
}

/// What a train measured: the estimate (`None` when too few packets came back), and what
/// the sender could not use.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    pub estimate: Option<crate::bandwidth::Estimate>,
    pub sent: u32,
    pub received: u32,
    pub counters: SenderCounters,
}

/// Sends one train to the reflector at `config.target` and estimates the path's rate
/// from the reflector's receive timestamps.
pub async fn train(config: &TrainConfig) -> io::Result<TrainReport> {
    use crate::bandwidth::{Arrival, IP_UDP_HEADERS, estimate};

    let socket = connect(config.target, config.bind).await?;
    let packets = config.packets.max(4);
    let packet_len = config.packet_len.max(BASE_LEN);
    let error_estimate = ErrorEstimate::microsecond(false, config.format);
    let bits_per_packet = ((packet_len + IP_UDP_HEADERS) * 8) as f64;
    let rate = config.max_bits_per_second.max(bits_per_packet);
    let mut arrivals: Vec<Arrival> = Vec::with_capacity(packets as usize);
    let mut counters = SenderCounters::default();
    let mut buf = vec![0u8; 65_536];
    // Each packet leaves one gap at the cap after the previous one, from a thread of its
    // own that spins out the wait before each packet (the timer's millisecond grain
    // would send the train in bursts faster than the cap; a train is short: 100 packets
    // at 100 Mbit/s take 11 ms). Meanwhile this task reads the answers, which would
    // otherwise overflow the socket's buffer.
    let handle = socket.sender_handle()?;
    let gap = Duration::from_secs_f64(bits_per_packet / rate);
    let ssid = config.ssid;
    let sending = tokio::task::spawn_blocking(move || {
        let mut sent_at: Vec<Option<Nanos>> = vec![None; packets as usize];
        let mut errors = 0u64;
        let mut previous: Option<std::time::Instant> = None;
        for sequence in 0..packets {
            // One gap after the previous packet, not on a fixed schedule from the start: a
            // thread descheduled for a while would otherwise catch up in a burst faster
            // than the cap.
            if let Some(due) = previous.map(|p| p + gap) {
                while std::time::Instant::now() < due {
                    std::hint::spin_loop();
                }
            }
            previous = Some(std::time::Instant::now());
            let t1 = timestamp::now();
            let packet = SenderPacket {
                sequence,
                timestamp: t1,
                error_estimate,
                ssid,
            }
            .encode(packet_len);
            loop {
                match handle.send(&packet) {
                    Ok(_) => {
                        sent_at[sequence as usize] = Some(t1);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
        }
        (sent_at, errors)
    });
    tokio::pin!(sending);
    // (sequence, sender timestamp, reflector receive timestamp), matched once sent.
    let mut answers: Vec<(u32, Nanos, Nanos)> = Vec::with_capacity(packets as usize);
    let mut done: Option<(Vec<Option<Nanos>>, Instant)> = None;
    loop {
        if done.is_some() && answers.len() as u32 >= packets {
            break;
        }
        let until = done
            .as_ref()
            .map_or_else(|| Instant::now() + Duration::from_secs(86_400), |(_, d)| *d);
        tokio::select! {
            finished = &mut sending, if done.is_none() => {
                let (sent_at, errors) = finished.map_err(io::Error::other)?;
                counters.send_errors += errors;
                done = Some((sent_at, Instant::now() + config.wait));
            }
            received = socket.recv(&mut buf) => {
                let received = match received {
                    Ok(r) => r,
                    Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) => continue,
                    Err(e) => return Err(e),
                };
                match ReflectorPacket::decode(&buf[..received.len.min(buf.len())]) {
                    Ok(a) => answers.push((a.sender_sequence, a.sender_timestamp, a.receive_timestamp)),
                    Err(_) => counters.malformed += 1,
                }
            }
            () = tokio::time::sleep_until(until), if done.is_some() => break,
        }
    }
    let sent_at = done.map(|(s, _)| s).unwrap_or_default();
    for (sequence, sender_timestamp, received) in answers {
        // The echoed timestamp must be the packet's own, and each packet counts once.
        let ours = sent_at.get(sequence as usize).copied().flatten() == Some(sender_timestamp);
        if !ours || arrivals.iter().any(|a| a.sequence == sequence) {
            counters.unknown += 1;
            continue;
        }
        arrivals.push(Arrival {
            sequence,
            sent: sender_timestamp,
            received,
        });
    }
    Ok(TrainReport {
        estimate: estimate(&arrivals, packets, packet_len),
        sent: packets,
        received: arrivals.len() as u32,
        counters,
    })
}
