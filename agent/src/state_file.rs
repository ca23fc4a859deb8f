//! Small JSON files the agent keeps beside its outbox, for what a restart must not forget.

use std::{io::Write as _, path::Path};

/// Writes `value` as JSON to `file` through a temp file beside it, synced, then renamed over
/// it, so a crash or power cut leaves the old file or the new one, never half of either.
pub fn write_json(file: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let tmp = file.with_extension("json.tmp");
    let mut out = std::fs::File::create(&tmp)?;
    out.write_all(&bytes)?;
    out.sync_all()?;
    std::fs::rename(&tmp, file)
}
