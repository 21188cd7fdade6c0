//! `cargo fuzz run planner`: see `edgeplane_fuzz::planner`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeplane_fuzz::planner::run(data));
