//! The client and server over TLS and mutual TLS on loopback, with certificates made here.

use std::path::Path;
use std::sync::Arc;

use edgeplane_serve::tls::testing::{TestCa, temp_dir};
use edgeplane_serve::tls::{ClientTls, ClientTlsFiles, ServerTls, ServerTlsFiles};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::rule;
use crate::controller::*;
use crate::fake::FakeNetworkController;
use crate::server::{ServerLimits, serve_with_limits};
use crate::{ClientOptions, GrpcNetworkController};

fn question() -> MitigateRequest {
    MitigateRequest {
        binding: "ar/ar-0".into(),
        source: Endpoint::Site("stadium".into()),
        destination: Endpoint::Node("edge-9-a".into()),
        rules: vec![rule("latency", "5ms", "10ms")],
    }
}

fn answer() -> MitigateOutcome {
    MitigateOutcome {
        accepted: true,
        expected: None,
        reason: "no new path needed".into(),
        allocation_id: None,
        entry: None,
        path: vec![],
        compliance: None,
    }
}

/// Serves a fake controller over TLS (mutual TLS when `client_ca` is given) on loopback;
/// returns its `https://` URL, the fake, and the sender that stops it.
async fn serve_tls(
    dir: &Path,
    ca: &TestCa,
    client_ca: Option<&Path>,
) -> (String, Arc<FakeNetworkController>, oneshot::Sender<()>) {
    let (cert, key) = ca.write(dir, "netctl", &["localhost", "127.0.0.1"]);
    let tls = ServerTls::load(ServerTlsFiles {
        cert,
        key,
        client_ca: client_ca.map(Path::to_path_buf),
    })
    .unwrap();
    let fake = Arc::new(FakeNetworkController::new());
    fake.mitigation(answer());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let controller: Arc<dyn NetworkController> = fake.clone();
    tokio::spawn(serve_with_limits(
        listener,
        controller,
        ServerLimits::default(),
        Some(Arc::new(tls)),
        async move {
            let _ = stopped.await;
        },
    ));
    (url, fake, stop)
}

fn client(url: &str, files: ClientTlsFiles) -> GrpcNetworkController {
    let options = ClientOptions {
        tls: Some(Arc::new(ClientTls::load(files).unwrap())),
        ..ClientOptions::default()
    };
    GrpcNetworkController::new(url, &options).unwrap()
}

#[tokio::test]
async fn a_client_with_a_certificate_calls_a_mutual_tls_server() {
    let dir = temp_dir("netctl-mtls");
    let ca = TestCa::new("edgeplane-ca");
    let ca_file = ca.write_ca(&dir);
    let (url, fake, _stop) = serve_tls(&dir, &ca, Some(&ca_file)).await;
    let (cert, key) = ca.write(&dir, "descheduler", &["edgeplane-descheduler"]);
    let client = client(
        &url,
        ClientTlsFiles {
            ca: ca_file,
            cert: Some(cert),
            key: Some(key),
        },
    );
    assert_eq!(client.mitigate(&question()).await, Ok(answer()));
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn a_client_calls_a_tls_server_without_a_client_certificate() {
    let dir = temp_dir("netctl-tls");
    let ca = TestCa::new("edgeplane-ca");
    let ca_file = ca.write_ca(&dir);
    let (url, _fake, _stop) = serve_tls(&dir, &ca, None).await;
    let client = client(
        &url,
        ClientTlsFiles {
            ca: ca_file,
            cert: None,
            key: None,
        },
    );
    assert_eq!(client.mitigate(&question()).await, Ok(answer()));
}

#[tokio::test]
async fn a_mutual_tls_server_refuses_a_client_without_a_certificate() {
    let dir = temp_dir("netctl-no-cert");
    let ca = TestCa::new("edgeplane-ca");
    let ca_file = ca.write_ca(&dir);
    let (url, fake, _stop) = serve_tls(&dir, &ca, Some(&ca_file)).await;
    let client = client(
        &url,
        ClientTlsFiles {
            ca: ca_file,
            cert: None,
            key: None,
        },
    );
    let result = client.mitigate(&question()).await;
    // TLS 1.3 finishes the client's side of the handshake before the server checks the
    // client, so the refusal arrives as the connection's first answer.
    let Err(NetctlError::Failed(message)) = result else {
        panic!("a client without a certificate was answered: {result:?}")
    };
    assert_eq!(
        message,
        format!(
            "network controller at {url} failed: Unknown: transport error: connection error: received fatal alert: CertificateRequired"
        )
    );
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_servers_ca_fails_clearly() {
    let dir = temp_dir("netctl-untrusted");
    let ca = TestCa::new("edgeplane-ca");
    let (url, fake, _stop) = serve_tls(&dir, &ca, None).await;
    let other = TestCa::new("someone-else");
    let other_dir = temp_dir("netctl-untrusted-other");
    let other_file = other.write_ca(&other_dir);
    let client = client(
        &url,
        ClientTlsFiles {
            ca: other_file.clone(),
            cert: None,
            key: None,
        },
    );
    let Err(NetctlError::Unavailable(message)) = client.mitigate(&question()).await else {
        panic!("a server signed by an unknown CA was trusted")
    };
    let addr = url.trim_start_matches("https://");
    assert!(
        message.contains(&format!(
            "TLS handshake with {addr} failed: invalid peer certificate: UnknownIssuer (the server's certificate must be signed by the CA in {}",
            other_file.display()
        )),
        "{message}"
    );
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_plain_client_is_not_answered_by_a_tls_server() {
    let dir = temp_dir("netctl-plain");
    let ca = TestCa::new("edgeplane-ca");
    let (url, fake, _stop) = serve_tls(&dir, &ca, None).await;
    let plain = url.replace("https://", "http://");
    let client = GrpcNetworkController::new(&plain, &ClientOptions::default()).unwrap();
    assert!(client.mitigate(&question()).await.is_err());
    assert!(fake.calls().is_empty());
}

/// A caller with a client certificate is named by it: the first URI, else DNS subject
/// alternative name, else the subject's common name.
#[test]
fn a_certificate_names_its_holder() {
    use edgeplane_serve::tls::testing::TestCa;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let ca = TestCa::new("edgeplane-ca");
    let der = |pem: &str| {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    };
    let (with_dns, _) = ca.issue("edgeplane-scheduler", &["scheduler.edgeplane-system.svc"]);
    let (cn_only, _) = ca.issue("edgeplane-descheduler", &[]);
    assert_eq!(
        crate::server::certificate_name(&der(&with_dns)).as_deref(),
        Some("scheduler.edgeplane-system.svc")
    );
    assert_eq!(
        crate::server::certificate_name(&der(&cn_only)).as_deref(),
        Some("edgeplane-descheduler")
    );
    assert_eq!(crate::server::certificate_name(b"not a certificate"), None);
}
