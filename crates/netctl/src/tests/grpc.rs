//! The wire format, and the client against servers on loopback.

use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::Compliance;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::rule;
use crate::controller::*;
use crate::fake::{Call, FakeNetworkController};
use crate::{ClientOptions, GrpcNetworkController, proto, wire};

fn offer() -> PathOffer {
    PathOffer {
        id: "offer.slice-a.1767268860.0a1b2c3d4e".into(),
        node: "edge-9-a".into(),
        path: vec![
            "stadium".into(),
            "edge-1".into(),
            "metro-1".into(),
            "edge-9".into(),
        ],
        expected: ExpectedMetrics {
            latency: "5ms".into(),
            jitter: "600us".into(),
            bandwidth: String::new(),
            loss: "0.051%".into(),
        },
        cost: 10.0,
        expires: "2026-01-01T12:01:00Z".parse().unwrap(),
        entry: "slice-a".into(),
        compliance: Compliance::Limit,
    }
}

fn mitigate_request() -> MitigateRequest {
    MitigateRequest {
        binding: "ar/ar-stadium-0123456789".into(),
        source: Endpoint::Node("edge-9-a".into()),
        destination: Endpoint::Site("stadium".into()),
        rules: vec![rule("latency", "2ms", "5ms"), rule("cpu", "4", "")],
    }
}

fn outcome() -> MitigateOutcome {
    MitigateOutcome {
        accepted: true,
        expected: Some(offer().expected),
        reason: "activated slice-a".into(),
        allocation_id: Some("mitigate.slice-a.0a1b2c3d4e".into()),
        entry: Some("slice-a".into()),
        path: vec!["edge-9".into(), "metro-1".into()],
        compliance: Some(Compliance::Limit),
    }
}

/// Through the bytes of the wire and back.
fn through_bytes<M: Message + Default>(m: &M) -> M {
    M::decode(m.encode_to_vec().as_slice()).unwrap()
}

#[test]
fn messages_round_trip_through_the_wire() {
    let d = DiscoverRequest {
        rules: vec![
            rule("latency", "5ms", "10ms"),
            rule("bandwidth", "1Gbps", ""),
        ],
        source: Endpoint::Site("stadium".into()),
        candidate_nodes: vec!["a".into(), "b".into()],
        binding: "ar/x".into(),
    };
    let back = wire::discover_from_proto(&through_bytes(&wire::discover_to_proto(&d)));
    assert_eq!(back, Ok(d));

    let o = offer();
    assert_eq!(
        wire::offer_from_proto(0, &through_bytes(&wire::offer_to_proto(&o))),
        Ok(o)
    );

    let a = AllocateRequest {
        id: "offer.slice-a.1.x".into(),
        binding: "ar/x".into(),
        rules: vec![rule("bandwidth", "1Gbps", "400Mbps")],
    };
    assert_eq!(
        wire::allocate_from_proto(&through_bytes(&wire::allocate_to_proto(&a))),
        Ok(a)
    );
    let done = Allocated {
        id: "offer.slice-a.1.x".into(),
        entry: "slice-a".into(),
        created: true,
    };
    assert_eq!(
        wire::allocated_from_proto(&through_bytes(&wire::allocated_to_proto(&done))),
        done
    );

    let r = ReleaseRequest {
        id: "offer.slice-a.1.x".into(),
        binding: None,
        rules: vec![],
    };
    assert_eq!(
        wire::release_from_proto(&through_bytes(&wire::release_to_proto(&r))),
        Ok(r)
    );
    let freed = Released {
        released: true,
        deactivated: false,
    };
    assert_eq!(
        wire::released_from_proto(&through_bytes(&wire::released_to_proto(&freed))),
        freed
    );

    let m = mitigate_request();
    assert_eq!(
        wire::mitigate_from_proto(&through_bytes(&wire::mitigate_to_proto(&m))),
        Ok(m)
    );
    let out = outcome();
    assert_eq!(
        wire::outcome_from_proto(&through_bytes(&wire::outcome_to_proto(&out))),
        out
    );
    let refused = MitigateOutcome {
        accepted: false,
        expected: None,
        reason: "catalogue default is exhausted".into(),
        allocation_id: None,
        entry: None,
        path: vec![],
        compliance: None,
    };
    assert_eq!(
        wire::outcome_from_proto(&through_bytes(&wire::outcome_to_proto(&refused))),
        refused
    );
}

#[test]
fn malformed_messages_are_invalid_arguments_naming_the_field() {
    let mut m = wire::mitigate_to_proto(&mitigate_request());
    m.source = None;
    assert_eq!(
        wire::mitigate_from_proto(&m),
        Err(NetctlError::InvalidArgument(
            "source: is required (a node or a site)".into()
        ))
    );
    let mut m = wire::mitigate_to_proto(&mitigate_request());
    m.binding = "no-namespace".into();
    assert_eq!(
        wire::mitigate_from_proto(&m).map_err(|e| e.to_string()),
        Err("invalid request: binding: \"no-namespace\" is not namespace/name".into())
    );
    let mut m = wire::mitigate_to_proto(&mitigate_request());
    m.rules[1].request.clear();
    assert_eq!(
        wire::mitigate_from_proto(&m).map_err(|e| e.to_string()),
        Err("invalid request: rules[1] (cpu).request: is required".into())
    );
    let mut m = wire::mitigate_to_proto(&mitigate_request());
    m.destination = Some(proto::Endpoint {
        kind: Some(proto::endpoint::Kind::Site(String::new())),
    });
    assert!(wire::mitigate_from_proto(&m).is_err());
    let a = proto::AllocateRequest::default();
    assert_eq!(
        wire::allocate_from_proto(&a),
        Err(NetctlError::InvalidArgument("id: is required".into()))
    );
    let mut o = wire::offer_to_proto(&offer());
    o.expires = "tomorrow".into();
    assert!(
        wire::offer_from_proto(2, &o)
            .map_err(|e| e.to_string())
            .is_err_and(
                |e| e.starts_with("offers[2].expires: \"tomorrow\" is not an RFC 3339 time")
            )
    );
    // A compliance value from a newer controller reads as unknown, not as a panic.
    let mut r = wire::outcome_to_proto(&outcome());
    r.compliance = 42;
    assert_eq!(wire::outcome_from_proto(&r).compliance, None);
}

/// Serves `controller` on a loopback port; the sender stops it.
async fn serve(controller: Arc<dyn NetworkController>) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(crate::server::serve(listener, controller, async move {
        let _ = stopped.await;
    }));
    (url, stop)
}

#[tokio::test]
async fn the_client_speaks_to_a_served_controller() {
    let fake = Arc::new(FakeNetworkController::new());
    fake.offer(vec![offer()]);
    fake.mitigation(outcome());
    let (url, stop) = serve(fake.clone()).await;
    let client = GrpcNetworkController::new(&url, &ClientOptions::default()).unwrap();
    let question = DiscoverRequest {
        rules: vec![rule("latency", "2ms", "5ms")],
        source: Endpoint::Site("stadium".into()),
        candidate_nodes: vec!["edge-9-a".into()],
        binding: "ar/x".into(),
    };
    assert_eq!(client.discover(&question).await, Ok(vec![offer()]));
    assert_eq!(client.mitigate(&mitigate_request()).await, Ok(outcome()));
    let allocated = client
        .allocate(&AllocateRequest {
            id: "offer.slice-a.1.x".into(),
            binding: "ar/x".into(),
            rules: vec![],
        })
        .await;
    assert_eq!(allocated.map(|a| a.created), Ok(true));
    // The rules arrive with every call.
    let calls = fake.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0], Call::Discover(question));
    assert_eq!(calls[1], Call::Mitigate(mitigate_request()));

    // Errors come back as the same kind of error, naming the controller.
    fake.fail_allocation(NetctlError::AtCapacity(
        "catalogue default: slice-a (metro-1 <-> edge-9) is at capacity 2/2 bindings".into(),
    ));
    let refused = client
        .allocate(&AllocateRequest {
            id: "offer.slice-a.1.y".into(),
            binding: "ar/y".into(),
            rules: vec![],
        })
        .await;
    assert_eq!(
        refused,
        Err(NetctlError::AtCapacity(format!(
            "network controller at {url}: catalogue default: slice-a (metro-1 <-> edge-9) is at capacity 2/2 bindings"
        )))
    );
    // A request the server cannot read is refused before it reaches the controller.
    let mut raw = proto::network_controller_client::NetworkControllerClient::connect(url.clone())
        .await
        .unwrap();
    let status = raw
        .mitigate(proto::MitigateRequest {
            binding: "ar/x".into(),
            ..Default::default()
        })
        .await
        .err()
        .unwrap();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "invalid request: source: is required (a node or a site)"
    );
    assert_eq!(fake.calls().len(), 4);
    let _ = stop.send(());
}

#[tokio::test]
async fn an_unreachable_controller_is_an_error_not_a_panic() {
    // A port that was free a moment ago and has no listener now.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = GrpcNetworkController::new(&url, &ClientOptions::default()).unwrap();
    let answer = client.mitigate(&mitigate_request()).await;
    match answer {
        Err(NetctlError::Unavailable(message)) => assert!(
            message.starts_with(&format!("network controller at {url} is unreachable: ")),
            "{message}"
        ),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        GrpcNetworkController::new("not a url", &ClientOptions::default()),
        Err(NetctlError::InvalidArgument(m)) if m.starts_with("\"not a url\" is not a URL")
    ));
}

/// A controller that never answers Mitigate.
struct Silent;

#[tonic::async_trait]
impl NetworkController for Silent {
    async fn discover(&self, _: &DiscoverRequest) -> Result<Vec<PathOffer>, NetctlError> {
        Ok(vec![])
    }
    async fn allocate(&self, _: &AllocateRequest) -> Result<Allocated, NetctlError> {
        Err(NetctlError::Failed("boom".into()))
    }
    async fn release(&self, _: &ReleaseRequest) -> Result<Released, NetctlError> {
        Ok(Released {
            released: false,
            deactivated: false,
        })
    }
    async fn mitigate(&self, _: &MitigateRequest) -> Result<MitigateOutcome, NetctlError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_silent_controller_times_out_and_a_failing_one_says_why() {
    let (url, stop) = serve(Arc::new(Silent)).await;
    let options = ClientOptions {
        timeout: Duration::from_millis(300),
        ..ClientOptions::default()
    };
    let client = GrpcNetworkController::new(&url, &options).unwrap();
    assert_eq!(
        client.mitigate(&mitigate_request()).await,
        Err(NetctlError::Timeout(format!(
            "network controller at {url} did not answer within 300ms"
        )))
    );
    let failed = client
        .allocate(&AllocateRequest {
            id: "x".into(),
            binding: "a/b".into(),
            rules: vec![],
        })
        .await;
    assert_eq!(
        failed,
        Err(NetctlError::Failed(format!(
            "network controller at {url} failed: Internal: boom"
        )))
    );
    let _ = stop.send(());
}

/// Discover waits until told to go on (saying when it starts); the rest fail.
struct Waiting {
    started: tokio::sync::mpsc::UnboundedSender<()>,
    go_on: tokio::sync::Notify,
}

#[tonic::async_trait]
impl NetworkController for Waiting {
    async fn discover(&self, _: &DiscoverRequest) -> Result<Vec<PathOffer>, NetctlError> {
        let _ = self.started.send(());
        self.go_on.notified().await;
        Ok(Vec::new())
    }
    async fn allocate(&self, _: &AllocateRequest) -> Result<Allocated, NetctlError> {
        Err(NetctlError::NotFound("nothing".into()))
    }
    async fn release(&self, _: &ReleaseRequest) -> Result<Released, NetctlError> {
        Err(NetctlError::NotFound("nothing".into()))
    }
    async fn mitigate(&self, _: &MitigateRequest) -> Result<MitigateOutcome, NetctlError> {
        Err(NetctlError::NotFound("nothing".into()))
    }
}

fn discover_question(candidates: usize) -> proto::DiscoverRequest {
    wire::discover_to_proto(&DiscoverRequest {
        rules: vec![rule("latency", "2ms", "5ms")],
        source: Endpoint::Site("stadium".into()),
        candidate_nodes: (0..candidates).map(|i| format!("node-{i:06}")).collect(),
        binding: String::new(),
    })
}

#[tokio::test]
async fn past_the_limit_of_calls_at_work_new_calls_are_shed_and_large_messages_refused() {
    use crate::proto::network_controller_client::NetworkControllerClient;
    use crate::server::{ServerLimits, serve_with_limits};
    let (started, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    let waiting = Arc::new(Waiting {
        started,
        go_on: tokio::sync::Notify::new(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let limits = ServerLimits {
        max_concurrent_requests: 1,
        max_message_bytes: 64 * 1024,
        ..ServerLimits::default()
    };
    let (_stop, stopped) = oneshot::channel::<()>();
    let controller: Arc<dyn NetworkController> = waiting.clone();
    tokio::spawn(serve_with_limits(
        listener,
        controller,
        limits,
        None,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = NetworkControllerClient::connect(url).await.unwrap();
    let mut first = client.clone();
    let busy = tokio::spawn(async move { first.discover(discover_question(1)).await });
    match tokio::time::timeout(Duration::from_secs(60), started_rx.recv()).await {
        Ok(Some(())) => {}
        other => panic!("the first call never started: {other:?}"),
    }
    let mut second = client.clone();
    let Err(shed) = second.discover(discover_question(1)).await else {
        panic!("a second call was taken past a limit of 1")
    };
    assert_eq!(shed.code(), tonic::Code::ResourceExhausted);
    assert!(
        shed.message().contains("(--max-concurrent-requests)"),
        "{shed:?}"
    );
    waiting.go_on.notify_one();
    assert!(matches!(busy.await, Ok(Ok(_))));
    // 10,000 candidate nodes is about 120 KB: over the 64 KiB limit.
    let Err(large) = second.discover(discover_question(10_000)).await else {
        panic!("a message over the limit was read")
    };
    // tonic's code for it (grpc-go says RESOURCE_EXHAUSTED), naming the limit.
    assert_eq!(large.code(), tonic::Code::OutOfRange);
    assert!(
        large.message().contains("the limit is: 65536 bytes"),
        "{large:?}"
    );
}
