//! The gRPC handlers' request decoding, for the rule provider and the network controller.
//! The first byte picks the method, the rest is the protobuf message. Any bytes are
//! refused or answered, never a panic; and what the network controller's wire layer
//! accepts survives a round trip through its own encoding unchanged.

use std::sync::{Arc, OnceLock};

use edgeplane_core::evaluate::ClusterView;
use edgeplane_netctl::fake::FakeNetworkController;
use edgeplane_netctl::proto as netctl;
use edgeplane_netctl::proto::network_controller_server::NetworkController as _;
use edgeplane_netctl::server::NetworkControllerService;
use edgeplane_netctl::wire;
use edgeplane_providers::BuiltinProvider;
use edgeplane_providers::proto as providers;
use edgeplane_providers::proto::rule_provider_server::RuleProvider as _;
use edgeplane_providers::server::RuleProviderService;
use prost::Message;
use tonic::Request;

pub fn run(data: &[u8]) {
    let Some((&method, message)) = data.split_first() else {
        return;
    };
    crate::block_on(call(method % 6, message));
}

/// Decodes `message` as `T`, or `None` (what tonic answers with INVALID_ARGUMENT).
fn decode<T: Message + Default>(message: &[u8]) -> Option<T> {
    T::decode(message).ok()
}

/// Asserts that a request the wire layer accepts encodes back to the same request.
fn round_trip<P, R: PartialEq + std::fmt::Debug, E>(
    parsed: Result<R, E>,
    encode: impl Fn(&R) -> P,
    parse: impl Fn(&P) -> Result<R, E>,
) {
    if let Ok(request) = parsed {
        let again = parse(&encode(&request));
        assert!(
            again.as_ref().ok() == Some(&request),
            "{request:?} does not survive its own encoding"
        );
    }
}

async fn call(method: u8, message: &[u8]) {
    let provider = provider();
    let controller = NetworkControllerService::new(Arc::new(FakeNetworkController::new()));
    match method {
        0 => {
            if let Some(m) = decode::<providers::EvaluateRequest>(message) {
                let _ = provider.evaluate(Request::new(m)).await;
            }
        }
        1 => {
            if let Some(m) = decode::<providers::EndpointCostRequest>(message) {
                let _ = provider.endpoint_cost(Request::new(m)).await;
            }
        }
        2 => {
            if let Some(m) = decode::<netctl::DiscoverRequest>(message) {
                round_trip(
                    wire::discover_from_proto(&m),
                    wire::discover_to_proto,
                    wire::discover_from_proto,
                );
                let _ = controller.discover(Request::new(m)).await;
            }
        }
        3 => {
            if let Some(m) = decode::<netctl::AllocateRequest>(message) {
                round_trip(
                    wire::allocate_from_proto(&m),
                    wire::allocate_to_proto,
                    wire::allocate_from_proto,
                );
                let _ = controller.allocate(Request::new(m)).await;
            }
        }
        4 => {
            if let Some(m) = decode::<netctl::ReleaseRequest>(message) {
                round_trip(
                    wire::release_from_proto(&m),
                    wire::release_to_proto,
                    wire::release_from_proto,
                );
                let _ = controller.release(Request::new(m)).await;
            }
        }
        _ => {
            if let Some(m) = decode::<netctl::MitigateRequest>(message) {
                round_trip(
                    wire::mitigate_from_proto(&m),
                    wire::mitigate_to_proto,
                    wire::mitigate_from_proto,
                );
                let _ = controller.mitigate(Request::new(m)).await;
            }
        }
    }
}

/// The built-in provider over a small generated cluster (its sites, nodes and links).
fn provider() -> RuleProviderService {
    static VIEW: OnceLock<Arc<ClusterView>> = OnceLock::new();
    let view = VIEW.get_or_init(|| Arc::new(edgeplane_core::planner::instances::small(1).view));
    RuleProviderService::new(Arc::new(BuiltinProvider::new(view.clone())))
}
