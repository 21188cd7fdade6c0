//! Results usable in CI: `--fail-on` on `check`, `plan` and `sim`, and a scenario's
//! `expect:`, exit 3 when they hold; 2 stays "invalid input".

#![allow(clippy::unwrap_used)] // tests unwrap what they built

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn edgeplane(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run edgeplane: {e}"));
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = edgeplane(args, b"");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lines of stderr that say why the run failed.
fn failures(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("failed (") || l.starts_with("expectation failed"))
        .collect()
}

#[test]
fn check_fails_on_the_conditions_asked_for() {
    // examples/metro: 5 Compliant, 4 Limit, 3 Violation.
    let (code, stderr) = run(&["check", "-f", "examples/metro", "--fail-on", "violation"]);
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(
        failures(&stderr),
        ["failed (--fail-on violation): 3 bindings in Violation"]
    );
    let (code, stderr) = run(&[
        "check",
        "-f",
        "examples/metro",
        "--fail-on",
        "limit,error",
        "--fail-on",
        "violation",
    ]);
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(
        failures(&stderr),
        [
            "failed (--fail-on violation): 3 bindings in Violation",
            "failed (--fail-on limit): 4 bindings in Limit"
        ]
    );
    let (code, stderr) = run(&["check", "-f", "examples/metro", "--fail-on", "error"]);
    assert_eq!(code, Some(0), "{stderr}");
    // Pods of workloads have no node until planned.
    let (code, stderr) = run(&[
        "check",
        "-f",
        "examples/metro-plan",
        "--fail-on",
        "unplaced",
    ]);
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(
        failures(&stderr),
        ["failed (--fail-on unplaced): 7 pods without a node"]
    );
}

#[test]
fn invalid_input_stays_2_and_an_unknown_condition_is_invalid() {
    let (code, stderr) = run(&[
        "check",
        "-f",
        "tests/invalid/bad-grace.yaml",
        "--fail-on",
        "violation",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, stderr) = run(&["check", "-f", "examples/metro", "--fail-on", "warning"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value 'warning' for '--fail-on"),
        "{stderr}"
    );
}

#[test]
fn plan_fails_on_limit_and_unplaced() {
    let (code, stderr) = run(&[
        "plan",
        "-f",
        "examples/metro-plan",
        "--fail-on",
        "violation,unplaced",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run(&["plan", "-f", "examples/metro-plan", "--fail-on", "limit"]);
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(
        failures(&stderr),
        ["failed (--fail-on limit): 2 bindings in Limit"]
    );
    // A pod no node can hold.
    let huge = b"apiVersion: v1\nkind: Pod\nmetadata: {name: huge, namespace: ar}\nspec:\n  containers: [{name: c, image: i, resources: {requests: {cpu: \"512\"}}}]\n";
    let out = edgeplane(
        &[
            "plan",
            "-f",
            "examples/metro-plan",
            "-f",
            "-",
            "--fail-on",
            "unplaced",
        ],
        huge,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        failures(&stderr),
        ["failed (--fail-on unplaced): 1 pod without a node"]
    );
    // The manifests are still written: the plan is usable, the condition is the news.
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: huge"));
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeplane-fail-on-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A scenario on examples/scenarios/node-failure's files, with `expect` as given.
fn node_failure_with(dir: &Path, expect: &str) -> PathBuf {
    let example = repo().join("examples/scenarios/node-failure");
    let text = format!(
        "apiVersion: sim.edgeplane.io/v1alpha1\nkind: Scenario\nmetadata: {{name: expectations}}\nspec:\n  duration: 30m\n  include:\n  - {}\n  - {}\n  - {}\n  events:\n  - {{at: 10m, failNode: edge-1-b}}\n{expect}",
        example.join("topology.yaml").display(),
        example.join("nodes.yaml").display(),
        example.join("app.yaml").display(),
    );
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn sim_exits_3_naming_the_expectation_that_failed() {
    let dir = scratch("expect");
    let met = node_failure_with(
        &dir,
        "  expect:\n    podsUnplaced: 0\n    evictions: \"<= 0\"\n    bindings: {Violation: 0, Compliant: \">= 1\"}\n",
    );
    let (code, stderr) = run(&["sim", "-q", met.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");

    let unmet = node_failure_with(
        &dir,
        "  expect:\n    mitigations: \">= 1\"\n    podsUnplaced: 0\n    bindings: {Violation: 1}\n",
    );
    let out = edgeplane(&["sim", "-q", unmet.to_str().unwrap()], b"");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert_eq!(
        failures(&stderr),
        [
            "expectation failed: spec.expect.mitigations: expected >= 1, got 0",
            "expectation failed: spec.expect.bindings.Violation: expected 1, got 0",
        ]
    );
    assert!(stdout.contains("  expected   1 of 3 met"), "{stdout}");

    let bad = node_failure_with(&dir, "  expect:\n    mitigations: about 3\n");
    let (code, stderr) = run(&["sim", "-q", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "spec.expect.mitigations: \"about 3\" is not a count (expected for example 3, \">= 3\" or \"<= 3\")"
        ),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_fails_on_the_final_counts() {
    let dir = scratch("sim");
    let path = node_failure_with(&dir, "");
    let (code, stderr) = run(&[
        "sim",
        "-q",
        path.to_str().unwrap(),
        "--fail-on",
        "violation,unplaced",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run(&[
        "sim",
        "-q",
        path.to_str().unwrap(),
        "--fail-on",
        "error,limit",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exit_statuses_are_in_the_help() {
    for command in ["check", "plan", "sim"] {
        let out = edgeplane(&[command, "--help"], b"");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("Exit status: 0 done; 1 the command itself failed; 2 invalid input; 3 a --fail-on condition held"),
            "{command}: {help}"
        );
    }
}
