//! Leader election over a `coordination.k8s.io/v1` Lease.
//!
//! Every replica of a component keeps its caches warm; only the replica holding the
//! component's Lease writes (linkerd's policy controller works the same way). The elector
//! follows client-go's algorithm:
//!
//! - every `retry_period` it reads the Lease; a Lease held by someone else counts as
//!   expired when its record (holder, renewTime) has not changed for `lease_duration` of
//!   *this replica's* time since it first saw that record, so clock skew between replicas
//!   does not matter; an expired or empty Lease is taken with an optimistic-concurrency
//!   replace (`leaseTransitions` + 1, `acquireTime` now), so two replicas never both win;
//! - the holder renews every `retry_period` (`renewTime` now) and steps down as soon as it
//!   has not renewed for `renew_deadline` (< `lease_duration`), so it stops writing before
//!   anyone else may take over;
//! - on shutdown the holder steps down first, then releases the Lease (empty holder) so
//!   that a standby takes over within one `retry_period` instead of a whole lease;
//! - a Lease is this replica's only while it is the one this process last wrote (same
//!   resourceVersion): a Lease naming our identity that some other process wrote (two
//!   replicas given one `--identity`, or a restarted container with its pod's name) is
//!   treated as another holder's, and taken only once it has expired. Identities are
//!   unique per process by default ([`unique_identity`]: host name plus a random suffix,
//!   as client-go's).
//!
//! Timestamps written into the Lease come from the component's [`Clock`] (virtual time on
//! the embedded cluster); every timer is a tokio timer, so elections run on paused time.

use std::sync::Arc;
use std::time::Duration;

use edgeplane_core::clock::Clock;
use futures::Stream;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where the Lease lives and how long leadership lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    pub namespace: String,
    /// One Lease per component: `edgeplane-controller`, `edgeplane-scheduler`.
    pub name: String,
    /// This replica's identity (the pod name in a cluster).
    pub identity: String,
    /// How long a Lease that is not renewed stays valid (written as
    /// `leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// The holder steps down when it could not renew for this long.
    pub renew_deadline: Duration,
    /// How often the Lease is read, renewed or tried.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// client-go's defaults: 15s lease, 10s renew deadline, 2s retry period.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> LeaseConfig {
        LeaseConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What this replica knows about the leadership of its component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The Lease has not been read yet.
    Unknown,
    /// This replica holds the Lease and may write.
    Leader,
    /// Another replica holds the Lease (`holder`), or nobody could take it yet.
    Follower { holder: Option<String> },
}

/// A read handle on this replica's role. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Leadership {
    rx: watch::Receiver<Role>,
}

impl Leadership {
    /// Leadership without election: always the leader (single replica, tests, dev).
    pub fn always() -> Leadership {
        let (_tx, rx) = watch::channel(Role::Leader);
        Leadership { rx }
    }

    /// A handle driven by `tx` (for tests and custom electors).
    pub fn from_receiver(rx: watch::Receiver<Role>) -> Leadership {
        Leadership { rx }
    }

    /// Whether this replica may write now. Check it right before every write.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow() == Role::Leader
    }

    /// Whether the Lease has been read at least once (leader or standby known).
    pub fn is_known(&self) -> bool {
        *self.rx.borrow() != Role::Unknown
    }

    pub fn role(&self) -> Role {
        self.rx.borrow().clone()
    }

    /// The underlying watch channel.
    pub fn watch(&self) -> watch::Receiver<Role> {
        self.rx.clone()
    }

    /// Waits until this replica is the leader.
    pub async fn wait_leader(&self) {
        let mut rx = self.rx.clone();
        // An error means the elector is gone: it will never lead, wait forever.
        if rx.wait_for(|r| *r == Role::Leader).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// A stream that yields once each time this replica becomes the leader (also at the
    /// start when it already is). Controllers reconcile everything then, since a follower
    /// skipped its work.
    pub fn acquisitions(&self) -> impl Stream<Item = ()> + Send + 'static {
        let rx = self.rx.clone();
        futures::stream::unfold((rx, false), |(mut rx, mut was_leader)| async move {
            loop {
                let leader = *rx.borrow_and_update() == Role::Leader;
                if leader && !was_leader {
                    return Some(((), (rx, true)));
                }
                was_leader = leader;
                if rx.changed().await.is_err() {
                    // The elector is gone; the role no longer changes.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

/// Starts electing. The task ends when `shutdown` is cancelled, after stepping down and
/// releasing the Lease if it held it.
pub fn spawn(
    client: Client,
    clock: Arc<dyn Clock>,
    config: LeaseConfig,
    shutdown: CancellationToken,
) -> (Leadership, JoinHandle<()>) {
    let (tx, rx) = watch::channel(Role::Unknown);
    let elector = Elector {
        api: Api::namespaced(client, &config.namespace),
        clock,
        config,
        tx,
        observed: None,
        last_renew: None,
        written_version: None,
    };
    let task = tokio::spawn(elector.run(shutdown));
    (Leadership { rx }, task)
}

/// The last Lease record seen, and when it was first seen.
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    duration: Duration,
    since: Instant,
}

struct Elector {
    api: Api<Lease>,
    clock: Arc<dyn Clock>,
    config: LeaseConfig,
    tx: watch::Sender<Role>,
    observed: Option<Observed>,
    /// When this replica last renewed (or acquired) the Lease.
    last_renew: Option<Instant>,
    /// The resourceVersion of the Lease as this process last wrote it: the Lease is ours
    /// only while it is unchanged since.
    written_version: Option<String>,
}

/// `base` (a pod or host name) with a random suffix, `edge-1_6f3a9c0b21`, so that two
/// processes started with the same name never share an identity (client-go appends a
/// UUID to the host name the same way).
pub fn unique_identity(base: &str) -> String {
    format!("{base}_{:010x}", rand::random::<u64>() >> 24)
}

/// Why the Lease could not be read or written, in one line for the log: the API server's
/// message and reason rather than the whole `Status`, and what to do when the Lease's
/// namespace is missing (a 404 on the Lease's create).
pub fn lease_failure(namespace: &str, name: &str, error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status)
            if status.code == 404 && status.message.starts_with("namespaces \"") =>
        {
            format!(
                "cannot take Lease {namespace}/{name}: namespace {namespace:?} does not exist \
                 (create it, or pass --lease-namespace)"
            )
        }
        kube::Error::Api(status) => format!(
            "cannot take Lease {namespace}/{name}: {} ({} {})",
            status.message, status.code, status.reason
        ),
        other => format!("cannot take Lease {namespace}/{name}: {other}"),
    }
}

enum Attempt {
    Leading,
    Following(Option<String>),
}

impl Elector {
    async fn run(mut self, shutdown: CancellationToken) {
        loop {
            if self.is_leader()
                && self
                    .last_renew
                    .is_none_or(|t| t.elapsed() >= self.config.renew_deadline)
            {
                tracing::warn!(lease = %self.config.name, "could not renew the lease in time: stepping down");
                self.set(Role::Follower { holder: None });
            }
            let attempt =
                tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(Attempt::Leading)) => {
                    self.last_renew = Some(Instant::now());
                    if !self.is_leader() {
                        tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became the leader");
                    }
                    self.set(Role::Leader);
                }
                Ok(Ok(Attempt::Following(holder))) => {
                    if self.is_leader() {
                        tracing::warn!(lease = %self.config.name, ?holder, "lost the lease");
                    }
                    self.set(Role::Follower { holder });
                }
                Ok(Err(error)) => {
                    let why = lease_failure(&self.config.namespace, &self.config.name, &error);
                    tracing::warn!(lease = %self.config.name, "{why}");
                    if !self.is_leader() {
                        let holder = self.observed.as_ref().and_then(|o| o.holder.clone());
                        self.set(Role::Follower { holder });
                    }
                }
                Err(_) => {
                    tracing::warn!(lease = %self.config.name, "leader election attempt timed out");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
        }
        if self.is_leader() {
            // Stop writing first, then hand the Lease over.
            self.set(Role::Follower { holder: None });
            if let Err(error) = self.release().await {
                let why = lease_failure(&self.config.namespace, &self.config.name, &error);
                tracing::warn!(lease = %self.config.name, "could not release the lease: {why}");
            } else {
                tracing::info!(lease = %self.config.name, "released the lease");
            }
        }
    }

    fn is_leader(&self) -> bool {
        *self.tx.borrow() == Role::Leader
    }

    fn set(&self, role: Role) {
        self.tx.send_if_modified(|r| {
            if *r == role {
                false
            } else {
                *r = role;
                true
            }
        });
    }

    fn spec(&self, previous: Option<&LeaseSpec>, acquiring: bool) -> LeaseSpec {
        let now = MicroTime(self.clock.now());
        let transitions = previous.and_then(|s| s.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: if acquiring {
                Some(now.clone())
            } else {
                previous.and_then(|s| s.acquire_time.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if acquiring && previous.is_some() {
                transitions + 1
            } else {
                transitions
            }),
            ..LeaseSpec::default()
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let name = self.config.name.clone();
        let Some(lease) = self.api.get_opt(&name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None, true)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.written_version = created.metadata.resource_version;
                    Ok(Attempt::Leading)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Following(None)),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.config.lease_duration);
        let changed = self.observed.as_ref().is_none_or(|o| {
            o.holder != holder || o.renew_time != spec.renew_time || o.duration != duration
        });
        if changed {
            self.observed = Some(Observed {
                holder: holder.clone(),
                renew_time: spec.renew_time.clone(),
                duration,
                since: Instant::now(),
            });
        }
        // Our identity alone does not make it ours: another process given the same name
        // (or this pod's previous container) may hold it. Ours is what we last wrote.
        let mine = holder.as_deref() == Some(self.config.identity.as_str())
            && self.written_version.is_some()
            && self.written_version == lease.metadata.resource_version;
        let expired = self
            .observed
            .as_ref()
            .is_some_and(|o| o.since.elapsed() >= o.duration);
        if !mine && holder.is_some() && !expired {
            if holder.as_deref() == Some(self.config.identity.as_str()) {
                tracing::warn!(
                    lease = %self.config.name,
                    identity = %self.config.identity,
                    "the lease names this identity but another process wrote it: \
                     waiting for it to expire (give each replica its own --identity)"
                );
            }
            return Ok(Attempt::Following(holder));
        }
        let mut next = lease.clone();
        next.spec = Some(self.spec(Some(&spec), !mine));
        match self.api.replace(&name, &PostParams::default(), &next).await {
            Ok(written) => {
                self.written_version = written.metadata.resource_version.clone();
                if let Some(s) = written.spec {
                    self.observed = Some(Observed {
                        holder: s.holder_identity,
                        renew_time: s.renew_time,
                        duration,
                        since: Instant::now(),
                    });
                }
                Ok(Attempt::Leading)
            }
            // Someone else wrote the Lease in between: they won this round.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Following(holder)),
            Err(e) => Err(e),
        }
    }

    /// Empties the holder so a standby takes over at its next try.
    async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        // Only the Lease as we last wrote it: not another process's under the same name.
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str())
            || lease.metadata.resource_version != self.written_version
        {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(self.clock.now()));
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_identities_keep_the_name_and_differ_per_call() {
        let a = unique_identity("edge-1");
        let b = unique_identity("edge-1");
        assert_ne!(a, b);
        for id in [&a, &b] {
            let (name, suffix) = id.split_once('_').unwrap_or_default();
            assert_eq!(name, "edge-1");
            assert_eq!(suffix.len(), 10, "{id}");
            assert!(suffix.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
    }

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Status", "status": "Failure",
            "code": code, "reason": reason, "message": message, "metadata": {},
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn lease_failures_are_one_line_with_the_cause() {
        let missing = api_error(404, "NotFound", "namespaces \"edgeplane-system\" not found");
        assert_eq!(
            lease_failure("edgeplane-system", "edgeplane-controller", &missing),
            "cannot take Lease edgeplane-system/edgeplane-controller: namespace \"edgeplane-system\" \
             does not exist (create it, or pass --lease-namespace)"
        );
        let forbidden = api_error(
            403,
            "Forbidden",
            "leases is forbidden: User \"x\" cannot create",
        );
        let line = lease_failure("ns", "l", &forbidden);
        assert_eq!(
            line,
            "cannot take Lease ns/l: leases is forbidden: User \"x\" cannot create (403 Forbidden)"
        );
        assert!(!line.contains("Status {") && !line.contains('\n'));
    }
}
