//! Which network controller a component talks to (design.md section 6): one given in
//! process (the simulator and the tests pass the reference controller), one at an explicit
//! URL (`--network-controller`), or the one a Service labelled
//! `network.edgeplane.io/controller: enabled` registers, looked up again from the Services
//! cache every time it is needed, so that a controller deployed or removed later is picked
//! up without a restart. gRPC clients are kept per URL.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use edgeplane_netctl::discovery::locate;
use edgeplane_netctl::{ClientOptions, GrpcNetworkController, NetworkController};
use k8s_openapi::api::core::v1::Service;

/// How a component finds its network controller.
pub struct NetworkControllers {
    source: Source,
    options: ClientOptions,
    clients: Mutex<HashMap<String, Arc<GrpcNetworkController>>>,
    /// Discovery problems already logged (each once).
    reported: Mutex<BTreeSet<String>>,
}

enum Source {
    /// Never any controller.
    None,
    /// This controller, in process.
    Fixed(Arc<dyn NetworkController>),
    /// At this URL, or (when `None`) registered by a Service.
    Remote(Option<String>),
}

impl std::fmt::Debug for NetworkControllers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            Source::None => "none".to_string(),
            Source::Fixed(_) => "in process".to_string(),
            Source::Remote(Some(url)) => url.clone(),
            Source::Remote(None) => "registered by Service".to_string(),
        };
        f.debug_struct("NetworkControllers")
            .field("source", &source)
            .finish_non_exhaustive()
    }
}

/// A controller to ask, and where it is (for messages: `in process`, a URL).
#[derive(Clone)]
pub struct Resolved {
    pub controller: Arc<dyn NetworkController>,
    pub location: String,
}

impl Resolved {
    /// The same controller, its calls timed and counted in `metrics`.
    pub fn timed(self, metrics: &crate::metrics::network::NetworkControllerMetrics) -> Resolved {
        Resolved {
            controller: metrics.wrap(self.controller),
            location: self.location,
        }
    }
}

impl NetworkControllers {
    fn with(source: Source, options: ClientOptions) -> NetworkControllers {
        NetworkControllers {
            source,
            options,
            clients: Mutex::new(HashMap::new()),
            reported: Mutex::new(BTreeSet::new()),
        }
    }

    /// No network controller, ever.
    pub fn none() -> NetworkControllers {
        Self::with(Source::None, ClientOptions::default())
    }

    /// This controller (in process, or any implementation).
    pub fn fixed(controller: Arc<dyn NetworkController>) -> NetworkControllers {
        Self::with(Source::Fixed(controller), ClientOptions::default())
    }

    /// The controller at `url` when given, else the one registered by a Service (or none).
    pub fn remote(url: Option<String>, options: ClientOptions) -> NetworkControllers {
        Self::with(Source::Remote(url.filter(|u| !u.is_empty())), options)
    }

    /// The controller to ask now, given the Services in the cache.
    pub fn resolve(&self, services: &[Arc<Service>]) -> Option<Resolved> {
        let explicit = match &self.source {
            Source::None => return None,
            Source::Fixed(c) => {
                return Some(Resolved {
                    controller: c.clone(),
                    location: "in process".into(),
                });
            }
            Source::Remote(explicit) => explicit.as_deref(),
        };
        let registering: Vec<Service> = if explicit.is_some() {
            Vec::new()
        } else {
            services
                .iter()
                .filter(|s| {
                    s.metadata.labels.as_ref().is_some_and(|l| {
                        l.contains_key(edgeplane_api::names::NETWORK_CONTROLLER_LABEL)
                    })
                })
                .map(|s| (**s).clone())
                .collect()
        };
        let (found, problems) = locate(explicit, &registering);
        if !problems.is_empty() {
            let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
            for problem in problems {
                if reported.insert(problem.clone()) {
                    tracing::warn!(%problem, "network controller discovery");
                }
            }
        }
        let url = found?.url;
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&url) {
            return Some(Resolved {
                controller: c.clone(),
                location: url,
            });
        }
        match GrpcNetworkController::new(&url, &self.options) {
            Ok(c) => {
                let c = Arc::new(c);
                clients.insert(url.clone(), c.clone());
                Some(Resolved {
                    controller: c,
                    location: url,
                })
            }
            Err(error) => {
                let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
                if reported.insert(error.to_string()) {
                    tracing::warn!(%error, "network controller discovery");
                }
                None
            }
        }
    }
}

/// `netctl serve`'s [`edgeplane_netctl::RefusalReporter`]: a Warning Event
/// `NetworkCallRefused` on the binding a refused remote call was about, through the
/// component's [`crate::context::Context`] (published in the background; a failure is
/// logged).
pub struct RefusalEvents {
    ctx: crate::context::Context,
}

impl RefusalEvents {
    pub fn new(ctx: crate::context::Context) -> RefusalEvents {
        RefusalEvents { ctx }
    }
}

impl edgeplane_netctl::RefusalReporter for RefusalEvents {
    fn refused(&self, binding: &str, note: String) {
        use crate::events::{EventSpec, reasons};
        use kube::Resource;
        let Some((namespace, name)) = binding.split_once('/') else {
            return;
        };
        let regarding = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(edgeplane_api::ConstraintPolicyBinding::api_version(&()).into()),
            kind: Some(edgeplane_api::ConstraintPolicyBinding::kind(&()).into()),
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            ..Default::default()
        };
        let event = EventSpec::warning(reasons::NETWORK_CALL_REFUSED, "Authorize", note);
        let events = self.ctx.events();
        tokio::spawn(async move { events.publish_or_log(&regarding, event).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_netctl::fake::FakeNetworkController;
    use serde_json::json;

    fn service(name: &str, label: Option<&str>) -> Arc<Service> {
        let mut s = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "edgeplane-system"},
            "spec": {"ports": [{"name": "grpc", "port": 50052}]}
        });
        if let Some(v) = label {
            s["metadata"]["labels"] = json!({"network.edgeplane.io/controller": v});
        }
        Arc::new(serde_json::from_value(s).unwrap_or_else(|e| panic!("{e}")))
    }

    #[tokio::test]
    async fn explicit_fixed_registered_or_none() {
        assert!(NetworkControllers::none().resolve(&[]).is_none());
        let fixed = NetworkControllers::fixed(Arc::new(FakeNetworkController::new()));
        assert_eq!(
            fixed.resolve(&[]).map(|r| r.location).as_deref(),
            Some("in process")
        );
        let discovered = NetworkControllers::remote(None, ClientOptions::default());
        assert!(discovered.resolve(&[service("other", None)]).is_none());
        let services = [service("other", None), service("netctl", Some("enabled"))];
        assert_eq!(
            discovered.resolve(&services).map(|r| r.location).as_deref(),
            Some("http://netctl.edgeplane-system.svc:50052")
        );
        // The client is kept.
        let a = discovered.resolve(&services).map(|r| r.controller);
        let b = discovered.resolve(&services).map(|r| r.controller);
        assert!(matches!((a, b), (Some(a), Some(b)) if Arc::ptr_eq(&a, &b)));
        let explicit = NetworkControllers::remote(
            Some("http://127.0.0.1:50052".into()),
            ClientOptions::default(),
        );
        assert_eq!(
            explicit.resolve(&services).map(|r| r.location).as_deref(),
            Some("http://127.0.0.1:50052")
        );
        let bad = NetworkControllers::remote(Some("not a url".into()), ClientOptions::default());
        assert!(bad.resolve(&[]).is_none());
    }
}
