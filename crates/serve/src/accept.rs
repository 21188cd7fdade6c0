//! Accepting connections: a cap on open connections, and backoff when `accept` fails.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::backoff::accept_backoff;

/// Something connections come from: a `TcpListener`, or a fake in tests.
pub trait Listen: Send {
    type Stream: Send + 'static;
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Stream, SocketAddr)>> + Send;
}

impl Listen for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&self) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
        tokio::net::TcpListener::accept(self).await
    }
}

/// One accepted connection and its slot; drop the slot when the connection ends.
pub struct Accepted<S> {
    pub stream: S,
    pub peer: SocketAddr,
    pub slot: OwnedSemaphorePermit,
}

/// Takes connections from a listener, at most `max_connections` open at once, waiting
/// with [`accept_backoff`] after each failed `accept`.
pub struct Acceptor<L> {
    listener: L,
    slots: Arc<Semaphore>,
    max_connections: usize,
    /// Consecutive failed `accept`s.
    failures: u32,
    /// For the log: which server this is.
    name: &'static str,
}

impl<L: Listen> Acceptor<L> {
    /// `max_connections` of 0 is taken as 1 (a server that accepts nothing is not useful).
    pub fn new(name: &'static str, listener: L, max_connections: usize) -> Acceptor<L> {
        let max_connections = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Acceptor {
            listener,
            slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            failures: 0,
            name,
        }
    }

    pub fn listener(&self) -> &L {
        &self.listener
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.max_connections - self.slots.available_permits()
    }

    /// The next connection, or `None` once `shutdown` is cancelled. At the cap it waits
    /// for a connection to close before accepting; after a failed `accept` it waits
    /// [`accept_backoff`] (logged) instead of retrying at once.
    pub async fn accept(&mut self, shutdown: &CancellationToken) -> Option<Accepted<L::Stream>> {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => return None,
            slot = self.slots.clone().acquire_owned() => slot.ok()?,
        };
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return None,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    if self.failures > 0 {
                        tracing::info!(
                            server = self.name,
                            failures = self.failures,
                            "accepting connections again"
                        );
                    }
                    self.failures = 0;
                    return Some(Accepted { stream, peer, slot });
                }
                Err(error) => {
                    self.failures = self.failures.saturating_add(1);
                    let wait = accept_backoff(self.failures);
                    tracing::warn!(
                        server = self.name,
                        %error,
                        failures = self.failures,
                        wait_ms = wait.as_millis() as u64,
                        "accept failed (out of file descriptors?): waiting before the next try"
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// Fails with EMFILE as many times as asked, then accepts.
    struct Failing {
        results: Mutex<VecDeque<std::io::Result<u32>>>,
        calls: Arc<Mutex<Vec<tokio::time::Instant>>>,
    }

    impl Listen for Failing {
        type Stream = u32;
        async fn accept(&self) -> std::io::Result<(u32, SocketAddr)> {
            self.calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(tokio::time::Instant::now());
            let next = self
                .results
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            match next {
                Some(r) => r.map(|n| (n, SocketAddr::from(([127, 0, 0, 1], 1)))),
                None => std::future::pending().await,
            }
        }
    }

    fn emfile() -> std::io::Error {
        std::io::Error::from_raw_os_error(24)
    }

    #[tokio::test(start_paused = true)]
    async fn failed_accepts_wait_longer_each_time_then_accept() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let listener = Failing {
            results: Mutex::new(
                [
                    Err(emfile()),
                    Err(emfile()),
                    Err(emfile()),
                    Err(emfile()),
                    Ok(7),
                ]
                .into(),
            ),
            calls: calls.clone(),
        };
        let mut acceptor = Acceptor::new("test", listener, 4);
        let shutdown = CancellationToken::new();
        let Some(accepted) = acceptor.accept(&shutdown).await else {
            panic!("no connection")
        };
        assert_eq!(accepted.stream, 7);
        // On paused time the gaps between tries are exactly the waits: a hot loop would
        // have tried again at once (gaps of zero).
        let calls = calls.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps, [5, 10, 20, 40].map(Duration::from_millis).to_vec());
        assert_eq!(acceptor.open_connections(), 1);
        drop(accepted);
        assert_eq!(acceptor.open_connections(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_it_accepts_only_after_a_connection_closes() {
        let listener = Failing {
            results: Mutex::new([Ok(1), Ok(2)].into()),
            calls: Arc::new(Mutex::new(Vec::new())),
        };
        let mut acceptor = Acceptor::new("test", listener, 1);
        let shutdown = CancellationToken::new();
        let first = acceptor.accept(&shutdown).await;
        assert!(first.is_some());
        // The second waits for the first's slot. On paused time, a timeout that elapses
        // means nothing else could run: the listener was not asked again.
        let waited =
            tokio::time::timeout(Duration::from_secs(3600), acceptor.accept(&shutdown)).await;
        assert!(waited.is_err(), "accepted past the cap");
        let queued = acceptor
            .listener()
            .results
            .lock()
            .map(|r| r.len())
            .unwrap_or(0);
        assert_eq!(queued, 1);
        drop(first);
        let again = acceptor.accept(&CancellationToken::new()).await;
        assert_eq!(again.map(|a| a.stream), Some(2));
    }
}
