//! When edgeplane's own certificates are renewed: the decision of the controller's
//! certificate keeper (`runtime::certificates`), from what it read of the Secrets and the
//! gate webhook's configuration. The keeper holds one CA (its key in the CA Secret) that
//! signs every kept certificate (the gate webhook's serving certificate, the gRPC
//! parties' certificates for mutual TLS); each is renewed once less than a third of its
//! lifetime is left, as cert-manager does by default, so a renewal has weeks to reach
//! every replica.

use jiff::{SignedDuration, Timestamp};

/// What was read of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
}

impl Certificate {
    /// Whether less than a third of its lifetime is left at `now` (or it is not valid yet).
    pub fn due(&self, now: Timestamp) -> bool {
        let lifetime = self.not_after.duration_since(self.not_before);
        let left = self.not_after.duration_since(now);
        now < self.not_before || left < lifetime / 3 || left <= SignedDuration::ZERO
    }
}

/// One kept certificate, as read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Leaf {
    /// Its Secret's name, for the reasons.
    pub secret: String,
    /// The certificate (`tls.crt`), when it parses, its key matches, and the CA signed it.
    pub cert: Option<Certificate>,
    /// The names it must carry.
    pub names: Vec<String>,
    /// Whether its Secret's `ca.crt` holds the CA (what its peers are checked against).
    pub trusts_ca: bool,
}

/// What the keeper observed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// The CA (the CA Secret's `ca.crt`'s first certificate), when it parses and its key
    /// (`ca.key`) is there and matches.
    pub ca: Option<Certificate>,
    pub leaves: Vec<Leaf>,
    /// Whether every webhook of the gate's configuration trusts the CA (its `caBundle`
    /// holds it); `None` when no webhook configuration is kept.
    pub trusted: Option<bool>,
}

/// What to do, in this order: trust, then the CA Secret, then the leaves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Renewal {
    /// Make a new CA (the previous one stays in the bundles until it expires, so that
    /// certificates still in use keep being trusted).
    pub new_ca: bool,
    /// Indices into [`Facts::leaves`] to issue again (every one when the CA is new).
    pub reissue: Vec<usize>,
    /// Indices of leaves whose certificate stays but whose `ca.crt` is rewritten.
    pub rebundle: Vec<usize>,
    /// Write the CA into every webhook's `caBundle`; done before any Secret changes.
    pub trust: bool,
    /// Why, for the Event.
    pub reasons: Vec<String>,
}

impl Renewal {
    pub fn is_empty(&self) -> bool {
        !self.new_ca && self.reissue.is_empty() && self.rebundle.is_empty() && !self.trust
    }
}

/// The renewal `facts` call for at `now`.
pub fn decide(facts: &Facts, now: Timestamp) -> Renewal {
    let mut r = Renewal::default();
    match &facts.ca {
        None => {
            r.new_ca = true;
            r.reasons
                .push("the CA Secret holds no usable CA (certificate and key)".into());
        }
        Some(ca) if ca.due(now) => {
            r.new_ca = true;
            r.reasons.push(format!(
                "the CA expires at {} (less than a third of its lifetime left)",
                ca.not_after
            ));
        }
        Some(_) => {}
    }
    for (i, leaf) in facts.leaves.iter().enumerate() {
        if r.new_ca {
            r.reissue.push(i);
            continue;
        }
        let Some(cert) = &leaf.cert else {
            r.reissue.push(i);
            r.reasons.push(format!(
                "{}: no certificate signed by the CA, with its key",
                leaf.secret
            ));
            continue;
        };
        let missing: Vec<&str> = leaf
            .names
            .iter()
            .filter(|n| !cert.dns_names.contains(n))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            r.reissue.push(i);
            r.reasons.push(format!(
                "{}: the certificate does not name {}",
                leaf.secret,
                missing.join(", ")
            ));
        } else if cert.due(now) {
            r.reissue.push(i);
            r.reasons.push(format!(
                "{}: the certificate expires at {} (less than a third of its lifetime left)",
                leaf.secret, cert.not_after
            ));
        } else if !leaf.trusts_ca {
            r.rebundle.push(i);
            r.reasons
                .push(format!("{}: its ca.crt does not hold the CA", leaf.secret));
        }
    }
    match facts.trusted {
        Some(_) if r.new_ca => r.trust = true,
        Some(false) => {
            r.trust = true;
            r.reasons
                .push("the webhook configuration's caBundle does not hold the CA".into());
        }
        _ => {}
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn cert(from: &str, to: &str, names: &[&str]) -> Certificate {
        Certificate {
            not_before: at(from),
            not_after: at(to),
            dns_names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn leaf(secret: &str, name: &str) -> Leaf {
        Leaf {
            secret: secret.into(),
            cert: Some(cert(
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
                &[name],
            )),
            names: vec![name.into()],
            trusts_ca: true,
        }
    }

    fn facts() -> Facts {
        Facts {
            ca: Some(cert("2026-01-01T00:00:00Z", "2036-01-01T00:00:00Z", &[])),
            leaves: vec![
                leaf("webhook", "wh.ns.svc"),
                leaf("netctl", "netctl.ns.svc"),
            ],
            trusted: Some(true),
        }
    }

    #[test]
    fn nothing_to_do_while_all_are_fresh_and_trusted() {
        assert_eq!(
            decide(&facts(), at("2026-06-01T00:00:00Z")),
            Renewal::default()
        );
    }

    #[test]
    fn a_certificate_is_renewed_with_a_third_of_its_life_left() {
        // 365 days of life: due once fewer than 121.67 days are left (from 2026-09-01T16:00).
        assert!(decide(&facts(), at("2026-09-01T00:00:00Z")).is_empty());
        let mut f = facts();
        f.leaves[1].cert = Some(cert(
            "2026-03-01T00:00:00Z",
            "2027-03-01T00:00:00Z",
            &["netctl.ns.svc"],
        ));
        assert_eq!(
            decide(&f, at("2026-09-02T00:00:00Z")),
            Renewal {
                reissue: vec![0],
                reasons: vec!["webhook: the certificate expires at 2027-01-01T00:00:00Z (less than a third of its lifetime left)".into()],
                ..Renewal::default()
            }
        );
    }

    #[test]
    fn a_new_ca_reissues_every_certificate_and_is_trusted_first() {
        let mut f = facts();
        f.ca = None;
        let r = decide(&f, at("2026-06-01T00:00:00Z"));
        assert_eq!(
            r,
            Renewal {
                new_ca: true,
                reissue: vec![0, 1],
                trust: true,
                reasons: vec!["the CA Secret holds no usable CA (certificate and key)".into()],
                ..Renewal::default()
            }
        );
        let r = decide(&facts(), at("2033-01-01T00:00:00Z"));
        assert!(r.new_ca && r.reissue == [0, 1] && r.trust, "{r:?}");
        // Without a webhook configuration there is nothing to trust.
        let mut f = facts();
        f.trusted = None;
        assert!(!decide(&f, at("2033-01-01T00:00:00Z")).trust);
    }

    #[test]
    fn missing_names_untrusted_cas_and_stale_bundles_are_repaired() {
        let mut f = facts();
        f.leaves[0].names.push("wh.ns.svc.cluster.local".into());
        f.leaves[1].trusts_ca = false;
        f.trusted = Some(false);
        assert_eq!(
            decide(&f, at("2026-06-01T00:00:00Z")),
            Renewal {
                reissue: vec![0],
                rebundle: vec![1],
                trust: true,
                reasons: vec![
                    "webhook: the certificate does not name wh.ns.svc.cluster.local".into(),
                    "netctl: its ca.crt does not hold the CA".into(),
                    "the webhook configuration's caBundle does not hold the CA".into(),
                ],
                ..Renewal::default()
            }
        );
    }

    #[test]
    fn a_certificate_not_yet_valid_or_missing_is_issued() {
        let mut f = facts();
        f.leaves[0].cert = Some(cert(
            "2027-01-01T00:00:00Z",
            "2028-01-01T00:00:00Z",
            &["wh.ns.svc"],
        ));
        f.leaves[1].cert = None;
        let r = decide(&f, at("2026-06-01T00:00:00Z"));
        assert_eq!(r.reissue, [0, 1]);
        assert_eq!(
            r.reasons[1],
            "netctl: no certificate signed by the CA, with its key"
        );
    }
}
