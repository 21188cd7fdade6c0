//! What the descheduler does about one binding in Violation: mediate, evict, respect a
//! budget, wait out an outage or a flapping link, release a path.

use super::*;

#[tokio::test(start_paused = true)]
async fn mediate_activates_an_alternate_path_and_evicts_nothing() {
    let mut options = Options::new("Mediate");
    options.extra.push(catalogue(1));
    let env = Env::start(options).await;
    let (pod, _) = env.place_renderer().await;
    let name = pod.name_any();
    let uid = pod.uid();
    let degraded_at = env.degrade(&name).await;

    // Past the grace (30s), the network controller activates express-1 and the binding
    // comes back to Compliant (2ms), with the renderer where it was.
    env.assert_mitigated_by(&name, degraded_at, "express-1")
        .await;
    let topology: NetworkTopology = Api::all(env.client.clone()).get("default").await.unwrap();
    let activated = topology.status.unwrap().activated_paths;
    assert_eq!(activated.len(), 1);
    assert_eq!(activated[0].entry, "express-1");

    // Long after: still there, never evicted, not mitigated again.
    tokio::time::sleep(Duration::from_secs(180)).await;
    let (now_pod, node) = env.running().await.unwrap();
    assert_eq!((now_pod.uid(), node.as_str()), (uid, "edge-1-a"));
    assert_eq!(evictions(&env), 0.0);
    assert!(env.events("Evicted").await.is_empty());
    assert_eq!(env.events("Mitigated").await.len(), 1);
    assert_eq!(
        env.metric("edgeplane_descheduler_mitigations_total{outcome=\"accepted\"}"),
        1.0
    );
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn evict_moves_one_pod_when_the_catalogue_is_exhausted() {
    let mut options = Options::new("Evict");
    options.extra.push(catalogue(0));
    let env = Env::start(options).await;
    let (pod, _) = env.place_renderer().await;
    let name = pod.name_any();
    let degraded_at = env.degrade(&name).await;

    // Past the grace the network is asked and cannot help; past mitigationGrace (20s
    // more) the renderer is evicted, and its replacement is planned onto edge-2 (1.5ms).
    assert!(
        harness::eventually(Duration::from_secs(120), || async {
            match env.running().await {
                Some((p, node)) => {
                    p.name_any() != name
                        && node == "edge-2-a"
                        && env.compliance_of(&p.name_any()).await == Some(Compliance::Compliant)
                }
                None => false,
            }
        })
        .await,
        "{:#?}\n{:#?}",
        env.pods().await,
        env.binding_events().await
    );
    let failed = env.events("MitigationFailed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].1.contains("cannot mitigate"), "{}", failed[0].1);
    // The refusal is one mitigation, counted by its outcome, and timed as a call.
    assert_eq!(
        env.metric("edgeplane_descheduler_mitigations_total{outcome=\"refused\"}"),
        1.0
    );
    assert_eq!(
        env.metric(
            "edgeplane_network_controller_requests_total{method=\"mitigate\",outcome=\"ok\"}"
        ),
        1.0
    );
    let evicted = env.events("Evicted").await;
    // One on the pod, one on the binding.
    assert_eq!(evicted.len(), 2, "{evicted:?}");
    assert!(evicted.iter().any(|(object, note)| *object == name
        && note.contains("the planner expects the replacement on edge-2-a")));
    let evicted_at = {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(env.client.clone(), "ar");
        let events = api.list(&ListParams::default()).await.unwrap().items;
        events
            .iter()
            .find(|e| e.reason.as_deref() == Some("Evicted"))
            .and_then(|e| e.event_time.as_ref())
            .unwrap()
            .0
    };
    let waited = evicted_at.duration_since(degraded_at).as_secs();
    assert!(
        (50..=53).contains(&waited),
        "evicted {waited}s after the violation"
    );

    // Exactly one eviction, however long we wait.
    tokio::time::sleep(Duration::from_secs(180)).await;
    assert_eq!(evictions(&env), 1.0);
    assert_eq!(env.events("Evicted").await.len(), 2);
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_disruption_budget_blocks_the_eviction_and_says_why() {
    let mut options = Options::new("Evict");
    options.extra.push(catalogue(0));
    options.extra.push(
        r#"
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: ar-render, namespace: ar}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: ar-render}}
"#
        .into(),
    );
    let env = Env::start(options).await;
    let (pod, _) = env.place_renderer().await;
    let name = pod.name_any();
    let _ = env.degrade(&name).await;

    assert!(
        harness::eventually(Duration::from_secs(120), || async {
            !env.events("EvictionBlocked").await.is_empty()
        })
        .await,
        "{:#?}",
        env.binding_events().await
    );
    let blocked = env.events("EvictionBlocked").await;
    assert!(
        blocked[0]
            .1
            .contains("disruption budget ar-render needs 1 healthy pods"),
        "{}",
        blocked[0].1
    );
    // Retried every cycle, reported once, never forced.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let (still, node) = env.running().await.unwrap();
    assert_eq!((still.uid(), node.as_str()), (pod.uid(), "edge-1-a"));
    assert_eq!(env.events("EvictionBlocked").await.len(), 1);
    assert!(env.events("Evicted").await.is_empty());
    assert!(env.metric("edgeplane_descheduler_evictions_total{outcome=\"blocked\"}") > 10.0);
    assert_eq!(evictions(&env), 0.0);
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn nothing_is_done_while_the_provider_is_down() {
    let mut options = Options::new("Evict");
    options.extra.push(catalogue(1));
    // A port nothing listens on: the latency provider that registers below is down.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    options.rewrite = Some(Arc::new(move |_| url.clone()));
    let env = Env::start(options).await;
    let (pod, _) = env.place_renderer().await;
    let name = pod.name_any();
    // In Violation, then, well within the grace, the provider registers and is down.
    let _ = env.degrade(&name).await;
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "latency-probe", "namespace": "ar",
                     "labels": {"constraint.edgeplane.io/provider-latency": "enabled"}},
        "spec": {"ports": [{"name": "grpc", "port": 50051}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(env.client.clone(), "ar")
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    assert!(
        harness::eventually(Duration::from_secs(10), || async {
            env.compliance_of(&name).await == Some(Compliance::Error)
        })
        .await,
        "{:#?}",
        env.binding_of(&name).await
    );
    // Far past grace and mitigationGrace: no mitigation, no eviction.
    tokio::time::sleep(Duration::from_secs(300)).await;
    let binding = env.binding_of(&name).await.unwrap();
    let status = binding.status.unwrap();
    assert_eq!(status.compliance, Compliance::Error);
    assert!(status.last_mitigated_timestamp.is_none());
    let (still, _) = env.running().await.unwrap();
    assert_eq!(still.uid(), pod.uid());
    for reason in [
        "Mitigated",
        "MitigationFailed",
        "Evicted",
        "EvictionSkipped",
    ] {
        assert!(env.events(reason).await.is_empty(), "{reason}");
    }
    assert_eq!(env.metric("edgeplane_descheduler_mitigations_total{"), 0.0);
    // The descheduler was running all along.
    assert!(env.metric("edgeplane_descheduler_cycles_total") > 300.0);
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_flapping_link_shorter_than_the_grace_changes_nothing() {
    let mut options = Options::new("Evict");
    options.extra.push(catalogue(1));
    let env = Env::start(options).await;
    let (pod, _) = env.place_renderer().await;
    let name = pod.name_any();
    let healthy = env::topology_of(WORLD);
    for _ in 0..5 {
        let _ = env.degrade(&name).await;
        // 20s in Violation, less than the 30s grace.
        tokio::time::sleep(Duration::from_secs(20)).await;
        env.cluster.load_yaml(&healthy).await.unwrap();
        assert!(
            harness::eventually(Duration::from_secs(10), || async {
                env.compliance_of(&name).await == Some(Compliance::Compliant)
            })
            .await
        );
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    let (still, node) = env.running().await.unwrap();
    assert_eq!((still.uid(), node.as_str()), (pod.uid(), "edge-1-a"));
    let binding = env.binding_of(&name).await.unwrap();
    assert!(binding.status.unwrap().last_mitigated_timestamp.is_none());
    for reason in [
        "Mitigated",
        "MitigationFailed",
        "Evicted",
        "EvictionSkipped",
    ] {
        assert!(env.events(reason).await.is_empty(), "{reason}");
    }
    assert!(env.metric("edgeplane_descheduler_cycles_total") > 100.0);
    env.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_path_allocated_for_a_pod_is_released_when_the_pod_goes() {
    let mut options = Options::new("Ignore");
    options.extra.push(catalogue(1));
    // The link is degraded from the start and edge-2 and metro-1 take no pods: no node
    // reaches the stadium within 5ms (edge-1 is 7.5ms away), so the scheduler asks the
    // network.
    options.extra.push(degraded_topology());
    let env = Env::start(options).await;
    for node in ["edge-2-a", "metro-1-a"] {
        env.cordon(node, true).await;
    }
    env.cluster.load_yaml(RENDERER).await.unwrap();
    // Discover, Allocate, annotation and finalizer; the activation replans the pod onto
    // edge-1, now 2ms from the stadium.
    assert!(
        harness::eventually(Duration::from_secs(60), || async {
            match env.running().await {
                Some((p, node)) => {
                    node == "edge-1-a"
                        && env.compliance_of(&p.name_any()).await == Some(Compliance::Compliant)
                }
                None => false,
            }
        })
        .await,
        "{:#?}",
        env.pods().await
    );
    let (pod, _) = env.running().await.unwrap();
    let name = pod.name_any();
    let allocation = pod
        .annotations()
        .get("network.edgeplane.io/allocation")
        .cloned()
        .expect("the allocation annotation");
    assert!(
        pod.finalizers()
            .iter()
            .any(|f| f == "network.edgeplane.io/path-release")
    );
    assert_eq!(env.events("PathAllocated").await.len(), 1);
    let catalogue: Api<NetworkPathCatalogue> = Api::all(env.client.clone());
    let held = catalogue
        .get("default")
        .await
        .unwrap()
        .status
        .unwrap()
        .allocations;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].id, allocation);

    // Deleted (as an eviction does): released, the finalizer goes, and so does the pod.
    Api::<Pod>::namespaced(env.client.clone(), "ar")
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        harness::eventually(Duration::from_secs(30), || async {
            !env.pods().await.iter().any(|p| p.name_any() == name)
        })
        .await,
        "{:#?}",
        env.pods().await
    );
    let released = env.events("PathReleased").await;
    assert!(
        released
            .iter()
            .any(|(object, note)| *object == name && note.contains(&allocation)),
        "{released:?}"
    );
    let held = catalogue
        .get("default")
        .await
        .unwrap()
        .status
        .unwrap()
        .allocations;
    assert!(held.iter().all(|a| a.id != allocation), "{held:?}");
    env.stop().await;
}
