//! `cargo fuzz run values`: see `edgeplane_fuzz::values`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeplane_fuzz::values::run(data));
