//! CRUD, conflicts, selectors, pagination and custom resources through kube's `Api`.

use edgeplane_api::{ConstraintPolicyBinding, ConstraintPolicyBindingSpec, TargetKind, TargetRef};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::support::*;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"}
    }))
    .expect("configmap")
}

#[tokio::test(start_paused = true)]
async fn create_get_replace_delete_with_conflicts() {
    let c = cluster(0).await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    let created = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .expect("create");
    assert!(!created.uid().unwrap_or_default().is_empty());
    assert_eq!(
        created
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string()),
        Some("2025-06-01T00:00:00Z".to_string()),
        "creationTimestamp comes from the virtual clock"
    );
    // Creating it again: 409 AlreadyExists.
    let err = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );

    // Replace with the current resourceVersion succeeds and bumps it.
    let mut current = api.get("a").await.expect("get");
    current.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = api
        .replace("a", &PostParams::default(), &current)
        .await
        .expect("replace");
    assert_ne!(replaced.resource_version(), current.resource_version());
    // Replace with the stale one: 409 Conflict, object unchanged.
    current.data = Some([("k".to_string(), "stale".to_string())].into());
    let err = api
        .replace("a", &PostParams::default(), &current)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );
    assert_eq!(
        api.get("a").await.expect("get").data.expect("data")["k"],
        "w"
    );

    // generateName
    let mut gen_cm = cm("", json!({}));
    gen_cm.metadata.name = None;
    gen_cm.metadata.generate_name = Some("gen-".into());
    let g = api
        .create(&PostParams::default(), &gen_cm)
        .await
        .expect("generateName");
    assert!(
        g.name_any().starts_with("gen-") && g.name_any().len() == 9,
        "{}",
        g.name_any()
    );

    // Delete, then 404.
    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    let err = api.get("a").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.reason == "NotFound"),
        "{err:?}"
    );
    let err = api.delete("a", &DeleteParams::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn creating_in_a_missing_namespace_is_404() {
    let c = cluster(0).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), "nowhere");
    let err = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.message.contains("namespaces \"nowhere\" not found")),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn label_and_field_selectors() {
    let c = cluster(2).await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        api.create(
            &PostParams::default(),
            &cm(name, json!({"tier": tier, "app": "x"})),
        )
        .await
        .expect("create");
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items.iter().map(|o| o.name_any()).collect::<Vec<_>>()
    };
    let front = api
        .list(&ListParams::default().labels("tier=front"))
        .await
        .expect("list");
    assert_eq!(names(front), ["a", "c"]);
    let not_front = api
        .list(&ListParams::default().labels("app=x,tier!=front"))
        .await
        .expect("list");
    assert_eq!(names(not_front), ["b"]);
    let set = api
        .list(&ListParams::default().labels("tier in (back, middle)"))
        .await
        .expect("list");
    assert_eq!(names(set), ["b"]);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=c"))
        .await
        .expect("list");
    assert_eq!(names(by_name), ["c"]);

    // spec.nodeName on pods (the kubelet's and describe node's query).
    create_pod(&c.client(), "default", pod("p1")).await;
    let pods: Api<Pod> = Api::default_namespaced(c.client());
    assert!(
        eventually(std::time::Duration::from_secs(10), || async {
            pods.get("p1")
                .await
                .ok()
                .and_then(|p| p.spec)
                .and_then(|s| s.node_name)
                .is_some()
        })
        .await
    );
    let node = pods
        .get("p1")
        .await
        .expect("get")
        .spec
        .and_then(|s| s.node_name)
        .expect("node");
    let on_node = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .expect("list");
    assert_eq!(on_node.items.len(), 1);
    let elsewhere = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName!={node},status.phase!=Failed")))
        .await
        .expect("list");
    assert!(elsewhere.items.is_empty());

    // Malformed selectors and unsupported fields: 400.
    let err = api
        .list(&ListParams::default().labels("tier in front"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 400),
        "{err:?}"
    );
    let err = api
        .list(&ListParams::default().fields("data.k=v"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 400 && s.message.contains("field label not supported")),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn pagination_with_limit_and_continue() {
    let c = cluster(0).await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    for i in 0..7 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i}"), json!({})))
            .await
            .expect("create");
    }
    let first = api
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 3);
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let token = first.metadata.continue_.clone().expect("continue");
    // Changes between pages do not break the continuation.
    api.create(&PostParams::default(), &cm("zz-late", json!({})))
        .await
        .expect("create");
    let second = api
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(second.items.len(), 3);
    assert_eq!(
        second.metadata.resource_version, first.metadata.resource_version,
        "pages share the list's version"
    );
    let token = second.metadata.continue_.clone().expect("continue");
    let third = api
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .expect("page 3");
    let mut all: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .chain(&third.items)
        .map(|o| o.name_any())
        .collect();
    assert!(third.metadata.continue_.as_deref().unwrap_or("").is_empty());
    all.sort();
    assert_eq!(all.len(), 8);
    // A garbled token: 400.
    let err = api
        .list(&ListParams::default().limit(3).continue_token("garbage!"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 400),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn expired_continue_tokens_are_410() {
    let c = edgeplane_cluster::EmbeddedCluster::start(edgeplane_cluster::ClusterConfig {
        watch_history: 5,
        ..Default::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    for i in 0..4 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i}"), json!({})))
            .await
            .expect("create");
    }
    let first = api
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    let token = first.metadata.continue_.clone().expect("continue");
    for i in 0..10 {
        api.create(&PostParams::default(), &cm(&format!("more-{i}"), json!({})))
            .await
            .expect("create");
    }
    let err = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 410 && s.reason == "Expired"),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn custom_resources_are_served_once_their_crd_exists() {
    let c = cluster(0).await;
    let client = c.client();
    let cpbs: Api<ConstraintPolicyBinding> = Api::default_namespaced(client.clone());
    let binding = ConstraintPolicyBinding::new(
        "b1",
        ConstraintPolicyBindingSpec {
            offer: "ar-latency".into(),
            targets: [(
                "client".to_string(),
                TargetRef {
                    cluster: None,
                    namespace: Some("default".into()),
                    api_version: "v1".into(),
                    kind: TargetKind::Pod,
                    name: "web".into(),
                },
            )]
            .into(),
        },
    );
    // No CRD yet: the resource does not exist.
    let err = cpbs
        .create(&PostParams::default(), &binding)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );

    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    for crd in edgeplane_api::crdgen::all() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("create crd");
    }
    let established = crds
        .get("constraintpolicybindings.constraint.edgeplane.io")
        .await
        .expect("crd");
    let conds = established
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let created = cpbs
        .create(&PostParams::default(), &binding)
        .await
        .expect("create cr");
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(cpbs.get("b1").await.expect("get").spec.offer, "ar-latency");

    // Schema validation: a bad offer name is rejected with 422 naming the field.
    let mut bad = binding.clone();
    bad.metadata.name = Some("b2".into());
    bad.spec.offer = "Not_Valid".into();
    let err = cpbs.create(&PostParams::default(), &bad).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.message.contains("spec.offer")),
        "{err:?}"
    );

    // Merge patches work on custom resources; strategic merge does not (415).
    let patched = cpbs
        .patch(
            "b1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(patched.labels().get("x").map(String::as_str), Some("y"));
    let err = cpbs
        .patch(
            "b1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"x": "z"}}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 415),
        "{err:?}"
    );

    // Deleting the CRD removes its objects and stops serving the resource.
    crds.delete(
        "constraintpolicybindings.constraint.edgeplane.io",
        &DeleteParams::default(),
    )
    .await
    .expect("delete crd");
    let err = cpbs.get("b1").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
}
