//! A (partial) assignment with incremental evaluation: moving a pod re-evaluates only the
//! rules of the bindings it belongs to.

use std::cell::RefCell;

use super::compile::{NONE, Problem};
use super::objective::Score;
use super::podrules::RuleState;

pub(crate) struct State<'p, 'a> {
    pub p: &'p Problem<'a>,
    pub node_of: Vec<u32>,
    pub free: Vec<i64>,
    /// Current value of every constraint (`None`: a member is unplaced).
    pub values: Vec<Option<f64>>,
    /// Pods of the plan on each node.
    pub hosted: Vec<u32>,
    pub score: Score,
    /// The pod rules' counters. Interior mutability lets `score_if` and `allowed` try a
    /// move and undo it, instead of a second implementation of every rule.
    pub rules: RefCell<RuleState>,
    /// Per tracked link (`links`): the bandwidth reserved on it.
    pub load: Vec<f64>,
    /// Links over their capacity, counted in `score.violations`.
    over: u32,
    /// `score_if`'s changes of link loads, kept to spare an allocation per call.
    scratch: RefCell<Vec<(u32, f64)>>,
}

impl<'p, 'a> State<'p, 'a> {
    /// Nothing placed.
    pub fn new(p: &'p Problem<'a>) -> Self {
        let mut st = State {
            p,
            node_of: vec![NONE; p.pods.len()],
            free: p.free0.clone(),
            values: vec![None; p.cons.len()],
            hosted: vec![0; p.node_count()],
            score: Score {
                unplaced: p.pods.iter().map(|pod| pod.weight).sum(),
                broken: p.rules.base.broken,
                soft: p.rules.base.soft,
                ..Score::default()
            },
            rules: RefCell::new(p.rules.base.clone()),
            load: p.links.base.clone(),
            over: 0,
            scratch: RefCell::new(Vec::new()),
        };
        // Rules of bindings with nothing to place are constants.
        for (c, con) in p.cons.iter().enumerate() {
            if con.pods.is_empty() {
                st.values[c] = Some(con.fixed_value);
                st.score.account(Some(con.fixed_value), 1);
            }
        }
        st
    }

    /// The state of a complete assignment (`NONE` for unplaced pods). Placements that do
    /// not fit are dropped.
    pub fn from_assignment(p: &'p Problem<'a>, assignment: &[u32]) -> Self {
        let mut st = State::new(p);
        for (pod, node) in assignment.iter().enumerate() {
            if *node != NONE && p.fits(pod as u32, *node, &st.free) {
                st.place(pod as u32, *node);
            }
        }
        st
    }

    pub fn place(&mut self, pod: u32, node: u32) {
        debug_assert_eq!(self.node_of[pod as usize], NONE);
        let d = self.p.d();
        let req = &self.p.pods[pod as usize].req;
        for (k, r) in req.iter().enumerate() {
            self.free[node as usize * d + k] -= r;
        }
        self.node_of[pod as usize] = node;
        self.hosted[node as usize] += 1;
        self.score.unplaced -= self.p.pods[pod as usize].weight;
        self.refresh(pod);
        self.apply_rules(pod, node, 1);
        self.apply_links(pod, 1.0);
    }

    /// Adds (`sign` 1) or takes back (-1) what the bandwidth rules of `pod`'s complete
    /// bindings reserve, as the pods are placed now.
    fn apply_links(&mut self, pod: u32, sign: f64) {
        let p = self.p;
        if !p.links.active {
            return;
        }
        let node_of = &self.node_of;
        let load = &mut self.load;
        let mut over = self.over as i64;
        for c in &p.pods[pod as usize].cons {
            let c = *c as usize;
            p.links.con_reservations(
                p.graph,
                &p.cons[c].pods,
                &p.cons[c].fixed,
                c,
                |q| node_of[q as usize],
                &mut |e, amount| {
                    let before = p.links.over(e, load[e as usize]);
                    load[e as usize] += sign * amount;
                    over += p.links.over(e, load[e as usize]) as i64 - before as i64;
                },
            );
        }
        let change = over - self.over as i64;
        self.over = over.max(0) as u32;
        self.score.violations = (self.score.violations as i64 + change).max(0) as u32;
    }

    /// How many more links would be over their capacity if `pod` moved to `node`.
    fn links_over_if(&self, pod: u32, node: u32) -> i64 {
        let p = self.p;
        if !p.links.active {
            return 0;
        }
        let mut changes = self.scratch.borrow_mut();
        changes.clear();
        for c in &p.pods[pod as usize].cons {
            let c = *c as usize;
            if p.links.request[c].is_none() {
                continue;
            }
            let con = &p.cons[c];
            p.links.con_reservations(
                p.graph,
                &con.pods,
                &con.fixed,
                c,
                |q| self.node_of[q as usize],
                &mut |e, amount| changes.push((e, -amount)),
            );
            p.links.con_reservations(
                p.graph,
                &con.pods,
                &con.fixed,
                c,
                |q| {
                    if q == pod {
                        node
                    } else {
                        self.node_of[q as usize]
                    }
                },
                &mut |e, amount| changes.push((e, amount)),
            );
        }
        if changes.is_empty() {
            return 0;
        }
        changes.sort_unstable_by_key(|(e, _)| *e);
        let mut delta = 0i64;
        let mut i = 0;
        while i < changes.len() {
            let e = changes[i].0;
            let mut sum = 0.0;
            while i < changes.len() && changes[i].0 == e {
                sum += changes[i].1;
                i += 1;
            }
            let now = self.load[e as usize];
            delta += p.links.over(e, now + sum) as i64 - p.links.over(e, now) as i64;
        }
        delta
    }

    /// Whether moving `pod` to `node` takes a link over its capacity.
    #[inline]
    pub fn overbooks(&self, pod: u32, node: u32) -> bool {
        self.p.links.active && self.links_over_if(pod, node) > 0
    }

    fn apply_rules(&mut self, pod: u32, node: u32, sign: i32) {
        let rules = &self.p.rules;
        let inc = &rules.pods[pod as usize];
        if inc.involved {
            let rs = self.rules.get_mut();
            rs.apply(rules, inc, node, sign);
            self.score.broken = rs.broken;
            self.score.soft = rs.soft;
        }
    }

    /// The pod rules' (broken, soft) if `pod` moved to `node`, tried and undone.
    fn rules_if(&self, pod: u32, node: u32) -> Option<(i64, i64)> {
        let rules = &self.p.rules;
        let inc = &rules.pods[pod as usize];
        if !inc.involved {
            return None;
        }
        let here = self.node_of[pod as usize];
        let mut rs = self.rules.borrow_mut();
        if here != NONE {
            rs.apply(rules, inc, here, -1);
        }
        if node != NONE {
            rs.apply(rules, inc, node, 1);
        }
        let after = (rs.broken, rs.soft);
        if node != NONE {
            rs.apply(rules, inc, node, -1);
        }
        if here != NONE {
            rs.apply(rules, inc, here, 1);
        }
        Some(after)
    }

    /// Whether moving `pod` to `node` breaks no more required pod rules than are broken
    /// now (kube-scheduler's inter-pod filters, both ways).
    #[inline]
    pub fn allowed(&self, pod: u32, node: u32) -> bool {
        // Most pods take part in no rule: answer without touching the rule state.
        if !self.p.rules.pods[pod as usize].involved {
            return true;
        }
        self.rules_if(pod, node)
            .is_none_or(|(broken, _)| broken <= self.score.broken)
    }

    /// Why moving `pod` to `node` breaks a pod rule (`None`: it does not).
    pub fn why_not(&self, pod: u32, node: u32) -> Option<String> {
        let rules = &self.p.rules;
        if !rules.pods[pod as usize].involved || self.node_of[pod as usize] != NONE {
            return None;
        }
        rules.explain(&mut self.rules.borrow_mut(), pod, node)
    }

    pub fn remove(&mut self, pod: u32) {
        let node = self.node_of[pod as usize];
        if node == NONE {
            return;
        }
        let d = self.p.d();
        let req = &self.p.pods[pod as usize].req;
        for (k, r) in req.iter().enumerate() {
            self.free[node as usize * d + k] += r;
        }
        self.apply_links(pod, -1.0);
        self.node_of[pod as usize] = NONE;
        self.hosted[node as usize] -= 1;
        self.score.unplaced += self.p.pods[pod as usize].weight;
        self.refresh(pod);
        self.apply_rules(pod, node, -1);
    }

    /// Moves a pod (to `NONE`: unplaces it).
    pub fn relocate(&mut self, pod: u32, node: u32) {
        self.remove(pod);
        if node != NONE {
            self.place(pod, node);
        }
    }

    fn refresh(&mut self, pod: u32) {
        for c in &self.p.pods[pod as usize].cons {
            let old = self.values[*c as usize];
            let new = self.p.value(*c, |q| self.node_of[q as usize]);
            self.score.account(old, -1);
            self.score.account(new, 1);
            self.values[*c as usize] = new;
        }
    }

    /// Whether [`State::score_floor_if`] gives `pod`'s moves a floor.
    #[inline]
    pub fn floor_applies(&self, pod: u32) -> bool {
        self.over == 0 && !self.p.rules.pods[pod as usize].involved
    }

    /// A score no better than [`State::score_if`]'s, from the pod count and the rules of
    /// its bindings alone, when the move can change neither the pod rules (the pod takes
    /// part in none) nor take a link off over-subscription (none is over): then a move
    /// this does not find better than another is not better either, and the link
    /// reservations need not be asked. `None` otherwise.
    #[inline]
    pub fn score_floor_if(&self, pod: u32, node: u32) -> Option<Score> {
        if !self.floor_applies(pod) {
            return None;
        }
        let mut score = self.score;
        let here = self.node_of[pod as usize];
        let weight = self.p.pods[pod as usize].weight;
        if here == NONE && node != NONE {
            score.unplaced -= weight;
        } else if here != NONE && node == NONE {
            score.unplaced += weight;
        }
        for c in &self.p.pods[pod as usize].cons {
            let new = self.p.value(*c, |q| {
                if q == pod {
                    node
                } else {
                    self.node_of[q as usize]
                }
            });
            score.account(self.values[*c as usize], -1);
            score.account(new, 1);
        }
        Some(score)
    }

    /// The score if `pod` moved to `node` (`NONE`: unplaced); resources are not checked.
    pub fn score_if(&self, pod: u32, node: u32) -> Score {
        let mut score = self.score;
        let here = self.node_of[pod as usize];
        let weight = self.p.pods[pod as usize].weight;
        if here == NONE && node != NONE {
            score.unplaced -= weight;
        } else if here != NONE && node == NONE {
            score.unplaced += weight;
        }
        if self.p.rules.active
            && let Some((broken, soft)) = self.rules_if(pod, node)
        {
            score.broken = broken;
            score.soft = soft;
        }
        if self.p.links.active {
            score.violations =
                (score.violations as i64 + self.links_over_if(pod, node)).max(0) as u32;
        }
        for c in &self.p.pods[pod as usize].cons {
            let new = self.p.value(*c, |q| {
                if q == pod {
                    node
                } else {
                    self.node_of[q as usize]
                }
            });
            score.account(self.values[*c as usize], -1);
            score.account(new, 1);
        }
        score
    }

    /// Whether `pod` fits on `node`, counting what it uses where it is now.
    #[inline]
    pub fn fits(&self, pod: u32, node: u32) -> bool {
        if self.node_of[pod as usize] == node {
            return true;
        }
        self.p.fits(pod, node, &self.free)
    }
}
