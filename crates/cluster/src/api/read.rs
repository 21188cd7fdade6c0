//! Reads: get, and list with selectors, pagination and resourceVersion semantics.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use super::served::{check_fields, stored_selected};
use super::{ListOptions, ListResult, State};
use crate::error::ApiError;
use crate::resources::ResourceDef;
use crate::store::ObjKey;

fn encode_continue(rv: u64, key: &ObjKey) -> String {
    let doc = json!({"v": "meta.k8s.io/v1", "rv": rv, "ns": key.0, "name": key.1});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(doc.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, ObjKey), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let rv = doc.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    let ns = doc.get("ns").and_then(Value::as_str).ok_or_else(bad)?;
    let name = doc.get("name").and_then(Value::as_str).ok_or_else(bad)?;
    Ok((rv, (ns.to_string(), name.to_string())))
}

/// Parses a resourceVersion parameter; empty means "unset".
pub fn parse_rv(rv: Option<&str>) -> Result<Option<u64>, ApiError> {
    match rv {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!("Invalid value: {s:?}: invalid resource version"))
        }),
    }
}

impl State {
    /// The stored object (in storage shape), or 404.
    pub fn get(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.store
            .get(&def.storage, &Self::key(def, ns, name))
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))
    }

    /// Lists objects, optionally in one namespace, with selectors and pagination.
    pub fn list(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListResult, ApiError> {
        check_fields(def, &opts.fields)?;
        let current = self.store.current_rv();
        let requested = parse_rv(opts.resource_version.as_deref())?;
        if let Some(rv) = requested {
            if rv > current {
                return Err(ApiError::timeout(format!(
                    "Too large resource version: {rv}, current: {current}"
                )));
            }
            if opts.version_match.as_deref() == Some("Exact") && rv != current {
                return Err(ApiError::expired(format!(
                    "The resourceVersion for the provided list is too old: {rv}"
                )));
            }
        }
        let (list_rv, after) = match opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => {
                let (rv, key) = decode_continue(token)?;
                if self.store.is_compacted(&def.storage, rv) {
                    return Err(ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results.",
                    ));
                }
                (rv, Some(key))
            }
            None => (current, None),
        };
        let ns = if def.namespaced { ns } else { None };
        let limit = opts.limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut last_key = None;
        let mut more = false;
        let mut remaining = 0u64;
        let unfiltered = opts.labels.is_empty() && opts.fields.is_empty();
        for obj in self.store.range(&def.storage, ns, after.as_ref()) {
            if !stored_selected(def, obj, &opts.labels, &opts.fields) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                more = true;
                if !unfiltered {
                    break;
                }
                remaining += 1;
                continue;
            }
            last_key = Some(obj.key.clone());
            items.push(obj.clone());
        }
        let continue_token = match (more, last_key) {
            (true, Some(k)) => Some(encode_continue(list_rv, &k)),
            _ => None,
        };
        Ok(ListResult {
            items,
            resource_version: list_rv,
            remaining: (more && unfiltered).then_some(remaining),
            continue_token,
        })
    }
}
