//! `edgeplane check`: validate manifests and show the bindings each offer would create.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use edgeplane_core::offers;
use serde::Serialize;

use crate::input;
use crate::output::{Format, Table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files, directories or `-` (standard input) holding Kubernetes manifests.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// One binding an offer would create (the JSON output).
#[derive(Serialize, Debug, PartialEq)]
pub struct BindingView {
    pub name: String,
    /// `namespace/name` of the offer.
    pub offer: String,
    /// Role -> `Kind namespace/name`.
    pub targets: BTreeMap<String, String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let snapshot = match input::read_snapshot(&args.files) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let inventory = snapshot.inventory();
    // Each binding with its offer's roles, to print targets in role order.
    let mut views: Vec<(Vec<String>, BindingView)> = Vec::new();
    let mut problems = Vec::new();
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
        match offers::expand(offer, &inventory) {
            Ok(bindings) => {
                let roles: Vec<String> = (0..offer.spec.targets.len())
                    .map(|i| offers::role_name(offer, i))
                    .collect();
                let mut found: Vec<(Vec<String>, BindingView)> = bindings
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
                        };
                        (key, view)
                    })
                    .collect();
                found.sort_by(|a, b| a.0.cmp(&b.0));
                views.extend(found.into_iter().map(|(_, v)| (roles.clone(), v)));
            }
            Err(e) => {
                eprintln!("error: offer {offer_key}: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    for problem in &problems {
        eprintln!("warning: {problem}");
    }
    let count = views.len();
    match args.output {
        Format::Json => {
            let list: Vec<&BindingView> = views.iter().map(|(_, v)| v).collect();
            println!("{}", serde_json::to_string_pretty(&list)?)
        }
        Format::Yaml => {
            let list: Vec<&BindingView> = views.iter().map(|(_, v)| v).collect();
            print!("{}", serde_saphyr::to_string(&list)?)
        }
        Format::Table => {
            let mut table = Table::new(["OFFER", "BINDING", "TARGETS"]);
            for (roles, v) in &views {
                let targets: Vec<String> = roles
                    .iter()
                    .filter_map(|r| v.targets.get(r).map(|t| format!("{r}={t}")))
                    .collect();
                table.row([v.offer.clone(), v.name.clone(), targets.join(", ")]);
            }
            print!("{table}");
            eprintln!(
                "{} policies, {} offers, {} pods, {} nodes checked; {} bindings",
                snapshot.policies.len(),
                snapshot.offers.len(),
                snapshot.pods.len(),
                snapshot.nodes.len(),
                count
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
