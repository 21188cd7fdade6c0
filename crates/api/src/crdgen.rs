//! CRD generation: the checked-in YAML under deploy/crds/ is this output.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::constraint::{ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyOffer};

/// Every CRD edgeplane defines, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        ConstraintPolicy::crd(),
        ConstraintPolicyOffer::crd(),
        ConstraintPolicyBinding::crd(),
    ]
}

/// One YAML document per CRD, `---` separated, as `edgeplane crds` prints them.
pub fn to_yaml(crds: &[CustomResourceDefinition]) -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(crd)?);
    }
    Ok(out)
}

/// The file name under deploy/crds/ of a CRD: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}
