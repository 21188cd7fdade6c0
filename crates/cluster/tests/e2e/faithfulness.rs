//! Controller code written for a real cluster, unchanged: a `kube::runtime::Controller`
//! that keeps a ConfigMap per Deployment (owned, so garbage-collected with it), publishing
//! events with kube's `Recorder` that `kubectl describe` would list; and server-side apply
//! semantics a controller relies on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Pod};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::subresources::DEPLOYMENT;
use crate::support::*;

// ---- the controller, as it would be written for a real cluster -------------------------

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("kube: {0}")]
    Kube(#[from] kube::Error),
    #[error("deployment without namespace")]
    NoNamespace,
}

struct Context {
    client: Client,
    recorder: Recorder,
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = d.namespace().ok_or(Error::NoNamespace)?;
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let name = format!("{}-info", d.name_any());
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            owner_references: d.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "replicas".to_string(),
            replicas.to_string(),
        )])),
        ..Default::default()
    };
    let mut value =
        serde_json::to_value(&cm).map_err(|e| Error::Kube(kube::Error::SerdeError(e)))?;
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("ConfigMap");
    cms.patch(
        &name,
        &PatchParams::apply("info-controller").force(),
        &Patch::Apply(value),
    )
    .await?;
    ctx.recorder
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "InfoWritten".into(),
                note: Some(format!("wrote {name} with {replicas} replicas")),
                action: "Reconcile".into(),
                secondary: None,
            },
            &d.object_ref(&()),
        )
        .await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn error_policy(_d: Arc<Deployment>, _e: &Error, _ctx: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(5))
}

async fn run_controller(client: Client) {
    let deploys: Api<Deployment> = Api::all(client.clone());
    let cms: Api<ConfigMap> = Api::all(client.clone());
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "info-controller".into(),
                instance: None,
            },
        ),
    });
    Controller::new(deploys, watcher::Config::default())
        .owns(cms, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

// ---- the test -----------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn an_unmodified_kube_runtime_controller_runs_on_the_embedded_cluster() {
    let c = cluster(2).await;
    let client = c.client();
    let task = tokio::spawn(run_controller(client.clone()));
    c.load_yaml(DEPLOYMENT).await.expect("deployment");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let data = |n: &'static str| {
        let cms = cms.clone();
        async move {
            cms.get("web-info")
                .await
                .ok()
                .and_then(|c| c.data)
                .and_then(|d| d.get("replicas").cloned())
                .as_deref()
                == Some(n)
        }
    };
    assert!(
        eventually(Duration::from_secs(30), || data("2")).await,
        "ConfigMap written"
    );

    // Its event is visible the way kubectl describe asks for it (core/v1, by involvedObject).
    let deploys: Api<Deployment> = Api::default_namespaced(client.clone());
    let uid = deploys.get("web").await.expect("get").uid().expect("uid");
    let events: Api<CoreEvent> = Api::default_namespaced(client.clone());
    let selector = format!(
        "involvedObject.name=web,involvedObject.namespace=default,involvedObject.kind=Deployment,involvedObject.uid={uid}"
    );
    assert!(
        eventually(Duration::from_secs(30), || async {
            events
                .list(&ListParams::default().fields(&selector))
                .await
                .expect("events")
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("InfoWritten")
                        && e.message.as_deref() == Some("wrote web-info with 2 replicas")
                        && e.reporting_component.as_deref() == Some("info-controller")
                })
        })
        .await
    );

    // A change to the Deployment reaches the controller through its watch.
    deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scale");
    assert!(
        eventually(Duration::from_secs(30), || data("3")).await,
        "ConfigMap updated"
    );

    // The owned ConfigMap goes with the Deployment (garbage collection).
    deploys
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(
        eventually(Duration::from_secs(30), || async {
            cms.get("web-info").await.is_err()
        })
        .await
    );
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn server_side_apply_drops_fields_its_manager_stops_applying() {
    let c = cluster(0).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client());
    let apply = |data: serde_json::Value| {
        Patch::Apply(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": data}),
        )
    };
    let pp = PatchParams::apply("mgr-a");
    cms.patch("a", &pp, &apply(json!({"x": "1", "y": "2"})))
        .await
        .expect("apply creates");
    // Another manager sets a field of its own.
    cms.patch("a", &PatchParams::apply("mgr-b"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"z": "3"}})))
        .await
        .expect("second manager");
    // mgr-a stops applying y: y goes, z (mgr-b's) stays.
    let out = cms
        .patch("a", &pp, &apply(json!({"x": "1"})))
        .await
        .expect("reapply");
    let data = out.data.expect("data");
    assert_eq!(data.keys().cloned().collect::<Vec<_>>(), ["x", "z"]);
    let managers: Vec<(String, String)> = out
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert!(managers.contains(&("mgr-a".into(), "Apply".into())));
    assert!(managers.contains(&("mgr-b".into(), "Apply".into())));
}

#[tokio::test(start_paused = true)]
async fn strategic_merge_patches_of_pods() {
    let c = cluster(0).await;
    let client = c.client();
    let mut p = pod("p");
    p.metadata.finalizers = Some(vec!["example.com/a".into()]);
    create_pod(&client, "default", p).await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let patch = json!({
        "metadata": {"labels": {"extra": "yes"}, "finalizers": ["example.com/b"]},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.28"}]}
    });
    let out = pods
        .patch("p", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("patch");
    assert_eq!(
        out.labels().get("app").map(String::as_str),
        Some("web"),
        "labels merged"
    );
    assert_eq!(
        out.finalizers(),
        ["example.com/a", "example.com/b"],
        "finalizers merged as a set"
    );
    let spec = out.spec.expect("spec");
    assert_eq!(spec.containers.len(), 1, "containers merged by name");
    assert_eq!(spec.containers[0].image.as_deref(), Some("nginx:1.28"));
    assert_eq!(spec.containers[0].name, "c");
}
