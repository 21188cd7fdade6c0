//! The network controller's decisions, as pure functions of the network graph, a
//! NetworkPathCatalogue and its allocations: which catalogue entry restores a binding's
//! compliance (Mitigate), which entries would make a candidate node suitable (Discover),
//! how much capacity is in use, and which paths are active.
//!
//! # Model
//!
//! - A **catalogue entry** is an alternate path or slice between two sites with the
//!   metrics it gives (latency, jitter, bandwidth, loss, like a topology link) and a finite
//!   capacity: a number of bindings, a total bandwidth, or both.
//! - An **allocation** holds capacity of one entry for one binding. An entry with at least
//!   one allocation is **active**: the graph sees it as a link between its sites beside the
//!   others (`NetworkTopology.status.activatedPaths`, see [`crate::network`]), and traffic
//!   between those sites takes it when its latency is lower (or equal).
//! - Only the **network rules** (latency, jitter, bandwidth, packet-loss) can be repaired by
//!   the network; others in a request are ignored and named.
//!
//! # Mitigate
//!
//! Decisions are taken on the network without the catalogue's active paths: a binding
//! relies only on the paths it holds, so an entry already active for another binding is
//! joined (and its capacity counted) rather than used for free. Given the binding's two
//! endpoints (a node or a site each) and its rules, [`decide_mitigation`]:
//!
//! 1. keeps the binding's Mitigate allocation when it has one and the rules hold with it
//!    (at least Limit): Mitigate is idempotent;
//! 2. answers that nothing is needed when the rules already hold with the paths the
//!    binding holds (from Discover), or none;
//! 3. otherwise tries every valid entry with room that the binding does not hold yet,
//!    alone (beside the binding's Discover paths): the route between the endpoints (both
//!    directions) must use the entry, and every rule must end at least at Limit. Among those, the cheapest wins:
//!    lowest entry `cost`, then fewest rules in Limit, then least total normalized rule
//!    cost (0 at the request, 1 at the limit), then the entry's name;
//! 4. refuses with a reason that names every entry tried and why it did not do.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use edgeplane_api::network::DEFAULT_SITE_LABEL;
use edgeplane_api::{
    ActivatedPath, AllocationPurpose, Compliance, ConstraintPolicyRule, NetworkPathCatalogue,
    PathAllocation,
};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::network::{
    ExtraLink, LinkMetrics, Location, NetworkGraph, PathMetric, PathMetrics, Route, TopologyError,
    is_site_name,
};
use crate::rules::{Direction, Rule, builtin_metric};
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

// ---------------------------------------------------------------------------------------
// Capacity
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------

/// The network rules of a request, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct PathRules {
    rules: Vec<(Rule, PathMetric)>,
    /// Names of the rules the network cannot repair (cpu, external providers' rules ...).
    pub ignored: Vec<String>,
}

/// A rule of a request that does not parse, located by its index.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rules[{index}] ({name}).{field}: {message}")]
pub struct RuleInputError {
    pub index: usize,
    pub name: String,
    pub field: &'static str,
    pub message: String,
}

impl PathRules {
    /// Parses the network rules (latency, jitter, bandwidth, packet-loss) of a request;
    /// other rules are set aside in `ignored`.
    pub fn parse(rules: &[ConstraintPolicyRule]) -> Result<PathRules, RuleInputError> {
        let mut parsed = Vec::new();
        let mut ignored = Vec::new();
        for (index, spec) in rules.iter().enumerate() {
            let (Some(metric), Some(path)) =
                (builtin_metric(&spec.name), PathMetric::for_rule(&spec.name))
            else {
                ignored.push(spec.name.clone());
                continue;
            };
            let rule = Rule::parse(spec, metric).map_err(|e| RuleInputError {
                index,
                name: spec.name.clone(),
                field: e.field,
                message: e.source.to_string(),
            })?;
            parsed.push((rule, path));
        }
        Ok(PathRules {
            rules: parsed,
            ignored,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The bandwidth an allocation for these rules reserves on an entry whose capacity
    /// counts bandwidth: the largest request of a higher-is-better bandwidth rule, or 0.
    pub fn bandwidth_reservation_bps(&self) -> f64 {
        self.rules
            .iter()
            .filter(|(r, m)| {
                *m == PathMetric::Bandwidth && r.direction == Direction::HigherIsBetter
            })
            .filter_map(|(r, _)| r.request.magnitude())
            .fold(0.0, f64::max)
    }
}

/// How the rules fare on the route between two endpoints (both directions).
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The worst compliance over rules and directions (Compliant with no rules).
    pub compliance: Compliance,
    /// Rules whose worst direction is in Limit.
    pub limit_count: usize,
    /// Sum over rules of the normalized cost of their worst direction.
    pub cost: f64,
    /// The route from the first endpoint to the second, and back.
    pub forward: Option<Route>,
    pub backward: Option<Route>,
    /// The explanation of the worst rule (`latency 11.5ms from edge-9-a to stadium is worse
    /// than the limit 5ms`).
    pub reason: String,
}

impl Judgement {
    /// The rules hold: nothing worse than Limit.
    pub fn holds(&self) -> bool {
        self.compliance <= Compliance::Limit
    }

    /// Whether either direction's route takes the extra link `index` (into the `extra`
    /// given to [`judge`]).
    pub fn uses(&self, index: usize) -> bool {
        self.forward.as_ref().is_some_and(|r| r.uses(index))
            || self.backward.as_ref().is_some_and(|r| r.uses(index))
    }

    /// The metrics from the first endpoint to the second.
    pub fn expected(&self) -> Option<PathMetrics> {
        self.forward.as_ref().map(|r| r.metrics)
    }
}

/// Judges `rules` between two locations on the graph with `extra` links added.
pub fn judge(
    graph: &NetworkGraph,
    a: (Location, &str),
    b: (Location, &str),
    rules: &PathRules,
    extra: &[ExtraLink],
) -> Judgement {
    let forward = graph.route_with(a.0, b.0, extra);
    let backward = graph.route_with(b.0, a.0, extra);
    let mut compliance = Compliance::Compliant;
    let mut limit_count = 0;
    let mut cost = 0.0;
    let mut reason = String::new();
    let mut worst_key = (Compliance::Pending, f64::NEG_INFINITY);
    let symmetric = forward.as_ref().map(|r| r.metrics) == backward.as_ref().map(|r| r.metrics);
    for (rule, metric) in &rules.rules {
        let mut rule_worst = (Compliance::Pending, 0.0f64, String::new());
        let mut directions = vec![(&forward, a.1, b.1)];
        if !symmetric {
            directions.push((&backward, b.1, a.1));
        }
        for (route, from, to) in directions {
            let place = if symmetric {
                format!("between {from} and {to}")
            } else {
                format!("from {from} to {to}")
            };
            let (c, k, text) = match route {
                None => (
                    Compliance::Violation,
                    f64::INFINITY,
                    format!("{}: no path {place}", rule.name),
                ),
                Some(route) => {
                    let value = route.metrics.value(*metric);
                    let shown = if *metric == PathMetric::Bandwidth
                        && route.metrics.bandwidth_bps.is_infinite()
                    {
                        "unlimited".to_string()
                    } else {
                        value.to_string()
                    };
                    let c = rule.judge(&value);
                    let explained = rule.explain(&value, c);
                    // `latency 5ms meets ...` -> `latency 5ms between a and b meets ...`
                    let text = match explained.strip_prefix(&format!("{} {value}", rule.name)) {
                        Some(rest) => format!("{} {shown} {place}{rest}", rule.name),
                        None => explained,
                    };
                    (c, rule.cost(&value), text)
                }
            };
            if (c, k) > (rule_worst.0, rule_worst.1) {
                rule_worst = (c, k, text);
            }
        }
        if rule_worst.0 == Compliance::Limit {
            limit_count += 1;
        }
        compliance = compliance.max(rule_worst.0);
        cost += rule_worst.1;
        if (rule_worst.0, rule_worst.1) > worst_key {
            worst_key = (rule_worst.0, rule_worst.1);
            reason = rule_worst.2;
        }
    }
    Judgement {
        compliance,
        limit_count,
        cost,
        forward,
        backward,
        reason,
    }
}

// ---------------------------------------------------------------------------------------
// Mitigate
// ---------------------------------------------------------------------------------------

/// What Mitigate is asked, with the endpoints located on the graph.
#[derive(Clone, Copy, Debug)]
pub struct MitigationInput<'a> {
    /// The graph without the paths this catalogue activated: a binding relies only on the
    /// paths it holds, so every binding that needs a path holds (and counts against) its
    /// capacity, even when another binding activated it first.
    pub graph: &'a NetworkGraph,
    pub catalogue: &'a Catalogue,
    pub allocations: &'a [PathAllocation],
    /// `namespace/name`.
    pub binding: &'a str,
    /// The endpoints and their names for reasons.
    pub source: (Location, &'a str),
    pub destination: (Location, &'a str),
    pub rules: &'a PathRules,
}

/// What to do about a binding.
#[derive(Clone, Debug, PartialEq)]
pub enum Mitigation {
    /// The rules hold (at least Limit) with the paths already active.
    NotNeeded { judgement: Judgement },
    /// The binding's allocation `id` (of entry `entry`) keeps the rules holding.
    Held {
        id: String,
        entry: String,
        judgement: Judgement,
    },
    /// Allocate the entry at `entry` (an index into the catalogue's entries) for the
    /// binding, releasing `replaces` (an allocation of the binding that no longer helps).
    Allocate {
        entry: usize,
        judgement: Judgement,
        replaces: Option<String>,
    },
    /// Nothing restores compliance.
    Refuse { reason: String },
}

/// Decides how to mitigate a binding (see the module documentation).
pub fn decide_mitigation(input: &MitigationInput<'_>) -> Mitigation {
    let MitigationInput {
        graph,
        catalogue,
        allocations,
        binding,
        source,
        destination,
        rules,
    } = *input;
    if rules.is_empty() {
        return Mitigation::Refuse {
            reason: format!(
                "none of the rules is a network rule (latency, jitter, bandwidth, packet-loss){}",
                ignored_note(rules)
            ),
        };
    }
    // The binding relies on the paths it holds: its mitigation allocation (at most one)
    // and those the planner allocated for it.
    let held = allocations
        .iter()
        .find(|a| a.binding == binding && a.purpose == AllocationPurpose::Mitigate);
    let held_entry = held.and_then(|a| catalogue.entry(&a.entry));
    let own: BTreeSet<&str> = allocations
        .iter()
        .filter(|a| a.binding == binding)
        .map(|a| a.entry.as_str())
        .collect();
    let kept: Vec<ExtraLink> = allocations
        .iter()
        .filter(|a| a.binding == binding && held.is_none_or(|h| h.id != a.id))
        .filter_map(|a| catalogue.entry(&a.entry))
        .map(|e| e.link)
        .collect();
    let with_held: Vec<ExtraLink> = kept
        .iter()
        .copied()
        .chain(held_entry.map(|e| e.link))
        .collect();
    let now = judge(graph, source, destination, rules, &with_held);
    if let (Some(a), Some(_)) = (held, held_entry)
        && now.holds()
    {
        return Mitigation::Held {
            id: a.id.clone(),
            entry: a.entry.clone(),
            judgement: now,
        };
    }
    if held.is_none() && now.holds() {
        return Mitigation::NotNeeded { judgement: now };
    }

    let used = usage(allocations);
    let reserve = rules.bandwidth_reservation_bps();
    let mut best: Option<(usize, Judgement)> = None;
    let mut tried = Vec::new();
    let mut all_full = true;
    // The candidate goes last among the extra links.
    let candidate = kept.len();
    for (i, entry) in catalogue.entries.iter().enumerate() {
        if own.contains(entry.name.as_str()) {
            tried.push(format!(
                "{}: held by this binding already",
                entry.describe()
            ));
            all_full = false;
            continue;
        }
        let in_use = used.get(&entry.name).copied().unwrap_or_default();
        if let Err(why) = has_room(entry, in_use, reserve) {
            tried.push(format!("{} is {why}", entry.describe()));
            continue;
        }
        all_full = false;
        let mut extra = kept.clone();
        extra.push(entry.link);
        let judgement = judge(graph, source, destination, rules, &extra);
        if !judgement.uses(candidate) {
            tried.push(format!(
                "{}: not on the path between {} and {}",
                entry.describe(),
                source.1,
                destination.1
            ));
            continue;
        }
        if !judgement.holds() {
            tried.push(format!(
                "{}: would leave {}",
                entry.describe(),
                judgement.reason
            ));
            continue;
        }
        let better = best.as_ref().is_none_or(|(j, b)| {
            let current = &catalogue.entries[*j];
            (
                entry.cost,
                judgement.limit_count,
                judgement.cost,
                &entry.name,
            ) < (current.cost, b.limit_count, b.cost, &current.name)
        });
        if better {
            best = Some((i, judgement));
        }
    }
    if let Some((entry, judgement)) = best {
        return Mitigation::Allocate {
            entry,
            judgement,
            replaces: held.map(|a| a.id.clone()),
        };
    }
    let mut reason = String::new();
    let head = if catalogue.entries.is_empty() {
        format!("catalogue {} has no usable entry", catalogue.name)
    } else if all_full {
        format!("catalogue {} is exhausted", catalogue.name)
    } else {
        format!(
            "no entry of catalogue {} restores compliance",
            catalogue.name
        )
    };
    let _ = write!(reason, "{head} ({})", now.reason);
    if !tried.is_empty() {
        let _ = write!(reason, ": {}", tried.join("; "));
    }
    reason.push_str(&ignored_note(rules));
    Mitigation::Refuse { reason }
}

fn ignored_note(rules: &PathRules) -> String {
    if rules.ignored.is_empty() {
        String::new()
    } else {
        format!(
            " (not network rules, ignored: {})",
            rules.ignored.join(", ")
        )
    }
}

// ---------------------------------------------------------------------------------------
// Discover
// ---------------------------------------------------------------------------------------

/// What Discover is asked, with the source and the candidates located on the graph.
#[derive(Clone, Copy, Debug)]
pub struct DiscoverInput<'a> {
    /// The graph without the paths this catalogue activated (see [`MitigationInput`]).
    pub graph: &'a NetworkGraph,
    pub catalogue: &'a Catalogue,
    pub allocations: &'a [PathAllocation],
    pub source: (Location, &'a str),
    /// Candidate nodes: their location and name.
    pub candidates: &'a [(Location, &'a str)],
    pub rules: &'a PathRules,
}

/// An entry that would make the rules hold between the source and a candidate node.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferPlan {
    /// Index into `candidates`.
    pub candidate: usize,
    /// Index into the catalogue's entries.
    pub entry: usize,
    pub judgement: Judgement,
}

/// For every candidate node, the entries with room that would make the rules hold (at
/// least Limit) between the source and that node, with the entry on the route. Ordered
/// best first: Compliant before Limit, then entry cost, fewest rules in Limit, least rule
/// cost, candidate order, entry name. Offers reserve nothing.
pub fn discover(input: &DiscoverInput<'_>) -> Vec<OfferPlan> {
    let DiscoverInput {
        graph,
        catalogue,
        allocations,
        source,
        candidates,
        rules,
    } = *input;
    if rules.is_empty() {
        return Vec::new();
    }
    let used = usage(allocations);
    let reserve = rules.bandwidth_reservation_bps();
    let open: Vec<usize> = catalogue
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            has_room(e, used.get(&e.name).copied().unwrap_or_default(), reserve).is_ok()
        })
        .map(|(i, _)| i)
        .collect();
    let mut plans = Vec::new();
    for (c, candidate) in candidates.iter().enumerate() {
        for &e in &open {
            let judgement = judge(
                graph,
                source,
                *candidate,
                rules,
                &[catalogue.entries[e].link],
            );
            if judgement.uses(0) && judgement.holds() {
                plans.push(OfferPlan {
                    candidate: c,
                    entry: e,
                    judgement,
                });
            }
        }
    }
    plans.sort_by(|x, y| {
        let (ex, ey) = (&catalogue.entries[x.entry], &catalogue.entries[y.entry]);
        (x.judgement.compliance, ex.cost, x.judgement.limit_count)
            .cmp(&(y.judgement.compliance, ey.cost, y.judgement.limit_count))
            .then(x.judgement.cost.total_cmp(&y.judgement.cost))
            .then((x.candidate, &ex.name).cmp(&(y.candidate, &ey.name)))
    });
    plans
}

// ---------------------------------------------------------------------------------------
// Ids, activations, orphans
// ---------------------------------------------------------------------------------------

fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for p in parts {
        hasher.update(p.as_bytes());
        hasher.update([0u8]);
    }
    hasher
        .finalize()
        .iter()
        .take(5)
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The id of an offer: `offer.<entry>.<expiry in unix seconds>.<hash>`. The id names the
/// entry and the expiry, so that Allocate needs no memory of the offers made (offers
/// reserve nothing and survive a restart of the controller); the hash of the catalogue,
/// node, source and rules keeps ids of different offers apart.
pub fn offer_id(
    catalogue: &str,
    entry: &str,
    node: &str,
    source: &str,
    rules: &[ConstraintPolicyRule],
    expires: Timestamp,
) -> String {
    let rules: Vec<String> = rules
        .iter()
        .map(|r| {
            format!(
                "{}={}/{}",
                r.name,
                r.request,
                r.limit.as_deref().unwrap_or("")
            )
        })
        .collect();
    let expiry = expires.as_second().to_string();
    let mut parts = vec![catalogue, entry, node, source, expiry.as_str()];
    parts.extend(rules.iter().map(String::as_str));
    format!("offer.{entry}.{expiry}.{}", short_hash(&parts))
}

/// What an offer id says: its entry and expiry. `None` when it is not an offer id.
pub fn parse_offer_id(id: &str) -> Option<(String, Timestamp)> {
    let mut parts = id.split('.');
    let (Some("offer"), Some(entry), Some(expiry), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if !is_entry_name(entry) || hash.is_empty() {
        return None;
    }
    let expires = Timestamp::from_second(expiry.parse().ok()?).ok()?;
    Some((entry.to_string(), expires))
}

/// The id of a binding's Mitigate allocation of an entry: `mitigate.<entry>.<hash of the
/// binding>`. Deterministic, so a retried Mitigate cannot allocate twice.
pub fn mitigation_id(catalogue: &str, entry: &str, binding: &str) -> String {
    format!(
        "mitigate.{entry}.{}",
        short_hash(&[catalogue, entry, binding])
    )
}

/// The paths a catalogue's allocations keep active: one per valid entry with at least one
/// allocation, with the entry's values as written and the bindings that use it, in entry
/// order.
pub fn activated_paths(
    spec: &NetworkPathCatalogue,
    catalogue: &Catalogue,
    allocations: &[PathAllocation],
) -> Vec<ActivatedPath> {
    let mut bindings: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for a in allocations {
        bindings
            .entry(a.entry.as_str())
            .or_default()
            .insert(a.binding.as_str());
    }
    catalogue
        .entries
        .iter()
        .filter_map(|entry| {
            let users = bindings.get(entry.name.as_str())?;
            let written = spec.spec.entries.get(entry.index)?;
            Some(ActivatedPath {
                from: written.from.clone(),
                to: written.to.clone(),
                one_way: written.one_way,
                latency: written.latency.clone(),
                jitter: written.jitter.clone(),
                bandwidth: written.bandwidth.clone(),
                loss: written.loss.clone(),
                catalogue: catalogue.name.clone(),
                entry: entry.name.clone(),
                bindings: users.iter().map(|b| b.to_string()).collect(),
            })
        })
        .collect()
}

/// The allocations whose binding no longer exists, made at least `grace` before `now`
/// (the grace covers a binding being created right after its allocation). Their capacity
/// would otherwise leak when a holder forgets to release.
pub fn orphaned<'a>(
    allocations: &'a [PathAllocation],
    bindings: &BTreeSet<String>,
    now: Timestamp,
    grace: std::time::Duration,
) -> Vec<&'a PathAllocation> {
    allocations
        .iter()
        .filter(|a| !bindings.contains(&a.binding))
        .filter(|a| now.duration_since(a.allocated_at.0).as_secs_f64() >= grace.as_secs_f64())
        .collect()
}

#[cfg(test)]
mod tests;
