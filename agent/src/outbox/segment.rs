//! One segment file: a header and appended frames, named after the first seq it was made for.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::frame::{SEGMENT_HEADER, segment_header};
use super::{OutboxError, meta};

const SEGMENT_EXT: &str = "seg";

/// An open segment file.
#[derive(Debug)]
pub(super) struct Segment {
    /// Where it lives.
    pub path: PathBuf,
    file: File,
    /// Its length in bytes.
    pub size: u64,
}

/// The file name of segment `id`.
pub(super) fn file_name(id: u64) -> String {
    format!("{id:020}.{SEGMENT_EXT}")
}

/// The segment id in a file name, if it is a segment's name.
pub(super) fn parse_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".seg")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

fn open_append(path: &Path) -> Result<File, OutboxError> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| OutboxError::io(path, "opening a segment", e))
}

impl Segment {
    /// Creates segment `id` with its header, durably (file and folder entry).
    pub fn create(dir: &Path, id: u64, epoch: u64) -> Result<Self, OutboxError> {
        let path = dir.join(file_name(id));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| OutboxError::io(&path, "creating a segment", e))?;
        file.write_all(&segment_header(epoch))
            .and_then(|()| file.sync_all())
            .map_err(|e| OutboxError::io(&path, "writing a segment header", e))?;
        meta::sync_dir(dir)?;
        Ok(Self {
            path,
            file,
            size: SEGMENT_HEADER,
        })
    }

    /// Opens an existing segment and reads all of it.
    pub fn open(path: PathBuf) -> Result<(Self, Vec<u8>), OutboxError> {
        let bytes = fs::read(&path).map_err(|e| OutboxError::io(&path, "reading a segment", e))?;
        let file = open_append(&path)?;
        let size = bytes.len() as u64;
        Ok((Self { path, file, size }, bytes))
    }

    /// Appends one frame and returns its offset; on failure the file is cut back to its old size.
    pub fn append(&mut self, frame: &[u8]) -> Result<u64, OutboxError> {
        let offset = self.size;
        if let Err(e) = self.file.write_all(frame) {
            // Best effort: a half-written frame would otherwise be read as a torn tail later.
            let _ = self.file.set_len(offset);
            return Err(OutboxError::io(&self.path, "appending a record", e));
        }
        self.size += frame.len() as u64;
        Ok(offset)
    }

    /// Makes appended frames durable.
    pub fn sync(&self) -> Result<(), OutboxError> {
        self.file
            .sync_data()
            .map_err(|e| OutboxError::io(&self.path, "syncing a segment to disk", e))
    }

    /// Reads `len` bytes at `offset`.
    pub fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>, OutboxError> {
        let mut buf = vec![0; len as usize];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| OutboxError::io(&self.path, "reading a segment", e))?;
        Ok(buf)
    }

    /// Replaces this segment's content with a fresh header and `frames`, atomically (temp file,
    /// fsync, rename, fsync folder); returns each frame's new offset.
    pub fn rewrite(
        &mut self,
        dir: &Path,
        epoch: u64,
        frames: &[&[u8]],
    ) -> Result<Vec<u64>, OutboxError> {
        let tmp = self.path.with_extension("seg.tmp");
        let mut body = segment_header(epoch).to_vec();
        let mut offsets = Vec::with_capacity(frames.len());
        for frame in frames {
            offsets.push(body.len() as u64);
            body.extend_from_slice(frame);
        }
        let mut file = File::create(&tmp)
            .map_err(|e| OutboxError::io(&tmp, "creating a compacted segment", e))?;
        file.write_all(&body)
            .and_then(|()| file.sync_all())
            .map_err(|e| OutboxError::io(&tmp, "writing a compacted segment", e))?;
        drop(file);
        fs::rename(&tmp, &self.path)
            .map_err(|e| OutboxError::io(&self.path, "replacing a compacted segment", e))?;
        meta::sync_dir(dir)?;
        self.file = open_append(&self.path)?;
        self.size = body.len() as u64;
        Ok(offsets)
    }

    /// Deletes the file (the caller syncs the folder).
    pub fn delete(self) -> Result<(), OutboxError> {
        fs::remove_file(&self.path)
            .map_err(|e| OutboxError::io(&self.path, "deleting a segment", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_name(&file_name(42)), Some(42));
        assert_eq!(parse_name("00000000000000000042.seg.tmp"), None);
        assert_eq!(parse_name("meta.json"), None);
    }
}
