//! Leader election: two replicas, only the leader writes; the standby takes over when the
//! leader stops (at once, the Lease is released) or crashes (once the Lease expires). And
//! the operational endpoints.

use std::time::Duration;

use edgeplane_api::Compliance;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;
use tower::ServiceExt;

use crate::harness::{self, Setup};
use edgeplane_runtime::Role;

async fn lease(client: &kube::Client) -> Lease {
    Api::<Lease>::namespaced(client.clone(), harness::LEASE_NAMESPACE)
        .get("edgeplane-controller")
        .await
        .unwrap()
}

fn holder(lease: &Lease) -> Option<String> {
    lease.spec.as_ref().and_then(|s| s.holder_identity.clone())
}

#[tokio::test(start_paused = true)]
async fn only_the_leader_writes_and_a_standby_takes_over() {
    let cluster = harness::metro().await;
    let client = cluster.client();
    let a = harness::start_controller(&cluster, Setup::new("replica-a").elected()).await;
    assert!(harness::eventually(Duration::from_secs(10), || async { a.is_leader() }).await);
    let b = harness::start_controller(&cluster, Setup::new("replica-b").elected()).await;
    assert!(
        harness::eventually(Duration::from_secs(60), || harness::all_evaluated(
            &client, "ar", 12
        ))
        .await
    );

    // A change while both run: only the leader acts on it.
    Api::<Pod>::namespaced(client.clone(), "ar")
        .delete("ar-render-2", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        harness::eventually(Duration::from_secs(60), || harness::all_evaluated(
            &client, "ar", 8
        ))
        .await
    );
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        b.writes.entries(),
        Vec::<String>::new(),
        "the follower wrote nothing, not even to the Lease"
    );
    assert_eq!(
        b.base.ctx.leadership.role(),
        Role::Follower {
            holder: Some("replica-a".into())
        }
    );
    assert!(
        b.base.ctx.readiness.is_ready(),
        "a standby with warm caches is ready"
    );
    let renewals = a
        .writes
        .entries()
        .iter()
        .filter(|w| w.contains("/leases/"))
        .count();
    assert!(renewals >= 60, "the leader renews every 2s: {renewals}");
    let l = lease(&client).await;
    assert_eq!(holder(&l).as_deref(), Some("replica-a"));
    assert_eq!(l.spec.as_ref().and_then(|s| s.lease_transitions), Some(0));
    assert_eq!(
        l.spec.as_ref().and_then(|s| s.lease_duration_seconds),
        Some(15)
    );

    // The leader stops: it releases the Lease, the standby takes over within one retry.
    a.stop().await;
    let stopped = tokio::time::Instant::now();
    assert!(harness::eventually(Duration::from_secs(15), || async { b.is_leader() }).await);
    assert!(
        stopped.elapsed() <= Duration::from_secs(3),
        "took {:?}",
        stopped.elapsed()
    );
    let l = lease(&client).await;
    assert_eq!(holder(&l).as_deref(), Some("replica-b"));
    assert_eq!(l.spec.as_ref().and_then(|s| s.lease_transitions), Some(1));

    // The new leader acts on changes.
    let degraded = harness::METRO_TOPOLOGY.replace(
        "{from: stadium, to: edge-1, latency: 1ms",
        "{from: stadium, to: edge-1, latency: 12ms",
    );
    cluster.load_yaml(&degraded).await.unwrap();
    assert!(
        harness::eventually(Duration::from_secs(5), || async {
            harness::binding_with(&client, "ar", "ar-stadium", "renderer", "ar-render-0")
                .await
                .and_then(|b| b.status)
                .is_some_and(|s| s.compliance == Compliance::Violation)
        })
        .await
    );

    // A third replica waits; the leader crashes without releasing: the standby takes over
    // once the Lease has not been renewed for its duration, not before.
    let c = harness::start_controller(&cluster, Setup::new("replica-c").elected()).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!c.is_leader());
    let c_writes = c.writes.count();
    b.crash();
    let crashed = tokio::time::Instant::now();
    assert!(harness::eventually(Duration::from_secs(30), || async { c.is_leader() }).await);
    let took = crashed.elapsed();
    assert!(
        took >= Duration::from_secs(12) && took <= Duration::from_secs(20),
        "took {took:?}"
    );
    assert_eq!(c_writes, 0, "the standby wrote nothing before taking over");
    assert_eq!(holder(&lease(&client).await).as_deref(), Some("replica-c"));
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn health_readiness_and_metrics_endpoints() {
    let cluster = harness::metro().await;
    let client = cluster.client();
    let a = harness::start_controller(&cluster, Setup::new("replica-a").elected()).await;
    assert!(
        harness::eventually(Duration::from_secs(60), || harness::all_evaluated(
            &client, "ar", 12
        ))
        .await
    );
    let ctx = &a.base.ctx;
    let router = edgeplane_runtime::http::router(ctx.metrics.clone(), ctx.readiness.clone());
    let get = |path: &'static str| {
        let router = router.clone();
        async move {
            let response = router
                .oneshot(
                    http::Request::get(path)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    let (status, body) = get("/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "[+]caches ok\n[+]leader-election ok\n")
    );
    let (status, body) = get("/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "edgeplane_leader{component=\"edgeplane-controller\"} 1",
        "# TYPE edgeplane_binding_evaluation_duration_seconds histogram",
        "edgeplane_compliance_changes_total{from=\"Pending\",to=\"Violation\"} 3",
    ] {
        assert!(body.contains(line), "{line} in\n{body}");
    }
    // Bindings by offer: three in Violation (one of them the stadium's), five Compliant.
    let bindings = |offer: Option<&str>, compliance: &str| -> f64 {
        body.lines()
            .filter(|l| l.starts_with("edgeplane_bindings{namespace=\"ar\",offer=\""))
            .filter(|l| offer.is_none_or(|o| l.contains(&format!("offer=\"{o}\""))))
            .filter(|l| l.contains(&format!("compliance=\"{compliance}\"}}")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(bindings(Some("ar-stadium"), "Violation"), 1.0, "{body}");
    assert_eq!(bindings(None, "Violation"), 3.0, "{body}");
    assert_eq!(bindings(None, "Compliant"), 5.0, "{body}");
    assert!(
        body.contains("edgeplane_bindings_past_grace{namespace=\"ar\",offer=\"ar-stadium\"} 0"),
        "within its grace\n{body}"
    );
    // The stadium's Violation has lasted a while on the virtual clock; the game state's
    // bindings are none in Violation.
    let longest = |offer: &str| -> Option<f64> {
        body.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "edgeplane_binding_violation_longest_seconds{{namespace=\"ar\",offer=\"{offer}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    assert!(longest("ar-stadium").is_some_and(|s| s > 0.0), "{body}");
    assert_eq!(longest("ar-game-state"), Some(0.0), "{body}");
    a.stop().await;
}

/// Two replicas given the same `--identity`: the second sees a Lease naming its identity
/// that it did not write, and follows until it expires, instead of renewing it as its own.
#[tokio::test(start_paused = true)]
async fn a_lease_with_our_name_written_by_another_process_is_not_taken() {
    let cluster = harness::metro().await;
    let client = cluster.client();
    let a = harness::start_controller(&cluster, Setup::new("same").elected()).await;
    assert!(harness::eventually(Duration::from_secs(10), || async { a.is_leader() }).await);
    let b = harness::start_controller(&cluster, Setup::new("same").elected()).await;
    assert!(
        harness::eventually(Duration::from_secs(10), || async {
            b.base.ctx.leadership.is_known()
        })
        .await
    );
    // Many retry periods (virtual time): a keeps leading, b never does and never writes.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(a.is_leader());
    assert!(!b.is_leader(), "two processes believed they held the Lease");
    assert_eq!(
        b.base.ctx.leadership.role(),
        Role::Follower {
            holder: Some("same".into())
        }
    );
    assert_eq!(b.writes.entries(), Vec::<String>::new());
    // a crashes: b takes the Lease once it has expired, as a new holder.
    a.crash();
    assert!(harness::eventually(Duration::from_secs(30), || async { b.is_leader() }).await);
    let l = lease(&client).await;
    assert_eq!(holder(&l).as_deref(), Some("same"));
    assert_eq!(l.spec.as_ref().and_then(|s| s.lease_transitions), Some(1));
    b.stop().await;
}
