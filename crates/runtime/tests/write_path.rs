//! Every write of the runtime goes through `Context` (leadership, the write metric, an
//! error that says what was written). Each writing method of `kube::Api` takes
//! `PatchParams`, `PostParams`, `DeleteParams` or `EvictParams`; this test fails when a
//! module other than the allowed ones names one of them.

use std::path::{Path, PathBuf};

/// Files allowed to write, and why.
const ALLOWED: &[(&str, &str)] = &[
    ("context.rs", "the one write path"),
    (
        "leader.rs",
        "the Lease: taking it is how a replica becomes the leader, so it cannot wait for leadership",
    ),
];

/// The parameter types of `kube::Api`'s writes.
const WRITE_PARAMS: &[&str] = &["PatchParams", "PostParams", "DeleteParams", "EvictParams"];

/// The lines of `source` that name a write's parameters, as `line: text` (comments aside).
fn write_sites(source: &str) -> Vec<String> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or_default();
            WRITE_PARAMS.iter().any(|p| code.contains(p))
        })
        .map(|(i, line)| format!("{}: {}", i + 1, line.trim()))
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_detector_finds_writes() {
    let source = "use kube::api::{Patch, PatchParams};\napi.patch(&name, &params, &p).await;\n// PostParams in a comment\napi.create(&PostParams::default(), &o)\n";
    assert_eq!(
        write_sites(source),
        [
            "1: use kube::api::{Patch, PatchParams};",
            "4: api.create(&PostParams::default(), &o)"
        ]
    );
}

#[test]
fn every_write_goes_through_context() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 20,
        "found only {} files under {}",
        files.len(),
        src.display()
    );
    let mut offenders = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap_or(file);
        let name = relative.to_string_lossy().replace('\\', "/");
        if ALLOWED.iter().any(|(allowed, _)| name == *allowed) {
            continue;
        }
        let source =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        offenders.extend(
            write_sites(&source)
                .into_iter()
                .map(|site| format!("{name}:{site}")),
        );
    }
    assert!(
        offenders.is_empty(),
        "writes outside Context (use Context::apply, apply_status, patch, bind, evict, create_event or delete):\n{}",
        offenders.join("\n")
    );
}
