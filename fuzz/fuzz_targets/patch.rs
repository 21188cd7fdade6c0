//! `cargo fuzz run patch`: see `edgeplane_fuzz::patch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeplane_fuzz::patch::run(data));
