//! Routing rules to providers and evaluating whole bindings.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgeplane_api::ConstraintPolicyRule;
use edgeplane_api::{Compliance, ConstraintPolicySpec, TargetRef};
use edgeplane_core::status::{PolicyOutcome, RuleOutcome};
use futures::StreamExt;

use crate::provider::{CostRequest, NodeCost, Provider, ProviderError};

/// One policy of an offer, as found (or not) where the binding lives.
#[derive(Clone, Copy, Debug)]
pub struct PolicyInput<'a> {
    pub name: &'a str,
    /// `None` when the policy does not exist.
    pub spec: Option<&'a ConstraintPolicySpec>,
}

/// The providers of every rule: an external provider registered for a rule name wins;
/// otherwise the built-in provider answers (with `no provider for rule X` for names it
/// does not know).
#[derive(Clone)]
pub struct Providers {
    builtin: Option<Arc<dyn Provider>>,
    external: BTreeMap<String, Arc<dyn Provider>>,
    concurrency: usize,
}

impl Providers {
    /// Rules evaluated at once by [`Providers::evaluate_binding`] unless set otherwise.
    pub const DEFAULT_CONCURRENCY: usize = 16;

    pub fn new(builtin: Arc<dyn Provider>) -> Providers {
        Providers {
            builtin: Some(builtin),
            external: BTreeMap::new(),
            concurrency: Self::DEFAULT_CONCURRENCY,
        }
    }

    /// No built-in provider: only the external ones answer.
    pub fn external_only() -> Providers {
        Providers {
            builtin: None,
            external: BTreeMap::new(),
            concurrency: Self::DEFAULT_CONCURRENCY,
        }
    }

    /// Registers the provider of `rule`, replacing any before it.
    pub fn insert_external(&mut self, rule: impl Into<String>, provider: Arc<dyn Provider>) {
        self.external.insert(rule.into(), provider);
    }

    /// How many rules one binding evaluates at once (at least 1).
    pub fn with_concurrency(mut self, concurrency: usize) -> Providers {
        self.concurrency = concurrency.max(1);
        self
    }

    /// The rules that have an external provider.
    pub fn external_rules(&self) -> impl Iterator<Item = &str> {
        self.external.keys().map(String::as_str)
    }

    /// The provider that answers for `rule`.
    pub fn provider_for(&self, rule: &str) -> Option<&Arc<dyn Provider>> {
        self.external.get(rule).or(self.builtin.as_ref())
    }

    /// Evaluates one rule through its provider.
    pub async fn evaluate(
        &self,
        targets: &BTreeMap<String, TargetRef>,
        rule: &ConstraintPolicyRule,
    ) -> RuleOutcome {
        match self.provider_for(&rule.name) {
            Some(provider) => provider.evaluate(targets, rule).await,
            None => RuleOutcome {
                rule: rule.name.clone(),
                compliance: Compliance::Error,
                value: None,
                reason: Some(format!("no provider for rule {}", rule.name)),
            },
        }
    }

    /// Evaluates every rule of every policy for a binding, at most `concurrency` at once,
    /// and returns the outcomes in policy and rule order. A missing policy is an outcome
    /// in Error.
    pub async fn evaluate_binding(
        &self,
        targets: &BTreeMap<String, TargetRef>,
        policies: &[PolicyInput<'_>],
    ) -> Vec<PolicyOutcome> {
        let rules: Vec<&ConstraintPolicyRule> = policies
            .iter()
            .flat_map(|p| p.spec.into_iter().flat_map(|s| s.rules.iter()))
            .collect();
        let mut outcomes =
            futures::stream::iter(rules.into_iter().map(|r| self.evaluate(targets, r)))
                .buffered(self.concurrency)
                .collect::<Vec<_>>()
                .await
                .into_iter();
        policies
            .iter()
            .map(|p| match p.spec {
                Some(spec) => PolicyOutcome {
                    policy: p.name.to_string(),
                    rules: outcomes.by_ref().take(spec.rules.len()).collect(),
                    error: None,
                },
                None => PolicyOutcome {
                    policy: p.name.to_string(),
                    rules: Vec::new(),
                    error: Some(format!("policy {} does not exist", p.name)),
                },
            })
            .collect()
    }

    /// Scores nodes through the rule's provider.
    pub async fn endpoint_cost(
        &self,
        request: &CostRequest,
    ) -> Result<Vec<NodeCost>, ProviderError> {
        match self.provider_for(&request.rule.name) {
            Some(provider) => provider.endpoint_cost(request).await,
            None => Err(ProviderError::NoProvider(request.rule.name.clone())),
        }
    }
}
