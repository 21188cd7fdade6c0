//! TLS for the gRPC servers and clients (rustls with ring, as the rest of the workspace).
//!
//! Certificates are files (a mounted Secret in the chart) and are **re-read when they
//! change**, without a restart: the server looks at its files' modification stamps on every
//! new connection, the client on every new connection it opens, and rebuilds its rustls
//! configuration when a stamp moved. A file that fails to load after a change keeps the
//! previous configuration serving (and is logged), so a half-written rotation never takes a
//! server down. tonic's own `ServerTlsConfig`/`ClientTlsConfig` are fixed when built, which
//! is why the handshakes happen here: the server hands tonic finished TLS streams (tonic's
//! `TlsConnectInfo` then carries the peer's certificates), the client gives tonic a
//! connector.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures::Stream;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::accept::Acceptor;
use crate::grpc::Connection;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why certificates could not be loaded; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Pem { path: PathBuf, message: String },
    #[error("{0}")]
    Config(String),
}

/// A server's certificate files: `--tls-cert`, `--tls-key`, and `--tls-client-ca` (given:
/// clients must present a certificate signed by it, mutual TLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// A client's files: `--grpc-ca` (the CA that signed the servers' certificates), and
/// `--grpc-cert` with `--grpc-key` (the client's certificate, for servers that require
/// mutual TLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTlsFiles {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientTlsFiles {
    /// From the three flags: a certificate needs its key and the reverse, and either needs
    /// the CA (without it the client would not know whom to trust).
    pub fn from_flags(
        ca: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<Option<ClientTlsFiles>, String> {
        match (ca, cert, key) {
            (None, None, None) => Ok(None),
            (None, _, _) => Err("--grpc-cert and --grpc-key need --grpc-ca (the CA that signed the servers' certificates)".into()),
            (Some(_), Some(_), None) => Err("--grpc-cert needs --grpc-key".into()),
            (Some(_), None, Some(_)) => Err("--grpc-key needs --grpc-cert".into()),
            (Some(ca), cert, key) => Ok(Some(ClientTlsFiles { ca, cert, key })),
        }
    }
}

/// What tells a file changed: modification time, length and inode (a Secret mount swaps a
/// symbolic link, which changes all three of the file it points to).
type Stamp = Vec<Option<(SystemTime, u64, u64)>>;

fn stamp(paths: &[&Path]) -> Stamp {
    paths
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            #[cfg(unix)]
            let inode = std::os::unix::fs::MetadataExt::ino(&meta);
            #[cfg(not(unix))]
            let inode = 0;
            Some((meta.modified().ok()?, meta.len(), inode))
        })
        .collect()
}

/// A configuration built from files, rebuilt when their stamps change.
struct Reloading<F, C> {
    files: F,
    what: &'static str,
    build: fn(&F) -> Result<C, TlsError>,
    paths: fn(&F) -> Vec<&Path>,
    current: Mutex<(Stamp, Arc<C>)>,
}

impl<F, C> Reloading<F, C> {
    fn load(
        files: F,
        what: &'static str,
        build: fn(&F) -> Result<C, TlsError>,
        paths: fn(&F) -> Vec<&Path>,
    ) -> Result<Self, TlsError> {
        let before = stamp(&paths(&files));
        let config = build(&files)?;
        Ok(Reloading {
            current: Mutex::new((before, Arc::new(config))),
            files,
            what,
            build,
            paths,
        })
    }

    /// The configuration for a new connection, re-read first if a file changed.
    fn current(&self) -> Arc<C> {
        let now = stamp(&(self.paths)(&self.files));
        let mut current = match self.current.lock() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        if current.0 != now {
            match (self.build)(&self.files) {
                Ok(config) => {
                    tracing::info!(
                        what = self.what,
                        "TLS certificates changed on disk: reloaded"
                    );
                    *current = (now, Arc::new(config));
                }
                Err(error) => {
                    // Keep serving with the previous files; try again when they change again.
                    tracing::warn!(what = self.what, %error, "TLS certificates changed on disk but do not load; keeping the previous ones");
                    current.0 = now;
                }
            }
        }
        current.1.clone()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            message: format!("not PEM certificates: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            message: "holds no PEM certificate".into(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        message: format!("not a PEM private key: {e}"),
    })
}

fn roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            message: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build_server(files: &ServerTlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    build_server_for(files, b"h2")
}

fn build_server_http1(files: &ServerTlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    build_server_for(files, b"http/1.1")
}

fn build_server_for(files: &ServerTlsFiles, alpn: &[u8]) -> Result<rustls::ServerConfig, TlsError> {
    let certs = certificates(&files.cert)?;
    let key = private_key(&files.key)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(ca)?),
                provider(),
            )
            .build()
            .map_err(|e| TlsError::Config(format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        TlsError::Config(format!(
            "{} and {} do not make a TLS identity: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

fn build_client(files: &ClientTlsFiles) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots(&files.ca)?);
    let mut config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(certificates(cert)?, private_key(key)?)
            .map_err(|e| {
                TlsError::Config(format!(
                    "{} and {} do not make a TLS identity: {e}",
                    cert.display(),
                    key.display()
                ))
            })?,
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A server's TLS configuration, re-read when its files change.
pub struct ServerTls(Reloading<ServerTlsFiles, rustls::ServerConfig>);

impl ServerTls {
    /// Reads the files now: a missing or bad file is an error naming it.
    pub fn load(files: ServerTlsFiles) -> Result<ServerTls, TlsError> {
        Reloading::load(files, "server", build_server, |f| {
            let mut paths = vec![f.cert.as_path(), f.key.as_path()];
            paths.extend(f.client_ca.as_deref());
            paths
        })
        .map(ServerTls)
    }

    /// The same for an HTTP/1.1 server (the admission webhook), whose clients negotiate
    /// `http/1.1` rather than gRPC's `h2`.
    pub fn load_http1(files: ServerTlsFiles) -> Result<ServerTls, TlsError> {
        Reloading::load(files, "server", build_server_http1, |f| {
            let mut paths = vec![f.cert.as_path(), f.key.as_path()];
            paths.extend(f.client_ca.as_deref());
            paths
        })
        .map(ServerTls)
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.0.files.client_ca.is_some()
    }

    /// The configuration for the next connection.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.0.current()
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerTls({:?})", self.0.files)
    }
}

/// A client's TLS configuration, re-read when its files change.
pub struct ClientTls(Reloading<ClientTlsFiles, rustls::ClientConfig>);

impl ClientTls {
    pub fn load(files: ClientTlsFiles) -> Result<ClientTls, TlsError> {
        Reloading::load(files, "client", build_client, |f| {
            let mut paths = vec![f.ca.as_path()];
            paths.extend(f.cert.as_deref());
            paths.extend(f.key.as_deref());
            paths
        })
        .map(ClientTls)
    }

    pub fn files(&self) -> &ClientTlsFiles {
        &self.0.files
    }

    pub fn current(&self) -> Arc<rustls::ClientConfig> {
        self.0.current()
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientTls({:?})", self.0.files)
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.0.files == other.0.files
    }
}

impl Eq for ClientTls {}

/// Logs a warning when a server listens on a non-loopback address without TLS: anyone who
/// can reach it can call it.
pub fn warn_if_plain(server: &str, addr: SocketAddr, tls: Option<&ServerTls>) {
    if tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "{server} serves plain-text gRPC on a non-loopback address: anyone who can reach it can call it; give --tls-cert and --tls-key (and --tls-client-ca for mutual TLS)");
    }
}

/// The TLS connections of `acceptor` as tonic's incoming stream, ending at `shutdown`.
/// Handshakes run on their own tasks (at most [`HANDSHAKE_TIMEOUT`] each), so a slow client
/// does not hold up the others; a failed handshake is logged and dropped. Each connection
/// keeps its slot among the server's connections.
pub fn incoming(
    mut acceptor: Acceptor<TcpListener>,
    tls: Arc<ServerTls>,
    shutdown: CancellationToken,
) -> impl Stream<Item = std::io::Result<tokio_rustls::server::TlsStream<Connection>>> + Send + 'static
{
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(accepted) = acceptor.accept(&shutdown).await {
            let _ = accepted.stream.set_nodelay(true);
            let peer = accepted.peer;
            let connection = Connection::new(accepted.stream, accepted.slot);
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
            let sender = sender.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(connection)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send(Ok(stream));
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%error, %peer, "gRPC: TLS handshake failed");
                    }
                    Err(_) => tracing::debug!(%peer, "gRPC: TLS handshake timed out"),
                }
            });
        }
    });
    futures::stream::unfold(receiver, |mut receiver| async move {
        let next = receiver.recv().await?;
        Some((next, receiver))
    })
}

/// Serves `router` on `listener` until `shutdown` completes: at most `max_connections`
/// open (accepting backs off when it fails), over TLS when `tls` is given (mutual TLS when
/// it names a client CA), else in plain text with a warning when the address is not a
/// loopback one. `server` names it in logs (`the provider`). Every gRPC server of
/// edgeplane starts here.
pub async fn serve_router(
    server: &'static str,
    listener: TcpListener,
    max_connections: usize,
    router: tonic::transport::server::Router,
    tls: Option<Arc<ServerTls>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    if let Ok(addr) = listener.local_addr() {
        warn_if_plain(server, addr, tls.as_deref());
    }
    let acceptor = Acceptor::new(server, listener, max_connections);
    let stop_accepting = CancellationToken::new();
    let stop = stop_accepting.clone();
    let signal = async move {
        shutdown.await;
        stop.cancel();
    };
    match tls {
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(incoming(acceptor, tls, stop_accepting), signal)
                .await
        }
        None => {
            router
                .serve_with_incoming_shutdown(
                    crate::grpc::incoming(acceptor, stop_accepting),
                    signal,
                )
                .await
        }
    }
}

/// A tonic channel to `url`, connecting on first use: `http://` in plain text, `https://`
/// with `tls` (an `https://` URL without it is an error, as is a URL that is not one).
pub fn channel(
    url: &str,
    connect_timeout: Duration,
    tls: Option<&Arc<ClientTls>>,
) -> Result<tonic::transport::Channel, String> {
    use tonic::transport::Endpoint;
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("https") => {
            let Some(tls) = tls else {
                return Err(format!(
                    "{url} is an https URL but no CA is given to check its certificate (--grpc-ca)"
                ));
            };
            let host = uri
                .host()
                .ok_or_else(|| format!("{url:?} has no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(443);
            let name = ServerName::try_from(host.clone())
                .map_err(|e| format!("{url:?}: {host:?} is not a host name: {e}"))?;
            // tonic sees a plain connection (the connector does the handshake) and keeps
            // `https` in the requests' origin.
            let authority = uri
                .authority()
                .map(|a| a.as_str().to_string())
                .unwrap_or_default();
            let endpoint = Endpoint::from_shared(format!("http://{authority}"))
                .map_err(|e| format!("{url:?} is not a URL: {e}"))?
                .origin(uri.clone())
                .connect_timeout(connect_timeout);
            Ok(endpoint.connect_with_connector_lazy(TlsConnector {
                tls: tls.clone(),
                host,
                port,
                name,
            }))
        }
        Some("http") => Ok(Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?
            .connect_timeout(connect_timeout)
            .connect_lazy()),
        _ => Err(format!("{url:?} is not an http:// or https:// URL")),
    }
}

/// Connects over TCP and does the client's TLS handshake with the configuration current at
/// that moment.
#[derive(Clone)]
struct TlsConnector {
    tls: Arc<ClientTls>,
    host: String,
    port: u16,
    name: ServerName<'static>,
}

type Connected = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

impl tower::Service<http::Uri> for TlsConnector {
    type Response = Connected;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Connected>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect((this.host.as_str(), this.port)).await?;
            let _ = tcp.set_nodelay(true);
            let connector = tokio_rustls::TlsConnector::from(this.tls.current());
            let stream = connector.connect(this.name, tcp).await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "TLS handshake with {}:{} failed: {e} (the server's certificate must be signed by the CA in {}, and name {})",
                        this.host,
                        this.port,
                        this.tls.files().ca.display(),
                        this.host
                    ),
                )
            })?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        })
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;
