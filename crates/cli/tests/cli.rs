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
