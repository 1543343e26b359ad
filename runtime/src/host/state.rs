//! `busbar:connector/state`: a small key-value store per connector, behind [`StateStore`] so that the pipeline
//! runtime can back it with the bus; [`MemoryStateStore`] and [`SqliteStateStore`] are the built-in backends.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use wasmtime::component::{HasSelf, Linker};

use super::bindings::state::{Host, StateError, add_to_linker as add};
use super::ctx::HostState;
use crate::Error;

/// Largest key a guest may use, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value a guest may store, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Per-connector key-value storage. `namespace` is the connector instance's name.
pub trait StateStore: Send + Sync {
    fn get<'a>(&'a self, namespace: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>>;
    fn set<'a>(&'a self, namespace: &'a str, key: &'a str, value: Vec<u8>) -> BoxFuture<'a, Result<(), Error>>;
    fn delete<'a>(&'a self, namespace: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), Error>>;
}

/// State kept in memory: lost on restart. For tests and `busbar connector test`.
#[derive(Default)]
pub struct MemoryStateStore {
    map: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl StateStore for MemoryStateStore {
    fn get<'a>(&'a self, namespace: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        let v = self.map.lock().expect("state lock").get(&(namespace.to_owned(), key.to_owned())).cloned();
        Box::pin(async move { Ok(v) })
    }
    fn set<'a>(&'a self, namespace: &'a str, key: &'a str, value: Vec<u8>) -> BoxFuture<'a, Result<(), Error>> {
        self.map.lock().expect("state lock").insert((namespace.to_owned(), key.to_owned()), value);
        Box::pin(async { Ok(()) })
    }
    fn delete<'a>(&'a self, namespace: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.map.lock().expect("state lock").remove(&(namespace.to_owned(), key.to_owned()));
        Box::pin(async { Ok(()) })
    }
}

/// State in a SQLite file: survives restarts of busbar.
pub struct SqliteStateStore {
    pool: SqlitePool,
}

impl SqliteStateStore {
    pub async fn open(path: &std::path::Path) -> Result<Self, Error> {
        let options = SqliteConnectOptions::new().filename(path).create_if_missing(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.map_err(state_err)?;
        sqlx::query(
            "create table if not exists connector_state (namespace text not null, key text not null, \
             value blob not null, primary key (namespace, key))",
        )
        .execute(&pool)
        .await
        .map_err(state_err)?;
        Ok(SqliteStateStore { pool })
    }
}

fn state_err(e: sqlx::Error) -> Error {
    Error::State { message: e.to_string() }
}

impl StateStore for SqliteStateStore {
    fn get<'a>(&'a self, namespace: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        Box::pin(async move {
            sqlx::query_scalar("select value from connector_state where namespace = ? and key = ?")
                .bind(namespace)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(state_err)
        })
    }
    fn set<'a>(&'a self, namespace: &'a str, key: &'a str, value: Vec<u8>) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            sqlx::query("insert or replace into connector_state (namespace, key, value) values (?, ?, ?)")
                .bind(namespace)
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(state_err)
        })
    }
    fn delete<'a>(&'a self, namespace: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            sqlx::query("delete from connector_state where namespace = ? and key = ?")
                .bind(namespace)
                .bind(key)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(state_err)
        })
    }
}

impl HostState {
    fn check_state(&self, key: &str) -> Result<(), StateError> {
        if !self.grants.state {
            tracing::warn!(connector = %self.name, "state denied: not granted to this connector");
            return Err(StateError::Denied(format!(
                "connector {} was not granted `state` (add \"state\": true to its grants)",
                self.name
            )));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(StateError::TooLarge(format!("key of {} bytes; at most {MAX_KEY_BYTES}", key.len())));
        }
        Ok(())
    }
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, StateError>> {
        if let Err(e) = self.check_state(&key) {
            return Ok(Err(e));
        }
        Ok(self.state.get(&self.name, &key).await.map_err(|e| StateError::Backend(e.to_string())))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), StateError>> {
        if let Err(e) = self.check_state(&key) {
            return Ok(Err(e));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Ok(Err(StateError::TooLarge(format!(
                "value of {} bytes; at most {MAX_VALUE_BYTES}",
                value.len()
            ))));
        }
        Ok(self.state.set(&self.name, &key, value).await.map_err(|e| StateError::Backend(e.to_string())))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), StateError>> {
        if let Err(e) = self.check_state(&key) {
            return Ok(Err(e));
        }
        Ok(self.state.delete(&self.name, &key).await.map_err(|e| StateError::Backend(e.to_string())))
    }
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add::<HostState, HasSelf<HostState>>(linker, |s| s)
}
