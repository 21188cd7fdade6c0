//! STAMP test packets in unauthenticated mode (RFC 8762 sections 4.2.1 and 4.3.1), with
//! the Session-Sender Identifier that RFC 8972 section 3 places in the former MBZ octets
//! 14-15, and the TLVs of RFC 8972 section 4 after the 44 octets of the base format.
//!
//! Session-Sender test packet:
//! ```text
//!  0  Sequence Number (4)
//!  4  Timestamp (8)
//! 12  Error Estimate (2)
//! 14  SSID (2)                       (MBZ in RFC 8762)
//! 16  MBZ (28)
//! 44  TLVs...
//! ```
//! Session-Reflector test packet:
//! ```text
//!  0  Sequence Number (4)
//!  4  Timestamp (8)
//! 12  Error Estimate (2)
//! 14  SSID (2)                       (MBZ in RFC 8762)
//! 16  Receive Timestamp (8)
//! 24  Session-Sender Sequence Number (4)
//! 28  Session-Sender Timestamp (8)
//! 36  Session-Sender Error Estimate (2)
//! 38  MBZ (2)
//! 40  Ses-Sender TTL (1)
//! 41  MBZ (3)
//! 44  TLVs...
//! ```
//! Reading never panics: every length is checked before a field is read.

use crate::timestamp::{self, ErrorEstimate, Nanos, TimestampError};

/// Octets of either base packet; the sender pads to it so that both directions carry the
/// same size (RFC 8762 section 4.2.1).
pub const BASE_LEN: usize = 44;

/// TLV flags (RFC 8972 section 4): Unrecognized, Malformed, Integrity.
pub const TLV_FLAG_U: u8 = 0x80;
pub const TLV_FLAG_M: u8 = 0x40;

/// Why a packet was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet of {0} octets is shorter than the {BASE_LEN} of a STAMP test packet")]
    TooShort(usize),
    #[error("{field}: {source}")]
    Timestamp {
        field: &'static str,
        source: TimestampError,
    },
}

/// A Session-Sender test packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderPacket {
    pub sequence: u32,
    pub timestamp: Nanos,
    pub error_estimate: ErrorEstimate,
    pub ssid: u16,
}

impl SenderPacket {
    /// The packet, padded with zeros to `len` octets (at least [`BASE_LEN`]).
    pub fn encode(&self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len.max(BASE_LEN)];
        // Cannot fail: `out` holds at least BASE_LEN octets.
        let _ = self.write_fields(&mut out);
        out
    }

    /// Writes the fields (the first 16 octets) into `packet`, a buffer of at least
    /// [`BASE_LEN`] octets whose MBZ octets and padding are already zero: a sender probing
    /// hundreds of peers reuses one buffer rather than allocating one per probe.
    /// Returns [`DecodeError::TooShort`] for a shorter buffer.
    pub fn write_fields(&self, packet: &mut [u8]) -> Result<(), DecodeError> {
        let len = packet.len();
        let base = packet
            .get_mut(..BASE_LEN)
            .ok_or(DecodeError::TooShort(len))?;
        base[0..4].copy_from_slice(&self.sequence.to_be_bytes());
        base[4..12].copy_from_slice(&timestamp::encode(
            self.timestamp,
            self.error_estimate.format,
        ));
        base[12..14].copy_from_slice(&self.error_estimate.to_bits().to_be_bytes());
        base[14..16].copy_from_slice(&self.ssid.to_be_bytes());
        Ok(())
    }

    /// Reads the base fields; MBZ octets and TLVs are not looked at (peers that put
    /// something there still get measured).
    pub fn decode(bytes: &[u8]) -> Result<SenderPacket, DecodeError> {
        let base = base(bytes)?;
        let error_estimate = ErrorEstimate::from_bits(u16_at(base, 12));
        Ok(SenderPacket {
            sequence: u32_at(base, 0),
            timestamp: time_at(base, 4, error_estimate, "timestamp")?,
            error_estimate,
            ssid: u16_at(base, 14),
        })
    }
}

/// A Session-Reflector test packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReflectorPacket {
    pub sequence: u32,
    /// When the reflector sent it (T3).
    pub timestamp: Nanos,
    pub error_estimate: ErrorEstimate,
    pub ssid: u16,
    /// When the reflector received the sender's packet (T2); same format as `timestamp`.
    pub receive_timestamp: Nanos,
    pub sender_sequence: u32,
    /// The sender's timestamp (T1), copied back.
    pub sender_timestamp: Nanos,
    pub sender_error_estimate: ErrorEstimate,
    pub sender_ttl: u8,
    /// The TLVs after the base packet, as found.
    pub tlvs: TlvSummary,
}

impl ReflectorPacket {
    pub fn decode(bytes: &[u8]) -> Result<ReflectorPacket, DecodeError> {
        let base = base(bytes)?;
        let error_estimate = ErrorEstimate::from_bits(u16_at(base, 12));
        let sender_error_estimate = ErrorEstimate::from_bits(u16_at(base, 36));
        Ok(ReflectorPacket {
            sequence: u32_at(base, 0),
            timestamp: time_at(base, 4, error_estimate, "timestamp")?,
            error_estimate,
            ssid: u16_at(base, 14),
            receive_timestamp: time_at(base, 16, error_estimate, "receive timestamp")?,
            sender_sequence: u32_at(base, 24),
            sender_timestamp: time_at(base, 28, sender_error_estimate, "sender timestamp")?,
            sender_error_estimate,
            sender_ttl: base[40],
            tlvs: TlvSummary::of(&bytes[BASE_LEN..]),
        })
    }

    /// The packet with TLV octets `tlvs` after the base format.
    pub fn encode(&self, sender_timestamp_raw: [u8; 8], tlvs: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; BASE_LEN + tlvs.len()];
        let format = self.error_estimate.format;
        out[0..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..12].copy_from_slice(&timestamp::encode(self.timestamp, format));
        out[12..14].copy_from_slice(&self.error_estimate.to_bits().to_be_bytes());
        out[14..16].copy_from_slice(&self.ssid.to_be_bytes());
        out[16..24].copy_from_slice(&timestamp::encode(self.receive_timestamp, format));
        out[24..28].copy_from_slice(&self.sender_sequence.to_be_bytes());
        out[28..36].copy_from_slice(&sender_timestamp_raw);
        out[36..38].copy_from_slice(&self.sender_error_estimate.to_bits().to_be_bytes());
        out[40] = self.sender_ttl;
        out[BASE_LEN..].copy_from_slice(tlvs);
        out
    }
}

/// What the reflector needs to answer one received packet.
#[derive(Debug, Clone, Copy)]
pub struct Reflection {
    /// T2: when the packet arrived.
    pub received_at: Nanos,
    /// T3: when the answer leaves (read just before sending).
    pub sent_at: Nanos,
    /// The TTL or hop limit the packet arrived with (0 when the OS did not say).
    pub ttl: u8,
    pub error_estimate: ErrorEstimate,
}

/// The stateless Session-Reflector's answer to `request` (RFC 8762 section 4.3): the
/// sender's sequence number as its own, the sender's sequence number, timestamp and error
/// estimate copied octet for octet (so that a timestamp format this agent would not
/// write still goes back unchanged), the SSID copied, and the same length as the request.
/// TLVs are copied back with the U flag set, since the agent implements none (RFC 8972
/// section 4); a TLV whose length runs past the packet gets the M flag and ends the list.
pub fn reflect(request: &[u8], reflection: &Reflection) -> Result<Vec<u8>, DecodeError> {
    let mut answer = request.to_vec();
    reflect_in_place(&mut answer, reflection)?;
    Ok(answer)
}

/// [`reflect`] writing the answer over the request in `packet` (the answer has the
/// request's length), so that a reflector answers without allocating.
pub fn reflect_in_place(packet: &mut [u8], reflection: &Reflection) -> Result<(), DecodeError> {
    let len = packet.len();
    let (base, tlvs) = packet
        .split_at_mut_checked(BASE_LEN)
        .ok_or(DecodeError::TooShort(len))?;
    // Octets 0-3 (the sequence number, reused as the reflector's) and 14-15 (the SSID)
    // stay; the sender's timestamp and error estimate move to their reflected places.
    let mut sender_timestamp = [0u8; 8];
    sender_timestamp.copy_from_slice(&base[4..12]);
    let sender_error_estimate = [base[12], base[13]];
    let sequence = [base[0], base[1], base[2], base[3]];
    let format = reflection.error_estimate.format;
    base[4..12].copy_from_slice(&timestamp::encode(reflection.sent_at, format));
    base[12..14].copy_from_slice(&reflection.error_estimate.to_bits().to_be_bytes());
    base[16..24].copy_from_slice(&timestamp::encode(reflection.received_at, format));
    base[24..28].copy_from_slice(&sequence);
    base[28..36].copy_from_slice(&sender_timestamp);
    base[36..38].copy_from_slice(&sender_error_estimate);
    base[38..40].fill(0);
    base[40] = reflection.ttl;
    base[41..44].fill(0);
    mark_tlvs_unrecognized(tlvs);
    Ok(())
}

/// Sets U on every TLV of `tlvs`, and M on one whose length overruns the buffer.
fn mark_tlvs_unrecognized(tlvs: &mut [u8]) {
    let mut at = 0;
    while tlvs.len() - at >= 4 {
        let len = usize::from(u16::from_be_bytes([tlvs[at + 2], tlvs[at + 3]]));
        if tlvs.len() - at - 4 < len {
            tlvs[at] |= TLV_FLAG_M;
            return;
        }
        tlvs[at] |= TLV_FLAG_U;
        at += 4 + len;
    }
}

/// The TLVs found after a base packet: counted, never an error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlvSummary {
    /// Well-formed TLVs (`Flags Type Length(2) Value`).
    pub count: usize,
    /// Whether the area did not parse to its end (a length past the packet, or 1 to 3
    /// trailing octets). Padding of zeros parses as TLVs of type 0 and length 0.
    pub malformed: bool,
}

impl TlvSummary {
    pub fn of(area: &[u8]) -> TlvSummary {
        let mut summary = TlvSummary::default();
        let mut at = 0;
        while area.len() - at >= 4 {
            let len = usize::from(u16::from_be_bytes([area[at + 2], area[at + 3]]));
            if area.len() - at - 4 < len {
                summary.malformed = true;
                return summary;
            }
            summary.count += 1;
            at += 4 + len;
        }
        summary.malformed = at != area.len();
        summary
    }
}

fn base(bytes: &[u8]) -> Result<&[u8], DecodeError> {
    bytes
        .get(..BASE_LEN)
        .ok_or(DecodeError::TooShort(bytes.len()))
}

// The helpers below read inside `base`, whose length is BASE_LEN, at fixed offsets
// below it; `base` is the one length check.
fn u32_at(base: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([base[at], base[at + 1], base[at + 2], base[at + 3]])
}

fn u16_at(base: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([base[at], base[at + 1]])
}

fn time_at(
    base: &[u8],
    at: usize,
    estimate: ErrorEstimate,
    field: &'static str,
) -> Result<Nanos, DecodeError> {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&base[at..at + 8]);
    timestamp::decode(raw, estimate.format)
        .map_err(|source| DecodeError::Timestamp { field, source })
}

#[cfg(test)]
mod tests;
