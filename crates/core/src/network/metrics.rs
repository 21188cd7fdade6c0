//! Metrics of links and paths, their defaults, and how they print as rule values.

use crate::values::Value;

/// One of the metrics a path has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PathMetric {
    Latency,
    Jitter,
    Bandwidth,
    PacketLoss,
}

impl PathMetric {
    /// The metric a built-in pairwise rule reads.
    pub fn for_rule(rule: &str) -> Option<PathMetric> {
        use crate::rules::builtin;
        match rule {
            builtin::LATENCY => Some(PathMetric::Latency),
            builtin::JITTER => Some(PathMetric::Jitter),
            builtin::BANDWIDTH => Some(PathMetric::Bandwidth),
            builtin::PACKET_LOSS => Some(PathMetric::PacketLoss),
            _ => None,
        }
    }
}

/// Metrics of a path. Latency and jitter in nanoseconds, bandwidth in bits per second
/// (`f32::INFINITY` when no link on the path states one), loss as a fraction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PathMetrics {
    pub latency_ns: f32,
    pub jitter_ns: f32,
    pub bandwidth_bps: f32,
    pub loss: f32,
}

impl PathMetrics {
    /// Marks an unreachable pair in the matrix.
    pub(super) const UNREACHABLE: PathMetrics = PathMetrics {
        latency_ns: f32::INFINITY,
        jitter_ns: f32::INFINITY,
        bandwidth_bps: 0.0,
        loss: 1.0,
    };

    /// The metric as a value in the rule's unit, rounded to the precision stored (7
    /// significant digits, so that `1.5ms` prints as `1.5ms`, not as the nearest `f32`);
    /// loss to 4 significant digits (`1 - (1 - 0.005%)(1 - 0.001%)` is `0.006%`, not
    /// `0.00599995%`), far finer than any loss measurement.
    pub fn value(&self, metric: PathMetric) -> Value {
        match metric {
            PathMetric::Latency => Value::duration_ns(significant(self.latency_ns, 7)),
            PathMetric::Jitter => Value::duration_ns(significant(self.jitter_ns, 7)),
            PathMetric::Bandwidth => Value::bits_per_second(significant(self.bandwidth_bps, 7)),
            PathMetric::PacketLoss => Value::ratio(significant(self.loss, 4)),
        }
    }

    /// `latency 3ms, jitter 400us, bandwidth 1Gbps, loss 0.01%`.
    pub fn describe(&self) -> String {
        let bandwidth = if self.bandwidth_bps.is_infinite() {
            "unlimited".to_string()
        } else {
            self.value(PathMetric::Bandwidth).to_string()
        };
        format!(
            "latency {}, jitter {}, bandwidth {bandwidth}, loss {}",
            self.value(PathMetric::Latency),
            self.value(PathMetric::Jitter),
            self.value(PathMetric::PacketLoss)
        )
    }
}

/// Rounds an `f32` to `digits` significant digits as an `f64`: with 7, the decimal it most
/// likely came from.
fn significant(x: f32, digits: i32) -> f64 {
    let x = f64::from(x);
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = digits - 1 - x.abs().log10().floor() as i32;
    if !(-300..=300).contains(&digits) {
        return x;
    }
    let factor = 10f64.powi(digits);
    let rounded = (x * factor).round() / factor;
    if rounded.is_finite() { rounded } else { x }
}

/// Metrics of one link (one directed edge of the graph), in full precision: latency in
/// whole nanoseconds, jitter in nanoseconds, bandwidth in bits per second (`INFINITY` when
/// unlimited), loss as a fraction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkMetrics {
    pub latency_ns: u64,
    pub jitter_ns: f64,
    pub bandwidth_bps: f64,
    pub loss: f64,
}

impl LinkMetrics {
    /// The metrics as the graph stores them.
    pub fn compact(&self) -> PathMetrics {
        PathMetrics {
            latency_ns: self.latency_ns as f32,
            jitter_ns: self.jitter_ns as f32,
            bandwidth_bps: self.bandwidth_bps as f32,
            loss: self.loss as f32,
        }
    }
}

/// Metrics that a spec entry or a measurement gives; `None` where it gives none.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct PartialMetrics {
    pub(super) latency_ns: Option<f64>,
    pub(super) jitter_ns: Option<f64>,
    pub(super) bandwidth_bps: Option<f64>,
    pub(super) loss: Option<f64>,
}

impl PartialMetrics {
    pub(super) fn or(self, defaults: LinkMetrics) -> LinkMetrics {
        LinkMetrics {
            latency_ns: self
                .latency_ns
                .map(|l| l.round() as u64)
                .unwrap_or(defaults.latency_ns),
            jitter_ns: self.jitter_ns.unwrap_or(defaults.jitter_ns),
            bandwidth_bps: self.bandwidth_bps.unwrap_or(defaults.bandwidth_bps),
            loss: self.loss.unwrap_or(defaults.loss),
        }
    }
}

/// Default metrics between two pods of one node.
pub const DEFAULT_SAME_NODE: PathMetrics = PathMetrics {
    latency_ns: 20e3,
    jitter_ns: 2e3,
    bandwidth_bps: 100e9,
    loss: 0.0,
};

/// Default metrics between two nodes of one site.
pub const DEFAULT_INTRA_SITE: PathMetrics = PathMetrics {
    latency_ns: 200e3,
    jitter_ns: 20e3,
    bandwidth_bps: 10e9,
    loss: 0.0,
};

pub(super) fn edge_from(p: PathMetrics) -> LinkMetrics {
    LinkMetrics {
        latency_ns: p.latency_ns as u64,
        jitter_ns: f64::from(p.jitter_ns),
        bandwidth_bps: f64::from(p.bandwidth_bps),
        loss: f64::from(p.loss),
    }
}

/// Defaults of a link's omitted metrics (latency is required on links).
pub(super) const LINK_DEFAULTS: LinkMetrics = LinkMetrics {
    latency_ns: 0,
    jitter_ns: 0.0,
    bandwidth_bps: f64::INFINITY,
    loss: 0.0,
};
