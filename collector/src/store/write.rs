//! The write path, shared by both backends: idempotent inserts keyed on
//! `(site, agent, epoch, seq)`, the ack watermark kept in the same transaction, births,
//! presence and retention.

use std::collections::{HashMap, HashSet};

use outpost_shared::{
    AgentId, Batch, Birth, CheckId, PresenceState, Record, RecordBody, ResultRecord, SiteId,
    Timestamp,
};

use super::{
    BatchWrite, InboxBatch, StoreError, Watermark,
    backend::{Param, Sql, Watermarks},
};

/// Microseconds since the Unix epoch, as stored.
pub fn micros(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

/// A u64 stored bit-for-bit in a BIGINT.
pub fn to_db(v: u64) -> Param {
    Param::from(v as i64)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Stores batches, updating `marks` (a tentative copy: the caller keeps it only on commit).
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
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let key = (batch.site.clone(), batch.agent.clone(), batch.epoch);
        let mut mark = match marks.remove(&key) {
            Some(mark) => mark,
            None => load_watermark(sql, batch)?,
        };
        // What the agent holds as acknowledged it will never send again (a restored store).
        if let Some(acked) = batch.acked {
            mark.cover(1, acked);
        }
        let mut records: Vec<&Record> = batch.records.iter().collect();
        records.sort_by_key(|r| r.seq);
        // Results (nearly all records) go in multi-row statements; notes and gaps one by one.
        let mut inserted = insert_results(sql, batch, &records, now)?;
        let mut new = Vec::new();
        let mut duplicates = 0;
        for record in records {
            let is_new = match &record.body {
                RecordBody::Result(_) => inserted.remove(&record.seq),
                RecordBody::Note(_) | RecordBody::Gap(_) => insert_other(sql, batch, record)?,
            };
            if is_new {
                new.push(record.clone());
            } else {
                duplicates += 1;
            }
            mark.cover(record.seq, record.seq);
            if let RecordBody::Gap(gap) = &record.body {
                mark.cover(gap.from_seq, gap.to_seq);
            }
        }
        upsert_latest(sql, batch, &new)?;
        let id = [
            Param::from(batch.site.as_str()),
            Param::from(batch.agent.as_str()),
        ];
        sql.execute(
            "INSERT INTO watermarks (site, agent, epoch, seq, writer) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (site, agent, epoch) DO UPDATE SET writer = excluded.writer, seq = CASE
                 WHEN excluded.seq > watermarks.seq THEN excluded.seq ELSE watermarks.seq END",
            &[
                id[0].clone(),
                id[1].clone(),
                to_db(batch.epoch),
                to_db(mark.seq()),
                Param::from(writer),
            ],
        )?;
        sql.execute(
            "INSERT INTO agents (site, agent, last_seen_us) VALUES ($1, $2, $3)
             ON CONFLICT (site, agent) DO UPDATE SET last_seen_us = excluded.last_seen_us",
            &[id[0].clone(), id[1].clone(), Param::from(now)],
        )?;
        out.push(BatchWrite {
            site: batch.site.clone(),
            agent: batch.agent.clone(),
            epoch: batch.epoch,
            new,
            duplicates,
            watermark: mark.seq(),
        });
        marks.insert(key, mark);
    }
    Ok(out)
}

/// The watermark of an epoch as persisted, with what is stored above it. For an epoch never
/// seen, it starts at the watermark the agent says it holds (`acked`); from an agent too old
/// to say, just below the batch's lowest seq (or gap start), because the agent may have had
/// earlier records acknowledged by another store (or a wiped one).
fn load_watermark(sql: &mut dyn Sql, batch: &Batch) -> Result<Watermark, StoreError> {
    let key = [
        Param::from(batch.site.as_str()),
        Param::from(batch.agent.as_str()),
        to_db(batch.epoch),
    ];
    let rows = sql.query(
        "SELECT seq FROM watermarks WHERE site = $1 AND agent = $2 AND epoch = $3",
        &key,
    )?;
    let Some(row) = rows.first() else {
        if let Some(acked) = batch.acked {
            return Ok(Watermark::at(acked));
        }
        let lowest = batch
            .records
            .iter()
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

/// Rows per multi-row statement: a run of records is cut into chunks of these sizes, largest
/// first, so each table needs only a handful of distinct (prepared) statements.
const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// `head VALUES ($1, ..), (..), .. tail` for `rows` rows of `columns` parameters.
fn multi_row(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(head.len() + tail.len() + rows * columns * 5 + 16);
    text.push_str(head);
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
    text.push_str(tail);
    text
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
fn record_key(batch: &Batch, record: &Record) -> [Param; 5] {
    [
        Param::from(batch.site.as_str()),
        Param::from(batch.agent.as_str()),
        to_db(batch.epoch),
        to_db(record.seq),
        Param::from(micros(record.ts)),
    ]
}

/// The ten columns a result has in both `results` and `latest_results`.
fn result_params(
    batch: &Batch,
    record: &Record,
    r: &ResultRecord,
) -> Result<[Param; 10], StoreError> {
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

/// Inserts the result records among `records` whose key is not stored yet, in multi-row
/// statements; returns the seqs that were inserted.
fn insert_results(
    sql: &mut dyn Sql,
    batch: &Batch,
    records: &[&Record],
    now: i64,
) -> Result<HashSet<u64>, StoreError> {
    const COLUMNS: usize = 11;
    let results: Vec<(&Record, &ResultRecord)> = records
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::Result(result) => Some((*r, result)),
            RecordBody::Note(_) | RecordBody::Gap(_) => None,
        })
        .collect();
    let mut inserted = HashSet::with_capacity(results.len());
    for chunk in chunked(&results) {
        let mut params = Vec::with_capacity(chunk.len() * COLUMNS);
        for (record, r) in chunk {
            params.extend(result_params(batch, record, r)?);
            params.push(Param::from(now));
        }
        let statement = multi_row(
            "INSERT INTO results (site, agent, epoch, seq, ts_us, check_id, status, summary,
                 metrics, historical, received_us)",
            COLUMNS,
            chunk.len(),
            "ON CONFLICT DO NOTHING RETURNING seq",
        );
        for row in sql.query(&statement, &params)? {
            inserted.insert(row.int(0)? as u64);
        }
    }
    Ok(inserted)
}

/// Moves `latest_results` to the newest of the batch's new results for each check (one row
/// per check, so one statement never touches a row twice), unless a newer one is stored.
fn upsert_latest(sql: &mut dyn Sql, batch: &Batch, new: &[Record]) -> Result<(), StoreError> {
    const COLUMNS: usize = 10;
    let mut newest: HashMap<&CheckId, (&Record, &ResultRecord)> = HashMap::new();
    for record in new {
        if let RecordBody::Result(r) = &record.body {
            let entry = newest.entry(&r.check).or_insert((record, r));
            if (record.ts, record.seq) >= (entry.0.ts, entry.0.seq) {
                *entry = (record, r);
            }
        }
    }
    let rows: Vec<_> = newest.into_values().collect();
    for chunk in chunked(&rows) {
        let mut params = Vec::with_capacity(chunk.len() * COLUMNS);
        for (record, r) in chunk {
            params.extend(result_params(batch, record, r)?);
        }
        let statement = multi_row(
            "INSERT INTO latest_results (site, agent, epoch, seq, ts_us, check_id, status,
                 summary, metrics, historical)",
            COLUMNS,
            chunk.len(),
            "ON CONFLICT (site, agent, check_id) DO UPDATE SET epoch = excluded.epoch,
                 seq = excluded.seq, ts_us = excluded.ts_us, status = excluded.status,
                 summary = excluded.summary, metrics = excluded.metrics,
                 historical = excluded.historical
             WHERE excluded.ts_us >= latest_results.ts_us",
        );
        sql.execute(&statement, &params)?;
    }
    Ok(())
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
                Param::Text(n.check.as_ref().map(|c| c.as_str().to_owned())),
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
