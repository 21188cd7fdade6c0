//! `edgeplane check`: validate manifests, show the bindings each offer would create (over
//! Pods and the pods of Deployments, StatefulSets, ReplicaSets and VirtualMachines, as
//! `plan` expands them), and, when pods are placed (`spec.nodeName`), evaluate every
//! binding through the providers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use edgeplane_api::{Compliance, TargetRef};
use edgeplane_core::evaluate::Unlocated;
use edgeplane_core::outcome::Outcome;
use edgeplane_core::status::{PolicyOutcome, next_status};
use edgeplane_core::{offers, workloads};
use edgeplane_providers::{BuiltinProvider, GrpcProvider, PolicyInput, Providers};
use serde::Serialize;

use super::external::{External, ProviderArgs};
use super::fail_on::FailOnArgs;
use super::world::World;
use crate::output::{Format, Table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files, directories or `-` (standard input) holding Kubernetes manifests.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Output format, as `kubectl get -o`: the bindings table (`wide` adds each offer's
    /// policies and, when evaluated, each binding's reason), their names, or JSON or YAML.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub output: Format,
    #[command(flatten)]
    pub external: ProviderArgs,
    #[command(flatten)]
    pub fail_on: FailOnArgs,
    /// Fields an object's kind does not have (`spec.bogus`): an error (strict, as
    /// `kubectl apply`), a warning, or ignored. Kinds edgeplane has no schema for (other
    /// projects' custom resources) are not checked.
    #[arg(long, value_enum, default_value_t = crate::input::ValidateArg::Strict)]
    pub validate: crate::input::ValidateArg,
}

/// One binding an offer would create (the JSON output).
#[derive(Serialize, Debug, PartialEq)]
pub struct BindingView {
    pub name: String,
    /// `namespace/name` of the offer.
    pub offer: String,
    /// Role -> `Kind namespace/name`.
    pub targets: BTreeMap<String, String>,
    /// The binding's compliance, when placed pods were evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compliance: Option<Compliance>,
    /// The reason of the first rule at the binding's compliance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Per policy, per rule results, when evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<RuleView>>,
}

/// One rule of one policy of a binding.
#[derive(Serialize, Debug, PartialEq)]
pub struct RuleView {
    pub policy: String,
    /// Absent when the policy itself could not be used.
    pub rule: Option<String>,
    pub value: Option<String>,
    pub compliance: Compliance,
    pub reason: Option<String>,
}

/// A binding with what evaluation needs.
struct Found {
    /// The offer's roles, to print targets in role order.
    roles: Vec<String>,
    view: BindingView,
    targets: BTreeMap<String, TargetRef>,
    namespace: String,
    policies: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let usage = |message: String| {
        eprintln!("error: {message}");
        Ok(ExitCode::from(2))
    };
    let world = match World::read(&args.files, args.validate) {
        Ok(w) => w,
        Err(e) => return usage(e),
    };
    let External {
        providers: external,
        options,
    } = match args.external.parse() {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let snapshot = &world.snapshot;
    let (mut cluster, graph_warnings) = match world.view() {
        Ok(v) => v,
        Err(e) => return usage(e),
    };
    if let Err(e) = world.check_catalogues(cluster.graph()) {
        return usage(e);
    }
    // Offers select the pods of Deployments, StatefulSets, ReplicaSets and VMs too, as
    // `plan` and the offer controller see them once created; until then they are there
    // and not placed (their bindings Pending "not placed yet", not "does not exist").
    let workloads = workloads::workloads(snapshot);
    let inventory = workloads::inventory(snapshot, &workloads);
    let without_node = workloads.iter().map(|w| w.pods.len()).sum();
    for pod in workloads.iter().flat_map(|w| &w.pods) {
        let target = TargetRef::pod(&pod.key.namespace, &pod.key.name);
        if cluster.locate(&target) == Err(Unlocated::NoSuchPod) {
            cluster.place(&pod.key.namespace, &pod.key.name, None);
        }
    }
    let index = offers::PodIndex::new(&inventory);
    let mut found: Vec<Found> = Vec::new();
    let mut problems = world.warnings();
    problems.extend(graph_warnings);
    for offer in &snapshot.offers {
        let namespace = offer.metadata.namespace.as_deref().unwrap_or("default");
        let offer_key = format!(
            "{namespace}/{}",
            offer.metadata.name.as_deref().unwrap_or_default()
        );
        for policy in &offer.spec.policies {
            if snapshot.policy(namespace, policy).is_none() {
                problems.push(format!(
                    "offer {offer_key}: policy {policy:?} is not in the input"
                ));
            }
        }
        let bindings = match offers::expand_indexed(offer, &inventory, &index) {
            Ok(b) => b,
            Err(e) => return usage(format!("offer {offer_key}: {e}")),
        };
        let roles: Vec<String> = (0..offer.spec.targets.len())
            .map(|i| offers::role_name(offer, i))
            .collect();
        let mut these: Vec<(Vec<String>, Found)> = bindings
            .into_iter()
            .map(|b| {
                // Sort by the targets in role order: renderer-0, renderer-1, ...
                let key = roles
                    .iter()
                    .filter_map(|r| b.targets.get(r).map(|t| t.name.clone()))
                    .collect();
                let view = BindingView {
                    name: b.name,
                    offer: offer_key.clone(),
                    targets: b
                        .targets
                        .iter()
                        .map(|(role, t)| (role.clone(), t.to_string()))
                        .collect(),
                    compliance: None,
                    reason: None,
                    rules: None,
                };
                let found = Found {
                    roles: roles.clone(),
                    view,
                    targets: b.targets,
                    namespace: namespace.to_string(),
                    policies: offer.spec.policies.clone(),
                };
                (key, found)
            })
            .collect();
        these.sort_by(|a, b| a.0.cmp(&b.0));
        found.extend(these.into_iter().map(|(_, f)| f));
    }

    // Evaluate when some pod is placed, or when asked to through an external provider.
    let placed = snapshot
        .pods
        .iter()
        .any(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()));
    let evaluate = placed || !external.is_empty();
    if evaluate {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let builtin = Arc::new(BuiltinProvider::new(Arc::new(cluster)));
        let result: Result<(), String> = runtime.block_on(async {
            let mut providers = Providers::new(builtin);
            for (rule, url) in &external {
                let client = GrpcProvider::new(url, &options)
                    .map_err(|e| format!("--provider {rule}={url}: {e}"))?;
                providers.insert_external(rule.clone(), Arc::new(client));
            }
            let jobs = found.iter().map(|f| {
                let inputs: Vec<PolicyInput<'_>> = f
                    .policies
                    .iter()
                    .map(|name| PolicyInput {
                        name,
                        spec: snapshot.policy(&f.namespace, name).map(|p| &p.spec),
                    })
                    .collect();
                let providers = &providers;
                async move { providers.evaluate_binding(&f.targets, &inputs).await }
            });
            let outcomes: Vec<Vec<PolicyOutcome>> = futures::future::join_all(jobs).await;
            for (f, outcomes) in found.iter_mut().zip(outcomes) {
                record(&mut f.view, &outcomes);
            }
            Ok(())
        });
        if let Err(e) = result {
            return usage(e);
        }
    }

    for problem in &problems {
        eprintln!("warning: {problem}");
    }
    let list: Vec<&BindingView> = found.iter().map(|f| &f.view).collect();
    crate::output::print_list(
        args.output,
        &list,
        |v| format!("{BINDING_RESOURCE}/{}", v.name),
        |wide| tables(&found, evaluate, wide),
    )?;
    if args.output.is_table() {
        let mut summary = format!(
            "{} policies, {} offers, {} pods, {} nodes, {} sites checked; {} bindings",
            snapshot.policies.len(),
            snapshot.offers.len(),
            inventory.pods.len(),
            snapshot.nodes.len(),
            inventory.sites.len(),
            found.len()
        );
        if evaluate {
            let counts: Vec<String> = Compliance::ALL
                .iter()
                .map(|c| (c, list.iter().filter(|v| v.compliance == Some(*c)).count()))
                .filter(|(_, n)| *n > 0)
                .map(|(c, n)| format!("{n} {c}"))
                .collect();
            if !counts.is_empty() {
                summary.push_str(&format!(": {}", counts.join(", ")));
            }
        }
        eprintln!("{summary}");
    }
    let mut outcome = Outcome::from_compliance(list.iter().filter_map(|v| v.compliance));
    outcome.unplaced = without_node;
    Ok(args.fail_on.exit_code(&outcome))
}

/// Fills a binding's view from its evaluation: compliance and first reason as the binding
/// controller would write them, and one row per rule.
fn record(view: &mut BindingView, outcomes: &[PolicyOutcome]) {
    let status = next_status(
        None,
        outcomes,
        jiff::Timestamp::UNIX_EPOCH,
        std::time::Duration::ZERO,
        None,
    )
    .status;
    view.compliance = Some(status.compliance);
    view.reason = status.first_reason;
    let mut rows = Vec::new();
    for policy in outcomes {
        if let Some(error) = &policy.error {
            rows.push(RuleView {
                policy: policy.policy.clone(),
                rule: None,
                value: None,
                compliance: Compliance::Error,
                reason: Some(error.clone()),
            });
        }
        for rule in &policy.rules {
            rows.push(RuleView {
                policy: policy.policy.clone(),
                rule: Some(rule.rule.clone()),
                value: rule.value.clone(),
                compliance: rule.compliance,
                reason: rule.reason.clone(),
            });
        }
    }
    view.rules = Some(rows);
}

/// A binding's `-o name` prefix: its resource and group, as kubectl prints them.
const BINDING_RESOURCE: &str = "constraintpolicybinding.constraint.edgeplane.io";

/// The bindings table and, when evaluated, the rules table; `wide` adds each offer's
/// policies and each binding's reason.
fn tables(found: &[Found], evaluated: bool, wide: bool) -> String {
    let targets = |f: &Found| {
        f.roles
            .iter()
            .filter_map(|r| f.view.targets.get(r).map(|t| format!("{r}={t}")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = |c: Option<Compliance>| c.map(|c| c.to_string()).unwrap_or_default();
    let mut headers = vec!["OFFER", "BINDING", "TARGETS"];
    if wide {
        headers.push("POLICIES");
    }
    if evaluated {
        headers.push("COMPLIANCE");
        if wide {
            headers.push("REASON");
        }
    }
    let mut bindings = Table::new(headers);
    for f in found {
        let mut row = vec![f.view.offer.clone(), f.view.name.clone(), targets(f)];
        if wide {
            row.push(f.policies.join(","));
        }
        if evaluated {
            row.push(text(f.view.compliance));
            if wide {
                row.push(f.view.reason.clone().unwrap_or_default());
            }
        }
        bindings.row(row);
    }
    if !evaluated {
        return bindings.to_string();
    }
    let mut rules = Table::new(["BINDING", "POLICY", "RULE", "VALUE", "COMPLIANCE", "REASON"]);
    for f in found {
        for r in f.view.rules.iter().flatten() {
            rules.row([
                f.view.name.clone(),
                r.policy.clone(),
                r.rule.clone().unwrap_or_else(|| "-".into()),
                r.value.clone().unwrap_or_else(|| "-".into()),
                r.compliance.to_string(),
                r.reason.clone().unwrap_or_default(),
            ]);
        }
    }
    format!("{bindings}\n{rules}")
}
