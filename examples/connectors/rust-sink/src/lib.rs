//! A sink that stores every event as a row of a SQL table, one transaction per batch, through the `sql`
//! capability: the pipeline grants a named connection, and the connector never sees its URL or credentials.

use busbar_connector_sdk::sql::{Connection, Statement, Value};
use busbar_connector_sdk::{Capability, Description, Error, Event, Kind, Outcome, Sink, export_sink, log};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Name of the granted SQL connection.
    connection: String,
    /// Table to insert into; it must have the columns (id, source, detail_type, payload).
    table: String,
    /// Placeholder style of the database: `dollar` ($1, PostgreSQL) or `question` (?, MySQL/MariaDB, SQLite).
    #[serde(default = "question")]
    placeholders: String,
}

fn question() -> String {
    "question".into()
}

struct SqlSink {
    connection: Connection,
    insert: String,
}

impl Sink for SqlSink {
    type Config = Config;

    fn describe() -> Description {
        Description {
            name: "rust-sql-sink".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::Sink,
            summary: "stores each event as a row of a SQL table, one transaction per batch".into(),
            config_schema: r#"{
                "type": "object",
                "properties": {
                    "connection": {"type": "string", "minLength": 1},
                    "table": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                    "placeholders": {"enum": ["dollar", "question"]}
                },
                "required": ["connection", "table"],
                "additionalProperties": false
            }"#
            .into(),
            needs: vec![Capability::Sql],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        let connection = Connection::open(&config.connection)?;
        let params = if config.placeholders == "dollar" { "$1, $2, $3, $4" } else { "?, ?, ?, ?" };
        let insert = format!("insert into {} (id, source, detail_type, payload) values ({params})", config.table);
        log::info(&format!("writing to table {} on {}", config.table, config.connection));
        Ok(SqlSink { connection, insert })
    }

    fn write(&mut self, batch: Vec<Event>) -> Vec<Outcome> {
        let statements: Vec<Statement> = batch
            .iter()
            .map(|e| {
                Statement::new(
                    self.insert.clone(),
                    vec![
                        Value::Text(e.id.clone()),
                        Value::Text(e.source.clone()),
                        Value::Text(e.detail_type.clone()),
                        Value::Text(String::from_utf8_lossy(&e.payload).into_owned()),
                    ],
                )
            })
            .collect();
        // All rows of a batch commit together, so a retry never leaves half a batch behind.
        match self.connection.transaction(&statements) {
            Ok(_) => batch.iter().map(|_| Outcome::Ok).collect(),
            Err(e) => {
                let e = Error::from(e);
                let outcome = |m: &str| if e.retryable { Outcome::Retryable(m.into()) } else { Outcome::Fatal(m.into()) };
                batch.iter().map(|_| outcome(&e.message)).collect()
            }
        }
    }
}

export_sink!(SqlSink);
