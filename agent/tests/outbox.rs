//! The durable outbox against real files: restarts, acks, damage, bounds and order.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use outpost_agent::outbox::{Outbox, OutboxLimits};
use outpost_shared::{
    CheckId, GapRecord, NoteAction, NoteRecord, Record, RecordBody, ResultRecord, Status,
};
use proptest::prelude::*;

const DAY: Duration = Duration::from_secs(86_400);

fn limits(max_size: u64, max_age: Duration) -> OutboxLimits {
    OutboxLimits { max_size, max_age }
}

fn roomy() -> OutboxLimits {
    limits(64 * 1024 * 1024, 30 * DAY)
}

fn t0() -> Timestamp {
    "2025-03-01T08:00:00Z".parse().expect("valid timestamp")
}

fn result(check: &str, n: u64) -> RecordBody {
    RecordBody::Result(ResultRecord {
        check: CheckId::new(check).expect("valid check id"),
        status: if n.is_multiple_of(7) {
            Status::Fail
        } else {
            Status::Ok
        },
        summary: format!("The router answered {n} pings with no loss."),
        metrics: BTreeMap::from([
            ("loss_pct".to_owned(), 0.0),
            ("rtt_ms".to_owned(), n as f64),
        ]),
        historical: false,
    })
}

fn note(n: u64) -> RecordBody {
    RecordBody::Note(NoteRecord {
        check: None,
        by: "Ann".into(),
        text: format!("note number {n}"),
        action: NoteAction::Note,
        until: None,
    })
}

fn gap(record: &Record) -> Option<&GapRecord> {
    match &record.body {
        RecordBody::Gap(g) => Some(g),
        _ => None,
    }
}

fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .expect("outbox dir lists")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .expect("outbox dir lists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create copy");
    for entry in fs::read_dir(from).expect("lists") {
        let entry = entry.expect("entry");
        // A file may vanish between listing and copying (compaction); that is fine.
        let _ = fs::copy(entry.path(), to.join(entry.file_name()));
    }
}

fn all_pending(outbox: &Outbox) -> Vec<Record> {
    outbox.pending(0, usize::MAX).expect("pending reads")
}

#[test]
fn append_and_reopen_keep_seq_epoch_and_records() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("outbox");
    let mut outbox = Outbox::open(&dir, roomy()).expect("opens");
    let epoch = outbox.epoch();
    assert!(
        (1..1 << 53).contains(&epoch),
        "epoch {epoch} fits a JavaScript number"
    );
    for n in 1..=5 {
        assert_eq!(
            outbox.append(t0(), result("router", n)).expect("appends"),
            n
        );
    }
    let before = all_pending(&outbox);
    drop(outbox);

    let mut outbox = Outbox::open(&dir, roomy()).expect("reopens");
    assert_eq!(outbox.epoch(), epoch);
    assert_eq!(all_pending(&outbox), before);
    assert_eq!(outbox.append(t0(), note(6)).expect("appends"), 6);
    assert_eq!(
        outbox
            .pending(4, 10)
            .expect("reads")
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>(),
        [5, 6]
    );
    assert_eq!(outbox.pending(0, 2).expect("reads").len(), 2);
}

#[test]
fn ack_frees_space_and_survives_reopen() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("outbox");
    let lim = limits(1024 * 1024, 30 * DAY); // 128 KiB segments
    let mut outbox = Outbox::open(&dir, lim).expect("opens");
    for n in 1..=2000 {
        outbox.append(t0(), result("router", n)).expect("appends");
    }
    let full = dir_size(&dir);
    assert!(segments(&dir).len() > 2);

    outbox
        .ack(outbox.epoch() + 1, 1990)
        .expect("foreign ack is ignored");
    assert_eq!(outbox.acked_seq(), 0);
    outbox.ack(outbox.epoch(), 1990).expect("acks");
    assert!(dir_size(&dir) < full / 2, "acked segments are deleted");
    assert_eq!(outbox.stats().pending, 10);
    drop(outbox);

    let mut outbox = Outbox::open(&dir, lim).expect("reopens");
    assert_eq!(outbox.acked_seq(), 1990);
    let seqs: Vec<u64> = all_pending(&outbox).iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1991..=2000).collect::<Vec<_>>());
    outbox.ack(outbox.epoch(), 2000).expect("acks all");
    assert!(segments(&dir).is_empty(), "nothing owed, nothing kept");
    let epoch = outbox.epoch();
    drop(outbox);

    let mut outbox = Outbox::open(&dir, lim).expect("reopens empty");
    assert_eq!(outbox.epoch(), epoch, "an empty buffer is not a lost one");
    assert_eq!(outbox.append(t0(), note(1)).expect("appends"), 2001);
    let stats = outbox.stats();
    assert_eq!(
        (stats.pending, stats.last_seq, stats.acked_seq),
        (1, 2001, 2000)
    );
}

#[test]
fn acks_are_saved_lazily_and_a_crash_only_resends() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("outbox");
    let mut outbox = Outbox::open(&dir, roomy()).expect("opens");
    for n in 1..=10 {
        outbox.append(t0(), result("router", n)).expect("appends");
    }
    // Opening saved the metadata a moment ago: this ack waits (META_EVERY) in memory.
    outbox.ack(outbox.epoch(), 8).expect("acks");
    assert_eq!(outbox.acked_seq(), 8);
    // A power cut now: the folder as it is on disk.
    let crashed = tmp.path().join("crashed");
    copy_dir(&dir, &crashed);
    let after_crash = Outbox::open(&crashed, roomy()).expect("opens");
    let on_disk = after_crash.acked_seq();
    assert!(on_disk < 8, "the held-back ack is not on disk");
    let seqs: Vec<u64> = all_pending(&after_crash).iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (on_disk + 1..=10).collect::<Vec<_>>(),
        "resent, nothing lost"
    );
    // A clean stop saves it.
    drop(outbox);
    let reopened = Outbox::open(&dir, roomy()).expect("reopens");
    assert_eq!(reopened.acked_seq(), 8);
    assert_eq!(all_pending(&reopened).len(), 2);
}

#[test]
fn wiping_the_folder_starts_a_new_epoch() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("outbox");
    let mut outbox = Outbox::open(&dir, roomy()).expect("opens");
    outbox.append(t0(), note(1)).expect("appends");
    let epoch = outbox.epoch();
    drop(outbox);
    fs::remove_dir_all(&dir).expect("wipe");
    let mut outbox = Outbox::open(&dir, roomy()).expect("reopens");
    assert_ne!(outbox.epoch(), epoch);
    assert_eq!(outbox.append(t0(), note(1)).expect("appends"), 1);
}

#[test]
fn lost_metadata_is_recovered_from_the_segments() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("outbox");
    let mut outbox = Outbox::open(&dir, roomy()).expect("opens");
    for n in 1..=3 {
        outbox.append(t0(), note(n)).expect("appends");
    }
    let (epoch, before) = (outbox.epoch(), all_pending(&outbox));
    drop(outbox);
    fs::write(dir.join("meta.json"), b"garbage").expect("damage metadata");
    let mut outbox = Outbox::open(&dir, roomy()).expect("reopens");
    assert_eq!(outbox.epoch(), epoch);
    assert_eq!(all_pending(&outbox), before);
    assert_eq!(outbox.append(t0(), note(4)).expect("appends"), 4);
}

/// Writes `n` records and returns the outbox folder plus the last segment's size before the
/// last append.
fn written(n: u64) -> (tempfile::TempDir, PathBuf, u64) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("outbox");
    let mut outbox = Outbox::open(&dir, roomy()).expect("opens");
    let mut before = 0;
    for i in 1..=n {
        before = segments(&dir)
            .last()
            .map_or(0, |p| fs::metadata(p).expect("meta").len());
        outbox.append(t0(), result("router", i)).expect("appends");
    }
    (tmp, dir, before)
}

#[test]
fn torn_tail_at_every_offset_loses_only_the_torn_frame() {
    let (tmp, dir, frame_start) = written(6);
    let seg = segments(&dir).pop().expect("a segment");
    let full = fs::metadata(&seg).expect("meta").len();
    let pristine = tmp.path().join("pristine");
    copy_dir(&dir, &pristine);
    let originals = all_pending(&Outbox::open(&pristine, roomy()).expect("opens"));
    for cut in frame_start..full {
        let copy = tmp.path().join(format!("cut-{cut}"));
        copy_dir(&dir, &copy);
        let last = segments(&copy).pop().expect("a segment");
        fs::OpenOptions::new()
            .write(true)
            .open(&last)
            .expect("opens")
            .set_len(cut)
            .expect("truncates");

        let mut outbox = Outbox::open(&copy, roomy()).expect("a torn tail never stops the outbox");
        let got = all_pending(&outbox);
        assert_eq!(got[..5], originals[..5], "cut at {cut}");
        if cut == frame_start {
            assert_eq!(got.len(), 5, "a frame not begun is not a loss");
            assert_eq!(outbox.append(t0(), note(0)).expect("appends"), 6);
        } else {
            let g = gap(&got[5]).expect("a gap follows");
            assert_eq!(
                (g.from_seq, g.to_seq, g.dropped, g.reason.as_str()),
                (6, 6, 1, "corrupt"),
                "cut at {cut}"
            );
            assert_eq!(got[5].seq, 7);
            assert_eq!(outbox.append(t0(), note(0)).expect("appends"), 8);
            drop(outbox);
            let again = all_pending(&Outbox::open(&copy, roomy()).expect("reopens"));
            assert_eq!(again.len(), 7, "the gap is reported once");
        }
    }
}

#[test]
fn flipped_bytes_lose_only_the_damaged_record() {
    let (_tmp, dir, _) = written(9);
    let originals = all_pending(&Outbox::open(&dir, roomy()).expect("opens"));
    let seg = segments(&dir).pop().expect("a segment");
    let mut bytes = fs::read(&seg).expect("reads");
    let needle = b"answered 5 pings";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("record 5 is there");
    bytes[at + 3] ^= 0x20;
    fs::write(&seg, &bytes).expect("writes");

    let mut outbox = Outbox::open(&dir, roomy()).expect("opens");
    let got = all_pending(&outbox);
    let kept: Vec<&Record> = got.iter().filter(|r| gap(r).is_none()).collect();
    let want: Vec<&Record> = originals.iter().filter(|r| r.seq != 5).collect();
    assert_eq!(kept, want);
    let gaps: Vec<&GapRecord> = got.iter().filter_map(gap).collect();
    assert_eq!(gaps.len(), 1);
    assert_eq!(
        (
            gaps[0].from_seq,
            gaps[0].to_seq,
            gaps[0].dropped,
            gaps[0].reason.as_str()
        ),
        (5, 5, 1, "corrupt")
    );
    assert_eq!(outbox.append(t0(), note(0)).expect("appends"), 11);
}

#[test]
fn snapshots_taken_while_appending_keep_every_acknowledged_append() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("outbox");
    let lim = limits(1024 * 1024, 30 * DAY);
    let mut outbox = Outbox::open(&dir, lim).expect("opens");
    let done = Arc::new(AtomicU64::new(0));
    let writer = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            for n in 1..=1500 {
                let seq = outbox.append(t0(), result("router", n)).expect("appends");
                done.store(seq, Ordering::SeqCst);
            }
        })
    };
    let mut snapshot = 0;
    while !writer.is_finished() {
        let ok = done.load(Ordering::SeqCst);
        snapshot += 1;
        let copy = tmp.path().join(format!("snap-{snapshot}"));
        copy_dir(&dir, &copy);
        let got = all_pending(&Outbox::open(&copy, lim).expect("a snapshot always opens"));
        let seqs: Vec<u64> = got
            .iter()
            .filter(|r| gap(r).is_none())
            .map(|r| r.seq)
            .collect();
        assert!(
            seqs.len() as u64 >= ok,
            "snapshot {snapshot}: {ok} appends returned Ok"
        );
        assert_eq!(seqs[..ok as usize], (1..=ok).collect::<Vec<_>>());
        for g in got.iter().filter_map(gap) {
            assert_eq!(g.reason, "corrupt");
            assert!(g.from_seq > ok);
        }
        fs::remove_dir_all(&copy).expect("cleanup");
    }
    writer.join().expect("writer finishes");
    assert!(snapshot > 1);
}

/// Checks that pending records and pending gaps partition 1..=last exactly.
fn assert_partition(records: &[Record], last: u64) -> BTreeSet<u64> {
    let mut seen = BTreeSet::new();
    for r in records {
        assert!(seen.insert(r.seq), "seq {} twice", r.seq);
        if let Some(g) = gap(r) {
            assert_eq!(g.dropped, g.to_seq - g.from_seq + 1);
            for s in g.from_seq..=g.to_seq {
                assert!(
                    seen.insert(s),
                    "seq {s} both dropped and present or dropped twice"
                );
            }
        }
    }
    assert_eq!(seen, (1..=last).collect::<BTreeSet<u64>>());
    seen
}

#[test]
fn size_bound_holds_keeps_newest_per_check_and_counts_gaps() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("outbox");
    let lim = limits(64 * 1024, 30 * DAY);
    let mut outbox = Outbox::open(&dir, lim).expect("opens");
    let rare = outbox.append(t0(), result("backup", 1)).expect("appends");
    let checks = ["router", "disk", "web", "cage"];
    let mut newest = BTreeMap::new();
    for n in 1..=3000_u64 {
        let check = checks[(n % 4) as usize];
        let seq = outbox.append(t0(), result(check, n)).expect("appends");
        newest.insert(check, seq);
        assert!(
            dir_size(&dir) <= lim.max_size,
            "disk use {} after {n}",
            dir_size(&dir)
        );
        if n.is_multiple_of(500) {
            outbox.append(t0(), note(n)).expect("appends a note");
        }
    }
    let check_all = |outbox: &Outbox| {
        let got = all_pending(outbox);
        let last = outbox.stats().last_seq;
        assert_partition(&got, last);
        let seqs: BTreeSet<u64> = got.iter().map(|r| r.seq).collect();
        assert!(seqs.contains(&rare), "the only backup result is kept");
        for seq in newest.values() {
            assert!(seqs.contains(seq), "newest result {seq} is kept");
        }
        let gaps: Vec<&GapRecord> = got.iter().filter_map(gap).collect();
        assert!(!gaps.is_empty());
        assert!(gaps.iter().all(|g| g.reason == "size"));
        got
    };
    let before = check_all(&outbox);
    assert!(outbox.stats().dropped_total > 2000);
    drop(outbox);
    let outbox = Outbox::open(&dir, lim).expect("reopens");
    assert_eq!(check_all(&outbox), before, "reopen gives the same buffer");
}

#[test]
fn age_bound_drops_old_records_with_injected_time() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("outbox");
    let max_age = Duration::from_secs(3600);
    let mut outbox = Outbox::open(&dir, limits(16 * 1024 * 1024, max_age)).expect("opens");
    let rare = outbox.append(t0(), result("backup", 0)).expect("appends");
    let mut now = t0();
    for n in 1..=600 {
        now = t0() + SignedDuration::from_secs(60 * n);
        outbox
            .append(now, result("router", n as u64))
            .expect("appends");
        let oldest = outbox
            .pending(0, usize::MAX)
            .expect("reads")
            .into_iter()
            .filter(|r| r.seq != rare)
            .map(|r| r.ts)
            .min()
            .expect("something pending");
        assert!(
            oldest >= now - SignedDuration::from_secs(3600),
            "at {n}: {oldest}"
        );
    }
    let got = all_pending(&outbox);
    assert_partition(&got, outbox.stats().last_seq);
    assert_eq!(
        got[0].seq, rare,
        "the newest backup result outlives max_age"
    );
    assert!(got.iter().filter_map(gap).all(|g| g.reason == "age"));
    assert!(
        got.len() < 100,
        "old records were dropped: {:?}",
        got.iter()
            .map(|r| (r.seq, gap(r).map(|g| (g.from_seq, g.to_seq))))
            .collect::<Vec<_>>()
    );
    assert!(outbox.stats().oldest_pending <= Some(now));
}

#[derive(Debug, Clone)]
enum Op {
    Append { check: u8, long: bool },
    Ack { fraction: u8 },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3u8, any::<bool>()).prop_map(|(check, long)| Op::Append { check, long }),
        2 => (0..=100u8).prop_map(|fraction| Op::Ack { fraction }),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn pending_comes_back_in_write_order_across_acks_and_reopens(ops in prop::collection::vec(op(), 1..40)) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("outbox");
        let mut outbox = Outbox::open(&dir, roomy()).expect("opens");
        let mut model: Vec<Record> = Vec::new();
        let mut last = 0;
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Append { check, long } => {
                    let mut body = result(["router", "disk", "web"][check as usize], i as u64);
                    if let (true, RecordBody::Result(r)) = (long, &mut body) {
                        r.summary = "x".repeat(3000);
                    }
                    let seq = outbox.append(t0(), body.clone()).expect("appends");
                    prop_assert_eq!(seq, last + 1);
                    last = seq;
                    model.push(Record { seq, ts: t0(), body });
                }
                Op::Ack { fraction } => {
                    let upto = model.len() * usize::from(fraction) / 100;
                    if upto > 0 {
                        let seq = model[upto - 1].seq;
                        outbox.ack(outbox.epoch(), seq).expect("acks");
                        model.drain(..upto);
                    }
                }
                Op::Reopen => {
                    drop(outbox);
                    outbox = Outbox::open(&dir, roomy()).expect("reopens");
                }
            }
            let got = all_pending(&outbox);
            prop_assert_eq!(&got, &model);
            if let Some(mid) = model.get(model.len() / 2) {
                let tail = outbox.pending(mid.seq, 3).expect("reads");
                let want: Vec<Record> = model.iter().filter(|r| r.seq > mid.seq).take(3).cloned().collect();
                prop_assert_eq!(tail, want);
            }
        }
    }
}
