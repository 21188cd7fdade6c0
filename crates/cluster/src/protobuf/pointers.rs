//! Scalar fields that are pointers in Kubernetes' Go types, where an explicit zero differs
//! from unset (`replicas: 0` is not "default to 1"). Go marshals a pointer only when it is
//! set and every other field always, and the wire does not say which is which, so the
//! decoder keeps a zero scalar only for the fields listed here. Listed for the kinds the
//! embedded cluster serves (and what they embed); a pointer field missing from the list
//! loses an explicit zero sent in protobuf, which then reads as unset.

/// `(message, field)` pairs, by the message's short name.
const POINTERS: &[(&str, &[&str])] = &[
    ("ObjectMeta", &["deletionGracePeriodSeconds"]),
    ("OwnerReference", &["controller", "blockOwnerDeletion"]),
    (
        "DeleteOptions",
        &[
            "gracePeriodSeconds",
            "orphanDependents",
            "ignoreStoreReadErrorWithClusterBreakingPotential",
        ],
    ),
    ("Preconditions", &["uid", "resourceVersion"]),
    (
        "PodSpec",
        &[
            "terminationGracePeriodSeconds",
            "activeDeadlineSeconds",
            "automountServiceAccountToken",
            "shareProcessNamespace",
            "priority",
            "enableServiceLinks",
            "setHostnameAsFQDN",
            "hostUsers",
        ],
    ),
    (
        "SecurityContext",
        &[
            "privileged",
            "runAsUser",
            "runAsGroup",
            "runAsNonRoot",
            "readOnlyRootFilesystem",
            "allowPrivilegeEscalation",
        ],
    ),
    (
        "PodSecurityContext",
        &["runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup"],
    ),
    ("Probe", &["terminationGracePeriodSeconds"]),
    ("Toleration", &["tolerationSeconds"]),
    ("SecretVolumeSource", &["defaultMode", "optional"]),
    ("ConfigMapVolumeSource", &["defaultMode", "optional"]),
    ("ProjectedVolumeSource", &["defaultMode"]),
    ("DownwardAPIVolumeSource", &["defaultMode"]),
    ("DownwardAPIVolumeFile", &["mode"]),
    ("KeyToPath", &["mode"]),
    ("SecretProjection", &["optional"]),
    ("ConfigMapProjection", &["optional"]),
    ("ServiceAccountTokenProjection", &["expirationSeconds"]),
    ("ConfigMapKeySelector", &["optional"]),
    ("SecretKeySelector", &["optional"]),
    ("ConfigMapEnvSource", &["optional"]),
    ("SecretEnvSource", &["optional"]),
    ("CSIVolumeSource", &["readOnly"]),
    ("ClientIPConfig", &["timeoutSeconds"]),
    ("ServiceSpec", &["allocateLoadBalancerNodePorts"]),
    ("ServiceAccount", &["automountServiceAccountToken"]),
    ("ConfigMap", &["immutable"]),
    ("Secret", &["immutable"]),
    (
        "DeploymentSpec",
        &[
            "replicas",
            "revisionHistoryLimit",
            "progressDeadlineSeconds",
        ],
    ),
    ("ReplicaSetSpec", &["replicas"]),
    ("StatefulSetSpec", &["replicas", "revisionHistoryLimit"]),
    ("RollingUpdateStatefulSetStrategy", &["partition"]),
    ("DaemonSetSpec", &["revisionHistoryLimit"]),
    ("DeploymentStatus", &["collisionCount"]),
    ("StatefulSetStatus", &["collisionCount"]),
    ("DaemonSetStatus", &["collisionCount"]),
    ("LeaseSpec", &["leaseDurationSeconds", "leaseTransitions"]),
    ("CustomResourceDefinitionSpec", &["preserveUnknownFields"]),
    (
        "JSONSchemaProps",
        &[
            "maximum",
            "minimum",
            "maxLength",
            "minLength",
            "maxItems",
            "minItems",
            "maxProperties",
            "minProperties",
            "multipleOf",
            "xKubernetesPreserveUnknownFields",
        ],
    ),
];

/// Whether a zero value of this field is an explicit choice to keep.
pub(super) fn keeps_zero(message: &str, field: &str) -> bool {
    POINTERS
        .iter()
        .any(|(m, fields)| *m == message && fields.contains(&field))
}
