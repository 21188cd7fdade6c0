//! Watches: newline-delimited JSON watch events streamed from a resource's change history,
//! filtered by namespace, name and selectors, with bookmarks, a server-side timeout, and
//! `410 Gone` (as an ERROR event, like a real API server's watch cache) when the requested
//! resourceVersion is older than the retained history.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiServer, served_natively, served_value, stored_selected};
use crate::error::ApiError;
use crate::object;
use crate::resources::ResourceDef;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Change, ChangeKind, Stored};
use crate::table::{self, IncludeObject};

/// How watch event objects are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Object,
    Table(IncludeObject),
    Metadata,
}

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub def: Arc<ResourceDef>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// Start after this version; `None` (or 0) starts with the current state as ADDED events.
    pub resource_version: Option<u64>,
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Duration,
    pub bookmark_interval: Duration,
    pub format: Format,
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    object: &'a Value,
}

fn encode(kind: &str, object: &Value) -> Bytes {
    let mut buf = serde_json::to_vec(&Event { kind, object }).unwrap_or_default();
    buf.push(b'\n');
    Bytes::from(buf)
}

fn bookmark(def: &ResourceDef, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta})
}

struct Watcher {
    api: Arc<ApiServer>,
    spec: WatchSpec,
    tx: mpsc::Sender<Bytes>,
}

impl Watcher {
    fn wanted(&self, obj: &Stored) -> bool {
        if self.spec.def.namespaced
            && let Some(ns) = &self.spec.namespace
            && obj.namespace() != ns
        {
            return false;
        }
        if let Some(name) = &self.spec.name
            && obj.name() != name
        {
            return false;
        }
        stored_selected(&self.spec.def, obj, &self.spec.labels, &self.spec.fields)
    }

    fn render(&self, obj: &Value, now: Timestamp) -> Value {
        match self.spec.format {
            Format::Object => obj.clone(),
            Format::Metadata => table::partial_metadata(obj),
            Format::Table(include) => table::table(
                &self.spec.def,
                &[Arc::new(obj.clone())],
                now,
                include,
                json!({"resourceVersion": object::resource_version(obj)}),
                false,
            ),
        }
    }

    /// The watch event a change becomes for this watcher, if any.
    fn event_for(&self, change: &Change) -> Option<(&'static str, Arc<Stored>)> {
        let new = change.object.clone();
        match change.kind {
            ChangeKind::Added => self.wanted(&new).then_some(("ADDED", new)),
            ChangeKind::Deleted => self.wanted(&new).then_some(("DELETED", new)),
            ChangeKind::Modified => {
                let was = change.old.as_ref().is_some_and(|o| self.wanted(o));
                match (was, self.wanted(&new)) {
                    (true, true) => Some(("MODIFIED", new)),
                    (false, true) => Some(("ADDED", new)),
                    (true, false) => Some(("DELETED", new)),
                    (false, false) => None,
                }
            }
        }
    }

    async fn send(&self, kind: &str, obj: &Stored) -> bool {
        let bytes = if self.spec.format == Format::Object && served_natively(&self.spec.def, obj) {
            // The stored text is the served object: no parsing.
            Bytes::from(format!(
                "{{\"type\":\"{kind}\",\"object\":{}}}\n",
                obj.json()
            ))
        } else {
            let now = self.api.clock().now();
            let rendered = self.render(&served_value(&self.spec.def, obj), now);
            encode(kind, &rendered)
        };
        self.tx.send(bytes).await.is_ok()
    }

    async fn send_error(&self, err: ApiError) {
        let _ = self.tx.send(encode("ERROR", &err.to_status())).await;
    }

    /// Sends every change after `pos`; returns the new position, or `None` when the watch
    /// must end (history compacted, client gone).
    async fn drain(&self, mut pos: u64) -> Option<u64> {
        loop {
            let batch = {
                let st = self.api.lock();
                st.store.changes_since(&self.spec.def.storage, pos, 256)
            };
            let batch = match batch {
                Ok(b) => b,
                Err(c) => {
                    self.send_error(ApiError::expired(format!(
                        "too old resource version: {pos} ({})",
                        c.oldest_available
                    )))
                    .await;
                    return None;
                }
            };
            if batch.is_empty() {
                return Some(pos);
            }
            for change in batch {
                pos = change.rv;
                if let Some((kind, obj)) = self.event_for(&change)
                    && !self.send(kind, &obj).await
                {
                    return None;
                }
            }
        }
    }

    /// A version every change of this resource up to which has been delivered.
    fn bookmark_rv(&self, pos: u64) -> Option<u64> {
        let st = self.api.lock();
        match st.store.changes_since(&self.spec.def.storage, pos, 1) {
            Ok(pending) if pending.is_empty() => Some(st.store.current_rv()),
            _ => None,
        }
    }

    async fn run(self, shutdown: CancellationToken) {
        let def = self.spec.def.clone();
        let begun = {
            let mut st = self.api.lock();
            let notify = st.store.subscribe(&def.storage);
            let current = st.store.current_rv();
            match self.spec.resource_version.filter(|rv| *rv > 0) {
                Some(rv) if !self.spec.send_initial_events => {
                    if st.store.is_compacted(&def.storage, rv) {
                        Err(ApiError::expired(format!(
                            "too old resource version: {rv} ({current})"
                        )))
                    } else if rv > current {
                        Err(ApiError::timeout(format!(
                            "Too large resource version: {rv}, current: {current}"
                        )))
                    } else {
                        Ok((notify, rv, Vec::new()))
                    }
                }
                _ => {
                    let ns = if def.namespaced {
                        self.spec.namespace.as_deref()
                    } else {
                        None
                    };
                    let objs: Vec<Arc<Stored>> = st
                        .store
                        .range(&def.storage, ns, None)
                        .filter(|o| self.wanted(o))
                        .cloned()
                        .collect();
                    Ok((notify, current, objs))
                }
            }
        };
        let (mut notify, start, initial) = match begun {
            Ok(b) => b,
            Err(e) => {
                self.send_error(e).await;
                return;
            }
        };
        for obj in &initial {
            if !self.send("ADDED", obj).await {
                return;
            }
        }
        if self.spec.send_initial_events {
            let bm = bookmark(&def, start, true);
            if self.tx.send(encode("BOOKMARK", &bm)).await.is_err() {
                return;
            }
        }
        let Some(mut pos) = self.drain(start).await else {
            return;
        };
        let deadline = tokio::time::sleep(self.spec.timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + self.spec.bookmark_interval,
            self.spec.bookmark_interval,
        );
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = shutdown.cancelled() => break,
                _ = self.tx.closed() => break,
                changed = notify.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    match self.drain(pos).await {
                        Some(p) => pos = p,
                        None => return,
                    }
                }
                _ = ticker.tick(), if self.spec.bookmarks => {
                    if let Some(rv) = self.bookmark_rv(pos)
                        && self.tx.send(encode("BOOKMARK", &bookmark(&def, rv, false))).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
        // A last bookmark before the server closes the watch, as the watch cache sends.
        if self.spec.bookmarks
            && let Some(rv) = self.bookmark_rv(pos)
        {
            let _ = self
                .tx
                .send(encode("BOOKMARK", &bookmark(&def, rv, false)))
                .await;
        }
    }
}

/// Starts a watch; its events arrive on the returned channel, which closes when the watch
/// ends (timeout, 410, shutdown, or the receiver dropped).
pub fn spawn(
    api: Arc<ApiServer>,
    spec: WatchSpec,
    shutdown: CancellationToken,
) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(256);
    let watcher = Watcher { api, spec, tx };
    tokio::spawn(watcher.run(shutdown));
    rx
}
