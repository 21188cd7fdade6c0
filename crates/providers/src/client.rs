//! A client of an external rule provider: Turnbuckle's protocol over gRPC, with a timeout
//! per call and a bound on calls in flight. Every failure is an answer: Error with the
//! cause for `evaluate`, a [`ProviderError`] for `endpoint_cost`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{Compliance, ConstraintPolicyRule, TargetRef};
use edgeplane_core::status::RuleOutcome;
use edgeplane_core::values::format_duration;
use edgeplane_serve::tls::ClientTls;
use tokio::sync::Semaphore;
use tonic::transport::Channel;

use crate::proto;
use crate::proto::rule_provider_client::RuleProviderClient;
use crate::provider::{CostRequest, NodeCost, Provider, ProviderError};
use crate::wire;

/// How a client talks to a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// The longest a call may take, connecting included.
    pub timeout: Duration,
    /// The longest connecting may take.
    pub connect_timeout: Duration,
    /// Calls in flight to one provider at most; more wait their turn (within their
    /// timeout).
    pub max_in_flight: usize,
    /// For `https://` URLs: the CA to trust and the client's certificate (`--grpc-ca`,
    /// `--grpc-cert`, `--grpc-key`), re-read when the files change.
    pub tls: Option<Arc<ClientTls>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            max_in_flight: 16,
            tls: None,
        }
    }
}

/// An external provider at a URL (`http://host:port`).
#[derive(Clone, Debug)]
pub struct GrpcProvider {
    url: String,
    client: RuleProviderClient<Channel>,
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl GrpcProvider {
    /// A client that connects on first use (and reconnects after failures): `http://` in
    /// plain text, `https://` over TLS with `options.tls`. Must be called inside a Tokio
    /// runtime. Fails only on a URL that is not one, or an `https://` URL without TLS
    /// options.
    pub fn new(url: &str, options: &ClientOptions) -> Result<GrpcProvider, ProviderError> {
        // The call's timeout is applied around the call (see `call`), so that it also
        // covers waiting for a permit and reads the same whatever times out.
        let channel =
            edgeplane_serve::tls::channel(url, options.connect_timeout, options.tls.as_ref())
                .map_err(ProviderError::InvalidRequest)?;
        Ok(GrpcProvider {
            url: url.to_string(),
            client: RuleProviderClient::new(channel),
            permits: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
            timeout: options.timeout,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs one call under the in-flight bound and the timeout (waiting for a permit
    /// counts against it), turning every failure into a [`CallError`].
    async fn call<T, F>(&self, call: F) -> Result<T, CallError>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let url = &self.url;
        let bounded = async {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| CallError::ShuttingDown { url: url.clone() })?;
            call.await.map_err(|status| describe_status(url, &status))
        };
        match tokio::time::timeout(self.timeout, bounded).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(CallError::NoAnswer {
                url: url.clone(),
                timeout: self.timeout,
            }),
        }
    }
}

/// Why a call to a provider got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum CallError {
    #[error("provider at {url} is shutting down")]
    ShuttingDown { url: String },
    #[error("provider at {url} did not answer within {}", format_duration(*.timeout))]
    NoAnswer { url: String, timeout: Duration },
    #[error("provider at {url} is unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("provider at {url} timed out: {detail}")]
    TimedOut { url: String, detail: String },
    #[error("provider at {url} failed: {code:?}: {detail}")]
    Failed {
        url: String,
        code: tonic::Code,
        detail: String,
    },
}

/// `provider at URL is unreachable: tcp connect error: Connection refused (os error 111)`,
/// `provider at URL failed: Internal: boom`.
fn describe_status(url: &str, status: &tonic::Status) -> CallError {
    let mut causes = Vec::new();
    if !status.message().is_empty() {
        causes.push(status.message().to_string());
    }
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.iter().any(|c| c.contains(&text)) {
            causes.push(text);
        }
        source = cause.source();
    }
    let url = url.to_string();
    let detail = causes.join(": ");
    match status.code() {
        tonic::Code::Unavailable => CallError::Unreachable { url, detail },
        tonic::Code::DeadlineExceeded => CallError::TimedOut { url, detail },
        code => CallError::Failed { url, code, detail },
    }
}

#[tonic::async_trait]
impl Provider for GrpcProvider {
    async fn evaluate(
        &self,
        targets: &BTreeMap<String, TargetRef>,
        rule: &ConstraintPolicyRule,
    ) -> RuleOutcome {
        let request = proto::EvaluateRequest {
            targets: targets
                .iter()
                .map(|(role, t)| (role.clone(), wire::target_to_proto(t)))
                .collect(),
            rule: Some(wire::rule_to_proto(rule)),
        };
        let mut client = self.client.clone();
        let error = |reason: String| RuleOutcome {
            rule: rule.name.clone(),
            compliance: Compliance::Error,
            value: None,
            reason: Some(reason),
        };
        match self.call(client.evaluate(request)).await {
            Ok(answer) => match wire::compliance_from_proto(answer.compliance) {
                Some(compliance) => RuleOutcome {
                    rule: rule.name.clone(),
                    compliance,
                    value: (!answer.value.is_empty()).then_some(answer.value),
                    reason: (!answer.reason.is_empty()).then_some(answer.reason),
                },
                None => error(format!(
                    "provider at {} answered an unknown compliance value {}",
                    self.url, answer.compliance
                )),
            },
            Err(reason) => error(reason.to_string()),
        }
    }

    async fn endpoint_cost(&self, request: &CostRequest) -> Result<Vec<NodeCost>, ProviderError> {
        let message = proto::EndpointCostRequest {
            source: Some(wire::target_to_proto(&request.source)),
            rule: Some(wire::rule_to_proto(&request.rule)),
            peer_nodes: request.peer_nodes.clone(),
            eligible_nodes: request.eligible_nodes.clone(),
        };
        let mut client = self.client.clone();
        let answer = self
            .call(client.endpoint_cost(message))
            .await
            .map_err(|e| ProviderError::Failed(e.to_string()))?;
        Ok(answer
            .node_and_cost
            .into_iter()
            .map(|c| NodeCost {
                node: c.node,
                cost: c.cost,
            })
            .collect())
    }
}
