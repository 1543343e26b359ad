//! The SQL poll source's config and its JSON Schema.

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub connection: String,
    pub dialect: Dialect,
    pub table: Option<String>,
    pub query: Option<String>,
    pub mode: Mode,
    pub incrementing_column: Option<String>,
    pub timestamp_column: Option<String>,
    pub key_column: Option<String>,
    pub source: Option<String>,
    #[serde(default = "default_detail_type")]
    pub detail_type: String,
    /// Read by the host (how often it polls); accepted here so the config validates.
    #[allow(dead_code)]
    pub interval: Option<String>,
    /// Read by the host (PostgreSQL LISTEN/NOTIFY wakes the poll early).
    #[allow(dead_code)]
    pub notify_channel: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Postgres,
    Mysql,
    Sqlite,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Incrementing,
    Timestamp,
    #[serde(rename = "timestamp+incrementing")]
    TimestampIncrementing,
}

fn default_detail_type() -> String {
    "row".into()
}

pub const SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "builtin:sql-poll",
  "description": "Polls a table or query for new or changed rows, with the cursor modes of the Kafka Connect JDBC source connector; each row becomes an event whose detail is the row as a JSON object.",
  "type": "object",
  "additionalProperties": false,
  "required": ["connection", "dialect", "mode"],
  "oneOf": [ { "required": ["table"] }, { "required": ["query"] } ],
  "properties": {
    "connection": { "type": "string", "minLength": 1, "description": "Name of the pipeline connection to read; it must be granted in grants.sql." },
    "dialect": { "enum": ["postgres", "mysql", "sqlite"], "description": "The connection's database: postgres (PostgreSQL), mysql (MySQL or MariaDB) or sqlite; decides placeholders and quoting." },
    "table": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_$]*(\\.[A-Za-z_][A-Za-z0-9_$]*)?$", "description": "Table to poll (all its columns). Give exactly one of table and query." },
    "query": { "type": "string", "minLength": 1, "description": "A SELECT to poll instead of a table, without a WHERE for the cursor: busbar wraps it as a subquery and adds the cursor condition, order and limit. Cast date/time columns to text here (e.g. `updated_at::text AS updated_at`)." },
    "mode": { "enum": ["incrementing", "timestamp", "timestamp+incrementing"], "description": "incrementing: new rows by a strictly increasing column; timestamp: new or changed rows by a last-modified column; timestamp+incrementing: both, `WHERE ts > ? OR (ts = ? AND id > ?) ORDER BY ts, id`, which misses no row sharing a timestamp." },
    "incrementing-column": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_$]*$", "description": "The strictly increasing column (e.g. an auto-increment id); required for incrementing and timestamp+incrementing." },
    "timestamp-column": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_$]*$", "description": "The last-modified column (text in ISO 8601 form, or a number such as epoch milliseconds); required for timestamp and timestamp+incrementing." },
    "key-column": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_$]*$", "description": "Column whose value becomes the event's partition key." },
    "source": { "type": "string", "minLength": 1, "description": "Envelope `source` of the events (default `sql:<table>`, or `sql` for a query)." },
    "detail-type": { "type": "string", "minLength": 1, "description": "Envelope `detail-type` of the events (default `row`)." },
    "interval": { "type": "string", "pattern": "^[0-9]+(ms|s|m|h)$", "description": "How often the host polls, e.g. `500ms`, `5s` (read by the host)." },
    "notify-channel": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "description": "PostgreSQL only: a LISTEN/NOTIFY channel; a notification on it wakes the poll early instead of waiting for the interval (handled by the host)." }
  }
}"##;
