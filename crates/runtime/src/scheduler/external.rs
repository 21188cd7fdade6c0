//! External providers in a plan run: found from Services (`constraint.edgeplane.io/
//! provider-<rule>: enabled`) or given explicitly, asked for their node costs before the
//! planner runs.
//!
//! The planner's [`fill_external_costs`] asks through the synchronous [`ExternalCosts`]
//! trait; the scheduler is async and must not block its runtime on gRPC. So a run first
//! records the questions the planner will ask ([`questions`]: `fill_external_costs` on a
//! copy of the input with a recorder), asks each distinct one once, concurrently
//! ([`ask`]), and then fills the real input from the answers ([`Answers`]). A provider
//! that fails puts its rule in Error for the plan (it then does not constrain it), as in
//! the offline planner.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use edgeplane_core::planner::{
    CostError, CostQuery, ExternalCosts, NodeCosts, PlanInput, PodKey, RuleProvider,
    fill_external_costs,
};
use edgeplane_providers::discovery::providers_from_services;
use edgeplane_providers::{ClientOptions, GrpcProvider, Provider, planner_costs};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;

use crate::metrics::providers::{ProviderMetrics, Timed};

/// Questions asked at once in a run.
const CONCURRENCY: usize = 16;

/// The external providers of the scheduler: explicit ones, and those registered by
/// Services (clients are kept per URL across runs).
pub struct ExternalProviders {
    explicit: BTreeMap<String, Arc<dyn Provider>>,
    options: ClientOptions,
    clients: Mutex<HashMap<String, Arc<GrpcProvider>>>,
    /// When set, calls are timed and counted.
    metrics: Option<ProviderMetrics>,
}

impl std::fmt::Debug for ExternalProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalProviders")
            .field("explicit", &self.explicit.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ExternalProviders {
    pub fn new(options: ClientOptions) -> ExternalProviders {
        ExternalProviders {
            explicit: BTreeMap::new(),
            options,
            clients: Mutex::new(HashMap::new()),
            metrics: None,
        }
    }

    /// Times and counts the providers' calls in `metrics`.
    pub fn with_metrics(mut self, metrics: ProviderMetrics) -> ExternalProviders {
        self.metrics = Some(metrics);
        self
    }

    /// The provider of `rule`, instead of any Service that registers one.
    pub fn insert(&mut self, rule: impl Into<String>, provider: Arc<dyn Provider>) {
        self.explicit.insert(rule.into(), provider);
    }

    /// The provider of every external rule: the explicit ones, then those registered by
    /// `services`. Must be called inside a Tokio runtime (clients connect lazily).
    pub fn resolve(&self, services: &[Arc<Service>]) -> BTreeMap<String, Arc<dyn Provider>> {
        let mut out = self.explicit.clone();
        let services: Vec<Service> = services.iter().map(|s| (**s).clone()).collect();
        let (found, problems) = providers_from_services(&services);
        for problem in problems {
            tracing::debug!(%problem, "provider registration ignored");
        }
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        for p in found {
            if out.contains_key(&p.rule) {
                continue;
            }
            let client = match clients.get(&p.url) {
                Some(c) => c.clone(),
                None => match GrpcProvider::new(&p.url, &self.options) {
                    Ok(c) => {
                        let c = Arc::new(c);
                        clients.insert(p.url.clone(), c.clone());
                        c
                    }
                    Err(error) => {
                        tracing::warn!(rule = %p.rule, service = %p.service, %error, "provider registration ignored");
                        continue;
                    }
                },
            };
            out.insert(p.rule, client as Arc<dyn Provider>);
        }
        if let Some(metrics) = &self.metrics {
            for provider in out.values_mut() {
                *provider = Arc::new(Timed {
                    inner: provider.clone(),
                    metrics: metrics.clone(),
                });
            }
        }
        out
    }
}

/// Records the questions [`fill_external_costs`] asks.
#[derive(Default)]
struct Recorder {
    questions: Vec<(PodKey, CostQuery)>,
}

impl ExternalCosts for Recorder {
    fn endpoint_cost(
        &mut self,
        source: &PodKey,
        query: &CostQuery,
    ) -> Result<NodeCosts, CostError> {
        self.questions.push((source.clone(), query.clone()));
        Ok(BTreeMap::new())
    }
}

/// Whether the input has an external rule with a table to fill.
pub fn has_external_rules(input: &PlanInput<'_>) -> bool {
    input.bindings.iter().any(|b| {
        b.rules.iter().any(
            |r| matches!(&r.provider, RuleProvider::External(e) if e.error.is_none() && e.costs.is_empty()),
        )
    })
}

/// The distinct questions the planner will ask about `input`, each with the first pod
/// that asks it.
pub fn questions(input: &PlanInput<'_>) -> Vec<(PodKey, CostQuery)> {
    if !has_external_rules(input) {
        return Vec::new();
    }
    let mut copy = input.clone();
    let mut recorder = Recorder::default();
    fill_external_costs(&mut copy, &mut recorder);
    let mut seen = HashSet::new();
    recorder
        .questions
        .into_iter()
        .filter(|(_, q)| seen.insert(q.clone()))
        .collect()
}

/// The providers' answers, by question.
#[derive(Clone, Debug, Default)]
pub struct Answers {
    answers: HashMap<CostQuery, Result<NodeCosts, CostError>>,
}

impl Answers {
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }
}

impl ExternalCosts for Answers {
    fn endpoint_cost(
        &mut self,
        _source: &PodKey,
        query: &CostQuery,
    ) -> Result<NodeCosts, CostError> {
        self.answers.get(query).cloned().unwrap_or_else(|| {
            Err(CostError::NotAsked {
                rule: query.rule.clone(),
            })
        })
    }
}

/// Asks every question of its rule's provider, [`CONCURRENCY`] at a time.
pub async fn ask(
    providers: &BTreeMap<String, Arc<dyn Provider>>,
    questions: Vec<(PodKey, CostQuery)>,
) -> Answers {
    let answers = futures::stream::iter(questions)
        .map(|(source, query)| async move {
            let answer = match providers.get(&query.rule) {
                None => Err(CostError::NoProvider {
                    rule: query.rule.clone(),
                }),
                Some(provider) => planner_costs(provider.as_ref(), &source, &query)
                    .await
                    .map_err(|e| CostError::Provider(e.to_string())),
            };
            (query, answer)
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<HashMap<_, _>>()
        .await;
    Answers { answers }
}
