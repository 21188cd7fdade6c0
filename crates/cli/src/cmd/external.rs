//! External providers named on the command line (`--provider RULE=URL`), shared by the
//! commands that evaluate or plan.

use std::collections::BTreeMap;

use edgeplane_core::planner::{CostError, CostQuery, ExternalCosts, NodeCosts, PodKey};
use edgeplane_core::values::parse_duration_field;
use edgeplane_providers::{ClientOptions, GrpcProvider, planner_costs};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ProviderArgs {
    /// An external provider for a rule, as RULE=URL (for example
    /// gpu-temperature=http://127.0.0.1:50051); repeatable. It answers instead of the
    /// built-in provider of that rule.
    #[arg(long = "provider", value_name = "RULE=URL")]
    pub providers: Vec<String>,
    /// How long an external provider may take to answer one call.
    #[arg(
        long = "provider-timeout",
        default_value = "5s",
        value_name = "DURATION"
    )]
    pub provider_timeout: String,
}

/// The parsed `--provider` flags.
#[derive(Clone, Debug, Default)]
pub struct External {
    /// `(rule, url)` in order; a rule given twice keeps the last URL.
    pub providers: Vec<(String, String)>,
    pub options: ClientOptions,
}

impl ProviderArgs {
    /// Parses the flags; the error is the message to print.
    pub fn parse(&self) -> Result<External, String> {
        let mut providers: Vec<(String, String)> = Vec::new();
        for spec in &self.providers {
            let parsed = spec
                .split_once('=')
                .map(|(rule, url)| (rule.trim(), url.trim()))
                .filter(|(rule, url)| !rule.is_empty() && !url.is_empty());
            let Some((rule, url)) = parsed else {
                return Err(format!(
                    "--provider {spec:?}: expected RULE=URL, for example latency=http://127.0.0.1:50051"
                ));
            };
            providers.retain(|(r, _)| r != rule);
            providers.push((rule.to_string(), url.to_string()));
        }
        let timeout = match parse_duration_field(&self.provider_timeout) {
            Ok(t) if !t.is_zero() => t,
            Ok(_) => return Err("--provider-timeout: must be longer than 0".into()),
            Err(e) => return Err(format!("--provider-timeout: {e}")),
        };
        // Connecting may take as long as a call: a slow network is not a broken provider.
        let options = ClientOptions {
            timeout,
            connect_timeout: timeout,
            ..ClientOptions::default()
        };
        Ok(External { providers, options })
    }
}

/// Asks external providers' `EndpointCost` for the planner, one blocking call at a time
/// (the planner's cache makes identical questions of replicas one call).
pub struct GrpcCosts {
    runtime: tokio::runtime::Runtime,
    clients: BTreeMap<String, GrpcProvider>,
}

impl GrpcCosts {
    pub fn new(external: &External) -> Result<GrpcCosts, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the provider client: {e}"))?;
        let mut clients = BTreeMap::new();
        for (rule, url) in &external.providers {
            // GrpcProvider::new needs a runtime context.
            let client = runtime
                .block_on(async { GrpcProvider::new(url, &external.options) })
                .map_err(|e| format!("--provider {rule}={url}: {e}"))?;
            clients.insert(rule.clone(), client);
        }
        Ok(GrpcCosts { runtime, clients })
    }
}

impl ExternalCosts for GrpcCosts {
    fn endpoint_cost(
        &mut self,
        source: &PodKey,
        query: &CostQuery,
    ) -> Result<NodeCosts, CostError> {
        let client = self
            .clients
            .get(&query.rule)
            .ok_or_else(|| CostError::NoProvider {
                rule: query.rule.clone(),
            })?;
        self.runtime
            .block_on(planner_costs(client, source, query))
            .map_err(|e| CostError::Provider(e.to_string()))
    }
}
