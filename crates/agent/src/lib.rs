//! edgeplane's node measurement agent: a STAMP (RFC 8762, unauthenticated mode)
//! Session-Sender and Session-Reflector over UDP, and per-peer figures over a sliding
//! window of probes. docs/agent.md tells what is measured and how.
//!
//! Pure modules: [`timestamp`] (wire formats of time), [`packet`] (test packets),
//! [`stats`] (the figures). I/O: [`socket`] (UDP with kernel receive timestamps),
//! [`reflector`], [`sender`].

pub mod bandwidth;
pub mod monitor;
pub mod packet;
pub mod reflector;
pub mod sender;
pub mod socket;
pub mod stats;
pub mod timestamp;

/// The STAMP port assigned by IANA (RFC 8762 section 4.1).
pub const DEFAULT_PORT: u16 = 862;
