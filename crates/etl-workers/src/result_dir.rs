//! Argo output parameters: small files in `--result-dir` that a template declares.

use std::path::Path;

use anyhow::Context as _;

/// Creates `dir` before any work, so that an unusable folder (a file, no permission) is a
/// usage error up front rather than a failure after the conversion.
pub fn prepare(dir: Option<&Path>) -> Result<(), crate::exit::UsageError> {
    let Some(dir) = dir else { return Ok(()) };
    std::fs::create_dir_all(dir)
        .map_err(|e| crate::exit::UsageError(format!("--result-dir {}: {e}", dir.display())))
}

/// Writes `name` = `value` files into `dir` (created if missing).
pub fn write(dir: &Path, values: &[(&str, String)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, value) in values {
        let path = dir.join(name);
        std::fs::write(&path, value).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
