//! `busbar:connector/sql`: statements on named connections backed by sqlx pools (PostgreSQL, MySQL/MariaDB,
//! SQLite). The pipeline names each connection and holds its URL; a guest only ever sees the name, and only the
//! names granted to it.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::{Column, Row, TypeInfo};
use tokio::sync::Mutex;
use wasmtime::component::{HasSelf, Linker, Resource};

use super::bindings::sql::{Host, HostConnection, Rows, SqlError, Statement, Value, add_to_linker as add};
use super::ctx::HostState;
use crate::Error;

/// The named connections the host may open, and their pools once opened.
pub struct SqlPools {
    urls: HashMap<String, String>,
    pools: Mutex<HashMap<String, Pool>>,
}

/// A pool on one of the supported databases.
#[derive(Clone)]
pub enum Pool {
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

/// What a guest's `connection` handle refers to.
pub struct SqlConnection {
    name: String,
    pool: Pool,
}

impl SqlPools {
    /// `urls` maps a connection name to its URL (`postgres://…`, `mysql://…`/`mariadb://…`, `sqlite:…`).
    pub fn new(urls: HashMap<String, String>) -> Self {
        SqlPools { urls, pools: Mutex::new(HashMap::new()) }
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.urls.keys().cloned().collect();
        names.sort();
        names
    }

    /// Fails unless every name in `granted` is a configured connection.
    pub fn check_granted(&self, granted: &[String]) -> Result<(), Error> {
        for name in granted {
            if !self.urls.contains_key(name) {
                return Err(Error::UnknownConnection { name: name.clone(), known: self.names().join(", ") });
            }
        }
        Ok(())
    }

    async fn pool(&self, name: &str) -> Result<Pool, SqlError> {
        let mut pools = self.pools.lock().await;
        if let Some(pool) = pools.get(name) {
            return Ok(pool.clone());
        }
        let url = self
            .urls
            .get(name)
            .ok_or_else(|| SqlError::Denied(format!("no SQL connection named {name:?} is configured")))?;
        let unavailable = |e: sqlx::Error| SqlError::Unavailable(format!("connecting to {name:?}: {e}"));
        let timeout = Duration::from_secs(5);
        let pool = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Pool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(timeout)
                    .connect(url)
                    .await
                    .map_err(unavailable)?,
            )
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            let url = url.replacen("mariadb:", "mysql:", 1);
            Pool::MySql(
                sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(timeout)
                    .connect(&url)
                    .await
                    .map_err(unavailable)?,
            )
        } else if url.starts_with("sqlite:") {
            // An in-memory database exists per connection: keep exactly one so every statement sees the same data.
            let max = if url.contains(":memory:") || url.contains("mode=memory") { 1 } else { 4 };
            Pool::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(timeout)
                    .connect(url)
                    .await
                    .map_err(unavailable)?,
            )
        } else {
            return Err(SqlError::Unavailable(format!(
                "connection {name:?} has an unsupported URL scheme: expected postgres://, mysql://, mariadb:// or sqlite:"
            )));
        };
        pools.insert(name.to_owned(), pool.clone());
        Ok(pool)
    }
}

fn query_error(e: sqlx::Error) -> SqlError {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            SqlError::Unavailable(e.to_string())
        }
        other => SqlError::Query(other.to_string()),
    }
}

/// Binds the WIT values to a sqlx query of any driver.
macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut q = $query;
        for p in $params {
            q = match p {
                Value::Null => q.bind(None::<String>),
                Value::Boolean(b) => q.bind(b),
                Value::Int(i) => q.bind(i),
                Value::Float(f) => q.bind(f),
                Value::Text(s) => q.bind(s),
                Value::Bytes(b) => q.bind(b),
            };
        }
        q
    }};
}

/// Reads one column as the first Rust type the driver says is compatible with it.
macro_rules! read_value {
    ($row:expr, $i:expr, $col:expr) => {{
        let row = $row;
        let i = $i;
        if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
            Ok(v.map_or(Value::Null, Value::Int))
        } else if let Ok(v) = row.try_get::<Option<i32>, _>(i) {
            Ok(v.map_or(Value::Null, |v| Value::Int(v.into())))
        } else if let Ok(v) = row.try_get::<Option<i16>, _>(i) {
            Ok(v.map_or(Value::Null, |v| Value::Int(v.into())))
        } else if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
            Ok(v.map_or(Value::Null, Value::Float))
        } else if let Ok(v) = row.try_get::<Option<f32>, _>(i) {
            Ok(v.map_or(Value::Null, |v| Value::Float(v.into())))
        } else if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
            Ok(v.map_or(Value::Null, Value::Boolean))
        } else if let Ok(v) = row.try_get::<Option<String>, _>(i) {
            Ok(v.map_or(Value::Null, Value::Text))
        } else if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
            Ok(v.map_or(Value::Null, Value::Bytes))
        } else {
            Err(SqlError::Query(format!(
                "column {:?} has type {}, which busbar cannot read yet: cast it in the query (to text, integer or float)",
                $col.name(),
                $col.type_info().name()
            )))
        }
    }};
}

macro_rules! read_rows {
    ($rows:expr) => {{
        let rows = $rows;
        let columns: Vec<String> =
            rows.first().map(|r| r.columns().iter().map(|c| c.name().to_owned()).collect()).unwrap_or_default();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut values = Vec::with_capacity(row.columns().len());
            for (i, col) in row.columns().iter().enumerate() {
                values.push(read_value!(row, i, col)?);
            }
            out.push(values);
        }
        Ok::<Rows, SqlError>(Rows { columns, rows: out })
    }};
}

impl Pool {
    pub async fn query(&self, st: Statement) -> Result<Rows, SqlError> {
        match self {
            Pool::Postgres(p) => read_rows!(bind_all!(sqlx::query(sqlx::AssertSqlSafe(st.sql)), st.params).fetch_all(p).await.map_err(query_error)?),
            Pool::MySql(p) => read_rows!(bind_all!(sqlx::query(sqlx::AssertSqlSafe(st.sql)), st.params).fetch_all(p).await.map_err(query_error)?),
            Pool::Sqlite(p) => read_rows!(bind_all!(sqlx::query(sqlx::AssertSqlSafe(st.sql)), st.params).fetch_all(p).await.map_err(query_error)?),
        }
    }

    pub async fn execute(&self, st: Statement) -> Result<u64, SqlError> {
        let n = match self {
            Pool::Postgres(p) => bind_all!(sqlx::query(sqlx::AssertSqlSafe(st.sql)), st.params).execute(p).await.map(|r| r.rows_affected()),
            Pool::MySql(p) => bind_all!(sqlx::query(sqlx::AssertSqlSafe(st.sql)), st.params).execute(p).await.map(|r| r.rows_affected()),
            Pool::Sqlite(p) => bind_all!(sqlx::query(sqlx::AssertSqlSafe(st.sql)), st.params).execute(p).await.map(|r| r.rows_affected()),
        };
        n.map_err(query_error)
    }

    pub async fn transaction(&self, statements: Vec<Statement>) -> Result<Vec<u64>, SqlError> {
        macro_rules! run_tx {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await.map_err(query_error)?;
                let mut counts = Vec::with_capacity(statements.len());
                for st in statements {
                    let r = bind_all!(sqlx::query(sqlx::AssertSqlSafe(st.sql)), st.params).execute(&mut *tx).await.map_err(query_error)?;
                    counts.push(r.rows_affected());
                }
                tx.commit().await.map_err(query_error)?;
                Ok(counts)
            }};
        }
        // A statement that fails drops `tx`, which rolls the transaction back.
        match self {
            Pool::Postgres(p) => run_tx!(p),
            Pool::MySql(p) => run_tx!(p),
            Pool::Sqlite(p) => run_tx!(p),
        }
    }
}

impl HostState {
    fn connection(&self, handle: &Resource<SqlConnection>) -> wasmtime::Result<(String, Pool)> {
        let c = self.table.get(handle)?;
        Ok((c.name.clone(), c.pool.clone()))
    }
}

impl HostConnection for HostState {
    async fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<SqlConnection>, SqlError>> {
        if !self.grants.allows_sql(&name) {
            tracing::warn!(connector = %self.name, connection = %name, "SQL denied: connection not granted");
            return Ok(Err(SqlError::Denied(format!(
                "connector {} was not granted the SQL connection {name:?} (granted: {:?})",
                self.name, self.grants.sql
            ))));
        }
        let pool = match self.sql.pool(&name).await {
            Ok(pool) => pool,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(self.table.push(SqlConnection { name, pool })?))
    }

    async fn query(
        &mut self,
        handle: Resource<SqlConnection>,
        statement: Statement,
    ) -> wasmtime::Result<Result<Rows, SqlError>> {
        let (name, pool) = self.connection(&handle)?;
        tracing::debug!(connector = %self.name, connection = %name, sql = %statement.sql, "sql query");
        Ok(pool.query(statement).await)
    }

    async fn execute(
        &mut self,
        handle: Resource<SqlConnection>,
        statement: Statement,
    ) -> wasmtime::Result<Result<u64, SqlError>> {
        let (name, pool) = self.connection(&handle)?;
        tracing::debug!(connector = %self.name, connection = %name, sql = %statement.sql, "sql execute");
        Ok(pool.execute(statement).await)
    }

    async fn transaction(
        &mut self,
        handle: Resource<SqlConnection>,
        statements: Vec<Statement>,
    ) -> wasmtime::Result<Result<Vec<u64>, SqlError>> {
        let (name, pool) = self.connection(&handle)?;
        tracing::debug!(connector = %self.name, connection = %name, statements = statements.len(), "sql transaction");
        Ok(pool.transaction(statements).await)
    }

    async fn drop(&mut self, handle: Resource<SqlConnection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl Host for HostState {}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add::<HostState, HasSelf<HostState>>(linker, |s| s)
}
