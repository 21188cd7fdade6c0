//! The certificate keeper (`edgeplane controller --ca-secret`): one CA, kept in its own
//! Secret, that signs edgeplane's certificates (the gate webhook's serving certificate,
//! the gRPC parties' certificates for mutual TLS), each kept renewed in its Secret, and
//! the gate webhook configuration's `caBundle` kept trusting the CA. The decision is
//! `core::certificates::decide`.
//!
//! Observe: read the Secrets (`tls.crt`, `tls.key`, `ca.crt`; the CA Secret's `ca.crt` and
//! `ca.key`) and the webhook configuration; parse the certificates, check keys and
//! signatures. Act: issue what is due (rcgen); write the CA into every webhook's
//! `caBundle` first, then the CA Secret, then each certificate's Secret with the CA
//! bundle as its `ca.crt` (a previous CA stays in every bundle until it expires, so the
//! certificates still mounted keep being trusted, by the API server and by gRPC peers).
//! The servers and clients re-read their files when the kubelet updates the mounts, with
//! no restart. One Event on the CA Secret says what and why.

use std::time::Duration;

use base64::Engine;
use edgeplane_core::certificates::{self, Certificate, Facts, Leaf, Renewal};
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

/// One certificate the keeper keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// Its Secret (in the keeper's namespace).
    pub secret: String,
    /// DNS names; the first is also the common name (the gRPC caller's identity).
    pub names: Vec<String>,
    /// Also a client certificate (mutual TLS), not only a server's.
    pub client: bool,
}

impl Kept {
    /// A Service's certificate: `<service>`, `<service>.<ns>`, `<service>.<ns>.svc` and
    /// `<service>.<ns>.svc.cluster.local`.
    pub fn for_service(secret: &str, service: &str, namespace: &str, client: bool) -> Kept {
        Kept {
            secret: secret.into(),
            names: vec![
                service.to_string(),
                format!("{service}.{namespace}"),
                format!("{service}.{namespace}.svc"),
                format!("{service}.{namespace}.svc.cluster.local"),
            ],
            client,
        }
    }
}

/// What the keeper keeps.
#[derive(Clone, Debug)]
pub struct KeeperConfig {
    /// The namespace of every Secret (the release's).
    pub namespace: String,
    /// The CA's Secret (`ca.crt`: the CA, then earlier CAs still valid; `ca.key`).
    pub ca_secret: String,
    pub certificates: Vec<Kept>,
    /// The gate's MutatingWebhookConfiguration, whose webhooks must trust the CA.
    pub webhook_configuration: Option<String>,
    /// Lifetime of a new CA and of a new certificate.
    pub ca_validity: Duration,
    pub validity: Duration,
    /// Time between checks.
    pub interval: Duration,
}

/// Checks now, then every `interval`, until the context's shutdown.
pub async fn run(ctx: Context, config: KeeperConfig) {
    loop {
        match keep(&ctx, &config).await {
            Ok(_) | Err(Error::NotLeader(_)) => {}
            Err(error) => tracing::warn!(%error, "certificates not kept"),
        }
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            () = tokio::time::sleep(config.interval) => {}
        }
    }
}

/// One check: renews what is due and says what it did.
pub async fn keep(ctx: &Context, config: &KeeperConfig) -> Result<Renewal, Error> {
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &config.namespace);
    let read = |name: String| {
        let secrets = secrets.clone();
        let namespace = config.namespace.clone();
        async move {
            secrets
                .get_opt(&name)
                .await
                .map_err(|e| Error::kube(format!("reading Secret {namespace}/{name}"), e))
        }
    };
    let ca_secret = read(config.ca_secret.clone()).await?;
    let ca_files = SecretFiles::read(ca_secret.as_ref());
    let mut leaf_files = Vec::new();
    let mut leaf_exists = Vec::new();
    for kept in &config.certificates {
        let secret = read(kept.secret.clone()).await?;
        leaf_exists.push(secret.is_some());
        leaf_files.push(SecretFiles::read(secret.as_ref()));
    }
    let webhooks = match &config.webhook_configuration {
        Some(name) => Some(
            Api::<MutatingWebhookConfiguration>::all(ctx.client.clone())
                .get(name)
                .await
                .map_err(|e| {
                    Error::kube(format!("reading MutatingWebhookConfiguration {name}"), e)
                })?,
        ),
        None => None,
    };
    let facts = observe(&ca_files, config, &leaf_files, webhooks.as_ref());
    let now = ctx.clock.now();
    let renewal = certificates::decide(&facts, now);
    if renewal.is_empty() {
        return Ok(renewal);
    }
    ctx.ensure_leader(|| "renewing certificates".into())?;
    let issued = issue(&ca_files, &leaf_files, &renewal, config, now)
        .map_err(|e| Error::Invalid(format!("issuing certificates: {e}")))?;
    if let (true, Some(webhooks), Some(name)) =
        (renewal.trust, &webhooks, &config.webhook_configuration)
    {
        trust(ctx, name, webhooks, &issued.bundle).await?;
    }
    if renewal.new_ca {
        write_secret(
            ctx,
            config,
            &config.ca_secret,
            ca_secret.is_some(),
            "Opaque",
            json!({"ca.crt": b64(&issued.bundle), "ca.key": b64(&issued.ca_key)}),
        )
        .await?;
    }
    for (i, kept) in config.certificates.iter().enumerate() {
        let data = match issued.leaves.iter().find(|(j, ..)| *j == i) {
            Some((_, cert, key)) => {
                json!({"tls.crt": b64(cert), "tls.key": b64(key), "ca.crt": b64(&issued.bundle)})
            }
            None if renewal.rebundle.contains(&i) => json!({"ca.crt": b64(&issued.bundle)}),
            None => continue,
        };
        // The chart creates the Secrets empty (type Opaque, which cannot change): those
        // are patched; only a missing one is created.
        write_secret(
            ctx,
            config,
            &kept.secret,
            leaf_exists[i],
            "kubernetes.io/tls",
            data,
        )
        .await?;
    }
    let regarding = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Secret".into()),
        namespace: Some(config.namespace.clone()),
        name: Some(config.ca_secret.clone()),
        uid: ca_secret.and_then(|s| s.metadata.uid),
        ..ObjectReference::default()
    };
    let renewed: Vec<&str> = renewal
        .reissue
        .iter()
        .filter_map(|i| config.certificates.get(*i))
        .map(|k| k.secret.as_str())
        .collect();
    let mut what = Vec::new();
    if renewal.new_ca {
        what.push("a new CA".to_string());
    }
    if !renewed.is_empty() {
        what.push(format!("new certificates in {}", renewed.join(", ")));
    }
    if what.is_empty() {
        what.push("the CA bundles".to_string());
    }
    ctx.events()
        .publish_or_log(
            &regarding,
            EventSpec::normal(
                reasons::CERTIFICATE_RENEWED,
                "RenewCertificate",
                format!("{}: {}", what.join(" and "), renewal.reasons.join("; ")),
            ),
        )
        .await;
    tracing::info!(reasons = ?renewal.reasons, "certificates renewed");
    Ok(renewal)
}

async fn trust(
    ctx: &Context,
    name: &str,
    webhooks: &MutatingWebhookConfiguration,
    bundle: &str,
) -> Result<(), Error> {
    let bundle = b64(bundle);
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
        name,
        &Patch::Json::<()>(patch),
        &format!("trusting the new CA in the webhooks of MutatingWebhookConfiguration {name}"),
    )
    .await?;
    Ok(())
}

async fn write_secret(
    ctx: &Context,
    config: &KeeperConfig,
    name: &str,
    exists: bool,
    type_: &str,
    data: serde_json::Value,
) -> Result<(), Error> {
    let what = format!("writing certificates to Secret {}/{name}", config.namespace);
    if exists {
        ctx.patch::<Secret, _>(
            Some(&config.namespace),
            name,
            &Patch::Merge(json!({"data": data})),
            &what,
        )
        .await?;
    } else {
        let created: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": config.namespace},
            "type": type_,
            "data": data,
        }))
        .map_err(|e| Error::Invalid(format!("{what}: {e}")))?;
        ctx.apply(&created).await?;
    }
    Ok(())
}

fn b64(pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(pem)
}

/// A Secret's files, as text (absent or not UTF-8: empty).
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

/// Whether a PEM bundle holds the certificate `der`.
fn holds(bundle: &str, der: &[u8]) -> bool {
    pem_certificates(bundle).iter().any(|d| d == der)
}

fn observe(
    ca_files: &SecretFiles,
    config: &KeeperConfig,
    leaves: &[SecretFiles],
    webhooks: Option<&MutatingWebhookConfiguration>,
) -> Facts {
    let ca_ders = pem_certificates(&ca_files.ca);
    let ca = ca_ders
        .first()
        .and_then(|der| read_certificate(der))
        .filter(|(_, x509)| key_matches(&ca_files.ca_key, x509));
    let ca_der = ca.as_ref().and(ca_ders.first());
    let leaves = config
        .certificates
        .iter()
        .zip(leaves)
        .map(|(kept, files)| {
            let cert = match (&ca, pem_certificates(&files.cert).first()) {
                (Some((_, ca_x509)), Some(der)) => read_certificate(der)
                    .filter(|(_, x509)| key_matches(&files.key, x509))
                    .filter(|(_, x509)| x509.verify_signature(Some(ca_x509.public_key())).is_ok())
                    .map(|(c, _)| c),
                _ => None,
            };
            Leaf {
                secret: kept.secret.clone(),
                cert,
                names: kept.names.clone(),
                trusts_ca: ca_der.is_some_and(|der| holds(&files.ca, der)),
            }
        })
        .collect();
    let trusted = webhooks.map(|w| {
        ca_der.is_some_and(|der| {
            w.webhooks.as_ref().is_some_and(|list| {
                !list.is_empty()
                    && list.iter().all(|w| {
                        w.client_config
                            .ca_bundle
                            .as_ref()
                            .and_then(|ByteString(b)| std::str::from_utf8(b).ok())
                            .is_some_and(|bundle| holds(bundle, der))
                    })
            })
        })
    });
    Facts {
        ca: ca.map(|(c, _)| c),
        leaves,
        trusted,
    }
}

/// What a renewal writes: PEM text.
struct Issued {
    /// The CA first, then earlier CAs that are still valid.
    bundle: String,
    ca_key: String,
    /// (index into the kept certificates, certificate, key).
    leaves: Vec<(usize, String, String)>,
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
    ca_files: &SecretFiles,
    leaves: &[SecretFiles],
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
    let previous = pem_certificates(&ca_files.ca);
    let (ca_der, ca_key, issuer) = if renewal.new_ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{}-ca", config.ca_secret));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = offset(start)?;
        params.not_after = offset(until(config.ca_validity)?)?;
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        let key_pem = key.serialize_pem();
        (cert.der().to_vec(), key_pem, Issuer::new(params, key))
    } else {
        let der = previous.first().cloned().unwrap_or_default();
        let key = KeyPair::from_pem(&ca_files.ca_key).map_err(|e| e.to_string())?;
        let issuer = Issuer::from_ca_cert_pem(&to_pem(&der), key).map_err(|e| e.to_string())?;
        (der, ca_files.ca_key.clone(), issuer)
    };
    // Earlier CAs stay trusted until they expire: certificates they signed may still be
    // mounted in a replica that has not seen its new Secret. The kept Secrets' own bundles
    // count too (a CA Secret lost or replaced must not untrust what is still served).
    let mut bundle = to_pem(&ca_der);
    let mut seen = vec![ca_der.clone()];
    let earlier = previous
        .into_iter()
        .chain(leaves.iter().flat_map(|f| pem_certificates(&f.ca)));
    for der in earlier {
        let fresh = read_certificate(&der).is_some_and(|(c, _)| c.not_after > now);
        if fresh && !seen.contains(&der) {
            bundle.push_str(&to_pem(&der));
            seen.push(der);
        }
    }
    let mut issued = Vec::new();
    for &i in &renewal.reissue {
        let Some(kept) = config.certificates.get(i) else {
            continue;
        };
        let mut params = CertificateParams::new(kept.names.clone()).map_err(|e| e.to_string())?;
        if let Some(first) = kept.names.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if kept.client {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.not_before = offset(start)?;
        params.not_after = offset(until(config.validity)?)?;
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params.signed_by(&key, &issuer).map_err(|e| e.to_string())?;
        issued.push((i, cert.pem(), key.serialize_pem()));
    }
    Ok(Issued {
        bundle,
        ca_key,
        leaves: issued,
    })
}
