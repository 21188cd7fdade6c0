//! The webhook certificate keeper on the embedded cluster: it issues a CA and a serving
//! certificate into the webhook's Secret and trusts the CA in the webhook configuration,
//! renews each once a third of its life is left (the old CA stays trusted until it
//! expires), and the webhook server serves a renewed certificate without a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use edgeplane_cluster::{ClusterConfig, EmbeddedCluster};
use edgeplane_core::clock::Clock;
use edgeplane_runtime::Context;
use edgeplane_runtime::webhook::certificate::{self, KeeperConfig};
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
        secret: "edgeplane-webhook-cert".into(),
        configuration: "edgeplane-gate".into(),
        service: "edgeplane-webhook".into(),
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
    cert: String,
    key: String,
    ca: String,
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
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), NS)
        .get("edgeplane-webhook-cert")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
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
    Stored {
        cert: text(&secret, "tls.crt"),
        key: text(&secret, "tls.key"),
        ca: text(&secret, "ca.crt"),
        bundle,
    }
}

fn count_certificates(pem: &str) -> usize {
    pem.matches("-----BEGIN CERTIFICATE-----").count()
}

/// Whether a rustls client trusting `bundle` accepts `cert` for the Service's name.
fn verifies(bundle: &str, cert: &str, at: &str) -> bool {
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
    let name = ServerName::try_from("edgeplane-webhook.edgeplane-system.svc")
        .unwrap_or_else(|e| panic!("{e}"));
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

    // No Secret yet: a CA and a serving certificate, the CA trusted by the webhook.
    let first = certificate::keep(&ctx, &config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        first.new_ca && first.new_serving && first.trust,
        "{first:?}"
    );
    let issued = stored(&ctx).await;
    assert_eq!(count_certificates(&issued.ca), 1);
    assert_eq!(issued.bundle, issued.ca);
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

    // With under a third of its year left, only the serving certificate is renewed.
    clock.set("2026-10-01T00:00:00Z");
    let renewed = certificate::keep(&ctx, &config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        renewed.new_serving && !renewed.new_ca && !renewed.trust,
        "{renewed:?}"
    );
    let after = stored(&ctx).await;
    assert_ne!(after.cert, issued.cert);
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
        rotated.new_ca && rotated.new_serving && rotated.trust,
        "{rotated:?}"
    );
    let last = stored(&ctx).await;
    assert_eq!(count_certificates(&last.bundle), 2);
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
        repaired.trust && !repaired.new_ca && !repaired.new_serving,
        "{repaired:?}"
    );
    assert_eq!(stored(&ctx).await.cert, last.cert);
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_secret_from_helm_without_the_ca_key_is_taken_over() {
    let (cluster, ctx, _clock) = setup().await;
    // What the chart's genCA writes: a CA and a certificate, but no ca.key.
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
        ["the Secret holds no usable CA (certificate and key)"]
    );
    let now = stored(&ctx).await;
    assert!(verifies(&now.bundle, &now.cert, "2026-01-01T00:00:00Z"));
    cluster.shutdown().await;
}
