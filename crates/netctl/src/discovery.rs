//! Finding the network controller: an explicit URL (`--network-controller URL`) wins;
//! otherwise the Service labelled `network.edgeplane.io/controller: enabled`.

use edgeplane_api::names::{ENABLED, NETWORK_CONTROLLER_LABEL};
use k8s_openapi::api::core::v1::Service;

/// Where the network controller is, and how it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// `http://<service>.<namespace>.svc:<port>`, or the explicit URL.
    pub url: String,
    /// `namespace/name` of the Service; `None` for an explicit URL.
    pub service: Option<String>,
}

/// The network controller registered by Services labelled
/// `network.edgeplane.io/controller: enabled`: the first in `namespace/name` order, on its
/// port named `grpc` or else its first port. Also returns why other Services were not used
/// (a second registration, a Service without ports). `None` when no Service registers one.
pub fn controller_from_services(services: &[Service]) -> (Option<Located>, Vec<String>) {
    let mut sorted: Vec<&Service> = services
        .iter()
        .filter(|s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(NETWORK_CONTROLLER_LABEL))
                .is_some_and(|v| v == ENABLED)
        })
        .collect();
    sorted.sort_by_key(|s| (s.metadata.namespace.clone(), s.metadata.name.clone()));
    let mut found: Option<Located> = None;
    let mut problems = Vec::new();
    for service in sorted {
        let Some(name) = service.metadata.name.as_deref() else {
            continue;
        };
        let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
        let key = format!("{namespace}/{name}");
        if let Some(first) = &found {
            problems.push(format!(
                "service {key} registers a network controller, but service {} does already",
                first.service.as_deref().unwrap_or_default()
            ));
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
                "service {key} registers a network controller but has no port"
            ));
            continue;
        };
        found = Some(Located {
            url: format!(
                "{}://{name}.{namespace}.svc:{}",
                if port.name.as_deref() == Some("grpcs") {
                    "https"
                } else {
                    "http"
                },
                port.port
            ),
            service: Some(key),
        });
    }
    (found, problems)
}

/// The controller to use: `explicit` when given, otherwise the one the Services register.
pub fn locate(explicit: Option<&str>, services: &[Service]) -> (Option<Located>, Vec<String>) {
    match explicit.filter(|u| !u.is_empty()) {
        Some(url) => (
            Some(Located {
                url: url.to_string(),
                service: None,
            }),
            Vec::new(),
        ),
        None => controller_from_services(services),
    }
}

/// Lists the Services of every namespace that carry the registration label and locates
/// the controller among them (an explicit URL is returned without asking the API).
pub async fn find(
    client: &kube::Client,
    explicit: Option<&str>,
) -> Result<(Option<Located>, Vec<String>), kube::Error> {
    if explicit.is_some_and(|u| !u.is_empty()) {
        return Ok(locate(explicit, &[]));
    }
    let api: kube::Api<Service> = kube::Api::all(client.clone());
    let selector = format!("{NETWORK_CONTROLLER_LABEL}={ENABLED}");
    let list = api
        .list(&kube::api::ListParams::default().labels(&selector))
        .await?;
    Ok(locate(None, &list.items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn service(ns: &str, name: &str, enabled: Option<&str>, ports: &[(&str, i32)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                labels: enabled.map(|v| {
                    [(NETWORK_CONTROLLER_LABEL.to_string(), v.to_string())]
                        .into_iter()
                        .collect()
                }),
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
    fn the_labelled_service_is_the_controller_and_an_explicit_url_wins() {
        let services = [
            service("web", "frontend", None, &[("http", 80)]),
            service("net", "off", Some("disabled"), &[("grpc", 1)]),
            service("z", "second", Some("enabled"), &[("grpc", 2)]),
            service(
                "edgeplane",
                "netctl",
                Some("enabled"),
                &[("metrics", 9100), ("grpc", 50052)],
            ),
            service("a", "portless", Some("enabled"), &[]),
        ];
        let (found, problems) = controller_from_services(&services);
        assert_eq!(
            found,
            Some(Located {
                url: "http://netctl.edgeplane.svc:50052".into(),
                service: Some("edgeplane/netctl".into()),
            })
        );
        assert_eq!(
            problems,
            [
                "service a/portless registers a network controller but has no port",
                "service z/second registers a network controller, but service edgeplane/netctl does already",
            ]
        );
        let (explicit, problems) = locate(Some("http://127.0.0.1:50052"), &services);
        assert_eq!(
            explicit.map(|l| l.url).as_deref(),
            Some("http://127.0.0.1:50052")
        );
        assert!(problems.is_empty());
        assert_eq!(controller_from_services(&services[..2]).0, None);
    }

    /// A port named grpcs serves TLS: the controller is called at https:// there.
    #[test]
    fn a_port_named_grpcs_is_called_over_tls() {
        let services = [service(
            "edgeplane",
            "netctl",
            Some("enabled"),
            &[("metrics", 9100), ("grpc", 50051), ("grpcs", 50052)],
        )];
        assert_eq!(
            controller_from_services(&services).0.map(|l| l.url),
            Some("https://netctl.edgeplane.svc:50052".into())
        );
    }
}
