//! The measurement agent feeds the providers end to end: real STAMP probes on loopback
//! (through a relay that delays them, to degrade the link), the agent's aggregation and
//! publication into the topology's `status.measured`, and the binding controller judging
//! the latency rule on the measured value, with the reason naming the measurement (and,
//! once it is stale, saying the figure is the spec's).
//!
//! The probing runs on a thread of its own with a real-time runtime, while the cluster and
//! the controller wait on virtual time (the thread is joined, so virtual time stands still
//! while packets fly).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use edgeplane_agent::monitor::{Monitor, MonitorConfig, Peer, PeerFigures};
use edgeplane_agent::reflector::{Reflector, ReflectorConfig};
use edgeplane_agent::timestamp::{self, TimestampFormat};
use edgeplane_api::{Compliance, NetworkTopology};
use edgeplane_core::measurement::{Publish, PublishPolicy};
use edgeplane_runtime::context::Context;
use edgeplane_runtime::measurement::{Publisher, field_manager, pair_figures};

use crate::harness::{self, Setup};

const WORLD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ar}
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  links:
  - {from: edge-1, to: metro, latency: 2ms}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: latency, namespace: ar}
spec:
  rules:
  - {name: latency, request: 5ms, limit: 10ms}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: ar, namespace: ar}
spec:
  targets:
  - {name: app, kind: Pod, labelSelector: {matchLabels: {app: ar}}}
  - {name: users, kind: Site, sites: [metro]}
  policies: [latency]
  period: 10s
  grace: 1m
  violationPolicy: Ignore
---
apiVersion: v1
kind: Pod
metadata: {name: ar-1, namespace: ar, labels: {app: ar}}
spec: {nodeName: e1, containers: [{name: c, image: ar:1}]}
"#;

/// A UDP relay in front of a reflector that holds every probe for `delay` (each on its own
/// thread, so the delay does not queue) and passes the answers straight back.
struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(reflector: SocketAddr, delay: Duration) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(reflector).unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        {
            let (front, back, stop, client) = (
                front.try_clone().unwrap(),
                back.try_clone().unwrap(),
                stop.clone(),
                client.clone(),
            );
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = front.recv_from(&mut buf) else {
                        continue;
                    };
                    *client.lock().unwrap() = Some(from);
                    let packet = buf[..n].to_vec();
                    let back = back.try_clone().unwrap();
                    std::thread::spawn(move || {
                        std::thread::sleep(delay);
                        let _ = back.send(&packet);
                    });
                }
            });
        }
        {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(n) = back.recv(&mut buf) else {
                        continue;
                    };
                    if let Some(to) = *client.lock().unwrap() {
                        let _ = front.send_to(&buf[..n], to);
                    }
                }
            });
        }
        Relay { addr, stop }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

const PROBES: u32 = 20;

/// Probes the peer m1 `PROBES` times, 5 ms apart, through a relay adding `delay` (or,
/// with `None`, towards a port where nothing answers any more), and returns its figures
/// as the agent reports them `later` after the last probe.
fn measure(delay: Option<Duration>, later: Duration) -> PeerFigures {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let reflector = Reflector::bind(ReflectorConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                format: TimestampFormat::Ntp,
                synchronized: false,
            })
            .await
            .unwrap();
            let reflector_addr = reflector.local_addr().unwrap();
            let stop = Arc::new(tokio::sync::Notify::new());
            let stopped = stop.clone();
            let reflecting = tokio::spawn(reflector.run(async move { stopped.notified().await }));
            let (relay, target) = match delay {
                Some(d) => {
                    let relay = Relay::start(reflector_addr, d);
                    let addr = relay.addr;
                    (Some(relay), addr)
                }
                None => {
                    // A port that was bound and closed: nobody answers there.
                    let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
                    let addr = gone.local_addr().unwrap();
                    drop(gone);
                    (None, addr)
                }
            };
            let config = MonitorConfig {
                window: PROBES as usize,
                loss_after: Duration::from_secs(1),
                stale_after: Duration::from_secs(5),
                ..MonitorConfig::default()
            };
            let mut monitor = Monitor::bind("127.0.0.1:0".parse().unwrap(), config)
                .await
                .unwrap();
            monitor.set_peers(&[Peer {
                name: "m1".into(),
                address: target,
            }]);
            for _ in 0..PROBES {
                monitor.probe_all().await;
                let _ = tokio::time::timeout(Duration::from_millis(5), async {
                    loop {
                        monitor.receive().await.unwrap();
                    }
                })
                .await;
            }
            // Answers for up to 2 s more (the relay's delay is far shorter).
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while monitor.counters().replies < u64::from(PROBES) {
                    monitor.receive().await.unwrap();
                }
            })
            .await;
            drop(relay);
            stop.notify_one();
            let _ = reflecting.await;
            let later = i64::try_from(later.as_nanos()).unwrap();
            monitor.figures_at(timestamp::now() + later).remove(0)
        })
    })
    .join()
    .unwrap()
}

async fn binding(client: &kube::Client) -> Option<(Compliance, String)> {
    let all = harness::bindings(client, "ar").await;
    let status = all.into_iter().next()?.status?;
    Some((status.compliance, status.first_reason.unwrap_or_default()))
}

async fn measured(client: &kube::Client) -> Vec<edgeplane_api::MeasuredLink> {
    kube::Api::<NetworkTopology>::all(client.clone())
        .get("default")
        .await
        .unwrap()
        .status
        .map(|s| s.measured)
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn a_degraded_measured_link_turns_a_binding_to_violation_and_back_and_a_vanished_peer_is_never_zero()
 {
    let cluster = harness::cluster(vec![
        harness::site_node("e1", "edge-1"),
        harness::site_node("m1", "metro"),
    ])
    .await;
    let client = cluster.client();
    cluster.load_yaml(WORLD).await.unwrap();
    let _controller = harness::start_controller(&cluster, Setup::new("replica-a")).await;
    let is = |wanted: Compliance, measured: bool| {
        let client = client.clone();
        async move {
            binding(&client).await.is_some_and(|(c, reason)| {
                c == wanted && reason.contains("; measured edge-1 -> metro at ") == measured
            })
        }
    };
    // The spec's 2ms: compliant, and the reason names no measurement.
    assert!(
        harness::eventually(Duration::from_secs(60), || is(Compliance::Compliant, false)).await,
        "{:?}",
        binding(&client).await
    );

    let ctx = Context::new(client.clone(), "agent").with_clock(Arc::new(cluster.clock()));
    let mut publisher = Publisher::new("edge-1", PublishPolicy::default());
    let step = |figures: PeerFigures| vec![pair_figures(&figures, "metro", None)];

    // A healthy loopback: well under a millisecond, measured.
    let healthy = measure(Some(Duration::ZERO), Duration::ZERO);
    assert_eq!(healthy.summary.received, u64::from(PROBES), "{healthy:?}");
    assert_eq!(
        publisher.step(&ctx, &step(healthy)).await.unwrap(),
        Some(Publish::First)
    );
    let links = measured(&client).await;
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(
        (links[0].from.as_str(), links[0].to.as_str()),
        ("edge-1", "metro")
    );
    assert!(
        harness::eventually(Duration::from_secs(60), || is(Compliance::Compliant, true)).await,
        "{:?}",
        binding(&client).await
    );

    // 40 ms held in the relay: a 20 ms one-way estimate, over the 10ms limit.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let degraded = measure(Some(Duration::from_millis(40)), Duration::ZERO);
    let rtt = degraded.summary.rtt.unwrap();
    assert!(rtt.p90_ns >= 40_000_000, "{degraded:?}");
    assert!(matches!(
        publisher.step(&ctx, &step(degraded)).await.unwrap(),
        Some(Publish::Changed(_))
    ));
    assert!(
        harness::eventually(Duration::from_secs(60), || is(Compliance::Violation, true)).await,
        "{:?}",
        binding(&client).await
    );
    let (_, reason) = binding(&client).await.unwrap();
    assert!(reason.contains("latency "), "{reason}");

    // Back to health: Compliant again, on the measurement.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let recovered = measure(Some(Duration::ZERO), Duration::ZERO);
    assert!(matches!(
        publisher.step(&ctx, &step(recovered)).await.unwrap(),
        Some(Publish::Changed(_))
    ));
    assert!(
        harness::eventually(Duration::from_secs(60), || is(Compliance::Compliant, true)).await,
        "{:?}",
        binding(&client).await
    );

    // The agent stops publishing (killed, say): its last entry stays in the status until,
    // past the topology's measurementMaxAge (5m), it is stale. The spec's 2ms applies
    // again, and the reason says the figure is the spec's and why.
    tokio::time::sleep(Duration::from_secs(300)).await;
    let spec_since_stale = |client: kube::Client| async move {
        binding(&client).await.is_some_and(|(c, reason)| {
            c == Compliance::Compliant
                && reason.contains("latency 2ms ")
                && reason.contains("; spec for edge-1 -> metro (measurement stale since ")
                && !reason.contains("; measured ")
        })
    };
    assert!(
        harness::eventually(Duration::from_secs(60), || spec_since_stale(client.clone())).await,
        "{:?}",
        binding(&client).await
    );
    assert_eq!(measured(&client).await.len(), 1, "the stale entry stays");

    // The peer vanishes: after the stale timeout it is stale, its link leaves the status
    // (never a zero latency), and the spec's 2ms applies again; with no measurement left
    // at all the reason is the plain one again.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let vanished = measure(None, Duration::from_secs(6));
    assert!(vanished.stale, "{vanished:?}");
    assert_eq!(vanished.summary.received, 0);
    assert_eq!(
        publisher.step(&ctx, &step(vanished)).await.unwrap(),
        Some(Publish::Changed(
            "metro: no fresh measurement any more".into()
        ))
    );
    assert_eq!(measured(&client).await, Vec::new());
    assert!(
        harness::eventually(Duration::from_secs(60), || is(Compliance::Compliant, false)).await,
        "{:?}",
        binding(&client).await
    );
    let (_, reason) = binding(&client).await.unwrap();
    assert!(reason.contains("latency 2ms "), "{reason}");
    assert!(!reason.contains("; spec for"), "{reason}");
}

/// Each site's publisher owns its own entries: site b's apply neither removes nor takes
/// site a's, and a publisher that drops an entry removes only its own.
#[tokio::test(start_paused = true)]
async fn each_sites_publisher_owns_its_entries_of_the_measured_list() {
    let cluster = harness::cluster(vec![
        harness::site_node("a1", "a"),
        harness::site_node("b1", "b"),
    ])
    .await;
    let client = cluster.client();
    cluster
        .load_yaml("apiVersion: network.edgeplane.io/v1alpha1\nkind: NetworkTopology\nmetadata: {name: default}\nspec: {links: [{from: a, to: b, latency: 2ms}]}\n")
        .await
        .unwrap();
    let ctx = Context::new(client.clone(), "agent").with_clock(Arc::new(cluster.clock()));
    let link = |from: &str, to: &str, latency: &str| edgeplane_api::MeasuredLink {
        from: from.into(),
        to: to.into(),
        one_way: false,
        latency: Some(latency.into()),
        jitter: None,
        bandwidth: None,
        loss: None,
        time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-01T00:00:00Z".parse().unwrap(),
        ),
    };
    edgeplane_runtime::measurement::publish(&ctx, "a", &[link("a", "b", "3ms")])
        .await
        .unwrap();
    edgeplane_runtime::measurement::publish(&ctx, "b", &[link("b", "a", "4ms")])
        .await
        .unwrap();
    let pairs = |links: Vec<edgeplane_api::MeasuredLink>| -> Vec<(String, String, String)> {
        let mut out: Vec<_> = links
            .into_iter()
            .map(|l| (l.from, l.to, l.latency.unwrap_or_default()))
            .collect();
        out.sort();
        out
    };
    assert_eq!(
        pairs(measured(&client).await),
        [
            ("a".into(), "b".into(), "3ms".into()),
            ("b".into(), "a".into(), "4ms".into())
        ]
    );
    // a's publisher drops its link (stale): only b's remains.
    edgeplane_runtime::measurement::publish(&ctx, "a", &[])
        .await
        .unwrap();
    assert_eq!(
        pairs(measured(&client).await),
        [("b".into(), "a".into(), "4ms".into())]
    );
    assert_ne!(field_manager("a"), field_manager("b"));
}
