//! Argo output parameters: small files in `--result-dir` that a template declares.

use std::path::Path;

use anyhow::Context as _;

/// Writes `name` = `value` files into `dir` (created if missing).
pub fn write(dir: &Path, values: &[(&str, String)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, value) in values {
        let path = dir.join(name);
        std::fs::write(&path, value).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
