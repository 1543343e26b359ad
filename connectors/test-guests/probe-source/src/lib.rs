//! A pull source for the host's own tests. The cursor passed to `poll` is a command, and the events returned
//! carry its result as JSON, so tests can drive every host capability from outside:
//!
//! - `sql <connection> <statement>`: runs the statement; the event detail is `{"columns":…,"rows":…}`.
//! - `sql-tx <connection> <statement>;<statement>…`: runs the statements in one transaction.
//! - `http <url>`: GET; the detail is `{"status":…,"body":…}`.
//! - `state-set <key> <value>` / `state-get <key>`.
//! - `count <n>`: `min(n, max)` numbered events; the next cursor is `count <n - returned>`.
//!
//! Errors are returned as `poll` errors, whose message the tests check.

use busbar_connector_sdk::serde_json::{Value as Json, json};
use busbar_connector_sdk::sql::{Connection, Statement, Value};
use busbar_connector_sdk::{
    Capability, Description, Error, Event, Kind, PollResult, PullSource, export_pull_source, http,
    state,
};

struct Probe;

impl PullSource for Probe {
    type Config = Json;

    fn describe() -> Description {
        Description {
            name: "probe-source".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::PullSource,
            summary: "test source: runs the command in its cursor".into(),
            config_schema: r#"{"type":"object"}"#.into(),
            needs: vec![Capability::Sql, Capability::Http, Capability::State],
        }
    }

    fn open(_config: Json) -> Result<Self, Error> {
        Ok(Probe)
    }

    fn poll(&mut self, cursor: Option<String>, max: u32) -> Result<PollResult, Error> {
        let cursor = cursor.unwrap_or_default();
        let (command, arg) = cursor.split_once(' ').unwrap_or((cursor.as_str(), ""));
        let detail = match command {
            "sql" => {
                let (conn, sql) = arg.split_once(' ').unwrap_or((arg, ""));
                let rows = Connection::open(conn)?.query(&Statement::new(sql, vec![]))?;
                let rows: Vec<Vec<Json>> = rows
                    .rows
                    .iter()
                    .map(|r| r.iter().map(to_json).collect())
                    .collect();
                json!({ "rows": rows })
            }
            "sql-tx" => {
                let (conn, sqls) = arg.split_once(' ').unwrap_or((arg, ""));
                let statements: Vec<Statement> = sqls
                    .split(';')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| Statement::new(s, vec![]))
                    .collect();
                let counts = Connection::open(conn)?.transaction(&statements)?;
                json!({ "affected": counts })
            }
            "sql-param" => {
                // Binds one parameter of each type and reads them back.
                let (conn, sql) = arg.split_once(' ').unwrap_or((arg, ""));
                let params = vec![
                    Value::Int(42),
                    Value::Text("hé".into()),
                    Value::Float(1.5),
                    Value::Boolean(true),
                    Value::Null,
                    Value::Bytes(vec![0, 255]),
                ];
                let rows = Connection::open(conn)?.query(&Statement::new(sql, params))?;
                let rows: Vec<Vec<Json>> = rows
                    .rows
                    .iter()
                    .map(|r| r.iter().map(to_json).collect())
                    .collect();
                json!({ "rows": rows })
            }
            "http" => {
                let r = http::get(arg).map_err(Error::fatal)?;
                json!({ "status": r.status, "body": String::from_utf8_lossy(&r.body) })
            }
            "state-set" => {
                let (k, v) = arg.split_once(' ').unwrap_or((arg, ""));
                state::set(k, v.as_bytes()).map_err(|e| Error::fatal(format!("{e:?}")))?;
                json!({ "ok": true })
            }
            "state-get" => {
                let v = state::get(arg).map_err(|e| Error::fatal(format!("{e:?}")))?;
                json!({ "value": v.map(|v| String::from_utf8_lossy(&v).into_owned()) })
            }
            "count" => {
                let n: u32 = arg
                    .parse()
                    .map_err(|_| Error::fatal("count needs a number"))?;
                let take = n.min(max);
                let events = (0..take)
                    .map(|i| Event::json("probe", "count", &json!({ "i": i })))
                    .collect();
                return Ok(PollResult {
                    events,
                    cursor: Some(format!("count {}", n - take)),
                });
            }
            other => return Err(Error::fatal(format!("unknown probe command {other:?}"))),
        };
        Ok(PollResult {
            events: vec![Event::json("probe", command, &detail)],
            cursor: None,
        })
    }
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Boolean(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::Text(s) => json!(s),
        Value::Bytes(b) => json!({ "bytes": b }),
    }
}

export_pull_source!(Probe);
