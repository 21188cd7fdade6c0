//! Capacity: how much of each entry the allocations use, and whether one more fits.

use std::collections::BTreeMap;

use edgeplane_api::PathAllocation;

use super::catalogue::Entry;
use crate::values::{Unit, Value};

/// The capacity of one entry in use.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub bindings: u32,
    pub bandwidth_bps: f64,
}

/// Capacity in use per entry name, counted from the allocations (entries without any are
/// absent). An allocation's bandwidth that does not parse counts as none.
pub fn usage(allocations: &[PathAllocation]) -> BTreeMap<String, Usage> {
    let mut out: BTreeMap<String, Usage> = BTreeMap::new();
    for a in allocations {
        let u = out.entry(a.entry.clone()).or_default();
        u.bindings += 1;
        u.bandwidth_bps += a
            .bandwidth
            .as_deref()
            .and_then(|b| Value::parse(b, Unit::BitRate).ok())
            .and_then(|v| v.magnitude())
            .unwrap_or(0.0);
    }
    out
}

/// Whether `entry` can take one more allocation reserving `reserve_bps`; the error says
/// why not (`at capacity 2/2 bindings`).
pub fn has_room(entry: &Entry, used: Usage, reserve_bps: f64) -> Result<(), String> {
    if let Some(max) = entry.capacity.bindings
        && used.bindings >= max
    {
        return Err(format!("at capacity {}/{max} bindings", used.bindings));
    }
    if let Some(max) = entry.capacity.bandwidth_bps
        && used.bandwidth_bps + reserve_bps > max * (1.0 + 1e-9)
    {
        return Err(format!(
            "at capacity: {} of {} reserved, {} more asked",
            Value::bits_per_second(used.bandwidth_bps),
            Value::bits_per_second(max),
            Value::bits_per_second(reserve_bps)
        ));
    }
    Ok(())
}
