use super::*;

const OFFER: &str = r#"
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: low-latency}
spec:
  rules: [{name: latency, request: 5ms, limit: 10ms}]
---
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: ar, namespace: default}
spec:
  targets: [{kind: Pod}]
  policies: [low-latency]
  grace: 5 minutes
"#;

fn decode_all(source: &str, text: &str) -> Result<Vec<Object>, ManifestError> {
    parse_documents(source, text)?.iter().map(decode).collect()
}

#[test]
fn errors_name_source_document_object_and_field() {
    let err = decode_all("offers.yaml", OFFER)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "offers.yaml[2] ConstraintPolicyOffer default/ar: spec.grace: \"5 minutes\" is not a duration (expected for example 250ns, 10us, 1.5ms, 2s, 1m, 1h)"
        )
    );
}

#[test]
fn type_errors_carry_the_field_path() {
    let text = "apiVersion: constraint.edgeplane.io/v1alpha1\nkind: ConstraintPolicyOffer\nmetadata: {name: x}\nspec:\n  targets: [{kind: Pods}]\n  policies: [p]\n";
    let err = decode_all("o.yaml", text).err();
    assert_eq!(
        err.as_ref().and_then(|e| e.field.as_deref()),
        Some("spec.targets[0].kind")
    );
    assert!(err.is_some_and(|e| e.message.contains("unknown variant `Pods`")));
}

#[test]
fn unknown_kinds_are_skipped_and_namespaces_defaulted() {
    let objects = decode_all("a.yaml", &OFFER.replace("5 minutes", "5m")).unwrap_or_default();
    assert_eq!(objects.len(), 3);
    assert!(matches!(&objects[1], Object::Other { kind, .. } if kind == "ConfigMap"));
    let Object::Policy(p) = &objects[0] else {
        panic!("not a policy: {:?}", objects[0])
    };
    assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
}

#[test]
fn syntax_and_shape_errors() {
    let err = parse_documents("bad.yaml", "a: [1, 2\n")
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.starts_with("bad.yaml: invalid YAML")));
    let err = parse_documents("s.yaml", "- 1\n- 2\n")
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("must be a Kubernetes object")));
    let err = decode_all("k.yaml", "kind: Pod\nmetadata: {name: p}\n")
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("k.yaml[0] Pod default/p: apiVersion: is required")
    );
    let err = decode_all(
        "g.yaml",
        "apiVersion: constraint.edgeplane.io/v1\nkind: ConstraintPolicy\nmetadata: {name: p}\n",
    )
    .err();
    assert_eq!(err.and_then(|e| e.field), Some("apiVersion".to_string()));
}

#[test]
fn json_and_lists() {
    let docs = parse_documents(
        "l.json",
        r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"}}]}"#,
    );
    let docs = docs.unwrap_or_default();
    assert_eq!(docs.len(), 2);
    assert!(docs.iter().all(|d| d.index == 0 && d.kind() == "Pod"));
    assert!(parse_documents("x.json", "{nope").is_err());
}

#[test]
fn typed_lists_give_their_items_kind_and_api_version() {
    // What `kubectl get --raw /api/v1/pods` returns: items without kind and apiVersion.
    let text = "apiVersion: v1\nkind: PodList\nmetadata: {resourceVersion: \"7\"}\nitems:\n- metadata: {name: a}\n  spec: {containers: [{name: c, image: i}]}\n- metadata: {name: b}\n  spec: {containers: [{name: c, image: i, resources: {requests: {cpu: lots}}}]}\n";
    let docs = parse_documents("pods.yaml", text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(docs.len(), 2);
    assert!(
        docs.iter()
            .all(|d| d.kind() == "Pod" && d.api_version() == "v1")
    );
    let err = docs.iter().map(decode).find_map(Result::err);
    assert_eq!(
        err.map(|e| format!("{} {:?}", e.location, e.object)),
        Some("pods.yaml[0].items[1] Some(\"Pod default/b\")".to_string())
    );
    // An empty list, a list of non-objects, items that are not a list.
    assert_eq!(
        parse_documents("e.yaml", "apiVersion: v1\nkind: List\nitems: []\n").map(|d| d.len()),
        Ok(0)
    );
    let err = parse_documents("n.yaml", "apiVersion: v1\nkind: List\nitems: [1]\n").err();
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("n.yaml[0].items[0]: a list item must be a Kubernetes object (a mapping)")
    );
    let err = parse_documents("s.yaml", "apiVersion: v1\nkind: List\nitems: {a: 1}\n").err();
    assert_eq!(err.and_then(|e| e.field).as_deref(), Some("items"));
}

#[test]
fn yaml_flow_mappings_are_not_mistaken_for_json() {
    let docs = parse_documents(
        "f.yaml",
        "{apiVersion: v1, kind: Node, metadata: {name: n}}\n",
    );
    assert_eq!(
        docs.map(|d| d[0].kind().to_string()),
        Ok("Node".to_string())
    );
    let err = parse_documents("x.json", "{\"apiVersion\": ").err();
    assert!(err.is_some_and(|e| e.message.starts_with("invalid JSON")));
}

/// A node inventory of `n` documents in one file, as operators keep them.
fn inventory(n: usize) -> String {
    let mut text = String::with_capacity(n * 260);
    for i in 0..n {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: edge-{i}\n  labels:\n    topology.kubernetes.io/zone: site-{}\n    node-role.kubernetes.io/edge: \"\"\nstatus:\n  allocatable: {{cpu: \"16\", memory: 64Gi, pods: \"110\"}}\n  capacity: {{cpu: \"16\", memory: 64Gi, pods: \"110\"}}\n",
            i % 50
        ));
    }
    text
}

#[test]
fn a_single_file_of_20000_documents_reads() {
    // The parser's default budget stopped at 1,024 documents.
    let text = inventory(20_000);
    assert!(text.len() > 4_000_000, "{}", text.len());
    let docs = parse_documents("inventory.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(docs.len(), 20_000);
    assert_eq!(docs[19_999].location(), "inventory.yaml[19999]");
    let nodes = docs
        .iter()
        .map(decode)
        .filter(|o| matches!(o, Ok(Object::Node(_))))
        .count();
    assert_eq!(nodes, 20_000);
}

#[test]
fn a_list_of_20000_objects_reads() {
    // `kubectl get nodes -o yaml` of a large cluster: one document, one List.
    let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for doc in inventory(20_000).split("---\n").filter(|d| !d.is_empty()) {
        for (i, line) in doc.lines().enumerate() {
            text.push_str(if i == 0 { "- " } else { "  " });
            text.push_str(line);
            text.push('\n');
        }
    }
    let docs = parse_documents("nodes.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(docs.len(), 20_000);
    assert_eq!(docs[19_999].location(), "nodes.yaml[0].items[19999]");
    assert!(docs.iter().all(|d| d.kind() == "Node"));
}

fn unknown(text: &str) -> Vec<String> {
    parse_documents("u.yaml", text)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .flat_map(unknown_fields)
        .collect()
}

#[test]
fn unknown_fields_of_edgeplane_kinds_are_found_by_their_crd_schema() {
    let text = "apiVersion: constraint.edgeplane.io/v1alpha1\nkind: ConstraintPolicy\nmetadata: {name: p, labelz: {a: b}}\nspec:\n  bogus: 1\n  rules: [{name: latency, request: 4ms, requets: 4ms, limit: 10ms}]\nstatus: null\n";
    assert_eq!(
        unknown(text),
        ["metadata.labelz", "spec.bogus", "spec.rules[0].requets"]
    );
    let doc = &parse_documents("p.yaml", text).unwrap_or_default()[0];
    let err = check_fields(doc, Validation::Strict)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "p.yaml[0] ConstraintPolicy default/p: unknown fields metadata.labelz, spec.bogus, spec.rules[0].requets (--validate=warn reads the object without it)"
        )
    );
    assert_eq!(check_fields(doc, Validation::Warn).map(|w| w.len()), Ok(3));
    assert_eq!(check_fields(doc, Validation::Ignore), Ok(Vec::new()));
    // Maps keep every key; a known field is not reported.
    let topology = "apiVersion: network.edgeplane.io/v1alpha1\nkind: NetworkTopology\nmetadata: {name: default, labels: {app.kubernetes.io/name: x}}\nspec:\n  sites: [{name: a}]\n";
    assert_eq!(unknown(topology), Vec::<String>::new());
}

#[test]
fn unknown_fields_of_builtin_kinds_are_found_by_a_round_trip() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {a: b}}\nspec:\n  bogus: 1\n  nodeName: null\n  containers: [{name: c, image: i, resources: {requets: {cpu: 1m}}}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 2\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: i, imagePullPolicy: Always, prots: []}]}\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {anything: 1}\n";
    assert_eq!(
        unknown(text),
        [
            "spec.bogus",
            "spec.containers[0].resources.requets",
            "spec.template.spec.containers[0].prots"
        ]
    );
}

#[test]
fn concatenated_json_objects_are_documents() {
    let text = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}\n{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\"}}{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"}}]}";
    let docs = parse_documents("c.json", text).unwrap_or_else(|e| panic!("{e}"));
    let located: Vec<String> = docs
        .iter()
        .map(|d| format!("{} {}", d.location(), d.describe()))
        .collect();
    assert_eq!(
        located,
        [
            "c.json[0] ConfigMap default/a",
            "c.json[1] ConfigMap default/b",
            "c.json[2].items[0] ConfigMap default/c"
        ]
    );
    let err = parse_documents("c.json", "{\"a\": 1}\n{\"b\": ").err();
    assert!(err.is_some_and(|e| e.message.starts_with("invalid JSON")));
}

#[test]
fn inputs_the_api_server_refuses_are_refused() {
    let cases = [
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n",
            "p.yaml[0] Pod default/p: spec.containers: is required: a pod needs at least one container",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
            "p.yaml[0] Pod default/p: spec.containers: is required: a pod needs at least one container",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template: {spec: {containers: []}}\n",
            "p.yaml[0] Deployment default/d: spec.template.spec.containers: is required: a pod needs at least one container",
        ),
        (
            "apiVersion: constraint.edgeplane.io/v1alpha1\nkind: ConstraintPolicyOffer\nmetadata: {name: o}\nspec:\n  targets: [{kind: Pod, labelSelector: {matchLabels: {app: a b}}}]\n  policies: [p]\n",
            "p.yaml[0] ConstraintPolicyOffer default/o: spec.targets[0].labelSelector.matchLabels[\"app\"]: \"a b\" is not a valid label value: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, at most 63 characters",
        ),
        (
            "apiVersion: constraint.edgeplane.io/v1alpha1\nkind: ConstraintPolicy\nmetadata: {name: p}\nspec:\n  rules: [{name: latency, request: 99999999999999999999999h, limit: 10ms}]\n",
            "p.yaml[0] ConstraintPolicy default/p: spec.rules[0].request: \"99999999999999999999999h\" is not a duration (expected for example 250ns, 10us, 1.5ms, 2s, 1m, 1h): out of range (the longest duration is 2562047h47m16.854775807s)",
        ),
    ];
    for (text, expected) in cases {
        let err = decode_all("p.yaml", text).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(expected), "{text}");
    }
}
