//! The PostgreSQL backend (sync `postgres` client, no TLS yet). Must run on a blocking
//! thread, never inside async code: the client drives its own small runtime.

use std::{collections::HashMap, error::Error};

use postgres::{
    Client, NoTls, Statement,
    types::{IsNull, ToSql, Type},
};

use super::{
    SqlStore, StoreError,
    backend::{Backend, Param, Row, Sql, Value},
    schema,
};

/// One PostgreSQL connection with its prepared statements; reconnects when the server
/// closed it (a restart), on the next transaction.
pub struct Postgres {
    url: String,
    /// `None` only while being dropped.
    client: Option<Client>,
    statements: HashMap<String, Statement>,
}

/// Session lock key held while migrating: collectors starting together migrate one at a time.
pub const MIGRATION_LOCK: i64 = 0x6f75_7470_6f73_7400; // "outpost\0"

/// Connects twice (writer, reader) and migrates.
pub fn open(url: &str) -> Result<SqlStore<Postgres>, StoreError> {
    let mut writer = connect(url)?;
    writer.session(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
    let migrated = schema::migrate(&mut writer);
    writer.session(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
    migrated?;
    let reader = connect(url)?;
    Ok(SqlStore::new(writer, reader))
}

fn connect(url: &str) -> Result<Postgres, StoreError> {
    let mut client = Client::connect(url, NoTls)?;
    // "relation already exists, skipping" at every start is not news.
    client.batch_execute("SET client_min_messages = warning")?;
    Ok(Postgres {
        url: url.to_owned(),
        client: Some(client),
        statements: HashMap::new(),
    })
}

impl Postgres {
    /// Runs statements outside any transaction (session locks).
    fn session(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client
            .as_mut()
            .expect("invariant: the client is only taken in Drop")
            .batch_execute(sql)?;
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // The client owns a tokio runtime, which must not be dropped inside async code:
        // drop it on a plain thread so the store may be released anywhere.
        if let Some(client) = self.client.take() {
            let _ = std::thread::Builder::new()
                .name("postgres-close".into())
                .spawn(move || drop(client));
        }
    }
}

impl Backend for Postgres {
    const SHARED: bool = true;

    fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut dyn Sql) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            tracing::warn!("PostgreSQL connection lost; reconnecting");
            self.statements.clear();
            self.client = Some(Client::connect(&self.url, NoTls)?);
        }
        let client = self
            .client
            .as_mut()
            .expect("invariant: connected just above");
        let mut tx = client.transaction()?;
        let out = f(&mut Tx {
            tx: &mut tx,
            statements: &mut self.statements,
        })?;
        tx.commit()?;
        Ok(out)
    }
}

/// Statements inside one PostgreSQL transaction, prepared once per connection.
struct Tx<'a, 'c> {
    tx: &'a mut postgres::Transaction<'c>,
    statements: &'a mut HashMap<String, Statement>,
}

impl Tx<'_, '_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(stmt) = self.statements.get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.tx.prepare(sql)?;
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }
}

fn refs<'a>(params: &'a [Param<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Sql for Tx<'_, '_> {
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        Ok(self.tx.execute(&stmt, &refs(params))?)
    }

    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let stmt = self.statement(sql)?;
        let rows = self.tx.query(&stmt, &refs(params))?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| value(row, i))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row)
            })
            .collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.tx.batch_execute(sql)?;
        Ok(())
    }
}

fn value(row: &postgres::Row, i: usize) -> Result<Value, StoreError> {
    let ty = row.columns()[i].type_().clone();
    let value = match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map(|v| Value::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map(|v| Value::Int(v.into())),
        Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(Value::Bool),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(Value::Real),
        Type::TEXT | Type::VARCHAR | Type::NAME => {
            row.try_get::<_, Option<String>>(i)?.map(Value::Text)
        }
        other => {
            return Err(StoreError::Corrupt(format!(
                "column {i} has PostgreSQL type {other}, which the store does not read"
            )));
        }
    };
    Ok(value.unwrap_or(Value::Null))
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Self::Int(v) => v.to_sql(ty, out),
            Self::Text(v) => v.as_deref().to_sql(ty, out),
            Self::Bool(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty)
            || <String as ToSql>::accepts(ty)
            || <bool as ToSql>::accepts(ty)
    }

    // Checked per variant, so an integer bound to a TEXT column is refused, not garbled.
    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Self::Int(v) => v.to_sql_checked(ty, out),
            Self::Text(v) => v.to_sql_checked(ty, out),
            Self::Bool(v) => v.to_sql_checked(ty, out),
        }
    }
}
