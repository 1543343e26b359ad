//! Builds the INSERT/upsert statement once per config and binds each record's values into it.

use busbar_connector_sdk::sql::{Statement, Value as SqlValue};
use serde_json::Value;

use crate::config::{Column, Config, Dialect, Mode};

/// One mapped column: where its value comes from.
struct Source {
    steps: Vec<Step>,
}

enum Step {
    Key(String),
    Index(usize),
}

pub struct Insert {
    sql: String,
    sources: Vec<Source>,
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

fn valid_ident(s: &str) -> bool {
    s.split('.').all(|p| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    })
}

impl Insert {
    pub fn new(config: &Config) -> Result<Insert, String> {
        let d = config.dialect;
        if !valid_ident(&config.table) {
            return Err(format!(
                "table {:?}: expected a name like orders or shop.orders",
                config.table
            ));
        }
        let mut names = Vec::new();
        let mut values = Vec::new();
        let mut sources = Vec::new();
        for (i, (name, column)) in config.columns.iter().enumerate() {
            if !valid_ident(name) || name.contains('.') {
                return Err(format!("columns: {name:?} is not a plain column name"));
            }
            let (path, cast) = match column {
                Column::Path(p) => (p.as_str(), None),
                Column::Cast { path, cast } => (path.as_str(), Some(cast.as_str())),
            };
            let steps = parse_path(path).map_err(|e| format!("columns.{name}: {e}"))?;
            let placeholder = match d {
                Dialect::Postgres => format!("${}", i + 1),
                Dialect::Mysql | Dialect::Sqlite => "?".to_owned(),
            };
            values.push(match cast {
                Some(t) => format!("CAST({placeholder} AS {t})"),
                None => placeholder,
            });
            names.push(quote(d, name));
            sources.push(Source { steps });
        }
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(d, &config.table),
            names.join(", "),
            values.join(", ")
        );
        if config.mode == Mode::Upsert {
            if config.key.is_empty() && d != Dialect::Mysql {
                return Err(
                    "mode upsert needs `key`: the columns of the primary key or unique constraint"
                        .into(),
                );
            }
            for k in &config.key {
                if !config.columns.contains_key(k) {
                    return Err(format!("key column {k:?} is not one of the mapped columns"));
                }
            }
            let updates: Vec<&String> = config
                .columns
                .keys()
                .filter(|c| !config.key.contains(c))
                .collect();
            match d {
                Dialect::Postgres | Dialect::Sqlite => {
                    let target = config
                        .key
                        .iter()
                        .map(|k| quote(d, k))
                        .collect::<Vec<_>>()
                        .join(", ");
                    if updates.is_empty() {
                        sql.push_str(&format!(" ON CONFLICT ({target}) DO NOTHING"));
                    } else {
                        let set = updates
                            .iter()
                            .map(|c| format!("{0} = excluded.{0}", quote(d, c)))
                            .collect::<Vec<_>>();
                        sql.push_str(&format!(
                            " ON CONFLICT ({target}) DO UPDATE SET {}",
                            set.join(", ")
                        ));
                    }
                }
                Dialect::Mysql => {
                    let set: Vec<String> = if updates.is_empty() {
                        let first = quote(
                            d,
                            config.columns.keys().next().expect("at least one column"),
                        );
                        vec![format!("{first} = {first}")]
                    } else {
                        // VALUES() works on MariaDB and MySQL (deprecated there since 8.0.20, still supported).
                        updates
                            .iter()
                            .map(|c| format!("{0} = VALUES({0})", quote(d, c)))
                            .collect()
                    };
                    sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {}", set.join(", ")));
                }
            }
        }
        Ok(Insert { sql, sources })
    }

    /// The statement for one record's payload.
    pub fn bind(&self, payload: &[u8]) -> Result<Statement, String> {
        let json: Value = serde_json::from_slice(payload)
            .map_err(|e| format!("the event is not JSON ({e}), so no column can be mapped"))?;
        let params = self
            .sources
            .iter()
            .map(|s| {
                let found = s.steps.iter().try_fold(&json, |v, step| match step {
                    Step::Key(k) => v.get(k.as_str()),
                    Step::Index(i) => v.get(*i),
                });
                to_sql(found)
            })
            .collect();
        Ok(Statement::new(self.sql.clone(), params))
    }
}

fn to_sql(value: Option<&Value>) -> SqlValue {
    match value {
        None | Some(Value::Null) => SqlValue::Null,
        Some(Value::Bool(b)) => SqlValue::Boolean(*b),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => SqlValue::Int(i),
            (None, Some(f)) if n.is_f64() => SqlValue::Float(f),
            _ => SqlValue::Text(n.to_string()),
        },
        Some(Value::String(s)) => SqlValue::Text(s.clone()),
        Some(other) => SqlValue::Text(other.to_string()),
    }
}

/// A JSON Pointer (`/detail/id`) or a JSONPath of names and indexes (`$.detail.items[0]`, `$['a b']`).
fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    if let Some(pointer) = path.strip_prefix('/') {
        return Ok(pointer
            .split('/')
            .map(|t| {
                let t = t.replace("~1", "/").replace("~0", "~");
                match t.parse::<usize>() {
                    Ok(i) if !t.starts_with('0') || t == "0" => Step::Index(i),
                    _ => Step::Key(t),
                }
            })
            .collect());
    }
    let mut rest = path
        .strip_prefix('$')
        .ok_or_else(|| format!("{path:?}: expected a JSONPath ($.a.b) or a JSON Pointer (/a/b)"))?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(format!("{path:?}: empty name after `.`"));
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("{path:?}: unclosed `[`"))?;
            let inner = r[..end].trim();
            match inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                Some(name) => steps.push(Step::Key(name.to_owned())),
                None => steps.push(Step::Index(inner.parse().map_err(|_| {
                    format!("{path:?}: `[{inner}]` is neither an index nor a quoted name")
                })?)),
            }
            rest = &r[end + 1..];
        } else {
            return Err(format!("{path:?}: unexpected {rest:?}"));
        }
    }
    Ok(steps)
}
