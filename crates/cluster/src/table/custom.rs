//! Custom resources' columns: their CRD's `additionalPrinterColumns`, read with the
//! JSONPath subset printer columns use.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::age;

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[*].b`,
/// `.a[?(@.type=="Ready")].status`, escaped dots (`.labels.app\.kubernetes\.io/name`).
pub fn jsonpath(obj: &Value, expr: &str) -> Option<Value> {
    let expr = expr.trim().trim_start_matches('{').trim_end_matches('}');
    let mut cur = vec![obj.clone()];
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut key = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        key.push(chars[i + 1]);
                        i += 2;
                    } else {
                        key.push(chars[i]);
                        i += 1;
                    }
                }
                if key.is_empty() {
                    continue;
                }
                cur = cur.iter().filter_map(|v| v.get(&key).cloned()).collect();
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']')? + i;
                let inner: String = chars[i + 1..end].iter().collect();
                i = end + 1;
                let inner = inner.trim();
                if inner == "*" {
                    cur = cur
                        .iter()
                        .flat_map(|v| match v {
                            Value::Array(a) => a.clone(),
                            Value::Object(m) => m.values().cloned().collect(),
                            _ => vec![],
                        })
                        .collect();
                } else if let Some(filter) =
                    inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')'))
                {
                    let (lhs, rhs) = filter.split_once("==")?;
                    let field = lhs.trim().trim_start_matches('@');
                    let want = rhs.trim().trim_matches(|c| c == '"' || c == '\'');
                    cur = cur
                        .iter()
                        .filter_map(Value::as_array)
                        .flatten()
                        .filter(|item| {
                            jsonpath(item, field).is_some_and(|v| match v {
                                Value::String(s) => s == want,
                                other => other == want,
                            })
                        })
                        .cloned()
                        .collect();
                } else if let Some(key) =
                    inner.strip_prefix('\'').and_then(|k| k.strip_suffix('\''))
                {
                    cur = cur.iter().filter_map(|v| v.get(key).cloned()).collect();
                } else {
                    let idx: i64 = inner.parse().ok()?;
                    cur = cur
                        .iter()
                        .filter_map(|v| {
                            let a = v.as_array()?;
                            let i = if idx < 0 { a.len() as i64 + idx } else { idx };
                            a.get(usize::try_from(i).ok()?).cloned()
                        })
                        .collect();
                }
            }
            _ => i += 1,
        }
    }
    cur.into_iter().next()
}

pub(super) fn custom_cell(typ: &str, v: Option<Value>, now: Timestamp) -> Value {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match typ {
        "string" => match v {
            Value::String(s) => json!(s),
            other => json!(other.to_string()),
        },
        "integer" => v.as_f64().map_or(Value::Null, |f| json!(f as i64)),
        "number" => v.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => v.as_bool().map_or(Value::Null, |b| json!(b)),
        "date" => match v.as_str() {
            Some(s) => age(Some(s), now),
            None => Value::Null,
        },
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpaths() {
        let o = json!({"spec": {"offer": "o", "list": [1, 2]}, "status": {"conditions": [
            {"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]},
            "metadata": {"labels": {"app.kubernetes.io/name": "x"}}});
        assert_eq!(jsonpath(&o, ".spec.offer"), Some(json!("o")));
        assert_eq!(jsonpath(&o, ".spec.list[1]"), Some(json!(2)));
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(json!("True"))
        );
        assert_eq!(
            jsonpath(&o, ".metadata.labels.app\\.kubernetes\\.io/name"),
            Some(json!("x"))
        );
        assert_eq!(jsonpath(&o, ".spec.missing"), None);
    }
}
