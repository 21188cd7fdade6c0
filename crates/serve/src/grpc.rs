//! The gRPC servers' limits: work slots that shed load with `RESOURCE_EXHAUSTED` instead
//! of queueing, an interruption flag raised when a caller's answer is no longer wanted,
//! and accepted connections (with [`Acceptor`]'s cap and backoff) for tonic's
//! `serve_with_incoming_shutdown`.
//!
//! The caller's deadline (`grpc-timeout`) is tonic's: its server drops a handler's future
//! when the deadline passes (answering `CANCELLED`, "Timeout expired"), as it does when the
//! client resets the stream; a handler holding [`Interrupt::raise_on_drop`] turns both into
//! an interruption its blocking work sees.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::accept::Acceptor;

/// At most `limit` requests at work at once; a request past that is refused at once with
/// `RESOURCE_EXHAUSTED` (a caller retries with backoff) rather than queued behind work
/// that may take long, which would make every caller time out.
#[derive(Clone, Debug)]
pub struct WorkSlots {
    slots: Arc<Semaphore>,
    limit: usize,
    /// The flag that sets the limit, for the refusal's message.
    flag: &'static str,
}

impl WorkSlots {
    /// `limit` of 0 is taken as 1.
    pub fn new(limit: usize, flag: &'static str) -> WorkSlots {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        WorkSlots {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            flag,
        }
    }

    /// A slot, held until dropped (keep it until the work has really stopped), or the
    /// refusal.
    pub fn try_enter(&self) -> Result<OwnedSemaphorePermit, tonic::Status> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            tonic::Status::resource_exhausted(format!(
                "the server is busy: {} requests are in progress, its limit ({}); retry later",
                self.limit, self.flag
            ))
        })
    }

    /// Slots free now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// Waits until every slot is free again (all work has stopped).
    pub async fn all_free(&self) {
        if let Ok(all) = self.slots.acquire_many(self.limit as u32).await {
            drop(all);
        }
    }
}

/// Raised when a request's answer is no longer wanted (the caller went away, or its
/// deadline passed); long work looks at it and stops. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    pub fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// A guard that raises the flag when dropped: tonic drops a handler's future when the
    /// client resets the stream or the deadline passes, so holding this in the handler
    /// turns both into an interruption.
    pub fn raise_on_drop(&self) -> RaiseOnDrop {
        RaiseOnDrop(self.clone())
    }
}

/// See [`Interrupt::raise_on_drop`].
#[derive(Debug)]
pub struct RaiseOnDrop(Interrupt);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.raise();
    }
}

/// An accepted TCP connection that holds its slot among the server's connections.
pub struct Connection {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    pub fn new(stream: TcpStream, slot: OwnedSemaphorePermit) -> Connection {
        Connection {
            stream,
            _slot: slot,
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// The connections of `acceptor` as tonic's incoming stream, ending at `shutdown`.
pub fn incoming(
    acceptor: Acceptor<TcpListener>,
    shutdown: CancellationToken,
) -> impl Stream<Item = std::io::Result<Connection>> + Send + 'static {
    futures::stream::unfold(
        (acceptor, shutdown),
        |(mut acceptor, shutdown)| async move {
            let accepted = acceptor.accept(&shutdown).await?;
            // Small requests answered at once: do not wait to fill a packet.
            let _ = accepted.stream.set_nodelay(true);
            let connection = Connection {
                stream: accepted.stream,
                _slot: accepted.slot,
            };
            Some((Ok(connection), (acceptor, shutdown)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_slots_shed_past_the_limit_and_free_on_drop() {
        let slots = WorkSlots::new(2, "--max-concurrent-requests");
        let a = slots.try_enter();
        let b = slots.try_enter();
        assert!(a.is_ok() && b.is_ok());
        let Err(refused) = slots.try_enter() else {
            panic!("a third request got a slot")
        };
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            refused.message(),
            "the server is busy: 2 requests are in progress, its limit (--max-concurrent-requests); retry later"
        );
        drop(a);
        assert!(slots.try_enter().is_ok());
    }

    #[test]
    fn the_guard_raises_the_interrupt_when_dropped() {
        let interrupt = Interrupt::new();
        let guard = interrupt.raise_on_drop();
        assert!(!interrupt.is_raised());
        drop(guard);
        assert!(interrupt.is_raised());
    }
}
