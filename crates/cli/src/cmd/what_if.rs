//! What if, on a live cluster: a read-only snapshot of it as scenario files
//! (`edgeplane sim snapshot --from-cluster`), or as the objects of a scenario whose events
//! then run against it (`edgeplane sim --from-cluster`). The cluster is only listed
//! ([`edgeplane_runtime::snapshot::scenario_manifests`]).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use super::live::{LiveArgs, LogFormat};

/// The cluster's objects as scenario manifests.
pub fn read_cluster(kubeconfig: &Path, context: Option<&str>) -> anyhow::Result<Vec<Value>> {
    let live = LiveArgs {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: context.map(str::to_string),
        log_format: LogFormat::Text,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = live.client().await?;
        Ok(edgeplane_runtime::snapshot::scenario_manifests(&client).await?)
    })
}

/// The files `write_snapshot` wrote.
pub struct Written {
    pub cluster: PathBuf,
    pub scenario: PathBuf,
}

fn write_objects(objects: &[Value], path: &Path) -> anyhow::Result<()> {
    let mut text = String::from(
        "# A snapshot of a live cluster, written by `edgeplane sim snapshot --from-cluster`.\n",
    );
    for object in objects {
        text.push_str("---\n");
        text.push_str(&serde_saphyr::to_string(object)?);
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Writes `DIR/cluster.yaml` and a `DIR/scenario.yaml` that includes it, with no events.
pub fn write_snapshot(objects: &[Value], duration: &str, dir: &Path) -> anyhow::Result<Written> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cluster = dir.join("cluster.yaml");
    write_objects(objects, &cluster)?;
    let scenario = dir.join("scenario.yaml");
    let spec = json!({
        "apiVersion": "sim.edgeplane.io/v1alpha1",
        "kind": "Scenario",
        "metadata": {"name": "snapshot"},
        "spec": {
            "description": format!(
                "A live cluster as it was at {} (edgeplane sim snapshot --from-cluster).",
                jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or_else(|_| jiff::Timestamp::now())
            ),
            "duration": duration,
            "include": ["cluster.yaml"],
            "events": [],
        }
    });
    let text = format!(
        "# Add events under spec.events, then run: edgeplane sim {}\n\
         # For example:\n\
         #   - {{at: 5m, note: the link degrades, setLink: {{from: SITE, to: SITE, latency: 12ms}}}}\n\
         #   - {{at: 10m, note: a node fails, failNode: NODE}}\n\
         #   - {{at: 15m, note: more replicas, scale: {{kind: Deployment, namespace: NS, name: NAME, replicas: 5}}}}\n{}",
        scenario.display(),
        serde_saphyr::to_string(&spec)?
    );
    std::fs::write(&scenario, text).with_context(|| format!("writing {}", scenario.display()))?;
    Ok(Written { cluster, scenario })
}

/// The scenario at `path` rewritten into `dir` to include the cluster's objects first,
/// then its own includes (made absolute). Its events, settings and duration are kept.
pub fn compose(path: &Path, objects: &[Value], dir: &Path) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let limits = edgeplane_core::manifests::YamlLimits::default();
    let mut scenario = edgeplane_core::manifests::yaml_document(&text, &limits)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let cluster = dir.join("cluster.yaml");
    write_objects(objects, &cluster).map_err(|e| format!("{e:#}"))?;
    let mut include = vec![Value::String(cluster.to_string_lossy().into_owned())];
    match scenario.pointer("/spec/include") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Some(file) = item.as_str() else {
                    return Err(format!(
                        "{}: spec.include[{i}]: must be a path",
                        path.display()
                    ));
                };
                let absolute = base.join(file);
                include.push(Value::String(absolute.to_string_lossy().into_owned()));
            }
        }
        Some(_) => return Err(format!("{}: spec.include: must be a list", path.display())),
    }
    match scenario.get_mut("spec").and_then(Value::as_object_mut) {
        Some(spec) => {
            spec.insert("include".into(), Value::Array(include));
        }
        None => return Err(format!("{}: spec: is required", path.display())),
    }
    let composed = dir.join("scenario.yaml");
    let yaml = serde_saphyr::to_string(&scenario).map_err(|e| e.to_string())?;
    std::fs::write(&composed, yaml).map_err(|e| format!("{}: {e}", composed.display()))?;
    Ok(composed)
}

/// A directory removed when dropped: where a what-if run keeps its composed scenario.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new() -> std::io::Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("edgeplane-what-if-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(ScratchDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
