//! Output formats shared by the commands.

use std::fmt;
use std::io::Write;

use serde::Serialize;

/// `-o` of a command that prints a list of objects: kubectl's formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Columns, as `kubectl get` prints them by default.
    Table,
    /// The table with more columns.
    Wide,
    /// One `resource.group/name` per line.
    Name,
    Json,
    Yaml,
}

impl Format {
    /// Whether the format is a table for people (`table`, `wide`), not one for programs.
    pub fn is_table(self) -> bool {
        matches!(self, Format::Table | Format::Wide)
    }
}

/// Prints `items` in `format`: `name` gives an item's `-o name` line (`resource.group/name`,
/// as kubectl writes it), `table` the table for people (its argument: whether wide), JSON
/// and YAML are the items as a list.
pub fn print_list<T: Serialize>(
    format: Format,
    items: &[T],
    name: impl Fn(&T) -> String,
    table: impl Fn(bool) -> String,
) -> anyhow::Result<()> {
    let text = match format {
        Format::Table => table(false),
        Format::Wide => table(true),
        Format::Name => items.iter().map(|i| format!("{}\n", name(i))).collect(),
        Format::Json => format!("{}\n", serde_json::to_string_pretty(items)?),
        Format::Yaml => serde_saphyr::to_string(&items)?,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// `-o` of a command that writes Kubernetes objects (manifests): kubectl's formats for them.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    /// The objects as YAML documents separated by `---`.
    Yaml,
    /// The objects as one JSON `List` (`apiVersion: v1, kind: List, items`).
    Json,
    /// One `kind.group/name` per object, as `kubectl -o name` writes it.
    Name,
}

/// Prints Kubernetes objects in `format`.
pub fn print_manifests<T: Serialize>(format: ManifestFormat, objects: &[T]) -> anyhow::Result<()> {
    let mut text = String::new();
    match format {
        ManifestFormat::Yaml => {
            for (i, object) in objects.iter().enumerate() {
                if i > 0 {
                    text.push_str("---\n");
                }
                text.push_str(&serde_saphyr::to_string(object)?);
            }
        }
        ManifestFormat::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            text = format!("{}\n", serde_json::to_string_pretty(&list)?);
        }
        ManifestFormat::Name => {
            for object in objects {
                text.push_str(&object_name(&serde_json::to_value(object)?));
                text.push('\n');
            }
        }
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// An object's `-o name`: its kind in lower case, `.group` unless the core group, `/name`
/// (`deployment.apps/web`, `pod/web-0`).
pub fn object_name(object: &serde_json::Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default().to_lowercase();
    let group = object["apiVersion"]
        .as_str()
        .and_then(|v| v.rsplit_once('/'))
        .map(|(group, _)| group)
        .unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    if group.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}.{group}/{name}")
    }
}

/// A plain-text table in the style of `kubectl get`: upper-case headers, columns padded to
/// the widest cell, three spaces between columns.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<'a>(headers: impl IntoIterator<Item = &'a str>) -> Table {
        Table {
            rows: vec![headers.into_iter().map(str::to_string).collect()],
        }
    }

    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        self.rows.push(cells.into_iter().collect());
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}   ", width = widths[c]));
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_names_are_kubectls() {
        let deployment =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
        assert_eq!(object_name(&deployment), "deployment.apps/web");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0"}});
        assert_eq!(object_name(&pod), "pod/web-0");
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "constraintpolicies.constraint.edgeplane.io"},
        });
        assert_eq!(
            object_name(&crd),
            "customresourcedefinition.apiextensions.k8s.io/constraintpolicies.constraint.edgeplane.io"
        );
    }
}
