//! busbar-broker: a Kafka-wire-compatible broker and its storage.
//!
//! - [`log`]: the durable, segmented log store ([`LogStore`]): append, fetch, offsets, retention, topic configs
//! - [`server`]: the Kafka wire server: accept -> frame -> decode -> dispatch -> `handlers/<api>.rs`
//! - [`Broker`]: starts both and hands back a [`BrokerHandle`] (bound address, store, shutdown)
//! - [`group`]: the group coordinator: consumer groups (classic and KIP-848), committed offsets, producer ids
//! - [`error`]: the crate's error type and its mapping to Kafka error codes

pub mod error;
pub mod group;
pub mod log;
pub mod server;

pub use error::{BatchError, Error, Result};
pub use log::{FsyncPolicy, LogStore, OffsetSpec, StoreOptions, TopicConfig};
pub use server::{Broker, BrokerConfig, BrokerHandle};
