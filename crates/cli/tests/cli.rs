//! The `edgeplane` binary, run as a user would run it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A runtime for a gRPC server of the test's, and a listener on a free loopback port.
fn loopback() -> (
    tokio::runtime::Runtime,
    tokio::net::TcpListener,
    std::net::SocketAddr,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let address = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("address: {e}"));
    (runtime, listener, address)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn edgeplane(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(args)
        .current_dir(repo())
        .output();
    match output {
        Ok(o) => o,
        Err(e) => panic!("cannot run edgeplane: {e}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

mod check {
    use super::*;

    /// Every malformed manifest under tests/invalid is rejected with exit status 2 and the
    /// message its first line expects; nothing panics.
    #[test]
    fn invalid_manifests_are_rejected_with_located_messages() {
        let dir = repo().join("tests/invalid");
        // Files only: tests/invalid/scenarios holds the simulator's (see mod sim).
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.retain(|p| p.is_file());
        entries.sort();
        assert!(
            entries.len() >= 15,
            "expected the malformed examples in {}",
            dir.display()
        );
        for path in entries {
            let content = std::fs::read_to_string(&path).unwrap_or_default();
            let expected = content
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .map(str::trim);
            let Some(expected) = expected else {
                panic!("{}: first line must be `# expect: ...`", path.display())
            };
            let relative = format!(
                "tests/invalid/{}",
                path.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
            );
            let out = edgeplane(&["check", "-f", &relative]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{relative}: {stderr}");
            assert!(!stderr.contains("panicked"), "{relative}: {stderr}");
            let wanted = format!("error: tests/invalid/{expected}");
            assert!(
                stderr.starts_with(&wanted),
                "{relative}:\n  expected: {wanted}\n  got:      {stderr}"
            );
        }
    }

    #[test]
    fn examples_give_the_expected_bindings() {
        let out = edgeplane(&[
            "check",
            "-f",
            "examples/ar-app",
            "-f",
            "examples/turnbuckle",
            "-o",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let bindings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let list = bindings.as_array().cloned().unwrap_or_default();
        let count = |offer: &str| list.iter().filter(|b| b["offer"] == offer).count();
        // 3 renderers x 1 game-state, 3 renderers x 1 ingest, 3 single renderers.
        assert_eq!(count("ar/ar-game-state"), 3);
        assert_eq!(count("ar/ar-video"), 3);
        assert_eq!(count("ar/ar-render-node"), 3);
        assert_eq!(count("default/gold-offer"), 1);
        assert_eq!(list.len(), 12);
        let gold = list
            .iter()
            .find(|b| b["offer"] == "default/gold-offer")
            .cloned()
            .unwrap_or_default();
        assert_eq!(gold["targets"]["source"], "Pod default/hello-client");
        assert_eq!(gold["targets"]["destination"], "Pod default/hello-server");
        assert!(
            gold["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("gold-offer-") && n.len() <= 63)
        );
        // Names are deterministic: a second run gives the same output.
        let again = edgeplane(&[
            "check",
            "-f",
            "examples/ar-app",
            "-f",
            "examples/turnbuckle",
            "-o",
            "json",
        ]);
        assert_eq!(again.stdout, out.stdout);
    }

    #[test]
    fn table_output_and_stdin() {
        let manifests =
            std::fs::read(repo().join("examples/turnbuckle/policies.yaml")).unwrap_or_default();
        let pods = std::fs::read(repo().join("examples/turnbuckle/hello.yaml")).unwrap_or_default();
        let mut input = manifests;
        input.extend_from_slice(b"\n---\n");
        input.extend_from_slice(&pods);
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args(["check", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin
                .write_all(&input)
                .unwrap_or_else(|e| panic!("write: {e}"));
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait: {e}"));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let header: Vec<&str> = stdout
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(header, ["OFFER", "BINDING", "TARGETS"]);
        assert!(
            stdout
                .contains("source=Pod default/hello-client, destination=Pod default/hello-server"),
            "{stdout}"
        );
        assert!(text(&out.stderr).contains("3 bindings"));
    }

    #[test]
    fn missing_file_is_an_input_error() {
        let out = edgeplane(&["check", "-f", "does/not/exist.yaml"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).starts_with("error: does/not/exist.yaml: cannot read:"));
    }
}

mod crds {
    use super::*;

    #[test]
    fn crds_prints_every_crd() {
        let out = edgeplane(&["crds"]);
        assert_eq!(out.status.code(), Some(0));
        let yaml = text(&out.stdout);
        for name in [
            "constraintpolicies.constraint.edgeplane.io",
            "constraintpolicyoffers.constraint.edgeplane.io",
            "constraintpolicybindings.constraint.edgeplane.io",
            "networktopologies.network.edgeplane.io",
        ] {
            assert!(yaml.contains(&format!("name: {name}")), "{name} missing");
        }
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml).unwrap_or_default();
        assert!(docs.iter().all(|d| d["kind"] == "CustomResourceDefinition"));
        assert_eq!(docs.len(), edgeplane_api::crdgen::all().len());
    }

    #[test]
    fn version() {
        let out = edgeplane(&["version"]);
        assert!(text(&out.stdout).starts_with("edgeplane "));
    }
}

/// `check` evaluating placed pods on the metro example, with hand-computed answers.
mod evaluate {
    use super::*;
    use serde_json::Value;

    fn metro_json(extra: &[&str]) -> (Vec<Value>, String) {
        let mut args = vec!["check", "-f", "examples/metro", "-o", "json"];
        args.extend_from_slice(extra);
        let out = edgeplane(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (list.as_array().cloned().unwrap_or_default(), stderr)
    }

    /// The binding of `offer` whose renderer is `renderer`.
    fn binding<'a>(list: &'a [Value], offer: &str, renderer: &str) -> &'a Value {
        let wanted = format!("Pod ar/{renderer}");
        list.iter()
            .find(|b| b["offer"] == offer && b["targets"]["renderer"] == wanted.as_str())
            .unwrap_or_else(|| panic!("no binding of {offer} for {renderer}"))
    }

    /// (value, compliance) of a rule of a binding.
    fn rule(binding: &Value, name: &str) -> (String, String) {
        let rules = binding["rules"].as_array().cloned().unwrap_or_default();
        let r = rules
            .iter()
            .find(|r| r["rule"] == name)
            .unwrap_or_else(|| panic!("no rule {name} in {binding}"));
        (
            r["value"].as_str().unwrap_or("-").to_string(),
            r["compliance"].as_str().unwrap_or("-").to_string(),
        )
    }

    fn pair(value: &str, compliance: &str) -> (String, String) {
        (value.to_string(), compliance.to_string())
    }

    #[test]
    fn metro_example_evaluates_every_binding_with_measured_values() {
        let (list, _) = metro_json(&[]);
        assert_eq!(list.len(), 12);
        let compliance = |offer: &str, r: &str| {
            binding(&list, offer, r)["compliance"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        // Renderers on edge-1-a (next to the stadium), edge-2-a (300Mbps backhaul, no
        // AVX-512) and edge-9-a (downtown, 4 cores).
        let expected = [
            ("ar/ar-game-state", ["Compliant", "Compliant", "Limit"]),
            ("ar/ar-video", ["Compliant", "Violation", "Limit"]),
            ("ar/ar-render-node", ["Compliant", "Violation", "Limit"]),
            ("ar/ar-stadium", ["Compliant", "Limit", "Violation"]),
        ];
        for (offer, by_renderer) in expected {
            for (i, want) in by_renderer.iter().enumerate() {
                assert_eq!(
                    compliance(offer, &format!("ar-render-{i}")),
                    *want,
                    "{offer} ar-render-{i}"
                );
            }
        }
        // edge-9 -> metro-3 -> metro-2 -> metro-1: 2.5 + 3 + 3 = 8.5ms (the other way round
        // the ring is 10.5ms); jitter 400 + 200 + 200us.
        let b = binding(&list, "ar/ar-game-state", "ar-render-2");
        assert_eq!(rule(b, "latency"), pair("8.5ms", "Limit"));
        assert_eq!(rule(b, "jitter"), pair("800us", "Compliant"));
        // edge-2's backhaul is the bottleneck to the regional data centre.
        let b = binding(&list, "ar/ar-video", "ar-render-1");
        assert_eq!(rule(b, "bandwidth"), pair("300Mbps", "Violation"));
        assert_eq!(
            b["reason"],
            "bandwidth 300Mbps between ingest (dc-a) and renderer (edge-2-a) is worse than the limit 400Mbps"
        );
        // edge-9 -> metro-3 -> regional-dc (2.5 + 8ms) ties with the way through metro-2
        // (2.5 + 3 + 5ms); the path with fewer hops wins: loss 1 - (1 - 0.02%)(1 - 0.001%).
        let b = binding(&list, "ar/ar-video", "ar-render-2");
        assert_eq!(rule(b, "packet-loss"), pair("0.021%", "Limit"));
        assert_eq!(rule(b, "bandwidth"), pair("10Gbps", "Compliant"));
        let b = binding(&list, "ar/ar-render-node", "ar-render-1");
        assert_eq!(
            rule(b, "node-feature"),
            pair("cpu-cpuid.AVX512F=false", "Violation")
        );
        assert_eq!(rule(b, "cpu"), pair("8", "Compliant"));
        let b = binding(&list, "ar/ar-render-node", "ar-render-2");
        assert_eq!(rule(b, "cpu"), pair("4", "Limit"));
        assert_eq!(rule(b, "memory"), pair("16Gi", "Compliant"));
        // The users at the stadium, a Site target: edge-1 is 1ms away, edge-2 3ms, and
        // edge-9 11.5ms (to metro-1 as above, then edge-1 and the stadium).
        let b = binding(&list, "ar/ar-stadium", "ar-render-0");
        assert_eq!(b["targets"]["users"], "Site stadium");
        assert_eq!(rule(b, "latency"), pair("1ms", "Compliant"));
        let b = binding(&list, "ar/ar-stadium", "ar-render-1");
        assert_eq!(rule(b, "latency"), pair("3ms", "Limit"));
        let b = binding(&list, "ar/ar-stadium", "ar-render-2");
        assert_eq!(rule(b, "latency"), pair("11.5ms", "Violation"));
        assert_eq!(rule(b, "jitter"), pair("1.3ms", "Limit"));
        assert_eq!(
            b["reason"],
            "latency 11.5ms between renderer (edge-9-a) and users (stadium) is worse than the limit 5ms"
        );
        let rules = b["rules"].as_array().cloned().unwrap_or_default();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["policy"], "near-users");
    }

    #[test]
    fn metro_table_shows_bindings_rules_and_a_summary() {
        let out = edgeplane(&["check", "-f", "examples/metro"]);
        assert_eq!(out.status.code(), Some(0));
        let stdout = text(&out.stdout);
        let mut lines = stdout.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(header, ["OFFER", "BINDING", "TARGETS", "COMPLIANCE"]);
        let rules_header = ["BINDING", "POLICY", "RULE", "VALUE", "COMPLIANCE", "REASON"];
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == rules_header),
            "{stdout}"
        );
        assert!(stdout.contains("users=Site stadium"), "{stdout}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("20 sites checked; 12 bindings: 5 Compliant, 4 Limit, 3 Violation"),
            "{stderr}"
        );
    }

    #[test]
    fn an_unreachable_external_provider_is_an_error_on_its_rules_only() {
        // A port that was free a moment ago and has no listener now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let url = format!("http://127.0.0.1:{port}");
        let provider = format!("jitter={url}");
        let (list, _) = metro_json(&["--provider", &provider, "--provider-timeout", "10s"]);
        let b = binding(&list, "ar/ar-stadium", "ar-render-0");
        assert_eq!(b["compliance"], "Error");
        let rules = b["rules"].as_array().cloned().unwrap_or_default();
        let jitter = rules
            .iter()
            .find(|r| r["rule"] == "jitter")
            .cloned()
            .unwrap_or_default();
        assert_eq!(jitter["compliance"], "Error");
        let reason = jitter["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with(&format!("provider at {url} is unreachable: ")),
            "{reason}"
        );
        // The built-in latency provider still answers.
        assert_eq!(rule(b, "latency"), pair("1ms", "Compliant"));
        // Node rules are untouched.
        let b = binding(&list, "ar/ar-render-node", "ar-render-0");
        assert_eq!(b["compliance"], "Compliant");
    }

    #[test]
    fn bad_provider_flags_are_usage_errors() {
        for (flags, message) in [
            (
                vec!["--provider", "latency"],
                "error: --provider \"latency\": expected RULE=URL",
            ),
            (
                vec!["--provider", "latency=not a url"],
                "error: --provider latency=not a url: invalid request: \"not a url\" is not a URL",
            ),
            (
                vec!["--provider-timeout", "soon"],
                "error: --provider-timeout: \"soon\" is not a duration",
            ),
        ] {
            let mut args = vec!["check", "-f", "examples/metro"];
            args.extend(flags);
            let out = edgeplane(&args);
            assert_eq!(out.status.code(), Some(2));
            let stderr = text(&out.stderr);
            assert!(stderr.starts_with(message), "{stderr}");
        }
    }
}

/// An external provider implemented here, on loopback, answering `check` through
/// `--provider`; and `edgeplane provider serve` answering edgeplane's own client.
mod grpc {
    use super::*;
    use edgeplane_providers::proto;
    use edgeplane_providers::proto::rule_provider_server::{RuleProvider, RuleProviderServer};
    use std::io::{BufRead, BufReader};
    use tonic::{Request, Response, Status};

    /// Answers every latency question with Limit and a value of its own.
    struct Probe;

    #[tonic::async_trait]
    impl RuleProvider for Probe {
        async fn evaluate(
            &self,
            request: Request<proto::EvaluateRequest>,
        ) -> Result<Response<proto::EvaluateResponse>, Status> {
            let request = request.into_inner();
            let mut targets: Vec<String> = request
                .targets
                .iter()
                .map(|(role, t)| format!("{role}={} {}", t.kind, t.name))
                .collect();
            targets.sort();
            Ok(Response::new(proto::EvaluateResponse {
                compliance: proto::evaluate_response::ComplianceState::Limit as i32,
                reason: format!(
                    "probed {} for {}",
                    request.rule.map(|r| r.name).unwrap_or_default(),
                    targets.join(", ")
                ),
                value: "4.2ms".into(),
            }))
        }

        async fn endpoint_cost(
            &self,
            _request: Request<proto::EndpointCostRequest>,
        ) -> Result<Response<proto::EndpointCostResponse>, Status> {
            Err(Status::unimplemented("not needed here"))
        }
    }

    #[test]
    fn check_shows_the_answer_of_an_external_provider() {
        let (runtime, listener, address) = loopback();
        runtime.spawn(
            tonic::transport::Server::builder()
                .add_service(RuleProviderServer::new(Probe))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let provider = format!("latency=http://{address}");
        let out = edgeplane(&[
            "check",
            "-f",
            "examples/metro",
            "-o",
            "json",
            "--provider",
            &provider,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let stadium = list
            .as_array()
            .into_iter()
            .flatten()
            .find(|b| {
                b["offer"] == "ar/ar-stadium" && b["targets"]["renderer"] == "Pod ar/ar-render-2"
            })
            .cloned()
            .unwrap_or_default();
        let rules = stadium["rules"].as_array().cloned().unwrap_or_default();
        let latency = rules
            .iter()
            .find(|r| r["rule"] == "latency")
            .cloned()
            .unwrap_or_default();
        assert_eq!(latency["value"], "4.2ms");
        assert_eq!(latency["compliance"], "Limit");
        assert_eq!(
            latency["reason"],
            "probed latency for renderer=Pod ar-render-2, users=Site stadium"
        );
        // jitter still comes from the built-in provider; the binding is the worst of both.
        let jitter = rules
            .iter()
            .find(|r| r["rule"] == "jitter")
            .cloned()
            .unwrap_or_default();
        assert_eq!(jitter["value"], "1.3ms");
        assert_eq!(stadium["compliance"], "Limit");

        // The table shows the provider's answer too.
        let out = edgeplane(&["check", "-f", "examples/metro", "--provider", &provider]);
        assert!(text(&out.stdout).contains("probed latency for renderer=Pod ar-render-0"));
    }

    /// Kills the server when the test ends, however it ends.
    struct Server(std::process::Child);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn provider_serve_answers_edgeplanes_client() {
        let child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args([
                "provider",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "-f",
                "examples/metro",
            ])
            .current_dir(repo())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let mut server = Server(child);
        // The server prints its address once it listens: that is the readiness signal.
        let mut line = String::new();
        if let Some(stdout) = server.0.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_default()
            .to_string();
        assert!(!address.is_empty(), "no address in {line:?}");

        let (runtime, _, _) = loopback();
        runtime.block_on(async {
            use edgeplane_api::{Compliance, ConstraintPolicyRule, TargetKind, TargetRef};
            use edgeplane_providers::{ClientOptions, CostRequest, GrpcProvider, Provider};
            let client = GrpcProvider::new(&format!("http://{address}"), &ClientOptions::default())
                .unwrap_or_else(|e| panic!("{e}"));
            let renderer = TargetRef {
                cluster: None,
                namespace: Some("ar".into()),
                api_version: "v1".into(),
                kind: TargetKind::Pod,
                name: "ar-render-2".into(),
            };
            let stadium = TargetRef {
                cluster: None,
                namespace: None,
                api_version: "network.edgeplane.io/v1alpha1".into(),
                kind: TargetKind::Site,
                name: "stadium".into(),
            };
            let targets = std::collections::BTreeMap::from([
                ("renderer".to_string(), renderer.clone()),
                ("users".to_string(), stadium),
            ]);
            let latency = ConstraintPolicyRule {
                name: "latency".into(),
                request: "2ms".into(),
                limit: Some("5ms".into()),
            };
            let outcome = client.evaluate(&targets, &latency).await;
            assert_eq!(outcome.compliance, Compliance::Violation);
            assert_eq!(outcome.value.as_deref(), Some("11.5ms"));
            // Where would a renderer near the stadium go? edge-1-a is 1ms away (cost 0),
            // edge-2-a 3ms (a third of the way to the limit), edge-9-a is too far.
            let costs = client
                .endpoint_cost(&CostRequest {
                    source: renderer,
                    rule: latency,
                    peer_nodes: vec!["stadium".into()],
                    eligible_nodes: vec!["edge-1-a".into(), "edge-2-a".into(), "edge-9-a".into()],
                })
                .await
                .unwrap_or_default();
            let costs: Vec<(String, i64)> = costs.into_iter().map(|c| (c.node, c.cost)).collect();
            assert_eq!(
                costs,
                [
                    ("edge-1-a".to_string(), 0),
                    ("edge-2-a".to_string(), 333),
                    ("edge-9-a".to_string(), -1)
                ]
            );
        });
    }
}

/// `plan` asks an external provider's EndpointCost and follows its answer.
mod plan_external {
    use super::*;
    use edgeplane_providers::proto;
    use edgeplane_providers::proto::rule_provider_server::{RuleProvider, RuleProviderServer};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tonic::{Request, Response, Status};

    /// A provider of the rule `gpu-free`: only metro-1-a has a free GPU.
    struct GpuFree {
        calls: Arc<AtomicUsize>,
    }

    #[tonic::async_trait]
    impl RuleProvider for GpuFree {
        async fn evaluate(
            &self,
            _request: Request<proto::EvaluateRequest>,
        ) -> Result<Response<proto::EvaluateResponse>, Status> {
            Err(Status::unimplemented("plan only asks EndpointCost here"))
        }

        async fn endpoint_cost(
            &self,
            request: Request<proto::EndpointCostRequest>,
        ) -> Result<Response<proto::EndpointCostResponse>, Status> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let request = request.into_inner();
            let node_and_cost = request
                .eligible_nodes
                .into_iter()
                .map(|node| proto::NodeCost {
                    cost: if node == "metro-1-a" { 0 } else { -1 },
                    node,
                })
                .collect();
            Ok(Response::new(proto::EndpointCostResponse { node_and_cost }))
        }
    }

    const GPU_POLICY: &str = r#"
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: gpu, namespace: ar}
spec:
  rules: [{name: gpu-free, request: "1"}]
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: state-gpu, namespace: ar}
spec:
  targets: [{name: state, kind: Pod, labelSelector: {matchLabels: {app: game-state}}}]
  policies: [gpu]
"#;

    #[test]
    fn plan_places_by_the_costs_an_external_provider_gives() {
        let (runtime, listener, address) = loopback();
        let calls = Arc::new(AtomicUsize::new(0));
        runtime.spawn(
            tonic::transport::Server::builder()
                .add_service(RuleProviderServer::new(GpuFree {
                    calls: calls.clone(),
                }))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let dir =
            std::env::temp_dir().join(format!("edgeplane-plan-external-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let extra = dir.join("gpu.yaml");
        std::fs::write(&extra, GPU_POLICY).unwrap_or_else(|e| panic!("{e}"));
        let report = dir.join("report.json");
        let provider = format!("gpu-free=http://{address}");
        let out = edgeplane(&[
            "plan",
            "-f",
            "examples/metro-plan",
            "-f",
            &extra.display().to_string(),
            "--provider",
            &provider,
            "--report",
            &report.display().to_string(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap_or_default()).unwrap_or_default();
        let node = report["assignments"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == "game-state-0")
            .map(|a| a["node"].clone());
        assert_eq!(node, Some(serde_json::json!("metro-1-a")), "{report}");
        // One pod asked one question.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

mod bench {
    use super::*;

    /// The benchmark runs and prints its figures (they are read, never asserted).
    #[test]
    fn topology_bench_prints_build_time_lookups_and_peak_memory() {
        let out = edgeplane(&[
            "bench",
            "topology",
            "--sites",
            "60",
            "--nodes",
            "300",
            "--lookups",
            "2000",
            "--seed",
            "7",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        for prefix in [
            "topology: 60 sites",
            "build: ",
            "lookups: 2000 in ",
            "peak RSS",
        ] {
            assert!(
                stdout.lines().any(|l| l.starts_with(prefix)),
                "{prefix}: {stdout}"
            );
        }
    }
}

mod plan {
    use super::*;
    use std::io::Write;
    use std::process::Stdio;

    fn plan_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args(args)
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        if let Some(mut input) = child.stdin.take() {
            input
                .write_all(stdin)
                .unwrap_or_else(|e| panic!("write: {e}"));
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait: {e}"))
    }

    fn report_path(name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        dir.join(format!("{name}-{}.json", std::process::id()))
    }

    fn read_report(path: &Path) -> serde_json::Value {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_default()
    }

    fn docs(yaml: &str) -> Vec<serde_json::Value> {
        serde_saphyr::from_multiple(yaml).unwrap_or_default()
    }

    fn pinned(spec: &serde_json::Value) -> Vec<serde_json::Value> {
        spec.pointer(
            "/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms",
        )
        .and_then(|t| t.as_array())
        .cloned()
        .unwrap_or_default()
    }

    /// Pod anti-affinity, topology spread and priority are read from the manifests:
    /// two packet-core replicas never share a node, the web tier spreads over the zones,
    /// and the high-priority pod (through its PriorityClass) takes the last room.
    #[test]
    fn plan_honours_rules_between_pods() {
        let input = r#"
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: critical}
value: 1000
---
apiVersion: v1
kind: Namespace
metadata: {name: core, labels: {tier: 5g}}
---
apiVersion: v1
kind: Node
metadata: {name: a1, labels: {topology.kubernetes.io/zone: z1, kubernetes.io/hostname: a1}}
status: {allocatable: {cpu: "4", memory: 16Gi, pods: "110"}}
---
apiVersion: v1
kind: Node
metadata: {name: b1, labels: {topology.kubernetes.io/zone: z2, kubernetes.io/hostname: b1}}
status: {allocatable: {cpu: "3", memory: 16Gi, pods: "110"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: upf, namespace: core}
spec:
  replicas: 2
  selector: {matchLabels: {app: upf}}
  template:
    metadata: {labels: {app: upf}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: upf}}
            namespaceSelector: {matchLabels: {tier: 5g}}
            topologyKey: kubernetes.io/hostname
      containers: [{name: u, image: u, resources: {requests: {cpu: "1"}}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      containers: [{name: w, image: w, resources: {requests: {cpu: "1"}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: filler}
spec: {containers: [{name: f, image: f, resources: {requests: {cpu: "3"}}}]}
---
apiVersion: v1
kind: Pod
metadata: {name: vip}
spec:
  priorityClassName: critical
  containers: [{name: v, image: v, resources: {requests: {cpu: "2"}}}]
"#;
        let report = report_path("pod-rules");
        let out = plan_with_stdin(
            &[
                "plan",
                "-f",
                "-",
                "--report",
                report.to_str().unwrap_or_default(),
            ],
            input.as_bytes(),
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let plan = read_report(&report);
        let node = |name: &str| {
            plan["assignments"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["name"] == name)
                .and_then(|a| a["node"].as_str())
                .map(String::from)
        };
        let (upf0, upf1) = (node("upf-0"), node("upf-1"));
        assert!(upf0.is_some() && upf1.is_some() && upf0 != upf1, "{plan}");
        let (web0, web1) = (node("web-0"), node("web-1"));
        assert!(web0.is_some() && web1.is_some() && web0 != web1, "{plan}");
        // 4 + 3 CPU: vip (priority 1000 through its class) first, then the most pods of
        // priority 0: the four 1-CPU replicas rather than the 3-CPU filler.
        assert!(node("vip").is_some(), "{plan}");
        assert_eq!(node("filler"), None, "{plan}");
        assert!(stderr.contains("planned 5 of 6 pods"), "{stderr}");
    }

    #[test]
    fn example_gives_pinned_manifests_and_the_report() {
        let report = report_path("metro-plan");
        let out = edgeplane(&[
            "plan",
            "-f",
            "examples/metro-plan",
            "--drop-inventory",
            "--report",
            report.to_str().unwrap_or_default(),
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("planned 7 of 7 pods"), "{stderr}");
        let items = docs(&text(&out.stdout));
        let kinds: Vec<&str> = items.iter().filter_map(|d| d["kind"].as_str()).collect();
        // Workloads in input order (nodes, policies and the topology dropped as asked); the
        // four renderers, planned two and two, are one Deployment per node.
        assert_eq!(
            kinds,
            [
                "Deployment",
                "Deployment",
                "StatefulSet",
                "VirtualMachine",
                "Pod",
                "Pod"
            ]
        );

        let r = read_report(&report);
        let _ = std::fs::remove_file(&report);
        let summary = &r["summary"];
        for field in [
            "pods",
            "placed",
            "unplaced",
            "rulesCompliant",
            "rulesLimit",
            "rulesViolation",
            "rulesError",
            "cost",
            "optimal",
            "strategy",
            "planMillis",
        ] {
            assert!(
                summary.get(field).is_some(),
                "summary.{field} missing: {summary}"
            );
        }
        assert_eq!(summary["pods"], 7);
        assert_eq!(summary["placed"], 7);
        assert_eq!(summary["rulesViolation"], 0);
        assert_eq!(summary["optimal"], true);
        assert_eq!(summary["strategy"], "optimal");
        let assignments = r["assignments"].as_array().cloned().unwrap_or_default();
        assert_eq!(assignments.len(), 7);
        let node_of = |name: &str| {
            assignments
                .iter()
                .find(|a| a["name"] == name)
                .and_then(|a| a["node"].as_str())
                .unwrap_or_default()
                .to_string()
        };
        assert!(assignments.iter().all(|a| a["namespace"] == "ar"));

        // Each part of the Deployment is pinned to one node, with that node's replicas.
        let mut planned: BTreeMap<String, u64> = BTreeMap::new();
        for i in 0..4 {
            *planned
                .entry(node_of(&format!("ar-render-{i}")))
                .or_default() += 1;
        }
        let mut written: BTreeMap<String, u64> = BTreeMap::new();
        for part in &items[0..2] {
            let terms = pinned(&part["spec"]["template"]["spec"]);
            assert_eq!(terms.len(), 1);
            assert_eq!(terms[0]["matchFields"][0]["key"], "metadata.name");
            assert_eq!(terms[0]["matchFields"][0]["operator"], "In");
            let values = terms[0]["matchFields"][0]["values"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(values.len(), 1, "{values:?}");
            let node = values[0].as_str().unwrap_or_default().to_string();
            assert_eq!(part["metadata"]["name"], format!("ar-render-{node}"));
            *written.entry(node).or_default() += part["spec"]["replicas"].as_u64().unwrap_or(0);
        }
        assert_eq!(written, planned);
        // The VM's affinity goes into its template.
        let vm_terms = pinned(&items[3]["spec"]["template"]["spec"]);
        assert_eq!(
            vm_terms[0]["matchFields"][0]["values"][0],
            node_of("vrouter").as_str()
        );
        // Existing required terms keep their expressions and get the node ANDed in.
        let cache = pinned(&items[4]["spec"]);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache[0]["matchExpressions"][0]["operator"], "NotIn");
        assert_eq!(
            cache[0]["matchFields"][0]["values"][0],
            node_of("video-cache").as_str()
        );
        // A running pod is echoed unchanged.
        assert!(items[5]["spec"].get("affinity").is_none());
        assert_eq!(items[5]["spec"]["nodeName"], "metro-1-a");

        let bindings = r["bindings"].as_array().cloned().unwrap_or_default();
        let latency = bindings
            .iter()
            .find(|b| b["offer"] == "ar/ar-latency")
            .cloned()
            .unwrap_or_default();
        assert_eq!(latency["targets"]["users"], "Site stadium");
        assert!(
            latency["targets"]["renderer"]
                .as_str()
                .is_some_and(|t| t.starts_with("Pod ar/ar-render-"))
        );
        let rule = &latency["rules"][0];
        for field in ["policy", "rule", "value", "compliance", "cost"] {
            assert!(rule.get(field).is_some(), "rule.{field} missing: {rule}");
        }
        assert_eq!(rule["policy"], "near-users");
        assert_eq!(rule["rule"], "latency");
    }

    #[test]
    fn json_output_is_a_list_and_greedy_runs() {
        let report = report_path("greedy");
        let out = edgeplane(&[
            "plan",
            "-f",
            "examples/metro-plan",
            "-o",
            "json",
            "--strategy",
            "greedy",
            "--drop-inventory",
            "--report",
            report.to_str().unwrap_or_default(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert_eq!(list["kind"], "List");
        let names: Vec<&str> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["metadata"]["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "ar-render-edge-2-a",
                "ar-render-edge-3-a",
                "game-state",
                "vrouter",
                "video-cache",
                "video-ingest"
            ]
        );
        let r = read_report(&report);
        let _ = std::fs::remove_file(&report);
        assert_eq!(r["summary"]["strategy"], "greedy");
        assert_eq!(r["summary"]["optimal"], false);
    }

    /// `helm template ... | edgeplane plan -f - -f cluster/`: workloads on stdin.
    #[test]
    fn workloads_from_stdin_and_unplaced_pods_are_reported() {
        let mut workloads =
            std::fs::read(repo().join("examples/metro-plan/workloads.yaml")).unwrap_or_default();
        workloads.extend_from_slice(
            b"\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: huge, namespace: ar}\nspec:\n  containers: [{name: a, image: a, resources: {requests: {cpu: \"100\"}}}]\n",
        );
        let out = plan_with_stdin(
            &[
                "plan",
                "-f",
                "-",
                "-f",
                "examples/metro-plan/topology.yaml",
                "-f",
                "examples/metro-plan/nodes.yaml",
                "-f",
                "examples/metro-plan/policies.yaml",
                "-f",
                "examples/metro-plan/offers.yaml",
            ],
            &workloads,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("planned 7 of 8 pods"), "{stderr}");
        assert!(
            stderr.contains("ar/huge: no node has 100 CPU free (largest free: 64 on region-1-a)"),
            "{stderr}"
        );
        let items = docs(&text(&out.stdout));
        let huge = items
            .iter()
            .find(|d| d["metadata"]["name"] == "huge")
            .cloned()
            .unwrap_or_default();
        assert!(
            huge["spec"].get("affinity").is_none(),
            "an unplaced pod is not pinned"
        );
        assert_eq!(
            huge["spec"]["schedulingGates"],
            serde_json::json!([{"name": "edgeplane.io/unplaced"}]),
            "an unplaced pod waits at a gate instead of landing where the plan found no room"
        );
    }

    /// The output of `helm template app ./chart | edgeplane plan -f - -f cluster/` is the
    /// whole application: every object that is not a workload goes out unchanged and in
    /// input order, so it can be committed and applied as it is.
    #[test]
    fn every_object_of_a_chart_goes_out_in_input_order() {
        let mut chart =
            std::fs::read_to_string(repo().join("tests/gitops/chart.yaml")).unwrap_or_default();
        chart.push_str("---\n");
        chart.push_str(
            &std::fs::read_to_string(repo().join("examples/metro-plan/workloads.yaml"))
                .unwrap_or_default(),
        );
        let input = docs(&chart);
        let cluster = [
            "examples/metro-plan/topology.yaml",
            "examples/metro-plan/nodes.yaml",
            "examples/metro-plan/policies.yaml",
            "examples/metro-plan/offers.yaml",
        ];
        let mut args = vec!["plan", "-f", "-"];
        for file in cluster {
            args.extend(["-f", file]);
        }
        args.push("--drop-inventory");
        let out = plan_with_stdin(&args, chart.as_bytes());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let items = docs(&text(&out.stdout));
        let non_workloads = |list: &[serde_json::Value]| -> Vec<serde_json::Value> {
            list.iter()
                .filter(|d| {
                    !matches!(
                        d["kind"].as_str(),
                        Some("Deployment" | "StatefulSet" | "VirtualMachine" | "Pod")
                    )
                })
                .cloned()
                .collect()
        };
        assert_eq!(non_workloads(&items).len(), 8);
        assert_eq!(non_workloads(&items), non_workloads(&input));
        assert_eq!(items[0], input[0], "the chart's objects keep their place");

        // Without --drop-inventory the cluster's objects are written too.
        let out = plan_with_stdin(&args[..args.len() - 1], chart.as_bytes());
        let kinds: Vec<String> = docs(&text(&out.stdout))
            .iter()
            .filter_map(|d| d["kind"].as_str().map(str::to_string))
            .collect();
        for kind in [
            "Node",
            "NetworkTopology",
            "ConstraintPolicy",
            "ConstraintPolicyOffer",
        ] {
            assert!(kinds.iter().any(|k| k == kind), "{kind} missing: {kinds:?}");
        }
    }

    /// No node is near enough to the stadium; the network controller offers a path that is,
    /// and the plan places the renderer over it (the paper's pipeline, step 3).
    #[test]
    fn the_network_controller_is_asked_when_no_node_satisfies_a_binding() {
        use edgeplane_netctl::fake::{Call, FakeNetworkController};
        use edgeplane_netctl::{ExpectedMetrics, PathOffer};
        use std::sync::Arc;

        let input = r#"
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  siteLabel: topology.kubernetes.io/zone
  sites: [{name: stadium}]
  links: [{from: stadium, to: edge-1, latency: 20ms}]
---
apiVersion: v1
kind: Node
metadata: {name: edge-1-a, labels: {topology.kubernetes.io/zone: edge-1}}
status: {allocatable: {cpu: "8", memory: 16Gi, pods: "110"}}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: near-users, namespace: ar}
spec: {rules: [{name: latency, request: 2ms, limit: 5ms}]}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: ar-latency, namespace: ar}
spec:
  targets:
  - {name: renderer, kind: Pod, labelSelector: {matchLabels: {app: ar-render}}}
  - {name: users, kind: Site, sites: [stadium]}
  policies: [near-users]
---
apiVersion: v1
kind: Pod
metadata: {name: renderer, namespace: ar, labels: {app: ar-render}}
spec: {containers: [{name: r, image: r}]}
"#;
        let fake = Arc::new(FakeNetworkController::new());
        fake.offer(vec![PathOffer {
            id: "offer.slice-a.1".into(),
            node: "edge-1-a".into(),
            path: vec!["stadium".into(), "edge-1".into()],
            expected: ExpectedMetrics {
                latency: "1ms".into(),
                jitter: String::new(),
                bandwidth: String::new(),
                loss: String::new(),
            },
            cost: 1.0,
            expires: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
            entry: "slice-a".into(),
            compliance: edgeplane_api::Compliance::Compliant,
        }]);
        let (runtime, listener, address) = loopback();
        let controller: Arc<dyn edgeplane_netctl::NetworkController> = fake.clone();
        runtime.spawn(edgeplane_netctl::server::serve(
            listener,
            controller,
            std::future::pending(),
        ));

        // Without the controller the renderer is unplaced, and waits at the gate.
        let out = plan_with_stdin(&["plan", "-f", "-"], input.as_bytes());
        let stderr = text(&out.stderr);
        assert!(stderr.contains("planned 0 of 1 pods"), "{stderr}");
        assert!(fake.calls().is_empty());

        let report = report_path("network-controller");
        let url = format!("http://{address}");
        let out = plan_with_stdin(
            &[
                "plan",
                "-f",
                "-",
                "--drop-inventory",
                "--network-controller",
                &url,
                "--report",
                report.to_str().unwrap_or_default(),
            ],
            input.as_bytes(),
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains("network: ar/renderer: allocated slice-a (path stadium, edge-1; latency 1ms; Compliant) for node edge-1-a (allocation offer.slice-a.1) for binding ar/ar-latency-"),
            "{stderr}"
        );
        assert!(stderr.contains("planned 1 of 1 pods"), "{stderr}");
        let calls = fake.calls();
        assert_eq!(calls.len(), 2, "{calls:?}");
        match &calls[0] {
            Call::Discover(request) => {
                assert_eq!(request.candidate_nodes, ["edge-1-a"]);
                assert_eq!(request.rules.len(), 1);
            }
            other => panic!("first call: {other:?}"),
        }
        assert!(matches!(&calls[1], Call::Allocate(a) if a.id == "offer.slice-a.1"));

        let r = read_report(&report);
        let _ = std::fs::remove_file(&report);
        assert_eq!(r["allocations"][0]["name"], "renderer");
        assert_eq!(r["allocations"][0]["node"], "edge-1-a");
        assert_eq!(r["allocations"][0]["allocation"], "offer.slice-a.1");
        assert_eq!(r["assignments"][0]["node"], "edge-1-a");
        let items = docs(&text(&out.stdout));
        let pod = items
            .iter()
            .find(|d| d["kind"] == "Pod")
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            pinned(&pod["spec"])[0]["matchFields"][0]["values"][0],
            "edge-1-a"
        );
        assert!(pod["spec"].get("schedulingGates").is_none());
    }

    #[test]
    fn invalid_inputs_exit_2_with_located_messages() {
        for (file, expected) in [
            (
                "tests/invalid/bad-replicas.yaml",
                "error: tests/invalid/bad-replicas.yaml[0] Deployment default/web: spec.replicas: -1 is negative",
            ),
            (
                "tests/invalid/bad-grace.yaml",
                "error: tests/invalid/bad-grace.yaml[1] ConstraintPolicyOffer default/ar: spec.grace:",
            ),
        ] {
            let out = edgeplane(&["plan", "-f", file]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
            assert!(stderr.starts_with(expected), "{file}: {stderr}");
        }
        let out = edgeplane(&["plan", "-f", "examples/metro-plan", "--provider", "gpu"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).starts_with("error: --provider \"gpu\": expected RULE=URL"));
        let out = edgeplane(&["plan", "-f", "examples/metro-plan", "--time-budget", "soon"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).starts_with("error: --time-budget: \"soon\" is not a duration"));
    }
}

/// `edgeplane netctl serve` against `edgeplane cluster serve` by kubeconfig: the reference
/// network controller repairs examples/metro from examples/metro/catalogue.yaml.
mod netctl {
    use super::*;
    use std::io::{BufRead, BufReader};

    /// Kills the process when the test ends, however it ends.
    pub(super) struct Process(std::process::Child);

    impl Drop for Process {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Starts `edgeplane ARGS` and returns it with the first line it prints (its readiness
    /// signal).
    /// `cluster serve` of examples/metro with a kubeconfig at `kubeconfig`, ready.
    pub(super) fn serve_metro(kubeconfig: &str) -> Process {
        let (cluster, ready) = start(&[
            "cluster",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--kubeconfig",
            kubeconfig,
            "--nodes",
            "0",
            // cluster serve applies file by file: the Namespace (in workloads.yaml) first.
            "-f",
            "examples/metro/workloads.yaml",
            "-f",
            "examples/metro",
        ]);
        assert!(
            ready.starts_with("embedded cluster serving on http://"),
            "{ready:?}"
        );
        cluster
    }

    pub(super) fn start(args: &[&str]) -> (Process, String) {
        let (process, mut lines) = start_lines(args, 1);
        (process, lines.remove(0))
    }

    /// Starts `edgeplane ARGS` and returns it with the first `n` lines it prints.
    fn start_lines(args: &[&str], n: usize) -> (Process, Vec<String>) {
        let child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args(args)
            .current_dir(repo())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let mut process = Process(child);
        let mut lines = vec![String::new(); n];
        if let Some(stdout) = process.0.stdout.take() {
            let mut reader = BufReader::new(stdout);
            for line in &mut lines {
                let _ = reader.read_line(line);
                *line = line.trim().to_string();
            }
        }
        (process, lines)
    }

    /// `GET path` over HTTP/1.0: the status line's code and the body.
    fn http_get(address: &str, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream =
            std::net::TcpStream::connect(address).unwrap_or_else(|e| panic!("{address}: {e}"));
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .unwrap_or_else(|e| panic!("{e}"));
        let code = response
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    }

    #[test]
    fn netctl_serve_mitigates_the_metro_through_a_served_cluster() {
        let kubeconfig = std::env::temp_dir().join(format!(
            "edgeplane-netctl-test-{}.kubeconfig",
            std::process::id()
        ));
        let kubeconfig = kubeconfig.to_string_lossy().into_owned();
        let _cluster = serve_metro(&kubeconfig);
        let (_netctl, ready) = start_lines(
            &[
                "netctl",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
                "--kubeconfig",
                &kubeconfig,
            ],
            2,
        );
        let address = ready[0]
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("no address in {ready:?}"))
            .to_string();
        let metrics_address = ready[1]
            .strip_prefix("metrics on ")
            .unwrap_or_else(|| panic!("no metrics address in {ready:?}"))
            .to_string();
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        runtime.block_on(async {
            use edgeplane_api::{Compliance, ConstraintPolicyRule};
            use edgeplane_netctl::{
                ClientOptions, Endpoint, GrpcNetworkController, MitigateRequest, NetworkController,
            };
            let client =
                GrpcNetworkController::new(&format!("http://{address}"), &ClientOptions::default())
                    .unwrap_or_else(|e| panic!("{e}"));
            let rule = |name: &str, request: &str, limit: &str| ConstraintPolicyRule {
                name: name.into(),
                request: request.into(),
                limit: Some(limit.into()),
            };
            // ar-render-2 on edge-9-a is 11.5ms from the stadium's users (near-users:
            // latency 2ms / 5ms): slice-a (cost 10) makes it 5ms, express-9 (cost 50) 2ms.
            // The network controller acts only for bindings that exist, between places
            // they occupy: the binding a controller would make for ar-render-2.
            let file =
                kube::config::Kubeconfig::read_from(&kubeconfig).unwrap_or_else(|e| panic!("{e}"));
            let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let kube_client = kube::Client::try_from(config).unwrap_or_else(|e| panic!("{e}"));
            let binding: edgeplane_api::ConstraintPolicyBinding =
                serde_json::from_value(serde_json::json!({
                    "apiVersion": "constraint.edgeplane.io/v1alpha1",
                    "kind": "ConstraintPolicyBinding",
                    "metadata": {"name": "ar-stadium-render-2", "namespace": "ar"},
                    "spec": {"offer": "ar-stadium", "targets": {
                        "renderer": {"namespace": "ar", "apiVersion": "v1", "kind": "Pod", "name": "ar-render-2"},
                        "users": {"apiVersion": "network.edgeplane.io/v1alpha1", "kind": "Site", "name": "stadium"},
                    }},
                }))
                .unwrap_or_else(|e| panic!("{e}"));
            kube::Api::<edgeplane_api::ConstraintPolicyBinding>::namespaced(kube_client.clone(), "ar")
                .create(&Default::default(), &binding)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let question = MitigateRequest {
                binding: "ar/ar-stadium-render-2".into(),
                source: Endpoint::Node("edge-9-a".into()),
                destination: Endpoint::Site("stadium".into()),
                rules: vec![rule("latency", "2ms", "5ms"), rule("jitter", "1ms", "2ms")],
            };
            let outcome = client
                .mitigate(&question)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(outcome.accepted, "{outcome:?}");
            assert_eq!(outcome.entry.as_deref(), Some("slice-a"));
            assert_eq!(outcome.compliance, Some(Compliance::Limit));
            assert_eq!(outcome.path, ["edge-9", "metro-1", "edge-1", "stadium"]);
            let expected = outcome.expected.unwrap_or_default();
            assert_eq!(
                (expected.latency.as_str(), expected.jitter.as_str()),
                ("5ms", "600us")
            );

            // The served cluster's topology carries the activation.
            let topology = kube::Api::<edgeplane_api::NetworkTopology>::all(kube_client)
                .get("default")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let active: Vec<(String, Vec<String>)> = topology
                .status
                .map(|s| s.activated_paths)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.entry, p.bindings))
                .collect();
            assert_eq!(
                active,
                [(
                    "slice-a".to_string(),
                    vec!["ar/ar-stadium-render-2".to_string()]
                )]
            );
        });
        // The call answered is counted and timed; the process and build are described.
        assert_eq!(http_get(&metrics_address, "/healthz").0, 200);
        let (code, metrics) = http_get(&metrics_address, "/metrics");
        assert_eq!(code, 200, "{metrics}");
        for line in [
            "edgeplane_network_controller_requests_total{method=\"mitigate\",outcome=\"ok\"} 1",
            "edgeplane_network_controller_request_duration_seconds_count{method=\"mitigate\"} 1",
            "edgeplane_build_info{version=\"",
            "process_resident_memory_bytes ",
        ] {
            assert!(metrics.contains(line), "{line} in\n{metrics}");
        }
        // Nothing it never moves: no view, no Lease, no bindings of its own.
        for absent in [
            "edgeplane_cluster_view_builds",
            "edgeplane_leader",
            "edgeplane_bindings",
        ] {
            assert!(!metrics.contains(absent), "{absent} in\n{metrics}");
        }
        let _ = std::fs::remove_file(&kubeconfig);
    }
}

mod sim {
    use super::*;

    /// Every malformed scenario under tests/invalid/scenarios is rejected before anything
    /// runs, with exit status 2 and the located message its first line expects.
    #[test]
    fn invalid_scenarios_exit_2_with_located_messages() {
        let dir = repo().join("tests/invalid/scenarios");
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.retain(|p| p.is_file());
        entries.sort();
        assert!(
            entries.len() >= 15,
            "expected the malformed scenarios in {}",
            dir.display()
        );
        for path in entries {
            let content = std::fs::read_to_string(&path).unwrap_or_default();
            let Some(expected) = content
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
            else {
                panic!("{}: first line must be `# expect: ...`", path.display())
            };
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let relative = format!("tests/invalid/scenarios/{name}");
            let out = edgeplane(&["sim", &relative]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{relative}: {stderr}");
            assert!(
                out.stdout.is_empty(),
                "{relative}: nothing runs: {}",
                text(&out.stdout)
            );
            let wanted = format!("error: tests/invalid/scenarios/{}", expected.trim());
            assert!(
                stderr.starts_with(&wanted),
                "{relative}:\n  expected: {wanted}\n  got:      {stderr}"
            );
        }
        let out = edgeplane(&["sim", "nowhere.yaml"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).starts_with("error: nowhere.yaml: cannot read:"));
    }

    /// The README's main command: the headline scenario tells its story and writes both
    /// reports.
    #[test]
    fn the_headline_scenario_runs_and_writes_its_reports() {
        let dir = std::env::temp_dir().join(format!("edgeplane-cli-sim-{}", std::process::id()));
        let json = dir.join("stadium.json");
        let html = dir.join("stadium.html");
        let out = edgeplane(&[
            "sim",
            "examples/scenarios/stadium-ar/scenario.yaml",
            "--report",
            &json.display().to_string(),
            "--html",
            &html.display().to_string(),
        ]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            stdout.starts_with("Scenario stadium-ar: 45m of simulated time"),
            "{stdout}"
        );
        for line in [
            "00:12:00  LinkChanged       Link edge-1 - metro-1: latency 2ms -> 12ms",
            "00:13:00  Mitigated         Binding ar/",
            "00:20:00  NodeFailed        Node edge-1-a: stopped responding (4 pods on it)",
            "00:20:50  NodeNotReady      Node edge-1-a: Node edge-1-a status is now: NodeNotReady",
            "00:30:00  Scaled            Deployment ar/ar-render: replicas 5 -> 6",
            "Summary: 45m simulated in ",
            "  pods       8 placed, 0 unplaced, 0 failed, 0 lost",
            "  repairs    4 mitigations (0 failed), 0 evictions",
            "  components: edgeplane-controller, edgeplane-scheduler, edgeplane-descheduler, edgeplane-netctl",
        ] {
            assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
        }
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(report["scenario"], "stadium-ar");
        assert_eq!(report["summary"]["podsPlaced"], 8);
        assert!(report["summary"]["planRuns"].as_u64().unwrap_or(0) > 0);
        let page = std::fs::read_to_string(&html).unwrap_or_default();
        assert!(page.contains("id=\"site-map\""));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn generate_writes_a_scenario_that_runs() {
        let dir = std::env::temp_dir().join(format!("edgeplane-cli-gen-{}", std::process::id()));
        let d = dir.display().to_string();
        let out = edgeplane(&[
            "sim",
            "generate",
            "--sites",
            "12",
            "--nodes",
            "30",
            "--apps",
            "3",
            "--events",
            "6",
            "--duration",
            "20m",
            "-o",
            &d,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with("wrote "));
        let scenario = dir.join("scenario.yaml").display().to_string();
        let out = edgeplane(&["sim", &scenario, "--quiet"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("0 lost"));
        let out = edgeplane(&["sim", "generate", "--sites", "2", "-o", &d]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).starts_with("error: --sites must be at least 3"));
        let out = edgeplane(&["sim", "generate", "--duration", "soon", "-o", &d]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).starts_with("error: --duration: \"soon\" is not a duration"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `edgeplane completion SHELL`: scripts generated from the command line's definition.
mod completion {
    use super::*;

    fn script(shell: &str) -> String {
        let out = edgeplane(&["completion", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    #[test]
    fn each_shell_gets_a_script_naming_the_subcommands() {
        for shell in ["bash", "zsh", "fish"] {
            let script = script(shell);
            assert!(!script.trim().is_empty(), "{shell}: empty script");
            for subcommand in ["check", "plan", "sim", "crds", "version", "completion"] {
                assert!(
                    script.contains(subcommand),
                    "{shell}: the script does not name `{subcommand}`"
                );
            }
            // Options too, down to a subcommand's (`check --fail-on`).
            assert!(script.contains("fail-on"), "{shell}: no `--fail-on`");
        }
    }

    /// bash parses the bash script (`bash -n`), when bash is installed.
    #[test]
    fn bash_accepts_the_bash_script() {
        let path = std::env::temp_dir().join(format!("edgeplane-{}.bash", std::process::id()));
        std::fs::write(&path, script("bash")).unwrap_or_else(|e| panic!("{e}"));
        let checked = Command::new("bash").arg("-n").arg(&path).output();
        let _ = std::fs::remove_file(&path);
        match checked {
            Ok(out) => assert!(out.status.success(), "bash -n: {}", text(&out.stderr)),
            Err(e) => eprintln!("bash not run ({e}); skipping `bash -n`"),
        }
    }

    #[test]
    fn an_unknown_shell_is_a_usage_error() {
        let out = edgeplane(&["completion", "tcsh"]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("invalid value 'tcsh'"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `edgeplane version -o json|yaml`.
mod version {
    use super::*;
    use serde_json::Value;

    fn info(format: &str) -> Value {
        let out = edgeplane(&["version", "-o", format]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        match format {
            "json" => serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}")),
            _ => serde_saphyr::from_str(&text(&out.stdout)).unwrap_or_else(|e| panic!("{e}")),
        }
    }

    #[test]
    fn json_tells_the_version_compiler_and_target() {
        let info = info("json");
        assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
        let rustc = info["rustc"].as_str().unwrap_or_default();
        assert!(rustc.starts_with("rustc 1."), "{info}");
        // The target triple this test was built for is the binary's: its arch and OS.
        let platform = info["platform"].as_str().unwrap_or_default();
        assert!(platform.starts_with(std::env::consts::ARCH), "{info}");
        assert!(platform.contains(std::env::consts::OS), "{info}");
        let keys: Vec<&String> = info
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        for key in keys {
            assert!(
                ["version", "gitCommit", "rustc", "platform"].contains(&key.as_str()),
                "unexpected field {key}"
            );
        }
    }

    /// The commit is HEAD's when built from a git checkout (and absent without git).
    #[test]
    fn the_commit_is_the_checkout_built() {
        let head = Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(repo())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| text(&o.stdout).trim().to_string());
        let info = info("json");
        match head {
            Some(head) => assert_eq!(info["gitCommit"], head.as_str(), "{info}"),
            None => eprintln!("no git here; gitCommit is {}", info["gitCommit"]),
        }
    }

    #[test]
    fn yaml_holds_the_same_fields() {
        assert_eq!(info("yaml"), info("json"));
    }

    #[test]
    fn an_unknown_format_is_a_usage_error() {
        let out = edgeplane(&["version", "-o", "xml"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).contains("invalid value 'xml'"));
    }
}

/// `check -o name|wide`, kubectl's formats, beside table, JSON and YAML.
mod output {
    use super::*;
    use serde_json::Value;

    fn run(args: &[&str]) -> (String, String) {
        let out = edgeplane(args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    }

    fn bindings(example: &str) -> Vec<Value> {
        let (json, _) = run(&["check", "-f", example, "-o", "json"]);
        let list: Value = serde_json::from_str(&json).unwrap_or_default();
        list.as_array().cloned().unwrap_or_default()
    }

    /// `-o name`: one `resource.group/name` per binding, in the JSON's order, nothing else.
    #[test]
    fn name_lists_the_bindings_as_kubectl_does() {
        for example in ["examples/ar-app", "examples/metro"] {
            let (names, stderr) = run(&["check", "-f", example, "-o", "name"]);
            let expected: Vec<String> = bindings(example)
                .iter()
                .map(|b| {
                    format!(
                        "constraintpolicybinding.constraint.edgeplane.io/{}",
                        b["name"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            assert!(!expected.is_empty());
            assert_eq!(names.lines().collect::<Vec<_>>(), expected, "{example}");
            // Machine-readable: no summary line on standard error either.
            assert!(!stderr.contains("bindings"), "{stderr}");
        }
    }

    fn header(table: &str) -> Vec<String> {
        table
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// `-o wide` adds the offer's policies and, when evaluated, each binding's reason.
    #[test]
    fn wide_adds_policies_and_reasons() {
        let (table, _) = run(&["check", "-f", "examples/ar-app"]);
        assert_eq!(header(&table), ["OFFER", "BINDING", "TARGETS"]);
        let (wide, stderr) = run(&["check", "-f", "examples/ar-app", "-o", "wide"]);
        assert_eq!(header(&wide), ["OFFER", "BINDING", "TARGETS", "POLICIES"]);
        assert!(stderr.contains("bindings"), "the summary: {stderr}");
        assert_eq!(wide.lines().count(), table.lines().count());

        let (table, _) = run(&["check", "-f", "examples/metro"]);
        assert_eq!(
            header(&table),
            ["OFFER", "BINDING", "TARGETS", "COMPLIANCE"]
        );
        let (wide, _) = run(&["check", "-f", "examples/metro", "-o", "wide"]);
        assert_eq!(
            header(&wide),
            [
                "OFFER",
                "BINDING",
                "TARGETS",
                "POLICIES",
                "COMPLIANCE",
                "REASON"
            ]
        );
        // Each binding's row ends with its reason, as JSON tells it.
        for binding in bindings("examples/metro") {
            let name = binding["name"].as_str().unwrap_or_default();
            let reason = binding["reason"].as_str().unwrap_or_default();
            assert!(
                wide.lines()
                    .any(|l| l.contains(&format!("   {name}   ")) && l.ends_with(reason)),
                "{name}: no row ending with {reason:?}\n{wide}"
            );
        }
        // The rules table follows, as in the default output.
        assert!(wide.contains("\nBINDING   "), "{wide}");
    }
}

/// `crds` and `plan` write Kubernetes objects: `-o yaml|json|name`, as kubectl writes them.
mod manifests {
    use super::*;
    use serde_json::Value;

    fn run(args: &[&str]) -> String {
        let out = edgeplane(args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    }

    /// kubectl's `-o name` of an object, from its JSON.
    fn name(object: &Value) -> String {
        let kind = object["kind"].as_str().unwrap_or_default().to_lowercase();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        match object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .split_once('/')
        {
            Some((group, _)) => format!("{kind}.{group}/{name}"),
            None => format!("{kind}/{name}"),
        }
    }

    fn items(json: &str) -> Vec<Value> {
        let list: Value = serde_json::from_str(json).unwrap_or_default();
        assert_eq!(list["kind"], "List", "{json}");
        list["items"].as_array().cloned().unwrap_or_default()
    }

    #[test]
    fn crds_as_json_and_names() {
        let crds = items(&run(&["crds", "-o", "json"]));
        assert_eq!(crds.len(), edgeplane_api::crdgen::all().len());
        assert!(crds.iter().all(|c| c["kind"] == "CustomResourceDefinition"));
        let names = run(&["crds", "-o", "name"]);
        let expected: Vec<String> = crds.iter().map(name).collect();
        assert_eq!(names.lines().collect::<Vec<_>>(), expected);
        assert!(names.lines().any(|l| l
            == "customresourcedefinition.apiextensions.k8s.io/constraintpolicies.constraint.edgeplane.io"));
    }

    /// `-o` prints, `-d` writes files: not both.
    #[test]
    fn crds_output_and_output_dir_conflict() {
        let out = edgeplane(&["crds", "-o", "json", "-d", "target/never-written"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).contains("cannot be used with"));
        assert!(!repo().join("target/never-written").exists());
    }

    #[test]
    fn plan_names_the_objects_it_writes() {
        let args = ["plan", "-f", "examples/metro-plan", "--strategy", "greedy"];
        let json = run(&[&args[..], &["-o", "json"]].concat());
        let expected: Vec<String> = items(&json).iter().map(name).collect();
        assert!(
            expected.iter().any(|n| n.starts_with("deployment.apps/")),
            "{expected:?}"
        );
        assert!(
            expected.iter().any(|n| n.starts_with("node/")),
            "{expected:?}"
        );
        let names = run(&[&args[..], &["-o", "name"]].concat());
        assert_eq!(names.lines().collect::<Vec<_>>(), expected);
    }
}

/// `edgeplane explain`: every node's verdict for one pod, offline and against a live cluster.
mod explain {
    use super::*;

    fn explain_json(args: &[&str]) -> serde_json::Value {
        let out = edgeplane(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
    }

    /// examples/metro: ar-render-2 runs on edge-9-a, 11.5ms from the stadium (limit 5ms).
    #[test]
    fn a_running_pod_is_judged_on_every_node() {
        let e = explain_json(&[
            "explain",
            "pod/ar-render-2",
            "-n",
            "ar",
            "-f",
            "examples/metro",
            "-o",
            "json",
        ]);
        assert_eq!(e["pod"], "ar/ar-render-2");
        assert_eq!(e["chosen"], "edge-9-a");
        let nodes = e["nodes"].as_array().cloned().unwrap_or_default();
        let metro_nodes = std::fs::read_to_string(repo().join("examples/metro/nodes.yaml"))
            .unwrap_or_default()
            .matches("kind: Node")
            .count();
        assert_eq!(nodes.len(), metro_nodes, "one verdict per node");
        let node = |name: &str| {
            nodes
                .iter()
                .find(|n| n["node"] == name)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(node("edge-1-a")["rank"], 1);
        assert_eq!(node("edge-1-a")["limit"], 0);
        let chosen = node("edge-9-a");
        assert!(
            chosen["rejected"]
                .as_str()
                .is_some_and(|r| r.contains("latency 11.5ms between renderer (edge-9-a) and users (stadium) is worse than the limit 5ms")),
            "{chosen}"
        );
        assert!(
            e["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("edge-9-a is chosen but")),
            "{e}"
        );
    }

    #[test]
    fn the_table_names_the_verdicts_and_why() {
        let out = edgeplane(&["explain", "ar-render-0", "-n", "ar", "-f", "examples/metro"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let table = text(&out.stdout);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "Pod ar/ar-render-0: on edge-1-a");
        assert!(lines[1].starts_with("NODE "), "{table}");
        assert!(
            lines[2].starts_with("edge-1-a ") && lines[2].contains("#1 chosen"),
            "{table}"
        );
        assert!(
            table.contains("\nWhy: edge-1-a (edge-1): 0 rules in Limit"),
            "{table}"
        );
    }

    #[test]
    fn what_is_not_a_known_pod_is_refused() {
        let out = edgeplane(&[
            "explain",
            "deployment/ar-render",
            "-n",
            "ar",
            "-f",
            "examples/metro",
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("explain takes a pod (pod/NAME), not a deployment"),
            "{}",
            text(&out.stderr)
        );
        let out = edgeplane(&["explain", "pod/nope", "-n", "ar", "-f", "examples/metro"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("pod ar/nope is not in the input (pods: ar/ar-render-0"),
            "{}",
            text(&out.stderr)
        );
    }

    /// `kubectl edgeplane ...` runs `kubectl-edgeplane`, which hands over to `edgeplane`.
    #[test]
    fn the_kubectl_plugin_is_edgeplane() {
        let plugin = Command::new(env!("CARGO_BIN_EXE_kubectl-edgeplane"))
            .args([
                "explain",
                "pod/ar-render-0",
                "-n",
                "ar",
                "-f",
                "examples/metro",
                "-o",
                "json",
            ])
            .current_dir(repo())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(plugin.status.success(), "{}", text(&plugin.stderr));
        let direct = edgeplane(&[
            "explain",
            "pod/ar-render-0",
            "-n",
            "ar",
            "-f",
            "examples/metro",
            "-o",
            "json",
        ]);
        assert_eq!(text(&plugin.stdout), text(&direct.stdout));
    }

    /// The same cluster served by `cluster serve` and read by kubeconfig explains the same.
    #[test]
    fn a_live_cluster_explains_as_its_manifests_do() {
        let kubeconfig = std::env::temp_dir().join(format!(
            "edgeplane-explain-test-{}.kubeconfig",
            std::process::id()
        ));
        let kubeconfig = kubeconfig.to_string_lossy().into_owned();
        let _cluster = super::netctl::serve_metro(&kubeconfig);
        let live = explain_json(&[
            "explain",
            "pod/ar-render-2",
            "-n",
            "ar",
            "--kubeconfig",
            &kubeconfig,
            "-o",
            "json",
        ]);
        let offline = explain_json(&[
            "explain",
            "pod/ar-render-2",
            "-n",
            "ar",
            "-f",
            "examples/metro",
            "-o",
            "json",
        ]);
        assert_eq!(live["chosen"], offline["chosen"]);
        let nodes = |e: &serde_json::Value| -> Vec<String> {
            e["nodes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|n| n.to_string())
                .collect()
        };
        let (live_nodes, offline_nodes) = (nodes(&live), nodes(&offline));
        assert_eq!(live_nodes.len(), offline_nodes.len());
        for (l, o) in live_nodes.iter().zip(&offline_nodes) {
            assert_eq!(l, o, "a node's verdict differs");
        }
        assert_eq!(live["summary"], offline["summary"]);
    }
}

/// What if, on a live cluster: `sim snapshot --from-cluster` and `sim --from-cluster` read
/// `cluster serve` (examples/metro) and change nothing on it.
mod what_if {
    use super::*;

    /// Every object the simulator could touch, by kind, name and resourceVersion.
    fn fingerprint(kubeconfig: &str) -> Vec<String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        runtime.block_on(async {
            use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
            let file =
                kube::config::Kubeconfig::read_from(kubeconfig).unwrap_or_else(|e| panic!("{e}"));
            let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let client = kube::Client::try_from(config).unwrap_or_else(|e| panic!("{e}"));
            let mut out = Vec::new();
            for (group, version, kind, plural) in [
                ("", "v1", "Pod", "pods"),
                ("", "v1", "Event", "events"),
                ("apps", "v1", "Deployment", "deployments"),
                (
                    "network.edgeplane.io",
                    "v1alpha1",
                    "NetworkTopology",
                    "networktopologies",
                ),
                (
                    "network.edgeplane.io",
                    "v1alpha1",
                    "NetworkPathCatalogue",
                    "networkpathcatalogues",
                ),
                (
                    "constraint.edgeplane.io",
                    "v1alpha1",
                    "ConstraintPolicyOffer",
                    "constraintpolicyoffers",
                ),
                (
                    "constraint.edgeplane.io",
                    "v1alpha1",
                    "ConstraintPolicyBinding",
                    "constraintpolicybindings",
                ),
            ] {
                let gvk = GroupVersionKind::gvk(group, version, kind);
                let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
                let api = kube::Api::<DynamicObject>::all_with(client.clone(), &resource);
                let list = api
                    .list(&ListParams::default())
                    .await
                    .unwrap_or_else(|e| panic!("{kind}: {e}"));
                for item in list.items {
                    let phase = item.data["status"]["phase"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    out.push(format!(
                        "{kind} {}/{} {} {phase}",
                        item.metadata.namespace.unwrap_or_default(),
                        item.metadata.name.unwrap_or_default(),
                        item.metadata.resource_version.unwrap_or_default()
                    ));
                }
            }
            out.sort();
            out
        })
    }

    #[test]
    fn a_snapshot_and_a_what_if_run_change_nothing_on_the_cluster() {
        let dir =
            std::env::temp_dir().join(format!("edgeplane-what-if-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let kubeconfig = dir.join("kubeconfig").to_string_lossy().into_owned();
        let _cluster = super::netctl::serve_metro(&kubeconfig);
        // The served cluster's kubelets start the five pods and record an Event each; after
        // that nothing else writes to it.
        let mut before = fingerprint(&kubeconfig);
        // Settled: the five pods Running, their Events written, and two reads alike (the
        // kinds are listed one after the other, so one read alone can straddle a write).
        for _ in 0..400 {
            std::thread::sleep(std::time::Duration::from_millis(25));
            let again = fingerprint(&kubeconfig);
            let running = again
                .iter()
                .filter(|l| l.starts_with("Pod ar/") && l.ends_with(" Running"))
                .count();
            let events = again.iter().filter(|l| l.starts_with("Event ar/")).count();
            let settled = running == 5 && events >= 5 && again == before;
            before = again;
            if settled {
                break;
            }
        }
        assert_eq!(
            before
                .iter()
                .filter(|l| l.starts_with("Pod ar/") && l.ends_with(" Running"))
                .count(),
            5,
            "the served cluster did not settle: {before:?}"
        );

        // The snapshot: the metro's objects, as a scenario that runs.
        let out_dir = dir.join("snapshot");
        let out_dir = out_dir.to_string_lossy().into_owned();
        let out = edgeplane(&[
            "sim",
            "snapshot",
            "--from-cluster",
            &kubeconfig,
            "-o",
            &out_dir,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let cluster =
            std::fs::read_to_string(dir.join("snapshot/cluster.yaml")).unwrap_or_default();
        assert_eq!(cluster.matches("\nkind: Node\n").count(), 19, "{cluster}");
        assert!(
            cluster.contains("name: ar-render-2"),
            "the bare pod is kept with its node"
        );
        assert!(
            !cluster.contains("resourceVersion"),
            "server-set fields are dropped"
        );
        assert!(
            !cluster.contains("kind: ConstraintPolicyBinding"),
            "bindings are the offer controller's"
        );
        let scenario = format!("{out_dir}/scenario.yaml");
        let run = edgeplane(&[
            "sim",
            &scenario,
            "-q",
            "--report",
            &format!("{out_dir}/report.json"),
        ]);
        assert!(run.status.success(), "{}", text(&run.stderr));
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("snapshot/report.json")).unwrap_or_default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report["summary"]["podsPlaced"], 5, "{}", report["summary"]);

        // The events of a what-if scenario against the live cluster.
        let report_path = dir.join("what-if.json").to_string_lossy().into_owned();
        let run = edgeplane(&[
            "sim",
            "--from-cluster",
            &kubeconfig,
            "tests/what-if/fibre-cut.yaml",
            "-q",
            "--report",
            &report_path,
        ]);
        assert!(run.status.success(), "{}", text(&run.stderr));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            report["summary"]["nodeFailures"], 1,
            "{}",
            report["summary"]
        );
        assert_eq!(
            report["summary"]["scenarioEvents"], 2,
            "{}",
            report["summary"]
        );
        assert!(
            report["summary"]["mitigations"].as_u64().unwrap_or(0) > 0,
            "{}",
            report["summary"]
        );

        assert_eq!(fingerprint(&kubeconfig), before, "the live cluster changed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
