//! The `edgeplane` binary, run as a user would run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn edgeplane(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(args)
        .current_dir(repo())
        .output();
    match output {
        Ok(o) => o,
        Err(e) => panic!("cannot run edgeplane: {e}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

mod check {
    use super::*;

    /// Every malformed manifest under tests/invalid is rejected with exit status 2 and the
    /// message its first line expects; nothing panics.
    #[test]
    fn invalid_manifests_are_rejected_with_located_messages() {
        let dir = repo().join("tests/invalid");
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        assert!(
            entries.len() >= 15,
            "expected the malformed examples in {}",
            dir.display()
        );
        for path in entries {
            let content = std::fs::read_to_string(&path).unwrap_or_default();
            let expected = content
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .map(str::trim);
            let Some(expected) = expected else {
                panic!("{}: first line must be `# expect: ...`", path.display())
            };
            let relative = format!(
                "tests/invalid/{}",
                path.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
            );
            let out = edgeplane(&["check", "-f", &relative]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{relative}: {stderr}");
            assert!(!stderr.contains("panicked"), "{relative}: {stderr}");
            let wanted = format!("error: tests/invalid/{expected}");
            assert!(
                stderr.starts_with(&wanted),
                "{relative}:\n  expected: {wanted}\n  got:      {stderr}"
            );
        }
    }

    #[test]
    fn examples_give_the_expected_bindings() {
        let out = edgeplane(&[
            "check",
            "-f",
            "examples/ar-app",
            "-f",
            "examples/turnbuckle",
            "-o",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let bindings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let list = bindings.as_array().cloned().unwrap_or_default();
        let count = |offer: &str| list.iter().filter(|b| b["offer"] == offer).count();
        // 3 renderers x 1 game-state, 3 renderers x 1 ingest, 3 single renderers.
        assert_eq!(count("ar/ar-game-state"), 3);
        assert_eq!(count("ar/ar-video"), 3);
        assert_eq!(count("ar/ar-render-node"), 3);
        assert_eq!(count("default/gold-offer"), 1);
        assert_eq!(list.len(), 12);
        let gold = list
            .iter()
            .find(|b| b["offer"] == "default/gold-offer")
            .cloned()
            .unwrap_or_default();
        assert_eq!(gold["targets"]["source"], "Pod default/hello-client");
        assert_eq!(gold["targets"]["destination"], "Pod default/hello-server");
        assert!(
            gold["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("gold-offer-") && n.len() <= 63)
        );
        // Names are deterministic: a second run gives the same output.
        let again = edgeplane(&[
            "check",
            "-f",
            "examples/ar-app",
            "-f",
            "examples/turnbuckle",
            "-o",
            "json",
        ]);
        assert_eq!(again.stdout, out.stdout);
    }

    #[test]
    fn table_output_and_stdin() {
        let manifests =
            std::fs::read(repo().join("examples/turnbuckle/policies.yaml")).unwrap_or_default();
        let pods = std::fs::read(repo().join("examples/turnbuckle/hello.yaml")).unwrap_or_default();
        let mut input = manifests;
        input.extend_from_slice(b"\n---\n");
        input.extend_from_slice(&pods);
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args(["check", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin
                .write_all(&input)
                .unwrap_or_else(|e| panic!("write: {e}"));
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait: {e}"));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let header: Vec<&str> = stdout
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(header, ["OFFER", "BINDING", "TARGETS"]);
        assert!(
            stdout
                .contains("source=Pod default/hello-client, destination=Pod default/hello-server"),
            "{stdout}"
        );
        assert!(text(&out.stderr).contains("3 bindings"));
    }

    #[test]
    fn missing_file_is_an_input_error() {
        let out = edgeplane(&["check", "-f", "does/not/exist.yaml"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).starts_with("error: does/not/exist.yaml: cannot read:"));
    }
}

mod crds {
    use super::*;

    #[test]
    fn crds_prints_every_crd() {
        let out = edgeplane(&["crds"]);
        assert_eq!(out.status.code(), Some(0));
        let yaml = text(&out.stdout);
        for name in [
            "constraintpolicies.constraint.edgeplane.io",
            "constraintpolicyoffers.constraint.edgeplane.io",
            "constraintpolicybindings.constraint.edgeplane.io",
        ] {
            assert!(yaml.contains(&format!("name: {name}")), "{name} missing");
        }
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml).unwrap_or_default();
        assert!(docs.iter().all(|d| d["kind"] == "CustomResourceDefinition"));
        assert_eq!(docs.len(), edgeplane_api::crdgen::all().len());
    }

    #[test]
    fn version() {
        let out = edgeplane(&["version"]);
        assert!(text(&out.stdout).starts_with("edgeplane "));
    }
}

mod plan {
    use super::*;
    use std::io::Write;
    use std::process::Stdio;

    fn plan_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args(args)
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        if let Some(mut input) = child.stdin.take() {
            input
                .write_all(stdin)
                .unwrap_or_else(|e| panic!("write: {e}"));
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait: {e}"))
    }

    fn report_path(name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        dir.join(format!("{name}-{}.json", std::process::id()))
    }

    fn read_report(path: &Path) -> serde_json::Value {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_default()
    }

    fn docs(yaml: &str) -> Vec<serde_json::Value> {
        serde_saphyr::from_multiple(yaml).unwrap_or_default()
    }

    fn pinned(spec: &serde_json::Value) -> Vec<serde_json::Value> {
        spec.pointer(
            "/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms",
        )
        .and_then(|t| t.as_array())
        .cloned()
        .unwrap_or_default()
    }

    #[test]
    fn example_gives_pinned_manifests_and_the_report() {
        let report = report_path("metro-plan");
        let out = edgeplane(&[
            "plan",
            "-f",
            "examples/metro-plan",
            "--report",
            report.to_str().unwrap_or_default(),
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("planned 7 of 7 pods"), "{stderr}");
        let items = docs(&text(&out.stdout));
        let kinds: Vec<&str> = items.iter().filter_map(|d| d["kind"].as_str()).collect();
        // Workloads only, in input order; nodes, policies and the topology are not echoed.
        assert_eq!(
            kinds,
            ["Deployment", "StatefulSet", "VirtualMachine", "Pod", "Pod"]
        );

        let r = read_report(&report);
        let _ = std::fs::remove_file(&report);
        let summary = &r["summary"];
        for field in [
            "pods",
            "placed",
            "unplaced",
            "rulesCompliant",
            "rulesLimit",
            "rulesViolation",
            "rulesError",
            "cost",
            "optimal",
            "strategy",
            "planMillis",
        ] {
            assert!(
                summary.get(field).is_some(),
                "summary.{field} missing: {summary}"
            );
        }
        assert_eq!(summary["pods"], 7);
        assert_eq!(summary["placed"], 7);
        assert_eq!(summary["rulesViolation"], 0);
        assert_eq!(summary["optimal"], true);
        assert_eq!(summary["strategy"], "optimal");
        let assignments = r["assignments"].as_array().cloned().unwrap_or_default();
        assert_eq!(assignments.len(), 7);
        let node_of = |name: &str| {
            assignments
                .iter()
                .find(|a| a["name"] == name)
                .and_then(|a| a["node"].as_str())
                .unwrap_or_default()
                .to_string()
        };
        assert!(assignments.iter().all(|a| a["namespace"] == "ar"));

        // The Deployment is pinned to the set of its replicas' nodes.
        let terms = pinned(&items[0]["spec"]["template"]["spec"]);
        assert_eq!(terms.len(), 1);
        let values: Vec<String> = terms[0]["matchFields"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        assert_eq!(terms[0]["matchFields"][0]["key"], "metadata.name");
        assert_eq!(terms[0]["matchFields"][0]["operator"], "In");
        for i in 0..4 {
            let node = node_of(&format!("ar-render-{i}"));
            assert!(values.contains(&node), "{node} not in {values:?}");
        }
        // The VM's affinity goes into its template.
        let vm_terms = pinned(&items[2]["spec"]["template"]["spec"]);
        assert_eq!(
            vm_terms[0]["matchFields"][0]["values"][0],
            node_of("vrouter").as_str()
        );
        // Existing required terms keep their expressions and get the node ANDed in.
        let cache = pinned(&items[3]["spec"]);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache[0]["matchExpressions"][0]["operator"], "NotIn");
        assert_eq!(
            cache[0]["matchFields"][0]["values"][0],
            node_of("video-cache").as_str()
        );
        // A running pod is echoed unchanged.
        assert!(items[4]["spec"].get("affinity").is_none());
        assert_eq!(items[4]["spec"]["nodeName"], "metro-1-a");

        let bindings = r["bindings"].as_array().cloned().unwrap_or_default();
        let latency = bindings
            .iter()
            .find(|b| b["offer"] == "ar/ar-latency")
            .cloned()
            .unwrap_or_default();
        assert_eq!(latency["targets"]["users"], "Site stadium");
        assert!(
            latency["targets"]["renderer"]
                .as_str()
                .is_some_and(|t| t.starts_with("Pod ar/ar-render-"))
        );
        let rule = &latency["rules"][0];
        for field in ["policy", "rule", "value", "compliance", "cost"] {
            assert!(rule.get(field).is_some(), "rule.{field} missing: {rule}");
        }
        assert_eq!(rule["policy"], "near-users");
        assert_eq!(rule["rule"], "latency");
    }

    #[test]
    fn json_output_is_a_list_and_greedy_runs() {
        let report = report_path("greedy");
        let out = edgeplane(&[
            "plan",
            "-f",
            "examples/metro-plan",
            "-o",
            "json",
            "--strategy",
            "greedy",
            "--report",
            report.to_str().unwrap_or_default(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"].as_array().map(Vec::len), Some(5));
        let r = read_report(&report);
        let _ = std::fs::remove_file(&report);
        assert_eq!(r["summary"]["strategy"], "greedy");
        assert_eq!(r["summary"]["optimal"], false);
    }

    /// `helm template ... | edgeplane plan -f - -f cluster/`: workloads on stdin.
    #[test]
    fn workloads_from_stdin_and_unplaced_pods_are_reported() {
        let mut workloads =
            std::fs::read(repo().join("examples/metro-plan/workloads.yaml")).unwrap_or_default();
        workloads.extend_from_slice(
            b"\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: huge, namespace: ar}\nspec:\n  containers: [{name: a, image: a, resources: {requests: {cpu: \"100\"}}}]\n",
        );
        let out = plan_with_stdin(
            &[
                "plan",
                "-f",
                "-",
                "-f",
                "examples/metro-plan/topology.yaml",
                "-f",
                "examples/metro-plan/nodes.yaml",
                "-f",
                "examples/metro-plan/policies.yaml",
                "-f",
                "examples/metro-plan/offers.yaml",
            ],
            &workloads,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("planned 7 of 8 pods"), "{stderr}");
        assert!(
            stderr.contains("ar/huge: no node has 100 CPU free (largest free: 64 on region-1-a)"),
            "{stderr}"
        );
        let items = docs(&text(&out.stdout));
        let huge = items
            .iter()
            .find(|d| d["metadata"]["name"] == "huge")
            .cloned()
            .unwrap_or_default();
        assert!(
            huge["spec"].get("affinity").is_none(),
            "an unplaced pod is not pinned"
        );
    }

    #[test]
    fn invalid_inputs_exit_2_with_located_messages() {
        for (file, expected) in [
            (
                "tests/invalid/bad-replicas.yaml",
                "error: tests/invalid/bad-replicas.yaml[0] Deployment default/web: spec.replicas: -1 is negative",
            ),
            (
                "tests/invalid/bad-grace.yaml",
                "error: tests/invalid/bad-grace.yaml[1] ConstraintPolicyOffer default/ar: spec.grace:",
            ),
        ] {
            let out = edgeplane(&["plan", "-f", file]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
            assert!(stderr.starts_with(expected), "{file}: {stderr}");
        }
        let out = edgeplane(&["plan", "-f", "examples/metro-plan", "--provider", "gpu"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).starts_with("error: --provider \"gpu\": expected RULE=URL"));
        let out = edgeplane(&["plan", "-f", "examples/metro-plan", "--time-budget", "soon"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).starts_with("error: --time-budget: \"soon\" is not a duration"));
    }
}
