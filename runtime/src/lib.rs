//! busbar-runtime: the WebAssembly connector host (and, later, the router, delivery and admin API).
//!
//! Module map:
//! - [`host`]: runs connectors as wasmtime components: loading and the compiled-code cache, one host module per
//!   WIT interface (`log`, `state`, `sql`, outgoing `wasi:http`), grants, limits, instances and supervision.
//! - [`error`]: the crate's error type.

pub mod error;
pub mod host;

pub use error::Error;
