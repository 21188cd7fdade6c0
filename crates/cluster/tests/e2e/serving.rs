//! The cluster over real HTTP: a kube client configured with a URL, as kubectl would be.

use std::time::Duration;

use edgeplane_cluster::{ClusterConfig, EmbeddedCluster};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};

#[tokio::test]
async fn kube_client_over_http() {
    let c = EmbeddedCluster::start(ClusterConfig::default().with_nodes("n", 2)).await;
    let addr = c
        .serve("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    let config = kube::Config::new(format!("http://{addr}").parse().expect("url"));
    let client = kube::Client::try_from(config).expect("client");
    let nodes: Api<Node> = Api::all(client.clone());
    let names: Vec<String> = nodes
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert_eq!(names, ["n-0", "n-1"]);
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let rv = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    pods.create(&PostParams::default(), &crate::support::pod("web"))
        .await
        .expect("create");
    let mut running = false;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
        if let WatchEvent::Modified(p) = ev.expect("event")
            && p.status.and_then(|s| s.phase).as_deref() == Some("Running")
        {
            running = true;
            break;
        }
    }
    assert!(running, "the pod's progress arrives over the HTTP watch");
    // Malformed input over HTTP is a Status too.
    let err = pods.get("Not_A_Name!").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
    c.shutdown().await;
}
