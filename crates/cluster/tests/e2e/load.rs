//! Load: a reflector lists and watches 1,000 nodes and 10,000 pods. The full size is
//! `#[ignore]`d (run it in release: `cargo test --release -p edgeplane-cluster --test e2e
//! -- --ignored --nocapture load`); a tenth of it runs with the suite.

use std::time::{Duration, Instant};

use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, NodeSpec};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

async fn run(nodes: usize, pods: usize) {
    let c = EmbeddedCluster::start(ClusterConfig::default()).await;
    let load_start = Instant::now();
    {
        let mut st = c.api().lock();
        let now = st.now();
        let node_def = st.registry.find("", "v1", "nodes").expect("nodes");
        for i in 0..nodes {
            let obj = NodeSpec::new(format!("node-{i:04}"))
                .cpu("16")
                .memory("64Gi")
                .to_object(i, &now);
            st.create(&node_def, None, obj, &Default::default())
                .expect("node");
        }
    }
    let pod_def = c
        .api()
        .lock()
        .registry
        .find("", "v1", "pods")
        .expect("pods");
    for chunk in (0..pods).collect::<Vec<_>>().chunks(500) {
        // Each chunk under one lock, then let the controllers run.
        let create_chunk = |chunk: &[usize]| {
            let mut st = c.api().lock();
            for &i in chunk {
                let obj = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("pod-{i:05}"), "labels": {"app": format!("app-{}", i % 50)}},
                    "spec": {
                        "nodeName": format!("node-{:04}", i % nodes),
                        "containers": [{"name": "app", "image": "registry.example/app:1.0",
                                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]
                    }
                });
                st.create(&pod_def, Some("default"), obj, &Default::default())
                    .expect("pod");
            }
        };
        create_chunk(chunk);
        tokio::task::yield_now().await;
    }
    // Let the kubelets start everything (virtual time).
    let settled = crate::support::eventually(Duration::from_secs(600), || async {
        let st = c.api().lock();
        st.store
            .range("pods", None, None)
            .filter(|p| p.json().contains("\"phase\":\"Running\""))
            .count()
            == pods
    })
    .await;
    assert!(settled, "all pods running");
    let rss_loaded = peak_rss_mb();
    let loaded = load_start.elapsed();

    // The measurement: reflectors list (paged) and then watch.
    let client = c.client();
    let start = Instant::now();
    let (pod_reader, pod_writer) = reflector::store::<Pod>();
    let (node_reader, node_writer) = reflector::store::<Node>();
    let pod_stream = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .reflect(pod_writer)
        .applied_objects();
    let node_stream = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .reflect(node_writer)
        .applied_objects();
    let t1 = tokio::spawn(async move {
        futures::pin_mut!(pod_stream);
        while pod_stream.next().await.is_some() {}
    });
    let t2 = tokio::spawn(async move {
        futures::pin_mut!(node_stream);
        while node_stream.next().await.is_some() {}
    });
    pod_reader.wait_until_ready().await.expect("pods listed");
    node_reader.wait_until_ready().await.expect("nodes listed");
    let listed = start.elapsed();
    assert_eq!(pod_reader.state().len(), pods);
    assert_eq!(node_reader.state().len(), nodes);

    // And the watch delivers changes: relabel 100 pods.
    let api: Api<Pod> = Api::default_namespaced(client.clone());
    for i in 0..100 {
        api.patch(
            &format!("pod-{i:05}"),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"seen": "yes"}}})),
        )
        .await
        .expect("patch");
    }
    let seen = crate::support::eventually(Duration::from_secs(60), || async {
        pod_reader
            .state()
            .iter()
            .filter(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key("seen"))
            })
            .count()
            == 100
    })
    .await;
    assert!(seen, "watch events reached the reflector");
    let total = start.elapsed();
    println!(
        "load: {nodes} nodes + {pods} pods loaded and running in {:.2?} (peak RSS {:.0} MB); reflector list {:.2?}, list + 100 watched updates {:.2?}; peak RSS {:.0} MB",
        loaded,
        rss_loaded.unwrap_or(f64::NAN),
        listed,
        total,
        peak_rss_mb().unwrap_or(f64::NAN)
    );
    t1.abort();
    t2.abort();
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn reflector_over_100_nodes_and_1000_pods() {
    run(100, 1_000).await;
}

#[tokio::test(start_paused = true)]
#[ignore = "1,000 nodes and 10,000 pods: run in release with --ignored --nocapture"]
async fn load_1000_nodes_10000_pods() {
    run(1_000, 10_000).await;
}
