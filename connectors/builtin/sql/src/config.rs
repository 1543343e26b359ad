//! The SQL target's config and its JSON Schema.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub connection: String,
    pub dialect: Dialect,
    pub table: String,
    pub columns: BTreeMap<String, Column>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub key: Vec<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Postgres,
    Mysql,
    Sqlite,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Insert,
    Upsert,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum Column {
    Path(String),
    Cast { path: String, cast: String },
}

pub const SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "builtin:sql",
  "description": "Inserts or upserts one row per event into a table, each batch in one transaction.",
  "type": "object",
  "additionalProperties": false,
  "required": ["connection", "dialect", "table", "columns"],
  "properties": {
    "connection": { "type": "string", "minLength": 1, "description": "Name of the pipeline connection to write to; it must be granted in grants.sql." },
    "dialect": { "enum": ["postgres", "mysql", "sqlite"], "description": "The connection's database: postgres (PostgreSQL), mysql (MySQL or MariaDB) or sqlite; decides placeholders and upsert syntax." },
    "table": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_$]*(\\.[A-Za-z_][A-Za-z0-9_$]*)?$", "description": "Table to write, optionally `schema.table`." },
    "columns": {
      "type": "object", "minProperties": 1,
      "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_$]*$" },
      "description": "Column -> where its value comes from in the event: a JSONPath (`$.detail.id`) or JSON Pointer (`/detail/id`), or `{\"path\": …, \"cast\": \"timestamptz\"}` to cast the bound value in SQL. A missing value is NULL; objects and arrays are stored as JSON text.",
      "additionalProperties": {
        "oneOf": [
          { "type": "string", "pattern": "^[$/]", "description": "JSONPath or JSON Pointer into the event." },
          { "type": "object", "additionalProperties": false, "required": ["path", "cast"],
            "description": "A path and an SQL type to cast the value to.",
            "properties": {
              "path": { "type": "string", "pattern": "^[$/]", "description": "JSONPath or JSON Pointer into the event." },
              "cast": { "type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_ ]*(\\([0-9, ]+\\))?$", "description": "SQL type, e.g. timestamptz, datetime, jsonb, numeric(10,2)." } } }
        ]
      }
    },
    "mode": { "enum": ["insert", "upsert"], "description": "insert (default) or upsert: update the row when the key already exists (ON CONFLICT … DO UPDATE on PostgreSQL and SQLite, ON DUPLICATE KEY UPDATE on MySQL/MariaDB)." },
    "key": { "type": "array", "items": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_$]*$" }, "uniqueItems": true, "description": "Columns of the primary key or unique constraint an upsert conflicts on (required for upsert; MySQL uses the table's own keys)." }
  }
}"##;
