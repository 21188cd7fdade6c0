//! The readable output of a run: a header saying what the scenario is, one line per
//! timeline entry, progress on stderr, and a summary.
//!
//! ```text
//! 00:05:02  Planned           Pod ar/ar-render-0 -> edge-1-a (latency 1ms to stadium)
//! ```

use std::io::Write;
use std::time::Duration;

use crate::journal::Listener;
use crate::report::Report;
use crate::scenario::{Action, Scenario};
use crate::timeline::{Entry, EntryType, clock_text};

/// Width of the type column.
const TYPE_WIDTH: usize = 17;

/// Short forms of kinds for the terminal (the reports keep the full kind).
fn short_object(object: &str) -> String {
    for (long, short) in [
        ("ConstraintPolicyBinding ", "Binding "),
        ("ConstraintPolicyOffer ", "Offer "),
    ] {
        if let Some(rest) = object.strip_prefix(long) {
            return format!("{short}{rest}");
        }
    }
    object.to_string()
}

/// One timeline line.
pub fn line(e: &Entry) -> String {
    if e.kind == EntryType::Note {
        return format!(
            "{}  {:<width$} {}",
            clock_text(e.at),
            e.kind.as_str(),
            e.message,
            width = TYPE_WIDTH
        );
    }
    let object = short_object(&e.object);
    let sep = if e.message.starts_with("->") {
        " "
    } else {
        ": "
    };
    format!(
        "{}  {:<width$} {object}{sep}{}",
        clock_text(e.at),
        e.kind.as_str(),
        e.message,
        width = TYPE_WIDTH
    )
}

fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn count_kind(scenario: &Scenario, kind: &str) -> usize {
    scenario
        .objects
        .iter()
        .filter(|o| o.get("kind").and_then(serde_json::Value::as_str) == Some(kind))
        .count()
}

fn short_clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        clock_text(d)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// What the scenario is and what will happen in it.
pub fn header(scenario: &Scenario, components: &[String]) -> String {
    let mut out = format!(
        "Scenario {}: {} of simulated time on the embedded cluster\n",
        scenario.name, scenario.duration_text
    );
    if !scenario.description.is_empty() {
        out.push_str(&wrap(&scenario.description, 88, "  "));
    }
    let nodes = count_kind(scenario, "Node");
    let workloads = ["Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"]
        .iter()
        .map(|k| count_kind(scenario, k))
        .sum::<usize>();
    let mut parts = vec![
        plural(nodes, "node", "nodes"),
        plural(workloads, "workload", "workloads"),
    ];
    let pods = count_kind(scenario, "Pod");
    if pods > 0 {
        parts.push(plural(pods, "pod", "pods"));
    }
    parts.push(plural(
        count_kind(scenario, "ConstraintPolicy"),
        "policy",
        "policies",
    ));
    parts.push(plural(
        count_kind(scenario, "ConstraintPolicyOffer"),
        "offer",
        "offers",
    ));
    out.push_str(&format!("  at the start: {}\n", parts.join(", ")));
    if !scenario.events.is_empty() {
        out.push_str("  then:\n");
        let events = &scenario.events;
        let mut k = 0;
        while k < events.len() {
            let e = &events[k];
            // Runs of three or more applies of one object each read as one line.
            let run = events[k..]
                .iter()
                .take_while(|x| matches!(&x.action, Action::Apply(o) if o.len() == 1))
                .count();
            if run >= 3 {
                let last = &events[k + run - 1];
                let name = |x: &crate::scenario::Event| match &x.action {
                    Action::Apply(o) => o[0]
                        .pointer("/metadata/name")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    _ => String::new(),
                };
                out.push_str(&format!(
                    "    {}-{}  apply {run} objects one at a time ({} ... {})\n",
                    short_clock(e.at),
                    short_clock(last.at),
                    name(e),
                    name(last)
                ));
                k += run;
                continue;
            }
            k += 1;
            let what = match &e.action {
                Action::Apply(objs) => {
                    let names: Vec<String> = objs
                        .iter()
                        .map(|o| {
                            format!(
                                "{} {}",
                                o.get("kind")
                                    .and_then(serde_json::Value::as_str)
                                    .unwrap_or("object"),
                                o.pointer("/metadata/name")
                                    .and_then(serde_json::Value::as_str)
                                    .unwrap_or("")
                            )
                        })
                        .collect();
                    match names.as_slice() {
                        [first, .., last] if names.len() > 3 => {
                            format!("apply {} objects ({first} ... {last})", names.len())
                        }
                        _ => format!("apply {}", names.join(", ")),
                    }
                }
                Action::Delete(refs) => format!(
                    "delete {}",
                    refs.iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Action::SetLink(l) => {
                    let metrics: Vec<String> = [
                        ("latency", &l.latency),
                        ("jitter", &l.jitter),
                        ("bandwidth", &l.bandwidth),
                        ("loss", &l.loss),
                    ]
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
                    .collect();
                    format!("link {} - {}: {}", l.from, l.to, metrics.join(", "))
                }
                Action::FailNode(n) => format!("node {n} fails"),
                Action::RecoverNode(n) => format!("node {n} recovers"),
                Action::FailCluster(c) => format!("cluster {c} stops answering"),
                Action::RecoverCluster(c) => format!("cluster {c} answers again"),
                Action::Scale(s) => format!(
                    "scale {} {}/{} to {}",
                    s.kind, s.namespace, s.name, s.replicas
                ),
            };
            out.push_str(&format!("    {}  {what}\n", short_clock(e.at)));
        }
    }
    if components.is_empty() {
        out.push_str(&wrap(
            "components: none. edgeplane's controllers (offers, bindings, planner, descheduler, network controller) are not wired into the simulator yet: pods are placed by the embedded cluster's default-scheduler stand-in and no binding is evaluated.",
            88,
            "  ",
        ));
    } else {
        out.push_str(&format!("  components: {}\n", components.join(", ")));
    }
    out.push('\n');
    out.push_str(&format!(
        "{:<8}  {:<width$} WHAT\n",
        "TIME",
        "EVENT",
        width = TYPE_WIDTH
    ));
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The end of the output.
pub fn summary(r: &Report) -> String {
    let s = &r.summary;
    let b = &s.bindings;
    let mut out = format!(
        "\nSummary: {} simulated in {:.2} s of wall time\n",
        r.duration,
        s.wall_millis as f64 / 1000.0
    );
    out.push_str(&format!(
        "  pods       {} placed, {} unplaced, {} failed, {} lost\n",
        s.pods_placed, s.pods_unplaced, s.pods_failed, s.pods_lost
    ));
    out.push_str(&format!(
        "  planner    {}\n",
        plural(s.plan_runs, "plan run", "plan runs")
    ));
    out.push_str(&format!(
        "  repairs    {} ({} failed), {}\n",
        plural(s.mitigations, "mitigation", "mitigations"),
        s.mitigation_failures,
        plural(s.evictions, "eviction", "evictions")
    ));
    out.push_str(&format!(
        "  bindings   {} Compliant, {} Limit, {} Violation, {} Pending, {} Error\n",
        b.compliant, b.limit, b.violation, b.pending, b.error
    ));
    out.push_str(&format!(
        "  scenario   {}, {}",
        plural(s.scenario_events, "event", "events"),
        plural(s.node_failures, "node failure", "node failures")
    ));
    if s.action_failures > 0 {
        out.push_str(&format!(
            ", {} refused by the cluster (see ActionFailed)",
            s.action_failures
        ));
    }
    out.push('\n');
    if !r.workloads.is_empty() {
        let short: Vec<String> = r
            .workloads
            .iter()
            .filter(|w| w.pods < w.replicas)
            .map(|w| {
                format!(
                    "{} {}/{} has {} of {}",
                    w.kind, w.namespace, w.name, w.pods, w.replicas
                )
            })
            .collect();
        if short.is_empty() {
            out.push_str(&format!(
                "  workloads  {} with all their pods\n",
                plural(r.workloads.len(), "workload", "workloads")
            ));
        } else {
            out.push_str(&format!("  workloads  short: {}\n", short.join("; ")));
        }
    }
    for line in chain_lines(&r.chains) {
        out.push_str(&line);
    }
    if !r.expectations.is_empty() {
        let met = r.expectations.iter().filter(|e| e.met).count();
        out.push_str(&format!(
            "  expected   {met} of {} met\n",
            r.expectations.len()
        ));
    }
    if r.components.is_empty() {
        out.push_str(
            "  note       no edgeplane controllers ran: plan runs, repairs and bindings stay 0\n",
        );
    }
    out
}

/// A summary line per service chain: its lanes' compliance at the end and its VM hops'
/// live migrations, which the repairs line (mitigations, evictions) does not count.
fn chain_lines(chains: &[crate::chains::ChainRecord]) -> Vec<String> {
    chains
        .iter()
        .map(|c| {
            let lanes = c.history.last().map(|s| s.lanes.as_slice()).unwrap_or(&[]);
            let mut by_compliance: std::collections::BTreeMap<&str, usize> = Default::default();
            for lane in lanes {
                *by_compliance.entry(lane.compliance.as_str()).or_default() += 1;
            }
            let at_end: Vec<String> = by_compliance
                .iter()
                .map(|(compliance, n)| format!("{n} {compliance}"))
                .collect();
            let succeeded = c
                .migrations
                .iter()
                .filter(|m| m.phase == "Succeeded")
                .count();
            format!(
                "  chain      {}: {} ({}), {} ({succeeded} succeeded)\n",
                c.name,
                plural(lanes.len(), "lane", "lanes"),
                if at_end.is_empty() {
                    "none at the end".to_string()
                } else {
                    at_end.join(", ")
                },
                plural(c.migrations.len(), "live migration", "live migrations"),
            )
        })
        .collect()
}

/// Prints entries to a writer (stdout) and progress to stderr.
pub struct TextListener<W: Write + Send> {
    out: W,
    verbose: bool,
    progress: bool,
    tty: bool,
    /// A progress line is showing on the terminal.
    showing: bool,
    last_quarter: u32,
}

impl<W: Write + Send> TextListener<W> {
    /// `verbose` prints detail entries too; `progress` reports on stderr (overwriting one
    /// line on a terminal, a line per quarter otherwise).
    pub fn new(out: W, verbose: bool, progress: bool) -> Self {
        use std::io::IsTerminal;
        TextListener {
            out,
            verbose,
            progress,
            tty: std::io::stderr().is_terminal(),
            showing: false,
            last_quarter: 0,
        }
    }

    fn clear_progress(&mut self) {
        if self.showing {
            eprint!("\r\x1b[K");
            self.showing = false;
        }
    }
}

impl<W: Write + Send> Listener for TextListener<W> {
    fn entry(&mut self, e: &Entry) {
        if e.detail && !self.verbose {
            return;
        }
        self.clear_progress();
        let _ = writeln!(self.out, "{}", line(e));
        let _ = self.out.flush();
    }

    fn progress(&mut self, elapsed: Duration, total: Duration, pods: usize) {
        if !self.progress || total.is_zero() {
            return;
        }
        let pct = (elapsed.as_secs_f64() / total.as_secs_f64() * 100.0).round() as u32;
        let text = format!(
            "[sim] {} of {} simulated ({pct}%), {pods} pods",
            clock_text(elapsed),
            clock_text(total)
        );
        if self.tty {
            eprint!("\r\x1b[K{text}");
            self.showing = true;
        } else if pct / 25 > self.last_quarter {
            self.last_quarter = pct / 25;
            eprintln!("{text}");
        }
    }
}

impl<W: Write + Send> Drop for TextListener<W> {
    fn drop(&mut self) {
        self.clear_progress();
    }
}

/// Entries of a type, for tests and tools.
pub fn lines_of(report: &Report, kind: EntryType) -> Vec<String> {
    report
        .timeline
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| format!("{} {} {}", e.at, e.object, e.message))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Source;

    #[test]
    fn lines_read_as_sentences() {
        let e = Entry::new(
            Duration::from_secs(302),
            EntryType::Planned,
            "Pod ar/ar-render-0",
            "-> edge-1-a (latency 1ms to stadium)",
            Source::Event,
        );
        assert_eq!(
            line(&e),
            "00:05:02  Planned           Pod ar/ar-render-0 -> edge-1-a (latency 1ms to stadium)"
        );
        let e = Entry::new(
            Duration::from_secs(720),
            EntryType::ComplianceChanged,
            "ConstraintPolicyBinding ar/ar-stadium-1b5b441ca8",
            "Compliant -> Violation: latency 31ms",
            Source::Watch,
        );
        assert_eq!(
            line(&e),
            "00:12:00  ComplianceChanged Binding ar/ar-stadium-1b5b441ca8: Compliant -> Violation: latency 31ms"
        );
    }

    #[test]
    fn a_chain_line_counts_its_lanes_at_the_end_and_its_migrations() {
        use crate::chains::{ChainRecord, ChainSample, LaneState, MigrationRecord};
        let lane = |lane: usize, compliance: &str| LaneState {
            lane,
            hops: Vec::new(),
            latency: None,
            compliance: compliance.into(),
        };
        let migration = |phase: &str| MigrationRecord {
            name: "m".into(),
            vmi: "fw-1".into(),
            binding: None,
            created_at: 360.0,
            source_node: None,
            target_node: None,
            phase: phase.into(),
            ended_at: None,
        };
        let chain = ChainRecord {
            name: "upf/up".into(),
            ingress: None,
            egress: None,
            hops: vec!["fw".into()],
            history: vec![
                ChainSample {
                    at: 0.0,
                    lanes: vec![lane(0, "Pending"), lane(1, "Pending")],
                },
                ChainSample {
                    at: 2.0,
                    lanes: vec![
                        lane(0, "Compliant"),
                        lane(1, "Violation"),
                        lane(2, "Compliant"),
                    ],
                },
            ],
            migrations: vec![migration("Succeeded"), migration("Failed")],
        };
        assert_eq!(
            chain_lines(&[chain]),
            [
                "  chain      upf/up: 3 lanes (2 Compliant, 1 Violation), 2 live migrations (1 succeeded)\n"
            ]
        );
        assert!(chain_lines(&[]).is_empty());
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a bb ccc", 4, "> "), "> a bb\n> ccc\n");
    }
}
