//! On-disk framing: a segment header, then length-prefixed, CRC32-checked frames of JSON.
//!
//! Frame: `magic (2) | len (u32 LE) | crc32(len ‖ payload) (u32 LE) | payload (JSON Record)`.
//! The magic lets recovery find the next good frame after damaged bytes without trying every
//! byte offset as a length.

use outpost_shared::Record;

use super::OutboxError;

/// Marks the start of a frame.
const FRAME_MAGIC: [u8; 2] = [0xF7, 0x0B];
/// Bytes before a frame's payload.
pub(super) const FRAME_OVERHEAD: u64 = 10;
/// Marks the start of a segment file.
const SEGMENT_MAGIC: &[u8; 8] = b"OUTPOSTB";
/// Segment format version.
const SEGMENT_VERSION: u32 = 1;
/// Bytes of the segment header: magic, version, epoch, crc32 of the previous 20 bytes.
pub(super) const SEGMENT_HEADER: u64 = 24;

/// Encodes one record as a frame.
pub(super) fn encode(record: &Record) -> Result<Vec<u8>, OutboxError> {
    let payload = serde_json::to_vec(record).map_err(|source| OutboxError::Encode {
        seq: record.seq,
        source,
    })?;
    let len = u32::try_from(payload.len()).map_err(|_| OutboxError::RecordTooLarge {
        size: payload.len() as u64,
        segment: u64::from(u32::MAX),
    })?;
    let mut frame = Vec::with_capacity(payload.len() + FRAME_OVERHEAD as usize);
    frame.extend_from_slice(&FRAME_MAGIC);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&checksum(&len.to_le_bytes(), &payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

fn checksum(len: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(payload);
    hasher.finalize()
}

/// Decodes the frame starting at `pos`; returns the record and the frame's total length.
pub(super) fn decode_at(bytes: &[u8], pos: usize) -> Result<(Record, usize), String> {
    let head = bytes
        .get(pos..pos + FRAME_OVERHEAD as usize)
        .ok_or("frame header cut short")?;
    if head[..2] != FRAME_MAGIC {
        return Err("no frame marker".into());
    }
    let len_bytes = &head[2..6];
    let len = u32::from_le_bytes(len_bytes.try_into().expect("invariant: 4-byte slice")) as usize;
    let crc = u32::from_le_bytes(head[6..10].try_into().expect("invariant: 4-byte slice"));
    let start = pos + FRAME_OVERHEAD as usize;
    let payload = bytes
        .get(start..start.saturating_add(len))
        .ok_or("frame payload cut short")?;
    if checksum(len_bytes, payload) != crc {
        return Err("checksum mismatch".into());
    }
    let record = serde_json::from_slice(payload).map_err(|e| format!("bad record JSON: {e}"))?;
    Ok((record, FRAME_OVERHEAD as usize + len))
}

/// Encodes a segment header for `epoch`.
pub(super) fn segment_header(epoch: u64) -> [u8; SEGMENT_HEADER as usize] {
    let mut head = [0u8; SEGMENT_HEADER as usize];
    head[..8].copy_from_slice(SEGMENT_MAGIC);
    head[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    head[12..20].copy_from_slice(&epoch.to_le_bytes());
    let crc = crc32fast::hash(&head[..20]);
    head[20..24].copy_from_slice(&crc.to_le_bytes());
    head
}

/// The epoch in a segment header, or `None` when the header is missing or damaged.
pub(super) fn parse_segment_header(bytes: &[u8]) -> Option<u64> {
    let head = bytes.get(..SEGMENT_HEADER as usize)?;
    let crc = u32::from_le_bytes(head[20..24].try_into().ok()?);
    let version = u32::from_le_bytes(head[8..12].try_into().ok()?);
    (&head[..8] == SEGMENT_MAGIC
        && version == SEGMENT_VERSION
        && crc32fast::hash(&head[..20]) == crc)
        .then(|| u64::from_le_bytes(head[12..20].try_into().expect("invariant: 8-byte slice")))
}

/// A good frame found by [`scan`].
#[derive(Debug)]
pub(super) struct Found {
    /// Byte offset of the frame in the segment.
    pub offset: u64,
    /// Total frame length.
    pub len: u64,
    /// The record inside.
    pub record: Record,
}

/// What a recovery scan of one segment found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Good frames with strictly rising seqs, in file order.
    pub frames: Vec<Found>,
    /// Some bytes were not part of a good frame.
    pub damaged: bool,
    /// Bytes after the last good frame were not a good frame (a torn or corrupt tail).
    pub bad_tail: bool,
}

/// Reads every good frame from `start` on, skipping damaged bytes up to the next good frame.
pub(super) fn scan(bytes: &[u8], start: usize) -> Scan {
    let mut out = Scan::default();
    let mut pos = start;
    let mut last_seq = None;
    while pos < bytes.len() {
        match decode_at(bytes, pos) {
            Ok((record, len)) if last_seq.is_none_or(|s| record.seq > s) => {
                last_seq = Some(record.seq);
                out.frames.push(Found {
                    offset: pos as u64,
                    len: len as u64,
                    record,
                });
                out.bad_tail = false;
                pos += len;
            }
            _ => {
                out.damaged = true;
                out.bad_tail = true;
                pos = next_marker(bytes, pos + 1);
            }
        }
    }
    out
}

fn next_marker(bytes: &[u8], from: usize) -> usize {
    bytes
        .get(from..)
        .and_then(|rest| rest.windows(2).position(|w| w == FRAME_MAGIC))
        .map_or(bytes.len(), |i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_shared::{NoteAction, NoteRecord, RecordBody};

    fn record(seq: u64) -> Record {
        Record {
            seq,
            ts: jiff::Timestamp::UNIX_EPOCH,
            body: RecordBody::Note(NoteRecord {
                check: None,
                by: "ann".into(),
                text: format!("note {seq}"),
                action: NoteAction::Note,
                until: None,
            }),
        }
    }

    #[test]
    fn frames_round_trip_and_resync_after_damage() {
        let mut bytes = segment_header(7).to_vec();
        let mut offsets = Vec::new();
        for seq in 1..=4 {
            offsets.push(bytes.len());
            bytes.extend(encode(&record(seq)).expect("encodes"));
        }
        assert_eq!(parse_segment_header(&bytes), Some(7));
        let clean = scan(&bytes, SEGMENT_HEADER as usize);
        assert_eq!(clean.frames.len(), 4);
        assert!(!clean.damaged && !clean.bad_tail);

        bytes[offsets[1] + 12] ^= 0x55; // damage frame 2's payload
        bytes.truncate(bytes.len() - 3); // tear frame 4
        let damaged = scan(&bytes, SEGMENT_HEADER as usize);
        let seqs: Vec<u64> = damaged.frames.iter().map(|f| f.record.seq).collect();
        assert_eq!(seqs, [1, 3]);
        assert!(damaged.damaged && damaged.bad_tail);
    }

    #[test]
    fn damaged_header_is_rejected() {
        let mut head = segment_header(9);
        head[13] ^= 1;
        assert_eq!(parse_segment_header(&head), None);
        assert_eq!(parse_segment_header(&head[..10]), None);
    }
}
