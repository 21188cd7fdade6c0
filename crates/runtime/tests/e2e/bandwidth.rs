//! Bandwidth as a reserved resource on a cluster: the binding controller's view carries
//! what placed bindings reserve, so a link shared beyond its capacity puts its bindings in
//! Limit, then Violation, with the link named.

use std::time::Duration;

use edgeplane_api::Compliance;

use crate::harness::{self, Setup};

/// Three video pods on edge-1 stream 1Gbps each (at least 400Mbps) to the users at the
/// stadium over edge-1's link.
const WORLD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: tv}
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites: [{name: stadium, transit: false}]
  links:
  - {from: stadium, to: edge-1, latency: 1ms, bandwidth: 3Gbps}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: video, namespace: tv}
spec:
  rules:
  - {name: bandwidth, request: 1Gbps, limit: 400Mbps}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: video, namespace: tv}
spec:
  targets:
  - {name: app, kind: Pod, labelSelector: {matchLabels: {app: video}}}
  - {name: users, kind: Site, sites: [stadium]}
  policies: [video]
  period: 10s
  grace: 1m
  violationPolicy: Ignore
"#;

fn pod(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: tv, labels: {{app: video}}}}\nspec: {{nodeName: e1, containers: [{{name: c, image: video:1}}]}}\n"
    )
}

async fn compliance_of_all(client: &kube::Client) -> Vec<(Compliance, String)> {
    let mut out: Vec<(Compliance, String)> = harness::bindings(client, "tv")
        .await
        .into_iter()
        .filter_map(|b| b.status)
        .map(|s| (s.compliance, s.first_reason.unwrap_or_default()))
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

#[tokio::test(start_paused = true)]
async fn a_link_shared_beyond_its_capacity_puts_its_bindings_in_limit_then_violation() {
    let cluster = harness::cluster(vec![harness::site_node("e1", "edge-1")]).await;
    let client = cluster.client();
    cluster.load_yaml(WORLD).await.unwrap();
    for name in ["v1", "v2", "v3"] {
        cluster.load_yaml(&pod(name)).await.unwrap();
    }
    let _controller = harness::start_controller(&cluster, Setup::new("replica-a")).await;
    let all = |wanted: Compliance| {
        let client = client.clone();
        async move {
            let now = compliance_of_all(&client).await;
            now.len() == 3 && now.iter().all(|(c, _)| *c == wanted)
        }
    };
    // 3 x 1Gbps over 3Gbps: every request is met.
    assert!(
        harness::eventually(Duration::from_secs(60), || all(Compliance::Compliant)).await,
        "{:?}",
        compliance_of_all(&client).await
    );

    // The link drops to 2Gbps: each gets a third, 666.7Mbps, between limit and request.
    let narrower = WORLD.replace("bandwidth: 3Gbps", "bandwidth: 2Gbps");
    cluster.load_yaml(&narrower).await.unwrap();
    assert!(
        harness::eventually(Duration::from_secs(30), || all(Compliance::Limit)).await,
        "{:?}",
        compliance_of_all(&client).await
    );
    let reasons = compliance_of_all(&client).await;
    assert!(
        reasons[0].1.contains(
            "666.6667Mbps between app (e1) and users (stadium) (its fair share of the link"
        ),
        "{reasons:?}"
    );

    // 1Gbps: a third is 333.3Mbps, below the 400Mbps limit.
    let narrowest = WORLD.replace("bandwidth: 3Gbps", "bandwidth: 1Gbps");
    cluster.load_yaml(&narrowest).await.unwrap();
    assert!(
        harness::eventually(Duration::from_secs(30), || all(Compliance::Violation)).await,
        "{:?}",
        compliance_of_all(&client).await
    );

    // The topology's status shows the link over-subscribed: each reserves its 400Mbps
    // limit, 1.2Gbps in all, nothing available.
    let topologies = kube::Api::<edgeplane_api::NetworkTopology>::all(client.clone());
    let link = || {
        let topologies = topologies.clone();
        async move {
            topologies
                .get("default")
                .await
                .ok()
                .and_then(|t| t.status)
                .and_then(|s| {
                    s.bandwidth
                        .into_iter()
                        .find(|l| l.from == "edge-1" && l.to == "stadium")
                })
        }
    };
    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            link().await.is_some_and(|l| l.reserved == "1.2Gbps")
        })
        .await,
        "{:?}",
        link().await
    );
    let shown = link().await.unwrap();
    assert_eq!(shown.capacity.as_deref(), Some("1Gbps"));
    assert_eq!(shown.available.as_deref(), Some("0bps"));
    assert_eq!(shown.demands, 3);
    assert!(shown.oversubscribed);

    // One stream ends: the two left share 1Gbps, 500Mbps each, back within the limit.
    kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), "tv")
        .delete("v3", &Default::default())
        .await
        .unwrap();
    let two_in_limit = || {
        let client = client.clone();
        async move {
            let now = compliance_of_all(&client).await;
            now.len() == 2 && now.iter().all(|(c, _)| *c == Compliance::Limit)
        }
    };
    assert!(
        harness::eventually(Duration::from_secs(60), two_in_limit).await,
        "{:?}",
        compliance_of_all(&client).await
    );
}
