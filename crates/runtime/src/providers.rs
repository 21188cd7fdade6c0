//! Which provider answers each rule: external providers registered by Service label (or
//! given explicitly), else the built-in ones over the current view. gRPC clients are kept
//! per URL, so a provider's connection survives from one evaluation to the next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use edgeplane_api::names::PROVIDER_LABEL_PREFIX;
use edgeplane_providers::discovery::{DiscoveredProvider, providers_from_services};
use edgeplane_providers::{ClientOptions, GrpcProvider, Provider, Providers};
use k8s_openapi::api::core::v1::Service;

use crate::metrics::Metrics;
use crate::metrics::providers::{ProviderMetrics, Timed};

/// Rewrites a discovered provider's URL (`http://svc.ns.svc:port`). Out of the cluster
/// (a controller run by hand against a remote API server) Service names do not resolve;
/// tests point them at local ports.
pub type UrlRewrite = Arc<dyn Fn(&DiscoveredProvider) -> String + Send + Sync>;

/// The providers of a component.
pub struct ProviderRegistry {
    builtin: Arc<dyn Provider>,
    /// `--provider RULE=URL`: wins over discovery.
    explicit: Vec<(String, String)>,
    options: ClientOptions,
    rewrite: Option<UrlRewrite>,
    clients: Mutex<HashMap<String, Arc<GrpcProvider>>>,
    /// Discovery problems already logged (logged once each).
    reported: Mutex<std::collections::BTreeSet<String>>,
    /// Set by the component that evaluates (`register_metrics`): external calls are timed.
    metrics: std::sync::OnceLock<ProviderMetrics>,
}

impl std::fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRegistry")
            .field("explicit", &self.explicit)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ProviderRegistry {
    pub fn new(builtin: Arc<dyn Provider>, options: ClientOptions) -> ProviderRegistry {
        ProviderRegistry {
            builtin,
            explicit: Vec::new(),
            options,
            rewrite: None,
            clients: Mutex::new(HashMap::new()),
            reported: Mutex::new(Default::default()),
            metrics: std::sync::OnceLock::new(),
        }
    }

    /// Adds `rule -> url`, answering instead of any discovered or built-in provider.
    pub fn with_explicit(mut self, rule: impl Into<String>, url: impl Into<String>) -> Self {
        self.explicit.push((rule.into(), url.into()));
        self
    }

    pub fn with_url_rewrite(mut self, rewrite: UrlRewrite) -> Self {
        self.rewrite = Some(rewrite);
        self
    }

    /// The routing for one evaluation, from the Services in the cache now.
    /// Times and counts the calls to external providers in `metrics` from now on (the
    /// first registry given wins: one process, one registry).
    pub fn register_metrics(&self, metrics: &Metrics) {
        self.metrics.get_or_init(|| metrics.providers());
    }

    pub fn providers(&self, services: &[Arc<Service>]) -> Providers {
        let mut providers = Providers::new(self.builtin.clone());
        let registering: Vec<Service> = services
            .iter()
            .filter(|s| {
                s.metadata
                    .labels
                    .iter()
                    .flatten()
                    .any(|(k, _)| k.starts_with(PROVIDER_LABEL_PREFIX))
            })
            .map(|s| (**s).clone())
            .collect();
        let (found, problems) = providers_from_services(&registering);
        if !problems.is_empty() {
            let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
            for problem in problems {
                if reported.insert(problem.clone()) {
                    tracing::warn!(%problem, "provider discovery");
                }
            }
        }
        for discovered in &found {
            let url = match &self.rewrite {
                Some(rewrite) => rewrite(discovered),
                None => discovered.url.clone(),
            };
            providers.insert_external(discovered.rule.clone(), self.client(&url));
        }
        for (rule, url) in &self.explicit {
            providers.insert_external(rule.clone(), self.client(url));
        }
        providers
    }

    /// Whether a rule has an external provider now.
    pub fn has_external(&self, rule: &str, services: &[Arc<Service>]) -> bool {
        self.explicit.iter().any(|(r, _)| r == rule)
            || services.iter().any(|s| {
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(&format!("{PROVIDER_LABEL_PREFIX}{rule}")))
                    .is_some_and(|v| v == edgeplane_api::names::ENABLED)
            })
    }

    /// The client of `url`; a URL that is not one gives a provider that answers Error
    /// (the rule must not fall back to the built-in provider silently).
    fn client(&self, url: &str) -> Arc<dyn Provider> {
        let client = self.plain_client(url);
        match self.metrics.get() {
            Some(metrics) => Arc::new(Timed {
                inner: client,
                metrics: metrics.clone(),
            }),
            None => client,
        }
    }

    fn plain_client(&self, url: &str) -> Arc<dyn Provider> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(url) {
            return c.clone();
        }
        match GrpcProvider::new(url, &self.options) {
            Ok(client) => {
                let client = Arc::new(client);
                clients.insert(url.to_string(), client.clone());
                client
            }
            Err(error) => Arc::new(Unusable(format!(
                "provider at {url} cannot be used: {error}"
            ))),
        }
    }
}

/// A provider that cannot be used: every rule is Error with the reason.
struct Unusable(String);

#[tonic::async_trait]
impl Provider for Unusable {
    async fn evaluate(
        &self,
        _targets: &std::collections::BTreeMap<String, edgeplane_api::TargetRef>,
        rule: &edgeplane_api::ConstraintPolicyRule,
    ) -> edgeplane_core::status::RuleOutcome {
        edgeplane_core::status::RuleOutcome {
            rule: rule.name.clone(),
            compliance: edgeplane_api::Compliance::Error,
            value: None,
            reason: Some(self.0.clone()),
        }
    }

    async fn endpoint_cost(
        &self,
        _request: &edgeplane_providers::CostRequest,
    ) -> Result<Vec<edgeplane_providers::NodeCost>, edgeplane_providers::ProviderError> {
        Err(edgeplane_providers::ProviderError::Failed(self.0.clone()))
    }
}

/// Evaluates every rule of every policy for a binding, at most
/// [`Providers::DEFAULT_CONCURRENCY`] at once, in policy and rule order; a missing policy
/// is an outcome in Error. The same as [`Providers::evaluate_binding`], with boxed futures
/// so that the whole is `Send` inside a controller's reconcile.
pub async fn evaluate_binding(
    providers: &Providers,
    targets: &std::collections::BTreeMap<String, edgeplane_api::TargetRef>,
    policies: &[edgeplane_providers::PolicyInput<'_>],
) -> Vec<edgeplane_core::status::PolicyOutcome> {
    use futures::StreamExt;
    let mut calls: Vec<futures::future::BoxFuture<'_, edgeplane_core::status::RuleOutcome>> =
        Vec::new();
    for rule in policies
        .iter()
        .flat_map(|p| p.spec.into_iter().flat_map(|s| s.rules.iter()))
    {
        calls.push(Box::pin(providers.evaluate(targets, rule)));
    }
    let mut outcomes = futures::stream::iter(calls)
        .buffered(Providers::DEFAULT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter();
    policies
        .iter()
        .map(|p| match p.spec {
            Some(spec) => edgeplane_core::status::PolicyOutcome {
                policy: p.name.to_string(),
                rules: outcomes.by_ref().take(spec.rules.len()).collect(),
                error: None,
            },
            None => edgeplane_core::status::PolicyOutcome {
                policy: p.name.to_string(),
                rules: Vec::new(),
                error: Some(format!("policy {} does not exist", p.name)),
            },
        })
        .collect()
}
