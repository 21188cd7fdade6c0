//! `cargo fuzz run grpc`: see `edgeplane_fuzz::grpc`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeplane_fuzz::grpc::run(data));
