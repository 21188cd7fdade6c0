//! The planning scheduler's decisions (design.md section 5), as pure functions; the
//! runtime's `scheduler` observes the caches, calls them, and performs what they decide.
//!
//! - [`queue`]: when to plan (quiet period, maximum wait, retries with backoff);
//! - [`input`]: what the planner sees (nodes, placed and pending pods, bindings from the
//!   offers) from what the caches hold;
//! - [`compiled`]: the caches' objects compiled for [`input`] and kept between plan runs
//!   (compiled again only when they change);
//! - [`decide`]: from a plan to the writes (one per placed pod), and from the answers to
//!   those writes to what is retried, which pods stay unplaced and why, and the Events;
//! - [`patches`]: the bodies of those writes (node affinity + gate removal, pods/binding,
//!   the unplaced-reason annotation);
//! - [`notes`]: the sentences of the `Planned` and `PlanRun` Events.

pub mod compiled;
pub mod decide;
pub mod input;
pub mod notes;
pub mod patches;
pub mod pod_state;
pub mod queue;

/// How pods are placed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Node affinity + gate removal; kube-scheduler binds.
    #[default]
    Gate,
    /// A secondary scheduler (`schedulerName: edgeplane`) that binds.
    Bind,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Gate => "gate",
            Mode::Bind => "bind",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "gate" => Some(Mode::Gate),
            "bind" => Some(Mode::Bind),
            _ => None,
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
