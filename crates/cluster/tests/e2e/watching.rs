//! Watches: raw `Api::watch` semantics and kube-runtime's watcher and reflector, including
//! resuming from a version, bookmarks, and re-listing after 410 Gone.

use std::time::Duration;

use edgeplane_cluster::{ClusterConfig, EmbeddedCluster};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "x"}}}))
        .expect("configmap")
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> WatchEvent<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(120), stream.next())
        .await
        .expect("an event within two minutes")
        .expect("stream open")
        .expect("event ok")
}

#[tokio::test(start_paused = true)]
async fn watch_resumes_from_a_version_and_sends_bookmarks() {
    let c = EmbeddedCluster::start(ClusterConfig::default()).await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    let a = api
        .create(&PostParams::default(), &cm("a"))
        .await
        .expect("create");
    let rv = a.resource_version().expect("rv");
    api.create(&PostParams::default(), &cm("b"))
        .await
        .expect("create");
    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete");

    // From `a`'s version: b added, then a deleted; nothing before.
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Added(o) => assert_eq!(o.name_any(), "b"),
        other => panic!("expected ADDED b, got {other:?}"),
    }
    let deleted_rv = match next_event(&mut stream).await {
        WatchEvent::Deleted(o) => {
            assert_eq!(o.name_any(), "a");
            o.resource_version().expect("rv")
        }
        other => panic!("expected DELETED a, got {other:?}"),
    };
    // Live changes, filtered by the watch's selector.
    api.create(&PostParams::default(), &cm("c"))
        .await
        .expect("create");
    match next_event(&mut stream).await {
        WatchEvent::Added(o) => assert_eq!(o.name_any(), "c"),
        other => panic!("expected ADDED c, got {other:?}"),
    }
    // Quiet for a while: a bookmark at a version no older than the last event.
    match next_event(&mut stream).await {
        WatchEvent::Bookmark(b) => {
            let bm: u64 = b.metadata.resource_version.parse().expect("numeric rv");
            assert!(bm >= deleted_rv.parse::<u64>().expect("numeric"));
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn watching_a_compacted_version_is_410_gone() {
    let c = EmbeddedCluster::start(ClusterConfig {
        watch_history: 3,
        ..Default::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    let first = api
        .create(&PostParams::default(), &cm("first"))
        .await
        .expect("create");
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("n{i}")))
            .await
            .expect("create");
    }
    let mut stream = api
        .watch(
            &WatchParams::default(),
            &first.resource_version().expect("rv"),
        )
        .await
        .expect("watch starts (the error comes as an event, like the watch cache)")
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn reflector_relists_after_a_gap() {
    let c = EmbeddedCluster::start(ClusterConfig {
        watch_history: 20,
        ..Default::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("early-{i}")))
            .await
            .expect("create");
    }
    let (reader, writer) = reflector::store::<ConfigMap>();
    let (init_tx, mut init_rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = watcher(api.clone(), watcher::Config::default().labels("app=x"))
        .inspect_ok(move |e| {
            if matches!(e, watcher::Event::Init) {
                let _ = init_tx.send(());
            }
        })
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    reader.wait_until_ready().await.expect("initial list");
    init_rx.recv().await.expect("first list");
    assert_eq!(reader.state().len(), 5);

    // Writes in one burst, without yielding, overrun the history: the watch falls behind,
    // gets 410 Gone, and the watcher lists again.
    {
        let mut st = c.api().lock();
        let def = st
            .registry
            .find("", "v1", "configmaps")
            .expect("configmaps");
        for i in 0..50 {
            let obj = serde_json::to_value(cm(&format!("burst-{i}"))).expect("json");
            st.create(&def, Some("default"), obj, &Default::default())
                .expect("create");
        }
    }
    tokio::time::timeout(Duration::from_secs(60), init_rx.recv())
        .await
        .expect("a re-list within a minute")
        .expect("re-list");
    let ok = crate::support::eventually(Duration::from_secs(60), || async {
        reader.state().len() == 55
    })
    .await;
    assert!(ok, "reflector has {} objects", reader.state().len());
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn watcher_sees_updates_and_deletes_and_streaming_lists_work() {
    let c = EmbeddedCluster::start(ClusterConfig::default()).await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    api.create(&PostParams::default(), &cm("a"))
        .await
        .expect("create");
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = watcher(api.clone(), watcher::Config::default().streaming_lists())
        .reflect(writer)
        .touched_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    reader.wait_until_ready().await.expect("ready");
    assert_eq!(reader.state().len(), 1);
    api.create(&PostParams::default(), &cm("b"))
        .await
        .expect("create");
    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    let ok = crate::support::eventually(Duration::from_secs(30), || async {
        let names: Vec<String> = reader.state().iter().map(|o| o.name_any()).collect();
        names == ["b"]
    })
    .await;
    assert!(ok);
    // The list and the store agree.
    let listed = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(listed.items.len(), reader.state().len());
    task.abort();
}
