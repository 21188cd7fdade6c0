//! The long-running Session-Sender: one UDP socket probing many peers at a fixed interval,
//! a sliding [`Window`] per peer, and the peers that stopped answering marked stale. The
//! set of peers can change while it runs (peers come from the API server); a peer that
//! stays keeps its window.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::packet::{BASE_LEN, ReflectorPacket, SenderPacket};
use crate::socket::{Received, StampSocket};
use crate::stats::{Reply, ReplyOutcome, Summary, Window};
use crate::timestamp::{self, ErrorEstimate, Nanos, TimestampFormat};

/// How a monitor probes.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// Time between two probes to one peer.
    pub interval: Duration,
    /// Probes per peer in the sliding window.
    pub window: usize,
    /// An unanswered probe counts as lost after this.
    pub loss_after: Duration,
    /// A peer that answered nothing for this long (since its last answer, or since it was
    /// added) is stale: its figures are not published.
    pub stale_after: Duration,
    pub packet_len: usize,
    pub format: TimestampFormat,
    pub clocks_synchronized: bool,
    pub ssid: u16,
}

impl Default for MonitorConfig {
    /// 1 probe/s, a 60-probe window, lost after 2 s, stale after 10 s, 44-octet NTP probes.
    fn default() -> MonitorConfig {
        MonitorConfig {
            interval: Duration::from_secs(1),
            window: 60,
            loss_after: Duration::from_secs(2),
            stale_after: Duration::from_secs(10),
            packet_len: BASE_LEN,
            format: TimestampFormat::Ntp,
            clocks_synchronized: false,
            ssid: 3,
        }
    }
}

/// A peer to probe: its name (the node's) and its reflector.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub name: String,
    pub address: SocketAddr,
}

/// Packets the monitor received and did not measure, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorCounters {
    pub sent: u64,
    pub send_errors: u64,
    pub replies: u64,
    /// Too short, truncated, or with an unreadable timestamp.
    pub malformed: u64,
    /// From an address that is no peer, or for no probe of the peer's window.
    pub unknown: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Negative round trip or processing time.
    pub inconsistent: u64,
    pub user_space_timestamps: u64,
}

#[derive(Debug)]
struct PeerState {
    name: String,
    window: Window,
    next_sequence: u32,
    added: Nanos,
    last_reply: Option<Nanos>,
}

/// One peer's figures at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerFigures {
    pub peer: Peer,
    pub summary: Summary,
    pub stale: bool,
}

/// Probes a set of peers from one socket.
#[derive(Debug)]
pub struct Monitor {
    socket: StampSocket,
    config: MonitorConfig,
    peers: HashMap<SocketAddr, PeerState>,
    counters: MonitorCounters,
    buf: Vec<u8>,
    /// The probe being sent: zeros but for the fields written before each send.
    probe: Vec<u8>,
    /// The peers in probing order, and the next to probe ([`Monitor::probe_some`]).
    order: Vec<SocketAddr>,
    cursor: usize,
}

/// Probing rounds are split into this many slices spread over the interval, so that
/// hundreds of peers are not probed in one burst (their answers would overflow the
/// socket's receive buffer, and read as loss).
pub const SLICES_PER_INTERVAL: u32 = 20;

fn nanos(d: Duration) -> Nanos {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Monitor {
    /// Binds the probing socket (`bind`: the local address, port 0 for any).
    pub async fn bind(bind: SocketAddr, config: MonitorConfig) -> io::Result<Monitor> {
        let socket = StampSocket::bind(bind).await?;
        socket.set_max_ttl()?;
        Ok(Monitor {
            socket,
            probe: vec![0u8; config.packet_len.max(BASE_LEN)],
            config,
            peers: HashMap::new(),
            counters: MonitorCounters::default(),
            buf: vec![0u8; 65_536],
            order: Vec::new(),
            cursor: 0,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    pub fn counters(&self) -> MonitorCounters {
        self.counters
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Replaces the set of peers: peers that stay (same address) keep their window, a peer
    /// whose address changed starts a new one.
    pub fn set_peers(&mut self, peers: &[Peer]) {
        let now = timestamp::now();
        let mut next = HashMap::with_capacity(peers.len());
        for peer in peers {
            let state = match self.peers.remove(&peer.address) {
                Some(mut s) => {
                    s.name.clone_from(&peer.name);
                    s
                }
                None => PeerState {
                    name: peer.name.clone(),
                    window: Window::new(self.config.window),
                    next_sequence: 0,
                    added: now,
                    last_reply: None,
                },
            };
            next.insert(peer.address, state);
        }
        self.peers = next;
        let mut order: Vec<SocketAddr> = self.peers.keys().copied().collect();
        order.sort();
        self.order = order;
        self.cursor = 0;
    }

    /// Sends one probe to every peer.
    pub async fn probe_all(&mut self) {
        self.cursor = 0;
        self.probe_some(self.order.len()).await;
    }

    /// Sends one probe to each of the next `count` peers in order (wrapping).
    pub async fn probe_some(&mut self, count: usize) {
        let error_estimate =
            ErrorEstimate::microsecond(self.config.clocks_synchronized, self.config.format);
        for _ in 0..count.min(self.order.len()) {
            let address = self.order[self.cursor % self.order.len()];
            self.cursor = (self.cursor + 1) % self.order.len();
            let Some(state) = self.peers.get_mut(&address) else {
                continue;
            };
            let sequence = state.next_sequence;
            state.next_sequence = sequence.wrapping_add(1);
            let t1 = timestamp::now();
            let written = SenderPacket {
                sequence,
                timestamp: t1,
                error_estimate,
                ssid: self.config.ssid,
            }
            .write_fields(&mut self.probe);
            state.window.sent(sequence, t1);
            self.counters.sent += 1;
            if written.is_err() || self.socket.send_to_now(&self.probe, address).await.is_err() {
                self.counters.send_errors += 1;
            }
        }
    }

    /// Waits for one datagram and records it. An ICMP error (a peer's port closed) is no
    /// error of the monitor: that peer's probes are lost.
    pub async fn receive(&mut self) -> io::Result<()> {
        let received = match self.socket.recv(&mut self.buf).await {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let bytes = &self.buf[..received.len.min(self.buf.len())];
        record(&mut self.peers, &mut self.counters, received, bytes);
        Ok(())
    }

    /// The time between two slices of a probing round.
    pub fn slice_interval(&self) -> std::time::Duration {
        self.config.interval / SLICES_PER_INTERVAL
    }

    /// Sends the next slice of a probing round: every peer is probed once per `interval`
    /// when this runs every [`Monitor::slice_interval`].
    pub async fn probe_slice(&mut self) {
        let count = self.order.len().div_ceil(SLICES_PER_INTERVAL as usize);
        self.probe_some(count).await;
    }

    /// Probes every peer every `interval` (in slices) and records answers until `until`
    /// completes.
    pub async fn run_until(
        &mut self,
        until: impl std::future::Future<Output = ()>,
    ) -> io::Result<()> {
        tokio::pin!(until);
        let mut ticker = tokio::time::interval(self.slice_interval());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut until => return Ok(()),
                _ = ticker.tick() => self.probe_slice().await,
                r = self.receive() => r?,
            }
        }
    }

    /// Every peer's figures now, by name.
    pub fn figures(&self) -> Vec<PeerFigures> {
        self.figures_at(timestamp::now())
    }

    /// Every peer's figures at `now` (a peer is stale when it answered nothing within
    /// `stale_after` of `now`), sorted by name.
    pub fn figures_at(&self, now: Nanos) -> Vec<PeerFigures> {
        let stale_after = nanos(self.config.stale_after);
        let loss_after = nanos(self.config.loss_after);
        let mut out: BTreeMap<(String, SocketAddr), PeerFigures> = BTreeMap::new();
        for (address, state) in &self.peers {
            let since = state.last_reply.unwrap_or(state.added);
            let stale = now.saturating_sub(since) >= stale_after;
            out.insert(
                (state.name.clone(), *address),
                PeerFigures {
                    peer: Peer {
                        name: state.name.clone(),
                        address: *address,
                    },
                    summary: state
                        .window
                        .summary(now, loss_after, self.config.clocks_synchronized),
                    stale,
                },
            );
        }
        out.into_values().collect()
    }
}

/// Records one answer in its peer's window.
fn record(
    peers: &mut HashMap<SocketAddr, PeerState>,
    counters: &mut MonitorCounters,
    received: Received,
    bytes: &[u8],
) {
    if !received.kernel_timestamp {
        counters.user_space_timestamps += 1;
    }
    let Some(state) = peers.get_mut(&received.from) else {
        counters.unknown += 1;
        return;
    };
    if received.truncated {
        counters.malformed += 1;
        return;
    }
    let Ok(answer) = ReflectorPacket::decode(bytes) else {
        counters.malformed += 1;
        return;
    };
    // The echoed timestamp must be the probe's own (see the sender).
    if state.window.sent_at(answer.sender_sequence) != Some(answer.sender_timestamp) {
        counters.unknown += 1;
        return;
    }
    let reply = Reply {
        reflector_received: answer.receive_timestamp,
        reflector_sent: answer.timestamp,
        received: received.at,
    };
    match state.window.reply(answer.sender_sequence, reply) {
        ReplyOutcome::Recorded => {
            counters.replies += 1;
            state.last_reply = Some(received.at);
        }
        ReplyOutcome::Reordered => {
            counters.replies += 1;
            counters.reordered += 1;
            state.last_reply = Some(received.at);
        }
        ReplyOutcome::Duplicate => counters.duplicates += 1,
        ReplyOutcome::Unknown => counters.unknown += 1,
        ReplyOutcome::Inconsistent => counters.inconsistent += 1,
    }
}
