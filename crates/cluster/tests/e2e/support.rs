//! Helpers shared by the end-to-end tests.

use std::time::Duration;

use edgeplane_cluster::{ClusterConfig, EmbeddedCluster};
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

pub async fn cluster(nodes: usize) -> EmbeddedCluster {
    EmbeddedCluster::start(
        ClusterConfig::default()
            .with_nodes("node", nodes)
            .start_time("2025-06-01T00:00:00Z".parse().expect("time")),
    )
    .await
}

pub fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}
    }))
    .expect("pod")
}

pub async fn create_pod(client: &Client, ns: &str, pod: Pod) -> Pod {
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

/// Polls `check` on virtual time until it holds (at most `limit`).
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
