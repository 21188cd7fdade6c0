//! The object store: every object as compact JSON text, keyed by storage resource,
//! namespace and name, with the metadata the store indexes (labels, owners) parsed out;
//! one global resourceVersion counter; and, per resource, a bounded history of changes
//! from which watches are served. A watch from a version older than the history answers
//! 410 Gone, like a real API server after etcd compaction.
//!
//! The store knows nothing of API semantics; `api` decides what to write.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;

use crate::object;

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type ObjKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// A stored object: its JSON text (apiVersion and kind first) and the metadata that
/// lists, selectors and indices need without parsing it. Objects are kept as text because
/// a JSON tree costs ten times its text in memory; reads parse on demand.
#[derive(Debug)]
pub struct Stored {
    json: Box<str>,
    /// Where the fields after apiVersion and kind start (for list items, which omit them).
    rest: usize,
    pub key: ObjKey,
    pub api_version: String,
    pub uid: String,
    pub labels: Vec<(String, String)>,
    pub owners: Vec<String>,
    /// The uid of the controller owner reference, if any.
    pub controller: Option<String>,
    /// `spec.nodeName`, for pods; empty otherwise.
    pub node_name: String,
}

impl Stored {
    fn encode(obj: &Value) -> Self {
        let mut buf = String::with_capacity(1024);
        buf.push('{');
        let mut first = true;
        let map = obj.as_object();
        let push = |buf: &mut String, k: &str, v: &Value, first: &mut bool| {
            if !*first {
                buf.push(',');
            }
            *first = false;
            buf.push_str(&Value::String(k.to_string()).to_string());
            buf.push(':');
            buf.push_str(&v.to_string());
        };
        for k in ["apiVersion", "kind"] {
            if let Some(v) = map.and_then(|m| m.get(k)) {
                push(&mut buf, k, v, &mut first);
            }
        }
        let rest = buf.len();
        for (k, v) in map.into_iter().flatten() {
            if k != "apiVersion" && k != "kind" {
                push(&mut buf, k, v, &mut first);
            }
        }
        buf.push('}');
        Stored {
            json: buf.into_boxed_str(),
            rest,
            key: key_of(obj),
            api_version: obj
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            uid: object::uid(obj).to_string(),
            labels: object::labels(obj).into_iter().collect(),
            owners: object::owner_uids(obj),
            controller: object::owner_refs(obj)
                .into_iter()
                .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
                .and_then(|r| r.get("uid").and_then(Value::as_str).map(str::to_string)),
            node_name: object::get_str(obj, &["spec", "nodeName"])
                .unwrap_or("")
                .to_string(),
        }
    }

    /// The object as JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The object as JSON text without `apiVersion` and `kind` (as built-in list items).
    pub fn json_without_type_meta(&self) -> String {
        let rest = &self.json[self.rest..];
        format!("{{{}", rest.strip_prefix(',').unwrap_or(rest))
    }

    /// The object, parsed.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    pub fn value_arc(&self) -> Arc<Value> {
        Arc::new(self.value())
    }

    /// Parses the object straight into a type (cheaper than through a `Value`).
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.json)
    }

    pub fn name(&self) -> &str {
        &self.key.1
    }

    pub fn namespace(&self) -> &str {
        &self.key.0
    }

    pub fn label_map(&self) -> BTreeMap<String, String> {
        self.labels.iter().cloned().collect()
    }
}

/// One write, as watchers see it.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub kind: ChangeKind,
    /// The object after the change; for deletions the last state, with the deletion's
    /// resourceVersion.
    pub object: Arc<Stored>,
    /// The object before the change (absent for additions).
    pub old: Option<Arc<Stored>>,
}

/// Watching from a version whose changes are no longer retained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub oldest_available: u64,
}

struct Table {
    objects: BTreeMap<ObjKey, Arc<Stored>>,
    history: VecDeque<Arc<Change>>,
    /// Highest resourceVersion whose change was dropped from `history`.
    compacted_through: u64,
    notify: watch::Sender<u64>,
}

impl Table {
    fn new() -> Self {
        Table {
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            compacted_through: 0,
            notify: watch::Sender::new(0),
        }
    }
}

/// A location in the store.
pub type Location = (String, ObjKey);

pub struct Store {
    tables: HashMap<String, Table>,
    rv: u64,
    history_limit: usize,
    by_uid: HashMap<String, Location>,
    dependents: HashMap<String, BTreeSet<Location>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("rv", &self.rv)
            .field("tables", &self.tables.len())
            .finish()
    }
}

pub fn key_of(obj: &Value) -> ObjKey {
    (
        object::namespace(obj).to_string(),
        object::name(obj).to_string(),
    )
}

impl Store {
    /// A store that keeps the last `history_limit` changes of each resource.
    pub fn new(history_limit: usize) -> Self {
        Store {
            tables: HashMap::new(),
            rv: 1,
            history_limit: history_limit.max(1),
            by_uid: HashMap::new(),
            dependents: HashMap::new(),
        }
    }

    /// The current (latest) resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    fn table_mut(&mut self, storage: &str) -> &mut Table {
        self.tables
            .entry(storage.to_string())
            .or_insert_with(Table::new)
    }

    /// The object, parsed.
    pub fn get(&self, storage: &str, key: &ObjKey) -> Option<Arc<Value>> {
        self.get_stored(storage, key).map(|s| s.value_arc())
    }

    pub fn get_stored(&self, storage: &str, key: &ObjKey) -> Option<&Arc<Stored>> {
        self.tables.get(storage)?.objects.get(key)
    }

    pub fn contains(&self, storage: &str, key: &ObjKey) -> bool {
        self.get_stored(storage, key).is_some()
    }

    pub fn len(&self, storage: &str) -> usize {
        self.tables.get(storage).map_or(0, |t| t.objects.len())
    }

    /// Objects in key order, optionally within one namespace, strictly after `after`.
    pub fn range<'a>(
        &'a self,
        storage: &str,
        namespace: Option<&'a str>,
        after: Option<&ObjKey>,
    ) -> Box<dyn Iterator<Item = &'a Arc<Stored>> + 'a> {
        use std::ops::Bound;
        let Some(table) = self.tables.get(storage) else {
            return Box::new(std::iter::empty());
        };
        let lower = match (after, namespace) {
            (Some(k), _) => Bound::Excluded(k.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let iter = table
            .objects
            .range((lower, Bound::Unbounded))
            .take_while(move |((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, v)| v);
        Box::new(iter)
    }

    /// Whether any object of the resource lives in the namespace.
    pub fn any_in_namespace(&self, storage: &str, namespace: &str) -> bool {
        self.range(storage, Some(namespace), None).next().is_some()
    }

    /// Storage keys that hold at least one object.
    pub fn storages(&self) -> Vec<String> {
        self.tables
            .iter()
            .filter(|(_, t)| !t.objects.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn locate_uid(&self, uid: &str) -> Option<&Location> {
        self.by_uid.get(uid)
    }

    /// Objects whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<Location> {
        self.dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, storage: &str, change: Arc<Change>) {
        let limit = self.history_limit;
        let table = self.table_mut(storage);
        table.history.push_back(change.clone());
        while table.history.len() > limit {
            if let Some(dropped) = table.history.pop_front() {
                table.compacted_through = dropped.rv;
            }
        }
        table.notify.send_replace(change.rv);
    }

    fn index(&mut self, storage: &str, old: Option<&Stored>, new: Option<&Stored>) {
        if let Some(old) = old {
            let loc: Location = (storage.to_string(), old.key.clone());
            if !old.uid.is_empty() {
                self.by_uid.remove(&old.uid);
            }
            for owner in &old.owners {
                if let Some(set) = self.dependents.get_mut(owner) {
                    set.remove(&loc);
                    if set.is_empty() {
                        self.dependents.remove(owner);
                    }
                }
            }
        }
        if let Some(new) = new {
            let loc: Location = (storage.to_string(), new.key.clone());
            if !new.uid.is_empty() {
                self.by_uid.insert(new.uid.clone(), loc.clone());
            }
            for owner in &new.owners {
                self.dependents
                    .entry(owner.clone())
                    .or_default()
                    .insert(loc.clone());
            }
        }
    }

    /// Writes an object (adding or replacing it), assigning the next resourceVersion.
    /// Returns the object as written.
    pub fn put(&mut self, storage: &str, mut obj: Value) -> Arc<Value> {
        let rv = self.next_rv();
        object::set_meta(&mut obj, "resourceVersion", Value::String(rv.to_string()));
        let stored = Arc::new(Stored::encode(&obj));
        let old = self
            .table_mut(storage)
            .objects
            .insert(stored.key.clone(), stored.clone());
        self.index(storage, old.as_deref(), Some(&stored));
        let change = Arc::new(Change {
            rv,
            kind: if old.is_some() {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            },
            object: stored,
            old,
        });
        self.record(storage, change);
        Arc::new(obj)
    }

    /// Removes an object; the DELETED change carries the deletion's resourceVersion.
    /// Returns the object's last state.
    pub fn remove(&mut self, storage: &str, key: &ObjKey) -> Option<Arc<Value>> {
        let old = self.tables.get_mut(storage)?.objects.remove(key)?;
        let rv = self.next_rv();
        self.index(storage, Some(&old), None);
        let mut last = old.value();
        object::set_meta(&mut last, "resourceVersion", Value::String(rv.to_string()));
        let change = Arc::new(Change {
            rv,
            kind: ChangeKind::Deleted,
            object: Arc::new(Stored::encode(&last)),
            old: Some(old),
        });
        self.record(storage, change);
        Some(Arc::new(last))
    }

    /// A receiver that is notified with the latest resourceVersion of each change to the
    /// resource.
    pub fn subscribe(&mut self, storage: &str) -> watch::Receiver<u64> {
        self.table_mut(storage).notify.subscribe()
    }

    /// Up to `max` changes of the resource after `rv`, oldest first.
    pub fn changes_since(
        &self,
        storage: &str,
        rv: u64,
        max: usize,
    ) -> Result<Vec<Arc<Change>>, Compacted> {
        let Some(table) = self.tables.get(storage) else {
            return Ok(Vec::new());
        };
        if rv < table.compacted_through {
            return Err(Compacted {
                oldest_available: table.compacted_through,
            });
        }
        let start = table.history.partition_point(|c| c.rv <= rv);
        Ok(table
            .history
            .iter()
            .skip(start)
            .take(max)
            .cloned()
            .collect())
    }

    /// Whether a list or watch from `rv` can still be served consistently.
    pub fn is_compacted(&self, storage: &str, rv: u64) -> bool {
        self.tables
            .get(storage)
            .is_some_and(|t| rv < t.compacted_through)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(ns: &str, name: &str, uid: &str, owner: Option<&str>) -> Value {
        let mut v = json!({"metadata": {"namespace": ns, "name": name, "uid": uid}});
        if let Some(o) = owner {
            v["metadata"]["ownerReferences"] =
                json!([{"uid": o, "name": "o", "kind": "X", "apiVersion": "v1"}]);
        }
        v
    }

    #[test]
    fn versions_history_and_compaction() {
        let mut s = Store::new(2);
        let a = s.put("pods", obj("d", "a", "u1", None));
        let a_rv: u64 = object::resource_version(&a).parse().unwrap();
        let b = s.put("pods", obj("d", "a", "u1", None));
        let b_rv: u64 = object::resource_version(&b).parse().unwrap();
        assert!(b_rv > a_rv);
        let c = s.remove("pods", &("d".into(), "a".into())).unwrap();
        assert!(object::resource_version(&c).parse::<u64>().unwrap() > b_rv);
        // history keeps 2: b and c
        let changes = s.changes_since("pods", b_rv - 1, 10).unwrap();
        assert_eq!(
            changes.iter().map(|c| c.kind).collect::<Vec<_>>(),
            [ChangeKind::Modified, ChangeKind::Deleted]
        );
        assert_eq!(s.changes_since("pods", a_rv, 10).unwrap().len(), 2);
        assert!(s.changes_since("pods", a_rv - 1, 10).is_err());
        assert!(s.is_compacted("pods", a_rv - 1));
        // other resources are unaffected
        assert!(s.changes_since("nodes", 0, 10).unwrap().is_empty());
    }

    #[test]
    fn stored_objects_round_trip() {
        let v = json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "kind": "Pod", "apiVersion": "v1", "data": {"k": 1}});
        let s = Stored::encode(&v);
        assert!(s.json().starts_with(r#"{"apiVersion":"v1","kind":"Pod","#));
        assert_eq!(s.value(), v);
        let bare: Value = serde_json::from_str(&s.json_without_type_meta()).unwrap();
        assert_eq!(
            bare,
            json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "data": {"k": 1}})
        );
        assert_eq!(s.labels, vec![("a".to_string(), "b".to_string())]);
        let only = Stored::encode(&json!({"apiVersion": "v1", "kind": "X"}));
        assert_eq!(only.json_without_type_meta(), "{}");
        let untyped = Stored::encode(&json!({"a": 1}));
        assert_eq!(untyped.json_without_type_meta(), r#"{"a":1}"#);
    }

    #[test]
    fn ranges_and_indices() {
        let mut s = Store::new(100);
        s.put("pods", obj("a", "x", "u1", None));
        s.put("pods", obj("b", "x", "u2", Some("owner")));
        s.put("pods", obj("b", "y", "u3", Some("owner")));
        s.put("pods", obj("c", "x", "u4", None));
        let names = |it: Box<dyn Iterator<Item = &Arc<Stored>> + '_>| {
            it.map(|v| format!("{}/{}", v.namespace(), v.name()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(s.range("pods", Some("b"), None)), ["b/x", "b/y"]);
        assert_eq!(
            names(s.range("pods", None, Some(&("b".into(), "x".into())))),
            ["b/y", "c/x"]
        );
        assert_eq!(s.dependents_of("owner").len(), 2);
        assert_eq!(
            s.locate_uid("u3").unwrap().1,
            ("b".to_string(), "y".to_string())
        );
        s.remove("pods", &("b".into(), "y".into()));
        assert_eq!(s.dependents_of("owner").len(), 1);
        assert!(s.locate_uid("u3").is_none());
    }
}
