//! Inputs of real size and shape, as operators have them: node inventories and `helm
//! template` output of tens of thousands of documents in one file, `kubectl get -o yaml`
//! lists, overlapping folders; read alike by `check`, `plan`, `sim` and `cluster serve`.

#![allow(clippy::unwrap_used)] // tests unwrap what they built

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edgeplane"));
    command.args(args).current_dir(repo());
    for (k, v) in env {
        command.env(k, v);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run edgeplane: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch directory of this test process, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeplane-inputs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// examples/metro-plan (topology, policies, offers, workloads) and `nodes` more Nodes over
/// its metro and edge sites, in one file of single documents.
fn inventory_file(dir: &Path, nodes: usize) -> PathBuf {
    let mut parts: Vec<String> = ["topology", "policies", "offers", "workloads", "nodes"]
        .iter()
        .map(|f| std::fs::read_to_string(repo().join(format!("examples/metro-plan/{f}.yaml"))))
        .collect::<Result<_, _>>()
        .unwrap();
    let sites: Vec<String> = (1..=4)
        .map(|m| format!("metro-{m}"))
        .chain((1..=12).map(|e| format!("edge-{e}")))
        .collect();
    for i in 0..nodes {
        let site = &sites[i % sites.len()];
        parts.push(format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {site}-n{i}\n  labels: {{topology.kubernetes.io/zone: {site}}}\nstatus:\n  allocatable: {{cpu: \"8\", memory: 32Gi, pods: \"110\"}}\n"
        ));
    }
    let path = dir.join("inventory.yaml");
    std::fs::write(&path, parts.join("\n---\n")).unwrap();
    path
}

#[test]
fn plan_and_check_read_a_single_file_of_20000_documents() {
    // The parser's default budget stopped at 1,024 documents.
    let dir = scratch("inventory");
    let file = inventory_file(&dir, 20_000);
    let file = file.to_str().unwrap();
    let report = dir.join("report.json");

    let out = run(
        &["plan", "-f", file, "--report", report.to_str().unwrap()],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("planned 7 of 7 pods"), "{stderr}");

    let out = run(&["check", "-f", file], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(", 20012 nodes, "), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_reads_a_kubectl_list_and_a_typed_list() {
    let dir = scratch("lists");
    // `kubectl get nodes -o yaml`: a List whose items carry their kind.
    let nodes = std::fs::read_to_string(repo().join("examples/metro-plan/nodes.yaml")).unwrap();
    let mut list = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for doc in nodes.split("\n---\n") {
        let body: Vec<&str> = doc.lines().filter(|l| !l.starts_with('#')).collect();
        for (i, line) in body.iter().enumerate() {
            list.push_str(if i == 0 { "- " } else { "  " });
            list.push_str(line);
            list.push('\n');
        }
    }
    std::fs::write(dir.join("nodes.yaml"), list).unwrap();
    // What the API returns for pods: a PodList whose items carry neither kind nor
    // apiVersion.
    std::fs::write(
        dir.join("pods.yaml"),
        "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: video-ingest, namespace: ar, labels: {app: ingest}}\n  spec: {nodeName: metro-1-a, containers: [{name: c, image: i}]}\n",
    )
    .unwrap();
    for f in ["topology", "policies", "offers", "workloads"] {
        let text =
            std::fs::read_to_string(repo().join(format!("examples/metro-plan/{f}.yaml"))).unwrap();
        // The list holds the running pod now.
        let text = if f == "workloads" {
            text.split("\n---\n")
                .filter(|d| !d.contains("name: video-ingest"))
                .collect::<Vec<_>>()
                .join("\n---\n")
        } else {
            text
        };
        std::fs::write(dir.join(format!("{f}.yaml")), text).unwrap();
    }
    let out = run(&["check", "-f", dir.to_str().unwrap()], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("3 policies, 3 offers, 8 pods, 12 nodes, 9 sites checked; 9 bindings"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_expands_workloads_into_their_pods_as_plan_does() {
    // `check` used to find 0 bindings here: the renderers are a Deployment.
    let out = run(&["check", "-f", "examples/metro-plan", "-o", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bindings: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let dir = scratch("expand");
    let report = dir.join("plan.json");
    let out = run(
        &[
            "plan",
            "-f",
            "examples/metro-plan",
            "--report",
            report.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let names = |list: &[serde_json::Value]| {
        let mut n: Vec<String> = list
            .iter()
            .map(|b| b["name"].as_str().unwrap_or_default().to_string())
            .collect();
        n.sort();
        n
    };
    let planned = plan["bindings"].as_array().cloned().unwrap_or_default();
    assert_eq!(bindings.len(), 9);
    assert_eq!(names(&bindings), names(&planned));
    // The replicas are not placed yet (a pod on metro-1-a triggers evaluation).
    let renderer = bindings
        .iter()
        .find(|b| b["targets"]["renderer"] == "Pod ar/ar-render-3")
        .unwrap();
    assert_eq!(renderer["compliance"], "Pending");
    assert_eq!(
        renderer["reason"],
        "renderer (Pod ar/ar-render-3) is not placed yet"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cluster_serve_names_both_definitions_of_an_object() {
    // Two example folders define the AR application, some objects differently; the
    // cluster refused the second with `object 42 (v1 Pod): Pod "ar-render-0" is invalid`.
    let out = run(
        &[
            "cluster",
            "serve",
            "-f",
            "examples/",
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "error: examples/metro/offers.yaml[1] ConstraintPolicyOffer ar/ar-video: is defined twice, differently: first in examples/ar-app/offers.yaml[1], again here (each object may be defined once in the input)"
    );
}

#[test]
fn the_same_file_given_twice_is_read_once() {
    // A file on its own and within its folder: the same definitions, read once.
    let out = run(
        &[
            "check",
            "-f",
            "examples/metro/workloads.yaml",
            "-f",
            "examples/metro",
        ],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(" 12 bindings: "), "{stderr}");
}

#[test]
fn cluster_serve_names_the_file_of_an_object_it_refuses() {
    let dir = scratch("refused");
    std::fs::write(
        dir.join("a.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
    )
    .unwrap();
    let file = dir.join("a.yaml");
    let out = run(
        &[
            "cluster",
            "serve",
            "-f",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "error: loading the manifests: {}[1] Widget default/w: the server has no resource for example.com/v1 Widget",
            file.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_alias_limit_is_raised_through_its_variable() {
    let dir = scratch("aliases");
    // 10^5 replayed strings: genuine here, over a limit of 50,000.
    let mut yaml = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: expanded}\ndata:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for level in 1..5 {
        let refs = vec![format!("*a{}", level - 1); 10].join(", ");
        yaml.push_str(&format!("  a{level}: &a{level} [{refs}]\n"));
    }
    let file = dir.join("c.yaml");
    std::fs::write(&file, yaml).unwrap();
    let file = file.to_str().unwrap();
    let var = "EDGEPLANE_YAML_MAX_ALIAS_EVENTS";
    let out = run(&["check", "-f", file], &[(var, "50000")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("aliases expand to more than 50000 parser events (a guard against alias bombs); if the input is genuine, raise the limit with the environment variable EDGEPLANE_YAML_MAX_ALIAS_EVENTS"),
        "{stderr}"
    );
    let out = run(&["check", "-f", file], &[(var, "500000")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(&["check", "-f", file], &[(var, "many")]);
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "error: {file}: EDGEPLANE_YAML_MAX_ALIAS_EVENTS=\"many\" is not a positive whole number of events"
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn folders_with_link_loops_are_read_once() {
    // `ln -s . l1; ln -s . l2` made the walk exponential (it hung, past 800 MB); one link
    // read each file 41 times.
    let dir = scratch("loops");
    for f in ["topology", "policies", "offers", "workloads", "nodes"] {
        let text =
            std::fs::read_to_string(repo().join(format!("examples/metro-plan/{f}.yaml"))).unwrap();
        std::fs::write(dir.join(format!("{f}.yaml")), text).unwrap();
    }
    std::os::unix::fs::symlink(".", dir.join("l1")).unwrap();
    std::os::unix::fs::symlink(".", dir.join("l2")).unwrap();
    let out = run(&["check", "-f", dir.to_str().unwrap()], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(", 12 nodes, "), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_fields_are_refused_unless_validate_relaxes_it() {
    let dir = scratch("unknown");
    let file = dir.join("p.yaml");
    std::fs::write(
        &file,
        "apiVersion: constraint.edgeplane.io/v1alpha1\nkind: ConstraintPolicy\nmetadata: {name: p}\nspec:\n  rules: [{name: latency, request: 4ms, requets: 3ms, limit: 10ms}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec: {bogus: 1, containers: [{name: c, image: i}]}\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    for command in ["check", "plan"] {
        let out = run(&[command, "-f", file], &[]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert_eq!(
            text(&out.stderr).trim(),
            format!(
                "error: {file}[0] ConstraintPolicy default/p: spec.rules[0].requets: unknown field (--validate=warn reads the object without it)"
            ),
            "{command}"
        );
    }
    let out = run(&["check", "-f", file, "--validate=warn"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: {file}[1] Pod default/q: spec.bogus: unknown field, ignored"
        )),
        "{stderr}"
    );
    let out = run(&["check", "-f", file, "--validate=ignore"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stderr).contains("warning"));
    let out = run(
        &["cluster", "serve", "-f", file, "--listen", "127.0.0.1:0"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("spec.rules[0].requets: unknown field"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concatenated_json_objects_read_as_kubectl_reads_them() {
    let dir = scratch("concatenated");
    let file = dir.join("nodes.json");
    let node = |name: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{name}"}},"status":{{"allocatable":{{"cpu":"4","memory":"8Gi","pods":"110"}}}}}}"#
        )
    };
    std::fs::write(&file, format!("{}\n{}{}", node("a"), node("b"), node("c"))).unwrap();
    let out = run(&["check", "-f", file.to_str().unwrap()], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(", 3 nodes, "), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    // More output than a pipe holds (64 KiB, up to 1 MiB when raised), so the command is
    // still writing when the reader goes away: the write fails with EPIPE, whatever the
    // timing.
    let dir = scratch("pipe");
    let file = inventory_file(&dir, 12_000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(["plan", "-f", file.to_str().unwrap()])
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 10];
    stdout.read_exact(&mut head).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    // What a shell reports for a tool ended by SIGPIPE; it was 101 and a panic message.
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
