//! `cargo fuzz run api_request`: see `edgeplane_fuzz::api_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeplane_fuzz::api_request::run(data));
