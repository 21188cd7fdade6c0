//! Plumbing shared by the in-process controllers (kubelet, scheduler, workloads,
//! disruption): change feeds read straight from the store's history, and Events.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::api::{ApiServer, State, WriteOptions};
use crate::object;
use crate::store::Change;

/// The changes of one resource since the last look, read from the store's history.
pub(crate) struct Feed {
    storage: String,
    rx: watch::Receiver<u64>,
    pos: u64,
}

/// What a feed has for a controller.
pub(crate) enum Batch {
    Changes(Vec<Arc<Change>>),
    /// History was compacted before the controller caught up: it must look at everything.
    Resync,
}

impl Feed {
    /// A feed starting now; the controller lists the current state itself.
    pub fn new(api: &ApiServer, storage: &str) -> Self {
        let mut st = api.lock();
        let rx = st.store.subscribe(storage);
        let pos = st.store.current_rv();
        Feed {
            storage: storage.to_string(),
            rx,
            pos,
        }
    }

    pub fn fetch(&mut self, api: &ApiServer) -> Batch {
        self.rx.borrow_and_update();
        let st = api.lock();
        match st.store.changes_since(&self.storage, self.pos, usize::MAX) {
            Ok(changes) => {
                if let Some(last) = changes.last() {
                    self.pos = last.rv;
                }
                Batch::Changes(changes)
            }
            Err(_) => {
                self.pos = st.store.current_rv();
                Batch::Resync
            }
        }
    }
}

/// Waits until any feed has news.
pub(crate) async fn any_changed(feeds: &mut [Feed]) {
    let futs: Vec<_> = feeds.iter_mut().map(|f| Box::pin(f.rx.changed())).collect();
    if futs.is_empty() {
        futures::future::pending::<()>().await;
    }
    let _ = futures::future::select_all(futs).await;
}

/// Records a core/v1 Event about an object, as a component of the cluster would.
pub(crate) fn record_event(
    st: &mut State,
    about: &Value,
    kind_type: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let Some(def) = st.registry.find("", "v1", "events") else {
        return;
    };
    let ns = match object::namespace(about) {
        "" => "default",
        ns => ns,
    }
    .to_string();
    let now = st.now();
    let name = object::name(about);
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": format!("{name}."), "namespace": ns},
        "involvedObject": {
            "apiVersion": about.get("apiVersion").cloned().unwrap_or(Value::Null),
            "kind": about.get("kind").cloned().unwrap_or(Value::Null),
            "name": name,
            "namespace": object::namespace(about),
            "uid": object::uid(about),
            "resourceVersion": object::resource_version(about),
        },
        "reason": reason,
        "message": message,
        "type": kind_type,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    let _ = st.create(&def, Some(&ns), event, &WriteOptions::manager(component));
}
