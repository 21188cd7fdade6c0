//! Serves a [`Provider`] over Turnbuckle's rule-provider protocol.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgeplane_api::Compliance;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::proto;
use crate::proto::rule_provider_server::{RuleProvider, RuleProviderServer};
use crate::provider::{CostRequest, Provider, ProviderError};
use crate::wire;

/// The gRPC service around a provider.
pub struct RuleProviderService {
    provider: Arc<dyn Provider>,
}

impl RuleProviderService {
    pub fn new(provider: Arc<dyn Provider>) -> RuleProviderService {
        RuleProviderService { provider }
    }

    /// The service, ready for `tonic::transport::Server::add_service`.
    pub fn into_server(self) -> RuleProviderServer<RuleProviderService> {
        RuleProviderServer::new(self)
    }
}

fn error_response(reason: String) -> proto::EvaluateResponse {
    proto::EvaluateResponse {
        compliance: wire::compliance_to_proto(Compliance::Error) as i32,
        reason,
        value: String::new(),
    }
}

#[tonic::async_trait]
impl RuleProvider for RuleProviderService {
    async fn evaluate(
        &self,
        request: Request<proto::EvaluateRequest>,
    ) -> Result<Response<proto::EvaluateResponse>, Status> {
        let request = request.into_inner();
        // A request edgeplane cannot read is answered, not refused: Error with the reason
        // is what a binding's status should show.
        let Some(rule) = request.rule.as_ref() else {
            return Ok(Response::new(error_response(
                "the request carries no rule".into(),
            )));
        };
        let mut targets = BTreeMap::new();
        for (role, target) in &request.targets {
            match wire::target_from_proto(target) {
                Ok(t) => {
                    targets.insert(role.clone(), t);
                }
                Err(e) => return Ok(Response::new(error_response(format!("{role}: {e}")))),
            }
        }
        let outcome = self
            .provider
            .evaluate(&targets, &wire::rule_from_proto(rule))
            .await;
        Ok(Response::new(proto::EvaluateResponse {
            compliance: wire::compliance_to_proto(outcome.compliance) as i32,
            reason: outcome.reason.unwrap_or_default(),
            value: outcome.value.unwrap_or_default(),
        }))
    }

    async fn endpoint_cost(
        &self,
        request: Request<proto::EndpointCostRequest>,
    ) -> Result<Response<proto::EndpointCostResponse>, Status> {
        let request = request.into_inner();
        let source = request
            .source
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("the request carries no source target"))?;
        let source = wire::target_from_proto(source)
            .map_err(|e| Status::invalid_argument(format!("source: {e}")))?;
        let rule = request
            .rule
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("the request carries no rule"))?;
        let question = CostRequest {
            source,
            rule: wire::rule_from_proto(rule),
            peer_nodes: request.peer_nodes,
            eligible_nodes: request.eligible_nodes,
        };
        match self.provider.endpoint_cost(&question).await {
            Ok(costs) => Ok(Response::new(proto::EndpointCostResponse {
                node_and_cost: costs
                    .into_iter()
                    .map(|c| proto::NodeCost {
                        node: c.node,
                        cost: c.cost,
                    })
                    .collect(),
            })),
            Err(e @ ProviderError::NoProvider(_)) => Err(Status::unimplemented(e.to_string())),
            Err(e @ ProviderError::InvalidRequest(_)) => {
                Err(Status::invalid_argument(e.to_string()))
            }
            Err(e @ ProviderError::Failed(_)) => Err(Status::unavailable(e.to_string())),
        }
    }
}

/// Serves `provider` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    provider: Arc<dyn Provider>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(RuleProviderService::new(provider).into_server())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}
