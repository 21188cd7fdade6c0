//! Values of rules and measurements: durations, bit rates, byte quantities, CPU cores,
//! ratios, plain numbers, booleans and text.
//!
//! A value is always parsed *for a unit*: the rule's provider says whether it expects a
//! duration or a bit rate, so `10M` can be read as ten megabytes per second for bandwidth
//! (Turnbuckle wrote bandwidth as a bare Kubernetes quantity) and rejected for latency.
//! Quantities are stored as an `f64` in the unit's base (nanoseconds, bits per second,
//! bytes, cores, fraction): measurement noise dwarfs floating-point error, and it keeps
//! arithmetic on paths (sums, minima, products) simple.

use std::fmt;

/// What kind of value a rule or a provider expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Nanoseconds. Text: `250ns 10us 10µs 1.5ms 2s 1m 1h`, or compound `1m30s`.
    Duration,
    /// Bits per second. Text: `100bps 10Kbps 1Mbps 1Gbps 1Tbps` (decimal), byte rates
    /// `B/s KB/s MB/s GB/s TB/s KiB/s MiB/s GiB/s TiB/s`, or a bare Kubernetes quantity
    /// (`1MiB`, `1Mi`, `10G`, `500`) read as bytes per second.
    BitRate,
    /// Bytes. Text: a Kubernetes quantity (`8Gi`, `512M`, `1e9`), optionally with a
    /// trailing `B` (`8GiB`).
    Bytes,
    /// CPU cores. Text: a Kubernetes CPU quantity (`4`, `1.5`, `500m`).
    Cores,
    /// A fraction between 0 and 1. Text: `0.1%` or `0.001`.
    Ratio,
    /// A plain number.
    Number,
    /// `true` or `false`.
    Bool,
    /// Free text, compared for equality (for example `key=value` for node labels).
    Text,
}

impl Unit {
    /// A short noun for messages: `"5 minutes" is not a duration`.
    pub fn noun(self) -> &'static str {
        match self {
            Unit::Duration => "a duration",
            Unit::BitRate => "a bit rate",
            Unit::Bytes => "a byte quantity",
            Unit::Cores => "a CPU quantity",
            Unit::Ratio => "a ratio",
            Unit::Number => "a number",
            Unit::Bool => "a boolean",
            Unit::Text => "text",
        }
    }

    fn examples(self) -> &'static str {
        match self {
            Unit::Duration => "250ns, 10us, 1.5ms, 2s, 1m, 1h",
            Unit::BitRate => "100Mbps, 1Gbps, 10MB/s, 1MiB",
            Unit::Bytes => "512Mi, 8Gi, 1G",
            Unit::Cores => "4, 1.5, 500m",
            Unit::Ratio => "0.1%, 0.001",
            Unit::Number => "3, 2.5",
            Unit::Bool => "true, false",
            Unit::Text => "any text",
        }
    }
}

/// A parsed value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number in the base of its unit (never Bool or Text).
    Quantity {
        unit: Unit,
        magnitude: f64,
    },
    Bool(bool),
    Text(String),
}

/// A value that did not parse; names the text and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not {noun} (expected for example {examples}){detail}", noun = unit.noun(), examples = unit.examples())]
pub struct ValueError {
    pub text: String,
    pub unit: Unit,
    /// Extra detail, starting with `: ` when present.
    pub detail: String,
}

impl ValueError {
    fn new(text: &str, unit: Unit) -> Self {
        ValueError {
            text: text.to_string(),
            unit,
            detail: String::new(),
        }
    }

    fn with_detail(text: &str, unit: Unit, detail: &str) -> Self {
        ValueError {
            text: text.to_string(),
            unit,
            detail: format!(": {detail}"),
        }
    }
}

const NS_PER_US: f64 = 1e3;
const NS_PER_MS: f64 = 1e6;
const NS_PER_S: f64 = 1e9;
const NS_PER_M: f64 = 60e9;
const NS_PER_H: f64 = 3600e9;

impl Value {
    /// Parses `text` as a value of `unit`.
    pub fn parse(text: &str, unit: Unit) -> Result<Value, ValueError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ValueError::with_detail(text, unit, "empty"));
        }
        let quantity = |magnitude: f64| {
            if magnitude.is_finite() && magnitude >= 0.0 {
                Ok(Value::Quantity { unit, magnitude })
            } else {
                Err(ValueError::with_detail(text, unit, "out of range"))
            }
        };
        match unit {
            Unit::Duration => {
                let ns = parse_duration(trimmed).ok_or_else(|| ValueError::new(text, unit))?;
                // Go's durations (what Kubernetes and Turnbuckle read) are i64 nanoseconds:
                // a longer one is not a duration anywhere else, and would wrap or saturate.
                if ns > i64::MAX as f64 {
                    return Err(ValueError::with_detail(
                        text,
                        unit,
                        "out of range (the longest duration is 2562047h47m16.854775807s)",
                    ));
                }
                quantity(ns)
            }
            Unit::BitRate => {
                quantity(parse_bit_rate(trimmed).ok_or_else(|| ValueError::new(text, unit))?)
            }
            Unit::Bytes => {
                quantity(parse_bytes(trimmed).ok_or_else(|| ValueError::new(text, unit))?)
            }
            Unit::Cores => {
                quantity(parse_cores(trimmed).ok_or_else(|| ValueError::new(text, unit))?)
            }
            Unit::Ratio => {
                let ratio = parse_ratio(trimmed).ok_or_else(|| ValueError::new(text, unit))?;
                if ratio > 1.0 {
                    return Err(ValueError::with_detail(
                        text,
                        unit,
                        "a ratio is at most 1 (100%)",
                    ));
                }
                quantity(ratio)
            }
            Unit::Number => {
                let n = parse_decimal(trimmed).ok_or_else(|| ValueError::new(text, unit))?;
                quantity(n)
            }
            Unit::Bool => match trimmed.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(ValueError::new(text, unit)),
            },
            Unit::Text => Ok(Value::Text(trimmed.to_string())),
        }
    }

    /// Builds a quantity; callers guarantee a finite, non-negative magnitude.
    pub fn quantity(unit: Unit, magnitude: f64) -> Value {
        Value::Quantity { unit, magnitude }
    }

    pub fn duration_ns(ns: f64) -> Value {
        Value::quantity(Unit::Duration, ns)
    }

    pub fn bits_per_second(bps: f64) -> Value {
        Value::quantity(Unit::BitRate, bps)
    }

    pub fn ratio(fraction: f64) -> Value {
        Value::quantity(Unit::Ratio, fraction)
    }

    /// The unit of the value.
    pub fn unit(&self) -> Unit {
        match self {
            Value::Quantity { unit, .. } => *unit,
            Value::Bool(_) => Unit::Bool,
            Value::Text(_) => Unit::Text,
        }
    }

    /// The magnitude of a quantity in its unit's base.
    pub fn magnitude(&self) -> Option<f64> {
        match self {
            Value::Quantity { magnitude, .. } => Some(*magnitude),
            _ => None,
        }
    }
}

/// Parses a duration field (period, grace) into a `std::time::Duration`.
pub fn parse_duration_field(text: &str) -> Result<std::time::Duration, ValueError> {
    let ns = Value::parse(text, Unit::Duration)?
        .magnitude()
        .unwrap_or_default();
    if ns > 1e18 {
        return Err(ValueError::with_detail(
            text,
            Unit::Duration,
            "longer than 30 years",
        ));
    }
    Ok(std::time::Duration::from_nanos(ns.round() as u64))
}

/// Prints a `std::time::Duration` the way durations are written in specs.
pub fn format_duration(duration: std::time::Duration) -> String {
    Value::duration_ns(duration.as_nanos() as f64).to_string()
}

impl fmt::Display for Value {
    /// Prints the value in its most readable unit; the text parses back to the same value
    /// (up to floating-point rounding in the last digit).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(t) => f.write_str(t),
            Value::Quantity { unit, magnitude } => {
                let m = *magnitude;
                match unit {
                    Unit::Duration => {
                        let scales = [
                            (NS_PER_H, "h"),
                            (NS_PER_M, "m"),
                            (NS_PER_S, "s"),
                            (NS_PER_MS, "ms"),
                            (NS_PER_US, "us"),
                        ];
                        write_scaled(f, m, &scales, "ns")
                    }
                    Unit::BitRate => {
                        let scales = [(1e12, "Tbps"), (1e9, "Gbps"), (1e6, "Mbps"), (1e3, "Kbps")];
                        write_scaled(f, m, &scales, "bps")
                    }
                    Unit::Bytes => write_bytes(f, m),
                    Unit::Cores => {
                        if m != 0.0 && m < 1.0 && (m * 1000.0).fract() == 0.0 {
                            write!(f, "{}m", m * 1000.0)
                        } else {
                            write!(f, "{}", round_sig(m))
                        }
                    }
                    Unit::Ratio => write!(f, "{}%", round_sig(m * 100.0)),
                    Unit::Number | Unit::Bool | Unit::Text => write!(f, "{}", round_sig(m)),
                }
            }
        }
    }
}

/// Rounds to 12 significant digits so printing does not show binary noise such as
/// `1.5000000000000002ms`, while keeping far more precision than any measurement has.
fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 12 - 1 - x.abs().log10().floor() as i32;
    if !(-300..=300).contains(&digits) {
        return x;
    }
    let factor = 10f64.powi(digits);
    let rounded = (x * factor).round() / factor;
    if rounded.is_finite() { rounded } else { x }
}

fn write_scaled(
    f: &mut fmt::Formatter<'_>,
    m: f64,
    scales: &[(f64, &str)],
    base: &str,
) -> fmt::Result {
    for (scale, suffix) in scales {
        if m >= *scale {
            return write!(f, "{}{suffix}", round_sig(m / scale));
        }
    }
    write!(f, "{}{base}", round_sig(m))
}

fn write_bytes(f: &mut fmt::Formatter<'_>, m: f64) -> fmt::Result {
    // Of the exact spellings (binary or decimal suffix), the shortest reads best:
    // 4e9 is `4G`, not `3906250Ki`; 8 * 2^30 is `8Gi`.
    let mut best = round_sig(m).to_string();
    if m >= 1.0 && m.fract() == 0.0 {
        let scales = [
            (1024f64.powi(5), "Pi"),
            (1024f64.powi(4), "Ti"),
            (1024f64.powi(3), "Gi"),
            (1024f64.powi(2), "Mi"),
            (1024.0, "Ki"),
            (1e15, "P"),
            (1e12, "T"),
            (1e9, "G"),
            (1e6, "M"),
            (1e3, "k"),
        ];
        for (scale, suffix) in scales {
            if m >= scale && (m / scale).fract() == 0.0 {
                let candidate = format!("{}{suffix}", m / scale);
                if candidate.len() < best.len() {
                    best = candidate;
                }
            }
        }
    }
    f.write_str(&best)
}

/// Splits `12.5ms` into (12.5, "ms"). The number is `digits[.digits]` or `.digits`.
fn split_number(text: &str) -> Option<(f64, &str)> {
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(end);
    Some((parse_plain_number(number)?, rest))
}

/// `12`, `12.5`, `.5`; no sign, no exponent, at most one dot, at least one digit.
fn parse_plain_number(number: &str) -> Option<f64> {
    if number.is_empty()
        || number == "."
        || number.matches('.').count() > 1
        || number.ends_with('.')
    {
        return None;
    }
    number.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A decimal number with an optional exponent (`1e3`, `2.5E-2`); no sign.
fn parse_decimal(text: &str) -> Option<f64> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mantissa = parse_plain_number(mantissa)?;
    let exponent: i32 = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            e.parse().ok()?
        }
    };
    let value = mantissa * 10f64.powi(exponent);
    value.is_finite().then_some(value)
}

fn parse_duration(text: &str) -> Option<f64> {
    if text == "0" {
        return Some(0.0);
    }
    let mut rest = text;
    let mut total = 0.0;
    while !rest.is_empty() {
        let (number, after) = split_number(rest)?;
        let unit_end = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map(|(i, _)| i)
            .unwrap_or(after.len());
        let (unit, tail) = after.split_at(unit_end);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => NS_PER_US,
            "ms" => NS_PER_MS,
            "s" => NS_PER_S,
            "m" => NS_PER_M,
            "h" => NS_PER_H,
            _ => return None,
        };
        total += number * scale;
        rest = tail;
    }
    total.is_finite().then_some(total)
}

/// Kubernetes quantity suffixes: binary (Ki..Ei), decimal (k..E), and milli.
fn quantity_suffix(suffix: &str) -> Option<f64> {
    Some(match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    })
}

/// A Kubernetes quantity: a decimal number (exponent allowed) and an optional suffix.
fn parse_quantity(text: &str) -> Option<f64> {
    let suffix_start = text
        .char_indices()
        .find(|(i, c)| {
            // An `e`/`E` followed by a digit or sign is an exponent, not the Exa suffix.
            let exponent = (*c == 'e' || *c == 'E')
                && text[i + 1..].starts_with(|n: char| n.is_ascii_digit() || n == '+' || n == '-');
            !(c.is_ascii_digit() || *c == '.' || exponent || ((*c == '+' || *c == '-') && *i > 0))
        })
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(suffix_start);
    Some(parse_decimal(number)? * quantity_suffix(suffix)?)
}

fn parse_bytes(text: &str) -> Option<f64> {
    // `8GiB` and `8GB` are common spellings of `8Gi` and `8G`; a lone `B` means bytes.
    let text = match text.strip_suffix('B') {
        Some(stripped) if !stripped.ends_with('m') => stripped,
        _ => text,
    };
    parse_quantity(text)
}

fn parse_bit_rate(text: &str) -> Option<f64> {
    let (number, unit) = split_number(text)?;
    let bits = match unit {
        "bps" => Some(1.0),
        "Kbps" | "kbps" => Some(1e3),
        "Mbps" => Some(1e6),
        "Gbps" => Some(1e9),
        "Tbps" => Some(1e12),
        "B/s" => Some(8.0),
        "KB/s" | "kB/s" => Some(8e3),
        "MB/s" => Some(8e6),
        "GB/s" => Some(8e9),
        "TB/s" => Some(8e12),
        "KiB/s" => Some(8.0 * 1024.0),
        "MiB/s" => Some(8.0 * 1024f64.powi(2)),
        "GiB/s" => Some(8.0 * 1024f64.powi(3)),
        "TiB/s" => Some(8.0 * 1024f64.powi(4)),
        _ => None,
    };
    match bits {
        Some(scale) => Some(number * scale),
        // Anything else must be a bare Kubernetes quantity of bytes per second.
        None => parse_bytes(text).map(|bytes| bytes * 8.0),
    }
}

fn parse_cores(text: &str) -> Option<f64> {
    parse_quantity(text)
}

fn parse_ratio(text: &str) -> Option<f64> {
    match text.strip_suffix('%') {
        Some(percent) => parse_decimal(percent.trim_end()).map(|p| p / 100.0),
        None => parse_decimal(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(text: &str, unit: Unit) -> f64 {
        match Value::parse(text, unit) {
            Ok(v) => v.magnitude().unwrap_or(f64::NAN),
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
    }

    #[test]
    fn durations() {
        for (text, ns) in [
            ("250ns", 250.0),
            ("10us", 10e3),
            ("10µs", 10e3),
            ("1.5ms", 1.5e6),
            ("2s", 2e9),
            ("1m", 60e9),
            ("1h", 3600e9),
            ("1m30s", 90e9),
            ("0", 0.0),
            (".5ms", 0.5e6),
        ] {
            assert!(close(q(text, Unit::Duration), ns), "{text}");
        }
        for bad in [
            "5 minutes",
            "ms",
            "5",
            "-1ms",
            "1.2.3ms",
            "5msx",
            "1d",
            "",
            "5.ms",
        ] {
            assert!(
                Value::parse(bad, Unit::Duration).is_err(),
                "{bad} should not parse"
            );
        }
    }

    #[test]
    fn bit_rates_and_byte_rates() {
        for (text, bps) in [
            ("100bps", 100.0),
            ("10Kbps", 10e3),
            ("1Mbps", 1e6),
            ("1Gbps", 1e9),
            ("1Tbps", 1e12),
            ("1B/s", 8.0),
            ("10MB/s", 80e6),
            ("1KiB/s", 8192.0),
            ("1GiB/s", 8.0 * 1024f64.powi(3)),
            // Bare quantities are bytes per second, as Turnbuckle wrote them.
            ("1MiB", 8.0 * 1024f64.powi(2)),
            ("1Mi", 8.0 * 1024f64.powi(2)),
            ("10G", 80e9),
            ("500", 4000.0),
        ] {
            assert!(
                close(q(text, Unit::BitRate), bps),
                "{text}: {}",
                q(text, Unit::BitRate)
            );
        }
        for bad in ["fast", "1Xbps", "Mbps", "1 Gbps/s", "-1Mbps"] {
            assert!(
                Value::parse(bad, Unit::BitRate).is_err(),
                "{bad} should not parse"
            );
        }
    }

    #[test]
    fn bytes_cores_ratios_numbers_bools() {
        assert!(close(q("8Gi", Unit::Bytes), 8.0 * 1024f64.powi(3)));
        assert!(close(q("8GiB", Unit::Bytes), 8.0 * 1024f64.powi(3)));
        assert!(close(q("4G", Unit::Bytes), 4e9));
        assert!(close(q("1e3", Unit::Bytes), 1000.0));
        assert!(close(q("500m", Unit::Cores), 0.5));
        assert!(close(q("4", Unit::Cores), 4.0));
        assert!(close(q("0.1%", Unit::Ratio), 0.001));
        assert!(close(q("0.001", Unit::Ratio), 0.001));
        assert!(close(q("100%", Unit::Ratio), 1.0));
        assert!(close(q("2.5", Unit::Number), 2.5));
        assert_eq!(Value::parse("true", Unit::Bool), Ok(Value::Bool(true)));
        assert_eq!(Value::parse("False", Unit::Bool), Ok(Value::Bool(false)));
        assert_eq!(
            Value::parse(" zone=a ", Unit::Text),
            Ok(Value::Text("zone=a".into()))
        );
        for (bad, unit) in [
            ("150%", Unit::Ratio),
            ("2", Unit::Ratio),
            ("yes", Unit::Bool),
            ("4 cores", Unit::Cores),
            ("1e999", Unit::Number),
            ("", Unit::Text),
        ] {
            assert!(
                Value::parse(bad, unit).is_err(),
                "{bad} should not parse as {unit:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_text_and_the_unit() {
        let err = Value::parse("5 minutes", Unit::Duration)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "\"5 minutes\" is not a duration (expected for example 250ns, 10us, 1.5ms, 2s, 1m, 1h)"
            )
        );
        let err = Value::parse("150%", Unit::Ratio)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(
            |e| e.starts_with("\"150%\" is not a ratio") && e.ends_with("at most 1 (100%)")
        ));
    }

    #[test]
    fn printing_picks_a_readable_unit() {
        let cases = [
            (Value::duration_ns(1.5e6), "1.5ms"),
            (Value::duration_ns(250.0), "250ns"),
            (Value::duration_ns(90e9), "1.5m"),
            (Value::duration_ns(3.2e6), "3.2ms"),
            (Value::bits_per_second(850e6), "850Mbps"),
            (
                Value::bits_per_second(8.0 * 1024.0 * 1024.0),
                "8.388608Mbps",
            ),
            (Value::quantity(Unit::Bytes, 8.0 * 1024f64.powi(3)), "8Gi"),
            (Value::quantity(Unit::Bytes, 4e9), "4G"),
            (Value::quantity(Unit::Cores, 0.5), "500m"),
            (Value::quantity(Unit::Cores, 4.0), "4"),
            (Value::ratio(0.0001), "0.01%"),
            (Value::Bool(true), "true"),
        ];
        for (value, text) in cases {
            assert_eq!(value.to_string(), text);
        }
    }

    #[test]
    fn canonical_texts_round_trip_exactly() {
        for (text, unit) in [
            ("250ns", Unit::Duration),
            ("1.5ms", Unit::Duration),
            ("2s", Unit::Duration),
            ("1h", Unit::Duration),
            ("100Mbps", Unit::BitRate),
            ("1Gbps", Unit::BitRate),
            ("8Gi", Unit::Bytes),
            ("500m", Unit::Cores),
            ("0.01%", Unit::Ratio),
            ("false", Unit::Bool),
        ] {
            let value = Value::parse(text, unit).expect(text);
            assert_eq!(value.to_string(), text);
        }
    }

    fn unit_strategy() -> impl Strategy<Value = Unit> {
        prop_oneof![
            Just(Unit::Duration),
            Just(Unit::BitRate),
            Just(Unit::Bytes),
            Just(Unit::Cores),
            Just(Unit::Ratio),
            Just(Unit::Number),
        ]
    }

    proptest! {
        /// print then parse gives the value back, for any magnitude and unit.
        #[test]
        fn print_parse_round_trip(unit in unit_strategy(), mantissa in 0.0f64..1000.0, exp in -6i32..9) {
            let mut magnitude = mantissa * 10f64.powi(exp);
            if unit == Unit::Ratio { magnitude = magnitude.min(1.0); }
            let value = Value::quantity(unit, magnitude);
            let text = value.to_string();
            let parsed = Value::parse(&text, unit).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = parsed.magnitude().unwrap_or(f64::NAN);
            prop_assert!((back - magnitude).abs() <= 1e-9 * magnitude.abs().max(1e-9),
                "{magnitude} printed as {text} parsed as {back}");
        }

        /// Integer durations in every unit parse to the expected number of nanoseconds.
        #[test]
        fn integer_durations(n in 0u32..100_000, unit in prop::sample::select(vec![("ns", 1.0), ("us", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)])) {
            let text = format!("{n}{}", unit.0);
            let ns = Value::parse(&text, Unit::Duration).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(ns.magnitude(), Some(f64::from(n) * unit.1));
        }

        /// The parser never panics, whatever the text and unit.
        #[test]
        fn parse_never_panics(text in ".{0,24}", unit in unit_strategy()) {
            let _ = Value::parse(&text, unit);
        }
    }
}
