//! CEL as the API server evaluates it, for CRD `x-kubernetes-validations` rules and
//! ValidatingAdmissionPolicies: the `cel` crate's standard library with its strings and
//! lists extensions and optional values. Kubernetes' own libraries (`quantity()`,
//! `isURL()`, `authorizer`, ...) are not there: an expression that calls one is reported
//! as [`Failure::Unsupported`], and its callers skip it (docs/embedded-cluster.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub use cel::Value;
use cel::objects::{Key, Map};
use cel::{Context, Env, ExecutionError, Program};

/// Why an expression gave no value.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// It does not parse: the API server refuses such an expression when it is written.
    Compile(String),
    /// It calls a function the embedded cluster does not implement.
    Unsupported(String),
    /// It failed at run time (a missing field, a type error): as the API server reports.
    Runtime(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Compile(e) => write!(f, "compilation failed: {e}"),
            Failure::Unsupported(name) => {
                write!(
                    f,
                    "calls {name}(), which the embedded cluster does not implement"
                )
            }
            Failure::Runtime(e) => f.write_str(e),
        }
    }
}

fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib().with_optional_support(true);
        // Kubernetes enables these extension libraries for every CEL expression.
        for extension in [
            cel::extensions::strings as fn(&mut Env) -> _,
            cel::extensions::lists,
        ] {
            if let Err(e) = env.add_extension(extension) {
                tracing::warn!("CEL extension not registered: {e}");
            }
        }
        Arc::new(env)
    })
}

/// Compiles `source`, once per distinct expression (rules are evaluated on every write).
pub fn compile(source: &str) -> Result<Arc<Program>, Failure> {
    type Cache = Mutex<HashMap<String, Result<Arc<Program>, Failure>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hit) = guard.get(source) {
        return hit.clone();
    }
    let compiled = env()
        .compile(source)
        .map(Arc::new)
        .map_err(|e| Failure::Compile(e.to_string().trim().to_string()));
    // Bounded: expressions come from stored objects, which an API user controls.
    if guard.len() > 4096 {
        guard.clear();
    }
    guard.insert(source.to_string(), compiled.clone());
    compiled
}

/// A JSON value as CEL sees it: integers are `int`, as Kubernetes' CEL types them.
pub fn value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(items) => Value::List(Arc::new(items.iter().map(value).collect())),
        serde_json::Value::Object(m) => {
            let map: HashMap<Key, Value> = m
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), value(v)))
                .collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

/// A CEL map with string keys.
pub fn map(entries: &[(String, Value)]) -> Value {
    let map: HashMap<Key, Value> = entries
        .iter()
        .map(|(k, v)| (Key::String(Arc::new(k.clone())), v.clone()))
        .collect();
    Value::Map(Map { map: Arc::new(map) })
}

/// Evaluates `source` with `variables` bound.
pub fn evaluate(source: &str, variables: &[(&str, Value)]) -> Result<Value, Failure> {
    let program = compile(source)?;
    let mut context = Context::with_env(env().clone());
    for (name, v) in variables {
        context.add_variable_from_value(*name, v.clone());
    }
    program.execute(&context).map_err(|e| match e {
        ExecutionError::UndeclaredReference(name)
            if program.references().has_function(name.as_str()) =>
        {
            Failure::Unsupported(name.to_string())
        }
        other => Failure::Runtime(other.to_string()),
    })
}

/// Evaluates a boolean expression: a non-boolean result is a runtime failure.
pub fn evaluate_bool(source: &str, variables: &[(&str, Value)]) -> Result<bool, Failure> {
    match evaluate(source, variables)? {
        Value::Bool(b) => Ok(b),
        other => Failure::Runtime(format!("expected a bool, got {:?}", other.type_of())).into_err(),
    }
}

/// Evaluates a message expression: it must give a string.
pub fn evaluate_string(source: &str, variables: &[(&str, Value)]) -> Result<String, Failure> {
    match evaluate(source, variables)? {
        Value::String(s) => Ok(s.to_string()),
        other => {
            Failure::Runtime(format!("expected a string, got {:?}", other.type_of())).into_err()
        }
    }
}

impl Failure {
    fn into_err<T>(self) -> Result<T, Failure> {
        Err(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn eval(source: &str, self_: serde_json::Value) -> Result<Value, Failure> {
        evaluate(source, &[("self", value(&self_))])
    }

    #[test]
    fn kubernetes_style_rules_evaluate() {
        let obj = json!({"from": "a", "to": "b", "replicas": 3, "hops": [{"name": "x"}, {"name": "y"}], "labels": {"app": "fw"}});
        for (rule, want) in [
            ("self.from != self.to", true),
            ("self.replicas > 0 && self.replicas <= 10", true),
            (
                "self.hops.all(h, h.name.startsWith('x') || h.name == 'y')",
                true,
            ),
            ("self.hops.map(h, h.name).size() == 2", true),
            ("self.hops.exists_one(h, h.name == 'x')", true),
            ("has(self.bandwidth) || has(self.labels)", true),
            ("'app' in self.labels && self.labels['app'] == 'fw'", true),
            ("self.from.matches('^[a-z]+$')", true),
            (
                "self.hops.all(a, self.hops.exists_one(b, a.name == b.name))",
                true,
            ),
            ("self.from.lowerAscii() == 'A'", false),
            // Optional field selection, as Kubernetes enables it.
            ("self.?missing == self.?alsoMissing", true),
            ("self.?labels == self.?missing", false),
            ("self.?missing.?deeper.orValue('x') == 'x'", true),
            ("self.?labels.orValue({}).all(k, k == 'app')", true),
            ("['x/', 'ap'].exists(p, 'app'.startsWith(p))", true),
        ] {
            assert_eq!(eval(rule, obj.clone()), Ok(Value::Bool(want)), "{rule}");
        }
    }

    #[test]
    fn failures_say_what_kind() {
        assert!(matches!(
            eval("self.(", json!({})),
            Err(Failure::Compile(_))
        ));
        assert_eq!(
            eval(
                "quantity(self.q).isGreaterThan(quantity('1'))",
                json!({"q": "2"})
            ),
            Err(Failure::Unsupported("quantity".into()))
        );
        let missing = eval("self.missing == 1", json!({}));
        assert!(
            matches!(&missing, Err(Failure::Runtime(m)) if m.contains("missing")),
            "{missing:?}"
        );
        assert!(matches!(
            evaluate_bool("self.a", &[("self", value(&json!({"a": 1})))]),
            Err(Failure::Runtime(m)) if m.contains("bool")
        ));
    }

    #[test]
    fn integers_are_ints() {
        assert_eq!(
            eval("self.n + 1 == 8", json!({"n": 7})),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            eval("self.f > 1.0", json!({"f": 1.5})),
            Ok(Value::Bool(true))
        );
    }
}
