//! Finding external providers from the Services that register them.

use std::collections::BTreeMap;

use edgeplane_api::names::{ENABLED, PROVIDER_LABEL_PREFIX};
use k8s_openapi::api::core::v1::Service;

/// A provider registered by a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredProvider {
    pub rule: String,
    /// `http://<service>.<namespace>.svc:<port>`.
    pub url: String,
    /// `namespace/name` of the Service.
    pub service: String,
}

/// The providers registered by Services labelled `constraint.edgeplane.io/provider-<rule>:
/// enabled` (one Service may register several rules). The port is the one named `grpc`,
/// or else the Service's first port. When two Services register one rule, the first in
/// `namespace/name` order wins. Also returns why some registrations were not used.
pub fn providers_from_services(services: &[Service]) -> (Vec<DiscoveredProvider>, Vec<String>) {
    let mut sorted: Vec<&Service> = services.iter().collect();
    sorted.sort_by_key(|s| (s.metadata.namespace.clone(), s.metadata.name.clone()));
    let mut found: BTreeMap<String, DiscoveredProvider> = BTreeMap::new();
    let mut problems = Vec::new();
    for service in sorted {
        let Some(name) = service.metadata.name.as_deref() else {
            continue;
        };
        let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
        let key = format!("{namespace}/{name}");
        let rules: Vec<&str> = service
            .metadata
            .labels
            .iter()
            .flatten()
            .filter(|(_, v)| v.as_str() == ENABLED)
            .filter_map(|(k, _)| k.strip_prefix(PROVIDER_LABEL_PREFIX))
            .filter(|rule| !rule.is_empty())
            .collect();
        if rules.is_empty() {
            continue;
        }
        let ports = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .map(Vec::as_slice)
            .unwrap_or_default();
        // A port named `grpcs` serves TLS (the chart names it so when `tls.enabled`).
        let port = ports
            .iter()
            .find(|p| p.name.as_deref() == Some("grpcs"))
            .or_else(|| ports.iter().find(|p| p.name.as_deref() == Some("grpc")))
            .or(ports.first());
        let Some(port) = port else {
            problems.push(format!(
                "service {key} registers {} but has no port",
                rules.join(", ")
            ));
            continue;
        };
        for rule in rules {
            if let Some(first) = found.get(rule) {
                problems.push(format!(
                    "service {key} registers {rule}, which service {} already provides",
                    first.service
                ));
                continue;
            }
            found.insert(
                rule.to_string(),
                DiscoveredProvider {
                    rule: rule.to_string(),
                    url: format!(
                        "{}://{name}.{namespace}.svc:{}",
                        if port.name.as_deref() == Some("grpcs") {
                            "https"
                        } else {
                            "http"
                        },
                        port.port
                    ),
                    service: key.clone(),
                },
            );
        }
    }
    (found.into_values().collect(), problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn service(ns: &str, name: &str, labels: &[(&str, &str)], ports: &[(&str, i32)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p)| ServicePort {
                            name: (!n.is_empty()).then(|| n.to_string()),
                            port: *p,
                            ..ServicePort::default()
                        })
                        .collect(),
                ),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn services_register_providers_by_label() {
        let services = [
            service(
                "net",
                "probe",
                &[
                    ("constraint.edgeplane.io/provider-latency", "enabled"),
                    ("constraint.edgeplane.io/provider-jitter", "enabled"),
                    ("app", "probe"),
                ],
                &[("metrics", 9100), ("grpc", 50051)],
            ),
            service(
                "gpu",
                "temps",
                &[(
                    "constraint.edgeplane.io/provider-gpu-temperature",
                    "enabled",
                )],
                &[("", 8080)],
            ),
            service(
                "x",
                "disabled",
                &[("constraint.edgeplane.io/provider-cpu", "disabled")],
                &[("grpc", 1)],
            ),
            service(
                "z",
                "late",
                &[("constraint.edgeplane.io/provider-latency", "enabled")],
                &[("grpc", 2)],
            ),
            service(
                "y",
                "portless",
                &[("constraint.edgeplane.io/provider-loss", "enabled")],
                &[],
            ),
        ];
        let (found, problems) = providers_from_services(&services);
        let urls: Vec<(&str, &str)> = found
            .iter()
            .map(|p| (p.rule.as_str(), p.url.as_str()))
            .collect();
        assert_eq!(
            urls,
            [
                ("gpu-temperature", "http://temps.gpu.svc:8080"),
                ("jitter", "http://probe.net.svc:50051"),
                ("latency", "http://probe.net.svc:50051"),
            ]
        );
        assert_eq!(
            problems,
            [
                "service y/portless registers loss but has no port",
                "service z/late registers latency, which service net/probe already provides",
            ]
        );
    }
}
