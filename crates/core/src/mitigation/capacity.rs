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

/// Why an entry cannot take one more allocation.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NoRoom {
    /// Its capacity in bindings is used up.
    #[error("at capacity {used}/{max} bindings")]
    Bindings { used: u32, max: u32 },
    /// The bandwidth asked does not fit beside what is reserved (values in bits per second).
    #[error("at capacity: {reserved} of {max} reserved, {asked} more asked")]
    Bandwidth {
        reserved: Value,
        max: Value,
        asked: Value,
    },
}

/// Whether `entry` can take one more allocation reserving `reserve_bps`; the error says
/// why not (`at capacity 2/2 bindings`).
pub fn has_room(entry: &Entry, used: Usage, reserve_bps: f64) -> Result<(), NoRoom> {
    if let Some(max) = entry.capacity.bindings
        && used.bindings >= max
    {
        return Err(NoRoom::Bindings {
            used: used.bindings,
            max,
        });
    }
    if let Some(max) = entry.capacity.bandwidth_bps
        && used.bandwidth_bps + reserve_bps > max * (1.0 + 1e-9)
    {
        return Err(NoRoom::Bandwidth {
            reserved: Value::bits_per_second(used.bandwidth_bps),
            max: Value::bits_per_second(max),
            asked: Value::bits_per_second(reserve_bps),
        });
    }
    Ok(())
}
