//! One module per subcommand.

pub mod cluster;
pub mod crds;
