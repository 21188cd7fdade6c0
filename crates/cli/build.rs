//! What `edgeplane version` reports besides the package version: the target the binary
//! was built for, the compiler, and the git commit checked out when it was built. Each is
//! left out when it cannot be known (no git, or a source tree that is not the
//! repository's, as in a tarball or a crates.io build).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(target) = std::env::var("TARGET") {
        println!("cargo:rustc-env=EDGEPLANE_TARGET={target}");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Some(version) = output(Command::new(rustc).arg("--version")) {
        println!("cargo:rustc-env=EDGEPLANE_RUSTC={version}");
    }
    if let Some(commit) = git_commit() {
        println!("cargo:rustc-env=EDGEPLANE_GIT_COMMIT={commit}");
    }
}

/// The first line a command prints, when it runs and succeeds.
fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}

/// HEAD's commit, when the workspace (two levels above this crate) is the top of a git
/// work tree; and the files to watch so that a new commit or checkout rebuilds.
fn git_commit() -> Option<String> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let workspace = manifest.join("../..").canonicalize().ok()?;
    let git = |args: &[&str]| output(Command::new("git").arg("-C").arg(&workspace).args(args));
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != workspace {
        return None;
    }
    let commit = git(&["rev-parse", "--verify", "HEAD"])?;
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // HEAD names a branch whose ref moves on commit; watch both, and packed refs.
    let mut watch = vec![git(&["rev-parse", "--git-path", "HEAD"])?];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(git(&["rev-parse", "--git-path", &branch])?);
    }
    watch.push(git(&["rev-parse", "--git-path", "packed-refs"])?);
    for path in watch {
        let path = Path::new(&path);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            workspace.join(path)
        };
        // A path that does not exist would rerun this script on every build.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(commit)
}
