//! `edgeplane agent run` end to end, every party a separate process: a `cluster serve`
//! with two nodes in two sites whose agent pods the simulated kubelet gives loopback IPs
//! (the nodes' `spec.podCIDR` is in 127.0.0.0/8), and one `agent run` per node listening
//! on its pod's IP. The agents find each other from the Nodes and pods, probe, publish
//! their site's link into the `default` NetworkTopology's `status.measured`, and serve
//! per-peer metrics; when one agent dies, the other's link to its site goes away (never
//! a zero latency). Every wait polls for a condition with a deadline.

#![allow(clippy::unwrap_used)] // tests unwrap what they built

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::Value;

const WORLD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: edgeplane-system}
---
apiVersion: v1
kind: Node
metadata: {name: edge-a, labels: {edgeplane.io/site: site-a}}
spec: {podCIDR: 127.0.0.0/24}
---
apiVersion: v1
kind: Node
metadata: {name: edge-b, labels: {edgeplane.io/site: site-b}}
spec: {podCIDR: 127.0.1.0/24}
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  siteLabel: edgeplane.io/site
  links:
  - {from: site-a, to: site-b, latency: 2ms}
---
apiVersion: v1
kind: Pod
metadata:
  name: agent-a
  namespace: edgeplane-system
  labels: {app.kubernetes.io/component: agent}
spec: {nodeName: edge-a, containers: [{name: agent, image: edgeplane:test}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: agent-b
  namespace: edgeplane-system
  labels: {app.kubernetes.io/component: agent}
spec: {nodeName: edge-b, containers: [{name: agent, image: edgeplane:test}]}
"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Kills the process when the test ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeplane-agent-run-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `cluster serve` with no simulated nodes of its own, its kubeconfig in `dir`.
fn serve(dir: &Path) -> (Process, PathBuf) {
    let kubeconfig = dir.join("cluster.kubeconfig");
    let child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args([
            "cluster",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--nodes",
            "0",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let mut process = Process(child);
    let mut line = String::new();
    if let Some(stdout) = process.0.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    assert!(
        line.starts_with("embedded cluster serving on http://"),
        "{line:?}"
    );
    (process, kubeconfig)
}

/// `agent run` for `node`, its log in `dir/NODE.log`.
fn agent(
    dir: &Path,
    kubeconfig: &Path,
    node: &str,
    listen: SocketAddr,
    metrics: SocketAddr,
) -> Process {
    let log = std::fs::File::create(dir.join(format!("{node}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(["agent", "run", "--node-name", node, "--kubeconfig"])
        .arg(kubeconfig)
        .args(["--listen", &listen.to_string()])
        .args(["--metrics-addr", &metrics.to_string()])
        .args(["--namespace", "edgeplane-system"])
        .args(["--interval", "100ms", "--stale-after", "2s"])
        .args(["--publish-interval", "2s", "--bandwidth-duty-cycle", "0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    Process(child)
}

fn log(dir: &Path, node: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{node}.log"))).unwrap_or_default()
}

async fn client(kubeconfig: &Path) -> Client {
    let config = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn api(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let r = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &r),
        None => Api::all_with(client.clone(), &r),
    }
}

/// Server-side apply of each document, as the test's own field manager.
async fn apply(client: &Client, yaml: &str) {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).unwrap();
    for doc in docs {
        let name = doc["metadata"]["name"].as_str().unwrap();
        api(
            client,
            doc["apiVersion"].as_str().unwrap(),
            doc["kind"].as_str().unwrap(),
            doc["metadata"]["namespace"].as_str(),
        )
        .patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&doc),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {name}: {e}"));
    }
}

async fn get(
    client: &Client,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
    name: &str,
) -> Result<Value, String> {
    api(client, api_version, kind, ns)
        .get(name)
        .await
        .map(|o| serde_json::to_value(o).unwrap())
        .map_err(|e| format!("{kind} {name}: {e}"))
}

/// Polls `check` until it gives `Ok`, or panics after `seconds` with what it last saw.
async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() > deadline => {
                panic!("{what}: not within {seconds}s; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The IP of a running, ready agent pod.
async fn pod_ip(client: &Client, name: &str) -> Result<IpAddr, String> {
    let pod = get(client, "v1", "Pod", Some("edgeplane-system"), name).await?;
    let status = &pod["status"];
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    match (status["phase"].as_str(), ready, status["podIP"].as_str()) {
        (Some("Running"), true, Some(ip)) => ip.parse().map_err(|e| format!("{ip}: {e}")),
        _ => Err(status.to_string()),
    }
}

/// The `default` topology's `status.measured` entries from `from` to `to`.
async fn measured(client: &Client, from: &str, to: &str) -> Result<(Vec<Value>, Value), String> {
    let topology = get(
        client,
        "network.edgeplane.io/v1alpha1",
        "NetworkTopology",
        None,
        "default",
    )
    .await?;
    let links = topology["status"]["measured"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["from"] == from && l["to"] == to)
        .cloned()
        .collect();
    Ok((links, topology))
}

fn latency(link: &Value) -> Duration {
    let text = link["latency"]
        .as_str()
        .unwrap_or_else(|| panic!("no latency: {link}"));
    edgeplane_core::values::parse_duration_field(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// A published link must never say zero latency, and on loopback it is well under 5 ms.
fn check_link(link: &Value) {
    let l = latency(link);
    assert!(l > Duration::ZERO && l < Duration::from_millis(5), "{link}");
    assert!(link["time"].is_string(), "{link}");
}

/// `GET /metrics` of an agent.
fn scrape(addr: SocketAddr) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut body = String::new();
    stream
        .read_to_string(&mut body)
        .map_err(|e| e.to_string())?;
    Ok(body)
}

/// The metric lines naming `metric` with `destination="PEER"`.
fn series<'a>(text: &'a str, metric: &str, peer: &str) -> Vec<&'a str> {
    let destination = format!("destination=\"{peer}\"");
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(metric) && l.contains(&destination))
        .collect()
}

fn free_tcp_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A UDP port free on both addresses, or why the addresses cannot be used.
fn free_udp_port(a: IpAddr, b: IpAddr) -> Result<u16, String> {
    for _ in 0..20 {
        let first = UdpSocket::bind((a, 0)).map_err(|e| format!("binding {a}: {e}"))?;
        let port = first.local_addr().map_err(|e| e.to_string())?.port();
        match UdpSocket::bind((b, port)) {
            Ok(_) => return Ok(port),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(format!("binding {b}: {e}")),
        }
    }
    Err("no UDP port free on both addresses".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agent_processes_publish_their_sites_links_and_drop_a_dead_peers_site() {
    let dir = scratch();
    let (_cluster, kubeconfig) = serve(&dir);
    let client = client(&kubeconfig).await;
    apply(&client, WORLD).await;
    let ip_a = eventually(60, "agent-a running", || pod_ip(&client, "agent-a")).await;
    let ip_b = eventually(60, "agent-b running", || pod_ip(&client, "agent-b")).await;
    assert!(
        ip_a.is_loopback() && ip_b.is_loopback() && ip_a != ip_b,
        "{ip_a} {ip_b}"
    );
    let port = match free_udp_port(ip_a, ip_b) {
        Ok(port) => port,
        Err(why) => {
            eprintln!("skipped: loopback addresses {ip_a} and {ip_b} are not usable here ({why})");
            return;
        }
    };
    let (metrics_a, metrics_b) = (free_tcp_port(), free_tcp_port());
    let _agent_a = agent(
        &dir,
        &kubeconfig,
        "edge-a",
        SocketAddr::new(ip_a, port),
        metrics_a,
    );
    let mut agent_b = Some(agent(
        &dir,
        &kubeconfig,
        "edge-b",
        SocketAddr::new(ip_b, port),
        metrics_b,
    ));
    let logs = || {
        format!(
            "\nedge-a:\n{}\nedge-b:\n{}",
            log(&dir, "edge-a"),
            log(&dir, "edge-b")
        )
    };

    // Each site's publisher (its only agent) publishes its link to the other site.
    let (a_to_b, topology) = eventually(60, "both measured links", || async {
        let (ab, topology) = measured(&client, "site-a", "site-b").await?;
        let (ba, _) = measured(&client, "site-b", "site-a").await?;
        match (ab.as_slice(), ba.as_slice()) {
            ([ab], [ba]) => Ok(((ab.clone(), ba.clone()), topology)),
            _ => Err(format!("{}{}", topology["status"], logs())),
        }
    })
    .await;
    check_link(&a_to_b.0);
    check_link(&a_to_b.1);
    // Each entry is owned by its site's field manager.
    let managers: Vec<&str> = topology["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    for site in ["site-a", "site-b"] {
        let manager = format!("edgeplane-agent-{site}");
        assert!(
            managers.contains(&manager.as_str()),
            "{manager} not in {managers:?}"
        );
    }

    // Per-peer series on the agent's /metrics.
    eventually(30, "per-peer metrics of edge-a", || async {
        let text = scrape(metrics_a)?;
        let rtt = series(&text, "agent_rtt_seconds", "edge-b");
        let stale = series(&text, "agent_peer_stale", "edge-b");
        if rtt.len() >= 3 && stale.iter().any(|l| l.ends_with(" 0")) {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;

    // edge-b's agent dies: after the stale timeout edge-a's link to site-b goes away,
    // and no entry seen meanwhile says zero latency.
    drop(agent_b.take());
    eventually(60, "site-a's link to site-b removed", || async {
        let (ab, topology) = measured(&client, "site-a", "site-b").await?;
        for link in &ab {
            check_link(link);
        }
        if ab.is_empty() {
            Ok(())
        } else {
            Err(format!("{}{}", topology["status"], logs()))
        }
    })
    .await;
    eventually(30, "edge-b stale in edge-a's metrics", || async {
        let text = scrape(metrics_a)?;
        if series(&text, "agent_peer_stale", "edge-b")
            .iter()
            .any(|l| l.ends_with(" 1"))
        {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;
    // The dead publisher's own entry is its site's, not edge-a's to remove.
    let (ba, topology) = measured(&client, "site-b", "site-a").await.unwrap();
    assert_eq!(ba.len(), 1, "{}", topology["status"]);
    let _ = std::fs::remove_dir_all(&dir);
}
