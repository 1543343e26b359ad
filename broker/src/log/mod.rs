//! Storage: a segmented, append-only log per partition.
//!
//! - `batch`: record batch header parsing, CRC32C validation, offset stamping
//! - `segment`: one `.log` file with its sparse offset index and time index; recovery scan
//! - `partition`: the ordered segments of one partition: append, read, roll, retention, delete-records
//! - `producer`: idempotent producers' per-partition state (epochs, sequences, duplicate retries)
//! - `cleaner`: log compaction (`cleanup.policy=compact`) of closed segments
//! - `flush`: group commit for `--fsync always`
//! - `config`: topic settings, validation of names and values
//! - `store`: [`LogStore`], the cloneable handle the server and in-process users share
//! - `topics`: topic administration on the store

pub mod batch;
mod cleaner;
pub mod config;
mod flush;
mod partition;
pub mod producer;
mod segment;
mod store;
mod topics;

pub use config::TopicConfig;
pub use partition::{Offsets, PartitionIo};
pub use store::{Appended, Fetched, FsyncPolicy, LogStore, OffsetSpec, StoreOptions};
pub use topics::{ConfigOp, MAX_PARTITIONS, TopicInfo};
