//! The write path, shared by both backends: idempotent inserts keyed on
//! `(site, agent, epoch, seq)`, the ack watermark kept in the same transaction, births,
//! presence and retention.

use std::{
    collections::{HashMap, HashSet, hash_map::Entry},
    sync::OnceLock,
};

use outpost_shared::{
    AgentId, Batch, Birth, CheckId, PresenceState, Record, RecordBody, ResultRecord, SiteId,
    Timestamp,
};

use super::{
    BatchWrite, InboxBatch, StoreError, Watermark,
    backend::{Param, Row, Sql, Watermarks},
};

/// Microseconds since the Unix epoch, as stored.
pub fn micros(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

/// A u64 stored bit-for-bit in a BIGINT.
pub fn to_db(v: u64) -> Param<'static> {
    Param::from(v as i64)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Stores batches, updating `marks` (a tentative copy: the caller keeps it only on commit).
///
/// The work is done per agent epoch, not per batch: the batches of one epoch in a write are
/// one run of records in seq order (one watermark lookup, multi-row inserts as long as the
/// run), and `latest_results`, `watermarks` and `agents.last_seen_us` are upserted once per
/// row for the whole write. With one record per message (a live fleet), that is a handful
/// of statements per transaction instead of four per record.
///
/// `writer` names this collector in the watermark rows, so another one sharing the store can
/// tell whether its cached watermarks are still the whole truth ([`super::shared`]).
pub fn batches(
    sql: &mut dyn Sql,
    marks: &mut Watermarks,
    batches: &[Batch],
    received: Timestamp,
    writer: &str,
) -> Result<Vec<BatchWrite>, StoreError> {
    let now = micros(received);
    let mut out: Vec<BatchWrite> = batches
        .iter()
        .map(|b| BatchWrite {
            site: b.site.clone(),
            agent: b.agent.clone(),
            epoch: b.epoch,
            new: Vec::new(),
            duplicates: 0,
            watermark: 0,
        })
        .collect();
    let mut latest = Latest::default();
    let mut watermarks = Vec::new();
    for group in epochs(batches) {
        let head = &batches[group[0]];
        let key = (head.site.clone(), head.agent.clone(), head.epoch);
        let mut mark = match marks.remove(&key) {
            Some(mark) => mark,
            None => load_watermark(sql, batches, &group)?,
        };
        // What the agent holds as acknowledged it will never send again (a restored store).
        for acked in group.iter().filter_map(|&i| batches[i].acked) {
            mark.cover(1, acked);
        }
        // The epoch's records by seq; a seq sent twice belongs to the batch that came first.
        let mut records: Vec<(usize, &Record)> = group
            .iter()
            .flat_map(|&i| batches[i].records.iter().map(move |r| (i, r)))
            .collect();
        records.sort_by_key(|&(i, r)| (r.seq, i));
        // Results (nearly all records) go in multi-row statements; notes and gaps one by one.
        let inserted = insert_results(sql, head, &records, now)?;
        let mut previous = None;
        for (i, record) in records {
            let first = previous != Some(record.seq);
            previous = Some(record.seq);
            let is_new = first
                && match &record.body {
                    RecordBody::Result(_) => inserted.binary_search(&record.seq).is_ok(),
                    RecordBody::Note(_) | RecordBody::Gap(_) => insert_other(sql, head, record)?,
                };
            if is_new {
                if let RecordBody::Result(r) = &record.body {
                    latest.offer(i, head, record, r);
                }
                out[i].new.push(record.clone());
            } else {
                out[i].duplicates += 1;
            }
            mark.cover(record.seq, record.seq);
            if let RecordBody::Gap(gap) = &record.body {
                mark.cover(gap.from_seq, gap.to_seq);
            }
        }
        for &i in &group {
            out[i].watermark = mark.seq();
        }
        watermarks.push((head, mark.seq()));
        marks.insert(key, mark);
    }
    latest.upsert(sql)?;
    upsert_watermarks(sql, &watermarks, writer)?;
    touch_agents(sql, batches, now)?;
    Ok(out)
}

/// The indexes of `batches` grouped by agent epoch, groups in order of first appearance and
/// each group in arrival order.
fn epochs(batches: &[Batch]) -> Vec<Vec<usize>> {
    let mut index: HashMap<(&SiteId, &AgentId, u64), usize> = HashMap::with_capacity(batches.len());
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        let group = *index
            .entry((&b.site, &b.agent, b.epoch))
            .or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
        groups[group].push(i);
    }
    groups
}

/// The watermark of an epoch as persisted, with what is stored above it. For an epoch never
/// seen, it starts at the watermark the agent says it holds (`acked`); from an agent too old
/// to say, just below the lowest seq (or gap start) it sent, because the agent may have had
/// earlier records acknowledged by another store (or a wiped one).
fn load_watermark(
    sql: &mut dyn Sql,
    batches: &[Batch],
    group: &[usize],
) -> Result<Watermark, StoreError> {
    let head = &batches[group[0]];
    let key = [
        Param::from(head.site.as_str()),
        Param::from(head.agent.as_str()),
        to_db(head.epoch),
    ];
    let rows = sql.query(
        "SELECT seq FROM watermarks WHERE site = $1 AND agent = $2 AND epoch = $3",
        &key,
    )?;
    let Some(row) = rows.first() else {
        if let Some(acked) = group.iter().find_map(|&i| batches[i].acked) {
            return Ok(Watermark::at(acked));
        }
        let lowest = group
            .iter()
            .flat_map(|&i| &batches[i].records)
            .map(|r| match &r.body {
                RecordBody::Gap(g) => g.from_seq.min(r.seq),
                _ => r.seq,
            })
            .min()
            .unwrap_or(1);
        return Ok(Watermark::at(lowest.saturating_sub(1)));
    };
    let base = row.int(0)? as u64;
    let mut mark = Watermark::at(base);
    let mut params = key.to_vec();
    params.push(to_db(base));
    let stored = sql.query(
        "SELECT seq FROM results WHERE site = $1 AND agent = $2 AND epoch = $3 AND seq > $4
         UNION SELECT seq FROM notes WHERE site = $1 AND agent = $2 AND epoch = $3 AND seq > $4
         UNION SELECT seq FROM gaps WHERE site = $1 AND agent = $2 AND epoch = $3 AND seq > $4",
        &params,
    )?;
    for row in stored {
        let seq = row.int(0)? as u64;
        mark.cover(seq, seq);
    }
    let gaps = sql.query(
        "SELECT from_seq, to_seq FROM gaps
         WHERE site = $1 AND agent = $2 AND epoch = $3 AND to_seq > $4",
        &params,
    )?;
    for row in gaps {
        mark.cover(row.int(0)? as u64, row.int(1)? as u64);
    }
    Ok(mark)
}

/// Queues what the engine needs of the new records (results and notes) for the collector
/// that decides, in the transaction that stored them.
pub fn forward(
    sql: &mut dyn Sql,
    written: &[BatchWrite],
    received: Timestamp,
) -> Result<(), StoreError> {
    for w in written {
        let records: Vec<&Record> = w
            .new
            .iter()
            .filter(|r| !matches!(r.body, RecordBody::Gap(_)))
            .collect();
        let Some(first) = records.first() else {
            continue;
        };
        sql.execute(
            "INSERT INTO engine_inbox (site, agent, epoch, first_seq, received_us, records)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                Param::from(w.site.as_str()),
                Param::from(w.agent.as_str()),
                to_db(w.epoch),
                to_db(first.seq),
                Param::from(micros(received)),
                Param::from(json(&records)?),
            ],
        )?;
    }
    Ok(())
}

/// Removes and returns up to `limit` queued batches, oldest received first, then sorted by
/// agent and seq. A row that does not decode is dropped with a warning, not retried forever.
pub fn take_inbox(sql: &mut dyn Sql, limit: usize) -> Result<Vec<InboxBatch>, StoreError> {
    let rows = sql.query(
        "DELETE FROM engine_inbox WHERE (site, agent, epoch, first_seq) IN (
             SELECT site, agent, epoch, first_seq FROM engine_inbox
             ORDER BY received_us LIMIT $1)
         RETURNING site, agent, epoch, first_seq, received_us, records",
        &[Param::from(i64::try_from(limit).unwrap_or(i64::MAX))],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (site, agent) = (row.text(0)?, row.text(1)?);
        let decoded = (|| {
            Some(InboxBatch {
                site: SiteId::new(site.as_str()).ok()?,
                agent: AgentId::new(agent.as_str()).ok()?,
                epoch: row.int(2).ok()? as u64,
                received: Timestamp::from_microsecond(row.int(4).ok()?).ok()?,
                records: serde_json::from_str(&row.text(5).ok()?).ok()?,
            })
        })();
        match decoded {
            Some(batch) => out.push(batch),
            None => {
                tracing::warn!(%site, %agent, "dropping an engine inbox row that does not decode");
            }
        }
    }
    out.sort_by(|a, b| {
        let first = |x: &InboxBatch| x.records.first().map_or(0, |r| r.seq);
        (&a.site, &a.agent, a.epoch, first(a)).cmp(&(&b.site, &b.agent, b.epoch, first(b)))
    });
    Ok(out)
}

/// Rows per multi-row statement: a run of rows is cut into chunks of these sizes, largest
/// first, so each table needs only a handful of distinct (prepared) statements.
const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// A multi-row `INSERT`: `head VALUES ($1, ..), (..), .. tail`, its text built once per
/// chunk size.
struct MultiRow {
    head: &'static str,
    columns: usize,
    tail: &'static str,
    texts: OnceLock<Vec<String>>,
}

impl MultiRow {
    const fn new(head: &'static str, columns: usize, tail: &'static str) -> Self {
        Self {
            head,
            columns,
            tail,
            texts: OnceLock::new(),
        }
    }

    /// The statement for `rows` rows (one of [`CHUNKS`]).
    fn text(&self, rows: usize) -> &str {
        let texts = self
            .texts
            .get_or_init(|| CHUNKS.iter().map(|&n| self.build(n)).collect());
        let at = CHUNKS
            .iter()
            .position(|&c| c == rows)
            .unwrap_or_else(|| unreachable!("chunked() only yields sizes from CHUNKS, not {rows}"));
        &texts[at]
    }

    fn build(&self, rows: usize) -> String {
        use std::fmt::Write as _;
        let columns = self.columns;
        let mut text =
            String::with_capacity(self.head.len() + self.tail.len() + rows * columns * 6 + 16);
        text.push_str(self.head);
        text.push_str(" VALUES ");
        for row in 0..rows {
            text.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..columns {
                let sep = if column == 0 { "" } else { ", " };
                let _ = write!(text, "{sep}${}", row * columns + column + 1);
            }
            text.push(')');
        }
        text.push(' ');
        text.push_str(self.tail);
        text
    }

    /// Runs the statement over `rows`, [`CHUNKS`] at a time, `params` giving each row's
    /// columns; `each` sees every returned row.
    fn run<'r, T>(
        &self,
        sql: &mut dyn Sql,
        rows: &'r [T],
        mut params: impl FnMut(&'r T, &mut Vec<Param<'r>>) -> Result<(), StoreError>,
        mut each: impl FnMut(&Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut values = Vec::with_capacity(CHUNKS[0] * self.columns);
        for chunk in chunked(rows) {
            values.clear();
            for row in chunk {
                params(row, &mut values)?;
            }
            debug_assert_eq!(values.len(), chunk.len() * self.columns, "{}", self.head);
            for row in sql.query(self.text(chunk.len()), &values)? {
                each(&row)?;
            }
        }
        Ok(())
    }
}

/// Splits `rows` into [`CHUNKS`]-sized runs, largest first.
fn chunked<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = CHUNKS.into_iter().find(|&c| c <= rows.len())?;
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

/// The key and time parameters every record row starts with.
fn record_key<'a>(batch: &'a Batch, record: &Record) -> [Param<'a>; 5] {
    [
        Param::from(batch.site.as_str()),
        Param::from(batch.agent.as_str()),
        to_db(batch.epoch),
        to_db(record.seq),
        Param::from(micros(record.ts)),
    ]
}

/// The ten columns a result has in both `results` and `latest_results`.
fn result_params<'a>(
    batch: &'a Batch,
    record: &Record,
    r: &'a ResultRecord,
) -> Result<[Param<'a>; 10], StoreError> {
    let [site, agent, epoch, seq, ts] = record_key(batch, record);
    Ok([
        site,
        agent,
        epoch,
        seq,
        ts,
        Param::from(r.check.as_str()),
        Param::from(r.status.as_str()),
        Param::from(r.summary.as_str()),
        Param::from(json(&r.metrics)?),
        Param::from(r.historical),
    ])
}

static RESULTS: MultiRow = MultiRow::new(
    "INSERT INTO results (site, agent, epoch, seq, ts_us, check_id, status, summary, metrics,
         historical, received_us)",
    11,
    "ON CONFLICT DO NOTHING RETURNING seq",
);

/// Inserts the result records among `records` (one epoch of `batch`'s agent, by seq) whose
/// key is not stored yet; returns the seqs that were inserted, in order.
fn insert_results(
    sql: &mut dyn Sql,
    batch: &Batch,
    records: &[(usize, &Record)],
    now: i64,
) -> Result<Vec<u64>, StoreError> {
    let mut results: Vec<(&Record, &ResultRecord)> = records
        .iter()
        .filter_map(|&(_, r)| match &r.body {
            RecordBody::Result(result) => Some((r, result)),
            RecordBody::Note(_) | RecordBody::Gap(_) => None,
        })
        .collect();
    results.dedup_by_key(|(r, _)| r.seq);
    let mut inserted = Vec::with_capacity(results.len());
    RESULTS.run(
        sql,
        &results,
        |(record, r), values| {
            values.extend(result_params(batch, record, r)?);
            values.push(Param::from(now));
            Ok(())
        },
        |row| {
            inserted.push(row.int(0)? as u64);
            Ok(())
        },
    )?;
    inserted.sort_unstable();
    Ok(inserted)
}

static LATEST: MultiRow = MultiRow::new(
    "INSERT INTO latest_results (site, agent, epoch, seq, ts_us, check_id, status, summary,
         metrics, historical)",
    10,
    "ON CONFLICT (site, agent, check_id) DO UPDATE SET epoch = excluded.epoch,
         seq = excluded.seq, ts_us = excluded.ts_us, status = excluded.status,
         summary = excluded.summary, metrics = excluded.metrics,
         historical = excluded.historical
     WHERE excluded.ts_us >= latest_results.ts_us",
);

/// The newest new result of each (site, agent, check) in one write. One row per check, so
/// one statement never touches a row twice (PostgreSQL refuses that).
#[derive(Default)]
struct Latest<'a> {
    newest: HashMap<(&'a SiteId, &'a AgentId, &'a CheckId), LatestRow<'a>>,
}

/// A candidate for `latest_results`: the result, its batch (for the key) and the batch's
/// place in the write (a later batch wins a tie on time).
struct LatestRow<'a> {
    order: usize,
    batch: &'a Batch,
    record: &'a Record,
    result: &'a ResultRecord,
}

impl<'a> Latest<'a> {
    fn offer(&mut self, order: usize, batch: &'a Batch, record: &'a Record, r: &'a ResultRecord) {
        let row = LatestRow {
            order,
            batch,
            record,
            result: r,
        };
        let rank = |row: &LatestRow| (row.record.ts, row.order, row.record.seq);
        match self.newest.entry((&batch.site, &batch.agent, &r.check)) {
            Entry::Vacant(slot) => {
                slot.insert(row);
            }
            Entry::Occupied(mut slot) => {
                if rank(&row) >= rank(slot.get()) {
                    slot.insert(row);
                }
            }
        }
    }

    /// Moves `latest_results` to these rows, unless a newer result is stored.
    fn upsert(self, sql: &mut dyn Sql) -> Result<(), StoreError> {
        let rows: Vec<LatestRow> = self.newest.into_values().collect();
        LATEST.run(
            sql,
            &rows,
            |row, values| {
                values.extend(result_params(row.batch, row.record, row.result)?);
                Ok(())
            },
            |_| Ok(()),
        )
    }
}

static WATERMARKS: MultiRow = MultiRow::new(
    "INSERT INTO watermarks (site, agent, epoch, seq, writer)",
    5,
    "ON CONFLICT (site, agent, epoch) DO UPDATE SET writer = excluded.writer, seq = CASE
         WHEN excluded.seq > watermarks.seq THEN excluded.seq ELSE watermarks.seq END",
);

/// Persists each epoch's watermark (one row per epoch), never moving one back.
fn upsert_watermarks(
    sql: &mut dyn Sql,
    marks: &[(&Batch, u64)],
    writer: &str,
) -> Result<(), StoreError> {
    WATERMARKS.run(
        sql,
        marks,
        |(batch, seq), values| {
            values.extend([
                Param::from(batch.site.as_str()),
                Param::from(batch.agent.as_str()),
                to_db(batch.epoch),
                to_db(*seq),
                Param::from(writer),
            ]);
            Ok(())
        },
        |_| Ok(()),
    )
}

static LAST_SEEN: MultiRow = MultiRow::new(
    "INSERT INTO agents (site, agent, last_seen_us)",
    3,
    "ON CONFLICT (site, agent) DO UPDATE SET last_seen_us = excluded.last_seen_us",
);

/// Marks every agent of `batches` as heard from at `now` (one row per agent).
fn touch_agents(sql: &mut dyn Sql, batches: &[Batch], now: i64) -> Result<(), StoreError> {
    let mut seen = HashSet::with_capacity(batches.len());
    let agents: Vec<&Batch> = batches
        .iter()
        .filter(|b| seen.insert((&b.site, &b.agent)))
        .collect();
    LAST_SEEN.run(
        sql,
        &agents,
        |batch, values| {
            values.extend([
                Param::from(batch.site.as_str()),
                Param::from(batch.agent.as_str()),
                Param::from(now),
            ]);
            Ok(())
        },
        |_| Ok(()),
    )
}

/// Inserts one note or gap record unless its key is stored; returns whether it was new.
fn insert_other(sql: &mut dyn Sql, batch: &Batch, record: &Record) -> Result<bool, StoreError> {
    let mut params = record_key(batch, record).to_vec();
    let changed = match &record.body {
        RecordBody::Result(_) => {
            return Err(StoreError::Corrupt(
                "a result record reached the note/gap insert".into(),
            ));
        }
        RecordBody::Note(n) => {
            params.extend([
                Param::from(n.check.as_ref().map(CheckId::as_str)),
                Param::from(n.by.as_str()),
                Param::from(n.text.as_str()),
                Param::from(n.action.as_str()),
                Param::Int(n.until.map(micros)),
            ]);
            sql.execute(
                "INSERT INTO notes (site, agent, epoch, seq, ts_us, check_id, by_name, body,
                     action, until_us)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                &params,
            )?
        }
        RecordBody::Gap(g) => {
            params.extend([
                to_db(g.from_seq),
                to_db(g.to_seq),
                to_db(g.dropped),
                Param::from(g.reason.as_str()),
            ]);
            sql.execute(
                "INSERT INTO gaps (site, agent, epoch, seq, ts_us, from_seq, to_seq, dropped,
                     reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                &params,
            )?
        }
    };
    Ok(changed > 0)
}

/// Upserts an agent's birth.
pub fn birth(sql: &mut dyn Sql, birth: &Birth, at: Timestamp) -> Result<(), StoreError> {
    sql.execute(
        "INSERT INTO agents (site, agent, version, epoch, host, checks, boot_time_us, started_us,
             birth_us, last_seen_us)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
         ON CONFLICT (site, agent) DO UPDATE SET version = excluded.version,
             epoch = excluded.epoch, host = excluded.host, checks = excluded.checks,
             boot_time_us = excluded.boot_time_us, started_us = excluded.started_us,
             birth_us = excluded.birth_us, last_seen_us = excluded.last_seen_us",
        &[
            Param::from(birth.site.as_str()),
            Param::from(birth.agent.as_str()),
            Param::from(birth.version.as_str()),
            to_db(birth.epoch),
            Param::from(json(&birth.host)?),
            Param::from(json(&birth.checks)?),
            Param::from(micros(birth.boot_time)),
            Param::from(micros(birth.started_at)),
            Param::from(micros(at)),
        ],
    )?;
    Ok(())
}

/// Upserts an agent's presence.
pub fn presence(
    sql: &mut dyn Sql,
    site: &SiteId,
    agent: &AgentId,
    state: PresenceState,
    at: Timestamp,
) -> Result<(), StoreError> {
    sql.execute(
        "INSERT INTO agents (site, agent, online, last_seen_us) VALUES ($1, $2, $3, $4)
         ON CONFLICT (site, agent) DO UPDATE SET online = excluded.online,
             last_seen_us = excluded.last_seen_us",
        &[
            Param::from(site.as_str()),
            Param::from(agent.as_str()),
            Param::from(state == PresenceState::Online),
            Param::from(micros(at)),
        ],
    )?;
    Ok(())
}

/// Folds results older than `cutoff` into `results_hourly`, then deletes them.
pub fn prune(sql: &mut dyn Sql, cutoff: Timestamp) -> Result<u64, StoreError> {
    let cutoff = [Param::from(micros(cutoff))];
    sql.execute(
        "INSERT INTO results_hourly (site, agent, check_id, hour_us, count_ok, count_warn,
             count_fail, count_unknown)
         SELECT site, agent, check_id, (ts_us / 3600000000) * 3600000000,
             SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END),
             SUM(CASE WHEN status = 'warn' THEN 1 ELSE 0 END),
             SUM(CASE WHEN status = 'fail' THEN 1 ELSE 0 END),
             SUM(CASE WHEN status = 'unknown' THEN 1 ELSE 0 END)
         FROM results WHERE ts_us < $1
         GROUP BY site, agent, check_id, (ts_us / 3600000000) * 3600000000
         ON CONFLICT (site, agent, check_id, hour_us) DO UPDATE SET
             count_ok = results_hourly.count_ok + excluded.count_ok,
             count_warn = results_hourly.count_warn + excluded.count_warn,
             count_fail = results_hourly.count_fail + excluded.count_fail,
             count_unknown = results_hourly.count_unknown + excluded.count_unknown",
        &cutoff,
    )?;
    sql.execute("DELETE FROM results WHERE ts_us < $1", &cutoff)
}
