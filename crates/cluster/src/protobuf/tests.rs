//! Messages here are built field by field with `prost-reflect` as client-go writes them,
//! and what the server writes is read back field by field, so the JSON mapping is checked
//! against the wire rather than against itself.

use std::collections::HashMap;

use prost::Message;
use prost_reflect::{DynamicMessage, MapKey, Value as P};
use serde_json::json;

use super::*;

/// A message of `name` (a full name in the descriptor pool) with these fields set.
fn msg(name: &str, fields: Vec<(&str, P)>) -> DynamicMessage {
    let mut m = DynamicMessage::new(pool().unwrap().get_message_by_name(name).unwrap());
    for (f, v) in fields {
        m.try_set_field_by_name(f, v).unwrap();
    }
    m
}

fn s(v: &str) -> P {
    P::String(v.into())
}

fn m(v: DynamicMessage) -> P {
    P::Message(v)
}

fn labels(pairs: &[(&str, &str)]) -> P {
    P::Map(
        pairs
            .iter()
            .map(|(k, v)| (MapKey::String((*k).into()), s(v)))
            .collect::<HashMap<_, _>>(),
    )
}

/// A document as client-go writes it: magic, then `Unknown{typeMeta, raw}`.
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let tm = msg(
        "apimachinery.pkg.runtime.TypeMeta",
        vec![("apiVersion", s(api_version)), ("kind", s(kind))],
    );
    let unknown = msg(
        "apimachinery.pkg.runtime.Unknown",
        vec![("typeMeta", m(tm)), ("raw", P::Bytes(raw.into()))],
    );
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

/// The object inside a document, read with the message of `name`.
fn read(doc: &[u8], name: &str) -> (String, String, DynamicMessage) {
    assert_eq!(&doc[..4], b"k8s\0");
    let (api_version, kind, raw) = unwrap_envelope(doc).unwrap();
    let desc = pool().unwrap().get_message_by_name(name).unwrap();
    (
        api_version,
        kind,
        DynamicMessage::decode(desc, raw.as_slice()).unwrap(),
    )
}

fn field(m: &DynamicMessage, path: &str) -> P {
    let mut cur = P::Message(m.clone());
    for part in path.split('.') {
        cur = match (&cur, part.parse::<usize>()) {
            (P::List(items), Ok(i)) => items[i].clone(),
            (P::Map(map), _) => map[&MapKey::String(part.into())].clone(),
            (P::Message(msg), _) => msg.get_field_by_name(part).unwrap().into_owned(),
            _ => panic!("{path}: cannot step into {part}"),
        };
    }
    cur
}

/// Go marshals every non-pointer field, zero or not: these are the zeros it sends for a
/// Deployment with `kubectl create deployment web --image=nginx --replicas=0`.
fn go_deployment() -> DynamicMessage {
    let zero_time = msg("apimachinery.pkg.apis.meta.v1.Time", vec![]);
    let container = msg(
        "api.core.v1.Container",
        vec![
            ("name", s("nginx")),
            ("image", s("nginx")),
            ("stdin", P::Bool(false)),
            ("tty", P::Bool(false)),
            ("terminationMessagePath", s("")),
            (
                "resources",
                m(msg("api.core.v1.ResourceRequirements", vec![])),
            ),
        ],
    );
    let pod_spec = msg(
        "api.core.v1.PodSpec",
        vec![
            ("containers", P::List(vec![m(container)])),
            ("hostNetwork", P::Bool(false)),
            ("dnsPolicy", s("")),
            ("restartPolicy", s("")),
        ],
    );
    let template_meta = msg(
        "apimachinery.pkg.apis.meta.v1.ObjectMeta",
        vec![
            ("labels", labels(&[("app", "web")])),
            ("creationTimestamp", m(zero_time.clone())),
        ],
    );
    let template = msg(
        "api.core.v1.PodTemplateSpec",
        vec![("metadata", m(template_meta)), ("spec", m(pod_spec))],
    );
    let selector = msg(
        "apimachinery.pkg.apis.meta.v1.LabelSelector",
        vec![("matchLabels", labels(&[("app", "web")]))],
    );
    let spec = msg(
        "api.apps.v1.DeploymentSpec",
        vec![
            ("replicas", P::I32(0)), // a pointer: the explicit zero must survive
            ("selector", m(selector)),
            ("template", m(template)),
            ("minReadySeconds", P::I32(0)),
            ("paused", P::Bool(false)),
            ("strategy", m(msg("api.apps.v1.DeploymentStrategy", vec![]))),
        ],
    );
    let metadata = msg(
        "apimachinery.pkg.apis.meta.v1.ObjectMeta",
        vec![
            ("name", s("web")),
            ("namespace", s("")),
            ("generation", P::I64(0)),
            ("creationTimestamp", m(zero_time)),
            ("labels", labels(&[("app", "web")])),
        ],
    );
    msg(
        "api.apps.v1.Deployment",
        vec![
            ("metadata", m(metadata)),
            ("spec", m(spec)),
            ("status", m(msg("api.apps.v1.DeploymentStatus", vec![]))),
        ],
    )
}

#[test]
fn a_go_client_deployment_decodes_as_its_json() {
    let body = envelope("apps/v1", "Deployment", go_deployment().encode_to_vec());
    let v = decode(&body).unwrap();
    assert_eq!(
        v,
        json!({
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]},
                },
                "strategy": {},
            },
            "status": {},
        })
    );
}

#[test]
fn special_types_decode_as_kubernetes_json() {
    let ts = msg(
        "apimachinery.pkg.apis.meta.v1.Time",
        vec![("seconds", P::I64(1_700_000_000))],
    );
    let meta = msg(
        "apimachinery.pkg.apis.meta.v1.ObjectMeta",
        vec![("name", s("s")), ("creationTimestamp", m(ts))],
    );
    let data = P::Map(HashMap::from([
        (
            MapKey::String("k".into()),
            P::Bytes(b"hello".to_vec().into()),
        ),
        (MapKey::String("empty".into()), P::Bytes(Vec::new().into())),
    ]));
    let secret = msg(
        "api.core.v1.Secret",
        vec![
            ("metadata", m(meta)),
            ("data", data),
            ("type", s("Opaque")),
            ("immutable", P::Bool(false)), // a pointer: false is kept
        ],
    );
    let v = decode(&envelope("v1", "Secret", secret.encode_to_vec())).unwrap();
    assert_eq!(v["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(v["data"], json!({"k": "aGVsbG8=", "empty": ""}));
    assert_eq!(v["type"], "Opaque");
    assert_eq!(v["immutable"], false);

    let target = msg(
        "apimachinery.pkg.util.intstr.IntOrString",
        vec![("type", P::I64(1)), ("strVal", s("http"))],
    );
    let port = msg(
        "api.core.v1.ServicePort",
        vec![("port", P::I32(80)), ("targetPort", m(target))],
    );
    let spec = msg(
        "api.core.v1.ServiceSpec",
        vec![("ports", P::List(vec![m(port)]))],
    );
    let svc = msg("api.core.v1.Service", vec![("spec", m(spec))]);
    let v = decode(&envelope("v1", "Service", svc.encode_to_vec())).unwrap();
    assert_eq!(
        v["spec"]["ports"],
        json!([{"port": 80, "targetPort": "http"}])
    );

    let q = msg(
        "apimachinery.pkg.api.resource.Quantity",
        vec![("string", s("500m"))],
    );
    let limits = P::Map(HashMap::from([(MapKey::String("cpu".into()), m(q))]));
    let resources = msg("api.core.v1.ResourceRequirements", vec![("limits", limits)]);
    let c = msg("api.core.v1.Container", vec![("resources", m(resources))]);
    let spec = msg(
        "api.core.v1.PodSpec",
        vec![("containers", P::List(vec![m(c)]))],
    );
    let pod = msg("api.core.v1.Pod", vec![("spec", m(spec))]);
    let v = decode(&envelope("v1", "Pod", pod.encode_to_vec())).unwrap();
    assert_eq!(
        v["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "500m"}})
    );
}

#[test]
fn encoded_objects_read_back_field_by_field() {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u-1",
            "resourceVersion": "7",
            "creationTimestamp": "2025-01-02T03:04:05Z",
            "labels": {"app": "web"},
            "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:metadata": {}}, "time": "2025-01-02T03:04:05Z"}],
            "somethingUnknown": true,
        },
        "spec": {
            "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
                            "resources": {"requests": {"cpu": 1, "memory": "64Mi"}}}],
            "terminationGracePeriodSeconds": 0,
            "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 30}],
        },
        "status": {"phase": "Running", "startTime": "2025-01-02T03:04:06Z"},
    });
    let doc = encode(&pod).unwrap();
    let (api_version, kind, typed) = read(&doc, "api.core.v1.Pod");
    assert_eq!((api_version.as_str(), kind.as_str()), ("v1", "Pod"));
    assert_eq!(field(&typed, "metadata.name"), s("web"));
    assert_eq!(field(&typed, "metadata.resourceVersion"), s("7"));
    assert_eq!(
        field(&typed, "metadata.creationTimestamp.seconds"),
        P::I64(1_735_787_045)
    );
    assert_eq!(
        field(&typed, "metadata.managedFields.0.fieldsV1.Raw"),
        P::Bytes(br#"{"f:metadata":{}}"#.to_vec().into())
    );
    assert_eq!(
        field(&typed, "spec.terminationGracePeriodSeconds"),
        P::I64(0)
    );
    assert!(
        field(&typed, "spec")
            .as_message()
            .unwrap()
            .has_field_by_name("terminationGracePeriodSeconds")
    );
    assert_eq!(
        field(&typed, "spec.containers.0.ports.0.containerPort"),
        P::I32(80)
    );
    assert_eq!(
        field(&typed, "spec.containers.0.resources.requests.cpu.string"),
        s("1")
    );
    assert_eq!(
        field(&typed, "spec.tolerations.0.tolerationSeconds"),
        P::I64(30)
    );
    assert_eq!(field(&typed, "status.phase"), s("Running"));

    // And back: what encode wrote decodes to the same object, less what has no field.
    let back = decode(&doc).unwrap();
    let mut expected = pod.clone();
    expected["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("somethingUnknown");
    expected["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("1");
    assert_eq!(back, expected);
}

#[test]
fn lists_and_status_encode() {
    let list = json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"},
                      "items": [{"metadata": {"name": "a"}, "data": {"x": "y"}}]});
    let (_, kind, typed) = read(&encode(&list).unwrap(), "api.core.v1.ConfigMapList");
    assert_eq!(kind, "ConfigMapList");
    assert_eq!(field(&typed, "metadata.resourceVersion"), s("9"));
    assert_eq!(field(&typed, "items.0.metadata.name"), s("a"));
    assert_eq!(field(&typed, "items.0.data.x"), s("y"));

    let status = crate::ApiError::not_found("", "pods", "x").to_status();
    let (_, kind, typed) = read(
        &encode(&status).unwrap(),
        "apimachinery.pkg.apis.meta.v1.Status",
    );
    assert_eq!(kind, "Status");
    assert_eq!(field(&typed, "code"), P::I32(404));
    assert_eq!(field(&typed, "reason"), s("NotFound"));
    assert_eq!(field(&typed, "message"), s("pods \"x\" not found"));
}

#[test]
fn bad_bodies_are_errors_not_panics() {
    assert!(matches!(decode(b""), Err(ProtoError::Malformed(_))));
    assert!(matches!(
        decode(b"{\"kind\":\"Pod\"}"),
        Err(ProtoError::Malformed(_))
    ));
    assert!(matches!(
        decode(b"k8s\0\xff\xff\xff"),
        Err(ProtoError::Malformed(_))
    ));
    let e = decode(&envelope("v1", "Pod", vec![0x0a, 0x05, 0x01])).unwrap_err();
    assert!(
        matches!(e, ProtoError::Malformed(ref m) if m.contains("invalid Pod message")),
        "{e}"
    );
    assert_eq!(
        decode(&envelope("example.com/v1", "Widget", vec![])).unwrap_err(),
        ProtoError::UnknownKind {
            api_version: "example.com/v1".into(),
            kind: "Widget".into()
        }
    );
    assert!(decode(&envelope("v1", "Pod.LabelsEntry", vec![])).is_err());
    // Encoding: a value of the wrong type names the field.
    let e = encode(&json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "x"}}))
        .unwrap_err();
    assert_eq!(e.to_string(), "spec.containers: expected an array");
    assert!(encode(&json!({"apiVersion": "example.com/v1", "kind": "Widget"})).is_err());
}

#[test]
fn watch_frames_round_trip() {
    let events = [
        json!({"type": "ADDED", "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}}),
        json!({"type": "DELETED", "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}}),
    ];
    let mut stream = Vec::new();
    for e in &events {
        stream.extend(watch_frame(e).unwrap());
    }
    stream.extend_from_slice(&[0, 0, 0, 9, 1]); // a partial frame stays unread
    let (read, rest) = read_watch_frames(&stream).unwrap();
    assert_eq!(read, events);
    assert_eq!(rest, &[0, 0, 0, 9, 1]);
}

#[test]
fn durations_read_and_write_as_go_does() {
    use super::from_json::parse_go_duration;
    use super::to_json::go_duration;
    for (ns, text) in [
        (0, "0s"),
        (1_500_000, "1.5ms"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_500_000_000, "1h2m3.5s"),
        (-2_000_000_000, "-2s"),
    ] {
        assert_eq!(go_duration(ns), text);
        assert_eq!(parse_go_duration(text), Some(ns), "{text}");
    }
    assert_eq!(parse_go_duration("10x"), None);
    assert_eq!(parse_go_duration(""), None);
}
