//! The value parser, for every unit: it never panics, and whatever parses prints as text
//! that parses back to (nearly) the same value.

use edgeplane_core::values::{Unit, Value};

const UNITS: [Unit; 8] = [
    Unit::Duration,
    Unit::BitRate,
    Unit::Bytes,
    Unit::Cores,
    Unit::Ratio,
    Unit::Number,
    Unit::Bool,
    Unit::Text,
];

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for unit in UNITS {
        let Ok(value) = Value::parse(text, unit) else {
            continue;
        };
        let printed = value.to_string();
        let again = Value::parse(&printed, unit);
        match (
            value.magnitude(),
            again.as_ref().ok().and_then(Value::magnitude),
        ) {
            (Some(a), Some(b)) => {
                let tolerance = 1e-9 * a.abs().max(b.abs()).max(1e-300);
                assert!(
                    (a - b).abs() <= tolerance,
                    "{text:?} -> {printed:?}: {a} vs {b}"
                );
            }
            (None, None) => assert_eq!(Some(&value), again.as_ref().ok()),
            _ => panic!("{text:?} printed as {printed:?}, which does not parse back"),
        }
    }
}
