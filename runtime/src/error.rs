//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the runtime, with what was wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connector reference {reference:?} is not valid: expected `builtin:<name>` or a path to a .wasm file")]
    BadReference { reference: String },
    #[error("unknown built-in connector {name:?}; built-ins are: {known}")]
    UnknownBuiltin { name: String, known: String },
    // `error`, not `source`: the message already carries it, and a source would print it twice in a chain.
    #[error("reading connector {path}: {error}")]
    ReadComponent { path: PathBuf, error: std::io::Error },
    #[error("{what} is not a valid busbar connector component: {message}")]
    InvalidComponent { what: String, message: String },
    #[error("connector {connector}: describe() returned an invalid config schema: {message}")]
    InvalidSchema { connector: String, message: String },
    #[error("connector {connector}: config rejected at {path}: {message}")]
    ConfigRejected { connector: String, path: String, message: String },
    #[error("connector {connector}: open failed: {message}")]
    OpenFailed { connector: String, message: String, retryable: bool },
    #[error("connector {connector} failed: {failure}")]
    Failed { connector: String, failure: crate::host::Failure },
    #[error("connector {connector} is restarting after a failure; next attempt in {retry_in_ms} ms (last failure: {failure})")]
    BackingOff { connector: String, retry_in_ms: u64, failure: crate::host::Failure },
    #[error("connector {connector} reported an error (retryable: {retryable}): {message}")]
    Connector { connector: String, message: String, retryable: bool },
    #[error("connector {connector} is a {kind}; it does not support {operation}")]
    WrongKind { connector: String, kind: &'static str, operation: &'static str },
    #[error("connector {connector}: write returned {got} outcomes for a batch of {expected}")]
    OutcomeCount { connector: String, expected: usize, got: usize },
    #[error("grant for SQL connection {name:?} names no configured connection; configured: {known}")]
    UnknownConnection { name: String, known: String },
    #[error("compiled-component cache at {path}: {error}")]
    Cache { path: PathBuf, error: std::io::Error },
    #[error("state store: {message}")]
    State { message: String },
    #[error("wasmtime: {0:#}")]
    Wasmtime(wasmtime::Error),
}

impl From<wasmtime::Error> for Error {
    fn from(e: wasmtime::Error) -> Self {
        Error::Wasmtime(e)
    }
}
