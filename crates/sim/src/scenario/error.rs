//! Errors located in a scenario file, and reading its durations and quantities.

use std::time::Duration;

use edgeplane_core::manifests::ManifestError;
use edgeplane_core::values::{self, Unit, Value as Quantity};
use serde_json::Value;

/// A scenario that is not valid. It is a manifest error: located in the scenario file
/// (`stadium-ar.yaml: spec.events[3].setLink.latency: ...`, with no object) or in an
/// object it includes (`topology.yaml[0] NetworkTopology default: spec.links[2].to: ...`),
/// so the errors of included objects pass through as they are.
pub type ScenarioError = ManifestError;

pub(super) struct FileErrors<'a> {
    pub(super) source: &'a str,
}

impl FileErrors<'_> {
    pub(super) fn at(&self, field: Option<&str>, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            location: self.source.to_string(),
            object: None,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    /// `value`, unless it is absent or empty (`{field}: is required`).
    pub(super) fn required(
        &self,
        field: &str,
        value: Option<String>,
    ) -> Result<String, ScenarioError> {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| self.at(Some(field), "is required"))
    }

    pub(super) fn duration(&self, field: &str, value: &Value) -> Result<Duration, ScenarioError> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.as_f64() == Some(0.0) => "0".to_string(),
            other => {
                return Err(self.at(
                    Some(field),
                    format!(
                        "{} is not a duration (write a unit: 90s, 5m, 1h30m)",
                        scalar_text(other)
                    ),
                ));
            }
        };
        values::parse_duration_field(&text).map_err(|e| self.at(Some(field), e.to_string()))
    }

    pub(super) fn quantity(
        &self,
        field: &str,
        value: &Value,
        unit: Unit,
    ) -> Result<String, ScenarioError> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => scalar_text(other),
        };
        Quantity::parse(&text, unit).map_err(|e| self.at(Some(field), e.to_string()))?;
        Ok(text)
    }
}

pub(super) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
