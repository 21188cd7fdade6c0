//! The STAMP packet parser of the measurement agent (`edgeplane_agent::packet`): any
//! datagram is read or refused without a panic, and the reflector's answer keeps what
//! RFC 8762 says it copies.

use edgeplane_agent::packet::{
    BASE_LEN, Reflection, ReflectorPacket, SenderPacket, TlvSummary, reflect,
};
use edgeplane_agent::timestamp::{ErrorEstimate, TimestampFormat};

/// 2026-12-07T00:00:00Z, and 5 µs later.
const RECEIVED: i64 = 1_796_601_600_000_000_000;
const SENT: i64 = RECEIVED + 5_000;

pub fn run(data: &[u8]) {
    let sender = SenderPacket::decode(data);
    let tlvs = TlvSummary::of(data.get(BASE_LEN..).unwrap_or_default());
    assert!(tlvs.count * 4 <= data.len().saturating_sub(BASE_LEN));
    if let Ok(packet) = &sender {
        // What was read writes back to the same fields (MBZ octets come back as zeros).
        assert_eq!(
            SenderPacket::decode(&packet.encode(data.len())).as_ref(),
            Ok(packet)
        );
    }
    let reflection = Reflection {
        received_at: RECEIVED,
        sent_at: SENT,
        ttl: 64,
        error_estimate: ErrorEstimate::microsecond(false, TimestampFormat::Ntp),
    };
    let Ok(reply) = reflect(data, &reflection) else {
        assert!(data.len() < BASE_LEN, "only short packets are refused");
        return;
    };
    assert_eq!(reply.len(), data.len(), "answers are as long as the probe");
    assert_eq!(
        reply[0..4],
        data[0..4],
        "stateless: the sender's sequence number"
    );
    assert_eq!(reply[24..28], data[0..4]);
    assert_eq!(
        reply[28..38],
        data[4..14],
        "sender timestamp and error estimate copied"
    );
    // The reflector's own timestamps are NTP, always readable: the answer reads exactly
    // when the probe's timestamp does.
    let answer = ReflectorPacket::decode(&reply);
    assert_eq!(answer.is_ok(), sender.is_ok(), "{answer:?} vs {sender:?}");
    if let (Ok(answer), Ok(sender)) = (answer, sender) {
        assert_eq!(answer.sender_timestamp, sender.timestamp);
        assert_eq!(
            (answer.receive_timestamp, answer.timestamp),
            (RECEIVED, SENT)
        );
    }
}
