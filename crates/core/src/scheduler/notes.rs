//! The sentences the scheduler's Events say: where a pod was planned and why there
//! (`Planned`), and what one plan run did (`PlanRun`).

use std::collections::HashMap;

use edgeplane_api::TargetKind;

use super::queue::Due;
use crate::evaluate::ClusterView;
use crate::planner::{BindingPlan, Plan, PodKey, Summary};

/// `planned onto edge-2-a (site edge-2) with 5 other pods: ar-latency-1b5b441ca8 latency
/// 1ms (Compliant), jitter 300us (Compliant); ...`
pub fn planned_note(
    pod: &PodKey,
    node: &str,
    view: &ClusterView,
    placed: usize,
    plan: &Plan,
) -> String {
    planned_note_from(pod, node, view, placed, plan.bindings.iter())
}

/// The bindings of a plan by the pods they name: the notes of a run with thousands of
/// pods and bindings would otherwise scan every binding for every pod.
pub fn bindings_by_pod(plan: &Plan) -> HashMap<(&str, &str), Vec<&BindingPlan>> {
    let mut by_pod: HashMap<(&str, &str), Vec<&BindingPlan>> = HashMap::new();
    for binding in &plan.bindings {
        for target in binding.targets.values() {
            if target.kind == TargetKind::Pod {
                let namespace = target.namespace.as_deref().unwrap_or("default");
                let list = by_pod.entry((namespace, target.name.as_str())).or_default();
                // A binding naming the pod in two roles is listed once.
                if !list.iter().any(|b| std::ptr::eq(*b, binding)) {
                    list.push(binding);
                }
            }
        }
    }
    by_pod
}

/// [`planned_note`] from the bindings that may name the pod.
pub fn planned_note_from<'a>(
    pod: &PodKey,
    node: &str,
    view: &ClusterView,
    placed: usize,
    bindings: impl Iterator<Item = &'a BindingPlan>,
) -> String {
    let graph = view.graph();
    let site = graph
        .node_id(node)
        .map(|id| graph.site_name(graph.site_of(id)).to_string());
    let mut note = format!("planned onto {node}");
    if let Some(site) = site
        && site != node
    {
        note.push_str(&format!(" (site {site})"));
    }
    let others = placed.saturating_sub(1);
    note.push_str(&match others {
        0 => " alone".to_string(),
        1 => " with 1 other pod".to_string(),
        n => format!(" with {n} other pods"),
    });
    let mine: Vec<String> = bindings
        .filter(|b| {
            b.targets.values().any(|t| {
                t.kind == TargetKind::Pod
                    && t.name == pod.name
                    && t.namespace.as_deref().unwrap_or("default") == pod.namespace
            })
        })
        .map(|b| {
            let rules: Vec<String> = b
                .rules
                .iter()
                .map(|r| match &r.value {
                    Some(v) => format!("{} {v} ({})", r.rule, r.compliance.as_str()),
                    None => format!("{} ({})", r.rule, r.compliance.as_str()),
                })
                .collect();
            format!("{} {}", b.name, rules.join(", "))
        })
        .collect();
    if mine.is_empty() {
        note.push_str("; no binding constrains it");
    } else {
        note.push_str(": ");
        note.push_str(&mine.join("; "));
    }
    note
}

/// `plan run 3 (quiet period): 5 pods, 5 placed, 0 unplaced; rules 27 Compliant, 0 Limit,
/// 0 Violation, 0 Error, 0 Pending; exact, proven optimal, 2 ms`: `written` pods were
/// placed (their write succeeded), `unplaced` were not; the search as
/// [`Summary::search_note`] tells it; then, for a plan not proven optimal, the bound and
/// the gap ([`Summary::bound_note`]: `; bound 5 pods (gap 0, 0.0 %), at least 0 rules in
/// Limit at that`).
pub fn run_note(run: u64, due: Due, summary: &Summary, written: usize, unplaced: usize) -> String {
    let s = summary;
    let bound = s.bound_note().map_or(String::new(), |b| format!("; {b}"));
    format!(
        "plan run {run} ({}): {} pods, {written} placed, {unplaced} unplaced; rules {} Compliant, {} Limit, {} Violation, {} Error, {} Pending; {}, {} ms{bound}",
        due.as_str(),
        s.pods,
        s.rules_compliant,
        s.rules_limit,
        s.rules_violation,
        s.rules_error,
        s.rules_pending,
        s.search_note(),
        s.elapsed.as_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::{Method, Summary};

    fn summary() -> Summary {
        Summary {
            pods: 10,
            placed: 10,
            rules_compliant: 12,
            strategy: Some(crate::planner::Strategy::Optimal),
            method: Some(Method::Exact),
            iterations: 200_000,
            ..Summary::default()
        }
    }

    #[test]
    fn a_run_says_proven_optimal_only_when_the_search_finished() {
        let finished = Summary {
            optimal: true,
            ..summary()
        };
        assert_eq!(
            run_note(3, Due::Quiet, &finished, 10, 0),
            "plan run 3 (quiet period): 10 pods, 10 placed, 0 unplaced; rules 12 Compliant, 0 Limit, 0 Violation, 0 Error, 0 Pending; exact, proven optimal, 0 ms"
        );
        // The branch and bound ran out of steps: the plan is the best found, no more.
        let cut = Summary {
            optimal: false,
            stopped: Some(crate::planner::Stop::Iterations),
            ..summary()
        };
        assert_eq!(
            run_note(4, Due::MaxWait, &cut, 10, 0),
            "plan run 4 (max wait): 10 pods, 10 placed, 0 unplaced; rules 12 Compliant, 0 Limit, 0 Violation, 0 Error, 0 Pending; exact search stopped at the iteration budget after 200000 steps: best plan found, not proven optimal, 0 ms"
        );
    }
}
