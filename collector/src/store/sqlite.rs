//! The SQLite backend: one file, WAL journal, `synchronous = NORMAL` (a power cut may lose
//! the last transactions but never corrupts; agents replay what was not acknowledged).

use std::path::Path;

use rusqlite::{
    Connection, TransactionBehavior,
    types::{ToSqlOutput, ValueRef},
};

use super::{
    SqlStore, StoreError,
    backend::{Backend, Param, Row, Sql, Value},
    schema,
};

/// One SQLite connection; writers take the write lock at `BEGIN` (no upgrade deadlocks).
pub struct Sqlite {
    conn: Connection,
    behavior: TransactionBehavior,
}

/// Opens (creating folder and file) and migrates the database at `path`.
pub fn open(path: &Path) -> Result<SqlStore<Sqlite>, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Open(format!(
                "cannot create the store folder {}: {e}; create it or set [store] url",
                dir.display()
            ))
        })?;
    }
    let mut writer = connect(path, TransactionBehavior::Immediate)?;
    schema::migrate(&mut writer)?;
    let reader = connect(path, TransactionBehavior::Deferred)?;
    Ok(SqlStore::new(writer, reader))
}

fn connect(path: &Path, behavior: TransactionBehavior) -> Result<Sqlite, StoreError> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError::Open(format!("cannot open SQLite store {}: {e}", path.display()))
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Ingest writes large transactions back to back: checkpoint less often, cache more,
    // and keep temporary B-trees in memory (profiled: checkpoints took ~9 % of ingest).
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(Sqlite { conn, behavior })
}

impl Backend for Sqlite {
    fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut dyn Sql) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let tx = self.conn.transaction_with_behavior(self.behavior)?;
        let out = f(&mut Tx(&tx))?;
        tx.commit()?;
        Ok(out)
    }
}

/// Statements inside one SQLite transaction.
struct Tx<'a>(&'a Connection);

/// `$1` placeholders (PostgreSQL style) are `?1` in SQLite; no SQL here contains a literal `$`.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Self::Int(v) => v.to_sql(),
            Self::Text(v) => v.to_sql(),
            Self::Bool(v) => v.to_sql(),
        }
    }
}

impl Sql for Tx<'_> {
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(&sqlite_sql(sql))?;
        let changed = stmt.execute(rusqlite::params_from_iter(params))?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(&sqlite_sql(sql))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.0.execute_batch(sql)?;
        Ok(())
    }
}
