//! `builtin:sql-poll`: a pull source that reads new (or changed) rows of a table or query, the way the Kafka
//! Connect JDBC source connector does, and puts one event per row on the bus.
//!
//! Module map:
//! - `config`: the config and its JSON Schema.
//! - `cursor`: the cursor (the last row's cursor columns, as JSON) and the cursor query per mode and dialect.
//!
//! The cursor is an opaque string to the host, which stores it durably once the poll's events are on the bus.

mod config;
mod cursor;

use base64::Engine as _;
use busbar_connector_sdk::sql::{Connection, SqlError, Value as SqlValue};
use busbar_connector_sdk::{
    Capability, Description, Error, Event, Kind, PollResult, PullSource, export_pull_source,
};
use serde_json::{Map, Value};

use config::Config;
use cursor::{Cursor, Plan};

struct SqlPoll {
    connection_name: String,
    connection: Option<Connection>,
    plan: Plan,
    key_column: Option<String>,
    source: String,
    detail_type: String,
}

impl PullSource for SqlPoll {
    type Config = Config;

    fn describe() -> Description {
        Description {
            name: "sql-poll".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::PullSource,
            summary: "polls a table or query for new rows (incrementing / timestamp cursors, as the JDBC source does)".into(),
            config_schema: config::SCHEMA.into(),
            needs: vec![Capability::Sql],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        let plan = Plan::new(&config).map_err(Error::fatal)?;
        let source = config
            .source
            .clone()
            .unwrap_or_else(|| match &config.table {
                Some(t) => format!("sql:{t}"),
                None => "sql".to_owned(),
            });
        Ok(SqlPoll {
            connection_name: config.connection,
            connection: None,
            plan,
            key_column: config.key_column,
            source,
            detail_type: config.detail_type,
        })
    }

    fn poll(&mut self, cursor: Option<String>, max: u32) -> Result<PollResult, Error> {
        let current = match cursor.as_deref() {
            Some(text) => Some(Cursor::parse(text, self.plan.mode()).map_err(Error::fatal)?),
            None => None,
        };
        let statement = self.plan.statement(current.as_ref(), max.max(1));
        if self.connection.is_none() {
            self.connection = Some(Connection::open(&self.connection_name).map_err(sql_error)?);
        }
        let rows = self
            .connection
            .as_ref()
            .expect("opened")
            .query(&statement)
            .map_err(sql_error)?;
        let mut events = Vec::with_capacity(rows.rows.len());
        let mut next = current;
        for row in &rows.rows {
            let mut detail = Map::new();
            for (name, value) in rows.columns.iter().zip(row) {
                detail.insert(name.clone(), json(value));
            }
            let detail = Value::Object(detail);
            next = Some(self.plan.cursor_of(&detail).map_err(Error::fatal)?);
            let mut event = Event::json(&self.source, &self.detail_type, &detail);
            if let Some(k) = &self.key_column {
                event.key = match detail.get(k) {
                    None => {
                        return Err(Error::fatal(format!(
                            "key-column {k:?} is not a column of the result (columns: {})",
                            rows.columns.join(", ")
                        )));
                    }
                    Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone().into_bytes()),
                    Some(v) => Some(v.to_string().into_bytes()),
                };
            }
            events.push(event);
        }
        Ok(PollResult {
            events,
            cursor: next.map(|c| c.to_string()).or(cursor),
        })
    }
}

fn json(value: &SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Boolean(b) => Value::Bool(*b),
        SqlValue::Int(i) => Value::from(*i),
        SqlValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        SqlValue::Text(s) => Value::String(s.clone()),
        SqlValue::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

fn sql_error(e: SqlError) -> Error {
    match e {
        SqlError::Unavailable(m) => Error::retryable(format!("the database is unavailable: {m}")),
        SqlError::Query(m) => Error::fatal(format!("the poll query failed: {m}")),
        SqlError::Denied(m) => Error::fatal(m),
    }
}

export_pull_source!(SqlPoll);
