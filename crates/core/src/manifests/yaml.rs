//! YAML text into JSON values, with the parser's limits set once for every reader of
//! manifests, scenarios and request bodies.
//!
//! The text is already in memory, so its size bounds the documents, nodes, events and
//! scalar bytes it can hold: those budgets are lifted (a single `helm template` output or
//! `kubectl get -o yaml` dump holds tens of thousands of documents and tens of MB). What
//! the size does not bound is expansion through aliases (`*ref` replays what `&ref`
//! anchored, and anchors may hold aliases: the "billion laughs"), and nesting, which costs
//! stack. Those keep a limit; [`YamlLimits`] says which, and the error says how to raise
//! the alias one.

use serde_json::Value as Json;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Budget, Error};

/// The environment variable that raises the alias limit.
pub const ALIAS_LIMIT_VAR: &str = "EDGEPLANE_YAML_MAX_ALIAS_EVENTS";
/// Parser events aliases may replay in one source, by default: a thousand times what
/// merge keys (`<<: *defaults`) in a large hand-written inventory use, and far below what
/// an alias bomb asks for.
pub const DEFAULT_ALIAS_EVENTS: usize = 1_000_000;
/// Deepest nesting of mappings and sequences; as serde_json's limit for JSON input, so that
/// both forms of a manifest read alike.
pub const MAX_DEPTH: usize = 128;

/// The limits a YAML source is parsed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YamlLimits {
    /// Parser events aliases may replay (and copy into anchors) in one source.
    pub alias_events: usize,
}

impl Default for YamlLimits {
    fn default() -> Self {
        YamlLimits {
            alias_events: DEFAULT_ALIAS_EVENTS,
        }
    }
}

impl YamlLimits {
    /// The limits, with [`ALIAS_LIMIT_VAR`] from the environment when set. The error names
    /// the variable and its value.
    pub fn from_env() -> Result<YamlLimits, String> {
        YamlLimits::from_var(std::env::var(ALIAS_LIMIT_VAR).ok().as_deref())
    }

    /// The limits given the value of [`ALIAS_LIMIT_VAR`] (`None` when unset).
    pub fn from_var(value: Option<&str>) -> Result<YamlLimits, String> {
        let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(YamlLimits::default());
        };
        match text.replace('_', "").parse::<usize>() {
            Ok(n) if n > 0 => Ok(YamlLimits { alias_events: n }),
            _ => Err(format!(
                "{ALIAS_LIMIT_VAR}={text:?} is not a positive whole number of events"
            )),
        }
    }

    fn options(&self) -> serde_saphyr::Options {
        let mut budget = Budget::default();
        // Bounded by the size of the text in memory (see the module's comment).
        budget.max_documents = usize::MAX;
        budget.max_nodes = usize::MAX;
        budget.max_events = usize::MAX;
        budget.max_total_scalar_bytes = usize::MAX;
        budget.max_merge_keys = usize::MAX;
        budget.max_aliases = usize::MAX;
        budget.max_anchors = usize::MAX;
        // `<<: *defaults` in each of thousands of nodes is many aliases of one anchor and
        // harmless; what an alias costs is what it replays, limited below.
        budget.enforce_alias_anchor_ratio = false;
        budget.max_depth = MAX_DEPTH;
        budget.max_recorded_anchor_events = self.alias_events;
        // Allows 64 bytes of text per replayed event.
        budget.max_recorded_anchor_bytes = self.alias_events.saturating_mul(64);
        let mut options = serde_saphyr::Options::default();
        options.budget = Some(budget);
        options.alias_limits.max_total_replayed_events = self.alias_events;
        options
    }

    /// The message of a parse error: the limit that stopped the parser and how to raise it,
    /// or the parser's own message.
    fn explain(&self, error: &Error) -> String {
        let at = error
            .location()
            .filter(|l| l.line() > 0)
            .map(|l| format!("line {}: ", l.line()))
            .unwrap_or_default();
        let alias_guard = || {
            format!(
                "{at}aliases expand to more than {} parser events (a guard against alias bombs); if the input is genuine, raise the limit with the environment variable {ALIAS_LIMIT_VAR} (for example {ALIAS_LIMIT_VAR}={})",
                self.alias_events,
                self.alias_events.saturating_mul(4)
            )
        };
        match innermost(error) {
            Error::AliasReplayLimitExceeded { .. }
            | Error::Budget {
                breach:
                    BudgetBreach::RecordedAnchorEvents { .. } | BudgetBreach::RecordedAnchorBytes { .. },
                ..
            } => alias_guard(),
            Error::Budget {
                breach: BudgetBreach::Depth { .. },
                ..
            } => format!(
                "{at}nested deeper than {MAX_DEPTH} mappings and sequences (a fixed guard, as for JSON)"
            ),
            Error::AliasReplayStackDepthExceeded { max_depth, .. } => format!(
                "{at}aliases nest deeper than {max_depth} (an alias inside an anchor inside an alias ...; a fixed guard against alias bombs)"
            ),
            Error::Budget { breach, .. } => format!("{at}YAML budget exceeded: {breach:?}"),
            _ => error.to_string(),
        }
    }
}

/// The error inside the wrappers that add snippets and alias locations.
fn innermost(mut error: &Error) -> &Error {
    while let Error::AliasError { error: inner, .. } | Error::WithSnippet { error: inner, .. } =
        error
    {
        error = inner;
    }
    error
}

/// Every document of a multi-document YAML text, empty ones left out. The error is the
/// message, without the source.
pub fn yaml_documents(text: &str, limits: &YamlLimits) -> Result<Vec<Json>, String> {
    serde_saphyr::from_multiple_with_options::<Json>(text, limits.options())
        .map_err(|e| limits.explain(&e))
}

/// One YAML document (a scenario file, a request body).
pub fn yaml_document(text: &str, limits: &YamlLimits) -> Result<Json, String> {
    serde_saphyr::from_str_with_options::<Json>(text, limits.options())
        .map_err(|e| limits.explain(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nine levels of ten aliases each: 10^9 replayed scalars from a 600-byte text.
    fn billion_laughs() -> String {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..9 {
            let prev = format!("*a{}", level - 1);
            let list = [prev.as_str(); 10].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{list}]\n"));
        }
        text.push_str("apiVersion: v1\nkind: ConfigMap\n");
        text
    }

    #[test]
    fn alias_bombs_stop_at_the_limit_and_say_how_to_raise_it() {
        let err = yaml_documents(&billion_laughs(), &YamlLimits::default()).err();
        let err = err.unwrap_or_default();
        assert!(
            err.contains(
                "aliases expand to more than 1000000 parser events (a guard against alias bombs)"
            ),
            "{err}"
        );
        assert!(
            err.contains("raise the limit with the environment variable EDGEPLANE_YAML_MAX_ALIAS_EVENTS (for example EDGEPLANE_YAML_MAX_ALIAS_EVENTS=4000000)"),
            "{err}"
        );
    }

    #[test]
    fn raising_the_limit_lets_a_genuine_expansion_through() {
        // 4 levels: 10^4 scalars replayed, more than a limit of 5,000 allows.
        let text = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
        let small = YamlLimits {
            alias_events: 5_000,
        };
        let err = yaml_documents(text, &small).err().unwrap_or_default();
        assert!(err.contains("more than 5000 parser events"), "{err}");
        let docs = yaml_documents(
            text,
            &YamlLimits {
                alias_events: 50_000,
            },
        );
        let count = docs
            .ok()
            .and_then(|d| d.first().and_then(|v| v.pointer("/d/9/9/9/9").cloned()));
        assert_eq!(count, Some(Json::String("x".into())));
    }

    #[test]
    fn many_merge_keys_of_one_anchor_are_fine() {
        // The alias/anchor ratio heuristic would refuse this ordinary shape.
        let mut text = String::from(
            "apiVersion: v1\nkind: List\ndefaults: &d {cpu: '8', memory: 16Gi, pods: '110'}\nitems:\n",
        );
        for i in 0..20_000 {
            text.push_str(&format!(
                "- {{apiVersion: v1, kind: Node, metadata: {{name: n-{i}}}, status: {{allocatable: {{<<: *d}}}}}}\n"
            ));
        }
        let docs = yaml_documents(&text, &YamlLimits::default()).unwrap_or_default();
        let items = docs.first().and_then(|d| d["items"].as_array().cloned());
        assert_eq!(items.as_ref().map(Vec::len), Some(20_000));
        assert_eq!(
            items.and_then(|i| i[19_999].pointer("/status/allocatable/memory").cloned()),
            Some(Json::String("16Gi".into()))
        );
    }

    #[test]
    fn nesting_is_limited() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let err = yaml_document(&deep, &YamlLimits::default())
            .err()
            .unwrap_or_default();
        assert!(err.contains("nested deeper than 128"), "{err}");
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(yaml_document(&ok, &YamlLimits::default()).is_ok());
    }

    #[test]
    fn the_limit_comes_from_its_variable() {
        assert_eq!(YamlLimits::from_var(None), Ok(YamlLimits::default()));
        assert_eq!(
            YamlLimits::from_var(Some(" 4_000_000 ")),
            Ok(YamlLimits {
                alias_events: 4_000_000
            })
        );
        assert_eq!(
            YamlLimits::from_var(Some("lots")),
            Err(
                "EDGEPLANE_YAML_MAX_ALIAS_EVENTS=\"lots\" is not a positive whole number of events"
                    .into()
            )
        );
        assert!(YamlLimits::from_var(Some("0")).is_err());
    }
}
