//! Small JSON files the agent keeps beside its outbox, for what a restart must not forget.

use std::{io::Write as _, path::Path};

/// Reads the JSON in `file`: `None` when there is none yet, and (with a warning naming
/// `what`) when it cannot be read or does not decode, so the agent starts without it.
pub fn read_json<T: serde::de::DeserializeOwned>(file: &Path, what: &str) -> Option<T> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot read the saved {what}; starting without them");
            return None;
        }
    };
    serde_json::from_slice(&bytes)
        .inspect_err(|e| {
            tracing::warn!(file = %file.display(), error = %e, "the saved {what} do not decode; starting without them");
        })
        .ok()
}

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
