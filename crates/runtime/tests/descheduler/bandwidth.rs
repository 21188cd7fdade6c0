//! A link whose capacity drops below what the bindings over it reserve: the binding falls
//! into Violation with the link named, and the descheduler mediates: the network
//! controller activates a catalogue path that reserves the binding's bandwidth, the
//! reservation moves onto it, and nothing is evicted.

use super::*;
use edgeplane_api::LinkBandwidth;
use env::topology_of;

/// The renderer streams 1Gbps (at least 800Mbps) to the stadium, as well as reaching it
/// within 5ms; the stadium <-> edge-1 link carries `{capacity}`.
fn world(capacity: &str) -> String {
    WORLD
        .replace(
            "  - {name: latency, request: 2ms, limit: 5ms}",
            "  - {name: latency, request: 2ms, limit: 5ms}\n  - {name: bandwidth, request: 1Gbps, limit: 800Mbps}",
        )
        .replace(
            "{from: stadium, to: edge-1, latency: 1ms}",
            &format!("{{from: stadium, to: edge-1, latency: 1ms, bandwidth: {capacity}}}"),
        )
}

/// An express path from edge-1 to the stadium, faster than the link (so traffic takes it
/// once active), reserving bandwidth out of `{capacity}`.
fn express(capacity: &str) -> String {
    format!(
        r#"
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkPathCatalogue
metadata: {{name: default}}
spec:
  entries:
  - {{name: express-1, from: edge-1, to: stadium, latency: 900us, bandwidth: 10Gbps, capacity: {{bandwidth: {capacity}}}}}
"#
    )
}

/// The topology's status line for one direction of a link.
async fn link(env: &Env, from: &str, to: &str) -> Option<LinkBandwidth> {
    Api::<NetworkTopology>::all(env.client.clone())
        .get("default")
        .await
        .ok()?
        .status?
        .bandwidth
        .into_iter()
        .find(|l| l.from == from && l.to == to)
}

/// The renderer placed on edge-1 over a 2Gbps link (express-1 can reserve
/// `express_capacity`), then the link dropped to 500Mbps, below its 800Mbps limit: its
/// binding in Violation, the link named. Returns the env, the pod and the violation's start.
async fn degraded(express_capacity: &str) -> (Env, Pod, jiff::Timestamp) {
    let mut options = Options::new("Mediate");
    options.world = world("2Gbps");
    options.extra.push(express(express_capacity));
    let env = Env::start(options).await;
    let (pod, _) = env.place_renderer().await;
    let name = pod.name_any();

    // Placed: the binding reserves its 1Gbps request on edge-1 -> stadium.
    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            link(&env, "edge-1", "stadium")
                .await
                .is_some_and(|l| l.reserved == "1Gbps")
        })
        .await,
        "{:?}",
        link(&env, "edge-1", "stadium").await
    );
    let before = link(&env, "edge-1", "stadium").await.unwrap();
    assert_eq!(before.capacity.as_deref(), Some("2Gbps"));
    assert_eq!(before.available.as_deref(), Some("1Gbps"));
    assert!(!before.oversubscribed);

    env.cluster
        .load_yaml(&topology_of(&world("500Mbps")))
        .await
        .unwrap();
    assert!(
        harness::eventually(Duration::from_secs(10), || async {
            env.compliance_of(&name).await == Some(Compliance::Violation)
        })
        .await,
        "{:#?}",
        env.binding_of(&name).await
    );
    let status = env.binding_of(&name).await.unwrap().status.unwrap();
    let reason = status.first_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("500Mbps between renderer (edge-1-a) and users (stadium)"),
        "{reason}"
    );
    let degraded = link(&env, "edge-1", "stadium").await.unwrap();
    assert!(degraded.oversubscribed, "{degraded:?}");
    let since = status.violating_since.unwrap().0;
    (env, pod, since)
}

#[tokio::test(start_paused = true)]
async fn an_oversubscribed_link_is_mediated_by_a_path_that_reserves_the_bandwidth() {
    let (env, pod, degraded_at) = degraded("5Gbps").await;
    let name = pod.name_any();

    // Past the grace (30s) the descheduler asks the network controller, which activates
    // express-1 and reserves the binding's 1Gbps on it; traffic takes the faster path and
    // the binding is Compliant again, the renderer where it was.
    env.assert_mitigated_by(&name, degraded_at, "express-1")
        .await;

    // The catalogue holds the allocation's 1Gbps; the topology shows the reservation on the
    // activated path, and the degraded link no longer carries it.
    let held = Api::<NetworkPathCatalogue>::all(env.client.clone())
        .get("default")
        .await
        .unwrap()
        .status
        .unwrap()
        .allocations;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].entry, "express-1");
    assert_eq!(held[0].bandwidth.as_deref(), Some("1Gbps"));
    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            link(&env, "edge-1", "stadium")
                .await
                .is_some_and(|l| l.capacity.as_deref() == Some("10Gbps") && l.reserved == "1Gbps")
        })
        .await,
        "{:?}",
        Api::<NetworkTopology>::all(env.client.clone())
            .get("default")
            .await
            .unwrap()
            .status
    );

    // Long after: still on edge-1, never evicted, mitigated once.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let (now_pod, node) = env.running().await.unwrap();
    assert_eq!((now_pod.uid(), node.as_str()), (pod.uid(), "edge-1-a"));
    assert_eq!(evictions(&env), 0.0);
    assert!(env.events("Evicted").await.is_empty());
    assert_eq!(env.events("Mitigated").await.len(), 1);
    assert_eq!(env.compliance_of(&name).await, Some(Compliance::Compliant));
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_path_without_room_for_the_bandwidth_is_not_activated() {
    // express-1 could carry only 500Mbps more: not the renderer's 1Gbps.
    let (env, pod, _) = degraded("500Mbps").await;
    let name = pod.name_any();
    // Past the grace, the mitigation fails and says why; nothing is activated or held.
    assert!(
        harness::eventually(Duration::from_secs(60), || async {
            !env.events("MitigationFailed").await.is_empty()
        })
        .await,
        "{:#?}",
        env.binding_events().await
    );
    let failed = env.events("MitigationFailed").await;
    assert!(failed[0].1.contains("express-1"), "{failed:?}");
    assert!(env.events("Mitigated").await.is_empty());
    let topology = Api::<NetworkTopology>::all(env.client.clone())
        .get("default")
        .await
        .unwrap();
    assert!(topology.status.unwrap().activated_paths.is_empty());
    assert_eq!(env.compliance_of(&name).await, Some(Compliance::Violation));
    assert_eq!(evictions(&env), 0.0);
    env.stop().await;
}
