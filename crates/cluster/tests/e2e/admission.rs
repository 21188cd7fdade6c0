//! Validation in CEL through the API: CRD `x-kubernetes-validations` rules, and
//! ValidatingAdmissionPolicies that judge who writes (impersonated users).

use edgeplane_cluster::UserInfo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Error};
use serde_json::{Value, json};

use crate::support::{cluster, create_pod, pod};

fn refusal(err: Error) -> (u16, String) {
    match err {
        Error::Api(status) => (status.code, status.message),
        other => panic!("expected an API refusal, got {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn crd_rules_refuse_objects_and_crds_with_rules_that_do_not_compile() {
    let c = cluster(0).await;
    let crds = edgeplane_api::crdgen::all()
        .into_iter()
        .map(|c| serde_json::to_value(c).expect("json"));
    c.apply_objects(crds).await.expect("crds");
    let gvk = GroupVersionKind::gvk("network.edgeplane.io", "v1alpha1", "NetworkTopology");
    let topologies: Api<DynamicObject> = Api::all_with(
        c.client(),
        &ApiResource::from_gvk_with_plural(&gvk, "networktopologies"),
    );
    let topology = |to: &str| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "network.edgeplane.io/v1alpha1", "kind": "NetworkTopology",
            "metadata": {"name": "default"},
            "spec": {"links": [{"from": "a", "to": to, "latency": "1ms"}]}
        }))
        .expect("topology")
    };
    let err = topologies
        .create(&PostParams::default(), &topology("a"))
        .await
        .expect_err("a link from a site to itself is refused");
    assert_eq!(
        refusal(err),
        (
            422,
            "NetworkTopology.network.edgeplane.io \"default\" is invalid: spec.links[0]: Invalid value: \"object\": a link joins two different sites".to_string()
        )
    );
    assert!(topologies.get_opt("default").await.expect("get").is_none());
    topologies
        .create(&PostParams::default(), &topology("b"))
        .await
        .expect("a link between two sites is stored");

    let crds: Api<DynamicObject> = Api::all_with(
        c.client(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "x-kubernetes-validations": [{"rule": "self.spec.size >"}]
            }}}]}
    }))
    .expect("crd");
    let (code, message) = refusal(
        crds.create(&PostParams::default(), &bad)
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].rule: Invalid value: \"self.spec.size >\": compilation failed"),
        "{message}"
    );
}

fn admission(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind),
        plural,
    )
}

#[tokio::test(start_paused = true)]
async fn admission_policies_judge_the_impersonated_user() {
    let c = cluster(1).await;
    let admin = c.client();
    let policies: Api<DynamicObject> = Api::all_with(
        admin.clone(),
        &admission("ValidatingAdmissionPolicy", "validatingadmissionpolicies"),
    );
    let bindings: Api<DynamicObject> = Api::all_with(
        admin.clone(),
        &admission(
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
        ),
    );
    let object = |v: Value| -> DynamicObject { serde_json::from_value(v).expect("object") };
    policies
        .create(
            &PostParams::default(),
            &object(json!({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": "robots-keep-labels"},
                "spec": {
                    "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["pods"]}]},
                    "matchConditions": [{"name": "robot", "expression": "request.userInfo.username.startsWith('system:serviceaccount:')"}],
                    "validations": [{"expression": "object.metadata.?labels == oldObject.metadata.?labels",
                                     "messageExpression": "'service accounts may not relabel pods, as ' + request.userInfo.username + ' tried'"}]
                }
            })),
        )
        .await
        .expect("policy");
    let broken = object(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "broken"},
        "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}]},
                 "validations": [{"expression": "object.("}]}
    }));
    let (code, message) = refusal(
        policies
            .create(&PostParams::default(), &broken)
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains(
            "spec.validations[0].expression: Invalid value: \"object.(\": compilation failed"
        ),
        "{message}"
    );

    create_pod(&admin, "default", pod("web")).await;
    let relabel = Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}}));
    let robot = UserInfo::service_account("default", "robot");
    let as_robot: Api<Pod> = Api::namespaced(c.client_as(&robot), "default");
    // No binding yet: the policy applies to nothing.
    as_robot
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "web2"}}})),
        )
        .await
        .expect("unbound policies refuse nothing");
    bindings
        .create(
            &PostParams::default(),
            &object(json!({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": "robots-keep-labels"},
                "spec": {"policyName": "robots-keep-labels", "validationActions": ["Deny"]}
            })),
        )
        .await
        .expect("binding");
    let before = as_robot.get("web").await.expect("pod");
    let err = as_robot
        .patch("web", &PatchParams::default(), &relabel)
        .await
        .expect_err("a service account may not relabel");
    assert_eq!(
        refusal(err),
        (
            422,
            "pods \"web\" is forbidden: ValidatingAdmissionPolicy 'robots-keep-labels' with binding 'robots-keep-labels' denied request: service accounts may not relabel pods, as system:serviceaccount:default:robot tried".to_string()
        )
    );
    let after = as_robot.get("web").await.expect("pod");
    assert_eq!(after.metadata.labels, before.metadata.labels);
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    // Other changes by the robot, and the admin's relabelling, pass.
    as_robot
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"note": "x"}}})),
        )
        .await
        .expect("annotations may change");
    Api::<Pod>::namespaced(admin, "default")
        .patch("web", &PatchParams::default(), &relabel)
        .await
        .expect("the admin is not a service account");
}
