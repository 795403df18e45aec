//! Reading an `--event` argument: JSON text, `@FILE`, or `-` for stdin.

use std::io::Read;

use anyhow::Context as _;

use crate::exit::UsageError;

/// The payload bytes an `--event` argument names.
pub fn read_payload(argument: &str) -> anyhow::Result<Vec<u8>> {
    if argument == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading the event from stdin")?;
        return Ok(bytes);
    }
    if let Some(path) = argument.strip_prefix('@') {
        return std::fs::read(path)
            .map_err(|e| UsageError(format!("cannot read the event file '{path}': {e}")).into());
    }
    Ok(argument.as_bytes().to_vec())
}
