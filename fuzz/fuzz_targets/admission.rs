//! `cargo fuzz run admission`: see `edgeplane_fuzz::admission`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeplane_fuzz::admission::run(data));
