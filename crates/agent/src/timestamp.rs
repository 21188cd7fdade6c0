//! The two timestamp formats of STAMP (RFC 8762 section 4.2.1) and the Error Estimate
//! field (RFC 4656 section 4.1.2, with the Z bit of RFC 8186).
//!
//! Inside the agent a time is an `i64` of nanoseconds since the Unix epoch (1970), the
//! clock that `SystemTime` and the kernel's `SO_TIMESTAMPNS` both read; the formats below
//! are only how such a time travels on the wire.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch.
pub type Nanos = i64;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const NTP_UNIX_OFFSET_SECONDS: i64 = 2_208_988_800;

/// Which format a timestamp field holds; the Z bit of the field's Error Estimate says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampFormat {
    /// NTP 64-bit: 32 bits of seconds since 1900, 32 bits of binary fraction.
    #[default]
    Ntp,
    /// PTPv2 truncated: 32 bits of seconds since 1970, 32 bits of nanoseconds.
    Ptp,
}

/// A field that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("PTP timestamp has {0} nanoseconds (at most 999999999)")]
    PtpNanoseconds(u32),
}

/// The wall clock now, as the agent stamps packets with it.
pub fn now() -> Nanos {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        // A clock set before 1970 is broken, but it is still a clock: keep its sign.
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// Writes `time` in `format`. NTP seconds wrap in 2036 and PTP's 32-bit seconds in 2106:
/// both are taken modulo 2^32, as on the wire.
pub fn encode(time: Nanos, format: TimestampFormat) -> [u8; 8] {
    let seconds = time.div_euclid(NANOS_PER_SECOND);
    let nanos = time.rem_euclid(NANOS_PER_SECOND) as u64; // in 0..1e9
    let (high, low) = match format {
        TimestampFormat::Ntp => {
            let ntp_seconds = (seconds + NTP_UNIX_OFFSET_SECONDS).rem_euclid(1 << 32) as u32;
            // Rounded to the nearest 2^-32 s; 999_999_999 ns stays below 2^32.
            let fraction = ((nanos << 32) + 500_000_000) / 1_000_000_000;
            (ntp_seconds, fraction as u32)
        }
        TimestampFormat::Ptp => (seconds.rem_euclid(1 << 32) as u32, nanos as u32),
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&high.to_be_bytes());
    out[4..].copy_from_slice(&low.to_be_bytes());
    out
}

/// Reads a timestamp field in `format`.
///
/// NTP seconds with the top bit clear are read in era 1 (from 2036-02-07), as RFC 4330
/// section 3 suggests, so that the agent keeps working across the 2036 wrap.
pub fn decode(bytes: [u8; 8], format: TimestampFormat) -> Result<Nanos, TimestampError> {
    let high = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let low = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    match format {
        TimestampFormat::Ntp => {
            let era_seconds = if high & 0x8000_0000 != 0 {
                i64::from(high)
            } else {
                i64::from(high) + (1 << 32)
            };
            let nanos = (u64::from(low) * 1_000_000_000 + (1 << 31)) >> 32;
            Ok((era_seconds - NTP_UNIX_OFFSET_SECONDS) * NANOS_PER_SECOND + nanos as i64)
        }
        TimestampFormat::Ptp => {
            if low >= 1_000_000_000 {
                return Err(TimestampError::PtpNanoseconds(low));
            }
            Ok(i64::from(high) * NANOS_PER_SECOND + i64::from(low))
        }
    }
}

/// The Error Estimate field: `S Z Scale(6) Multiplier(8)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorEstimate {
    /// S: the clock is synchronized to UTC by an external source.
    pub synchronized: bool,
    /// Z: the format of the timestamps this estimate applies to.
    pub format: TimestampFormat,
    /// 6 bits: the error is `multiplier * 2^(scale - 32)` seconds.
    pub scale: u8,
    pub multiplier: u8,
}

impl ErrorEstimate {
    /// About 1 µs (2^-20 s): what a kernel receive timestamp of a loaded host is good
    /// for; the agent claims no better than that.
    pub fn microsecond(synchronized: bool, format: TimestampFormat) -> ErrorEstimate {
        ErrorEstimate {
            synchronized,
            format,
            scale: 12,
            multiplier: 1,
        }
    }

    pub fn to_bits(self) -> u16 {
        let s = u16::from(self.synchronized) << 15;
        let z = u16::from(self.format == TimestampFormat::Ptp) << 14;
        s | z | (u16::from(self.scale & 0x3f) << 8) | u16::from(self.multiplier)
    }

    /// Every 16-bit value reads: a zero multiplier (forbidden to senders by RFC 4656) is
    /// kept as it came, since the estimate is advice and the timestamps stay usable.
    pub fn from_bits(bits: u16) -> ErrorEstimate {
        ErrorEstimate {
            synchronized: bits & 0x8000 != 0,
            format: if bits & 0x4000 != 0 {
                TimestampFormat::Ptp
            } else {
                TimestampFormat::Ntp
            },
            scale: ((bits >> 8) & 0x3f) as u8,
            multiplier: (bits & 0xff) as u8,
        }
    }

    /// The estimate in seconds.
    pub fn seconds(self) -> f64 {
        f64::from(self.multiplier) * 2f64.powi(i32::from(self.scale) - 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-01-01T00:00:00Z.
    const NEW_YEAR_2026: i64 = 1_767_225_600;

    #[test]
    fn ntp_layout_is_seconds_since_1900_and_a_binary_fraction() {
        let t = NEW_YEAR_2026 * NANOS_PER_SECOND + 500_000_000;
        let bytes = encode(t, TimestampFormat::Ntp);
        let seconds = (NEW_YEAR_2026 + NTP_UNIX_OFFSET_SECONDS) as u32;
        assert_eq!(bytes[..4], seconds.to_be_bytes());
        assert_eq!(bytes[4..], [0x80, 0, 0, 0], "half a second is 2^31");
        assert_eq!(decode(bytes, TimestampFormat::Ntp), Ok(t));
    }

    #[test]
    fn ntp_round_trips_every_nanosecond_value_tried() {
        for nanos in [0, 1, 2, 3, 232, 233, 499_999_999, 500_000_001, 999_999_999] {
            let t = NEW_YEAR_2026 * NANOS_PER_SECOND + nanos;
            assert_eq!(
                decode(encode(t, TimestampFormat::Ntp), TimestampFormat::Ntp),
                Ok(t)
            );
        }
    }

    #[test]
    fn ntp_era_1_is_read_after_the_2036_wrap() {
        // 2036-02-07T06:28:16Z is NTP second 2^32, written as 0.
        let wrap = (1i64 << 32) - NTP_UNIX_OFFSET_SECONDS;
        let t = (wrap + 10) * NANOS_PER_SECOND;
        let bytes = encode(t, TimestampFormat::Ntp);
        assert_eq!(bytes, [0, 0, 0, 10, 0, 0, 0, 0]);
        assert_eq!(decode(bytes, TimestampFormat::Ntp), Ok(t));
    }

    #[test]
    fn ptp_layout_is_seconds_since_1970_and_nanoseconds() {
        let t = NEW_YEAR_2026 * NANOS_PER_SECOND + 123_456_789;
        let bytes = encode(t, TimestampFormat::Ptp);
        assert_eq!(bytes[..4], (NEW_YEAR_2026 as u32).to_be_bytes());
        assert_eq!(bytes[4..], 123_456_789u32.to_be_bytes());
        assert_eq!(decode(bytes, TimestampFormat::Ptp), Ok(t));
    }

    #[test]
    fn ptp_nanoseconds_past_a_second_are_an_error() {
        let mut bytes = [0u8; 8];
        bytes[4..].copy_from_slice(&1_000_000_000u32.to_be_bytes());
        assert_eq!(
            decode(bytes, TimestampFormat::Ptp),
            Err(TimestampError::PtpNanoseconds(1_000_000_000))
        );
    }

    #[test]
    fn error_estimate_bits() {
        let e = ErrorEstimate::microsecond(true, TimestampFormat::Ptp);
        assert_eq!(e.to_bits(), 0b1100_1100_0000_0001);
        assert_eq!(ErrorEstimate::from_bits(e.to_bits()), e);
        assert_eq!(e.seconds(), 2f64.powi(-20));
        let unsync = ErrorEstimate::from_bits(0x0102);
        assert!(!unsync.synchronized);
        assert_eq!(unsync.format, TimestampFormat::Ntp);
        assert_eq!((unsync.scale, unsync.multiplier), (1, 2));
    }
}
