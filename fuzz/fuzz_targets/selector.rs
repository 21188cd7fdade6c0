//! `cargo fuzz run selector`: see `edgeplane_fuzz::selector`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeplane_fuzz::selector::run(data));
