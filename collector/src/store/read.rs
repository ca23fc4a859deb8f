//! The read path, shared by both backends: the queries the API and the engine need.

use std::collections::BTreeMap;

use outpost_shared::{
    AgentId, Birth, CheckId, HostFacts, NoteAction, NoteRecord, ResultRecord, SiteId, Status,
    Timestamp,
};

use super::{
    ResultQuery, StatusCounts, StoreError, StoredAgent, StoredNote, StoredResult,
    backend::{Param, Row, Sql},
    write::{micros, to_db},
};

const DEFAULT_LIMIT: usize = 1000;

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

fn ts(us: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(us).map_err(|e| corrupt("timestamp", e))
}

fn site(s: String) -> Result<SiteId, StoreError> {
    SiteId::new(s).map_err(|e| corrupt("site", e))
}

fn agent(s: String) -> Result<AgentId, StoreError> {
    AgentId::new(s).map_err(|e| corrupt("agent", e))
}

fn check(s: String) -> Result<CheckId, StoreError> {
    CheckId::new(s).map_err(|e| corrupt("check", e))
}

/// The persisted watermark of one agent epoch.
pub fn watermark(
    sql: &mut dyn Sql,
    site: &SiteId,
    agent: &AgentId,
    epoch: u64,
) -> Result<Option<u64>, StoreError> {
    let rows = sql.query(
        "SELECT seq FROM watermarks WHERE site = $1 AND agent = $2 AND epoch = $3",
        &[
            Param::from(site.as_str()),
            Param::from(agent.as_str()),
            to_db(epoch),
        ],
    )?;
    rows.first().map(|r| r.int(0).map(|s| s as u64)).transpose()
}

/// All agents, or one.
pub fn agents(
    sql: &mut dyn Sql,
    only: Option<(&SiteId, &AgentId)>,
) -> Result<Vec<StoredAgent>, StoreError> {
    let select = "SELECT site, agent, version, epoch, host, checks, boot_time_us, started_us,
                  birth_us, last_seen_us, online FROM agents";
    let rows = match only {
        Some((s, a)) => sql.query(
            &format!("{select} WHERE site = $1 AND agent = $2"),
            &[Param::from(s.as_str()), Param::from(a.as_str())],
        )?,
        None => sql.query(&format!("{select} ORDER BY site, agent"), &[])?,
    };
    rows.iter().map(agent_row).collect()
}

fn agent_row(row: &Row) -> Result<StoredAgent, StoreError> {
    let site = site(row.text(0)?)?;
    let agent = agent(row.text(1)?)?;
    let birth = match (row.opt_text(2)?, row.opt_text(4)?, row.opt_text(5)?) {
        (Some(version), Some(host), Some(checks)) => Some(Birth {
            v: outpost_shared::PROTOCOL_VERSION,
            site: site.clone(),
            agent: agent.clone(),
            version,
            epoch: row.int(3)? as u64,
            boot_time: ts(row.int(6)?)?,
            started_at: ts(row.int(7)?)?,
            host: serde_json::from_str::<HostFacts>(&host).map_err(|e| corrupt("host", e))?,
            checks: serde_json::from_str(&checks).map_err(|e| corrupt("checks", e))?,
        }),
        _ => None,
    };
    Ok(StoredAgent {
        site,
        agent,
        birth,
        birth_at: row.opt_int(8)?.map(ts).transpose()?,
        last_seen: row.opt_int(9)?.map(ts).transpose()?,
        online: row.bool(10)?,
    })
}

const RESULT_COLUMNS: &str =
    "site, agent, epoch, seq, ts_us, check_id, status, summary, metrics, historical";

fn result_row(row: &Row) -> Result<StoredResult, StoreError> {
    let status: Status = row.text(6)?.parse().map_err(|e| corrupt("status", e))?;
    let metrics: BTreeMap<String, f64> =
        serde_json::from_str(&row.text(8)?).map_err(|e| corrupt("metrics", e))?;
    Ok(StoredResult {
        site: site(row.text(0)?)?,
        agent: agent(row.text(1)?)?,
        epoch: row.int(2)? as u64,
        seq: row.int(3)? as u64,
        ts: ts(row.int(4)?)?,
        result: ResultRecord {
            check: check(row.text(5)?)?,
            status,
            summary: row.text(7)?,
            metrics,
            historical: row.bool(9)?,
        },
    })
}

/// Appends `column = $n` filters for the present values.
fn filters<'a>(
    conditions: &mut Vec<String>,
    params: &mut Vec<Param<'a>>,
    pairs: &[(&str, Option<Param<'a>>)],
) {
    for (column, value) in pairs {
        if let Some(value) = value {
            params.push(value.clone());
            conditions.push(format!("{column} ${}", params.len()));
        }
    }
}

fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

/// Results matching a query, newest first.
pub fn results(sql: &mut dyn Sql, query: &ResultQuery) -> Result<Vec<StoredResult>, StoreError> {
    let (mut conditions, mut params) = (Vec::new(), Vec::new());
    filters(
        &mut conditions,
        &mut params,
        &[
            (
                "site =",
                query.site.as_ref().map(|s| Param::from(s.as_str())),
            ),
            (
                "agent =",
                query.agent.as_ref().map(|a| Param::from(a.as_str())),
            ),
            (
                "check_id =",
                query.check.as_ref().map(|c| Param::from(c.as_str())),
            ),
            ("ts_us >=", query.since.map(|t| Param::from(micros(t)))),
        ],
    );
    let limit = if query.limit == 0 {
        DEFAULT_LIMIT
    } else {
        query.limit
    };
    params.push(Param::from(i64::try_from(limit).unwrap_or(i64::MAX)));
    let sql_text = format!(
        "SELECT {RESULT_COLUMNS} FROM results{} ORDER BY ts_us DESC, seq DESC LIMIT ${}",
        where_clause(&conditions),
        params.len()
    );
    sql.query(&sql_text, &params)?
        .iter()
        .map(result_row)
        .collect()
}

/// The newest result of each check.
pub fn latest(
    sql: &mut dyn Sql,
    site: Option<&SiteId>,
    agent: Option<&AgentId>,
) -> Result<Vec<StoredResult>, StoreError> {
    let (mut conditions, mut params) = (Vec::new(), Vec::new());
    filters(
        &mut conditions,
        &mut params,
        &[
            ("site =", site.map(|s| Param::from(s.as_str()))),
            ("agent =", agent.map(|a| Param::from(a.as_str()))),
        ],
    );
    let sql_text = format!(
        "SELECT {RESULT_COLUMNS} FROM latest_results{} ORDER BY site, agent, check_id",
        where_clause(&conditions)
    );
    sql.query(&sql_text, &params)?
        .iter()
        .map(result_row)
        .collect()
}

/// Notes of an agent since a time, oldest first.
pub fn notes(
    sql: &mut dyn Sql,
    site_id: &SiteId,
    agent_id: &AgentId,
    check_id: Option<&CheckId>,
    since: Timestamp,
) -> Result<Vec<StoredNote>, StoreError> {
    let mut params = vec![
        Param::from(site_id.as_str()),
        Param::from(agent_id.as_str()),
        Param::from(micros(since)),
    ];
    let condition = match check_id {
        Some(c) => {
            params.push(Param::from(c.as_str()));
            " AND (check_id = $4 OR check_id IS NULL)"
        }
        None => "",
    };
    let rows = sql.query(
        &format!(
            "SELECT site, agent, epoch, seq, ts_us, check_id, by_name, body, action, until_us
             FROM notes WHERE site = $1 AND agent = $2 AND ts_us >= $3{condition}
             ORDER BY ts_us, seq"
        ),
        &params,
    )?;
    rows.iter()
        .map(|row| {
            let action = match row.text(8)?.as_str() {
                "note" => NoteAction::Note,
                "working_on_it" => NoteAction::WorkingOnIt,
                "checklist_done" => NoteAction::ChecklistDone,
                "planned_work" => NoteAction::PlannedWork,
                "planned_work_ended" => NoteAction::PlannedWorkEnded,
                other => return Err(corrupt("note action", other)),
            };
            Ok(StoredNote {
                site: site(row.text(0)?)?,
                agent: agent(row.text(1)?)?,
                epoch: row.int(2)? as u64,
                seq: row.int(3)? as u64,
                ts: ts(row.int(4)?)?,
                note: NoteRecord {
                    check: row.opt_text(5)?.map(check).transpose()?,
                    by: row.text(6)?,
                    text: row.text(7)?,
                    action,
                    until: row.opt_int(9)?.map(ts).transpose()?,
                },
            })
        })
        .collect()
}

/// Hourly status counts of a site, raw results and downsampled ones together.
pub fn hourly(
    sql: &mut dyn Sql,
    site_id: &SiteId,
    since: Timestamp,
) -> Result<Vec<(AgentId, CheckId, Timestamp, StatusCounts)>, StoreError> {
    let rows = sql.query(
        "SELECT agent, check_id, hour_us, CAST(SUM(ok) AS BIGINT), CAST(SUM(warn) AS BIGINT),
             CAST(SUM(fail) AS BIGINT), CAST(SUM(unknown) AS BIGINT)
         FROM (
             SELECT agent, check_id, hour_us, count_ok AS ok, count_warn AS warn,
                 count_fail AS fail, count_unknown AS unknown
             FROM results_hourly WHERE site = $1 AND hour_us >= $2
             UNION ALL
             SELECT agent, check_id, (ts_us / 3600000000) * 3600000000,
                 CASE WHEN status = 'ok' THEN 1 ELSE 0 END,
                 CASE WHEN status = 'warn' THEN 1 ELSE 0 END,
                 CASE WHEN status = 'fail' THEN 1 ELSE 0 END,
                 CASE WHEN status = 'unknown' THEN 1 ELSE 0 END
             FROM results WHERE site = $1 AND ts_us >= $2
         ) AS counted
         GROUP BY agent, check_id, hour_us ORDER BY hour_us, agent, check_id",
        &[Param::from(site_id.as_str()), Param::from(micros(since))],
    )?;
    rows.iter()
        .map(|row| {
            let count = |i| row.int(i).map(|v| v as u64);
            Ok((
                agent(row.text(0)?)?,
                check(row.text(1)?)?,
                ts(row.int(2)?)?,
                StatusCounts {
                    ok: count(3)?,
                    warn: count(4)?,
                    fail: count(5)?,
                    unknown: count(6)?,
                },
            ))
        })
        .collect()
}
