//! Errors of the durable outbox: each names the file and says what to do.

use std::io;
use std::path::PathBuf;

/// Why an outbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A file system call failed.
    #[error(
        "outbox file {path}: {action} failed: {source}. Check that the folder exists, is writable \
         by the agent's user and that the disk is not full"
    )]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// What the outbox was doing ("writing a record", "renaming the metadata file", ...).
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// `max_size` leaves no room for a working buffer.
    #[error(
        "outbox max_size of {max_size} bytes is too small; set [outbox] max_size to at least \
         {min} bytes (a few MB is usual)"
    )]
    LimitTooSmall {
        /// The configured limit.
        max_size: u64,
        /// The smallest accepted limit.
        min: u64,
    },
    /// One record does not fit in a segment.
    #[error(
        "a record of {size} bytes does not fit in an outbox segment of {segment} bytes; shorten \
         the record or raise [outbox] max_size (segments are max_size / 8, at most 4 MB)"
    )]
    RecordTooLarge {
        /// The encoded record's size.
        size: u64,
        /// The segment size in force.
        segment: u64,
    },
    /// Everything left is the newest result of some check, and that still exceeds the limit.
    #[error(
        "outbox {dir} is full: {held} bytes are held by the newest result of each check, which \
         are never dropped; raise [outbox] max_size"
    )]
    Full {
        /// The outbox folder.
        dir: PathBuf,
        /// Bytes on disk that cannot be freed.
        held: u64,
    },
    /// Stored bytes no longer match their checksum (disk trouble after the outbox was opened).
    #[error(
        "outbox segment {path} is damaged at byte {offset}: {detail}. Restart the agent: on \
         start it cuts out the damaged part and reports it as a gap"
    )]
    Corrupt {
        /// The damaged segment file.
        path: PathBuf,
        /// Byte offset of the damaged frame.
        offset: u64,
        /// What did not match.
        detail: String,
    },
    /// A record could not be serialised (cannot happen for valid records).
    #[error("cannot encode outbox record seq {seq}: {source}")]
    Encode {
        /// The record's seq.
        seq: u64,
        /// The serializer's error.
        source: serde_json::Error,
    },
}

impl OutboxError {
    /// Wraps an I/O error with the file and the action.
    pub(super) fn io(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
