//! The webhook certificate keeper (`edgeplane controller --webhook-certificate-secret`):
//! keeps the Secret the webhook serves from and the MutatingWebhookConfiguration's
//! `caBundle` in step, renewing before expiry (the decision: `core::certificates`).
//!
//! Observe: read the Secret (`tls.crt`, `tls.key`, `ca.crt`, `ca.key`) and the webhook
//! configuration, parse the certificates, check keys and signatures. Decide:
//! `core::certificates::decide`. Act: issue what is due (rcgen), write the CA into every
//! webhook's `caBundle` first (the old CA stays there until it expires, so the certificate
//! still mounted keeps being trusted), then the Secret; the webhook server re-reads its
//! files when the kubelet updates the mount, with no restart. One Event says why.

use std::time::Duration;

use base64::Engine;
use edgeplane_core::certificates::{self, Certificate, Facts, Renewal};
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::Api;
use kube::api::Patch;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::json;

use crate::context::Context;
use crate::error::Error;
use crate::events::{EventSpec, reasons};

/// What the keeper keeps.
#[derive(Clone, Debug)]
pub struct KeeperConfig {
    /// The Secret's namespace (the release's) and name.
    pub namespace: String,
    pub secret: String,
    /// The MutatingWebhookConfiguration whose webhooks call this server.
    pub configuration: String,
    /// The webhook's Service: the certificate names `<service>`, `<service>.<ns>`,
    /// `<service>.<ns>.svc` and `<service>.<ns>.svc.cluster.local`.
    pub service: String,
    /// Lifetime of a new CA and of a new serving certificate.
    pub ca_validity: Duration,
    pub validity: Duration,
    /// Time between checks.
    pub interval: Duration,
}

impl KeeperConfig {
    /// The names the API server may dial the Service by.
    pub fn names(&self) -> Vec<String> {
        let (s, ns) = (&self.service, &self.namespace);
        vec![
            s.clone(),
            format!("{s}.{ns}"),
            format!("{s}.{ns}.svc"),
            format!("{s}.{ns}.svc.cluster.local"),
        ]
    }
}

/// Checks now, then every `interval`, until the context's shutdown.
pub async fn run(ctx: Context, config: KeeperConfig) {
    loop {
        match keep(&ctx, &config).await {
            Ok(_) | Err(Error::NotLeader(_)) => {}
            Err(error) => tracing::warn!(%error, "webhook certificates not kept"),
        }
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            () = tokio::time::sleep(config.interval) => {}
        }
    }
}

/// One check: renews what is due and says what it did.
pub async fn keep(ctx: &Context, config: &KeeperConfig) -> Result<Renewal, Error> {
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &config.namespace)
        .get_opt(&config.secret)
        .await
        .map_err(|e| {
            Error::kube(
                format!("reading Secret {}/{}", config.namespace, config.secret),
                e,
            )
        })?;
    let webhooks = Api::<MutatingWebhookConfiguration>::all(ctx.client.clone())
        .get(&config.configuration)
        .await
        .map_err(|e| {
            Error::kube(
                format!(
                    "reading MutatingWebhookConfiguration {}",
                    config.configuration
                ),
                e,
            )
        })?;
    let files = SecretFiles::read(secret.as_ref());
    let facts = observe(&files, &webhooks, config.names());
    let now = ctx.clock.now();
    let renewal = certificates::decide(&facts, now);
    if renewal.is_empty() {
        return Ok(renewal);
    }
    ctx.ensure_leader(|| "renewing the webhook certificate".into())?;
    let issued = issue(&files, &renewal, config, now)
        .map_err(|e| Error::Invalid(format!("issuing the webhook certificate: {e}")))?;
    if renewal.trust {
        let bundle = base64::engine::general_purpose::STANDARD.encode(&issued.bundle);
        let count = webhooks.webhooks.as_ref().map_or(0, Vec::len);
        let mut ops = Vec::new();
        for (i, webhook) in webhooks.webhooks.iter().flatten().enumerate() {
            ops.push(
                json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": webhook.name}),
            );
            ops.push(json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": bundle}));
        }
        let patch: json_patch::Patch = serde_json::from_value(json!(ops))
            .map_err(|e| Error::Invalid(format!("the caBundle patch: {e}")))?;
        ctx.patch::<MutatingWebhookConfiguration, _>(
            None,
            &config.configuration,
            &Patch::Json::<()>(patch),
            &format!(
                "trusting the webhook's new CA in the {count} webhooks of MutatingWebhookConfiguration {}",
                config.configuration
            ),
        )
        .await?;
    }
    let data = json!({
        "tls.crt": b64(&issued.cert),
        "tls.key": b64(&issued.key),
        "ca.crt": b64(&issued.bundle),
        "ca.key": b64(&issued.ca_key),
    });
    let what = format!(
        "writing the renewed webhook certificate to Secret {}/{}",
        config.namespace, config.secret
    );
    if secret.is_some() {
        ctx.patch::<Secret, _>(
            Some(&config.namespace),
            &config.secret,
            &Patch::Merge(json!({"data": data})),
            &what,
        )
        .await?;
    } else {
        let created: Secret = serde_json::from_value(json!({
            "metadata": {"name": config.secret, "namespace": config.namespace},
            "type": "kubernetes.io/tls",
            "data": data,
        }))
        .map_err(|e| Error::Invalid(format!("{what}: {e}")))?;
        ctx.apply(&created).await?;
    }
    let regarding = ObjectReference {
        api_version: Some("admissionregistration.k8s.io/v1".into()),
        kind: Some("MutatingWebhookConfiguration".into()),
        name: Some(config.configuration.clone()),
        uid: webhooks.metadata.uid.clone(),
        ..ObjectReference::default()
    };
    let what = match (renewal.new_ca, renewal.new_serving) {
        (true, _) => "a new CA and serving certificate",
        (false, true) => "a new serving certificate",
        (false, false) => "the CA in the caBundle",
    };
    ctx.events()
        .publish_or_log(
            &regarding,
            EventSpec::normal(
                reasons::CERTIFICATE_RENEWED,
                "RenewCertificate",
                format!(
                    "webhook certificate in Secret {}/{}: {what}, valid until {}: {}",
                    config.namespace,
                    config.secret,
                    issued.not_after,
                    renewal.reasons.join("; ")
                ),
            ),
        )
        .await;
    tracing::info!(reasons = ?renewal.reasons, "webhook certificate renewed");
    Ok(renewal)
}

fn b64(pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(pem)
}

/// The Secret's four files, as text (absent or not UTF-8: empty).
#[derive(Default)]
struct SecretFiles {
    cert: String,
    key: String,
    ca: String,
    ca_key: String,
}

impl SecretFiles {
    fn read(secret: Option<&Secret>) -> SecretFiles {
        let data = secret.and_then(|s| s.data.as_ref());
        let file = |name: &str| {
            data.and_then(|d| d.get(name))
                .and_then(|ByteString(bytes)| String::from_utf8(bytes.clone()).ok())
                .unwrap_or_default()
        };
        SecretFiles {
            cert: file("tls.crt"),
            key: file("tls.key"),
            ca: file("ca.crt"),
            ca_key: file("ca.key"),
        }
    }
}

/// DER of each PEM certificate in `text`, in order.
fn pem_certificates(text: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
        .filter_map(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect()
}

fn read_certificate(
    der: &[u8],
) -> Option<(Certificate, x509_parser::certificate::X509Certificate<'_>)> {
    let (_, x509) = x509_parser::parse_x509_certificate(der).ok()?;
    let validity = x509.validity();
    let dns_names = x509
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let cert = Certificate {
        not_before: Timestamp::from_second(validity.not_before.timestamp()).ok()?,
        not_after: Timestamp::from_second(validity.not_after.timestamp()).ok()?,
        dns_names,
    };
    Some((cert, x509))
}

/// Whether `key_pem` is the private key of `cert`.
fn key_matches(key_pem: &str, cert: &x509_parser::certificate::X509Certificate<'_>) -> bool {
    KeyPair::from_pem(key_pem)
        .is_ok_and(|k| k.public_key_raw() == cert.public_key().subject_public_key.data.as_ref())
}

fn observe(
    files: &SecretFiles,
    webhooks: &MutatingWebhookConfiguration,
    names: Vec<String>,
) -> Facts {
    let ca_ders = pem_certificates(&files.ca);
    let ca = ca_ders
        .first()
        .and_then(|der| read_certificate(der))
        .filter(|(_, x509)| key_matches(&files.ca_key, x509));
    let serving_ders = pem_certificates(&files.cert);
    let serving = match (&ca, serving_ders.first()) {
        (Some((_, ca_x509)), Some(der)) => read_certificate(der)
            .filter(|(_, x509)| key_matches(&files.key, x509))
            .filter(|(_, x509)| x509.verify_signature(Some(ca_x509.public_key())).is_ok())
            .map(|(c, _)| c),
        _ => None,
    };
    let trusted = match ca_ders.first() {
        Some(ca_der) if ca.is_some() => webhooks.webhooks.as_ref().is_some_and(|list| {
            !list.is_empty()
                && list.iter().all(|w| {
                    w.client_config
                        .ca_bundle
                        .as_ref()
                        .and_then(|ByteString(b)| std::str::from_utf8(b).ok())
                        .is_some_and(|bundle| pem_certificates(bundle).contains(ca_der))
                })
        }),
        _ => false,
    };
    Facts {
        ca: ca.map(|(c, _)| c),
        serving,
        names,
        trusted,
    }
}

/// What a renewal writes: PEM text.
struct Issued {
    cert: String,
    key: String,
    /// The CA first, then earlier CAs that are still valid.
    bundle: String,
    ca_key: String,
    not_after: Timestamp,
}

/// A certificate as PEM text, wrapped at 64 columns.
fn to_pem(der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn offset(t: Timestamp) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::from_unix_timestamp(t.as_second()).map_err(|e| e.to_string())
}

fn issue(
    files: &SecretFiles,
    renewal: &Renewal,
    config: &KeeperConfig,
    now: Timestamp,
) -> Result<Issued, String> {
    // An hour of slack for clocks a little behind ours.
    let start = now - jiff::SignedDuration::from_hours(1);
    let until = |d: Duration| -> Result<Timestamp, String> {
        let d = jiff::SignedDuration::try_from(d).map_err(|e| e.to_string())?;
        now.checked_add(d).map_err(|e| e.to_string())
    };
    let (ca_pem, ca_key, issuer) = if renewal.new_ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{}-ca", config.service));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = offset(start)?;
        params.not_after = offset(until(config.ca_validity)?)?;
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        let key_pem = key.serialize_pem();
        (cert.pem(), key_pem, Issuer::new(params, key))
    } else {
        let key = KeyPair::from_pem(&files.ca_key).map_err(|e| e.to_string())?;
        let first = files
            .ca
            .split_inclusive("-----END CERTIFICATE-----")
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let issuer = Issuer::from_ca_cert_pem(&first, key).map_err(|e| e.to_string())?;
        (first + "\n", files.ca_key.clone(), issuer)
    };
    // Earlier CAs stay trusted until they expire: the serving certificate they signed may
    // still be mounted in a replica that has not seen the new Secret.
    let mut bundle = ca_pem.clone();
    let ca_der = pem_certificates(&ca_pem);
    for der in pem_certificates(&files.ca) {
        let fresh = read_certificate(&der).is_some_and(|(c, _)| c.not_after > now);
        if fresh && !ca_der.contains(&der) {
            bundle.push_str(&to_pem(&der));
        }
    }
    let (cert, key, not_after) = if renewal.new_serving || renewal.new_ca {
        let mut params = CertificateParams::new(config.names()).map_err(|e| e.to_string())?;
        params.distinguished_name.push(
            DnType::CommonName,
            format!("{}.{}.svc", config.service, config.namespace),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let not_after = until(config.validity)?;
        params.not_before = offset(start)?;
        params.not_after = offset(not_after)?;
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params.signed_by(&key, &issuer).map_err(|e| e.to_string())?;
        (cert.pem(), key.serialize_pem(), not_after)
    } else {
        let not_after = pem_certificates(&files.cert)
            .first()
            .and_then(|d| read_certificate(d))
            .map_or(now, |(c, _)| c.not_after);
        (files.cert.clone(), files.key.clone(), not_after)
    };
    Ok(Issued {
        cert,
        key,
        bundle,
        ca_key,
        not_after,
    })
}
