//! A UDP socket that tells when each datagram arrived, as close to the wire as the OS
//! allows: on Linux the kernel's receive timestamp (`SO_TIMESTAMPNS`, taken when the
//! packet entered the network stack, before any wait for this process to be scheduled)
//! and the TTL or hop limit it arrived with (`IP_RECVTTL`, `IPV6_RECVHOPLIMIT`), through
//! `recvmsg`. Elsewhere, or when the kernel gives no timestamp, the clock is read in user
//! space right after the datagram is read; [`Received::kernel_timestamp`] says which.
//! Transmit timestamps are always read in user space just before `send`.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;

use crate::timestamp::{self, Nanos};

/// One datagram read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Octets written into the buffer.
    pub len: usize,
    /// The datagram was longer than the buffer (the rest is lost).
    pub truncated: bool,
    pub from: SocketAddr,
    /// When it arrived.
    pub at: Nanos,
    /// Whether `at` came from the kernel.
    pub kernel_timestamp: bool,
    /// The TTL or hop limit it arrived with, when the OS said.
    pub ttl: Option<u8>,
}

/// A UDP socket for STAMP test packets.
#[derive(Debug)]
pub struct StampSocket {
    socket: UdpSocket,
}

impl StampSocket {
    pub async fn bind(addr: SocketAddr) -> io::Result<StampSocket> {
        Ok(StampSocket::new(UdpSocket::bind(addr).await?))
    }

    /// Wraps `socket`, asking the OS for receive timestamps and TTLs. An OS that refuses
    /// leaves the user-space fallback, so the refusal is not an error.
    pub fn new(socket: UdpSocket) -> StampSocket {
        #[cfg(target_os = "linux")]
        linux::enable(&socket);
        StampSocket { socket }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Only datagrams from `peer` are read from now on (a sender talks to one reflector).
    pub async fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        self.socket.connect(peer).await
    }

    /// Sends with TTL (hop limit) 255, so that a reflector can tell how many hops the
    /// packet crossed from the TTL it arrived with (RFC 8762's Session-Sender TTL).
    pub fn set_max_ttl(&self) -> io::Result<()> {
        match self.socket.local_addr()? {
            SocketAddr::V4(_) => self.socket.set_ttl(255),
            #[cfg(target_os = "linux")]
            SocketAddr::V6(_) => linux::set_hop_limit(&self.socket, 255),
            #[cfg(not(target_os = "linux"))]
            SocketAddr::V6(_) => Ok(()),
        }
    }

    /// The same socket for sending from a thread of its own (a packet train paced by
    /// spinning must not hold up the task reading the answers). It shares the
    /// non-blocking mode: a full buffer is `WouldBlock`.
    pub fn sender_handle(&self) -> io::Result<socket2::Socket> {
        socket2::SockRef::from(&self.socket).try_clone()
    }

    pub async fn send_to(&self, packet: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.socket.send_to(packet, to).await
    }

    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        self.socket.send(packet).await
    }

    /// Sends at once when the socket's buffer has room (the usual case: no future to
    /// build and poll), else waits for room as [`StampSocket::send_to`] does.
    pub async fn send_to_now(&self, packet: &[u8], to: SocketAddr) -> io::Result<usize> {
        match self.socket.try_send_to(packet, to) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.socket.send_to(packet, to).await
            }
            other => other,
        }
    }

    /// Reads one datagram into `buf`.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd = self.socket.as_raw_fd();
            self.socket
                .async_io(tokio::io::Interest::READABLE, || linux::recv(fd, buf))
                .await
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (len, from) = self.socket.recv_from(buf).await?;
            Ok(Received {
                len,
                truncated: false,
                from,
                at: timestamp::now(),
                kernel_timestamp: false,
                ttl: None,
            })
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{self, IoSliceMut};
    use std::net::SocketAddr;
    use std::os::fd::RawFd;

    use nix::sys::socket::{
        ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
    };
    use nix::sys::time::TimeSpec;
    use tokio::net::UdpSocket;

    use super::{Received, timestamp};

    pub(super) fn enable(socket: &UdpSocket) {
        if let Err(e) = setsockopt(socket, sockopt::ReceiveTimestampns, &true) {
            tracing::warn!(error = %e, "no kernel receive timestamps (SO_TIMESTAMPNS); the clock is read after each read");
        }
        // Either may fail on a socket of the other family; the TTL is advisory.
        let _ = setsockopt(socket, sockopt::Ipv4RecvTtl, &true);
        let _ = setsockopt(socket, sockopt::Ipv6RecvHopLimit, &true);
    }

    pub(super) fn set_hop_limit(socket: &UdpSocket, hops: i32) -> io::Result<()> {
        setsockopt(socket, sockopt::Ipv6Ttl, &hops).map_err(io::Error::from)
    }

    pub(super) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
        let mut iov = [IoSliceMut::new(buf)];
        let mut control = nix::cmsg_space!(TimeSpec, i32, i32);
        let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut control), MsgFlags::empty())
            .map_err(io::Error::from)?;
        let from = msg
            .address
            .and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::from(*v4))
                    .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6)))
            })
            .ok_or_else(|| io::Error::other("datagram without an IP source address"))?;
        let mut at = None;
        let mut ttl = None;
        // A control message the buffer could not hold is lost, not an error: the
        // packet is still measured, with a user-space timestamp.
        if let Ok(cmsgs) = msg.cmsgs() {
            for cmsg in cmsgs {
                match cmsg {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        at = Some(ts.tv_sec() * 1_000_000_000 + ts.tv_nsec());
                    }
                    ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                        ttl = u8::try_from(t).ok();
                    }
                    _ => {}
                }
            }
        }
        Ok(Received {
            len: msg.bytes,
            truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
            from,
            at: at.unwrap_or_else(timestamp::now),
            kernel_timestamp: at.is_some(),
            ttl,
        })
    }
}
