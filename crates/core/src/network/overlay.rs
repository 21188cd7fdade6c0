//! What the status lays over the spec's links: fresh measurements (`status.measured`) and
//! the paths the network controller activated (`status.activatedPaths`).

use std::collections::{BTreeMap, BTreeSet};

use edgeplane_api::NetworkTopology;
use jiff::Timestamp;

use super::location::SiteId;
use super::metrics::{LINK_DEFAULTS, LinkMetrics, PathMetric};
use super::spec::{ParsedSpec, TopologyError, parse_partial};

/// Whether a parallel edge `candidate` carries the traffic instead of `current`: the one
/// with the lower latency does; on a tie the activated (or what-if) one does, since it was
/// set up for that traffic.
pub(super) fn takes_over(candidate: &LinkMetrics, current: &LinkMetrics) -> bool {
    candidate.latency_ns <= current.latency_ns
}

/// Which metrics of a directed edge come from a measurement, and when it was taken: what
/// a rule's reason names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeasuredEdge {
    pub time: Timestamp,
    pub latency: bool,
    pub jitter: bool,
    pub bandwidth: bool,
    pub loss: bool,
}

impl MeasuredEdge {
    pub fn carries(&self, metric: PathMetric) -> bool {
        match metric {
            PathMetric::Latency => self.latency,
            PathMetric::Jitter => self.jitter,
            PathMetric::Bandwidth => self.bandwidth,
            PathMetric::PacketLoss => self.loss,
        }
    }
}

/// Where the figure of one hop of a path comes from, for a topology that uses measurement
/// (has any `status.measured` entry): what a rule's reason names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HopSource {
    /// A fresh measurement taken at this time.
    Measured(Timestamp),
    /// The spec's figure: the newest measurement of the hop that carried the metric
    /// became stale at this time (its time plus `spec.measurementMaxAge`).
    Stale(Timestamp),
    /// The spec's figure: no measurement of the hop carries the metric.
    NotMeasured,
}

/// Applies the fresh measurements of a topology's status to the directed edges, noting in
/// `measured` which metrics of which edge they set, and in `stale` the newest measurement
/// of each direction that is too old to use (its `time` is when it became stale). Returns
/// how many were used and warnings about those that were not usable.
pub(super) fn apply_measurements(
    topology: &NetworkTopology,
    parsed: &ParsedSpec,
    lookup: &dyn Fn(&str) -> Option<SiteId>,
    now: Timestamp,
    directed: &mut BTreeMap<(u32, u32), LinkMetrics>,
    measured: &mut BTreeMap<(u32, u32), MeasuredEdge>,
    stale: &mut BTreeMap<(u32, u32), MeasuredEdge>,
) -> Result<(usize, Vec<String>), TopologyError> {
    let Some(status) = &topology.status else {
        return Ok((0, Vec::new()));
    };
    // The newest fresh measurement of each direction wins.
    let mut newest: BTreeMap<(u32, u32), (Timestamp, usize)> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (i, m) in status.measured.iter().enumerate() {
        let field = format!("status.measured[{i}]");
        let mut errors = Vec::new();
        parse_partial(
            &field,
            m.latency.as_deref(),
            m.jitter.as_deref(),
            m.bandwidth.as_deref(),
            m.loss.as_deref(),
            &mut errors,
        );
        if let Some(first) = errors.into_iter().next() {
            return Err(first);
        }
        let age_ns = now.duration_since(m.time.0).as_nanos() as f64;
        if age_ns > parsed.max_age_ns {
            note_stale(m, parsed, lookup, stale);
            continue;
        }
        let (Some(a), Some(b)) = (lookup(&m.from), lookup(&m.to)) else {
            warnings.push(format!(
                "{field}: ignored: it names an unknown site ({:?} -> {:?})",
                m.from, m.to
            ));
            continue;
        };
        if a == b {
            warnings.push(format!("{field}: ignored: both ends are {:?}", m.from));
            continue;
        }
        let mut dirs = vec![(a.0, b.0)];
        if !m.one_way {
            dirs.push((b.0, a.0));
        }
        for dir in dirs {
            let newer = newest.get(&dir).is_none_or(|(t, _)| m.time.0 >= *t);
            if newer {
                newest.insert(dir, (m.time.0, i));
            }
        }
    }
    let mut used = BTreeSet::new();
    for (dir, (_, i)) in newest {
        let m = &status.measured[i];
        let partial = parse_partial(
            "",
            m.latency.as_deref(),
            m.jitter.as_deref(),
            m.bandwidth.as_deref(),
            m.loss.as_deref(),
            &mut Vec::new(),
        );
        match directed.get_mut(&dir) {
            Some(edge) => *edge = partial.or(*edge),
            None if partial.latency_ns.is_some() => {
                directed.insert(dir, partial.or(LINK_DEFAULTS));
            }
            None => {
                warnings.push(format!(
                    "status.measured[{i}]: ignored: it carries no latency and the spec has no link from {:?} to {:?}",
                    m.from, m.to
                ));
                continue;
            }
        }
        measured.insert(
            dir,
            MeasuredEdge {
                time: m.time.0,
                latency: partial.latency_ns.is_some(),
                jitter: partial.jitter_ns.is_some(),
                bandwidth: partial.bandwidth_bps.is_some(),
                loss: partial.loss.is_some(),
            },
        );
        used.insert(i);
    }
    Ok((used.len(), warnings))
}

/// Notes a stale measurement in `stale` when it is the newest of its direction (one that
/// names an unknown site or the same site twice is ignored, as a fresh one would be).
fn note_stale(
    m: &edgeplane_api::MeasuredLink,
    parsed: &ParsedSpec,
    lookup: &dyn Fn(&str) -> Option<SiteId>,
    stale: &mut BTreeMap<(u32, u32), MeasuredEdge>,
) {
    let (Some(a), Some(b)) = (lookup(&m.from), lookup(&m.to)) else {
        return;
    };
    if a == b {
        return;
    }
    let partial = parse_partial(
        "",
        m.latency.as_deref(),
        m.jitter.as_deref(),
        m.bandwidth.as_deref(),
        m.loss.as_deref(),
        &mut Vec::new(),
    );
    let max_age = jiff::SignedDuration::from_nanos(parsed.max_age_ns as i64);
    let edge = MeasuredEdge {
        time: m.time.0.checked_add(max_age).unwrap_or(m.time.0),
        latency: partial.latency_ns.is_some(),
        jitter: partial.jitter_ns.is_some(),
        bandwidth: partial.bandwidth_bps.is_some(),
        loss: partial.loss.is_some(),
    };
    let mut dirs = vec![(a.0, b.0)];
    if !m.one_way {
        dirs.push((b.0, a.0));
    }
    for dir in dirs {
        if stale.get(&dir).is_none_or(|e| edge.time >= e.time) {
            stale.insert(dir, edge);
        }
    }
}

/// Adds the paths the network controller activated (`status.activatedPaths`) as links
/// beside the others: per direction, the lower latency carries the traffic, an activated
/// path on a tie (see [`takes_over`]). Activated paths are written by a controller, so one
/// that cannot be used (unknown site, bad value) is skipped with a warning rather than
/// failing the topology. Returns how many were used.
pub(super) fn apply_activated(
    topology: &NetworkTopology,
    lookup: &dyn Fn(&str) -> Option<SiteId>,
    directed: &mut BTreeMap<(u32, u32), LinkMetrics>,
    warnings: &mut Vec<String>,
) -> usize {
    let Some(status) = &topology.status else {
        return 0;
    };
    let mut used = 0;
    for (i, path) in status.activated_paths.iter().enumerate() {
        let field = format!("status.activatedPaths[{i}]");
        let metrics = match LinkMetrics::parse(
            &field,
            &path.latency,
            path.jitter.as_deref(),
            path.bandwidth.as_deref(),
            path.loss.as_deref(),
        ) {
            Ok(m) => m,
            Err(errors) => {
                for e in errors {
                    warnings.push(format!("{e} (the activated path is ignored)"));
                }
                continue;
            }
        };
        let (Some(a), Some(b)) = (lookup(&path.from), lookup(&path.to)) else {
            warnings.push(format!(
                "{field}: ignored: it names an unknown site ({:?} -> {:?})",
                path.from, path.to
            ));
            continue;
        };
        if a == b {
            warnings.push(format!("{field}: ignored: both ends are {:?}", path.from));
            continue;
        }
        let mut dirs = vec![(a.0, b.0)];
        if !path.one_way {
            dirs.push((b.0, a.0));
        }
        for dir in dirs {
            let replace = directed
                .get(&dir)
                .is_none_or(|current| takes_over(&metrics, current));
            if replace {
                directed.insert(dir, metrics);
            }
        }
        used += 1;
    }
    used
}
