//! Conversions between the protocol's messages and edgeplane's types.

use edgeplane_api::{Compliance, ConstraintPolicyRule, TargetKind, TargetRef};

use crate::proto;
use crate::proto::evaluate_response::ComplianceState;

pub fn target_to_proto(target: &TargetRef) -> proto::Target {
    proto::Target {
        cluster: target.cluster.clone().unwrap_or_default(),
        namespace: target.namespace.clone().unwrap_or_default(),
        api_version: target.api_version.clone(),
        kind: target.kind.as_str().to_string(),
        name: target.name.clone(),
    }
}

/// A target on the wire that edgeplane cannot read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error(
        "unknown target kind {0:?} (expected Pod, Site, NetworkFunction, ServiceChain or Cluster)"
    )]
    UnknownKind(String),
    #[error("a {0} target has no name")]
    NoName(TargetKind),
}

/// A target from the wire; the kind must be one edgeplane knows. An empty apiVersion takes
/// the kind's default.
pub fn target_from_proto(target: &proto::Target) -> Result<TargetRef, TargetError> {
    let kind = match target.kind.as_str() {
        "Pod" => TargetKind::Pod,
        "Site" => TargetKind::Site,
        "NetworkFunction" => TargetKind::NetworkFunction,
        "Cluster" => TargetKind::Cluster,
        "ServiceChain" => TargetKind::ServiceChain,
        other => return Err(TargetError::UnknownKind(other.to_string())),
    };
    if target.name.is_empty() {
        return Err(TargetError::NoName(kind));
    }
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Ok(TargetRef {
        cluster: non_empty(&target.cluster),
        namespace: non_empty(&target.namespace)
            .or_else(|| kind.is_namespaced().then(|| "default".to_string())),
        api_version: non_empty(&target.api_version)
            .unwrap_or_else(|| kind.default_api_version().to_string()),
        kind,
        name: target.name.clone(),
    })
}

pub fn rule_to_proto(rule: &ConstraintPolicyRule) -> proto::PolicyRule {
    proto::PolicyRule {
        name: rule.name.clone(),
        request: rule.request.clone(),
        limit: rule.limit.clone().unwrap_or_default(),
    }
}

/// A rule from the wire: an empty limit means none.
pub fn rule_from_proto(rule: &proto::PolicyRule) -> ConstraintPolicyRule {
    ConstraintPolicyRule {
        name: rule.name.clone(),
        request: rule.request.clone(),
        limit: (!rule.limit.is_empty()).then(|| rule.limit.clone()),
    }
}

pub fn compliance_to_proto(compliance: Compliance) -> ComplianceState {
    match compliance {
        Compliance::Pending => ComplianceState::Pending,
        Compliance::Compliant => ComplianceState::Compliant,
        Compliance::Limit => ComplianceState::Limit,
        Compliance::Violation => ComplianceState::Violation,
        Compliance::Error => ComplianceState::Error,
    }
}

/// `None` for a value the enum does not have.
pub fn compliance_from_proto(value: i32) -> Option<Compliance> {
    Some(match ComplianceState::try_from(value).ok()? {
        ComplianceState::Pending => Compliance::Pending,
        ComplianceState::Compliant => Compliance::Compliant,
        ComplianceState::Limit => Compliance::Limit,
        ComplianceState::Violation => Compliance::Violation,
        ComplianceState::Error => Compliance::Error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip_and_default() {
        let pod = TargetRef {
            cluster: None,
            namespace: Some("ar".into()),
            api_version: "v1".into(),
            kind: TargetKind::Pod,
            name: "r0".into(),
        };
        assert_eq!(target_from_proto(&target_to_proto(&pod)), Ok(pod));
        let bare = proto::Target {
            kind: "Site".into(),
            name: "stadium".into(),
            ..Default::default()
        };
        let site = target_from_proto(&bare);
        assert_eq!(
            site.as_ref()
                .map(|s| (s.namespace.clone(), s.api_version.as_str())),
            Ok((None, "network.edgeplane.io/v1alpha1"))
        );
        let pod = proto::Target {
            kind: "Pod".into(),
            name: "p".into(),
            ..Default::default()
        };
        assert_eq!(
            target_from_proto(&pod).map(|p| p.namespace),
            Ok(Some("default".into()))
        );
        assert!(
            target_from_proto(&proto::Target {
                kind: "Deployment".into(),
                name: "x".into(),
                ..Default::default()
            })
            .is_err_and(|e| e
                .to_string()
                .starts_with("unknown target kind \"Deployment\""))
        );
    }

    #[test]
    fn compliance_values_match_turnbuckle() {
        for (c, n) in Compliance::ALL.iter().zip(0..) {
            assert_eq!(compliance_to_proto(*c) as i32, n);
            assert_eq!(compliance_from_proto(n), Some(*c));
        }
        assert_eq!(compliance_from_proto(5), None);
        assert_eq!(compliance_from_proto(-1), None);
    }
}
