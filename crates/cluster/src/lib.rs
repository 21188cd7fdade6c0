//! The embedded cluster (WIP).
pub mod api;
pub mod builtin;
pub mod clock;
pub mod error;
pub mod events;
pub mod object;
pub mod patch;
pub mod pdb;
pub mod quantity;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod store;
