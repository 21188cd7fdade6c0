//! When the webhook's certificates are renewed: the decision of the controller's
//! certificate keeper (`runtime::webhook::certificate`), from what it read of the Secret
//! and the webhook configuration. The keeper holds a CA (its key in the Secret) that
//! signs the serving certificate the API server checks against the configuration's
//! `caBundle`; each is renewed once less than a third of its lifetime is left, as
//! cert-manager does by default, so a renewal has weeks to reach every replica.

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

/// What the keeper observed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// The CA in the Secret (`ca.crt`'s first certificate), when it parses and its key
    /// (`ca.key`) is there and matches.
    pub ca: Option<Certificate>,
    /// The serving certificate (`tls.crt`), when it parses, its key matches, and the CA
    /// above signed it.
    pub serving: Option<Certificate>,
    /// The names the webhook's Service answers to.
    pub names: Vec<String>,
    /// Whether every webhook of the configuration trusts the CA above (its `caBundle`
    /// holds it).
    pub trusted: bool,
}

/// What to do, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Renewal {
    /// Make a new CA (the previous one stays in the bundle until it expires, so that the
    /// serving certificate still in use keeps being trusted).
    pub new_ca: bool,
    /// Issue a new serving certificate from the (new) CA.
    pub new_serving: bool,
    /// Write the CA into every webhook's `caBundle`; done before the Secret changes.
    pub trust: bool,
    /// Why, for the Event.
    pub reasons: Vec<String>,
}

impl Renewal {
    pub fn is_empty(&self) -> bool {
        !(self.new_ca || self.new_serving || self.trust)
    }
}

/// The renewal `facts` call for at `now`.
pub fn decide(facts: &Facts, now: Timestamp) -> Renewal {
    let mut r = Renewal::default();
    match &facts.ca {
        None => {
            r.new_ca = true;
            r.reasons
                .push("the Secret holds no usable CA (certificate and key)".into());
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
    match &facts.serving {
        _ if r.new_ca => r.new_serving = true,
        None => {
            r.new_serving = true;
            r.reasons.push(
                "the Secret holds no serving certificate signed by its CA, with its key".into(),
            );
        }
        Some(serving) => {
            let missing: Vec<&str> = facts
                .names
                .iter()
                .filter(|n| !serving.dns_names.contains(n))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                r.new_serving = true;
                r.reasons.push(format!(
                    "the serving certificate does not name {}",
                    missing.join(", ")
                ));
            } else if serving.due(now) {
                r.new_serving = true;
                r.reasons.push(format!(
                    "the serving certificate expires at {} (less than a third of its lifetime left)",
                    serving.not_after
                ));
            }
        }
    }
    if r.new_ca || !facts.trusted {
        r.trust = true;
        if !r.new_ca {
            r.reasons
                .push("the webhook configuration's caBundle does not hold the CA".into());
        }
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

    fn facts() -> Facts {
        Facts {
            ca: Some(cert("2026-01-01T00:00:00Z", "2036-01-01T00:00:00Z", &[])),
            serving: Some(cert(
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
                &["wh.ns.svc"],
            )),
            names: vec!["wh.ns.svc".into()],
            trusted: true,
        }
    }

    #[test]
    fn nothing_to_do_while_both_are_fresh_and_trusted() {
        assert_eq!(
            decide(&facts(), at("2026-06-01T00:00:00Z")),
            Renewal::default()
        );
    }

    #[test]
    fn the_serving_certificate_is_renewed_with_a_third_of_its_life_left() {
        // 365 days of life: due once fewer than 121.67 days are left (from 2026-09-01T16:00).
        assert!(decide(&facts(), at("2026-09-01T00:00:00Z")).is_empty());
        assert_eq!(
            decide(&facts(), at("2026-09-02T00:00:00Z")),
            Renewal {
                new_serving: true,
                reasons: vec!["the serving certificate expires at 2027-01-01T00:00:00Z (less than a third of its lifetime left)".into()],
                ..Renewal::default()
            }
        );
    }

    #[test]
    fn a_new_ca_reissues_the_serving_certificate_and_is_trusted_first() {
        let mut f = facts();
        f.ca = None;
        let r = decide(&f, at("2026-06-01T00:00:00Z"));
        assert!(r.new_ca && r.new_serving && r.trust);
        assert_eq!(
            r.reasons,
            ["the Secret holds no usable CA (certificate and key)"]
        );
        let r = decide(&facts(), at("2033-01-01T00:00:00Z"));
        assert!(r.new_ca && r.new_serving && r.trust, "{r:?}");
    }

    #[test]
    fn a_missing_name_or_an_untrusted_ca_is_repaired() {
        let mut f = facts();
        f.names.push("wh.ns.svc.cluster.local".into());
        f.trusted = false;
        assert_eq!(
            decide(&f, at("2026-06-01T00:00:00Z")),
            Renewal {
                new_serving: true,
                trust: true,
                reasons: vec![
                    "the serving certificate does not name wh.ns.svc.cluster.local".into(),
                    "the webhook configuration's caBundle does not hold the CA".into(),
                ],
                ..Renewal::default()
            }
        );
    }

    #[test]
    fn a_certificate_not_yet_valid_is_due() {
        let mut f = facts();
        f.serving = Some(cert(
            "2027-01-01T00:00:00Z",
            "2028-01-01T00:00:00Z",
            &["wh.ns.svc"],
        ));
        assert!(decide(&f, at("2026-06-01T00:00:00Z")).new_serving);
    }
}
