//! Fuzzes manifest decoding: any text either decodes or gives an error, never a panic.
#![no_main]

use edgeplane_core::manifests;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(documents) = manifests::parse_documents("fuzz.yaml", text) {
        for doc in &documents {
            let _ = manifests::decode(doc);
        }
    }
});
