//! Regular expressions embedded in the CRD schemas, so the API server rejects bad input at
//! admission. They are deliberately a little looser than the parsers in `edgeplane-core`
//! (which give precise messages); anything that passes admission is parsed again there.

/// A duration: one or more `<number><unit>` terms, units ns, us, µs, ms, s, m, h.
pub const DURATION: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";
/// A DNS-1123 subdomain (names of policies and of objects).
pub const DNS_SUBDOMAIN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A DNS-1123 label (target role names, rule names).
pub const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
