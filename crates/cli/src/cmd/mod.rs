//! One module per subcommand.

pub mod bench;
pub mod bench_planner;
pub mod check;
pub mod crds;
pub mod plan;
