//! A NetworkPathCatalogue parsed: its usable entries, and what is wrong with the others.

use std::collections::BTreeMap;

use edgeplane_api::NetworkPathCatalogue;
use edgeplane_api::network::DEFAULT_SITE_LABEL;

use crate::network::{ExtraLink, LinkMetrics, NetworkGraph, TopologyError, is_site_name};
use crate::values::{Unit, Value};

/// The cost of an entry that does not state one.
pub const DEFAULT_ENTRY_COST: i64 = 1;

/// How much an entry can carry. Each limit given applies.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Capacity {
    pub bindings: Option<u32>,
    pub bandwidth_bps: Option<f64>,
}

/// A catalogue entry that parsed and joins two known sites.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Position in `spec.entries`.
    pub index: usize,
    pub name: String,
    pub from: String,
    pub to: String,
    /// The entry as a link of the graph.
    pub link: ExtraLink,
    pub capacity: Capacity,
    pub cost: i64,
}

impl Entry {
    /// `slice-a (metro-1 <-> edge-9)`, `(a -> b)` for one-way entries.
    pub fn describe(&self) -> String {
        let arrow = if self.link.one_way { "->" } else { "<->" };
        format!("{} ({} {arrow} {})", self.name, self.from, self.to)
    }
}

/// The usable entries of a catalogue, and what is wrong with the others.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalogue {
    pub name: String,
    pub entries: Vec<Entry>,
    /// Located problems (`spec.entries[2].latency: ...`); the entries they concern are left
    /// out of `entries`.
    pub problems: Vec<TopologyError>,
}

/// What an entry parses into before its sites are looked up.
struct ParsedEntry {
    metrics: LinkMetrics,
    capacity: Capacity,
    cost: i64,
}

/// Checks every entry of a catalogue that does not need the graph: names, values,
/// capacity and cost. Unknown sites are checked by [`Catalogue::parse`].
pub fn check_catalogue(catalogue: &NetworkPathCatalogue) -> Vec<TopologyError> {
    let mut problems = Vec::new();
    parse_entries(catalogue, &mut problems);
    problems
}

fn parse_entries(
    catalogue: &NetworkPathCatalogue,
    problems: &mut Vec<TopologyError>,
) -> Vec<Option<ParsedEntry>> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, entry) in catalogue.spec.entries.iter().enumerate() {
        let field = format!("spec.entries[{i}]");
        let before = problems.len();
        let mut problem = |f: String, m: String| {
            problems.push(TopologyError {
                field: f,
                message: m,
            })
        };
        if !is_entry_name(&entry.name) {
            problem(
                format!("{field}.name"),
                format!(
                    "{:?} is not a valid entry name (at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit)",
                    entry.name
                ),
            );
        } else if let Some(first) = seen.insert(entry.name.as_str(), i) {
            problem(
                format!("{field}.name"),
                format!(
                    "entry {:?} is declared twice (also spec.entries[{first}])",
                    entry.name
                ),
            );
        }
        for (end, name) in [("from", &entry.from), ("to", &entry.to)] {
            if !is_site_name(name) {
                problem(
                    format!("{field}.{end}"),
                    format!("{name:?} is not a valid site name"),
                );
            }
        }
        if entry.from == entry.to {
            problem(
                format!("{field}.to"),
                format!(
                    "a path joins two different sites (both ends are {:?})",
                    entry.to
                ),
            );
        }
        let cost = entry.cost.unwrap_or(DEFAULT_ENTRY_COST);
        if cost < 0 {
            problem(format!("{field}.cost"), format!("{cost} is negative"));
        }
        let capacity = &entry.capacity;
        if capacity.bindings.is_none() && capacity.bandwidth.is_none() {
            problem(
                format!("{field}.capacity"),
                "gives neither bindings nor bandwidth (a path's capacity is finite)".into(),
            );
        }
        if let Some(b) = capacity.bindings
            && b < 0
        {
            problem(
                format!("{field}.capacity.bindings"),
                format!("{b} is negative"),
            );
        }
        let bandwidth_bps = match capacity.bandwidth.as_deref() {
            Some(text) => match Value::parse(text, Unit::BitRate) {
                Ok(v) => v.magnitude(),
                Err(e) => {
                    problem(format!("{field}.capacity.bandwidth"), e.to_string());
                    None
                }
            },
            None => None,
        };
        let metrics = match LinkMetrics::parse(
            &field,
            &entry.latency,
            entry.jitter.as_deref(),
            entry.bandwidth.as_deref(),
            entry.loss.as_deref(),
        ) {
            Ok(m) => Some(m),
            Err(errors) => {
                problems.extend(errors);
                None
            }
        };
        let ok = problems.len() == before;
        out.push(match (ok, metrics) {
            (true, Some(metrics)) => Some(ParsedEntry {
                metrics,
                capacity: Capacity {
                    bindings: capacity.bindings.map(|b| b.max(0) as u32),
                    bandwidth_bps,
                },
                cost,
            }),
            _ => None,
        });
    }
    out
}

/// Entry names are DNS labels: they appear in allocation ids.
pub fn is_entry_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(ok)
        && name.ends_with(ok)
        && name.chars().all(|c| ok(c) || c == '-')
}

impl Catalogue {
    /// The usable entries of a catalogue on a graph, and the located problems of the others
    /// (including ends that are not sites of the graph). Never fails: a bad entry is left
    /// out and reported, the good ones stay usable.
    pub fn parse(catalogue: &NetworkPathCatalogue, graph: &NetworkGraph) -> Catalogue {
        let mut problems = Vec::new();
        let parsed = parse_entries(catalogue, &mut problems);
        let mut entries = Vec::new();
        for (i, (spec, parsed)) in catalogue.spec.entries.iter().zip(parsed).enumerate() {
            let Some(parsed) = parsed else { continue };
            let mut ends = Vec::new();
            for (end, name) in [("from", &spec.from), ("to", &spec.to)] {
                match graph.site_id(name) {
                    Some(id) => ends.push(id),
                    None => problems.push(TopologyError {
                        field: format!("spec.entries[{i}].{end}"),
                        message: format!(
                            "unknown site {name:?} (not in the NetworkTopology: declare it in spec.sites or label a node with {}={name})",
                            if graph.site_label().is_empty() {
                                DEFAULT_SITE_LABEL
                            } else {
                                graph.site_label()
                            }
                        ),
                    }),
                }
            }
            let &[from, to] = ends.as_slice() else {
                continue;
            };
            entries.push(Entry {
                index: i,
                name: spec.name.clone(),
                from: spec.from.clone(),
                to: spec.to.clone(),
                link: ExtraLink {
                    from,
                    to,
                    metrics: parsed.metrics,
                    one_way: spec.one_way,
                },
                capacity: parsed.capacity,
                cost: parsed.cost,
            });
        }
        problems.sort_by_key(|p| entry_index(&p.field));
        Catalogue {
            name: catalogue.metadata.name.clone().unwrap_or_default(),
            entries,
            problems,
        }
    }

    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// The entry index of a field `spec.entries[3].latency`, to report problems in entry order.
fn entry_index(field: &str) -> usize {
    field
        .strip_prefix("spec.entries[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}
