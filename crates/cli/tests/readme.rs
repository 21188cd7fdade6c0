//! The README tells the headline scenario as it runs: every timeline and summary line it
//! quotes is a line of `edgeplane sim examples/scenarios/stadium-ar/scenario.yaml` (with
//! `...` standing for any text, and the wall time left out).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `line` with `...` read as "any text": its pieces appear in order.
fn matches(pattern: &str, line: &str) -> bool {
    let mut rest = line;
    for (i, piece) in pattern.split("...").enumerate() {
        let piece = piece.trim_end();
        match rest.find(piece) {
            Some(at) if i > 0 || at == 0 => rest = &rest[at + piece.len()..],
            _ => return false,
        }
    }
    true
}

#[test]
fn the_readme_quotes_the_stadium_run() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap_or_default();
    let start = readme.find("```\n00:00:02").map(|i| i + 4);
    let block = start
        .and_then(|s| readme[s..].find("```").map(|e| &readme[s..s + e]))
        .unwrap_or_else(|| panic!("README: no stadium timeline block"));
    let out = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(["sim", "examples/scenarios/stadium-ar/scenario.yaml"])
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run edgeplane: {e}"));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let quoted: Vec<&str> = block
        .lines()
        .filter(|l| !l.trim().is_empty() && l.trim() != "..." && !l.starts_with("Summary:"))
        .collect();
    assert!(quoted.len() >= 10, "{block}");
    for line in quoted {
        assert!(
            stdout.lines().any(|l| matches(line, l)),
            "README quotes a line the run does not print:\n  {line}\n\nrun:\n{stdout}"
        );
    }
}
