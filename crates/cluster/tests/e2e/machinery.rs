//! The simulated machinery: workload controllers, the default-scheduler stand-in, the
//! kubelet's start-up delay on virtual time, node failure and recovery, garbage
//! collection.

use std::time::Duration;

use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, NodeSpec};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::subresources::DEPLOYMENT;
use crate::support::*;

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn pods_with(api: &Api<Pod>, selector: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(selector))
        .await
        .expect("list")
        .items
}

#[tokio::test(start_paused = true)]
async fn kubelet_start_delay_runs_on_virtual_time() {
    let c = EmbeddedCluster::start(
        ClusterConfig::default()
            .with_nodes("n", 1)
            .pod_start_delay(Duration::from_secs(3600)),
    )
    .await;
    let start = c.clock().now();
    create_pod(&c.client(), "default", pod("slow")).await;
    let pods: Api<Pod> = Api::default_namespaced(c.client());
    tokio::time::sleep(Duration::from_secs(3500)).await;
    let p = pods.get("slow").await.expect("get");
    assert_eq!(phase(&p), "Pending");
    let waiting = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs[0].state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone());
    assert_eq!(waiting.as_deref(), Some("ContainerCreating"));
    tokio::time::sleep(Duration::from_secs(200)).await;
    let p = pods.get("slow").await.expect("get");
    assert_eq!(phase(&p), "Running");
    // Timestamps written into the object follow the virtual clock.
    let started = p.status.and_then(|s| s.start_time).expect("startTime").0;
    assert_eq!(
        started,
        jiff::Timestamp::from_second(start.as_second()).expect("ts")
    );
    assert!(c.clock().now().as_second() - start.as_second() >= 3700);
}

#[tokio::test(start_paused = true)]
async fn deployments_keep_their_replicas_and_are_garbage_collected() {
    let c = cluster(3).await;
    c.load_yaml(DEPLOYMENT).await.expect("load");
    let client = c.client();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let running = |n: usize| {
        let pods = pods.clone();
        async move {
            eventually(Duration::from_secs(60), || async {
                pods_with(&pods, "app=web")
                    .await
                    .iter()
                    .filter(|p| phase(p) == "Running" && p.metadata.deletion_timestamp.is_none())
                    .count()
                    == n
            })
            .await
        }
    };
    assert!(running(2).await);
    // Owner chain: pod -> ReplicaSet -> Deployment.
    let rss: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let rs = rss
        .list(&ListParams::default())
        .await
        .expect("rs")
        .items
        .remove(0);
    let rs_owner = rs.owner_references()[0].clone();
    assert_eq!(
        (
            rs_owner.kind.as_str(),
            rs_owner.name.as_str(),
            rs_owner.controller
        ),
        ("Deployment", "web", Some(true))
    );
    let p = pods_with(&pods, "app=web").await.remove(0);
    assert_eq!(p.owner_references()[0].uid, rs.uid().expect("uid"));
    assert!(p.labels().contains_key("pod-template-hash"));

    // A deleted pod is replaced.
    pods.delete(&p.name_any(), &DeleteParams::default())
        .await
        .expect("delete");
    assert!(
        eventually(Duration::from_secs(60), || async {
            pods.get(&p.name_any()).await.is_err()
        })
        .await
    );
    assert!(running(2).await);

    // Deployment status follows.
    let deploys: Api<Deployment> = Api::default_namespaced(client.clone());
    assert!(
        eventually(Duration::from_secs(30), || async {
            deploys
                .get("web")
                .await
                .ok()
                .and_then(|d| d.status)
                .is_some_and(|s| s.available_replicas == Some(2) && s.ready_replicas == Some(2))
        })
        .await
    );

    // A template change rolls out a new ReplicaSet; the old one scales to zero.
    c.load_yaml(&DEPLOYMENT.replace("nginx:1.27", "nginx:1.28"))
        .await
        .expect("update");
    assert!(
        eventually(Duration::from_secs(120), || async {
            let ps = pods_with(&pods, "app=web").await;
            let live: Vec<&Pod> = ps
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none() && phase(p) == "Running")
                .collect();
            live.len() == 2
                && live.iter().all(|p| {
                    p.spec
                        .as_ref()
                        .is_some_and(|s| s.containers[0].image.as_deref() == Some("nginx:1.28"))
                })
        })
        .await
    );
    assert_eq!(
        rss.list(&ListParams::default())
            .await
            .expect("rs")
            .items
            .len(),
        2
    );

    // Deleting the Deployment collects its ReplicaSets and pods.
    deploys
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete deployment");
    assert!(
        eventually(Duration::from_secs(60), || async {
            rss.list(&ListParams::default())
                .await
                .expect("rs")
                .items
                .is_empty()
                && pods_with(&pods, "app=web").await.is_empty()
        })
        .await
    );
}

#[tokio::test(start_paused = true)]
async fn statefulsets_create_in_order_and_keep_a_lost_pod_until_it_is_gone() {
    let c = cluster(3).await;
    c.load_yaml(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 3
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "postgres:16"}]}
"#,
    )
    .await
    .expect("load");
    let client = c.client();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    // OrderedReady: db-1 does not exist before db-0 runs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let names: Vec<String> = pods_with(&pods, "app=db")
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert_eq!(names, ["db-0"]);
    assert!(
        eventually(Duration::from_secs(60), || async {
            let ps = pods_with(&pods, "app=db").await;
            ps.len() == 3 && ps.iter().all(|p| phase(p) == "Running")
        })
        .await
    );
    let sts: Api<StatefulSet> = Api::default_namespaced(client.clone());
    assert!(
        eventually(Duration::from_secs(10), || async {
            sts.get("db")
                .await
                .ok()
                .and_then(|s| s.status)
                .is_some_and(|s| s.ready_replicas == Some(3))
        })
        .await
    );

    // Fail db-1's node. As on a real cluster: nothing shows for the node-monitor grace
    // period (50 s); then the node is NotReady and tainted, and db-1 not Ready.
    let db1 = pods.get("db-1").await.expect("db-1");
    let node = db1.spec.and_then(|s| s.node_name).expect("scheduled");
    let old_uid = db1.metadata.uid.expect("uid");
    let failed_at = tokio::time::Instant::now();
    c.fail_node(&node).await.expect("fail node");
    let nodes: Api<Node> = Api::all(client.clone());
    let ready_of = |n: Node| {
        n.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status)
            .unwrap_or_default()
    };
    tokio::time::sleep(Duration::from_secs(49)).await;
    assert_eq!(ready_of(nodes.get(&node).await.expect("node")), "True");
    assert!(
        eventually(Duration::from_secs(2), || async {
            nodes.get(&node).await.ok().map(ready_of).as_deref() == Some("Unknown")
        })
        .await
    );
    let n = nodes.get(&node).await.expect("node");
    let taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
    for effect in ["NoSchedule", "NoExecute"] {
        assert!(
            taints
                .iter()
                .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == effect),
            "{taints:?}"
        );
    }
    let p = pods.get("db-1").await.expect("db-1");
    assert_eq!(phase(&p), "Running");
    assert!(
        !is_ready(&p),
        "the node controller marks its pods not Ready"
    );
    // The API server gave db-1 300 s of toleration for `unreachable`: the taint manager
    // deletes it then. Its kubelet is gone, so it stays Terminating, and the StatefulSet
    // does not replace a pod whose object still exists.
    assert!(
        eventually(Duration::from_secs(400), || async {
            pods.get("db-1")
                .await
                .ok()
                .is_some_and(|p| p.metadata.deletion_timestamp.is_some())
        })
        .await
    );
    let evicted_after = failed_at.elapsed();
    assert!(
        (Duration::from_secs(349)..Duration::from_secs(352)).contains(&evicted_after),
        "evicted {evicted_after:?} after the failure, expected 50 s + 300 s"
    );
    let p = pods.get("db-1").await.expect("db-1");
    assert!(
        p.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "DisruptionTarget"
                && c.reason.as_deref() == Some("DeletionByTaintManager"))
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    let still = pods.get("db-1").await.expect("db-1 still there");
    assert_eq!(still.metadata.uid.as_deref(), Some(old_uid.as_str()));
    // Events tell what happened.
    let events: Api<Event> = Api::default_namespaced(client.clone());
    let reasons = |name: String| {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
                .await
                .expect("events")
                .items
                .into_iter()
                .filter_map(|e| e.reason)
                .collect::<Vec<_>>()
        }
    };
    assert!(
        reasons(node.clone())
            .await
            .contains(&"NodeNotReady".to_string())
    );
    let pod_reasons = reasons("db-1".into()).await;
    for reason in ["NodeNotReady", "TaintManagerEviction"] {
        assert!(pod_reasons.iter().any(|r| r == reason), "{pod_reasons:?}");
    }

    // The node comes back: its kubelet finishes the deletion, and the StatefulSet
    // recreates db-1 under the same name.
    c.recover_node(&node).await.expect("recover");
    let n = nodes.get(&node).await.expect("node");
    assert!(n.spec.and_then(|s| s.taints).unwrap_or_default().is_empty());
    assert!(
        eventually(Duration::from_secs(60), || async {
            pods.get("db-1").await.ok().is_some_and(|p| {
                p.metadata.uid.as_deref() != Some(old_uid.as_str()) && phase(&p) == "Running"
            })
        })
        .await
    );

    // Scale down removes the highest ordinal.
    c.load_yaml(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "postgres:16"}]}
"#,
    )
    .await
    .expect("scale down");
    assert!(
        eventually(Duration::from_secs(60), || async {
            let names: Vec<String> = pods_with(&pods, "app=db")
                .await
                .iter()
                .map(|p| p.name_any())
                .collect();
            names == ["db-0", "db-1"]
        })
        .await
    );
}

/// A Deployment's pods on a failed node are replaced when the taint manager deletes them:
/// after 50 s + 300 s with the API server's default tolerations, after 50 s + 30 s for an
/// application that tolerates `unreachable` for 30 s (fast failover). A node that comes
/// back before the grace period is never noticed.
#[tokio::test(start_paused = true)]
async fn replicas_on_a_failed_node_are_replaced_when_their_tolerations_run_out() {
    let c = cluster(3).await;
    let deployment = |name: &str, tolerations: &str| {
        format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      nodeSelector: {{kubernetes.io/hostname: node-0}}
      tolerations: {tolerations}
      containers: [{{name: c, image: "nginx:1.27"}}]
"#
        )
    };
    c.load_yaml(&deployment("slow", "[]"))
        .await
        .expect("load slow");
    c.load_yaml(&deployment(
        "fast",
        "[{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 30}]",
    ))
    .await
    .expect("load fast");
    let pods: Api<Pod> = Api::default_namespaced(c.client());
    assert!(
        eventually(Duration::from_secs(30), || async {
            let ps = pods_with(&pods, "app in (slow, fast)").await;
            ps.len() == 2 && ps.iter().all(|p| phase(p) == "Running")
        })
        .await
    );
    // The API server added the default tolerations the pods did not bring.
    let slow = pods_with(&pods, "app=slow").await.remove(0);
    let tolerations = slow.spec.and_then(|s| s.tolerations).unwrap_or_default();
    let seconds = |key: &str| {
        tolerations
            .iter()
            .find(|t| t.key.as_deref() == Some(key))
            .and_then(|t| t.toleration_seconds)
    };
    assert_eq!(seconds("node.kubernetes.io/unreachable"), Some(300));
    assert_eq!(seconds("node.kubernetes.io/not-ready"), Some(300));

    // A blip shorter than the grace period goes unnoticed.
    c.fail_node("node-0").await.expect("fail");
    tokio::time::sleep(Duration::from_secs(30)).await;
    c.recover_node("node-0").await.expect("recover");
    tokio::time::sleep(Duration::from_secs(60)).await;
    let ps = pods_with(&pods, "app in (slow, fast)").await;
    assert!(
        ps.iter()
            .all(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none())
    );

    // A real failure. The replacement has nowhere to go (the node selector), so the
    // ReplicaSet's new pod stays Pending: what counts is when it is created.
    let failed_at = tokio::time::Instant::now();
    c.fail_node("node-0").await.expect("fail");
    let replaced = |app: &'static str| {
        let pods = pods.clone();
        async move {
            eventually(Duration::from_secs(600), || async {
                pods_with(&pods, &format!("app={app}")).await.len() == 2
            })
            .await;
            failed_at.elapsed()
        }
    };
    let fast = replaced("fast").await;
    assert!(
        (Duration::from_secs(80)..Duration::from_secs(82)).contains(&fast),
        "fast failover after {fast:?}, expected 50 s + 30 s"
    );
    let slow = replaced("slow").await;
    assert!(
        (Duration::from_secs(350)..Duration::from_secs(352)).contains(&slow),
        "default failover after {slow:?}, expected 50 s + 300 s"
    );
    // The evicted pods stay Terminating while their kubelet is away.
    let terminating: Vec<Pod> = pods_with(&pods, "app in (slow, fast)")
        .await
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .collect();
    assert_eq!(terminating.len(), 2);

    // The node is deleted for good: the pod garbage collector removes what was bound to
    // it (after its 40 s quarantine, on its 20 s period).
    let nodes: Api<Node> = Api::all(c.client());
    nodes
        .delete("node-0", &DeleteParams::default())
        .await
        .expect("delete node");
    assert!(
        eventually(Duration::from_secs(90), || async {
            pods_with(&pods, "app in (slow, fast)")
                .await
                .iter()
                .all(|p| p.metadata.deletion_timestamp.is_none())
        })
        .await
    );
}

/// A NoExecute taint a user adds (`kubectl taint nodes node-0 maintenance=now:NoExecute`
/// carries no `timeAdded`): pods that do not tolerate it go at once, a pod that tolerates
/// it for 60 s goes 60 s after the taint manager saw it, a DaemonSet-style toleration
/// without `tolerationSeconds` keeps its pod.
#[tokio::test(start_paused = true)]
async fn a_users_no_execute_taint_evicts_by_the_pods_tolerations() {
    let c = cluster(2).await;
    let pod = |name: &str, toleration: &str| {
        format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: node-0
  tolerations: {toleration}
  containers: [{{name: c, image: "nginx:1.27"}}]
"#
        )
    };
    c.load_yaml(&pod("plain", "[]")).await.expect("plain");
    c.load_yaml(&pod(
        "patient",
        "[{key: maintenance, operator: Exists, effect: NoExecute, tolerationSeconds: 60}]",
    ))
    .await
    .expect("patient");
    c.load_yaml(&pod(
        "forever",
        "[{key: maintenance, operator: Exists, effect: NoExecute}]",
    ))
    .await
    .expect("forever");
    let pods: Api<Pod> = Api::default_namespaced(c.client());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let nodes: Api<Node> = Api::all(c.client());
    let tainted_at = tokio::time::Instant::now();
    nodes
        .patch(
            "node-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": [{"key": "maintenance", "value": "now", "effect": "NoExecute"}]}})),
        )
        .await
        .expect("taint");
    let deleting = |name: &'static str| {
        let pods = pods.clone();
        async move {
            pods.get_opt(name)
                .await
                .expect("get")
                .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
        }
    };
    assert!(eventually(Duration::from_secs(2), || deleting("plain")).await);
    assert!(!deleting("patient").await);
    assert!(eventually(Duration::from_secs(70), || deleting("patient")).await);
    let after = tainted_at.elapsed();
    assert!(
        (Duration::from_secs(59)..Duration::from_secs(62)).contains(&after),
        "evicted after {after:?}, expected 60 s"
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(!deleting("forever").await);
}

#[tokio::test(start_paused = true)]
async fn scheduler_honours_selectors_affinity_resources_and_taints() {
    let c = EmbeddedCluster::start(
        ClusterConfig::default()
            .with_node(NodeSpec::new("small").cpu("1").label("zone", "edge"))
            .with_node(NodeSpec::new("big").cpu("8").label("zone", "core"))
            .with_node(NodeSpec::new("gpu").cpu("8").label("zone", "core").taint(
                "dedicated",
                "gpu",
                "NoSchedule",
            )),
    )
    .await;
    let client = c.client();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let node_of = |name: &'static str| {
        let pods = pods.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let node = pods
                    .get(name)
                    .await
                    .ok()
                    .and_then(|p| p.spec)
                    .and_then(|s| s.node_name);
                if node.is_some() || tokio::time::Instant::now() >= deadline {
                    return node;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let with = |name: &str, spec: serde_json::Value| -> Pod {
        let mut v = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                           "spec": {"containers": [{"name": "c", "image": "i"}]}});
        if let (Some(s), Some(extra)) = (v["spec"].as_object_mut(), spec.as_object()) {
            for (k, x) in extra {
                s.insert(k.clone(), x.clone());
            }
        }
        serde_json::from_value(v).expect("pod")
    };
    pods.create(
        &PostParams::default(),
        &with("sel", json!({"nodeSelector": {"zone": "edge"}})),
    )
    .await
    .expect("create");
    assert_eq!(node_of("sel").await.as_deref(), Some("small"));

    let by_name = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu"]}]}]}}},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]});
    pods.create(&PostParams::default(), &with("aff", by_name))
        .await
        .expect("create");
    assert_eq!(node_of("aff").await.as_deref(), Some("gpu"));

    // Tainted node without toleration, big request: only "big" fits.
    let heavy = json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "6"}}}]});
    pods.create(&PostParams::default(), &with("heavy", heavy.clone()))
        .await
        .expect("create");
    assert_eq!(node_of("heavy").await.as_deref(), Some("big"));

    // No room left: Unschedulable with the reasons, then scheduled once a node is added.
    pods.create(&PostParams::default(), &with("more", heavy))
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let p = pods.get("more").await.expect("get");
    assert!(p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none());
    let cond = p
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .expect("condition");
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    let msg = cond.message.unwrap_or_default();
    assert!(
        msg.starts_with("0/3 nodes are available:")
            && msg.contains("Insufficient cpu")
            && msg.contains("untolerated taint"),
        "{msg}"
    );
    c.add_node(NodeSpec::new("new").cpu("16"))
        .await
        .expect("add node");
    assert_eq!(node_of("more").await.as_deref(), Some("new"));

    // A pod for another scheduler is left alone.
    pods.create(
        &PostParams::default(),
        &with("mine", json!({"schedulerName": "edgeplane"})),
    )
    .await
    .expect("create");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        pods.get("mine")
            .await
            .expect("get")
            .spec
            .and_then(|s| s.node_name)
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn finalizers_hold_deletion_and_namespaces_terminate() {
    let c = cluster(1).await;
    c.load_yaml(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, namespace: team, finalizers: [example.com/hold]}\n",
    )
    .await
    .expect("load");
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(c.client(), "team");
    cms.delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    let held = cms.get("held").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    // New finalizers cannot be added while deleting.
    let err = cms
        .patch(
            "held",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"finalizers": ["example.com/hold", "x.io/more"]}}),
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );
    // The namespace goes Terminating and waits for its content.
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.client());
    nss.delete("team", &DeleteParams::default())
        .await
        .expect("delete ns");
    let ns = nss.get("team").await.expect("terminating");
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    let err = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "new"}})).expect("cm"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err:?}"
    );
    // Removing the finalizer completes both deletions.
    cms.patch(
        "held",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove finalizer");
    assert!(cms.get("held").await.is_err());
    assert!(nss.get("team").await.is_err());
    // System namespaces cannot be deleted.
    let err = nss
        .delete("default", &DeleteParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err:?}"
    );
}
