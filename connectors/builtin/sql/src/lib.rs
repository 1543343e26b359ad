//! `builtin:sql`: a sink that inserts or upserts one row per event, each batch in one transaction.
//!
//! Module map:
//! - `config`: the config and its JSON Schema.
//! - `statement`: the INSERT/upsert statement per dialect and the binding of each record's values.
//!
//! When the batch's transaction fails on a statement (a constraint, a bad value), the database rolled it all back;
//! the records are then written one by one so that the good ones land and only the bad ones are fatal.

mod config;
mod statement;

use busbar_connector_sdk::sql::{Connection, SqlError, Statement};
use busbar_connector_sdk::{
    Capability, Description, Error, Event, Kind, Outcome, Sink, export_sink,
};

use config::Config;
use statement::Insert;

struct SqlSink {
    connection_name: String,
    connection: Option<Connection>,
    insert: Insert,
}

impl Sink for SqlSink {
    type Config = Config;

    fn describe() -> Description {
        Description {
            name: "sql".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::Sink,
            summary:
                "inserts or upserts mapped columns into a table (PostgreSQL, MySQL/MariaDB, SQLite)"
                    .into(),
            config_schema: config::SCHEMA.into(),
            needs: vec![Capability::Sql],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        let insert = Insert::new(&config).map_err(Error::fatal)?;
        Ok(SqlSink {
            connection_name: config.connection,
            connection: None,
            insert,
        })
    }

    fn write(&mut self, batch: Vec<Event>) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut statements: Vec<(usize, Statement)> = Vec::with_capacity(batch.len());
        for (i, event) in batch.iter().enumerate() {
            match self.insert.bind(&event.payload) {
                Ok(st) => statements.push((i, st)),
                Err(e) => outcomes[i] = Some(Outcome::Fatal(e)),
            }
        }
        if !statements.is_empty() {
            self.write_statements(&statements, &mut outcomes);
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Ok))
            .collect()
    }
}

impl SqlSink {
    fn connection(&mut self) -> Result<&Connection, SqlError> {
        if self.connection.is_none() {
            self.connection = Some(Connection::open(&self.connection_name)?);
        }
        Ok(self.connection.as_ref().expect("just opened"))
    }

    fn write_statements(
        &mut self,
        statements: &[(usize, Statement)],
        outcomes: &mut [Option<Outcome>],
    ) {
        let all: Vec<Statement> = statements.iter().map(|(_, s)| s.clone()).collect();
        let result = self.connection().and_then(|c| c.transaction(&all));
        match result {
            Ok(_) => {}
            Err(SqlError::Query(message)) if statements.len() > 1 => {
                busbar_connector_sdk::log::warn(&format!(
                    "batch of {} rolled back ({message}); writing its records one by one",
                    statements.len()
                ));
                self.one_by_one(statements, outcomes);
            }
            Err(e) => {
                let outcome = to_outcome(e);
                for (i, _) in statements {
                    outcomes[*i] = Some(outcome.clone());
                }
            }
        }
    }

    fn one_by_one(&mut self, statements: &[(usize, Statement)], outcomes: &mut [Option<Outcome>]) {
        for (i, st) in statements {
            let result = self.connection().and_then(|c| c.execute(st));
            if let Err(e) = result {
                outcomes[*i] = Some(to_outcome(e));
            }
        }
    }
}

fn to_outcome(e: SqlError) -> Outcome {
    match e {
        SqlError::Query(m) => Outcome::Fatal(format!("the database rejected the row: {m}")),
        SqlError::Unavailable(m) => Outcome::Retryable(format!("the database is unavailable: {m}")),
        SqlError::Denied(m) => Outcome::Fatal(m),
    }
}

export_sink!(SqlSink);
