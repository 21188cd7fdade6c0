use std::sync::Arc;

use futures::StreamExt;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::testing::{TestCa, temp_dir};
use super::*;

/// A client configuration that trusts `ca` (PEM) and offers h2, as the gRPC client does.
fn client_config(ca: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Connects, completes a round trip, and returns the server's certificate.
async fn server_certificate(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Vec<u8> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("handshake");
    tls.write_all(b"ping").await.expect("write");
    let mut answer = [0u8; 4];
    tls.read_exact(&mut answer).await.expect("read");
    assert_eq!(&answer, b"ping");
    let (_, session) = tls.get_ref();
    session.peer_certificates().expect("a certificate")[0].to_vec()
}

fn pem_der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .expect("one")
        .expect("PEM")
        .to_vec()
}

/// Echoes on every TLS connection of `incoming`.
fn echo(listener: TcpListener, tls: Arc<ServerTls>, shutdown: CancellationToken) {
    let acceptor = Acceptor::new("test", listener, 16);
    let mut connections = Box::pin(incoming(acceptor, tls, shutdown));
    tokio::spawn(async move {
        while let Some(Ok(mut stream)) = connections.next().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4];
                if stream.read_exact(&mut buf).await.is_ok() {
                    let _ = stream.write_all(&buf).await;
                    let _ = stream.flush().await;
                }
            });
        }
    });
}

#[tokio::test]
async fn a_new_connection_sees_the_rotated_certificate() {
    let dir = temp_dir("rotate");
    let ca = TestCa::new("rotate-ca");
    let (cert, key) = ca.write(&dir, "server", &["localhost", "127.0.0.1"]);
    let first = std::fs::read_to_string(&cert).expect("cert");
    let tls = Arc::new(
        ServerTls::load(ServerTlsFiles {
            cert: cert.clone(),
            key,
            client_ca: None,
        })
        .expect("loads"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    echo(listener, tls, shutdown.clone());
    let client = client_config(&ca.pem);

    assert_eq!(
        server_certificate(addr, client.clone()).await,
        pem_der(&first)
    );

    // Rotate: a new certificate and key replace the files (renamed into place).
    ca.write(&dir, "server", &["localhost", "127.0.0.1"]);
    let second = std::fs::read_to_string(&cert).expect("cert");
    assert_ne!(first, second);
    assert_eq!(server_certificate(addr, client).await, pem_der(&second));
    shutdown.cancel();
}

#[test]
fn a_rotation_that_does_not_load_keeps_the_previous_certificate() {
    let dir = temp_dir("bad-rotation");
    let ca = TestCa::new("ca");
    let (cert, key) = ca.write(&dir, "server", &["localhost"]);
    let tls = ServerTls::load(ServerTlsFiles {
        cert: cert.clone(),
        key,
        client_ca: None,
    })
    .expect("loads");
    let before = tls.current();
    std::fs::write(&cert, "not a certificate").expect("write");
    assert!(Arc::ptr_eq(&before, &tls.current()));
}

#[test]
fn files_that_do_not_load_are_errors_naming_them() {
    let dir = temp_dir("errors");
    let ca = TestCa::new("ca");
    let (cert, key) = ca.write(&dir, "server", &["localhost"]);
    let missing = dir.join("missing.key");
    let error = ServerTls::load(ServerTlsFiles {
        cert: cert.clone(),
        key: missing.clone(),
        client_ca: None,
    })
    .expect_err("no key");
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{error}"
    );
    let error = ServerTls::load(ServerTlsFiles {
        cert: key.clone(),
        key: key.clone(),
        client_ca: None,
    })
    .expect_err("a key is no certificate");
    assert_eq!(
        error.to_string(),
        format!("{}: holds no PEM certificate", key.display())
    );
    let error = ClientTls::load(ClientTlsFiles {
        ca: cert.with_extension("nope"),
        cert: None,
        key: None,
    })
    .expect_err("no CA");
    assert!(error.to_string().contains("server.nope"), "{error}");
}

#[test]
fn client_flags_go_together() {
    let p = |s: &str| Some(PathBuf::from(s));
    assert_eq!(ClientTlsFiles::from_flags(None, None, None), Ok(None));
    assert_eq!(
        ClientTlsFiles::from_flags(p("ca"), p("c"), p("k")),
        Ok(Some(ClientTlsFiles {
            ca: "ca".into(),
            cert: p("c"),
            key: p("k")
        }))
    );
    assert_eq!(
        ClientTlsFiles::from_flags(None, p("c"), p("k")),
        Err("--grpc-cert and --grpc-key need --grpc-ca (the CA that signed the servers' certificates)".into())
    );
    assert_eq!(
        ClientTlsFiles::from_flags(p("ca"), p("c"), None),
        Err("--grpc-cert needs --grpc-key".into())
    );
    assert_eq!(
        ClientTlsFiles::from_flags(p("ca"), None, p("k")),
        Err("--grpc-key needs --grpc-cert".into())
    );
}

#[tokio::test]
async fn an_https_url_needs_a_ca_and_other_schemes_are_refused() {
    let timeout = Duration::from_secs(1);
    assert_eq!(
        channel("https://127.0.0.1:1", timeout, None).err(),
        Some("https://127.0.0.1:1 is an https URL but no CA is given to check its certificate (--grpc-ca)".into())
    );
    assert_eq!(
        channel("ftp://127.0.0.1:1", timeout, None).err(),
        Some("\"ftp://127.0.0.1:1\" is not an http:// or https:// URL".into())
    );
    assert!(channel("http://127.0.0.1:1", timeout, None).is_ok());
}
