//! Kubernetes resource quantities (`100m`, `1.5`, `2Gi`, `1e3`) as integer milli-units, so
//! that cpu and memory add and compare exactly (`9m` is nine millicores, not the
//! `9.000000000000002` a float makes of it).
//!
//! ```
//! use edgeplane_core::quantity::{ceil_units, format_milli, parse_milli};
//!
//! assert_eq!(parse_milli("250m"), Some(250));
//! assert_eq!(parse_milli("0.1"), parse_milli("100m"));
//! assert_eq!(parse_milli("1Ki"), Some(1_024_000));
//! assert_eq!(ceil_units(1_500), 2); // 1.5 bytes of memory count as 2
//! assert_eq!(format_milli(1_500), "1500m");
//! ```

/// Parses a quantity into thousandths of its unit (`"250m"` -> 250, `"1Ki"` -> 1_024_000).
/// Fractions below a milli-unit round up, as `resource.Quantity.MilliValue()` does.
pub fn parse_milli(s: &str) -> Option<i128> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (sign, rest) = match s.as_bytes()[0] {
        b'-' => (-1, &s[1..]),
        b'+' => (1, &s[1..]),
        _ => (1, s),
    };
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (digits, suffix) = rest.split_at(num_end);
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return None;
    }
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    // value = mantissa / 10^frac_len
    let mantissa: i128 = format!("{int_part}{frac_part}").parse().ok()?;
    let frac_len = frac_part.len() as i32;
    // The multiplier as (numerator, power of ten) so binary suffixes stay exact.
    let (mult, pow10): (i128, i32) = match suffix {
        "" => (1, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        e if e.starts_with(['e', 'E']) => (1, e[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    // milli-units: mantissa * mult * 10^(pow10 + 3 - frac_len)
    let exp = pow10 + 3 - frac_len;
    let base = mantissa.checked_mul(mult)?;
    let value = if exp >= 0 {
        base.checked_mul(10i128.checked_pow(exp.unsigned_abs())?)?
    } else {
        let div = 10i128.checked_pow(exp.unsigned_abs())?;
        // round up any fraction of a milli-unit
        (base + div - 1) / div
    };
    Some(sign * value)
}

/// Milli-units rounded up to whole units, as `resource.Quantity.Value()` rounds (the
/// scheduler counts memory, pods and extended resources in whole units).
pub fn ceil_units(milli: i128) -> i128 {
    milli.div_euclid(1000) + i128::from(milli.rem_euclid(1000) != 0)
}

/// Renders milli-units back as a quantity: whole units when exact, else `<n>m`.
pub fn format_milli(milli: i128) -> String {
    if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

/// An amount of `resource` in milli-units as a quantity, for messages: `4`, `250m`; memory
/// in `Gi` or `Mi` when exact.
pub fn format_amount(resource: &str, milli: i128) -> String {
    let bytes = milli / 1000;
    if resource == "memory" && milli % 1000 == 0 && bytes != 0 {
        if bytes % (1 << 30) == 0 {
            return format!("{}Gi", bytes >> 30);
        }
        if bytes % (1 << 20) == 0 {
            return format!("{}Mi", bytes >> 20);
        }
    }
    format_milli(milli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("2Gi"), Some(2 * (1 << 30) * 1000));
        assert_eq!(parse_milli("1Ki"), Some(1_024_000));
        assert_eq!(parse_milli("500M"), Some(500_000_000_000));
        assert_eq!(parse_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_milli("0.1"), Some(100));
        assert_eq!(parse_milli("1n"), Some(1));
        assert_eq!(parse_milli("-2"), Some(-2000));
        assert_eq!(parse_milli("110"), Some(110_000));
        for bad in ["", "abc", "1Qi", "1..2", ".", "1e"] {
            assert_eq!(parse_milli(bad), None, "{bad}");
        }
    }

    #[test]
    fn rounds_up_to_whole_units() {
        assert_eq!(ceil_units(0), 0);
        assert_eq!(ceil_units(1), 1);
        assert_eq!(ceil_units(1000), 1);
        assert_eq!(ceil_units(1001), 2);
        assert_eq!(ceil_units(-1500), -1);
    }

    /// A float reads `9m` as 0.009000000000000001 cores, which the planner used to round
    /// up to 10 millicores; the exact reading keeps 9.
    #[test]
    fn millis_are_exact_where_floats_are_not() {
        assert_eq!(parse_milli("9m"), Some(9));
        assert_eq!(parse_milli("2.007"), Some(2007));
        assert_eq!(parse_milli("0.0001"), Some(1));
    }

    #[test]
    fn formats() {
        assert_eq!(format_milli(2000), "2");
        assert_eq!(format_milli(250), "250m");
    }
}
