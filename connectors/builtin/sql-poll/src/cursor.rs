//! The cursor and the query that reads past it.
//!
//! The cursor is the last delivered row's cursor columns as a JSON object, `{"id": 41}` or
//! `{"ts": "2026-01-01 10:00:00", "id": 41}`, so it keeps the columns' types across restarts. The query wraps the
//! table or the user's query as a subquery and adds, as the JDBC source connector does:
//! - incrementing: `WHERE id > ? ORDER BY id`
//! - timestamp: `WHERE ts > ? ORDER BY ts`
//! - timestamp+incrementing: `WHERE ts > ? OR (ts = ? AND id > ?) ORDER BY ts, id`
//!
//! with `LIMIT <max>`. The first poll (no cursor) has no WHERE.

use busbar_connector_sdk::sql::{Statement, Value as SqlValue};
use serde_json::{Map, Value};

use crate::config::{Config, Dialect, Mode};

pub struct Cursor {
    ts: Option<Value>,
    id: Option<Value>,
}

impl Cursor {
    pub fn parse(text: &str, mode: Mode) -> Result<Cursor, String> {
        let bad = || format!("cursor {text:?} is not one this connector wrote for mode {mode:?}");
        let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(text) else {
            return Err(bad());
        };
        let cursor = Cursor {
            ts: obj.remove("ts"),
            id: obj.remove("id"),
        };
        let ok = match mode {
            Mode::Incrementing => cursor.id.is_some(),
            Mode::Timestamp => cursor.ts.is_some(),
            Mode::TimestampIncrementing => cursor.id.is_some() && cursor.ts.is_some(),
        };
        if ok { Ok(cursor) } else { Err(bad()) }
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut obj = Map::new();
        if let Some(ts) = &self.ts {
            obj.insert("ts".into(), ts.clone());
        }
        if let Some(id) = &self.id {
            obj.insert("id".into(), id.clone());
        }
        write!(f, "{}", Value::Object(obj))
    }
}

pub struct Plan {
    mode: Mode,
    dialect: Dialect,
    from: String,
    ts: Option<String>,
    id: Option<String>,
}

fn quote(dialect: Dialect, ident: &str) -> String {
    ident
        .split('.')
        .map(|part| match dialect {
            Dialect::Mysql => format!("`{part}`"),
            Dialect::Postgres | Dialect::Sqlite => format!("\"{part}\""),
        })
        .collect::<Vec<_>>()
        .join(".")
}

impl Plan {
    pub fn new(config: &Config) -> Result<Plan, String> {
        let d = config.dialect;
        let from = match (&config.table, &config.query) {
            (Some(table), None) => quote(d, table),
            (None, Some(query)) => {
                let q = query.trim().trim_end_matches(';');
                let head = q.split_whitespace().next().unwrap_or_default();
                if !head.eq_ignore_ascii_case("select") && !head.eq_ignore_ascii_case("with") {
                    return Err(format!("query {query:?}: expected a SELECT statement"));
                }
                format!("({q})")
            }
            _ => return Err("give exactly one of `table` and `query`".into()),
        };
        let need = |field: &Option<String>, name: &str| {
            field
                .clone()
                .ok_or_else(|| format!("mode {:?} needs `{name}`", config.mode))
                .map(Some)
        };
        let (ts, id) = match config.mode {
            Mode::Incrementing => (
                None,
                need(&config.incrementing_column, "incrementing-column")?,
            ),
            Mode::Timestamp => (need(&config.timestamp_column, "timestamp-column")?, None),
            Mode::TimestampIncrementing => (
                need(&config.timestamp_column, "timestamp-column")?,
                need(&config.incrementing_column, "incrementing-column")?,
            ),
        };
        Ok(Plan {
            mode: config.mode,
            dialect: d,
            from,
            ts,
            id,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The query for the rows after `cursor`, at most `max` of them.
    pub fn statement(&self, cursor: Option<&Cursor>, max: u32) -> Statement {
        let col = |c: &Option<String>| {
            format!(
                "busbar_src.{}",
                quote(self.dialect, c.as_deref().unwrap_or_default())
            )
        };
        let (ts, id) = (col(&self.ts), col(&self.id));
        let mut n = 0;
        let mut ph = || {
            n += 1;
            match self.dialect {
                Dialect::Postgres => format!("${n}"),
                Dialect::Mysql | Dialect::Sqlite => "?".to_owned(),
            }
        };
        let mut params = Vec::new();
        let condition = match (self.mode, cursor) {
            (_, None) => String::new(),
            (Mode::Incrementing, Some(c)) => {
                params.push(sql_value(c.id.as_ref()));
                format!(" WHERE {id} > {}", ph())
            }
            (Mode::Timestamp, Some(c)) => {
                params.push(sql_value(c.ts.as_ref()));
                format!(" WHERE {ts} > {}", ph())
            }
            (Mode::TimestampIncrementing, Some(c)) => {
                params.extend([
                    sql_value(c.ts.as_ref()),
                    sql_value(c.ts.as_ref()),
                    sql_value(c.id.as_ref()),
                ]);
                let (a, b, c) = (ph(), ph(), ph());
                format!(" WHERE {ts} > {a} OR ({ts} = {b} AND {id} > {c})")
            }
        };
        let order = match self.mode {
            Mode::Incrementing => id,
            Mode::Timestamp => ts,
            Mode::TimestampIncrementing => format!("{ts}, {id}"),
        };
        Statement::new(
            format!(
                "SELECT * FROM {} AS busbar_src{condition} ORDER BY {order} LIMIT {max}",
                self.from
            ),
            params,
        )
    }

    /// The cursor after `row`.
    pub fn cursor_of(&self, row: &Value) -> Result<Cursor, String> {
        let get = |c: &Option<String>| -> Result<Option<Value>, String> {
            let Some(name) = c else { return Ok(None) };
            match row.get(name) {
                None => Err(format!(
                    "cursor column {name:?} is not in the result (columns: {})",
                    columns(row)
                )),
                Some(Value::Null) => Err(format!(
                    "cursor column {name:?} is NULL in row {row}; cursor columns must be NOT NULL"
                )),
                Some(v) => Ok(Some(v.clone())),
            }
        };
        Ok(Cursor {
            ts: get(&self.ts)?,
            id: get(&self.id)?,
        })
    }
}

fn columns(row: &Value) -> String {
    row.as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn sql_value(v: Option<&Value>) -> SqlValue {
    match v {
        Some(Value::Number(n)) if n.is_i64() => SqlValue::Int(n.as_i64().unwrap_or_default()),
        Some(Value::Number(n)) => SqlValue::Float(n.as_f64().unwrap_or_default()),
        Some(Value::String(s)) => SqlValue::Text(s.clone()),
        Some(Value::Bool(b)) => SqlValue::Boolean(*b),
        Some(other) => SqlValue::Text(other.to_string()),
        None => SqlValue::Null,
    }
}
