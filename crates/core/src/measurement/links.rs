//! Node-to-node figures aggregated to site-to-site links, and when to publish them.
//!
//! Per remote site, over the fresh peers of that site (a stale peer is left out, never read
//! as zero latency; a site with no fresh peer gets no link, so the spec's link applies):
//! - latency: each peer's p90 round trip halved (or, when clocks are declared
//!   synchronized, its measured forward one-way delay), then the median over the peers.
//!   p90, not the mean or p50: a latency rule is a promise, and a degraded tail (a queue
//!   filling, a flapping path) shows in the p90 long before it moves the median; p99 and
//!   max are left out because one scheduling hiccup of a busy host would set them;
//! - jitter: RFC 3550 interarrival jitter, median over the peers (the figure RTP-based
//!   applications quote);
//! - loss: lost over settled probes, pooled over the peers;
//! - bandwidth: the median of the peers' latest train estimates, absent when none ran.
//!
//! The median over peers, not the worst: one sick node should not make its whole site's
//! link look degraded (its own metrics show it, labelled with its name).

use std::collections::BTreeMap;
use std::time::Duration;

use edgeplane_api::MeasuredLink;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::values::Value;

/// What an agent measured towards one peer, over its window.
#[derive(Clone, Debug, PartialEq)]
pub struct PairFigures {
    pub peer: String,
    pub peer_site: String,
    /// Percentiles of the round trips (reflector processing removed), nanoseconds; `None`
    /// before any answer. p90 feeds the published latency; p50 and p99 are for metrics.
    pub rtt_p50_ns: Option<f64>,
    pub rtt_p90_ns: Option<f64>,
    pub rtt_p99_ns: Option<f64>,
    /// The measured forward one-way delay, p90 over the window (as the round trip's p90
    /// feeds the latency otherwise), only when clocks are declared synchronized.
    pub forward_ns: Option<f64>,
    /// RFC 3550 interarrival jitter, nanoseconds (published).
    pub jitter_ns: Option<f64>,
    /// Mean absolute IPDV (RFC 3393), nanoseconds (metrics only).
    pub ipdv_ns: Option<f64>,
    /// Probes answered or given up on, and answered.
    pub settled: u64,
    pub received: u64,
    /// The latest bandwidth estimate, bits per second.
    pub bandwidth_bps: Option<f64>,
    /// No answer for the agent's stale timeout (or never one): left out.
    pub stale: bool,
}

/// A site-to-site link as measured, before it is written as text.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkFigures {
    pub latency_ns: f64,
    /// The latency is a measured one-way delay (clocks synchronized), for this direction
    /// only; otherwise half the round trip, valid both ways.
    pub one_way: bool,
    pub jitter_ns: Option<f64>,
    pub loss: Option<f64>,
    pub bandwidth_bps: Option<f64>,
    /// Fresh peers the figures come from.
    pub peers: usize,
}

/// The upper median (nearest rank 50) of non-empty values.
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// The links from `own_site` to every remote site with at least one fresh, answered peer,
/// by remote site. Peers of `own_site` itself are left out (links join different sites).
pub fn site_links(own_site: &str, pairs: &[PairFigures]) -> BTreeMap<String, LinkFigures> {
    let mut by_site: BTreeMap<&str, Vec<&PairFigures>> = BTreeMap::new();
    for pair in pairs {
        if pair.peer_site != own_site && !pair.stale && pair.rtt_p90_ns.is_some() {
            by_site.entry(&pair.peer_site).or_default().push(pair);
        }
    }
    by_site
        .into_iter()
        .filter_map(|(site, pairs)| {
            let one_way = pairs.iter().all(|p| p.forward_ns.is_some());
            let latency_ns = median(
                pairs
                    .iter()
                    .filter_map(|p| {
                        if one_way {
                            p.forward_ns
                        } else {
                            p.rtt_p90_ns.map(|r| r / 2.0)
                        }
                    })
                    .collect(),
            )?;
            let settled: u64 = pairs.iter().map(|p| p.settled).sum();
            let received: u64 = pairs.iter().map(|p| p.received).sum();
            let loss =
                (settled > 0).then(|| settled.saturating_sub(received) as f64 / settled as f64);
            Some((
                site.to_string(),
                LinkFigures {
                    latency_ns: latency_ns.max(0.0),
                    one_way,
                    jitter_ns: median(pairs.iter().filter_map(|p| p.jitter_ns).collect()),
                    loss,
                    bandwidth_bps: median(pairs.iter().filter_map(|p| p.bandwidth_bps).collect()),
                    peers: pairs.len(),
                },
            ))
        })
        .collect()
}

/// The entries of `status.measured` for the links from `own_site`, stamped `time`, sorted
/// by destination. Durations to the nanosecond, bandwidth to the bit per second, loss to
/// 4 significant digits.
pub fn measured_links(
    own_site: &str,
    links: &BTreeMap<String, LinkFigures>,
    time: Timestamp,
) -> Vec<MeasuredLink> {
    links
        .iter()
        .map(|(to, f)| MeasuredLink {
            from: own_site.to_string(),
            to: to.clone(),
            one_way: f.one_way,
            latency: Some(Value::duration_ns(f.latency_ns.round()).to_string()),
            jitter: f
                .jitter_ns
                .map(|j| Value::duration_ns(j.round()).to_string()),
            bandwidth: f
                .bandwidth_bps
                .map(|b| Value::bits_per_second(b.round()).to_string()),
            loss: f
                .loss
                .map(|l| Value::ratio(round_significant(l, 4)).to_string()),
            time: Time(time),
        })
        .collect()
}

fn round_significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// When an agent writes its site's links: at most every `refresh` (which also keeps them
/// younger than the topology's `measurementMaxAge`), sooner on a significant change, but
/// never twice within `min_gap`.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishPolicy {
    pub refresh: Duration,
    pub min_gap: Duration,
    /// A latency change is significant above both (relative to the published value, and
    /// absolute).
    pub latency_relative: f64,
    pub latency_absolute_ns: f64,
    /// Jitter: likewise.
    pub jitter_relative: f64,
    pub jitter_absolute_ns: f64,
    /// Loss: an absolute change of the ratio (0.01 is one percentage point).
    pub loss_absolute: f64,
    /// Bandwidth: relative.
    pub bandwidth_relative: f64,
}

impl Default for PublishPolicy {
    /// 30 s refresh, 5 s minimum gap; significant: latency +-25 % and 1 ms, jitter +-50 %
    /// and 1 ms, loss 1 point, bandwidth +-25 %.
    fn default() -> PublishPolicy {
        PublishPolicy {
            refresh: Duration::from_secs(30),
            min_gap: Duration::from_secs(5),
            latency_relative: 0.25,
            latency_absolute_ns: 1e6,
            jitter_relative: 0.5,
            jitter_absolute_ns: 1e6,
            loss_absolute: 0.01,
            bandwidth_relative: 0.25,
        }
    }
}

/// Why a publication is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Publish {
    /// Nothing published yet.
    First,
    /// `refresh` passed since the last one.
    Refresh,
    /// A significant change, named (`edge-2: latency 4ms -> 30ms`).
    Changed(String),
}

/// What was last published and when.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    pub links: BTreeMap<String, LinkFigures>,
    pub at: Timestamp,
}

fn changed(old: f64, new: f64, relative: f64, absolute: f64) -> bool {
    let d = (new - old).abs();
    d >= absolute && d >= relative * old.abs()
}

/// The first significant difference between two sets of links, named.
pub fn significant_change(
    policy: &PublishPolicy,
    old: &BTreeMap<String, LinkFigures>,
    new: &BTreeMap<String, LinkFigures>,
) -> Option<String> {
    for site in old.keys() {
        if !new.contains_key(site) {
            return Some(format!("{site}: no fresh measurement any more"));
        }
    }
    for (site, n) in new {
        let Some(o) = old.get(site) else {
            return Some(format!("{site}: newly measured"));
        };
        let duration = |ns: f64| Value::duration_ns(ns.round()).to_string();
        if changed(
            o.latency_ns,
            n.latency_ns,
            policy.latency_relative,
            policy.latency_absolute_ns,
        ) || o.one_way != n.one_way
        {
            return Some(format!(
                "{site}: latency {} -> {}",
                duration(o.latency_ns),
                duration(n.latency_ns)
            ));
        }
        let opt = |a: Option<f64>, b: Option<f64>, f: &dyn Fn(f64, f64) -> bool| match (a, b) {
            (Some(a), Some(b)) => f(a, b),
            (None, None) => false,
            _ => true,
        };
        if opt(o.jitter_ns, n.jitter_ns, &|a, b| {
            changed(a, b, policy.jitter_relative, policy.jitter_absolute_ns)
        }) {
            return Some(format!("{site}: jitter changed"));
        }
        if opt(o.loss, n.loss, &|a, b| {
            (a - b).abs() >= policy.loss_absolute
        }) {
            return Some(format!("{site}: loss changed"));
        }
        if opt(o.bandwidth_bps, n.bandwidth_bps, &|a, b| {
            changed(a, b, policy.bandwidth_relative, 0.0)
        }) {
            return Some(format!("{site}: bandwidth changed"));
        }
    }
    None
}

/// Whether to publish `current` at `now`, given the last publication: never within
/// `min_gap` of it; after `refresh`; between the two, only on a significant change.
pub fn publish_due(
    policy: &PublishPolicy,
    last: Option<&Published>,
    current: &BTreeMap<String, LinkFigures>,
    now: Timestamp,
) -> Option<Publish> {
    let Some(last) = last else {
        return Some(Publish::First);
    };
    let since = now.duration_since(last.at);
    if since < jiff::SignedDuration::try_from(policy.min_gap).unwrap_or_default() {
        return None;
    }
    if let Some(what) = significant_change(policy, &last.links, current) {
        return Some(Publish::Changed(what));
    }
    if since >= jiff::SignedDuration::try_from(policy.refresh).unwrap_or_default() {
        return Some(Publish::Refresh);
    }
    None
}
