//! CRD generation: the checked-in YAML under deploy/crds/ is this output.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::chain::ServiceChain;
use crate::constraint::{ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyOffer};
use crate::multicluster::{MecApplication, MemberCluster};
use crate::netctl::NetworkPathCatalogue;
use crate::network::NetworkTopology;
use crate::nf::NetworkFunction;

/// Every CRD edgeplane defines, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        ConstraintPolicy::crd(),
        ConstraintPolicyOffer::crd(),
        ConstraintPolicyBinding::crd(),
        NetworkTopology::crd(),
        NetworkPathCatalogue::crd(),
        NetworkFunction::crd(),
        ServiceChain::crd(),
        MemberCluster::crd(),
        MecApplication::crd(),
    ]
}

/// One YAML document per CRD, `---` separated, as `edgeplane crds` prints them.
pub fn to_yaml(crds: &[CustomResourceDefinition]) -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(crd)?);
    }
    Ok(out)
}

/// The file name under deploy/crds/ of a CRD: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn deploy_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds")
    }

    /// The checked-in CRDs are exactly what the types generate.
    #[test]
    fn checked_in_crds_match_the_types() {
        for crd in all() {
            let path = deploy_dir().join(file_name(&crd));
            let generated = to_yaml(std::slice::from_ref(&crd)).unwrap_or_default();
            let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                generated == checked_in,
                "{} is out of date; regenerate it with `cargo run -p edgeplane -- crds -d deploy/crds -d deploy/helm/edgeplane/crds`",
                path.display()
            );
        }
    }

    /// Walks a schema and reports what the API server would reject: nodes without a type
    /// (structural schemas need one), unsigned formats, mixed properties and
    /// additionalProperties, enums whose values do not have the node's type.
    fn structural_problems(schema: &Value, path: &str, problems: &mut Vec<String>) {
        let Some(node) = schema.as_object() else {
            problems.push(format!("{path}: not an object"));
            return;
        };
        let escape = node.contains_key("x-kubernetes-int-or-string")
            || node.contains_key("x-kubernetes-preserve-unknown-fields");
        let ty = node.get("type").and_then(Value::as_str);
        if ty.is_none() && !escape {
            problems.push(format!("{path}: no type"));
        }
        if let Some(format) = node.get("format").and_then(Value::as_str)
            && format.starts_with("uint")
        {
            problems.push(format!("{path}: format {format}"));
        }
        for forbidden in ["anyOf", "oneOf", "allOf", "$ref", "definitions", "$defs"] {
            if node.contains_key(forbidden) && !path.is_empty() {
                problems.push(format!("{path}: uses {forbidden}"));
            }
        }
        if node.contains_key("properties") && node.contains_key("additionalProperties") {
            problems.push(format!("{path}: both properties and additionalProperties"));
        }
        if let Some(values) = node.get("enum").and_then(Value::as_array) {
            for v in values {
                let ok = match ty {
                    Some("string") => v.is_string(),
                    Some("integer") => v.is_i64(),
                    _ => false,
                };
                if !ok {
                    problems.push(format!("{path}: enum value {v} does not match type {ty:?}"));
                }
            }
        }
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                structural_problems(sub, &format!("{path}.{name}"), problems);
            }
        }
        if let Some(items) = node.get("items") {
            structural_problems(items, &format!("{path}[]"), problems);
        }
        if let Some(extra) = node.get("additionalProperties").filter(|v| v.is_object()) {
            structural_problems(extra, &format!("{path}{{}}"), problems);
        }
    }

    #[test]
    fn schemas_are_structural() {
        for crd in all() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            for version in &crd.spec.versions {
                let schema = version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref());
                let json = serde_json::to_value(schema).unwrap_or(Value::Null);
                let mut problems = Vec::new();
                structural_problems(&json, "", &mut problems);
                assert!(problems.is_empty(), "{name}: {problems:#?}");
                assert!(
                    version
                        .subresources
                        .as_ref()
                        .is_some_and(|s| s.status.is_some()),
                    "{name}: no status subresource"
                );
            }
        }
    }

    /// The schemas carry the admission checks the issue asks for.
    #[test]
    fn schemas_reject_bad_input_at_admission() {
        let find = |kind: &str, pointer: &str| {
            let crd = all().into_iter().find(|c| c.spec.names.kind == kind);
            let schema = crd
                .and_then(|c| c.spec.versions[0].schema.clone())
                .and_then(|s| s.open_api_v3_schema);
            serde_json::to_value(schema)
                .unwrap_or(Value::Null)
                .pointer(pointer)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let offer_spec = "/properties/spec/properties";
        assert_eq!(
            find(
                "ConstraintPolicyOffer",
                &format!("{offer_spec}/violationPolicy/enum")
            ),
            serde_json::json!(["Ignore", "Mediate", "Evict"])
        );
        assert_eq!(
            find(
                "ConstraintPolicyOffer",
                &format!("{offer_spec}/targets/items/properties/kind/enum")
            ),
            serde_json::json!(["Pod", "Site", "NetworkFunction", "Cluster", "ServiceChain"])
        );
        assert_eq!(
            find(
                "ConstraintPolicyOffer",
                &format!("{offer_spec}/targets/items/x-kubernetes-validations/0/rule")
            ),
            serde_json::json!("!has(self.mode) || self.kind == 'ServiceChain'")
        );
        assert!(
            find(
                "ConstraintPolicyOffer",
                &format!("{offer_spec}/grace/pattern")
            )
            .is_string()
        );
        assert_eq!(
            find(
                "ConstraintPolicyOffer",
                &format!("{offer_spec}/targets/minItems")
            ),
            serde_json::json!(1)
        );
        assert_eq!(
            find("ConstraintPolicyOffer", "/properties/spec/required"),
            serde_json::json!(["policies", "targets"])
        );
        assert_eq!(
            find(
                "ConstraintPolicy",
                "/properties/spec/properties/rules/minItems"
            ),
            serde_json::json!(1)
        );
        assert_eq!(
            find(
                "ConstraintPolicyBinding",
                "/properties/status/properties/compliance/enum"
            ),
            serde_json::json!(["Pending", "Compliant", "Limit", "Violation", "Error"])
        );
        let columns = |kind: &str| {
            let crd = all().into_iter().find(|c| c.spec.names.kind == kind);
            crd.map(|c| {
                c.spec.versions[0]
                    .additional_printer_columns
                    .iter()
                    .flatten()
                    .filter(|col| col.priority.unwrap_or(0) == 0)
                    .map(|col| col.name.to_uppercase())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
        };
        assert_eq!(
            columns("ConstraintPolicyBinding"),
            ["OFFER", "TARGETS", "STATUS", "REASON", "AGE"]
        );
        assert_eq!(
            columns("ConstraintPolicyOffer"),
            ["COUNT", "COMPLIANT", "GRACE", "AGE"]
        );
        assert_eq!(
            columns("NetworkTopology"),
            ["SITE-LABEL", "SITES", "LINKS", "AGE"]
        );
        assert_eq!(
            columns("NetworkPathCatalogue"),
            ["ENTRIES", "ALLOCATED", "AGE"]
        );
        assert_eq!(
            columns("NetworkFunction"),
            ["RUNTIME", "REPLICAS", "READY", "PHASE", "NODES", "AGE"]
        );
        assert_eq!(
            columns("ServiceChain"),
            ["HOPS", "LANES", "READY", "LATENCY", "PHASE", "AGE"]
        );
    }

    #[test]
    fn topology_schema_rejects_bad_links_and_duplicate_sites() {
        let crd = all()
            .into_iter()
            .find(|c| c.spec.names.kind == "NetworkTopology");
        let Some(crd) = crd else {
            panic!("NetworkTopology is not generated")
        };
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.names.short_names, Some(vec!["ntop".to_string()]));
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref()),
        )
        .unwrap_or(Value::Null);
        let spec = "/properties/spec/properties";
        assert_eq!(
            schema.pointer(&format!(
                "{spec}/links/items/x-kubernetes-validations/0/rule"
            )),
            Some(&serde_json::json!("self.from != self.to"))
        );
        assert_eq!(
            schema.pointer(&format!("{spec}/links/items/required")),
            Some(&serde_json::json!(["from", "latency", "to"]))
        );
        assert!(
            schema
                .pointer(&format!("{spec}/links/items/properties/latency/pattern"))
                .is_some_and(Value::is_string)
        );
        assert_eq!(
            schema.pointer(&format!("{spec}/sites/x-kubernetes-list-map-keys")),
            Some(&serde_json::json!(["name"]))
        );
        assert_eq!(
            schema.pointer(&format!("{spec}/siteLabel/default")),
            Some(&serde_json::json!("topology.kubernetes.io/zone"))
        );
    }

    #[test]
    fn catalogue_schema_keys_entries_and_allocations_and_requires_a_capacity() {
        let crd = all()
            .into_iter()
            .find(|c| c.spec.names.kind == "NetworkPathCatalogue");
        let Some(crd) = crd else {
            panic!("NetworkPathCatalogue is not generated")
        };
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.names.short_names, Some(vec!["npc".to_string()]));
        assert_eq!(crd.spec.group, "network.edgeplane.io");
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref()),
        )
        .unwrap_or(Value::Null);
        let at = |pointer: &str| schema.pointer(pointer).cloned().unwrap_or(Value::Null);
        let entries = "/properties/spec/properties/entries";
        assert_eq!(
            at(&format!("{entries}/x-kubernetes-list-map-keys")),
            serde_json::json!(["name"])
        );
        assert_eq!(
            at(&format!("{entries}/items/required")),
            serde_json::json!(["capacity", "from", "latency", "name", "to"])
        );
        assert_eq!(
            at(&format!("{entries}/items/x-kubernetes-validations/0/rule")),
            serde_json::json!("self.from != self.to")
        );
        assert_eq!(
            at(&format!(
                "{entries}/items/properties/capacity/x-kubernetes-validations/0/rule"
            )),
            serde_json::json!("has(self.bindings) || has(self.bandwidth)")
        );
        assert!(at(&format!("{entries}/items/properties/latency/pattern")).is_string());
        assert_eq!(
            at("/properties/status/properties/allocations/x-kubernetes-list-map-keys"),
            serde_json::json!(["id"])
        );
        assert_eq!(
            at("/properties/status/properties/allocations/items/properties/purpose/enum"),
            serde_json::json!(["Mitigate", "Discover"])
        );
    }

    fn schema_of(kind: &str) -> (CustomResourceDefinition, Value) {
        let Some(crd) = all().into_iter().find(|c| c.spec.names.kind == kind) else {
            panic!("{kind} is not generated")
        };
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref()),
        )
        .unwrap_or(Value::Null);
        (crd, schema)
    }

    fn rules_at(schema: &Value, pointer: &str) -> Vec<String> {
        schema
            .pointer(pointer)
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .filter_map(|r| r["rule"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn network_function_schema_keeps_vm_and_container_fields_apart() {
        let (crd, schema) = schema_of("NetworkFunction");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.short_names, Some(vec!["nf".to_string()]));
        let spec = "/properties/spec";
        assert_eq!(
            schema.pointer(&format!("{spec}/properties/runtime/enum")),
            Some(&serde_json::json!(["Container", "VirtualMachine"]))
        );
        assert_eq!(
            schema.pointer(&format!("{spec}/required")),
            Some(&serde_json::json!(["image", "runtime"]))
        );
        assert_eq!(
            schema.pointer(&format!(
                "{spec}/properties/interfaces/items/properties/binding/enum"
            )),
            Some(&serde_json::json!(["bridge", "sriov", "masquerade"]))
        );
        assert_eq!(
            schema.pointer(&format!(
                "{spec}/properties/interfaces/x-kubernetes-list-map-keys"
            )),
            Some(&serde_json::json!(["name"]))
        );
        assert_eq!(
            schema.pointer(&format!(
                "{spec}/properties/vmTemplate/x-kubernetes-preserve-unknown-fields"
            )),
            Some(&serde_json::json!(true))
        );
        assert_eq!(
            rules_at(&schema, &format!("{spec}/x-kubernetes-validations")),
            [
                "self.runtime == 'VirtualMachine' || !has(self.vmTemplate)",
                "self.runtime == 'Container' || !has(self.podTemplate)",
                "self.runtime == 'VirtualMachine' || !has(self.interfaces) || self.interfaces.all(i, !has(i.binding) || i.binding != 'masquerade')",
            ]
        );
    }

    #[test]
    fn service_chain_schema_rejects_a_hop_twice() {
        let (crd, schema) = schema_of("ServiceChain");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.short_names, Some(vec!["sc".to_string()]));
        let hops = "/properties/spec/properties/hops";
        assert_eq!(
            schema.pointer(&format!("{hops}/minItems")),
            Some(&serde_json::json!(1))
        );
        assert_eq!(
            rules_at(&schema, &format!("{hops}/x-kubernetes-validations")),
            [
                "self.all(h, self.exists_one(g, g.name == h.name))",
                "self.all(h, self.exists_one(g, g.networkFunction == h.networkFunction))",
            ]
        );
        assert_eq!(
            schema.pointer("/properties/spec/properties/network/properties/type/enum"),
            Some(&serde_json::json!(["auto", "bridge", "macvlan", "sriov"]))
        );
        assert_eq!(
            schema.pointer("/properties/spec/properties/placement/properties/colocate/enum"),
            Some(&serde_json::json!(["Required", "Preferred", "None"]))
        );
    }
}
