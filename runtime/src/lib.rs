//! busbar-runtime: the WebAssembly connector host, the router and delivery.
//!
//! Module map:
//! - [`host`]: runs connectors as wasmtime components: loading and the compiled-code cache, one host module per
//!   WIT interface (`log`, `state`, `sql`, outgoing `wasi:http`), grants, limits, instances and supervision.
//! - [`bus`]: the [`bus::Bus`] trait through which everything here reaches the log (embedded or external).
//! - [`envelope`]: the EventBridge-style envelope; plain Kafka records are wrapped.
//! - [`router`]: one pass per bus record over all rules, delivery lanes with batching, retry, dead-lettering
//!   and parking, and commit tracking.
//! - [`error`]: the crate's error type.

pub mod bus;
pub mod envelope;
pub mod error;
pub mod host;
pub mod router;

pub use error::Error;
