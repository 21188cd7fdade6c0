//! What a pod requests and what a node offers, in exact milli-units, and whether the one
//! fits in the other.
//!
//! Amounts follow kube-scheduler: cpu in millicores (`MilliValue()`, rounded up), every
//! other resource in whole units (`Value()`, rounded up); a [`ResourceList`] holds both as
//! milli-units so sums and comparisons stay exact.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as api;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity::{ceil_units, parse_milli};
use crate::validate::FieldError;
use crate::values::{Unit, ValueError};

/// Resource amounts in milli-units by resource name (`cpu`, `memory`, `pods`,
/// `nvidia.com/gpu`): cpu rounded up to a millicore, the others to whole units.
pub type ResourceList = BTreeMap<String, i128>;

/// Amounts at or above this many units (millicores for cpu) are refused: past it they no
/// longer fit the `int64` Kubernetes counts them in.
const MAX_UNITS: i128 = 9_000_000_000_000_000_000;

/// Why a quantity cannot be used.
enum Unusable {
    NotAQuantity,
    OutOfRange,
}

impl Unusable {
    fn message(&self, resource: &str, q: &Quantity) -> String {
        match self {
            Unusable::NotAQuantity => {
                let unit = if resource == "cpu" {
                    Unit::Cores
                } else {
                    Unit::Bytes
                };
                ValueError {
                    text: q.0.clone(),
                    unit,
                    detail: String::new(),
                }
                .to_string()
            }
            Unusable::OutOfRange => format!("{:?} is out of range", q.0),
        }
    }
}

/// One quantity of a resource in milli-units, exact (sums round once, at the end).
fn amount(resource: &str, q: &Quantity) -> Result<i128, Unusable> {
    let milli = parse_milli(&q.0).ok_or(Unusable::NotAQuantity)?;
    let units = if resource == "cpu" {
        milli
    } else {
        ceil_units(milli)
    };
    if (0..MAX_UNITS).contains(&units) {
        Ok(milli)
    } else {
        Err(Unusable::OutOfRange)
    }
}

/// An amount rounded up as kube-scheduler counts the resource: cpu to the millicore
/// (quantities already are), the others to whole units.
fn rounded(resource: &str, milli: i128) -> i128 {
    if resource == "cpu" {
        milli
    } else {
        ceil_units(milli) * 1000
    }
}

/// Reads quantities into a list; `strict` refuses the first unusable one (naming its
/// field), otherwise it is left out.
struct Reader {
    strict: bool,
}

impl Reader {
    fn read<'q>(
        &self,
        quantities: impl IntoIterator<Item = (&'q String, &'q Quantity)>,
        field: impl Fn(&str) -> String,
        mut add: impl FnMut(&str, i128),
    ) -> Result<(), FieldError> {
        for (resource, q) in quantities {
            match amount(resource, q) {
                Ok(v) => add(resource, v),
                Err(e) if self.strict => {
                    return Err(FieldError::new(field(resource), e.message(resource, q)));
                }
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// A container's requests; a limit stands in for a request it does not make.
    fn container(&self, c: &api::Container, field: &str) -> Result<ResourceList, FieldError> {
        let mut out = ResourceList::new();
        let resources = c.resources.as_ref();
        let requests = resources.and_then(|r| r.requests.as_ref());
        let limits = resources.and_then(|r| r.limits.as_ref());
        self.read(
            requests.into_iter().flatten(),
            |r| format!("{field}.resources.requests[{r:?}]"),
            |r, v| {
                out.insert(r.to_string(), v);
            },
        )?;
        self.read(
            limits
                .into_iter()
                .flatten()
                .filter(|(r, _)| requests.is_none_or(|req| !req.contains_key(*r))),
            |r| format!("{field}.resources.limits[{r:?}]"),
            |r, v| {
                out.insert(r.to_string(), v);
            },
        )?;
        Ok(out)
    }

    /// The larger of the sum of the containers' requests and the largest init
    /// container's, plus the pod overhead, plus one pod.
    fn pod(&self, spec: &api::PodSpec) -> Result<ResourceList, FieldError> {
        let mut total = ResourceList::new();
        for (i, c) in spec.containers.iter().enumerate() {
            for (k, v) in self.container(c, &format!("containers[{i}]"))? {
                *total.entry(k).or_default() += v;
            }
        }
        for (i, c) in spec.init_containers.iter().flatten().enumerate() {
            for (k, v) in self.container(c, &format!("initContainers[{i}]"))? {
                let e = total.entry(k).or_default();
                *e = (*e).max(v);
            }
        }
        self.read(
            spec.overhead.iter().flatten(),
            |r| format!("overhead[{r:?}]"),
            |r, v| *total.entry(r.to_string()).or_default() += v,
        )?;
        for (resource, v) in total.iter_mut() {
            *v = rounded(resource, *v);
        }
        total.insert("pods".into(), 1000);
        Ok(total)
    }

    /// A node's allocatable resources; a node that reports none offers its capacity (the
    /// API server defaults allocatable to capacity).
    fn node(&self, status: Option<&api::NodeStatus>) -> Result<ResourceList, FieldError> {
        let mut out = ResourceList::new();
        let (list, name) = match status {
            Some(api::NodeStatus {
                allocatable: Some(a),
                ..
            }) => (Some(a), "allocatable"),
            Some(s) => (s.capacity.as_ref(), "capacity"),
            None => (None, "allocatable"),
        };
        self.read(
            list.into_iter().flatten(),
            |r| format!("status.{name}[{r:?}]"),
            |r, v| {
                out.insert(r.to_string(), rounded(r, v));
            },
        )?;
        Ok(out)
    }
}

/// What a pod spec requests: the larger of the sum of its containers' requests and the
/// largest init container's, plus the pod overhead, plus one `pods` slot. A container that
/// gives a limit but no request requests its limit. Errors name the field relative to the
/// spec (`containers[0].resources.requests["cpu"]`).
pub fn pod_requests(spec: &api::PodSpec) -> Result<ResourceList, FieldError> {
    Reader { strict: true }.pod(spec)
}

/// What a pod spec requests, leaving out quantities that do not parse or are negative
/// (the embedded cluster's API server stores them unchecked; a real one rejects them).
pub fn effective_pod_requests(spec: &api::PodSpec) -> ResourceList {
    Reader { strict: false }.pod(spec).unwrap_or_default()
}

/// What a node offers: its allocatable resources, or its capacity when it reports no
/// allocatable. Errors name the field relative to the node (`status.allocatable["cpu"]`).
pub fn node_allocatable(node: &api::Node) -> Result<ResourceList, FieldError> {
    Reader { strict: true }.node(node.status.as_ref())
}

/// What a node offers, leaving out quantities that do not parse.
pub fn effective_node_allocatable(node: &api::Node) -> ResourceList {
    Reader { strict: false }
        .node(node.status.as_ref())
        .unwrap_or_default()
}

/// Whether a request fits in what is free of one resource. A request of nothing fits even
/// on an overcommitted node, as in kube-scheduler.
#[inline]
pub fn amount_fits<T: PartialOrd + Default>(request: T, free: T) -> bool {
    request <= T::default() || request <= free
}

/// The first resource (by name) a pod's requests do not fit in, given what the node
/// offers and what its pods already use; `None` when they fit. A resource the node does
/// not offer is offered at 0.
pub fn insufficient<'a>(
    requests: &'a ResourceList,
    allocatable: &ResourceList,
    used: &ResourceList,
) -> Option<&'a str> {
    requests
        .iter()
        .find(|(name, want)| {
            let have = allocatable.get(*name).copied().unwrap_or(0);
            let taken = used.get(*name).copied().unwrap_or(0);
            !amount_fits(**want, have - taken)
        })
        .map(|(name, _)| name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> api::PodSpec {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn requests_sum_containers_take_init_maximum_add_overhead() {
        let s = spec(serde_json::json!({
            "overhead": {"cpu": "100m"},
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3", "memory": "1Gi"}}}],
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "b", "resources": {"limits": {"cpu": "500m", "memory": "2Gi", "nvidia.com/gpu": "1"}}}
            ]
        }));
        let r = pod_requests(&s).unwrap_or_default();
        assert_eq!(r["cpu"], 3100);
        assert_eq!(r["memory"], (3i128 << 30) * 1000);
        assert_eq!(r["nvidia.com/gpu"], 1000);
        assert_eq!(r["pods"], 1000);
        assert_eq!(effective_pod_requests(&s), r);
    }

    /// The planner read quantities as floats and rounded each one up: `9m` of cpu became
    /// 10 millicores and `2.007` 2008, where the embedded cluster counted 9 and 2007.
    /// Kubernetes counts exactly, like the cluster.
    #[test]
    fn cpu_is_exact_to_the_millicore() {
        let s = spec(serde_json::json!({"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "9m"}}},
            {"name": "b", "resources": {"requests": {"cpu": "2.007"}}},
            {"name": "c", "resources": {"requests": {"cpu": "0.1"}}},
            {"name": "d", "resources": {"requests": {"cpu": "100m"}}}
        ]}));
        assert_eq!(pod_requests(&s).map(|r| r["cpu"]), Ok(9 + 2007 + 100 + 100));
    }

    /// Memory and the other resources count in whole units, rounded up once for the pod
    /// (kube-scheduler's `Value()` of the summed quantity): two containers asking for half
    /// a byte each ask for one byte. The planner rounded each quantity up (two bytes), the
    /// embedded cluster counted milli-bytes.
    #[test]
    fn other_resources_round_up_to_whole_units_once() {
        let s = spec(serde_json::json!({"containers": [
            {"name": "a", "resources": {"requests": {"memory": "500m"}}},
            {"name": "b", "resources": {"requests": {"memory": "0.5"}}},
            {"name": "c", "resources": {"requests": {"example.com/fpga": "1500m"}}}
        ]}));
        let r = pod_requests(&s).unwrap_or_default();
        assert_eq!(r["memory"], 1000);
        assert_eq!(r["example.com/fpga"], 2000);
    }

    #[test]
    fn unusable_quantities_name_the_field() {
        let s = spec(serde_json::json!({"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "2", "memory": "-1Gi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "four"}}}
        ]}));
        assert_eq!(
            pod_requests(&s).err().map(|e| e.to_string()).as_deref(),
            Some("containers[0].resources.requests[\"memory\"]: \"-1Gi\" is out of range")
        );
        // The embedded cluster leaves them out (it used to subtract the negative one).
        let r = effective_pod_requests(&s);
        assert_eq!(r.get("cpu"), Some(&2000));
        assert_eq!(r.get("memory"), None);
    }

    /// A node that reports no allocatable offers its capacity (the API server's
    /// defaulting); the planner used to read it as offering nothing.
    #[test]
    fn allocatable_defaults_to_capacity() {
        let node = |status: serde_json::Value| -> api::Node {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "n"}, "status": status}))
                .unwrap_or_default()
        };
        let capacity_only = node(serde_json::json!({"capacity": {"cpu": "2", "pods": "10"}}));
        let a = node_allocatable(&capacity_only).unwrap_or_default();
        assert_eq!((a["cpu"], a["pods"]), (2000, 10_000));
        let both =
            node(serde_json::json!({"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3500m"}}));
        assert_eq!(node_allocatable(&both).map(|a| a["cpu"]), Ok(3500));
        let bad = node(serde_json::json!({"allocatable": {"cpu": "lots", "memory": "1Gi"}}));
        assert_eq!(
            node_allocatable(&bad).err().map(|e| e.field),
            Some("status.allocatable[\"cpu\"]".to_string())
        );
        assert_eq!(
            effective_node_allocatable(&bad),
            ResourceList::from([("memory".to_string(), (1i128 << 30) * 1000)])
        );
    }

    /// A pod that requests none of a resource fits on a node overcommitted in it, as in
    /// kube-scheduler; the planner used to refuse it.
    #[test]
    fn nothing_requested_fits_an_overcommitted_node() {
        let allocatable = ResourceList::from([("cpu".into(), 1000), ("pods".into(), 10_000)]);
        let used = ResourceList::from([("cpu".into(), 1500), ("pods".into(), 1000)]);
        let none = ResourceList::from([("cpu".into(), 0), ("pods".into(), 1000)]);
        assert_eq!(insufficient(&none, &allocatable, &used), None);
        let some = ResourceList::from([("cpu".into(), 1), ("pods".into(), 1000)]);
        assert_eq!(insufficient(&some, &allocatable, &used), Some("cpu"));
        assert!(amount_fits(0i64, -500));
        assert!(!amount_fits(1i64, -500));
    }
}
