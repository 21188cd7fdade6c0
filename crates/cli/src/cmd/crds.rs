//! `edgeplane crds`: print the CRDs generated from the Rust types.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use edgeplane_api::crdgen;

use crate::output::ManifestFormat;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write one file per CRD into these directories instead of printing them (this is
    /// how deploy/crds/ and the chart's crds/ are generated:
    /// `edgeplane crds -d deploy/crds -d deploy/helm/edgeplane/crds`).
    #[arg(short = 'd', long = "output-dir")]
    pub output_dirs: Vec<PathBuf>,
    /// Output format of the printed CRDs (`name`: one
    /// `customresourcedefinition.apiextensions.k8s.io/NAME` a line).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ManifestFormat::Yaml,
          conflicts_with = "output_dirs")]
    pub output: ManifestFormat,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let crds = crdgen::all();
    if args.output_dirs.is_empty() {
        crate::output::print_manifests(args.output, &crds)?;
    }
    for dir in args.output_dirs {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for crd in &crds {
            let path = dir.join(crdgen::file_name(crd));
            let yaml = crdgen::to_yaml(std::slice::from_ref(crd))?;
            std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
