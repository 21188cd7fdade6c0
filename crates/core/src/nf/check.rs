//! The checks of a NetworkFunction's spec that its schema cannot make.

use std::collections::BTreeSet;

use edgeplane_api::{InterfaceBinding, NetworkFunction, NfRuntime};

use super::{FieldError, Port};
use crate::multus::qualified;
use crate::quantity::parse_milli;

/// The longest NF name: replica names `<nf>-<index>` (index below 64) must stay valid
/// label values, since the virt-launcher pod carries the VM's name as one.
pub const MAX_NAME: usize = 60;

/// Everything wrong with `nf` and the ports chains give it, in field order. `network_exists`
/// answers for `namespace/name` of a NetworkAttachmentDefinition.
pub fn check(
    nf: &NetworkFunction,
    ports: &[Port],
    network_exists: &dyn Fn(&str) -> bool,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let namespace = nf.metadata.namespace.as_deref().unwrap_or("default");
    let name = nf.metadata.name.as_deref().unwrap_or_default();
    if name.is_empty() || name.len() > MAX_NAME {
        errors.push(FieldError::new(
            "metadata.name",
            format!("a network function's name has 1 to {MAX_NAME} characters"),
        ));
    }
    let spec = &nf.spec;
    if spec.image.trim().is_empty() || spec.image.chars().any(char::is_whitespace) {
        errors.push(FieldError::new(
            "spec.image",
            format!("{:?} is not an image reference", spec.image),
        ));
    }
    if !(0..=64).contains(&spec.replicas) {
        errors.push(FieldError::new(
            "spec.replicas",
            format!("{} is not between 0 and 64", spec.replicas),
        ));
    }
    for (resource, amount) in &spec.resources {
        let field = format!("spec.resources[{resource}]");
        if resource.is_empty() || resource.chars().any(char::is_whitespace) {
            errors.push(FieldError::new(field, "not a resource name"));
            continue;
        }
        match parse_milli(&amount.0) {
            Some(m) if m >= 0 => {}
            Some(_) => errors.push(FieldError::new(field, "a request is not negative")),
            None => errors.push(FieldError::new(
                field,
                format!("{:?} is not a quantity", amount.0),
            )),
        }
    }
    if spec.runtime == NfRuntime::VirtualMachine {
        let hugepages = spec
            .resources
            .keys()
            .filter(|r| r.starts_with("hugepages-"))
            .count();
        if hugepages > 1 {
            errors.push(FieldError::new(
                "spec.resources",
                "a virtual machine uses one hugepage size",
            ));
        }
    }
    let mut names = BTreeSet::new();
    for (i, interface) in spec.interfaces.iter().enumerate() {
        let at = |f: &str| format!("spec.interfaces[{i}].{f}");
        if !is_dns_label(&interface.name, 15) {
            errors.push(FieldError::new(
                at("name"),
                format!(
                    "{:?} is not a DNS label of at most 15 characters",
                    interface.name
                ),
            ));
        }
        if !names.insert(interface.name.as_str()) {
            errors.push(FieldError::new(
                at("name"),
                format!("interface {:?} appears twice", interface.name),
            ));
        }
        let network_ok = match interface.network.split_once('/') {
            Some((ns, n)) => is_dns_label(ns, 63) && is_dns_label(n, 253),
            None => is_dns_label(&interface.network, 253),
        };
        if !network_ok {
            errors.push(FieldError::new(
                at("network"),
                format!(
                    "{:?} is not a network name (`name` or `namespace/name`)",
                    interface.network
                ),
            ));
        } else {
            let network = qualified(&interface.network, namespace);
            if !network_exists(&network) {
                errors.push(FieldError::new(
                    at("network"),
                    format!("NetworkAttachmentDefinition {network} does not exist"),
                ));
            }
        }
        if interface.binding == Some(InterfaceBinding::Masquerade) {
            // KubeVirt masquerades only the pod network (which every rendered VM gets as
            // its first interface); a Multus network is bridged or an SR-IOV VF.
            let message = match spec.runtime {
                NfRuntime::Container => {
                    "masquerade is a virtual machine's binding; a container attaches directly"
                }
                NfRuntime::VirtualMachine => {
                    "masquerade attaches only the pod network, which every VM has; a secondary interface is bridge or sriov"
                }
            };
            errors.push(FieldError::new(at("binding"), message));
        }
    }
    for port in ports {
        if names.contains(port.name.as_str()) {
            errors.push(FieldError::new(
                "spec.interfaces",
                format!(
                    "interface {:?} is also the name of a service chain's link",
                    port.name
                ),
            ));
        }
    }
    for (i, term) in spec.requires.iter().enumerate() {
        if let Err(message) = parse_requirement(term) {
            errors.push(FieldError::new(format!("spec.requires[{i}]"), message));
        }
    }
    match spec.runtime {
        NfRuntime::Container if spec.vm_template.is_some() => errors.push(FieldError::new(
            "spec.vmTemplate",
            "vmTemplate is for runtime VirtualMachine",
        )),
        NfRuntime::VirtualMachine if spec.pod_template.is_some() => errors.push(FieldError::new(
            "spec.podTemplate",
            "podTemplate is for runtime Container",
        )),
        _ => {}
    }
    for (field, template) in [
        ("spec.podTemplate", &spec.pod_template),
        ("spec.vmTemplate", &spec.vm_template),
    ] {
        if template.as_ref().is_some_and(|t| !t.is_object()) {
            errors.push(FieldError::new(field, "an object of fields to merge"));
        }
    }
    errors
}

/// A `requires` term: `key=value` or `key` (any value). Returns the key and the value.
pub fn parse_requirement(term: &str) -> Result<(String, Option<String>), String> {
    let (key, value) = match term.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (term, None),
    };
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let prefix_ok =
        prefix.is_none_or(|p| p.len() <= 253 && p.split('.').all(|part| is_dns_label(part, 63)));
    if !name_ok || !prefix_ok {
        return Err(format!("{key:?} is not a label key"));
    }
    if let Some(v) = value {
        let ok = v.is_empty()
            || (v.len() <= 63
                && v.starts_with(|c: char| c.is_ascii_alphanumeric())
                && v.ends_with(|c: char| c.is_ascii_alphanumeric())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
        if !ok {
            return Err(format!("{v:?} is not a label value"));
        }
    }
    Ok((key.to_string(), value.map(str::to_string)))
}

/// A lowercase RFC 1123 label of at most `max` characters.
pub fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
