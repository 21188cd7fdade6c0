use edgeplane_api::{
    InterfaceBinding, NetworkFunction, NetworkFunctionSpec, NfInterface, NfRuntime,
};
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::json;

use super::*;

fn nf(runtime: NfRuntime) -> NetworkFunction {
    let mut nf = NetworkFunction::new(
        "fw",
        NetworkFunctionSpec {
            runtime,
            image: "registry.example/fw:1.2".into(),
            replicas: 2,
            resources: [("cpu", "4"), ("memory", "8Gi")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.into())))
                .collect(),
            interfaces: vec![NfInterface {
                name: "north".into(),
                network: "upf/n6".into(),
                binding: Some(InterfaceBinding::Bridge),
            }],
            requires: vec![
                "feature.node.kubernetes.io/network-sriov.capable=true".into(),
                "edge".into(),
            ],
            pod_template: None,
            vm_template: None,
        },
    );
    nf.metadata.namespace = Some("core".into());
    nf.metadata.uid = Some("uid-fw".into());
    nf.metadata.generation = Some(3);
    nf
}

fn port() -> Port {
    Port {
        name: "sc-in".into(),
        network: "core/sc-l0-fw-dpi".into(),
        binding: InterfaceBinding::Bridge,
    }
}

fn everything_exists(_: &str) -> bool {
    true
}

fn affinity() -> serde_json::Value {
    json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [
            {"key": "feature.node.kubernetes.io/network-sriov.capable", "operator": "In", "values": ["true"]},
            {"key": "edge", "operator": "Exists"}
        ]}
    ]}}})
}

fn owner() -> serde_json::Value {
    json!([{"apiVersion": "network.edgeplane.io/v1alpha1", "kind": "NetworkFunction", "name": "fw",
            "uid": "uid-fw", "controller": true, "blockOwnerDeletion": true}])
}

#[test]
fn a_container_replica_is_a_gated_pod_with_multus_networks() {
    let replicas = render(
        &nf(NfRuntime::Container),
        &[vec![], vec![port()]],
        &everything_exists,
        &|_| false,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(replicas.len(), 2);
    let Replica::Pod(pod) = &replicas[1] else {
        panic!("not a pod")
    };
    assert_eq!(
        serde_json::to_value(pod).unwrap_or_default(),
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "fw-1", "namespace": "core",
                "labels": {"network.edgeplane.io/network-function": "fw", "network.edgeplane.io/replica": "1"},
                "annotations": {"k8s.v1.cni.cncf.io/networks":
                    r#"[{"name":"n6","namespace":"upf","interface":"net1"},{"name":"sc-l0-fw-dpi","namespace":"core","interface":"net2"}]"#},
                "ownerReferences": owner(),
            },
            "spec": {
                "affinity": affinity(),
                "containers": [{"name": "nf", "image": "registry.example/fw:1.2",
                    "resources": {"limits": {"cpu": "4", "memory": "8Gi"}, "requests": {"cpu": "4", "memory": "8Gi"}}}],
                "schedulingGates": [{"name": "constraint.edgeplane.io/planner"}],
            }
        })
    );
    assert_eq!(replicas[0].name(), "fw-0");
}

#[test]
fn a_vm_replica_is_a_halted_virtual_machine_with_multus_networks() {
    let mut vm_nf = nf(NfRuntime::VirtualMachine);
    vm_nf
        .spec
        .resources
        .insert("hugepages-1Gi".into(), Quantity("4Gi".into()));
    vm_nf.spec.resources.remove("memory");
    vm_nf.spec.interfaces[0].binding = Some(InterfaceBinding::Sriov);
    let replicas = render(&vm_nf, &[vec![port()]], &everything_exists, &|i| i == 1)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let Replica::VirtualMachine(vm) = &replicas[0] else {
        panic!("not a VM")
    };
    assert_eq!(
        vm,
        &json!({
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": {
                "name": "fw-0", "namespace": "core",
                "labels": {"network.edgeplane.io/network-function": "fw", "network.edgeplane.io/replica": "0"},
                "ownerReferences": owner(),
            },
            "spec": {
                "runStrategy": "Halted",
                "template": {
                    "metadata": {"labels": {"network.edgeplane.io/network-function": "fw", "network.edgeplane.io/replica": "0"}},
                    "spec": {
                        "affinity": affinity(),
                        "domain": {
                            "devices": {
                                "disks": [{"name": "containerdisk", "disk": {"bus": "virtio"}}],
                                "interfaces": [
                                    {"name": "default", "masquerade": {}},
                                    {"name": "north", "sriov": {}},
                                    {"name": "sc-in", "bridge": {}},
                                ],
                            },
                            "memory": {"hugepages": {"pageSize": "1Gi"}},
                            "resources": {"requests": {"cpu": "4", "memory": "4Gi"}},
                        },
                        "networks": [
                            {"name": "default", "pod": {}},
                            {"name": "north", "multus": {"networkName": "upf/n6"}},
                            {"name": "sc-in", "multus": {"networkName": "core/sc-l0-fw-dpi"}},
                        ],
                        "volumes": [{"name": "containerdisk", "containerDisk": {"image": "registry.example/fw:1.2"}}],
                    }
                }
            }
        })
    );
    let Replica::VirtualMachine(started) = &replicas[1] else {
        panic!("not a VM")
    };
    assert_eq!(started["spec"]["runStrategy"], "Always");
    // Replica 1 has no chain port.
    assert_eq!(
        started["spec"]["template"]["spec"]["networks"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn bad_specs_render_nothing_and_name_every_field() {
    let mut bad = nf(NfRuntime::Container);
    bad.spec.interfaces.push(NfInterface {
        name: "north".into(),
        network: "missing".into(),
        binding: Some(InterfaceBinding::Masquerade),
    });
    bad.spec.requires.push("bad key=x".into());
    bad.spec
        .resources
        .insert("cpu".into(), Quantity("lots".into()));
    bad.spec.vm_template = Some(json!({"domain": {}}));
    let exists = |n: &str| n == "upf/n6";
    let errors = render(&bad, &[], &exists, &|_| false)
        .err()
        .unwrap_or_default();
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "spec.resources[cpu]: \"lots\" is not a quantity",
            "spec.interfaces[1].name: interface \"north\" appears twice",
            "spec.interfaces[1].network: NetworkAttachmentDefinition core/missing does not exist",
            "spec.interfaces[1].binding: masquerade is a virtual machine's binding; a container attaches directly",
            "spec.requires[2]: \"bad key\" is not a label key",
            "spec.vmTemplate: vmTemplate is for runtime VirtualMachine",
        ]
    );
    let mut vm = nf(NfRuntime::VirtualMachine);
    vm.spec.pod_template = Some(json!({}));
    vm.spec.interfaces[0].binding = Some(InterfaceBinding::Masquerade);
    let errors = render(
        &vm,
        &[vec![Port {
            name: "north".into(),
            ..port()
        }]],
        &everything_exists,
        &|_| false,
    )
    .err()
    .unwrap_or_default();
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "spec.interfaces[0].binding: masquerade attaches only the pod network, which every VM has; a secondary interface is bridge or sriov",
            "spec.interfaces: interface \"north\" is also the name of a service chain's link",
            "spec.podTemplate: podTemplate is for runtime Container",
        ]
    );
}

#[test]
fn a_pod_template_adds_to_the_rendered_pod_and_keeps_the_gate() {
    let mut with_sidecar = nf(NfRuntime::Container);
    with_sidecar.spec.replicas = 1;
    with_sidecar.spec.pod_template = Some(json!({
        "containers": [{"name": "nf", "args": ["--fast"]}, {"name": "exporter", "image": "exp:1"}],
        "schedulingGates": [],
        "affinity": null,
    }));
    let replicas = render(&with_sidecar, &[], &everything_exists, &|_| false).unwrap_or_default();
    let Some(Replica::Pod(pod)) = replicas.first() else {
        panic!("not a pod")
    };
    let spec = serde_json::to_value(&pod.spec).unwrap_or_default();
    assert_eq!(spec["containers"][0]["image"], "registry.example/fw:1.2");
    assert_eq!(spec["containers"][0]["args"], json!(["--fast"]));
    assert_eq!(spec["containers"][1]["name"], "exporter");
    assert_eq!(
        spec["schedulingGates"],
        json!([{"name": "constraint.edgeplane.io/planner"}])
    );
    assert_eq!(spec.get("affinity"), None);

    with_sidecar.spec.pod_template = Some(json!({"containers": "not a list"}));
    let errors = render(&with_sidecar, &[], &everything_exists, &|_| false)
        .err()
        .unwrap_or_default();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "spec.podTemplate");
    assert!(
        errors[0]
            .message
            .starts_with("does not merge into a pod spec"),
        "{}",
        errors[0].message
    );
}

fn running_pod(name: &str, node: &str, status: &str) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(name.into());
    pod.metadata.annotations = Some(
        [(
            "k8s.v1.cni.cncf.io/network-status".to_string(),
            status.to_string(),
        )]
        .into(),
    );
    pod.spec = Some(k8s_openapi::api::core::v1::PodSpec {
        node_name: Some(node.into()),
        ..Default::default()
    });
    pod.status = Some(PodStatus {
        phase: Some("Running".into()),
        ..Default::default()
    });
    pod
}

#[test]
fn status_reads_multus_network_status_and_vmi_interfaces() {
    let container = nf(NfRuntime::Container);
    let expected = expected_interfaces(&container, &[port()]);
    let attached = running_pod(
        "fw-0",
        "edge-1",
        r#"[{"name":"default/kindnet","interface":"eth0","ips":["10.0.0.4"],"default":true},
            {"name":"upf/n6","interface":"net1","ips":["192.168.6.4"],"mac":"02:00:00:00:00:01"},
            {"name":"core/sc-l0-fw-dpi","interface":"net2","ips":[]}]"#,
    );
    let half = running_pod(
        "fw-1",
        "edge-2",
        r#"[{"name":"upf/n6","interface":"net1"}]"#,
    );
    let observed = [
        Some(observe_pod(&attached, &expected)),
        Some(observe_pod(&half, &expected)),
    ];
    assert!(observed[0].as_ref().is_some_and(ObservedReplica::ready));
    let now = "2026-12-07T10:00:00Z".parse().unwrap_or_default();
    let status = nf_status(&container, None, &observed, &[], now);
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.ready_replicas, Some(1));
    assert_eq!(status.nodes.as_deref(), Some("edge-1,edge-2"));
    assert_eq!(
        status.reason.as_deref(),
        Some("interfaces not attached: fw-1")
    );
    assert_eq!(
        serde_json::to_value(&status.replicas[0].interfaces).unwrap_or_default(),
        json!([
            {"name": "north", "network": "upf/n6", "ips": ["192.168.6.4"], "mac": "02:00:00:00:00:01"},
            {"name": "sc-in", "network": "core/sc-l0-fw-dpi"},
        ])
    );
    let conditions: Vec<(&str, &str, &str)> = status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str(), c.message.as_str()))
        .collect();
    assert_eq!(
        conditions,
        [
            ("Scheduled", "True", "every replica has a node"),
            (
                "InterfacesReady",
                "False",
                "interfaces not attached on: fw-1"
            ),
            ("Ready", "False", "1 of 2 replicas ready"),
        ]
    );

    let vm_nf = nf(NfRuntime::VirtualMachine);
    let expected = expected_interfaces(&vm_nf, &[]);
    let vm = json!({"metadata": {"name": "fw-0"}, "spec": {"runStrategy": "Always"}});
    let vmi = json!({"status": {"phase": "Running", "nodeName": "edge-3", "interfaces": [
        {"name": "default", "ipAddress": "10.0.0.9"},
        {"name": "north", "ipAddresses": ["192.168.6.9"], "mac": "02:00:00:00:00:09", "infoSource": "domain, multus-status"}
    ]}});
    let halted = json!({"metadata": {"name": "fw-1"}, "spec": {"runStrategy": "Halted"}});
    let observed = [
        Some(observe_vm(&vm, Some(&vmi), &expected)),
        Some(observe_vm(&halted, None, &expected)),
    ];
    let status = nf_status(&vm_nf, None, &observed, &[], now);
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert_eq!(status.reason.as_deref(), Some("not placed: fw-1"));
    assert_eq!(status.replicas[1].phase.as_deref(), Some("Halted"));
    assert_eq!(status.replicas[0].node.as_deref(), Some("edge-3"));
    assert_eq!(status.replicas[0].interfaces[0].ips, ["192.168.6.9"]);

    let errors = [FieldError::new(
        "spec.interfaces[0].network",
        "NetworkAttachmentDefinition upf/n6 does not exist",
    )];
    let invalid = nf_status(&vm_nf, Some(&status), &[], &errors, now);
    assert_eq!(invalid.phase.as_deref(), Some("Invalid"));
    assert_eq!(
        invalid.conditions[2].message,
        "spec.interfaces[0].network: NetworkAttachmentDefinition upf/n6 does not exist"
    );
}

#[test]
fn may_start_waits_for_every_network() {
    let expected = expected_interfaces(&nf(NfRuntime::VirtualMachine), &[port()]);
    assert!(!may_start(&expected, &|n| n == "upf/n6"));
    assert!(may_start(&expected, &everything_exists));
}

#[test]
fn pod_affinity_goes_on_the_pod_or_the_vm_template() {
    use k8s_openapi::api::core::v1::PodAffinity;
    let affinity = PodAffinity {
        required_during_scheduling_ignored_during_execution: Some(vec![Default::default()]),
        preferred_during_scheduling_ignored_during_execution: None,
    };
    for runtime in [NfRuntime::Container, NfRuntime::VirtualMachine] {
        let mut replicas =
            render(&nf(runtime), &[], &everything_exists, &|_| false).unwrap_or_default();
        add_pod_affinity(&mut replicas[0], &affinity);
        let value = match &replicas[0] {
            Replica::Pod(p) => {
                serde_json::to_value(&p.spec).unwrap_or_default()["affinity"].clone()
            }
            Replica::VirtualMachine(v) => v["spec"]["template"]["spec"]["affinity"].clone(),
        };
        assert_eq!(
            value["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                .as_array()
                .map(Vec::len),
            Some(1),
            "{runtime:?}"
        );
        // The node affinity of `requires` stays.
        assert!(value["nodeAffinity"].is_object(), "{runtime:?}");
    }
}

#[test]
fn a_vm_template_that_breaks_placement_is_refused() {
    let mut vm = nf(NfRuntime::VirtualMachine);
    vm.spec.vm_template = Some(json!({"affinity": "not an object"}));
    let errors = render(&vm, &[], &everything_exists, &|_| false)
        .err()
        .unwrap_or_default();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "spec.vmTemplate");
    assert!(
        errors[0]
            .message
            .starts_with("does not merge into a VirtualMachineInstance spec: "),
        "{}",
        errors[0].message
    );
    // A template that adds to the domain and the disks renders.
    vm.spec.vm_template = Some(json!({"domain": {"cpu": {"dedicatedCpuPlacement": true},
        "devices": {"disks": [{"name": "cloudinit", "disk": {"bus": "virtio"}}]}}}));
    let replicas = render(&vm, &[], &everything_exists, &|_| false).unwrap_or_default();
    let Some(Replica::VirtualMachine(v)) = replicas.first() else {
        panic!("not a VM")
    };
    let disks = &v["spec"]["template"]["spec"]["domain"]["devices"]["disks"];
    assert_eq!(disks.as_array().map(Vec::len), Some(2));
    assert_eq!(
        v["spec"]["template"]["spec"]["domain"]["cpu"]["dedicatedCpuPlacement"],
        true
    );
}

#[test]
fn a_replacement_pod_takes_the_first_free_name() {
    let taken = |n: &str| n == "dpi-0" || n == "dpi-0-r1";
    assert_eq!(pod_name("dpi", 0, &taken), "dpi-0-r2");
    assert_eq!(pod_name("dpi", 1, &taken), "dpi-1");
    assert!(is_pod_of("dpi-0", "dpi-0"));
    assert!(is_pod_of("dpi-0-r2", "dpi-0"));
    assert!(!is_pod_of("dpi-0-r", "dpi-0"));
    assert!(!is_pod_of("dpi-00", "dpi-0"));
    assert!(!is_pod_of("dpi-0-rx", "dpi-0"));
}
