//! `edgeplane crds`: print the CRDs generated from the Rust types.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    let yaml = edgeplane_api::crdgen::to_yaml(&edgeplane_api::crdgen::all())?;
    print!("{yaml}");
    Ok(ExitCode::SUCCESS)
}
