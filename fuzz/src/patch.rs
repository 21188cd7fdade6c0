//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902) as the embedded API server applies
//! them. The input is two JSON documents (the object, then the patch) separated by a line
//! holding only `---`. Neither may panic; a merge patch is idempotent (RFC 7386 section
//! 1), and a JSON patch that fails leaves the object as it was.

use edgeplane_cluster::patch::{json_patch, merge_patch};
use serde_json::Value;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some((object, patch)) = text.split_once("\n---\n") else {
        return;
    };
    let (Ok(object), Ok(patch)) = (
        serde_json::from_str::<Value>(object),
        serde_json::from_str::<Value>(patch),
    ) else {
        return;
    };

    let mut once = object.clone();
    merge_patch(&mut once, &patch);
    let mut twice = once.clone();
    merge_patch(&mut twice, &patch);
    assert_eq!(
        once, twice,
        "a merge patch applied twice changed the object again"
    );

    let mut target = object.clone();
    if json_patch(&mut target, &patch).is_err() {
        assert_eq!(
            target, object,
            "a JSON patch that failed changed the object"
        );
    }
}
