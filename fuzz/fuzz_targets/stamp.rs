//! `cargo fuzz run stamp`: see `edgeplane_fuzz::stamp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeplane_fuzz::stamp::run(data));
