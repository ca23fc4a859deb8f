//! Several collectors writing one PostgreSQL store (`Backend::SHARED`): the agents of a
//! transaction are locked until it commits, and a collector keeps trusting its cached
//! watermark of an agent only while it was the last to write that agent.
//!
//! Each statement takes its list as one text parameter, so the prepared statements stay the
//! same whatever the batch holds. Ids are `[a-z0-9-]` and epochs numbers, so `/` and `,`
//! separate them safely.

use outpost_shared::{AgentId, Batch, SiteId};

use super::{
    StoreError,
    backend::{Param, Sql, Watermarks},
};

/// A stable 64-bit lock key for an agent (FNV-1a of `site/agent`), the same in every
/// collector version and process.
fn agent_key(site: &SiteId, agent: &AgentId) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in site
        .as_str()
        .bytes()
        .chain([b'/'])
        .chain(agent.as_str().bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash as i64
}

/// Locks every agent of `batches` until the transaction ends, in one statement and in one
/// global order, so two collectors writing the same agents never deadlock.
pub fn lock_agents(sql: &mut dyn Sql, batches: &[Batch]) -> Result<(), StoreError> {
    let mut keys: Vec<i64> = batches
        .iter()
        .map(|b| agent_key(&b.site, &b.agent))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let list = keys
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    sql.execute(
        "SELECT pg_advisory_xact_lock(k) FROM (
             SELECT unnest(string_to_array($1, ','))::bigint AS k ORDER BY 1) AS keys",
        &[Param::from(list)],
    )?;
    Ok(())
}

/// The cached watermarks (of `cached`) that another collector wrote since this one did, or
/// that moved: they must be read again from the store.
pub fn outdated(
    sql: &mut dyn Sql,
    cached: &Watermarks,
    writer: &str,
) -> Result<Vec<(SiteId, AgentId, u64)>, StoreError> {
    if cached.is_empty() {
        return Ok(Vec::new());
    }
    let list = cached
        .keys()
        .map(|(site, agent, epoch)| format!("{site}/{agent}/{}", *epoch as i64))
        .collect::<Vec<_>>()
        .join(",");
    let rows = sql.query(
        "SELECT site, agent, epoch, seq, writer FROM watermarks
         WHERE (site, agent, epoch) IN (
             SELECT split_part(x, '/', 1), split_part(x, '/', 2), split_part(x, '/', 3)::bigint
             FROM unnest(string_to_array($1, ',')) AS x)",
        &[Param::from(list)],
    )?;
    let mut current = std::collections::HashMap::new();
    for row in rows {
        let (Ok(site), Ok(agent)) = (SiteId::new(row.text(0)?), AgentId::new(row.text(1)?)) else {
            continue;
        };
        let key = (site, agent, row.int(2)? as u64);
        current.insert(key, (row.int(3)? as u64, row.opt_text(4)?));
    }
    Ok(cached
        .iter()
        .filter(|(key, mark)| {
            current
                .get(*key)
                .is_none_or(|(seq, by)| *seq != mark.seq() || by.as_deref() != Some(writer))
        })
        .map(|(key, _)| key.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable() {
        let key = |s, a| agent_key(&SiteId::new(s).expect("id"), &AgentId::new(a).expect("id"));
        // Fixed forever: collectors of different versions must lock the same agent alike.
        assert_eq!(
            key("plant-leeds", "line3-pc"),
            key("plant-leeds", "line3-pc")
        );
        assert_ne!(
            key("plant-leeds", "line3-pc"),
            key("plant-leed", "sline3-pc")
        );
        assert_eq!(key("a", "b"), 0xe620_c319_0468_cf61_u64 as i64);
    }
}
