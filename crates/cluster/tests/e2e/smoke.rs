use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::ListParams;

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn pods_get_scheduled_and_run() {
    let c = cluster(2).await;
    let client = c.client();
    let ns: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = ns
        .list(&ListParams::default())
        .await
        .expect("list namespaces")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");
    create_pod(&client, "default", pod("web")).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let running = eventually(Duration::from_secs(30), || async {
        pods.get("web")
            .await
            .ok()
            .and_then(|p| p.status)
            .and_then(|s| s.phase)
            .as_deref()
            == Some("Running")
    })
    .await;
    let p = pods.get("web").await.expect("get");
    assert!(running, "{p:?}");
    assert!(p.spec.and_then(|s| s.node_name).is_some());
    c.shutdown().await;
}
