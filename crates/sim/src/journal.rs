//! What a run records as it goes: the timeline, and the series the charts are drawn from.
//! The driver and the observer write it; a [`Listener`] hears every entry as it is added
//! (the CLI prints them).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use crate::series::{ComplianceCounts, LinkLatency, PodCounts, Sample, Series};
use crate::timeline::{Entry, EntryType, Source, Timeline};

/// Hears what happens during a run.
pub trait Listener: Send {
    /// An entry was added to the timeline.
    fn entry(&mut self, _entry: &Entry) {}
    /// Simulated time advanced to `elapsed` of `total` (about every 5% of the run).
    fn progress(&mut self, _elapsed: Duration, _total: Duration, _pods: usize) {}
}

/// A listener that ignores everything.
pub struct Silent;

impl Listener for Silent {}

/// The record of a run, shared by the driver and the observer.
///
/// Entries of one instant of virtual time are held until time moves on (or `flush`), so
/// that what happened at one instant can be told together: a pod the planner placed is
/// told by its `Planned` entry, and its `Bound` entry becomes a detail whichever of the
/// two the observer saw first.
pub struct Journal {
    pub timeline: Timeline,
    pub series: Series,
    listener: Box<dyn Listener>,
    pending: Vec<Entry>,
    planned: HashSet<String>,
}

impl Journal {
    pub fn new(listener: Box<dyn Listener>) -> Self {
        Journal {
            timeline: Timeline::new(),
            series: Series::default(),
            listener,
            pending: Vec::new(),
            planned: HashSet::new(),
        }
    }

    /// Adds an entry; entries of an earlier instant go to the timeline (see
    /// `Timeline::push`) and to the listener first.
    pub fn push(&mut self, mut entry: Entry) {
        if self.pending.first().is_some_and(|p| p.at != entry.at) {
            self.flush();
        }
        match entry.kind {
            EntryType::Planned => {
                for p in &mut self.pending {
                    if p.kind == EntryType::Bound && p.object == entry.object {
                        p.detail = true;
                    }
                }
                self.planned.insert(entry.object.clone());
            }
            EntryType::Bound if self.planned.contains(&entry.object) => entry.detail = true,
            // A new binding whose first evaluation meets its policies (or stays within
            // their limits) is part of a placement the Planned entries tell; a first
            // evaluation in Violation is news.
            EntryType::ComplianceChanged if first_evaluation_within_limits(&entry.message) => {
                entry.detail = true
            }
            _ => {}
        }
        if entry.kind == EntryType::PlanRun {
            // The run's summary reads best before the placements it made at that instant
            // (the scheduler reports the run after writing them).
            if let Some(i) = self
                .pending
                .iter()
                .position(|p| matches!(p.kind, EntryType::Planned | EntryType::Unplaceable))
            {
                self.pending.insert(i, entry);
                return;
            }
        }
        self.pending.push(entry);
    }

    /// The object is gone: a new object of the same name starts afresh.
    pub fn forget(&mut self, object: &str) {
        self.planned.remove(object);
    }

    /// Records the held entries.
    pub fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        // Controllers work on many objects at once, so the entries of one instant arrive
        // in no fixed order. Each kind keeps the place of its first entry (the order in
        // which kinds of happenings followed each other) and its entries go by object, so
        // a run reads (and replays) the same every time.
        let mut first: Vec<EntryType> = Vec::new();
        for e in &pending {
            if !first.contains(&e.kind) {
                first.push(e.kind);
            }
        }
        // The scenario's own actions keep their order (the file's).
        let rank = |k: EntryType| first.iter().position(|f| *f == k).unwrap_or(usize::MAX);
        let mut keyed: Vec<(usize, usize, Entry)> = pending
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                (
                    rank(e.kind),
                    if e.source == Source::Driver { i } else { 0 },
                    e,
                )
            })
            .collect();
        keyed.sort_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| a.2.object.cmp(&b.2.object))
        });
        let pending: Vec<Entry> = keyed.into_iter().map(|(_, _, e)| e).collect();
        for e in pending {
            let copy = e.clone();
            if self.timeline.push(e) {
                self.listener.entry(&copy);
            }
        }
    }

    pub fn progress(&mut self, elapsed: Duration, total: Duration, pods: usize) {
        self.flush();
        self.listener.progress(elapsed, total, pods);
    }
}

/// `Pending -> Compliant: ...` (the binding watch) or `binding x: Pending -> Limit: ...`
/// (the binding controller's Event).
fn first_evaluation_within_limits(message: &str) -> bool {
    let transition = message
        .strip_prefix("binding ")
        .and_then(|m| m.split_once(": ").map(|(_, rest)| rest))
        .unwrap_or(message);
    [
        "Pending -> Compliant",
        "Pending -> Limit",
        "new -> Compliant",
        "new -> Limit",
    ]
    .iter()
    .any(|t| transition.starts_with(t))
}

/// A journal behind a lock (never held across an await).
#[derive(Clone)]
pub struct SharedJournal(Arc<Mutex<Journal>>);

impl SharedJournal {
    pub fn new(listener: Box<dyn Listener>) -> Self {
        SharedJournal(Arc::new(Mutex::new(Journal::new(listener))))
    }

    pub fn lock(&self) -> MutexGuard<'_, Journal> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, entry: Entry) {
        self.lock().push(entry);
    }

    /// At the end of a run: the timeline's entries and the series, flushed and taken out.
    pub fn take_recorded(&self) -> (Vec<Entry>, Series) {
        let mut j = self.lock();
        j.flush();
        let entries = std::mem::take(&mut j.timeline).into_entries();
        (entries, std::mem::take(&mut j.series))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_evaluations_within_limits_are_details() {
        assert!(first_evaluation_within_limits(
            "Pending -> Compliant: latency 1ms"
        ));
        assert!(first_evaluation_within_limits(
            "binding ar-1: Pending -> Limit: latency 3ms"
        ));
        assert!(!first_evaluation_within_limits(
            "Pending -> Violation: latency 9ms"
        ));
        assert!(!first_evaluation_within_limits(
            "Compliant -> Limit: latency 3ms"
        ));
    }

    #[test]
    fn a_plan_run_is_told_before_its_placements() {
        let mut j = Journal::new(Box::new(Silent));
        let at = Duration::from_secs(2);
        let e = |kind, object: &str| Entry::new(at, kind, object, "m", Source::Event);
        j.push(e(EntryType::Note, "Note"));
        j.push(e(EntryType::Planned, "Pod a"));
        j.push(e(EntryType::Planned, "Pod b"));
        j.push(e(EntryType::PlanRun, "Lease l"));
        j.flush();
        let kinds: Vec<EntryType> = j.timeline.entries().iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EntryType::Note,
                EntryType::PlanRun,
                EntryType::Planned,
                EntryType::Planned
            ]
        );
    }
}
