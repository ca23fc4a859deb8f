//! Opening an outbox: read the metadata and every segment, cut out damaged bytes, and report
//! whatever was lost as `gap` records with reason `corrupt`.

use std::fs;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use outpost_shared::{GapRecord, Record, RecordBody};

use super::frame::{self, Found, SEGMENT_HEADER};
use super::index::{Entry, Index, Kind, merge_spans};
use super::segment::{self, Segment};
use super::{Outbox, OutboxError, OutboxLimits, meta, sizing};

/// One segment file as found on disk.
struct Loaded {
    id: u64,
    segment: Segment,
    bytes: Vec<u8>,
    epoch: Option<u64>,
    scan: frame::Scan,
}

/// Opens and recovers the outbox in `dir`.
pub(super) fn open(dir: &Path, limits: OutboxLimits) -> Result<Outbox, OutboxError> {
    let (segment_size, budget) = sizing(&limits)?;
    fs::create_dir_all(dir).map_err(|e| OutboxError::io(dir, "creating the outbox folder", e))?;
    let saved = meta::read(dir)?;
    let mut loaded = Vec::new();
    for (id, path) in list_segments(dir)? {
        let (segment, bytes) = Segment::open(path)?;
        let epoch = frame::parse_segment_header(&bytes);
        let scan = if bytes.len() > SEGMENT_HEADER as usize {
            frame::scan(&bytes, SEGMENT_HEADER as usize)
        } else {
            frame::Scan::default()
        };
        loaded.push(Loaded {
            id,
            segment,
            bytes,
            epoch,
            scan,
        });
    }
    let known = saved
        .map(|m| m.epoch)
        .or_else(|| loaded.iter().rev().find_map(|l| l.epoch));
    let epoch = known.unwrap_or_else(new_epoch);
    if known.is_none() {
        tracing::info!(dir = %dir.display(), epoch, "outbox is new or was wiped: starting a new epoch");
    }
    let first = loaded
        .iter()
        .filter(|l| known.is_some() && l.epoch.is_none_or(|e| e == epoch))
        .find_map(|l| l.scan.frames.first().map(|f| f.record.seq));
    let acked = saved.map_or_else(|| first.map_or(0, |s| s - 1), |m| m.acked_seq);

    let mut outbox = Outbox {
        dir: dir.to_path_buf(),
        limits,
        segment_size,
        budget,
        epoch,
        next_seq: 1,
        acked_seq: acked,
        saved_meta: saved,
        meta_saved_at: None,
        meta_bytes: fs::metadata(dir.join(meta::META_FILE)).map_or(0, |m| m.len()),
        index: Index::new(acked),
        segments: std::collections::BTreeMap::new(),
        active: None,
        dropped_total: 0,
    };
    let bad_tail = outbox.load_segments(loaded, known.is_some())?;
    let last_present = outbox.index.last_seq().unwrap_or(0);
    outbox.next_seq = saved
        .map_or(1, |m| m.next_seq)
        .max(last_present + 1)
        .max(acked + 1);
    if bad_tail && outbox.next_seq == last_present + 1 {
        // A frame was being written when the agent stopped: it held the next seq, now a hole.
        outbox.next_seq += 1;
    }
    let lost = outbox.mark_gaps_and_find_holes();
    outbox.active = outbox
        .segments
        .iter()
        .next_back()
        .filter(|(_, s)| s.size < segment_size)
        .map(|(id, _)| *id);
    let now = Timestamp::now();
    for (from, to) in merge_spans(lost) {
        tracing::warn!(dir = %dir.display(), from, to, "outbox lost records to a damaged file; reporting a gap");
        let gap = Record {
            seq: outbox.next_seq,
            ts: now,
            body: RecordBody::Gap(GapRecord {
                from_seq: from,
                to_seq: to,
                dropped: to - from + 1,
                reason: "corrupt".to_owned(),
            }),
        };
        outbox.write_record(&gap)?;
    }
    outbox.save_meta()?;
    let ids: Vec<u64> = outbox.segments.keys().copied().collect();
    outbox.remove_dead(&ids)?;
    Ok(outbox)
}

/// A random epoch in [1, 2^53), so JavaScript dashboards keep it exact.
fn new_epoch() -> u64 {
    rand::random_range(1..(1u64 << 53))
}

/// Segment files in `dir` by id; leftover temp files from an interrupted write are removed.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, OutboxError> {
    let read = |e| OutboxError::io(dir, "listing the outbox folder", e);
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if Path::new(name).extension().is_some_and(|x| x == "tmp") {
            let path = entry.path();
            fs::remove_file(&path)
                .map_err(|e| OutboxError::io(&path, "removing an unfinished temp file", e))?;
        } else if let Some(id) = segment::parse_name(name) {
            out.push((id, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(id, _)| *id);
    Ok(out)
}

impl Outbox {
    /// Indexes the good frames of every segment, rewriting damaged segments without their bad
    /// bytes; returns whether the last segment ended in bad bytes (a torn write).
    fn load_segments(&mut self, loaded: Vec<Loaded>, trusted: bool) -> Result<bool, OutboxError> {
        let mut prev_max = 0;
        let mut bad_tail = false;
        let ends: Vec<u64> = loaded.iter().skip(1).map(|l| l.id).collect();
        for (i, mut l) in loaded.into_iter().enumerate() {
            let end = ends.get(i).copied().unwrap_or(u64::MAX);
            let foreign = !trusted || l.epoch.is_some_and(|e| e != self.epoch);
            let total = l.scan.frames.len();
            let frames: Vec<Found> = l
                .scan
                .frames
                .into_iter()
                .filter(|f| {
                    !foreign && f.record.seq > prev_max && (l.id..end).contains(&f.record.seq)
                })
                .collect();
            let damaged = l.scan.damaged || l.epoch.is_none() || frames.len() != total;
            bad_tail = l.scan.bad_tail;
            if foreign {
                tracing::warn!(path = %l.segment.path.display(), "deleting an outbox segment of another epoch");
            }
            if frames.is_empty() {
                l.segment.delete()?;
                continue;
            }
            let mut offsets: Vec<u64> = frames.iter().map(|f| f.offset).collect();
            if damaged {
                tracing::warn!(path = %l.segment.path.display(), "outbox segment is damaged; keeping its good records");
                let slices: Vec<&[u8]> = frames
                    .iter()
                    .map(|f| &l.bytes[f.offset as usize..(f.offset + f.len) as usize])
                    .collect();
                offsets = l.segment.rewrite(&self.dir, self.epoch, &slices)?;
            }
            for (f, offset) in frames.iter().zip(offsets) {
                prev_max = f.record.seq;
                self.index.insert(
                    f.record.seq,
                    Entry {
                        offset,
                        len: f.len,
                        ts: f.record.ts,
                        kind: Kind::of(&f.record.body),
                        dropped: false,
                    },
                );
            }
            self.segments.insert(l.id, l.segment);
        }
        if !self.segments.is_empty() || bad_tail {
            meta::sync_dir(&self.dir)?;
        }
        Ok(bad_tail)
    }

    /// Marks records covered by gap records as dropped and returns the seqs after the watermark
    /// that are neither present nor covered: records lost to damage.
    fn mark_gaps_and_find_holes(&mut self) -> Vec<(u64, u64)> {
        let covered = merge_spans(
            self.index
                .range(..)
                .filter_map(|(_, e)| match e.kind {
                    Kind::Gap { from, to } => Some((from, to)),
                    _ => None,
                })
                .collect(),
        );
        for &(from, to) in &covered {
            let seqs: Vec<u64> = self.index.range(from..=to).map(|(s, _)| s).collect();
            for seq in seqs {
                self.index.mark_dropped(seq);
            }
        }
        let mut known = covered;
        known.extend(self.index.range(..).map(|(s, _)| (s, s)));
        let known = merge_spans(known);
        let mut holes = Vec::new();
        let mut next = self.acked_seq + 1;
        for (from, to) in known {
            if to < next {
                continue;
            }
            if from > next {
                holes.push((next, (from - 1).min(self.next_seq - 1)));
            }
            next = next.max(to + 1);
        }
        if next < self.next_seq {
            holes.push((next, self.next_seq - 1));
        }
        holes.retain(|(from, to)| from <= to);
        holes
    }
}
