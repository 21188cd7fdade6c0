//! The client against real servers on loopback: edgeplane's own server with the built-in
//! providers, and misbehaving providers (refusing connections, too slow, failing,
//! answering nonsense). No sleeps: the slow provider never answers, and the client's
//! timeout is what ends the call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{Compliance, ConstraintPolicyRule, ConstraintPolicySpec, TargetRef};
use edgeplane_core::evaluate::ClusterView;
use edgeplane_core::manifests::{decode, parse_documents};
use edgeplane_core::snapshot::Snapshot;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use crate::proto::rule_provider_server::{RuleProvider, RuleProviderServer};
use crate::{
    BuiltinProvider, ClientOptions, CostRequest, GrpcProvider, PolicyInput, Provider, Providers,
    proto,
};

const WORLD: &str = r#"
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites: [{name: stadium}]
  links:
  - {from: stadium, to: edge-1, latency: 2ms, jitter: 500us, bandwidth: 1Gbps}
  - {from: edge-1, to: metro, latency: 3ms}
---
{apiVersion: v1, kind: Node, metadata: {name: e1, labels: {topology.kubernetes.io/zone: edge-1}}, status: {allocatable: {cpu: "16", memory: 64Gi}}}
---
{apiVersion: v1, kind: Node, metadata: {name: m1, labels: {topology.kubernetes.io/zone: metro}}, status: {allocatable: {cpu: "4"}}}
---
{apiVersion: v1, kind: Pod, metadata: {name: r0, namespace: ar}, spec: {nodeName: e1, containers: [{name: c, image: i}]}}
---
{apiVersion: v1, kind: Pod, metadata: {name: r1, namespace: ar}, spec: {nodeName: m1, containers: [{name: c, image: i}]}}
"#;

fn builtin() -> Arc<BuiltinProvider> {
    let docs = parse_documents("world.yaml", WORLD).unwrap_or_default();
    let snapshot = Snapshot::from_objects(docs.iter().filter_map(|d| decode(d).ok()));
    let view = ClusterView::build(
        snapshot.topology(),
        &snapshot.nodes,
        &snapshot.pods,
        jiff::Timestamp::UNIX_EPOCH,
    );
    match view {
        Ok(v) => Arc::new(BuiltinProvider::new(Arc::new(v))),
        Err(e) => panic!("{e}"),
    }
}

fn pod(name: &str) -> TargetRef {
    TargetRef::pod("ar", name)
}

fn site(name: &str) -> TargetRef {
    TargetRef::site(name)
}

fn rule(name: &str, request: &str, limit: Option<&str>) -> ConstraintPolicyRule {
    ConstraintPolicyRule {
        name: name.into(),
        request: request.into(),
        limit: limit.map(Into::into),
    }
}

fn pair(a: TargetRef, b: TargetRef) -> BTreeMap<String, TargetRef> {
    BTreeMap::from([("renderer".to_string(), a), ("users".to_string(), b)])
}

/// A running server; dropping it stops the server.
struct Running {
    url: String,
    _stop: oneshot::Sender<()>,
}

async fn start<S>(service: S) -> Running
where
    S: RuleProvider,
{
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RuleProviderServer::new(service))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    Running { url, _stop: stop }
}

async fn start_builtin() -> Running {
    start(crate::server::RuleProviderService::new(builtin())).await
}

fn client(url: &str, timeout: Duration) -> GrpcProvider {
    let options = ClientOptions {
        timeout,
        connect_timeout: timeout,
        max_in_flight: 4,
        ..ClientOptions::default()
    };
    match GrpcProvider::new(url, &options) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn the_client_reads_what_the_server_evaluates() {
    let server = start_builtin().await;
    let remote = client(&server.url, Duration::from_secs(10));
    let latency = rule("latency", "3ms", Some("5ms"));
    let outcome = remote
        .evaluate(&pair(pod("r1"), site("stadium")), &latency)
        .await;
    assert_eq!(outcome.compliance, Compliance::Limit);
    assert_eq!(outcome.value.as_deref(), Some("5ms"));
    assert_eq!(
        outcome.reason.as_deref(),
        Some(
            "latency 5ms between renderer (m1) and users (stadium) is worse than the request 3ms but within the limit 5ms"
        )
    );
    // The same answer as asking the built-in provider directly.
    let local = builtin()
        .evaluate(&pair(pod("r1"), site("stadium")), &latency)
        .await;
    assert_eq!(outcome, local);

    let unknown = remote
        .evaluate(
            &pair(pod("r0"), site("stadium")),
            &rule("gpu-temperature", "70", None),
        )
        .await;
    assert_eq!(unknown.compliance, Compliance::Error);
    assert_eq!(
        unknown.reason.as_deref(),
        Some("no provider for rule gpu-temperature")
    );

    let costs = remote
        .endpoint_cost(&CostRequest {
            source: pod("r9"),
            rule: rule("latency", "1ms", Some("4ms")),
            peer_nodes: vec!["stadium".into()],
            eligible_nodes: vec!["e1".into(), "m1".into(), "nowhere".into()],
        })
        .await;
    let costs: Vec<(String, i64)> = costs
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.node, c.cost))
        .collect();
    // e1: 2ms, a third of the way from 1ms to 4ms; m1: 5ms, past the limit; nowhere: no
    // such node.
    assert_eq!(
        costs,
        [
            ("e1".to_string(), 333),
            ("m1".to_string(), -1),
            ("nowhere".to_string(), -1)
        ]
    );
    let refused = remote
        .endpoint_cost(&CostRequest {
            source: pod("r9"),
            rule: rule("latency", "1ms", None),
            peer_nodes: vec!["atlantis".into()],
            eligible_nodes: vec!["e1".into()],
        })
        .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("InvalidArgument")
                && e.to_string()
                    .contains("\"atlantis\" is neither a node nor a site")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_an_error_with_the_cause() {
    // A port that was free a moment ago and has no listener now: connection refused.
    let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("{e}"),
    };
    let url = format!("http://127.0.0.1:{port}");
    let remote = client(&url, Duration::from_secs(10));
    let outcome = remote
        .evaluate(
            &pair(pod("r0"), site("stadium")),
            &rule("latency", "3ms", None),
        )
        .await;
    assert_eq!(outcome.compliance, Compliance::Error);
    let reason = outcome.reason.unwrap_or_default();
    assert!(
        reason.starts_with(&format!("provider at {url} is unreachable: ")),
        "{reason}"
    );
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
    let cost = remote
        .endpoint_cost(&CostRequest {
            source: pod("r0"),
            rule: rule("latency", "3ms", None),
            peer_nodes: vec![],
            eligible_nodes: vec!["e1".into()],
        })
        .await;
    assert!(cost.is_err_and(|e| e.to_string().contains("is unreachable")));
}

#[test]
fn a_url_that_is_not_one_is_refused_up_front() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    runtime.block_on(async {
        let result = GrpcProvider::new("not a url", &ClientOptions::default());
        assert!(result.is_err_and(|e| e.to_string().contains("is not a URL")));
    });
}

/// How a fake provider misbehaves.
#[derive(Clone, Copy)]
enum Fault {
    /// Never answers.
    Silent,
    /// Answers with an error status.
    Fails,
    /// Answers a compliance value the enum does not have.
    UnknownCompliance,
    /// Answers well, with edgeplane's value extension.
    Fine,
}

struct Fake(Fault);

#[tonic::async_trait]
impl RuleProvider for Fake {
    async fn evaluate(
        &self,
        request: Request<proto::EvaluateRequest>,
    ) -> Result<Response<proto::EvaluateResponse>, Status> {
        match self.0 {
            Fault::Silent => std::future::pending().await,
            Fault::Fails => Err(Status::internal("the probe database is down")),
            Fault::UnknownCompliance => Ok(Response::new(proto::EvaluateResponse {
                compliance: 42,
                reason: "?".into(),
                value: String::new(),
            })),
            Fault::Fine => {
                let request = request.into_inner();
                // A proto map has no order.
                let mut roles: Vec<String> = request.targets.keys().cloned().collect();
                roles.sort();
                Ok(Response::new(proto::EvaluateResponse {
                    compliance: 2,
                    reason: format!(
                        "{} for {}",
                        request.rule.map(|r| r.name).unwrap_or_default(),
                        roles.join("+")
                    ),
                    value: "71C".into(),
                }))
            }
        }
    }

    async fn endpoint_cost(
        &self,
        _request: Request<proto::EndpointCostRequest>,
    ) -> Result<Response<proto::EndpointCostResponse>, Status> {
        match self.0 {
            Fault::Silent => std::future::pending().await,
            _ => Err(Status::unimplemented("no costs here")),
        }
    }
}

#[tokio::test]
async fn slow_failing_and_malformed_providers_are_errors_with_reasons() {
    let targets = pair(pod("r0"), site("stadium"));
    let temperature = rule("gpu-temperature", "70", Some("80"));

    let slow = start(Fake(Fault::Silent)).await;
    let outcome = client(&slow.url, Duration::from_millis(200))
        .evaluate(&targets, &temperature)
        .await;
    assert_eq!(outcome.compliance, Compliance::Error);
    assert_eq!(
        outcome.reason.as_deref(),
        Some(format!("provider at {} did not answer within 200ms", slow.url).as_str())
    );

    let failing = start(Fake(Fault::Fails)).await;
    let outcome = client(&failing.url, Duration::from_secs(10))
        .evaluate(&targets, &temperature)
        .await;
    assert_eq!(outcome.compliance, Compliance::Error);
    assert_eq!(
        outcome.reason.as_deref(),
        Some(
            format!(
                "provider at {} failed: Internal: the probe database is down",
                failing.url
            )
            .as_str()
        )
    );

    let malformed = start(Fake(Fault::UnknownCompliance)).await;
    let outcome = client(&malformed.url, Duration::from_secs(10))
        .evaluate(&targets, &temperature)
        .await;
    assert_eq!(outcome.compliance, Compliance::Error);
    assert_eq!(
        outcome.reason.as_deref(),
        Some(
            format!(
                "provider at {} answered an unknown compliance value 42",
                malformed.url
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn bindings_route_rules_to_external_providers_first() {
    let fine = start(Fake(Fault::Fine)).await;
    let mut providers = Providers::new(builtin()).with_concurrency(2);
    providers.insert_external(
        "gpu-temperature",
        Arc::new(client(&fine.url, Duration::from_secs(10))),
    );
    let spec = ConstraintPolicySpec {
        rules: vec![
            rule("latency", "3ms", Some("5ms")),
            rule("gpu-temperature", "70", Some("80")),
            rule("cpu", "8", Some("4")),
        ],
    };
    let outcomes = providers
        .evaluate_binding(
            &pair(pod("r0"), site("stadium")),
            &[
                PolicyInput {
                    name: "mixed",
                    spec: Some(&spec),
                },
                PolicyInput {
                    name: "gone",
                    spec: None,
                },
            ],
        )
        .await;
    assert_eq!(outcomes.len(), 2);
    let rules: Vec<(&str, Compliance, Option<&str>)> = outcomes[0]
        .rules
        .iter()
        .map(|r| (r.rule.as_str(), r.compliance, r.value.as_deref()))
        .collect();
    assert_eq!(
        rules,
        [
            ("latency", Compliance::Compliant, Some("2ms")),
            ("gpu-temperature", Compliance::Limit, Some("71C")),
            ("cpu", Compliance::Compliant, Some("16")),
        ]
    );
    assert_eq!(
        outcomes[0].rules[1].reason.as_deref(),
        Some("gpu-temperature for renderer+users")
    );
    assert_eq!(outcomes[1].compliance(), Compliance::Error);
    assert_eq!(
        outcomes[1].error.as_deref(),
        Some("policy gone does not exist")
    );

    let nothing = Providers::external_only()
        .evaluate(
            &pair(pod("r0"), site("stadium")),
            &rule("latency", "1ms", None),
        )
        .await;
    assert_eq!(
        nothing.reason.as_deref(),
        Some("no provider for rule latency")
    );
}

mod limits;

/// The built-in providers served over mutual TLS: a client with a certificate from the
/// same CA gets the same answer as in plain text; one without a certificate gets an Error
/// outcome that says why.
#[tokio::test]
async fn the_client_evaluates_over_mutual_tls() {
    use edgeplane_serve::tls::testing::{TestCa, temp_dir};
    use edgeplane_serve::tls::{ClientTls, ClientTlsFiles, ServerTls, ServerTlsFiles};
    let dir = temp_dir("provider-mtls");
    let ca = TestCa::new("edgeplane-ca");
    let ca_file = ca.write_ca(&dir);
    let (cert, key) = ca.write(&dir, "provider", &["127.0.0.1"]);
    let tls = ServerTls::load(ServerTlsFiles {
        cert,
        key,
        client_ca: Some(ca_file.clone()),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "https://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(crate::server::serve(
        listener,
        builtin(),
        crate::server::ServerLimits::default(),
        Some(Arc::new(tls)),
        async {
            let _ = stopped.await;
        },
    ));
    let remote = |cert: Option<(PathBuf, PathBuf)>| {
        let files = ClientTlsFiles {
            ca: ca_file.clone(),
            cert: cert.as_ref().map(|c| c.0.clone()),
            key: cert.map(|c| c.1),
        };
        let options = ClientOptions {
            tls: Some(Arc::new(
                ClientTls::load(files).unwrap_or_else(|e| panic!("{e}")),
            )),
            ..ClientOptions::default()
        };
        GrpcProvider::new(&url, &options).unwrap_or_else(|e| panic!("{e}"))
    };
    let latency = rule("latency", "3ms", Some("5ms"));
    let targets = pair(pod("r1"), site("stadium"));
    let with_cert = remote(Some(ca.write(&dir, "scheduler", &["edgeplane-scheduler"])));
    assert_eq!(
        with_cert.evaluate(&targets, &latency).await,
        builtin().evaluate(&targets, &latency).await
    );
    let without = remote(None).evaluate(&targets, &latency).await;
    assert_eq!(without.compliance, Compliance::Error);
    assert!(
        without
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with(&format!("provider at {url} failed: "))
                && r.ends_with("received fatal alert: CertificateRequired")),
        "{without:?}"
    );
}
