//! The server's limits on loopback: targets per request, the caller's deadline and
//! cancellation, and calls at work at once. A provider that works until it is interrupted
//! stands in for a long evaluation; the tests wait for its signals, never for time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{ConstraintPolicyRule, TargetRef};
use edgeplane_core::status::RuleOutcome;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::builtin;
use crate::proto;
use crate::proto::rule_provider_client::RuleProviderClient;
use crate::provider::Interrupt;
use crate::server::{RuleProviderService, ServerLimits, serve_service};
use crate::{CostRequest, NodeCost, Provider, ProviderError};

/// `stall` works (on a blocking thread, as the built-in provider does) until interrupted,
/// saying when it starts and when it stops; other rules answer at once.
struct Stubborn {
    started: mpsc::UnboundedSender<()>,
    stopped: mpsc::UnboundedSender<()>,
}

#[tonic::async_trait]
impl Provider for Stubborn {
    async fn evaluate(
        &self,
        _targets: &BTreeMap<String, TargetRef>,
        rule: &ConstraintPolicyRule,
    ) -> RuleOutcome {
        answered(&rule.name)
    }

    async fn evaluate_interruptible(
        &self,
        targets: BTreeMap<String, TargetRef>,
        rule: ConstraintPolicyRule,
        interrupt: Interrupt,
    ) -> RuleOutcome {
        if rule.name != "stall" {
            return self.evaluate(&targets, &rule).await;
        }
        let _ = self.started.send(());
        let stopped = self.stopped.clone();
        let _ = tokio::task::spawn_blocking(move || {
            while !interrupt.is_raised() {
                std::thread::yield_now();
            }
            let _ = stopped.send(());
        })
        .await;
        answered(&rule.name)
    }

    async fn endpoint_cost(&self, _: &CostRequest) -> Result<Vec<NodeCost>, ProviderError> {
        Ok(Vec::new())
    }
}

fn answered(rule: &str) -> RuleOutcome {
    RuleOutcome {
        rule: rule.to_string(),
        compliance: edgeplane_api::Compliance::Compliant,
        value: None,
        reason: None,
    }
}

struct Server {
    client: RuleProviderClient<tonic::transport::Channel>,
    slots: edgeplane_serve::grpc::WorkSlots,
    _stop: oneshot::Sender<()>,
}

async fn serve(provider: Arc<dyn Provider>, limits: ServerLimits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("test setup");
    let url = format!("http://{}", listener.local_addr().expect("test setup"));
    let service = RuleProviderService::with_limits(provider, limits);
    let slots = service.slots();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_service(listener, service, None, async {
        let _ = stopped.await;
    }));
    let client = RuleProviderClient::connect(url).await.expect("test setup");
    Server {
        client,
        slots,
        _stop: stop,
    }
}

fn stubborn() -> (
    Arc<dyn Provider>,
    mpsc::UnboundedReceiver<()>,
    mpsc::UnboundedReceiver<()>,
) {
    let (started, started_rx) = mpsc::unbounded_channel();
    let (stopped, stopped_rx) = mpsc::unbounded_channel();
    (
        Arc::new(Stubborn { started, stopped }),
        started_rx,
        stopped_rx,
    )
}

fn request(rule_name: &str, targets: usize) -> proto::EvaluateRequest {
    proto::EvaluateRequest {
        targets: (0..targets)
            .map(|i| {
                (
                    format!("role-{i}"),
                    proto::Target {
                        namespace: "ar".into(),
                        kind: "Pod".into(),
                        name: if i % 2 == 0 { "r0" } else { "r1" }.into(),
                        ..Default::default()
                    },
                )
            })
            .collect(),
        rule: Some(proto::PolicyRule {
            name: rule_name.into(),
            request: "3ms".into(),
            limit: "5ms".into(),
        }),
    }
}

/// Fails the test instead of hanging it when a signal never comes.
async fn signal(rx: &mut mpsc::UnboundedReceiver<()>, what: &str) {
    match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
        Ok(Some(())) => {}
        other => panic!("{what}: {other:?}"),
    }
}

#[tokio::test]
async fn a_request_with_too_many_targets_is_refused_naming_the_limit() {
    let limits = ServerLimits {
        max_targets: 3,
        ..ServerLimits::default()
    };
    let mut server = serve(builtin(), limits).await;
    let answered = server.client.evaluate(request("latency", 3)).await;
    assert!(answered.is_ok(), "{answered:?}");
    let Err(refused) = server.client.evaluate(request("latency", 4)).await else {
        panic!("4 targets were evaluated past a limit of 3")
    };
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        refused.message(),
        "the request has 4 targets, more than the 3 a request may have (--max-targets)"
    );
    let costs = proto::EndpointCostRequest {
        source: Some(proto::Target {
            kind: "Pod".into(),
            name: "p".into(),
            ..Default::default()
        }),
        rule: request("latency", 0).rule,
        peer_nodes: vec!["e1".into(); 4],
        eligible_nodes: vec!["m1".into()],
    };
    let Err(refused) = server.client.endpoint_cost(costs).await else {
        panic!("4 peers were scored past a limit of 3")
    };
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn many_targets_on_few_nodes_are_answered_by_the_builtin_provider() {
    // 10,000 targets kept the server busy for 53s when every pair was judged.
    let limits = ServerLimits {
        max_targets: 10_000,
        ..ServerLimits::default()
    };
    let mut server = serve(builtin(), limits).await;
    let answer = server.client.evaluate(request("latency", 10_000)).await;
    let Ok(answer) = answer else {
        panic!("{answer:?}")
    };
    let answer = answer.into_inner();
    assert_eq!(answer.value, "3ms");
    assert_eq!(
        answer.reason,
        "latency 3ms between role-0 (e1) and role-1 (m1) meets the request 3ms"
    );
}

#[tokio::test]
async fn work_stops_when_the_callers_deadline_passes() {
    let (provider, mut started, mut stopped) = stubborn();
    let mut server = serve(provider, ServerLimits::default()).await;
    let mut call = tonic::Request::new(request("stall", 2));
    call.set_timeout(Duration::from_millis(200));
    let answer = server.client.evaluate(call).await;
    let Err(status) = answer else {
        panic!("a stalled evaluation answered: {answer:?}")
    };
    assert!(
        matches!(
            status.code(),
            tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
        ),
        "{status:?}"
    );
    signal(&mut started, "the evaluation never started").await;
    // Before, the work went on after the caller gave up: no stop ever came.
    signal(&mut stopped, "the evaluation went on after the deadline").await;
    server.slots.all_free().await;
}

#[tokio::test]
async fn work_stops_when_the_client_goes_away() {
    let (provider, mut started, mut stopped) = stubborn();
    let server = serve(provider, ServerLimits::default()).await;
    let mut client = server.client.clone();
    let call = tokio::spawn(async move { client.evaluate(request("stall", 2)).await });
    signal(&mut started, "the evaluation never started").await;
    // The client gives up: its call (and the HTTP/2 stream) is dropped.
    call.abort();
    signal(&mut stopped, "the evaluation went on after the client left").await;
    server.slots.all_free().await;
}

#[tokio::test]
async fn past_the_limit_of_calls_at_work_new_calls_are_shed() {
    let (provider, mut started, mut stopped) = stubborn();
    let limits = ServerLimits {
        max_concurrent_requests: 1,
        ..ServerLimits::default()
    };
    let server = serve(provider, limits).await;
    let mut first = server.client.clone();
    let busy = tokio::spawn(async move { first.evaluate(request("stall", 2)).await });
    signal(&mut started, "the first evaluation never started").await;
    let mut second = server.client.clone();
    let Err(shed) = second.evaluate(request("quick", 2)).await else {
        panic!("a second call was taken past a limit of 1")
    };
    assert_eq!(shed.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        shed.message(),
        "the server is busy: 1 requests are in progress, its limit (--max-concurrent-requests); retry later"
    );
    busy.abort();
    signal(&mut stopped, "the first evaluation never stopped").await;
    server.slots.all_free().await;
    let after = second.evaluate(request("quick", 2)).await;
    assert!(after.is_ok(), "{after:?}");
}

#[tokio::test]
async fn the_builtin_provider_gives_up_when_interrupted() {
    let provider = builtin();
    let interrupt = Interrupt::new();
    interrupt.raise();
    let targets = BTreeMap::from([
        ("a".to_string(), TargetRef::pod("ar", "r0")),
        ("b".to_string(), TargetRef::pod("ar", "r1")),
    ]);
    let latency = ConstraintPolicyRule {
        name: "latency".into(),
        request: "3ms".into(),
        limit: Some("5ms".into()),
    };
    let outcome = provider
        .evaluate_interruptible(targets.clone(), latency.clone(), interrupt)
        .await;
    assert_eq!(outcome.compliance, edgeplane_api::Compliance::Error);
    assert_eq!(
        outcome.reason.as_deref(),
        Some(
            "latency: the evaluation was interrupted (the caller went away or its deadline passed)"
        )
    );
    // Not interrupted: the answer.
    let answered = provider
        .evaluate_interruptible(targets, latency, Interrupt::new())
        .await;
    assert_eq!(answered.value.as_deref(), Some("3ms"));
}

#[tokio::test]
async fn the_builtin_scoring_gives_up_when_interrupted() {
    let provider = builtin();
    let request = CostRequest {
        source: TargetRef::pod("ar", "new"),
        rule: ConstraintPolicyRule {
            name: "latency".into(),
            request: "3ms".into(),
            limit: Some("5ms".into()),
        },
        peer_nodes: vec!["e1".into()],
        eligible_nodes: vec!["e1".into(), "m1".into()],
    };
    let interrupt = Interrupt::new();
    interrupt.raise();
    let refused = provider
        .endpoint_cost_interruptible(request.clone(), interrupt)
        .await;
    assert_eq!(
        refused.map_err(|e| e.to_string()),
        Err(
            "the scoring was interrupted (the caller went away or its deadline passed)".to_string()
        )
    );
    let answered = provider
        .endpoint_cost_interruptible(request.clone(), Interrupt::new())
        .await;
    assert_eq!(answered, provider.endpoint_cost(&request).await);
}
