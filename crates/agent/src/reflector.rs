//! The stateless Session-Reflector (RFC 8762 section 4.3): every test packet of at least
//! 44 octets is answered at once with the receive and transmit timestamps; shorter ones
//! are dropped and counted. It keeps no state per sender, so any number of senders may
//! probe it and a sender can never make it hold memory.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::packet::{self, Reflection};
use crate::socket::{Received, StampSocket};
use crate::timestamp::{self, ErrorEstimate, TimestampFormat};

/// How the reflector stamps its answers.
#[derive(Debug, Clone, Copy)]
pub struct ReflectorConfig {
    pub listen: SocketAddr,
    /// The format of the reflector's own timestamps (a sender reads the Z bit).
    pub format: TimestampFormat,
    /// Whether this host's clock is synchronized to UTC (the S bit).
    pub synchronized: bool,
}

/// What the reflector did, since it started.
#[derive(Debug, Default)]
pub struct ReflectorCounters {
    pub reflected: AtomicU64,
    /// Datagrams shorter than a test packet.
    pub too_short: AtomicU64,
    /// Datagrams longer than the receive buffer (64 KiB: not a UDP datagram over IPv4).
    pub truncated: AtomicU64,
    /// Answers the OS refused to send.
    pub send_errors: AtomicU64,
    /// Packets stamped in user space because the kernel gave no receive timestamp.
    pub user_space_timestamps: AtomicU64,
}

impl ReflectorCounters {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A bound reflector; [`Reflector::run`] answers until its shutdown future completes.
#[derive(Debug)]
pub struct Reflector {
    socket: StampSocket,
    config: ReflectorConfig,
    counters: Arc<ReflectorCounters>,
}

impl Reflector {
    pub async fn bind(config: ReflectorConfig) -> io::Result<Reflector> {
        let socket = StampSocket::bind(config.listen).await?;
        Ok(Reflector {
            socket,
            config,
            counters: Arc::default(),
        })
    }

    /// The address it listens on (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    pub fn counters(&self) -> Arc<ReflectorCounters> {
        Arc::clone(&self.counters)
    }

    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        tokio::pin!(shutdown);
        let mut buf = vec![0u8; 65_536];
        let error_estimate =
            ErrorEstimate::microsecond(self.config.synchronized, self.config.format);
        loop {
            let received = tokio::select! {
                () = &mut shutdown => return Ok(()),
                r = self.socket.recv(&mut buf) => r,
            };
            let received = match received {
                Ok(r) => r,
                // An ICMP error for an earlier answer (a sender that went away) surfaces
                // on some systems as a receive error: it concerns that sender only.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let len = received.len.min(buf.len());
            self.answer(received, &mut buf[..len], error_estimate).await;
        }
    }

    /// Answers one datagram in place (the answer has the request's length).
    async fn answer(&self, received: Received, packet: &mut [u8], error_estimate: ErrorEstimate) {
        if received.truncated {
            add(&self.counters.truncated);
            return;
        }
        if !received.kernel_timestamp {
            add(&self.counters.user_space_timestamps);
        }
        let reflection = Reflection {
            received_at: received.at,
            // T3 as late as possible: just before the answer is written and sent, for
            // each answer of a batch (one T3 for a whole batch would count the sending
            // of the others as path delay).
            sent_at: timestamp::now(),
            ttl: received.ttl.unwrap_or(0),
            error_estimate,
        };
        if let Err(e) = packet::reflect_in_place(packet, &reflection) {
            tracing::debug!(from = %received.from, error = %e, "dropped");
            add(&self.counters.too_short);
            return;
        }
        match self.socket.send_to_now(packet, received.from).await {
            Ok(_) => add(&self.counters.reflected),
            Err(e) => {
                tracing::debug!(to = %received.from, error = %e, "answer not sent");
                add(&self.counters.send_errors);
            }
        }
    }
}
