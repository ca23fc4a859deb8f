//! The in-memory index of what the segments hold: seq → where, when, and what kind.
//!
//! It decides liveness (unacked and not dropped) and protection (the newest result of a check),
//! so the bounds and `pending` never need to read a segment to choose.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeBounds;

use jiff::Timestamp;
use outpost_shared::{CheckId, RecordBody};

/// What a record is, as far as the bounds care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A check result.
    Result(CheckId),
    /// A note.
    Note,
    /// A gap covering `from..=to`.
    Gap { from: u64, to: u64 },
}

impl Kind {
    /// The kind of a record body.
    pub fn of(body: &RecordBody) -> Self {
        match body {
            RecordBody::Result(r) => Self::Result(r.check.clone()),
            RecordBody::Note(_) => Self::Note,
            RecordBody::Gap(g) => Self::Gap {
                from: g.from_seq,
                to: g.to_seq,
            },
        }
    }
}

/// One stored record.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// Byte offset of its frame in its segment.
    pub offset: u64,
    /// Frame length in bytes.
    pub len: u64,
    /// The record's time.
    pub ts: Timestamp,
    /// What it is.
    pub kind: Kind,
    /// Dropped by a bound (covered by a gap record); kept on disk until its segment goes.
    pub dropped: bool,
}

/// Every record present in the segments, by seq.
#[derive(Debug, Default)]
pub(super) struct Index {
    entries: BTreeMap<u64, Entry>,
    newest: HashMap<CheckId, u64>,
    acked: u64,
    live: u64,
}

impl Index {
    /// An empty index with the collector's watermark at `acked`.
    pub fn new(acked: u64) -> Self {
        Self {
            acked,
            ..Self::default()
        }
    }

    /// Adds a record.
    pub fn insert(&mut self, seq: u64, entry: Entry) {
        if let Kind::Result(check) = &entry.kind {
            let newest = self.newest.entry(check.clone()).or_insert(seq);
            *newest = (*newest).max(seq);
        }
        if seq > self.acked && !entry.dropped {
            self.live += 1;
        }
        if let Some(old) = self.entries.insert(seq, entry)
            && seq > self.acked
            && !old.dropped
        {
            self.live -= 1;
        }
    }

    /// Moves the watermark up to `acked`.
    pub fn set_acked(&mut self, acked: u64) {
        if acked <= self.acked {
            return;
        }
        let freed = self
            .entries
            .range(self.acked + 1..=acked)
            .filter(|(_, e)| !e.dropped)
            .count() as u64;
        self.live -= freed;
        self.acked = acked;
    }

    /// Unacked and not dropped: still owed to the collector.
    pub fn is_live(&self, seq: u64, entry: &Entry) -> bool {
        seq > self.acked && !entry.dropped
    }

    /// The newest result of its check: never dropped by a bound.
    pub fn is_protected(&self, seq: u64, entry: &Entry) -> bool {
        matches!(&entry.kind, Kind::Result(c) if self.newest.get(c) == Some(&seq))
    }

    /// Live records.
    pub fn live_count(&self) -> u64 {
        self.live
    }

    /// Records in a seq range, present on disk (live or not).
    pub fn range(&self, seqs: impl RangeBounds<u64>) -> impl Iterator<Item = (u64, &Entry)> {
        self.entries.range(seqs).map(|(s, e)| (*s, e))
    }

    /// Live records from `from` on, in seq order.
    pub fn live_from(&self, from: u64) -> impl Iterator<Item = (u64, &Entry)> {
        let from = from.max(self.acked + 1);
        self.range(from..).filter(|(_, e)| !e.dropped)
    }

    /// Marks a record dropped; returns whether it was live.
    pub fn mark_dropped(&mut self, seq: u64) -> bool {
        let acked = self.acked;
        match self.entries.get_mut(&seq) {
            Some(e) if !e.dropped => {
                e.dropped = true;
                if seq > acked {
                    self.live -= 1;
                    return true;
                }
                false
            }
            _ => false,
        }
    }

    /// Sets a record's new offset after its segment was rewritten.
    pub fn set_offset(&mut self, seq: u64, offset: u64) {
        if let Some(e) = self.entries.get_mut(&seq) {
            e.offset = offset;
        }
    }

    /// Forgets records removed from disk.
    pub fn remove(&mut self, seq: u64) {
        if let Some(e) = self.entries.remove(&seq)
            && seq > self.acked
            && !e.dropped
        {
            self.live -= 1;
        }
    }

    /// The highest seq present.
    pub fn last_seq(&self) -> Option<u64> {
        self.entries.keys().next_back().copied()
    }
}

/// Turns dropped records into the gap ranges that report them: one range per contiguous run,
/// where a dropped gap record's own range joins the run so that no count is lost.
pub(super) fn gap_ranges(dropped: &[(u64, Kind)]) -> Vec<(u64, u64)> {
    let mut spans: Vec<(u64, u64)> = Vec::with_capacity(dropped.len());
    for (seq, kind) in dropped {
        spans.push((*seq, *seq));
        if let Kind::Gap { from, to } = kind {
            spans.push((*from, *to));
        }
    }
    merge_spans(spans)
}

/// Sorts spans and joins overlapping or adjacent ones.
pub(super) fn merge_spans(mut spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
    for (from, to) in spans {
        match merged.last_mut() {
            Some(last) if from <= last.1.saturating_add(1) => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_ranges_join_runs_and_absorb_dropped_gaps() {
        type Case<'a> = (&'a [(u64, Kind)], &'a [(u64, u64)]);
        let cases: &[Case] = &[
            (&[], &[]),
            (
                &[(3, Kind::Note), (4, Kind::Note), (6, Kind::Note)],
                &[(3, 4), (6, 6)],
            ),
            (
                &[
                    (5, Kind::Gap { from: 1, to: 4 }),
                    (6, Kind::Note),
                    (9, Kind::Note),
                ],
                &[(1, 6), (9, 9)],
            ),
            (
                &[(8, Kind::Gap { from: 2, to: 3 }), (9, Kind::Note)],
                &[(2, 3), (8, 9)],
            ),
        ];
        for (dropped, want) in cases {
            assert_eq!(gap_ranges(dropped), *want, "{dropped:?}");
        }
    }

    #[test]
    fn liveness_follows_acks_and_drops() {
        let entry = |kind| Entry {
            offset: 0,
            len: 1,
            ts: Timestamp::UNIX_EPOCH,
            kind,
            dropped: false,
        };
        let check = CheckId::new("router").expect("valid id");
        let mut index = Index::new(0);
        for seq in 1..=4 {
            index.insert(seq, entry(Kind::Result(check.clone())));
        }
        assert_eq!(index.live_count(), 4);
        let newest = index.range(4..=4).next().expect("present").1.clone();
        assert!(index.is_protected(4, &newest));
        assert!(index.mark_dropped(2));
        index.set_acked(3);
        assert_eq!(index.live_count(), 1);
        assert_eq!(index.live_from(0).map(|(s, _)| s).collect::<Vec<_>>(), [4]);
    }
}
