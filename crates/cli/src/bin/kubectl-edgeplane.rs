//! The kubectl plugin: `kubectl edgeplane explain pod/NAME` runs
//! `edgeplane explain pod/NAME`. It replaces itself with the `edgeplane` binary installed
//! in the same directory (`cargo install` puts both there), else the one on `PATH`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let beside: Option<PathBuf> = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("edgeplane")))
        .filter(|path| path.is_file());
    let program = beside.unwrap_or_else(|| PathBuf::from("edgeplane"));
    let error = Command::new(&program)
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!(
        "kubectl-edgeplane: cannot run {}: {error} (install it with `cargo install --path crates/cli`)",
        program.display()
    );
    ExitCode::from(1)
}
