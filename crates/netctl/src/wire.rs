//! Conversions between the protocol's messages and the Rust API. Reading a message checks
//! it: a missing endpoint, an empty id or a timestamp that does not parse is an
//! `InvalidArgument` naming the field, never a panic.

use edgeplane_api::Compliance;
use jiff::Timestamp;

use crate::controller::{
    AllocateRequest, Allocated, DiscoverRequest, Endpoint, ExpectedMetrics, MitigateOutcome,
    MitigateRequest, NetctlError, PathOffer, PolicyRule, ReleaseRequest, Released,
};
use crate::proto;

fn invalid(message: impl Into<String>) -> NetctlError {
    NetctlError::InvalidArgument(message.into())
}

pub fn rule_to_proto(rule: &PolicyRule) -> proto::PolicyRule {
    proto::PolicyRule {
        name: rule.name.clone(),
        request: rule.request.clone(),
        limit: rule.limit.clone().unwrap_or_default(),
    }
}

/// A rule from the wire: an empty limit means none. A rule needs a name and a request.
pub fn rule_from_proto(index: usize, rule: &proto::PolicyRule) -> Result<PolicyRule, NetctlError> {
    if rule.name.is_empty() {
        return Err(invalid(format!("rules[{index}].name: is required")));
    }
    if rule.request.is_empty() {
        return Err(invalid(format!(
            "rules[{index}] ({}).request: is required",
            rule.name
        )));
    }
    Ok(PolicyRule {
        name: rule.name.clone(),
        request: rule.request.clone(),
        limit: (!rule.limit.is_empty()).then(|| rule.limit.clone()),
    })
}

fn rules_from_proto(rules: &[proto::PolicyRule]) -> Result<Vec<PolicyRule>, NetctlError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| rule_from_proto(i, r))
        .collect()
}

pub fn endpoint_to_proto(endpoint: &Endpoint) -> proto::Endpoint {
    proto::Endpoint {
        kind: Some(match endpoint {
            Endpoint::Node(n) => proto::endpoint::Kind::Node(n.clone()),
            Endpoint::Site(s) => proto::endpoint::Kind::Site(s.clone()),
        }),
    }
}

pub fn endpoint_from_proto(
    field: &str,
    endpoint: Option<&proto::Endpoint>,
) -> Result<Endpoint, NetctlError> {
    match endpoint.and_then(|e| e.kind.as_ref()) {
        Some(proto::endpoint::Kind::Node(n)) if !n.is_empty() => Ok(Endpoint::Node(n.clone())),
        Some(proto::endpoint::Kind::Site(s)) if !s.is_empty() => Ok(Endpoint::Site(s.clone())),
        Some(_) => Err(invalid(format!("{field}: the name is empty"))),
        None => Err(invalid(format!("{field}: is required (a node or a site)"))),
    }
}

pub fn metrics_to_proto(m: &ExpectedMetrics) -> proto::PathMetrics {
    proto::PathMetrics {
        latency: m.latency.clone(),
        jitter: m.jitter.clone(),
        bandwidth: m.bandwidth.clone(),
        loss: m.loss.clone(),
    }
}

pub fn metrics_from_proto(m: &proto::PathMetrics) -> ExpectedMetrics {
    ExpectedMetrics {
        latency: m.latency.clone(),
        jitter: m.jitter.clone(),
        bandwidth: m.bandwidth.clone(),
        loss: m.loss.clone(),
    }
}

pub fn compliance_to_proto(c: Option<Compliance>) -> proto::Compliance {
    match c {
        Some(Compliance::Compliant) => proto::Compliance::Compliant,
        Some(Compliance::Limit) => proto::Compliance::Limit,
        Some(Compliance::Violation) => proto::Compliance::Violation,
        _ => proto::Compliance::Unspecified,
    }
}

/// `None` for UNSPECIFIED and for values this side does not know.
pub fn compliance_from_proto(value: i32) -> Option<Compliance> {
    match proto::Compliance::try_from(value).ok()? {
        proto::Compliance::Compliant => Some(Compliance::Compliant),
        proto::Compliance::Limit => Some(Compliance::Limit),
        proto::Compliance::Violation => Some(Compliance::Violation),
        proto::Compliance::Unspecified => None,
    }
}

pub fn discover_to_proto(r: &DiscoverRequest) -> proto::DiscoverRequest {
    proto::DiscoverRequest {
        rules: r.rules.iter().map(rule_to_proto).collect(),
        source: Some(endpoint_to_proto(&r.source)),
        candidate_nodes: r.candidate_nodes.clone(),
        binding: r.binding.clone(),
    }
}

pub fn discover_from_proto(r: &proto::DiscoverRequest) -> Result<DiscoverRequest, NetctlError> {
    Ok(DiscoverRequest {
        rules: rules_from_proto(&r.rules)?,
        source: endpoint_from_proto("source", r.source.as_ref())?,
        candidate_nodes: r.candidate_nodes.clone(),
        binding: r.binding.clone(),
    })
}

pub fn offer_to_proto(o: &PathOffer) -> proto::PathOffer {
    proto::PathOffer {
        id: o.id.clone(),
        node: o.node.clone(),
        path: o.path.clone(),
        expected: Some(metrics_to_proto(&o.expected)),
        cost: o.cost,
        expires: o.expires.to_string(),
        entry: o.entry.clone(),
        compliance: compliance_to_proto(Some(o.compliance)) as i32,
    }
}

pub fn offer_from_proto(index: usize, o: &proto::PathOffer) -> Result<PathOffer, NetctlError> {
    let expires: Timestamp = o.expires.parse().map_err(|e| {
        NetctlError::Failed(format!(
            "offers[{index}].expires: {:?} is not an RFC 3339 time: {e}",
            o.expires
        ))
    })?;
    Ok(PathOffer {
        id: o.id.clone(),
        node: o.node.clone(),
        path: o.path.clone(),
        expected: o
            .expected
            .as_ref()
            .map(metrics_from_proto)
            .unwrap_or_default(),
        cost: o.cost,
        expires,
        entry: o.entry.clone(),
        // An offer whose compliance is unknown is at best at Limit.
        compliance: compliance_from_proto(o.compliance).unwrap_or(Compliance::Limit),
    })
}

pub fn allocate_to_proto(r: &AllocateRequest) -> proto::AllocateRequest {
    proto::AllocateRequest {
        id: r.id.clone(),
        binding: r.binding.clone(),
        rules: r.rules.iter().map(rule_to_proto).collect(),
    }
}

pub fn allocate_from_proto(r: &proto::AllocateRequest) -> Result<AllocateRequest, NetctlError> {
    if r.id.is_empty() {
        return Err(invalid("id: is required"));
    }
    check_binding(&r.binding)?;
    Ok(AllocateRequest {
        id: r.id.clone(),
        binding: r.binding.clone(),
        rules: rules_from_proto(&r.rules)?,
    })
}

pub fn allocated_to_proto(a: &Allocated) -> proto::AllocateResponse {
    proto::AllocateResponse {
        id: a.id.clone(),
        entry: a.entry.clone(),
        created: a.created,
    }
}

pub fn allocated_from_proto(a: &proto::AllocateResponse) -> Allocated {
    Allocated {
        id: a.id.clone(),
        entry: a.entry.clone(),
        created: a.created,
    }
}

pub fn release_to_proto(r: &ReleaseRequest) -> proto::ReleaseRequest {
    proto::ReleaseRequest {
        id: r.id.clone(),
        binding: r.binding.clone().unwrap_or_default(),
        rules: r.rules.iter().map(rule_to_proto).collect(),
    }
}

pub fn release_from_proto(r: &proto::ReleaseRequest) -> Result<ReleaseRequest, NetctlError> {
    if r.id.is_empty() {
        return Err(invalid("id: is required"));
    }
    if !r.binding.is_empty() {
        check_binding(&r.binding)?;
    }
    Ok(ReleaseRequest {
        id: r.id.clone(),
        binding: (!r.binding.is_empty()).then(|| r.binding.clone()),
        rules: rules_from_proto(&r.rules)?,
    })
}

pub fn released_to_proto(r: &Released) -> proto::ReleaseResponse {
    proto::ReleaseResponse {
        released: r.released,
        deactivated: r.deactivated,
    }
}

pub fn released_from_proto(r: &proto::ReleaseResponse) -> Released {
    Released {
        released: r.released,
        deactivated: r.deactivated,
    }
}

pub fn mitigate_to_proto(r: &MitigateRequest) -> proto::MitigateRequest {
    proto::MitigateRequest {
        binding: r.binding.clone(),
        source: Some(endpoint_to_proto(&r.source)),
        destination: Some(endpoint_to_proto(&r.destination)),
        rules: r.rules.iter().map(rule_to_proto).collect(),
    }
}

pub fn mitigate_from_proto(r: &proto::MitigateRequest) -> Result<MitigateRequest, NetctlError> {
    check_binding(&r.binding)?;
    Ok(MitigateRequest {
        binding: r.binding.clone(),
        source: endpoint_from_proto("source", r.source.as_ref())?,
        destination: endpoint_from_proto("destination", r.destination.as_ref())?,
        rules: rules_from_proto(&r.rules)?,
    })
}

pub fn outcome_to_proto(o: &MitigateOutcome) -> proto::MitigateResponse {
    proto::MitigateResponse {
        accepted: o.accepted,
        expected: o.expected.as_ref().map(metrics_to_proto),
        reason: o.reason.clone(),
        allocation_id: o.allocation_id.clone().unwrap_or_default(),
        entry: o.entry.clone().unwrap_or_default(),
        path: o.path.clone(),
        compliance: compliance_to_proto(o.compliance) as i32,
    }
}

pub fn outcome_from_proto(o: &proto::MitigateResponse) -> MitigateOutcome {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    MitigateOutcome {
        accepted: o.accepted,
        expected: o.expected.as_ref().map(metrics_from_proto),
        reason: o.reason.clone(),
        allocation_id: non_empty(&o.allocation_id),
        entry: non_empty(&o.entry),
        path: o.path.clone(),
        compliance: compliance_from_proto(o.compliance),
    }
}

/// A binding is named `namespace/name`.
pub fn check_binding(binding: &str) -> Result<(), NetctlError> {
    match binding.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => Ok(()),
        _ => Err(invalid(format!(
            "binding: {binding:?} is not namespace/name"
        ))),
    }
}
