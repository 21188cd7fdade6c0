//! Serves a [`Provider`] over Turnbuckle's rule-provider protocol.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgeplane_api::Compliance;
use edgeplane_serve::grpc::{Interrupt, WorkSlots};
use edgeplane_serve::tls::ServerTls;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use crate::proto;
use crate::proto::rule_provider_server::{RuleProvider, RuleProviderServer};
use crate::provider::{CostRequest, Provider, ProviderError};
use crate::wire;

/// What one client may ask of the server, and how much it does at once
/// (`edgeplane provider serve` flags in parentheses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Targets of one `Evaluate`, and peers of one `EndpointCost` (`--max-targets`).
    pub max_targets: usize,
    /// Eligible nodes of one `EndpointCost` (`--max-nodes`).
    pub max_nodes: usize,
    /// Calls at work at once; past it calls are refused with RESOURCE_EXHAUSTED
    /// (`--max-concurrent-requests`).
    pub max_concurrent_requests: usize,
    /// Open connections (`--max-connections`).
    pub max_connections: usize,
    /// Largest request message, in bytes (`--max-message-bytes`).
    pub max_message_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            // A binding has one target per role: a handful. 256 is generous and keeps a
            // request's pairs of places bounded by the topology anyway.
            max_targets: 256,
            max_nodes: 10_000,
            max_concurrent_requests: 16,
            max_connections: 256,
            max_message_bytes: 1024 * 1024,
        }
    }
}

/// The gRPC service around a provider.
pub struct RuleProviderService {
    provider: Arc<dyn Provider>,
    limits: ServerLimits,
    slots: WorkSlots,
}

impl RuleProviderService {
    /// With the default [`ServerLimits`].
    pub fn new(provider: Arc<dyn Provider>) -> RuleProviderService {
        RuleProviderService::with_limits(provider, ServerLimits::default())
    }

    pub fn with_limits(provider: Arc<dyn Provider>, limits: ServerLimits) -> RuleProviderService {
        let slots = WorkSlots::new(limits.max_concurrent_requests, "--max-concurrent-requests");
        RuleProviderService {
            provider,
            limits,
            slots,
        }
    }

    /// The slots of calls at work (to see when work has stopped).
    pub fn slots(&self) -> WorkSlots {
        self.slots.clone()
    }

    /// The service, ready for `tonic::transport::Server::add_service`, refusing messages
    /// over the limit.
    pub fn into_server(self) -> RuleProviderServer<RuleProviderService> {
        let max = self.limits.max_message_bytes;
        RuleProviderServer::new(self).max_decoding_message_size(max)
    }

    fn check_count(
        &self,
        what: &str,
        count: usize,
        limit: usize,
        flag: &str,
    ) -> Result<(), Status> {
        if count > limit {
            return Err(Status::invalid_argument(format!(
                "the request has {count} {what}, more than the {limit} a request may have ({flag})"
            )));
        }
        Ok(())
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
        self.check_count(
            "targets",
            request.targets.len(),
            self.limits.max_targets,
            "--max-targets",
        )?;
        let slot = self.slots.try_enter()?;
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
        // tonic drops this future when the client goes away or its deadline passes: the
        // guard then raises the interrupt, and the work (in its own task, holding the
        // slot until it has really stopped) gives up.
        let interrupt = Interrupt::new();
        let _raise = interrupt.raise_on_drop();
        let provider = self.provider.clone();
        let rule = wire::rule_from_proto(rule);
        let work = tokio::spawn(async move {
            let outcome = provider
                .evaluate_interruptible(targets, rule, interrupt)
                .await;
            drop(slot);
            outcome
        });
        let outcome = work
            .await
            .map_err(|e| Status::internal(format!("the evaluation failed: {e}")))?;
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
        self.check_count(
            "peer nodes",
            request.peer_nodes.len(),
            self.limits.max_targets,
            "--max-targets",
        )?;
        self.check_count(
            "eligible nodes",
            request.eligible_nodes.len(),
            self.limits.max_nodes,
            "--max-nodes",
        )?;
        let slot = self.slots.try_enter()?;
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
        // As in `evaluate`: interrupted when tonic drops this call, the slot held until
        // the work has stopped.
        let interrupt = Interrupt::new();
        let _raise = interrupt.raise_on_drop();
        let provider = self.provider.clone();
        let work = tokio::spawn(async move {
            let costs = provider
                .endpoint_cost_interruptible(question, interrupt)
                .await;
            drop(slot);
            costs
        });
        let costs = work
            .await
            .map_err(|e| Status::internal(format!("the scoring failed: {e}")))?;
        match costs {
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

/// Serves `provider` on `listener` within `limits` until `shutdown` completes, over TLS
/// when `tls` is given (mutual TLS when it names a client CA).
pub async fn serve(
    listener: TcpListener,
    provider: Arc<dyn Provider>,
    limits: ServerLimits,
    tls: Option<Arc<ServerTls>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    serve_service(
        listener,
        RuleProviderService::with_limits(provider, limits),
        tls,
        shutdown,
    )
    .await
}

/// Serves a service built with [`RuleProviderService::with_limits`] (keep its
/// [`RuleProviderService::slots`] to watch the work); plain text (with a warning when the
/// address is not a loopback one) unless `tls` is given.
pub async fn serve_service(
    listener: TcpListener,
    service: RuleProviderService,
    tls: Option<Arc<ServerTls>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let max_connections = service.limits.max_connections;
    let router = tonic::transport::Server::builder().add_service(service.into_server());
    edgeplane_serve::tls::serve_router(
        "the provider",
        listener,
        max_connections,
        router,
        tls,
        shutdown,
    )
    .await
}
