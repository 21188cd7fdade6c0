//! `cargo fuzz run --fuzz-dir fuzz/stamp stamp`: see `edgeplane_fuzz_stamp::run`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeplane_fuzz_stamp::run(data));
