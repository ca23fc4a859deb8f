//! The agent's durable outbox: every record stays on disk until the collector's `ack`
//! watermark covers it.
//!
//! Layout of the folder: `meta.json` (epoch, acknowledged seq, next seq; replaced atomically)
//! and segment files `{first seq:020}.seg`, each a header and appended CRC32-checked frames.
//! An in-memory index (seq → offset, time, kind) makes [`Outbox::pending`] cheap.
//!
//! **fsync policy:** every [`Outbox::append`] writes its frame and calls `fdatasync` before it
//! returns, so a record whose append returned `Ok` survives power loss. Agents write a few
//! records per second, far below what one sync per record costs, and batching would make
//! "durable on return" false. Segment creation, compaction and metadata replacement also sync
//! the folder.
//!
//! Acks are saved lazily: the acknowledged seq is written to `meta.json` at most every
//! [`META_EVERY`] (always before a segment is deleted, and on drop). After a crash the agent
//! may resend a few seconds of records the collector already has; it stores them once. This
//! saves three syncs (file, rename, folder) per collector ack, most of the agent's disk wakeups.
//!
//! **Bounds:** when the disk use would pass `max_size`, or a record is older than `max_age`,
//! the oldest unacknowledged records are dropped, except the newest result of each check, and
//! one `gap` record is written per contiguous dropped range. Age drops are batched: when the
//! oldest record passes `max_age`, everything older than 15/16 of `max_age` goes at once, so a
//! steady stream makes one gap per `max_age / 16` rather than one per record.

mod bounds;
mod error;
mod frame;
mod index;
mod meta;
mod recover;
mod segment;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use outpost_shared::{Record, RecordBody};

pub use error::OutboxError;
use index::{Entry, Index, Kind};
use meta::Meta;
use segment::Segment;

/// How much the outbox may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Bytes on disk (segments and metadata) never exceed this.
    pub max_size: u64,
    /// Unacknowledged records older than this are dropped (reported as a gap).
    pub max_age: Duration,
}

/// Figures for the status page and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxStats {
    /// Records not yet acknowledged (and not dropped).
    pub pending: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// Time of the oldest pending record.
    pub oldest_pending: Option<Timestamp>,
    /// The seq of the newest record (0 before the first).
    pub last_seq: u64,
    /// The collector's watermark.
    pub acked_seq: u64,
    /// Records dropped by the bounds since this outbox was opened.
    pub dropped_total: u64,
}

/// The durable log of records owed to the collector; single owner (wrap it in a `Mutex`).
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    limits: OutboxLimits,
    segment_size: u64,
    budget: u64,
    epoch: u64,
    next_seq: u64,
    acked_seq: u64,
    saved_meta: Option<Meta>,
    /// When `meta.json` was last written (by this process).
    meta_saved_at: Option<std::time::Instant>,
    meta_bytes: u64,
    index: Index,
    segments: BTreeMap<u64, Segment>,
    active: Option<u64>,
    dropped_total: u64,
}

/// The longest an acknowledged seq waits in memory before `meta.json` has it.
pub const META_EVERY: Duration = Duration::from_secs(2);

/// Smallest accepted `max_size`.
const MIN_MAX_SIZE: u64 = 64 * 1024;
/// Largest segment.
const MAX_SEGMENT: u64 = 4 * 1024 * 1024;
/// Room kept for the metadata file, its temp copy and gap records written before space is freed.
const RESERVE: u64 = 4096;
/// Slack for a record growing when gap records take its seq first (more digits).
const SEQ_SLACK: u64 = 24;

impl Outbox {
    /// Opens (creating if needed) the outbox in `dir` and recovers it: a torn or damaged tail is
    /// cut off and reported as a `gap` record with reason `corrupt`.
    pub fn open(dir: &Path, limits: OutboxLimits) -> Result<Self, OutboxError> {
        recover::open(dir, limits)
    }

    /// The buffer generation; changes only when the buffer is lost or wiped.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Appends a record and returns its seq; the record is on disk (fsynced) when this returns.
    pub fn append(&mut self, ts: Timestamp, body: RecordBody) -> Result<u64, OutboxError> {
        let mut record = Record {
            seq: self.next_seq,
            ts,
            body,
        };
        let probe = frame::encode(&record)?;
        let size = probe.len() as u64 + SEQ_SLACK;
        if size + frame::SEGMENT_HEADER > self.segment_size {
            return Err(OutboxError::RecordTooLarge {
                size,
                segment: self.segment_size,
            });
        }
        self.enforce_age(ts)?;
        self.make_room(size + frame::SEGMENT_HEADER, ts)?;
        if record.seq == self.next_seq {
            self.write_frame(&record, &probe)
        } else {
            record.seq = self.next_seq;
            self.write_record(&record)
        }
    }

    /// Unacknowledged records with seq > `after_seq`, in seq order, at most `max`.
    pub fn pending(&self, after_seq: u64, max: usize) -> Result<Vec<Record>, OutboxError> {
        let picked: Vec<(u64, &Entry)> = self
            .index
            .live_from(after_seq.saturating_add(1))
            .take(max)
            .collect();
        let mut out = Vec::with_capacity(picked.len());
        let mut rest = picked.as_slice();
        while let Some(&(first, _)) = rest.first() {
            let (seg, end) = self.segment_of(first);
            let n = rest.iter().take_while(|(s, _)| *s < end).count();
            let (run, tail) = rest.split_at(n);
            rest = tail;
            let start = run[0].1.offset;
            let last = run[n - 1].1;
            let bytes = seg.read_at(start, last.offset + last.len - start)?;
            for (seq, entry) in run {
                let pos = (entry.offset - start) as usize;
                let damaged = |detail: String| OutboxError::Corrupt {
                    path: seg.path.clone(),
                    offset: entry.offset,
                    detail,
                };
                let (record, _) = frame::decode_at(&bytes, pos).map_err(damaged)?;
                if record.seq != *seq {
                    return Err(damaged(format!("expected seq {seq}, found {}", record.seq)));
                }
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Applies the collector's watermark: everything up to `seq` is committed and freed.
    /// A watermark of another epoch (an old buffer's) is ignored.
    pub fn ack(&mut self, epoch: u64, seq: u64) -> Result<(), OutboxError> {
        if epoch != self.epoch {
            tracing::debug!(
                epoch,
                ours = self.epoch,
                "ignoring an ack for another epoch"
            );
            return Ok(());
        }
        let seq = seq.min(self.next_seq - 1);
        if seq <= self.acked_seq {
            return Ok(());
        }
        self.index.set_acked(seq);
        self.acked_seq = seq;
        if self.meta_saved_at.is_none_or(|t| t.elapsed() >= META_EVERY) {
            self.save_meta()?;
        }
        let done: Vec<u64> = self.segments.range(..=seq).map(|(id, _)| *id).collect();
        self.remove_dead(&done)
    }

    /// The collector's watermark.
    pub fn acked_seq(&self) -> u64 {
        self.acked_seq
    }

    /// Current figures.
    pub fn stats(&self) -> OutboxStats {
        OutboxStats {
            pending: self.index.live_count(),
            bytes: self.disk_bytes(),
            oldest_pending: self.index.live_from(0).next().map(|(_, e)| e.ts),
            last_seq: self.next_seq - 1,
            acked_seq: self.acked_seq,
            dropped_total: self.dropped_total,
        }
    }

    /// Bytes on disk: segments and metadata.
    fn disk_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum::<u64>() + self.meta_bytes
    }

    /// The segment holding `seq`, and the first seq of the next segment.
    fn segment_of(&self, seq: u64) -> (&Segment, u64) {
        let (_, seg) = self
            .segments
            .range(..=seq)
            .next_back()
            .expect("invariant: every indexed record lies in a segment");
        (seg, self.segment_end(seq))
    }

    /// The first seq after the segment that holds (or would hold) `seq`.
    fn segment_end(&self, seq: u64) -> u64 {
        self.segments
            .range(seq.saturating_add(1)..)
            .next()
            .map_or(u64::MAX, |(id, _)| *id)
    }

    /// Encodes and writes a record (fsynced).
    fn write_record(&mut self, record: &Record) -> Result<u64, OutboxError> {
        let frame = frame::encode(record)?;
        self.write_frame(record, &frame)
    }

    /// Writes an encoded record to the active segment, starting a new one when it is full.
    fn write_frame(&mut self, record: &Record, frame: &[u8]) -> Result<u64, OutboxError> {
        let len = frame.len() as u64;
        let active = match self.active {
            Some(id) if self.segments[&id].size + len <= self.segment_size => id,
            _ => {
                let seg = Segment::create(&self.dir, record.seq, self.epoch)?;
                self.segments.insert(record.seq, seg);
                self.active = Some(record.seq);
                record.seq
            }
        };
        let seg = self
            .segments
            .get_mut(&active)
            .expect("invariant: the active segment is open");
        let offset = seg.append(frame)?;
        seg.sync()?;
        self.index.insert(
            record.seq,
            Entry {
                offset,
                len,
                ts: record.ts,
                kind: Kind::of(&record.body),
                dropped: false,
            },
        );
        self.next_seq = record.seq + 1;
        Ok(record.seq)
    }

    /// Writes the metadata if it changed.
    fn save_meta(&mut self) -> Result<(), OutboxError> {
        let meta = Meta {
            v: 1,
            epoch: self.epoch,
            acked_seq: self.acked_seq,
            next_seq: self.next_seq,
        };
        if self.saved_meta != Some(meta) {
            self.meta_bytes = meta::write(&self.dir, &meta)?;
            self.saved_meta = Some(meta);
            self.meta_saved_at = Some(std::time::Instant::now());
        }
        Ok(())
    }

    /// Writes the acknowledged seq to disk now (it is otherwise saved at most every
    /// [`META_EVERY`]).
    pub fn flush(&mut self) -> Result<(), OutboxError> {
        self.save_meta()
    }
}

impl Drop for Outbox {
    /// Saves an acknowledged seq still held back by [`META_EVERY`] (and nothing else: the
    /// metadata is otherwise written exactly when it was before acks were saved lazily).
    fn drop(&mut self) {
        let unsaved = self
            .saved_meta
            .map_or(self.acked_seq > 0, |m| m.acked_seq != self.acked_seq);
        if !unsaved {
            return;
        }
        if let Err(err) = self.save_meta() {
            tracing::warn!(error = %err, "cannot save the outbox metadata at close; the collector may get some records twice");
        }
    }
}

/// Segment size and the byte budget for segments that `limits` allow.
fn sizing(limits: &OutboxLimits) -> Result<(u64, u64), OutboxError> {
    if limits.max_size < MIN_MAX_SIZE {
        return Err(OutboxError::LimitTooSmall {
            max_size: limits.max_size,
            min: MIN_MAX_SIZE,
        });
    }
    let segment_size = (limits.max_size / 8).min(MAX_SEGMENT);
    // A compaction writes a whole segment copy before the old one goes: keep room for it.
    Ok((segment_size, limits.max_size - segment_size - RESERVE))
}
