//! Manifest decoding: any text either decodes or gives an error naming the document,
//! never a panic.

use edgeplane_core::manifests;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match manifests::parse_documents("fuzz.yaml", text) {
        Ok(documents) => {
            for doc in &documents {
                let _ = manifests::decode(doc);
            }
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.contains("fuzz.yaml"),
                "the error does not name the file: {message}"
            );
        }
    }
}
