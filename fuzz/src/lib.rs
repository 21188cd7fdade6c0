//! The fuzz targets of edgeplane, as plain functions of the input bytes.
//!
//! Each target either returns or panics: a panic is a bug, either in the code under test
//! (it must answer any input with an error, never a panic) or in the property the target
//! checks. The same functions run in two ways:
//! - `cargo fuzz run TARGET` (nightly; `scripts/fuzz`) drives them with coverage guidance
//!   through the thin wrappers in `fuzz_targets/`;
//! - `tests/replay.rs` runs them on stable in every `cargo test`: each target over its
//!   corpus (`fuzz/corpus/TARGET/`) and a fixed number of inputs mutated from it with a
//!   fixed seed, so CI exercises every target on every run, deterministically.

pub mod admission;
pub mod api_request;
pub mod grpc;
pub mod manifests;
pub mod mutate;
pub mod patch;
pub mod planner;
pub mod selector;
/// The STAMP parser's target lives in its own package (`fuzz/stamp`), so `cargo fuzz`
/// builds it without the rest of the workspace.
pub use edgeplane_fuzz_stamp as stamp;
pub mod values;

/// A target: what `fuzz_target!` and the replay test call.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz_targets/NAME.rs` and `corpus/NAME/` name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("admission", admission::run),
    ("api_request", api_request::run),
    ("grpc", grpc::run),
    ("manifests", manifests::run),
    ("patch", patch::run),
    ("planner", planner::run),
    ("selector", selector::run),
    ("stamp", stamp::run),
    ("values", values::run),
];

/// One current-thread runtime per thread for the async targets: building one per input
/// would dominate the time of each run.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds");
    }
    RUNTIME.with(|rt| rt.block_on(future))
}
