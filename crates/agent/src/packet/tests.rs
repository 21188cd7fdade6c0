use super::*;
use crate::timestamp::{NTP_UNIX_OFFSET_SECONDS, TimestampFormat};

const T1: Nanos = 1_767_225_600 * 1_000_000_000 + 250_000_000; // 2026-01-01T00:00:00.25Z

fn ntp_seconds(t: Nanos) -> [u8; 4] {
    ((t / 1_000_000_000 + NTP_UNIX_OFFSET_SECONDS) as u32).to_be_bytes()
}

fn sender() -> SenderPacket {
    SenderPacket {
        sequence: 0x0102_0304,
        timestamp: T1,
        error_estimate: ErrorEstimate::microsecond(false, TimestampFormat::Ntp),
        ssid: 0xabcd,
    }
}

#[test]
fn sender_packet_fields_sit_at_the_rfc_offsets() {
    let bytes = sender().encode(BASE_LEN);
    assert_eq!(bytes.len(), 44);
    assert_eq!(bytes[0..4], [1, 2, 3, 4], "sequence number");
    assert_eq!(bytes[4..8], ntp_seconds(T1), "timestamp seconds");
    assert_eq!(bytes[8..12], [0x40, 0, 0, 0], "quarter of a second");
    assert_eq!(
        bytes[12..14],
        [0x0c, 0x01],
        "error estimate S=0 Z=0 scale 12 mult 1"
    );
    assert_eq!(bytes[14..16], [0xab, 0xcd], "SSID");
    assert!(bytes[16..].iter().all(|b| *b == 0), "MBZ");
    assert_eq!(SenderPacket::decode(&bytes), Ok(sender()));
}

#[test]
fn sender_packet_pads_to_the_asked_length_and_never_below_the_base() {
    assert_eq!(sender().encode(100).len(), 100);
    assert_eq!(sender().encode(10).len(), 44);
    assert_eq!(SenderPacket::decode(&sender().encode(100)), Ok(sender()));
}

fn reflection() -> Reflection {
    Reflection {
        received_at: T1 + 1_000_000,
        sent_at: T1 + 1_005_000,
        ttl: 254,
        error_estimate: ErrorEstimate::microsecond(true, TimestampFormat::Ptp),
    }
}

#[test]
fn reflected_packet_fields_sit_at_the_rfc_offsets() {
    let request = sender().encode(BASE_LEN);
    let reply = reflect(&request, &reflection()).expect("44 octets reflect");
    assert_eq!(reply.len(), 44, "same size as the request");
    assert_eq!(
        reply[0..4],
        [1, 2, 3, 4],
        "stateless: the sender's sequence number"
    );
    // PTP: seconds since 1970, then nanoseconds.
    assert_eq!(reply[4..8], 1_767_225_600u32.to_be_bytes());
    assert_eq!(reply[8..12], 251_005_000u32.to_be_bytes(), "T3");
    assert_eq!(reply[12..14], [0xcc, 0x01], "S=1 Z=1 scale 12 mult 1");
    assert_eq!(reply[14..16], [0xab, 0xcd], "SSID copied");
    assert_eq!(reply[16..20], 1_767_225_600u32.to_be_bytes());
    assert_eq!(reply[20..24], 251_000_000u32.to_be_bytes(), "T2");
    assert_eq!(reply[24..28], [1, 2, 3, 4], "sender sequence number");
    assert_eq!(
        reply[28..36],
        request[4..12],
        "sender timestamp, octet for octet"
    );
    assert_eq!(reply[36..38], request[12..14], "sender error estimate");
    assert_eq!(reply[38..40], [0, 0], "MBZ");
    assert_eq!(reply[40], 254, "sender TTL");
    assert_eq!(reply[41..44], [0, 0, 0], "MBZ");

    let decoded = ReflectorPacket::decode(&reply).expect("decodes");
    assert_eq!(decoded.sequence, 0x0102_0304);
    assert_eq!(decoded.sender_sequence, 0x0102_0304);
    assert_eq!(decoded.timestamp, T1 + 1_005_000);
    assert_eq!(decoded.receive_timestamp, T1 + 1_000_000);
    assert_eq!(decoded.sender_timestamp, T1);
    assert_eq!(decoded.sender_error_estimate, sender().error_estimate);
    assert_eq!(decoded.error_estimate, reflection().error_estimate);
    assert_eq!(decoded.sender_ttl, 254);
    assert_eq!(decoded.ssid, 0xabcd);
    assert_eq!(decoded.tlvs, TlvSummary::default());
}

#[test]
fn a_sender_timestamp_the_agent_could_not_read_is_still_copied_back() {
    let mut request = sender().encode(BASE_LEN);
    // Z=1 (PTP) with 0xffffffff nanoseconds: not a valid PTP timestamp.
    request[12] |= 0x40;
    request[8..12].copy_from_slice(&[0xff; 4]);
    let reply = reflect(&request, &reflection()).expect("reflects");
    assert_eq!(reply[28..36], request[4..12]);
    assert_eq!(
        ReflectorPacket::decode(&reply),
        Err(DecodeError::Timestamp {
            field: "sender timestamp",
            source: TimestampError::PtpNanoseconds(u32::MAX)
        })
    );
}

#[test]
fn tlvs_are_reflected_with_the_unrecognized_flag_and_counted() {
    let mut request = sender().encode(BASE_LEN);
    // Extra padding TLV (type 1, RFC 8972 section 4.2) of 4 octets, then type 200 of 0.
    request.extend_from_slice(&[0x00, 1, 0, 4, 9, 9, 9, 9, 0x00, 200, 0, 0]);
    let reply = reflect(&request, &reflection()).expect("reflects");
    assert_eq!(reply.len(), request.len());
    assert_eq!(
        reply[44..],
        [TLV_FLAG_U, 1, 0, 4, 9, 9, 9, 9, TLV_FLAG_U, 200, 0, 0]
    );
    let decoded = ReflectorPacket::decode(&reply).expect("TLVs are no error");
    assert_eq!(
        decoded.tlvs,
        TlvSummary {
            count: 2,
            malformed: false
        }
    );
    assert_eq!(SenderPacket::decode(&request), Ok(sender()));
}

#[test]
fn a_tlv_running_past_the_packet_is_marked_malformed_not_an_error() {
    let mut request = sender().encode(BASE_LEN);
    request.extend_from_slice(&[0x00, 1, 0, 4, 9, 9, 0x00, 7, 0x01, 0x00, 1]);
    let reply = reflect(&request, &reflection()).expect("reflects");
    assert_eq!(
        reply[44..],
        [TLV_FLAG_U, 1, 0, 4, 9, 9, 0, 7, 0x01, 0x00, 1]
    );

    let mut request = sender().encode(BASE_LEN);
    request.extend_from_slice(&[0x00, 1, 0, 9, 9]);
    let reply = reflect(&request, &reflection()).expect("reflects");
    assert_eq!(reply[44..], [TLV_FLAG_M, 1, 0, 9, 9]);
    let decoded = ReflectorPacket::decode(&reply).expect("still a packet");
    assert_eq!(
        decoded.tlvs,
        TlvSummary {
            count: 0,
            malformed: true
        }
    );
    assert_eq!(
        TlvSummary::of(&[0, 1, 0, 0, 7]),
        TlvSummary {
            count: 1,
            malformed: true
        },
        "a trailing octet"
    );
}

#[test]
fn every_short_packet_is_too_short_never_a_panic() {
    let full = reflect(&sender().encode(BASE_LEN), &reflection()).expect("reflects");
    for len in 0..BASE_LEN {
        let cut = &full[..len];
        assert_eq!(SenderPacket::decode(cut), Err(DecodeError::TooShort(len)));
        assert_eq!(
            ReflectorPacket::decode(cut),
            Err(DecodeError::TooShort(len))
        );
        assert_eq!(
            reflect(cut, &reflection()).map(|_| ()),
            Err(DecodeError::TooShort(len))
        );
    }
    assert_eq!(
        DecodeError::TooShort(3).to_string(),
        "packet of 3 octets is shorter than the 44 of a STAMP test packet"
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A fixed xorshift sequence: the same inputs every run.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut decoded = 0;
    for _ in 0..2000 {
        let len = (next() % 80) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let reply = reflect(&bytes, &reflection());
        assert_eq!(reply.is_ok(), len >= BASE_LEN);
        if ReflectorPacket::decode(&bytes).is_ok() {
            decoded += 1;
        }
        let _ = SenderPacket::decode(&bytes);
        let _ = TlvSummary::of(&bytes);
    }
    assert!(decoded > 0, "some random packets are readable");
}

#[test]
fn a_reused_probe_buffer_reads_as_a_freshly_encoded_probe() {
    let mut buffer = vec![0u8; 60];
    let first = sender();
    first
        .write_fields(&mut buffer)
        .expect("60 octets hold a probe");
    assert_eq!(buffer, first.encode(60));
    let second = SenderPacket {
        sequence: 7,
        timestamp: T1 + 10_000_000,
        ..sender()
    };
    second
        .write_fields(&mut buffer)
        .expect("60 octets hold a probe");
    assert_eq!(
        buffer,
        second.encode(60),
        "no field of the first probe is left"
    );
    assert_eq!(
        sender().write_fields(&mut [0u8; 43]),
        Err(DecodeError::TooShort(43))
    );
}

#[test]
fn an_answer_written_in_place_clears_what_the_request_had_in_its_mbz_octets() {
    let mut request = sender().encode(BASE_LEN);
    request[16..BASE_LEN].fill(0xff);
    let copy = reflect(&request, &reflection()).expect("reflects");
    reflect_in_place(&mut request, &reflection()).expect("reflects");
    assert_eq!(request, copy);
    assert_eq!(request[38..40], [0, 0], "MBZ");
    assert_eq!(request[40], 254, "TTL");
    assert_eq!(request[41..44], [0, 0, 0], "MBZ");
    assert_eq!(
        request[24..28],
        [1, 2, 3, 4],
        "the sender's sequence number"
    );
    assert_eq!(
        reflect_in_place(&mut [0u8; 43], &reflection()),
        Err(DecodeError::TooShort(43))
    );
}
