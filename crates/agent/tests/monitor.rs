//! The long-running sender (`Monitor`) on real sockets over 127.0.0.1: many peers from one
//! socket, a peer that answers with malformed packets, datagrams from strangers, a peer
//! that vanishes (stale, never a zero figure), and a peer set that changes.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::time::Duration;

use edgeplane_agent::monitor::{Monitor, MonitorConfig, Peer};
use edgeplane_agent::reflector::{Reflector, ReflectorConfig};
use edgeplane_agent::timestamp::{self, TimestampFormat};

const LOOPBACK: &str = "127.0.0.1:0";

async fn reflector() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let reflector = Reflector::bind(ReflectorConfig {
        listen: LOOPBACK.parse().expect("address"),
        format: TimestampFormat::Ntp,
        synchronized: false,
    })
    .await
    .expect("bind");
    let addr = reflector.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(reflector.run(async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn peer(name: &str, address: SocketAddr) -> Peer {
    Peer {
        name: name.into(),
        address,
    }
}

/// Probes every peer `rounds` times and reads answers until `expected` replies came (or
/// 5 s passed: a missing answer then shows as a failed assertion, not a hang).
async fn rounds(monitor: &mut Monitor, rounds: u32, expected: u64) {
    for _ in 0..rounds {
        monitor.probe_all().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while monitor.counters().replies < expected {
            monitor.receive().await.expect("receive");
        }
    })
    .await;
}

#[tokio::test]
async fn many_peers_malformed_answers_strangers_and_a_vanished_peer() {
    let (a, _stop_a) = reflector().await;
    let (b, _stop_b) = reflector().await;
    // A peer that answers every probe with 10 octets: malformed, never measured.
    let liar = StdUdpSocket::bind(LOOPBACK).expect("bind");
    let liar_addr = liar.local_addr().expect("address");
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((_, from)) = liar.recv_from(&mut buf) {
            let _ = liar.send_to(&[0u8; 10], from);
        }
    });
    // A peer whose port is closed: it vanished.
    let gone = StdUdpSocket::bind(LOOPBACK).expect("bind");
    let gone_addr = gone.local_addr().expect("address");
    drop(gone);

    let config = MonitorConfig {
        window: 10,
        loss_after: Duration::from_millis(100),
        stale_after: Duration::from_secs(3),
        ..MonitorConfig::default()
    };
    let mut monitor = Monitor::bind(LOOPBACK.parse().expect("address"), config)
        .await
        .expect("bind");
    monitor.set_peers(&[
        peer("a", a),
        peer("b", b),
        peer("liar", liar_addr),
        peer("gone", gone_addr),
    ]);
    // A stranger writes to the monitor's socket: counted as unknown, ignored.
    let stranger = StdUdpSocket::bind(LOOPBACK).expect("bind");
    stranger
        .send_to(&[0u8; 44], monitor.local_addr().expect("address"))
        .expect("send");

    rounds(&mut monitor, 5, 10).await;
    // The liar's 5 answers and the stranger's datagram may still be in flight: read
    // until they are counted too.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while monitor.counters().malformed < 5 || monitor.counters().unknown < 1 {
            monitor.receive().await.expect("receive");
        }
    })
    .await;
    let counters = monitor.counters();
    assert_eq!(counters.sent, 20);
    assert_eq!(counters.replies, 10);
    assert_eq!(counters.malformed, 5);
    assert_eq!(counters.unknown, 1);

    // 1 s later: within the 3 s timeout, no peer is stale yet (the silent ones were added
    // less than 3 s ago).
    let later = timestamp::now() + 1_000_000_000;
    let figures = monitor.figures_at(later);
    let names: Vec<(&str, bool, u64)> = figures
        .iter()
        .map(|f| (f.peer.name.as_str(), f.stale, f.summary.received))
        .collect();
    assert_eq!(
        names,
        [
            ("a", false, 5),
            ("b", false, 5),
            ("gone", false, 0),
            ("liar", false, 0)
        ]
    );
    let much_later = timestamp::now() + 10_000_000_000;
    let figures = monitor.figures_at(much_later);
    let stale: Vec<(&str, bool)> = figures
        .iter()
        .map(|f| (f.peer.name.as_str(), f.stale))
        .collect();
    // 10 s later every peer is stale (no answer for the 3 s timeout); the ones that never
    // answered have no round trip at all, never a zero, and all their probes are lost.
    assert_eq!(
        stale,
        [("a", true), ("b", true), ("gone", true), ("liar", true)]
    );
    for f in &figures {
        match f.peer.name.as_str() {
            "gone" | "liar" => {
                assert_eq!(f.summary.rtt, None, "{f:?}");
                assert_eq!(f.summary.loss_ratio, Some(1.0), "{f:?}");
            }
            _ => assert!(f.summary.rtt.is_some_and(|r| r.min_ns > 0), "{f:?}"),
        }
    }

    // The peer set changes: a stays (its window kept), b leaves, c arrives.
    let (c, _stop_c) = reflector().await;
    monitor.set_peers(&[peer("a", a), peer("c", c)]);
    assert_eq!(monitor.peer_count(), 2);
    rounds(&mut monitor, 1, 12).await;
    let figures = monitor.figures_at(timestamp::now() + 1_000_000_000);
    let kept: Vec<(&str, u64)> = figures
        .iter()
        .map(|f| (f.peer.name.as_str(), f.summary.received))
        .collect();
    assert_eq!(kept, [("a", 6), ("c", 1)]);
}
