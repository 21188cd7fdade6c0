//! The certificate keeper on the embedded cluster: it issues a CA into its Secret and
//! certificates into the webhook's and a gRPC party's Secrets, trusts the CA in the
//! webhook configuration, renews each once a third of its life is left (the old CA stays
//! trusted until it expires), and repairs a lost caBundle or a Secret taken from Helm.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use edgeplane_cluster::{ClusterConfig, EmbeddedCluster};
use edgeplane_core::clock::Clock;
use edgeplane_runtime::Context;
use edgeplane_runtime::certificates::{self as certificate, KeeperConfig, Kept};
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::json;

/// A clock the test moves by hand (months at a time, which virtual time in the cluster
/// need not follow: only the keeper reads it).
#[derive(Debug)]
struct HandClock(Mutex<Timestamp>);

impl Clock for HandClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl HandClock {
    fn set(&self, to: &str) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) =
            to.parse().unwrap_or_else(|e| panic!("{e}"));
    }
}

const NS: &str = "edgeplane-system";

fn config() -> KeeperConfig {
    KeeperConfig {
        namespace: NS.into(),
        ca_secret: "edgeplane-ca".into(),
        certificates: vec![
            Kept::for_service("edgeplane-webhook-cert", "edgeplane-webhook", NS, false),
            Kept::for_service("edgeplane-netctl-grpc-tls", "edgeplane-netctl", NS, true),
        ],
        webhook_configuration: Some("edgeplane-gate".into()),
        ca_validity: Duration::from_secs(5 * 365 * 86_400),
        validity: Duration::from_secs(365 * 86_400),
        interval: Duration::from_secs(3600),
    }
}

async fn setup() -> (EmbeddedCluster, Context, Arc<HandClock>) {
    let cluster = EmbeddedCluster::start(ClusterConfig::default()).await;
    cluster
        .apply_objects(vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                   "metadata": {"name": "edgeplane-gate"},
                   "webhooks": [{"name": "gate.constraint.edgeplane.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                                 "clientConfig": {"service": {"name": "edgeplane-webhook", "namespace": NS, "path": "/mutate-pods"}}}]}),
        ])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(HandClock(Mutex::new(
        "2026-01-01T00:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
    )));
    let ctx = Context::new(cluster.client(), "controller").with_clock(clock.clone());
    (cluster, ctx, clock)
}

struct Stored {
    /// The webhook's certificate and key, and the gRPC party's certificate.
    cert: String,
    key: String,
    grpc: String,
    /// The CA Secret's bundle, the gRPC party's, and the webhook configuration's.
    ca: String,
    grpc_ca: String,
    bundle: String,
}

fn text(secret: &Secret, file: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(file))
        .map(|ByteString(b)| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

async fn stored(ctx: &Context) -> Stored {
    let get = |name: &'static str| async move {
        Api::<Secret>::namespaced(ctx.client.clone(), NS)
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let secret = get("edgeplane-webhook-cert").await;
    let ca = get("edgeplane-ca").await;
    let grpc = get("edgeplane-netctl-grpc-tls").await;
    let webhooks = Api::<MutatingWebhookConfiguration>::all(ctx.client.clone())
        .get("edgeplane-gate")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bundle = webhooks.webhooks.unwrap_or_default()[0]
        .client_config
        .ca_bundle
        .as_ref()
        .map(|ByteString(b)| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    assert_eq!(
        text(&secret, "ca.crt"),
        text(&ca, "ca.crt"),
        "the webhook's ca.crt is the bundle"
    );
    assert!(text(&ca, "ca.key").contains("PRIVATE KEY"));
    Stored {
        cert: text(&secret, "tls.crt"),
        key: text(&secret, "tls.key"),
        grpc: text(&grpc, "tls.crt"),
        ca: text(&ca, "ca.crt"),
        grpc_ca: text(&grpc, "ca.crt"),
        bundle,
    }
}

fn count_certificates(pem: &str) -> usize {
    pem.matches("-----BEGIN CERTIFICATE-----").count()
}

/// Whether a rustls client trusting `bundle` accepts `cert` for the Service's name.
fn verifies(bundle: &str, cert: &str, at: &str) -> bool {
    verifies_as(bundle, cert, at, "edgeplane-webhook.edgeplane-system.svc")
}

/// The same for the name `host`.
fn verifies_as(bundle: &str, cert: &str, at: &str, host: &str) -> bool {
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(bundle.as_bytes()).flatten() {
        let _ = roots.add(ca);
    }
    let Ok(verifier) = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build() else {
        return false;
    };
    let Some(Ok(end)) = CertificateDer::pem_slice_iter(cert.as_bytes()).next() else {
        return false;
    };
    let name = ServerName::try_from(host.to_string()).unwrap_or_else(|e| panic!("{e}"));
    // Checked at the keeper's time, not the wall clock's.
    let at: Timestamp = at.parse().unwrap_or_else(|e| panic!("{e}"));
    let now = UnixTime::since_unix_epoch(Duration::from_secs(at.as_second().unsigned_abs()));
    verifier
        .verify_server_cert(&end, &[], &name, &[], now)
        .is_ok()
}

#[tokio::test]
async fn the_keeper_issues_renews_and_keeps_the_old_ca_trusted_until_it_expires() {
    let (cluster, ctx, clock) = setup().await;
    let config = config();

    // No Secret yet: a CA and both certificates, the CA trusted by the webhook.
    let first = certificate::keep(&ctx, &config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        first.new_ca && first.reissue == [0, 1] && first.trust,
        "{first:?}"
    );
    let issued = stored(&ctx).await;
    assert_eq!(count_certificates(&issued.ca), 1);
    assert_eq!(issued.bundle, issued.ca);
    assert_eq!(issued.grpc_ca, issued.ca);
    assert!(verifies_as(
        &issued.grpc_ca,
        &issued.grpc,
        "2026-01-01T00:00:00Z",
        "edgeplane-netctl.edgeplane-system.svc"
    ));
    assert!(verifies(
        &issued.bundle,
        &issued.cert,
        "2026-01-01T00:00:00Z"
    ));
    assert!(issued.key.contains("PRIVATE KEY"));

    // Nothing to do while both are fresh.
    clock.set("2026-06-01T00:00:00Z");
    assert!(
        certificate::keep(&ctx, &config)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );

    // With under a third of their year left, only the certificates are renewed.
    clock.set("2026-10-01T00:00:00Z");
    let renewed = certificate::keep(&ctx, &config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        renewed.reissue == [0, 1] && !renewed.new_ca && !renewed.trust,
        "{renewed:?}"
    );
    let after = stored(&ctx).await;
    assert_ne!(after.cert, issued.cert);
    assert_ne!(after.grpc, issued.grpc);
    assert_eq!(
        (after.ca.clone(), after.bundle.clone()),
        (issued.ca.clone(), issued.bundle.clone())
    );
    assert!(verifies(&after.bundle, &after.cert, "2026-10-01T00:00:00Z"));

    // Late in the CA's five years: a new CA; the old one stays in the bundle, so the
    // certificate a replica still serves keeps being trusted.
    clock.set("2029-12-01T00:00:00Z");
    let rotated = certificate::keep(&ctx, &config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        rotated.new_ca && rotated.reissue == [0, 1] && rotated.trust,
        "{rotated:?}"
    );
    let last = stored(&ctx).await;
    assert_eq!(count_certificates(&last.bundle), 2);
    assert_eq!(last.grpc_ca, last.ca, "gRPC peers trust both CAs too");
    assert!(
        last.bundle.ends_with(&issued.ca),
        "the old CA is kept after the new one"
    );
    // The old certificate is checked on its last valid day, 2027-09-30.
    assert!(verifies(&last.bundle, &last.cert, "2029-12-01T00:00:00Z"));
    assert!(verifies(&last.bundle, &after.cert, "2027-09-30T00:00:00Z"));

    // A webhook configuration that lost its caBundle (an upgrade rendered it anew) is
    // repaired without reissuing anything.
    let patch = json!([{"op": "remove", "path": "/webhooks/0/clientConfig/caBundle"}]);
    Api::<MutatingWebhookConfiguration>::all(ctx.client.clone())
        .patch(
            "edgeplane-gate",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Json::<()>(
                serde_json::from_value(patch).unwrap_or_else(|e| panic!("{e}")),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let repaired = certificate::keep(&ctx, &config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        repaired.trust && !repaired.new_ca && repaired.reissue.is_empty(),
        "{repaired:?}"
    );
    assert_eq!(stored(&ctx).await.cert, last.cert);
    cluster.shutdown().await;
}

#[tokio::test]
async fn secrets_from_helm_are_taken_over_and_their_ca_stays_trusted() {
    let (cluster, ctx, _clock) = setup().await;
    // What the chart's genCA writes: a CA and a certificate, but no CA Secret.
    let ca = edgeplane_serve::tls::testing::TestCa::new("helm-ca");
    let (cert, key) = ca.issue(
        "edgeplane-webhook.edgeplane-system.svc",
        &["edgeplane-webhook.edgeplane-system.svc"],
    );
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    cluster
        .apply_objects(vec![
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "edgeplane-webhook-cert", "namespace": NS},
            "data": {"tls.crt": b64(&cert), "tls.key": b64(&key), "ca.crt": b64(&ca.pem)}}),
        ])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let renewal = certificate::keep(&ctx, &config())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        renewal.reasons,
        ["the CA Secret holds no usable CA (certificate and key)"]
    );
    let now = stored(&ctx).await;
    assert!(verifies(&now.bundle, &now.cert, "2026-01-01T00:00:00Z"));
    // Helm's CA stays in the bundle: the certificate it signed is still mounted.
    assert_eq!(count_certificates(&now.bundle), 2);
    assert!(verifies(&now.bundle, &cert, "2026-01-01T00:00:00Z"));
    cluster.shutdown().await;
}

/// What the chart creates: the three Secrets empty (type Opaque). The keeper fills them
/// in place, so nothing the chart renders is random and GitOps syncs change nothing.
#[tokio::test]
async fn empty_secrets_from_the_chart_are_filled_in_place() {
    let (cluster, ctx, _clock) = setup().await;
    let empty = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": name, "namespace": NS}})
    };
    cluster
        .apply_objects(vec![
            empty("edgeplane-ca"),
            empty("edgeplane-webhook-cert"),
            empty("edgeplane-netctl-grpc-tls"),
        ])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let renewal = certificate::keep(&ctx, &config())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(renewal.new_ca && renewal.reissue == [0, 1], "{renewal:?}");
    let now = stored(&ctx).await;
    assert!(verifies(&now.bundle, &now.cert, "2026-01-01T00:00:00Z"));
    for name in [
        "edgeplane-ca",
        "edgeplane-webhook-cert",
        "edgeplane-netctl-grpc-tls",
    ] {
        let secret = Api::<Secret>::namespaced(ctx.client.clone(), NS)
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(secret.type_.as_deref(), Some("Opaque"), "{name}");
    }
    cluster.shutdown().await;
}
