//! The TLS flags of the gRPC servers (`--tls-cert`, `--tls-key`, `--tls-client-ca`) and of
//! the components that call them (`--grpc-ca`, `--grpc-cert`, `--grpc-key`: one set for
//! every gRPC client of a process, providers and network controller alike).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgeplane_serve::tls::{ClientTls, ClientTlsFiles, ServerTls, ServerTlsFiles};

/// A gRPC server's certificate. Without it the server speaks plain text (and warns when it
/// listens on a non-loopback address).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServerTlsArgs {
    /// The server's certificate chain (PEM); serve TLS. Re-read when the file changes.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require clients to present a certificate signed by this CA (PEM): mutual TLS.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Wait this long for the files to appear before giving up (a Secret that the
    /// controller's certificate keeper has not filled yet); 0: fail at once.
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub tls_wait: String,
}

/// Waits up to `wait` (a duration flag's text) for every file of `paths` to exist, saying
/// so every 10 s; then the caller loads them, and a missing one is its error.
fn wait_for(flag: &str, wait: &str, paths: &[&Path]) -> Result<(), String> {
    let wait =
        edgeplane_core::values::parse_duration_field(wait).map_err(|e| format!("--{flag}: {e}"))?;
    let start = Instant::now();
    let mut said = None::<Instant>;
    while start.elapsed() < wait {
        let missing: Vec<String> = paths
            .iter()
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if said.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::info!(
                missing = missing.join(", "),
                "waiting for TLS files (the controller's certificate keeper writes them)"
            );
            said = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

impl ServerTlsArgs {
    /// Reads the files (an error names the file), or `None` without `--tls-cert`.
    pub fn load(&self) -> Result<Option<Arc<ServerTls>>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut paths = vec![cert.as_path(), key.as_path()];
        paths.extend(self.tls_client_ca.as_deref());
        wait_for("tls-wait", &self.tls_wait, &paths)?;
        ServerTls::load(ServerTlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: self.tls_client_ca.clone(),
        })
        .map(|tls| Some(Arc::new(tls)))
        .map_err(|e| format!("--tls-cert/--tls-key/--tls-client-ca: {e}"))
    }
}

/// How this process's gRPC clients (providers, the network controller) check servers and
/// present themselves, for `https://` URLs.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GrpcClientTlsArgs {
    /// The CA (PEM) that signed the gRPC servers' certificates; needed for https:// URLs.
    #[arg(long, value_name = "FILE")]
    pub grpc_ca: Option<PathBuf>,
    /// This client's certificate (PEM), for servers that require mutual TLS.
    #[arg(long, value_name = "FILE")]
    pub grpc_cert: Option<PathBuf>,
    /// This client's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub grpc_key: Option<PathBuf>,
    /// Wait this long for the files to appear before giving up; 0: fail at once.
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub grpc_tls_wait: String,
}

impl GrpcClientTlsArgs {
    /// Reads the files (an error names the file), or `None` without `--grpc-ca`.
    pub fn load(&self) -> Result<Option<Arc<ClientTls>>, String> {
        let files = ClientTlsFiles::from_flags(
            self.grpc_ca.clone(),
            self.grpc_cert.clone(),
            self.grpc_key.clone(),
        )?;
        match files {
            None => Ok(None),
            Some(files) => {
                let mut paths = vec![files.ca.as_path()];
                paths.extend(files.cert.as_deref());
                paths.extend(files.key.as_deref());
                wait_for("grpc-tls-wait", &self.grpc_tls_wait, &paths)?;
                ClientTls::load(files)
                    .map(|tls| Some(Arc::new(tls)))
                    .map_err(|e| format!("--grpc-ca/--grpc-cert/--grpc-key: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        server: ServerTlsArgs,
        #[command(flatten)]
        client: GrpcClientTlsArgs,
    }

    #[test]
    fn a_certificate_needs_its_key() {
        let error = Cli::try_parse_from(["x", "--tls-cert", "a.crt"]).expect_err("no key");
        assert!(error.to_string().contains("--tls-key <FILE>"), "{error}");
        let error =
            Cli::try_parse_from(["x", "--tls-client-ca", "ca.crt"]).expect_err("no certificate");
        assert!(error.to_string().contains("--tls-cert <FILE>"), "{error}");
    }

    #[test]
    fn tls_wait_waits_for_files_that_appear_and_then_loads_them() {
        let dir = edgeplane_serve::tls::testing::temp_dir("wait");
        let ca = edgeplane_serve::tls::testing::TestCa::new("wait-ca");
        let (cert, key) = (dir.join("s.crt"), dir.join("s.key"));
        let writer = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(700));
                ca.write(&dir, "s", &["localhost"]);
            })
        };
        let cli = Cli::try_parse_from([
            "x",
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
            "--tls-wait",
            "30s",
        ])
        .expect("parses");
        let started = Instant::now();
        assert!(cli.server.load().expect("loads once written").is_some());
        assert!(started.elapsed() >= Duration::from_millis(500), "it waited");
        let _ = writer.join();
        let bad = Cli::try_parse_from([
            "x",
            "--tls-cert",
            "a",
            "--tls-key",
            "b",
            "--tls-wait",
            "soon",
        ])
        .expect("parses");
        assert!(
            bad.server
                .load()
                .err()
                .unwrap_or_default()
                .starts_with("--tls-wait: ")
        );
    }

    #[test]
    fn missing_files_are_named() {
        let cli = Cli::try_parse_from([
            "x",
            "--tls-cert",
            "/nonexistent/tls.crt",
            "--tls-key",
            "/nonexistent/tls.key",
        ])
        .expect("parses");
        assert_eq!(
            cli.server.load().err(),
            Some(
                "--tls-cert/--tls-key/--tls-client-ca: /nonexistent/tls.crt: No such file or directory (os error 2)"
                    .into()
            )
        );
        let cli = Cli::try_parse_from(["x", "--grpc-cert", "c.crt", "--grpc-key", "c.key"])
            .expect("parses");
        assert_eq!(
            cli.client.load().err(),
            Some(
                "--grpc-cert and --grpc-key need --grpc-ca (the CA that signed the servers' certificates)"
                    .into()
            )
        );
        let plain = Cli::try_parse_from(["x"]).expect("parses");
        assert!(plain.server.load().expect("none").is_none());
        assert!(plain.client.load().expect("none").is_none());
    }
}
