//! The registry of served resources, and the discovery documents (`/api`, `/apis`, group
//! and group-version resource lists) generated from it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::builtins::{BUILTINS, builtin_def};
use super::{Repr, ResourceDef, split_api_version};

/// All served resources.
#[derive(Debug, Clone)]
pub struct Registry {
    defs: Vec<Arc<ResourceDef>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The built-in resources, without any custom resource.
    pub fn builtin() -> Self {
        Registry {
            defs: BUILTINS.iter().map(|s| Arc::new(builtin_def(s))).collect(),
        }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .iter()
            .find(|d| d.group == group && d.version == version && d.plural == plural)
            .cloned()
    }

    /// The definition serving `apiVersion` + `kind`.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceDef>> {
        let (group, version) = split_api_version(api_version);
        self.defs
            .iter()
            .find(|d| d.group == group && d.version == version && d.kind == kind)
            .cloned()
    }

    /// Any served version of a storage key (for internal reads).
    pub fn by_storage(&self, storage: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .iter()
            .find(|d| d.storage == storage && d.repr == Repr::Native)
            .cloned()
    }

    /// Every definition, in registration order.
    pub fn all(&self) -> &[Arc<ResourceDef>] {
        &self.defs
    }

    /// Replaces the definitions served for a CRD.
    pub fn set_crd(&mut self, crd_name: &str, defs: Vec<ResourceDef>) {
        self.remove_crd(crd_name);
        self.defs.extend(defs.into_iter().map(Arc::new));
    }

    pub fn remove_crd(&mut self, crd_name: &str) {
        self.defs
            .retain(|d| d.crd.as_ref().is_none_or(|(n, _)| n != crd_name));
    }

    /// Groups and their versions, preferred version first, in discovery order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut order: Vec<String> = Vec::new();
        let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in &self.defs {
            if d.group.is_empty() {
                continue;
            }
            if !order.contains(&d.group) {
                order.push(d.group.clone());
            }
            let vs = versions.entry(d.group.clone()).or_default();
            if !vs.contains(&d.version) {
                vs.push(d.version.clone());
            }
        }
        order
            .into_iter()
            .map(|g| {
                let mut vs = versions.remove(&g).unwrap_or_default();
                vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
                (g, vs)
            })
            .collect()
    }

    pub fn resources_in(&self, group: &str, version: &str) -> Vec<Arc<ResourceDef>> {
        self.defs
            .iter()
            .filter(|d| d.group == group && d.version == version)
            .cloned()
            .collect()
    }

    /// `GET /api`.
    pub fn api_versions(&self) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        })
    }

    fn group_doc(group: &str, versions: &[String]) -> Value {
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        json!({
            "name": group,
            "versions": vs,
            "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
        })
    }

    /// `GET /apis`.
    pub fn api_group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .iter()
            .map(|(g, vs)| Self::group_doc(g, vs))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `GET /apis/<group>`.
    pub fn api_group(&self, group: &str) -> Option<Value> {
        let (_, vs) = self.groups().into_iter().find(|(g, _)| g == group)?;
        let mut doc = Self::group_doc(group, &vs);
        doc["kind"] = json!("APIGroup");
        doc["apiVersion"] = json!("v1");
        Some(doc)
    }

    /// `GET /api/v1` or `GET /apis/<group>/<version>`.
    pub fn api_resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let defs = self.resources_in(group, version);
        if defs.is_empty() {
            return None;
        }
        let resources: Vec<Value> = defs.iter().flat_map(|d| d.discovery()).collect();
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }))
    }
}

/// Kubernetes version ordering: GA before beta before alpha, higher numbers first.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major: u32 = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let minor_of = |t: &str| t.parse::<u32>().unwrap_or(0);
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(t) = tail.strip_prefix("beta") {
        (2, major, minor_of(t))
    } else if let Some(t) = tail.strip_prefix("alpha") {
        (1, major, minor_of(t))
    } else {
        (0, major, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_served_with_discovery() {
        let r = Registry::builtin();
        let pods = r.find("", "v1", "pods").unwrap();
        assert!(pods.namespaced);
        assert!(pods.supports_field("spec.nodeName"));
        let list = r.api_resource_list("", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["name"].as_str())
            .collect();
        assert!(names.contains(&"pods/eviction"));
        assert!(names.contains(&"nodes"));
        let groups = r.api_group_list();
        assert!(
            groups["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "apps")
        );
        assert_eq!(
            r.find("events.k8s.io", "v1", "events").unwrap().storage,
            "events"
        );
    }

    #[test]
    fn version_ordering() {
        let mut vs = vec!["v1alpha1", "v2", "v1beta1", "v1", "v1beta2"];
        vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(vs, ["v2", "v1", "v1beta2", "v1beta1", "v1alpha1"]);
    }
}
