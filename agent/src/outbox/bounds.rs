//! The size and age bounds: choose what to drop, report it as gaps, and free the space.

use std::collections::BTreeSet;

use jiff::Timestamp;
use outpost_shared::{GapRecord, Record, RecordBody};

use super::frame::SEGMENT_HEADER;
use super::index::{Kind, gap_ranges};
use super::{Outbox, OutboxError, meta};

/// Upper bound of one encoded gap record's frame.
const GAP_FRAME_MAX: u64 = 200;

impl Outbox {
    /// Drops unprotected records older than `max_age` (batched, see the module docs).
    pub(super) fn enforce_age(&mut self, now: Timestamp) -> Result<(), OutboxError> {
        let max_age = self.limits.max_age;
        let limit = now.checked_sub(max_age).unwrap_or(Timestamp::MIN);
        let oldest = self
            .index
            .live_from(0)
            .find(|(seq, e)| !self.index.is_protected(*seq, e));
        if oldest.is_none_or(|(_, e)| e.ts >= limit) {
            return Ok(());
        }
        let cutoff = now.checked_sub(max_age / 16 * 15).unwrap_or(Timestamp::MIN);
        let victims: Vec<(u64, Kind)> = self
            .index
            .live_from(0)
            .filter(|(seq, e)| e.ts < cutoff && !self.index.is_protected(*seq, e))
            .map(|(seq, e)| (seq, e.kind.clone()))
            .collect();
        self.drop_records(&victims, "age", now, &[])
    }

    /// Frees space until `need` more bytes fit in the budget, oldest segments first.
    pub(super) fn make_room(&mut self, need: u64, now: Timestamp) -> Result<(), OutboxError> {
        let disk = self.disk_bytes();
        if disk + need <= self.budget {
            return Ok(());
        }
        let ids: Vec<u64> = self.segments.keys().copied().collect();
        let mut victims = Vec::new();
        let mut chosen = Vec::new();
        let mut freed = 0;
        for (i, id) in ids.iter().enumerate() {
            let end = ids.get(i + 1).copied().unwrap_or(u64::MAX);
            let mut kept = 0;
            let mut seg_victims = Vec::new();
            for (seq, e) in self.index.range(*id..end) {
                if !self.index.is_live(seq, e) {
                    continue;
                }
                if self.index.is_protected(seq, e) {
                    kept += e.len;
                } else {
                    seg_victims.push((seq, e.kind.clone()));
                }
            }
            let size = self.segments[id].size;
            let after = if kept == 0 { 0 } else { SEGMENT_HEADER + kept };
            if after >= size {
                continue;
            }
            freed += size - after;
            chosen.push(*id);
            victims.extend(seg_victims);
            let gaps = gap_ranges(&victims).len() as u64 * GAP_FRAME_MAX + SEGMENT_HEADER;
            if disk - freed + gaps + need <= self.budget {
                return self.drop_records(&victims, "size", now, &chosen);
            }
        }
        Err(OutboxError::Full {
            dir: self.dir.clone(),
            held: disk - freed,
        })
    }

    /// Marks `victims` dropped, writes one gap per contiguous range, then rewrites the `compact`
    /// segments without their dead records and deletes segments left with nothing owed.
    fn drop_records(
        &mut self,
        victims: &[(u64, Kind)],
        reason: &str,
        now: Timestamp,
        compact: &[u64],
    ) -> Result<(), OutboxError> {
        let victims = &self.absorb_gaps(victims.to_vec());
        let ranges = gap_ranges(victims);
        if self.active.is_some_and(|a| compact.contains(&a)) {
            // Gaps go to a fresh segment so the one being compacted is not also appended to.
            self.active = None;
        }
        for (from, to) in ranges {
            let gap = Record {
                seq: self.next_seq,
                ts: now,
                body: RecordBody::Gap(GapRecord {
                    from_seq: from,
                    to_seq: to,
                    dropped: to - from + 1,
                    reason: reason.to_owned(),
                }),
            };
            self.write_record(&gap)?;
        }
        // Marked only once the gaps are durable: a failed write leaves the records owed.
        for (seq, _) in victims {
            if self.index.mark_dropped(*seq) {
                self.dropped_total += 1;
            }
        }
        let mut touched: BTreeSet<u64> = compact.iter().copied().collect();
        for (seq, _) in victims {
            if let Some((id, _)) = self.segments.range(..=*seq).next_back() {
                touched.insert(*id);
            }
        }
        let touched: Vec<u64> = touched.into_iter().collect();
        self.remove_dead(&touched)?;
        for id in compact {
            if self.segments.contains_key(id) {
                self.compact_segment(*id)?;
            }
        }
        Ok(())
    }

    /// Adds to `victims` every live gap record whose range touches what is being dropped, so that
    /// one new gap replaces them and gap records do not pile up over a long outage.
    fn absorb_gaps(&self, mut victims: Vec<(u64, Kind)>) -> Vec<(u64, Kind)> {
        let mut taken: BTreeSet<u64> = victims.iter().map(|(s, _)| *s).collect();
        loop {
            let spans = gap_ranges(&victims);
            let touches = |from: u64, to: u64| {
                let i = spans.partition_point(|(_, b)| b.saturating_add(1) < from);
                spans
                    .get(i)
                    .is_some_and(|(a, _)| *a <= to.saturating_add(1))
            };
            let extra: Vec<(u64, Kind)> = self
                .index
                .live_from(0)
                .filter(|(seq, e)| {
                    matches!(e.kind, Kind::Gap { from, to } if touches(from, to))
                        && !taken.contains(seq)
                })
                .map(|(seq, e)| (seq, e.kind.clone()))
                .collect();
            if extra.is_empty() {
                return victims;
            }
            taken.extend(extra.iter().map(|(s, _)| *s));
            victims.extend(extra);
        }
    }

    /// Deletes those of `ids` that hold nothing owed to the collector (metadata saved first, so
    /// the next seq survives).
    pub(super) fn remove_dead(&mut self, ids: &[u64]) -> Result<(), OutboxError> {
        let mut deleted = false;
        for id in ids {
            if !self.segments.contains_key(id) {
                continue;
            }
            let end = self.segment_end(*id);
            if self
                .index
                .live_from(*id)
                .next()
                .is_some_and(|(s, _)| s < end)
            {
                continue;
            }
            self.save_meta()?;
            let seg = self
                .segments
                .remove(id)
                .expect("invariant: checked present above");
            seg.delete()?;
            let gone: Vec<u64> = self.index.range(*id..end).map(|(s, _)| s).collect();
            for seq in gone {
                self.index.remove(seq);
            }
            if self.active == Some(*id) {
                self.active = None;
            }
            deleted = true;
        }
        if deleted {
            meta::sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Rewrites segment `id` with only its live records.
    fn compact_segment(&mut self, id: u64) -> Result<(), OutboxError> {
        let end = self.segment_end(id);
        let present: Vec<(u64, u64, u64, bool)> = self
            .index
            .range(id..end)
            .map(|(s, e)| (s, e.offset, e.len, self.index.is_live(s, e)))
            .collect();
        let seg = self
            .segments
            .get_mut(&id)
            .expect("invariant: compacted segments are open");
        let bytes = seg.read_at(0, seg.size)?;
        let frames: Vec<&[u8]> = present
            .iter()
            .filter(|p| p.3)
            .map(|&(_, offset, len, _)| &bytes[offset as usize..(offset + len) as usize])
            .collect();
        let mut offsets = seg.rewrite(&self.dir, self.epoch, &frames)?.into_iter();
        for (seq, _, _, live) in present {
            if live {
                let offset = offsets
                    .next()
                    .expect("invariant: one new offset per kept frame");
                self.index.set_offset(seq, offset);
            } else {
                self.index.remove(seq);
            }
        }
        Ok(())
    }
}
