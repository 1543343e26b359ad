//! SQL on named connections the pipeline grants (`sql`).

pub use crate::bindings::busbar::connector::sql::{Connection, Rows, SqlError, Statement, Value};

impl Statement {
    pub fn new(sql: impl Into<String>, params: Vec<Value>) -> Self {
        Statement {
            sql: sql.into(),
            params,
        }
    }
}

impl From<SqlError> for crate::Error {
    fn from(e: SqlError) -> Self {
        let retryable = matches!(e, SqlError::Unavailable(_));
        crate::Error {
            message: format!("{e:?}"),
            retryable,
        }
    }
}
