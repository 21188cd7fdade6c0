//! The agent's sender and reflector on real sockets over 127.0.0.1, with each other and
//! with a peer written here from RFC 8762's packet layout (not from the agent's code).

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use edgeplane_agent::reflector::{Reflector, ReflectorConfig, ReflectorCounters};
use edgeplane_agent::sender::{self, ProbeFigures, SenderConfig};
use edgeplane_agent::timestamp::TimestampFormat;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

const LOOPBACK: &str = "127.0.0.1:0";

/// A running reflector; dropping the sender half of `stop` ends it.
async fn reflector(
    format: TimestampFormat,
) -> (SocketAddr, Arc<ReflectorCounters>, oneshot::Sender<()>) {
    let reflector = Reflector::bind(ReflectorConfig {
        listen: LOOPBACK.parse().expect("address"),
        format,
        synchronized: false,
    })
    .await
    .expect("bind");
    let addr = reflector.local_addr().expect("address");
    let counters = reflector.counters();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(reflector.run(async {
        let _ = stopped.await;
    }));
    (addr, counters, stop)
}

fn config(target: SocketAddr, count: u32) -> SenderConfig {
    SenderConfig {
        interval: Duration::from_millis(1),
        // Generous: the session ends as soon as every answer is in.
        wait: Duration::from_secs(10),
        ..SenderConfig::new(target, count)
    }
}

#[tokio::test]
async fn sender_and_reflector_match_every_answer_to_its_probe() {
    for format in [TimestampFormat::Ntp, TimestampFormat::Ptp] {
        let (addr, counters, _stop) = reflector(format).await;
        let report = sender::probe(&SenderConfig {
            format,
            packet_len: 64,
            ..config(addr, 50)
        })
        .await
        .expect("probe");
        let s = &report.summary;
        assert_eq!((s.sent, s.received), (50, 50), "{format:?}");
        assert_eq!(s.loss_ratio, Some(0.0));
        assert_eq!((s.duplicates, s.reordered), (0, 0));
        assert_eq!(report.counters.malformed + report.counters.unknown, 0);
        assert_eq!(report.counters.inconsistent, 0);
        let rtt = s.rtt.expect("round trips");
        assert!(rtt.min_ns >= 0 && rtt.min_ns <= rtt.p50_ns && rtt.p50_ns <= rtt.p90_ns);
        assert!(rtt.p90_ns <= rtt.p99_ns && rtt.p99_ns <= rtt.max_ns);
        let one_way = s.one_way.expect("one way");
        assert!(one_way.estimated, "clocks not declared synchronized");
        #[cfg(target_os = "linux")]
        assert_eq!(report.sender_ttl, Some(255), "no router on loopback");
        assert_eq!(ReflectorCounters::get(&counters.reflected), 50);
        assert_eq!(ReflectorCounters::get(&counters.too_short), 0);

        let figures = ProbeFigures::of(s);
        let json = serde_json::to_value(&figures).expect("json");
        assert_eq!(json["sent"], 50);
        assert_eq!(json["received"], 50);
        assert!(json["rttUs"]["p99"].is_f64());
        assert!(json["jitterUs"]["interarrival"].is_f64());
    }
}

#[tokio::test]
async fn the_reflector_drops_and_counts_short_packets_and_answers_a_foreign_sender() {
    let (addr, counters, _stop) = reflector(TimestampFormat::Ntp).await;
    let peer = StdUdpSocket::bind(LOOPBACK).expect("bind");
    peer.set_ttl(200).expect("ttl");
    let peer = UdpSocket::from_std({
        peer.set_nonblocking(true).expect("nonblocking");
        peer
    })
    .expect("tokio socket");

    // 43 octets: one short of a test packet.
    peer.send_to(&[7u8; 43], addr).await.expect("send");

    // A Session-Sender packet laid out by hand from RFC 8762 section 4.2.1, with the
    // SSID of RFC 8972, PTP timestamp (Z=1) and an Extra Padding TLV (type 1).
    let mut probe = vec![0u8; 44];
    probe[0..4].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    probe[4..12].copy_from_slice(&[0x6a, 0, 0, 1, 0, 0, 0, 9]);
    probe[12..14].copy_from_slice(&[0x40, 0x01]);
    probe[14..16].copy_from_slice(&[0x12, 0x34]);
    probe.extend_from_slice(&[0x00, 0x01, 0x00, 0x04, 0, 0, 0, 0]);
    peer.send_to(&probe, addr).await.expect("send");

    let mut buf = [0u8; 1500];
    let (len, from) = peer.recv_from(&mut buf).await.expect("answer");
    assert_eq!(from, addr);
    let answer = &buf[..len];
    assert_eq!(len, probe.len(), "as long as the probe");
    assert_eq!(
        answer[0..4],
        probe[0..4],
        "stateless: the sender's sequence number"
    );
    assert_eq!(answer[12] & 0x40, 0, "the reflector writes NTP (Z=0)");
    assert_eq!(answer[14..16], [0x12, 0x34], "SSID");
    assert_eq!(
        answer[24..28],
        probe[0..4],
        "Session-Sender Sequence Number"
    );
    assert_eq!(answer[28..36], probe[4..12], "Session-Sender Timestamp");
    assert_eq!(
        answer[36..38],
        probe[12..14],
        "Session-Sender Error Estimate"
    );
    #[cfg(target_os = "linux")]
    assert_eq!(answer[40], 200, "Session-Sender TTL as received");
    assert_eq!(
        answer[44..],
        [0x80, 0x01, 0x00, 0x04, 0, 0, 0, 0],
        "TLV with U set"
    );
    // Receive (16..24) and transmit (4..12) timestamps in NTP: transmit not before receive.
    let ntp = |at: usize| u64::from_be_bytes(answer[at..at + 8].try_into().expect("8"));
    assert!(ntp(4) >= ntp(16) && ntp(16) > 0);

    // The reflector handles datagrams in order: the short one came before the answer.
    assert_eq!(ReflectorCounters::get(&counters.too_short), 1);
    assert_eq!(ReflectorCounters::get(&counters.reflected), 1);
    #[cfg(target_os = "linux")]
    assert_eq!(
        counters.user_space_timestamps.load(Ordering::Relaxed),
        0,
        "kernel timestamps"
    );
}

/// A stateful Session-Reflector written from RFC 8762 section 4.3.1: its own sequence
/// numbers from 1000, PTP timestamps, and a TLV. Before each answer it sends a datagram
/// too short to be one, and after it the same answer again.
async fn foreign_reflector(socket: UdpSocket) {
    let mut buf = [0u8; 1500];
    let mut own_sequence = 1000u32;
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let received = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970");
        let ptp = |d: Duration| {
            let mut t = [0u8; 8];
            t[..4].copy_from_slice(&(d.as_secs() as u32).to_be_bytes());
            t[4..].copy_from_slice(&d.subsec_nanos().to_be_bytes());
            t
        };
        let mut answer = vec![0u8; 44];
        answer[0..4].copy_from_slice(&own_sequence.to_be_bytes());
        answer[4..12].copy_from_slice(&ptp(received));
        answer[12..14].copy_from_slice(&[0x40, 0x01]);
        answer[16..24].copy_from_slice(&ptp(received));
        answer[24..36].copy_from_slice(&buf[0..12]);
        answer[36..38].copy_from_slice(&buf[12..14]);
        answer[40] = 255;
        answer.extend_from_slice(&[0x00, 0xfe, 0x00, 0x02, 1, 2]);
        own_sequence += 1;
        assert!(len >= 44);
        let _ = socket.send_to(&[1, 2, 3], from).await;
        let _ = socket.send_to(&answer, from).await;
        let _ = socket.send_to(&answer, from).await;
    }
}

#[tokio::test]
async fn the_sender_measures_through_a_foreign_reflector_and_counts_what_it_ignores() {
    let socket = UdpSocket::bind(LOOPBACK).await.expect("bind");
    let addr = socket.local_addr().expect("address");
    let reflector = tokio::spawn(foreign_reflector(socket));
    let report = sender::probe(&config(addr, 20)).await.expect("probe");
    reflector.abort();
    let s = &report.summary;
    assert_eq!((s.sent, s.received), (20, 20));
    assert_eq!(s.loss_ratio, Some(0.0));
    // Every answer but the last was followed by its duplicate before the next probe's
    // answer; the session ends on the last answer.
    assert_eq!(s.duplicates, 19);
    assert_eq!(report.counters.malformed, 20, "the 3-octet datagrams");
    assert_eq!(report.counters.unknown, 0);
    assert!(s.rtt.is_some());
}

#[tokio::test]
async fn probes_to_a_closed_port_are_all_lost() {
    // A port that was just free: nothing listens there once the socket is dropped.
    let addr = StdUdpSocket::bind(LOOPBACK)
        .and_then(|s| s.local_addr())
        .expect("a free port");
    let report = sender::probe(&SenderConfig {
        wait: Duration::from_millis(50),
        ..config(addr, 5)
    })
    .await
    .expect("probe");
    let s = &report.summary;
    assert_eq!((s.sent, s.received, s.loss_ratio), (5, 0, Some(1.0)));
    assert_eq!(s.rtt, None);
    assert_eq!(ProbeFigures::of(s).rtt_us, None);
}
