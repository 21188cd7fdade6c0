//! Parsing and checking a topology's spec (and the values of its measurements): every
//! problem is a [`TopologyError`] naming the field at fault.

use std::collections::BTreeMap;

use edgeplane_api::network::DEFAULT_MEASUREMENT_MAX_AGE;
use edgeplane_api::{NetworkTopology, PathSpec};

use super::metrics::{
    DEFAULT_INTRA_SITE, DEFAULT_SAME_NODE, LINK_DEFAULTS, LinkMetrics, PartialMetrics, PathMetrics,
    edge_from,
};
use crate::values::{Unit, Value, parse_duration_field};

/// A topology that cannot be used, with the field at fault (`spec.links[3].latency`), or
/// an empty field for problems of the node list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct TopologyError {
    pub field: String,
    pub message: String,
}

impl TopologyError {
    pub(super) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        TopologyError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl LinkMetrics {
    /// Parses the values of a link as the topology's links are parsed: `latency` is
    /// required; omitted `jitter` is 0, `bandwidth` unlimited, `loss` 0. Every problem is
    /// reported, located under `field` (`spec.entries[2].latency: "fast" is not a
    /// duration ...`).
    pub fn parse(
        field: &str,
        latency: &str,
        jitter: Option<&str>,
        bandwidth: Option<&str>,
        loss: Option<&str>,
    ) -> Result<LinkMetrics, Vec<TopologyError>> {
        let mut errors = Vec::new();
        let partial = parse_partial(field, Some(latency), jitter, bandwidth, loss, &mut errors);
        if errors.is_empty() {
            Ok(partial.or(LINK_DEFAULTS))
        } else {
            Err(errors)
        }
    }
}

/// The spec of a topology, parsed.
pub(super) struct ParsedSpec {
    pub(super) site_label: String,
    pub(super) same_node: PathMetrics,
    pub(super) intra_site: PathMetrics,
    /// `(name, labels, transit)`.
    pub(super) sites: Vec<(String, BTreeMap<String, String>, bool)>,
    /// `(from, to, metrics, one_way, index in spec.links)`.
    pub(super) links: Vec<(String, String, LinkMetrics, bool, usize)>,
    pub(super) max_age_ns: f64,
}

/// Checks the parts of a topology that do not depend on the nodes: values parse and are in
/// range, names are valid, sites are declared once, links are not duplicated or loops.
/// Every problem is reported, in field order. [`NetworkGraph::build`] checks the same and
/// also that link ends are known sites.
///
/// [`NetworkGraph::build`]: super::NetworkGraph::build
pub fn check_topology(topology: &NetworkTopology) -> Vec<TopologyError> {
    let mut errors = Vec::new();
    parse_spec(topology, &mut errors);
    for (i, m) in topology
        .status
        .iter()
        .flat_map(|s| s.measured.iter())
        .enumerate()
    {
        let field = format!("status.measured[{i}]");
        parse_partial(
            &field,
            m.latency.as_deref(),
            m.jitter.as_deref(),
            m.bandwidth.as_deref(),
            m.loss.as_deref(),
            &mut errors,
        );
    }
    errors
}

fn parse_value(
    field: &str,
    text: &str,
    unit: Unit,
    errors: &mut Vec<TopologyError>,
) -> Option<f64> {
    match Value::parse(text, unit) {
        Ok(v) => v.magnitude(),
        Err(e) => {
            errors.push(TopologyError::new(field, e.to_string()));
            None
        }
    }
}

pub(super) fn parse_partial(
    field: &str,
    latency: Option<&str>,
    jitter: Option<&str>,
    bandwidth: Option<&str>,
    loss: Option<&str>,
    errors: &mut Vec<TopologyError>,
) -> PartialMetrics {
    let mut one = |name: &str, text: Option<&str>, unit| {
        text.and_then(|t| parse_value(&format!("{field}.{name}"), t, unit, errors))
    };
    PartialMetrics {
        latency_ns: one("latency", latency, Unit::Duration),
        jitter_ns: one("jitter", jitter, Unit::Duration),
        bandwidth_bps: one("bandwidth", bandwidth, Unit::BitRate),
        loss: one("loss", loss, Unit::Ratio),
    }
}

fn parse_path_spec(
    field: &str,
    spec: Option<&PathSpec>,
    defaults: PathMetrics,
    errors: &mut Vec<TopologyError>,
) -> PathMetrics {
    let Some(spec) = spec else {
        return defaults;
    };
    let partial = parse_partial(
        field,
        spec.latency.as_deref(),
        spec.jitter.as_deref(),
        spec.bandwidth.as_deref(),
        spec.loss.as_deref(),
        errors,
    );
    partial.or(edge_from(defaults)).compact()
}

/// A site name must be usable as a label value: at most 63 characters, alphanumeric at
/// both ends, `-`, `_` and `.` inside.
pub fn is_site_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name
            .chars()
            .all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

pub(super) fn parse_spec(
    topology: &NetworkTopology,
    errors: &mut Vec<TopologyError>,
) -> ParsedSpec {
    let spec = &topology.spec;
    if spec.site_label.trim().is_empty() {
        errors.push(TopologyError::new("spec.siteLabel", "must not be empty"));
    }
    let same_node = parse_path_spec(
        "spec.sameNode",
        spec.same_node.as_ref(),
        DEFAULT_SAME_NODE,
        errors,
    );
    let intra_site = parse_path_spec(
        "spec.intraSite",
        spec.intra_site.as_ref(),
        DEFAULT_INTRA_SITE,
        errors,
    );
    let mut sites = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, site) in spec.sites.iter().enumerate() {
        let field = format!("spec.sites[{i}].name");
        if !is_site_name(&site.name) {
            errors.push(TopologyError::new(
                field,
                format!(
                    "{:?} is not a valid site name (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)",
                    site.name
                ),
            ));
            continue;
        }
        if let Some(first) = seen.insert(&site.name, i) {
            errors.push(TopologyError::new(
                field,
                format!(
                    "site {:?} is declared twice (also spec.sites[{first}])",
                    site.name
                ),
            ));
            continue;
        }
        sites.push((
            site.name.clone(),
            site.labels.clone(),
            site.transit.unwrap_or(true),
        ));
    }
    let mut links = Vec::new();
    let mut directions: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, link) in spec.links.iter().enumerate() {
        let field = format!("spec.links[{i}]");
        let mut ok = true;
        for (end, name) in [("from", &link.from), ("to", &link.to)] {
            if !is_site_name(name) {
                errors.push(TopologyError::new(
                    format!("{field}.{end}"),
                    format!("{name:?} is not a valid site name"),
                ));
                ok = false;
            }
        }
        if ok && link.from == link.to {
            errors.push(TopologyError::new(
                format!("{field}.to"),
                format!(
                    "a link joins two different sites (both ends are {:?})",
                    link.to
                ),
            ));
            ok = false;
        }
        let before = errors.len();
        let partial = parse_partial(
            &field,
            Some(&link.latency),
            link.jitter.as_deref(),
            link.bandwidth.as_deref(),
            link.loss.as_deref(),
            errors,
        );
        ok &= errors.len() == before;
        if !ok {
            continue;
        }
        let mut dirs = vec![(link.from.as_str(), link.to.as_str())];
        if !link.one_way {
            dirs.push((link.to.as_str(), link.from.as_str()));
        }
        let mut duplicate = false;
        for dir in dirs {
            if let Some(first) = directions.insert(dir, i) {
                errors.push(TopologyError::new(
                    field.clone(),
                    format!(
                        "duplicate link from {:?} to {:?} (also spec.links[{first}])",
                        dir.0, dir.1
                    ),
                ));
                duplicate = true;
                break;
            }
        }
        if !duplicate {
            links.push((
                link.from.clone(),
                link.to.clone(),
                partial.or(LINK_DEFAULTS),
                link.one_way,
                i,
            ));
        }
    }
    let max_age_text = spec
        .measurement_max_age
        .as_deref()
        .unwrap_or(DEFAULT_MEASUREMENT_MAX_AGE);
    let max_age_ns = match parse_duration_field(max_age_text) {
        Ok(d) => d.as_nanos() as f64,
        Err(e) => {
            errors.push(TopologyError::new("spec.measurementMaxAge", e.to_string()));
            0.0
        }
    };
    ParsedSpec {
        site_label: spec.site_label.clone(),
        same_node,
        intra_site,
        sites,
        links,
        max_age_ns,
    }
}
