//! One module per subcommand.

pub mod bench;
pub mod check;
pub mod crds;
pub mod provider;
mod world;
