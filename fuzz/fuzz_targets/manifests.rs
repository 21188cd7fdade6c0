//! `cargo fuzz run manifests`: see `edgeplane_fuzz::manifests`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeplane_fuzz::manifests::run(data));
