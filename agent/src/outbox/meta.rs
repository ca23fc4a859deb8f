//! The outbox's small metadata file: epoch, acknowledged seq and next seq, replaced atomically.
//!
//! It lets `seq` survive even when every record is acknowledged and every segment deleted.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::OutboxError;

/// File name of the metadata inside the outbox folder.
pub(super) const META_FILE: &str = "meta.json";
const META_TMP: &str = "meta.json.tmp";

/// What the metadata file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Meta {
    /// Format version.
    pub v: u32,
    /// The buffer generation.
    pub epoch: u64,
    /// The collector's watermark: everything up to here is committed.
    pub acked_seq: u64,
    /// The seq the next record gets (at least; segments may hold newer records).
    pub next_seq: u64,
}

/// Reads the metadata; `Ok(None)` when it is missing or unreadable as metadata (logged).
pub(super) fn read(dir: &Path) -> Result<Option<Meta>, OutboxError> {
    let path = dir.join(META_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(OutboxError::io(path, "reading the metadata file", e)),
    };
    match serde_json::from_slice::<Meta>(&bytes) {
        Ok(meta) if meta.v == 1 && meta.epoch != 0 => Ok(Some(meta)),
        Ok(_) | Err(_) => {
            tracing::warn!(path = %path.display(), "outbox metadata is damaged; recovering from the segments");
            Ok(None)
        }
    }
}

/// Replaces the metadata atomically (temp file, fsync, rename, fsync folder); returns its size.
pub(super) fn write(dir: &Path, meta: &Meta) -> Result<u64, OutboxError> {
    let tmp = dir.join(META_TMP);
    let bytes = serde_json::to_vec(meta).map_err(|source| OutboxError::Encode {
        seq: meta.next_seq,
        source,
    })?;
    let mut file =
        File::create(&tmp).map_err(|e| OutboxError::io(&tmp, "creating the metadata file", e))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| OutboxError::io(&tmp, "writing the metadata file", e))?;
    let path = dir.join(META_FILE);
    fs::rename(&tmp, &path)
        .map_err(|e| OutboxError::io(&path, "renaming the metadata file into place", e))?;
    sync_dir(dir)?;
    Ok(bytes.len() as u64)
}

/// Makes creations, renames and deletions in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| OutboxError::io(dir, "syncing the outbox folder", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_treats_garbage_as_missing() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(read(dir.path()).expect("reads"), None);
        let meta = Meta {
            v: 1,
            epoch: 42,
            acked_seq: 10,
            next_seq: 12,
        };
        write(dir.path(), &meta).expect("writes");
        assert_eq!(read(dir.path()).expect("reads"), Some(meta));
        fs::write(dir.path().join(META_FILE), b"{\"v\":1,\"ep").expect("writes garbage");
        assert_eq!(read(dir.path()).expect("reads"), None);
    }
}
