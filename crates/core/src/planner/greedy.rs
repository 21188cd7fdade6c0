//! The baseline: Turnbuckle's pod-by-pod placement. Pods are taken in input (arrival)
//! order, higher priorities first; each goes to the candidate with the least total rule cost given the peers
//! placed before it, among those that put no rule with a placed peer in Violation. It
//! knows nothing of the peers still to come, nor of Limit as such.

use super::candidates::{candidates, first_without_overbooking, guided_rules};
use super::compile::Problem;
use super::objective::Budget;
use super::state::State;

pub(crate) fn solve(p: &Problem<'_>, budget: &mut Budget) -> Vec<u32> {
    let mut st = State::new(p);
    let mut cands = Vec::new();
    let mut scored: Vec<(f64, u32)> = Vec::new();
    // kube-scheduler's queue: higher priority first, then arrival order.
    let mut order: Vec<u32> = (0..p.pods.len() as u32).collect();
    order.sort_by_key(|u| std::cmp::Reverse(p.pods[*u as usize].weight));
    for u in order {
        candidates(&st, u, &mut cands);
        budget.spend(cands.len() as u64 + 1);
        scored.clear();
        for x in &cands {
            let g = guided_rules(&st, u, *x, false);
            if g.actual_violations == 0 {
                scored.push((g.cost, *x));
            }
        }
        if let Some((_, x)) = first_without_overbooking(&st, u, &mut scored, f64::total_cmp) {
            st.place(u, x);
        }
    }
    st.node_of
}
