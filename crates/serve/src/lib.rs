//! How edgeplane's servers take connections and requests, with limits, so that one slow,
//! large or hostile client cannot starve the others (issue 23, "servers with limits").
//!
//! - [`backoff`]: the pure policy for waiting after `accept` fails (out of file
//!   descriptors: wait and retry with a growing delay instead of spinning).
//! - [`accept`]: [`Acceptor`] takes connections with that backoff and a cap on open
//!   connections (a slot per connection; at the cap it stops accepting and the kernel's
//!   backlog holds newcomers).
//! - [`http`]: HTTP/1 connections with a request body limit, a header read timeout and a
//!   per-request timeout; each server renders its own refusals (the embedded API server a
//!   `Status` object).
//! - [`grpc`] (feature `grpc`): work slots that shed load with `RESOURCE_EXHAUSTED`, an
//!   interruption flag for work whose caller is gone, and accepted connections for tonic.
//!
//! - [`tls`] (feature `grpc`): TLS and mutual TLS for the gRPC servers and clients, with
//!   certificates re-read from their files when they change.
//!
//! The webhook does its own TLS handshake on an accepted stream and then calls
//! [`http::serve_connection`].

pub mod accept;
pub mod backoff;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod http;
#[cfg(feature = "grpc")]
pub mod tls;

pub use accept::{Accepted, Acceptor, Listen};
pub use backoff::accept_backoff;
pub use http::{HttpLimits, Refusal, Respond};
