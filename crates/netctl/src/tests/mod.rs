//! Tests of the crate: the wire format and the gRPC client and server (`grpc`), and the
//! reference controller on the embedded cluster (`reference`).

#![allow(clippy::unwrap_used)] // tests may unwrap what they built

mod grpc;
mod reference;
mod tls;

use crate::PolicyRule;

pub fn rule(name: &str, request: &str, limit: &str) -> PolicyRule {
    PolicyRule {
        name: name.into(),
        request: request.into(),
        limit: (!limit.is_empty()).then(|| limit.to_string()),
    }
}
