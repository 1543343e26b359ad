//! The broker's error types and their mapping to Kafka error codes.

use std::path::PathBuf;

use kafka_protocol::ResponseError;

use crate::log::producer::SequenceError;

/// Why a record batch was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("record batch is truncated: needs {needed} bytes, only {available} present")]
    Truncated { needed: usize, available: usize },
    #[error(
        "record batch has magic {magic}; only magic 2 (Kafka 0.11+ record batches) is accepted"
    )]
    UnsupportedMagic { magic: i8 },
    #[error("record batch length {length} is below the minimum of {min} bytes")]
    BadLength { length: i32, min: i32 },
    #[error(
        "record batch has invalid counts (last offset delta {last_offset_delta}, records {record_count})"
    )]
    BadCounts {
        last_offset_delta: i32,
        record_count: i32,
    },
    #[error(
        "record batch CRC32C mismatch: header says {expected:#010x}, payload hashes to {actual:#010x}"
    )]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("produce request carries no record batch")]
    Empty,
    #[error(
        "record {offset_delta} of the batch has no key: a compacted topic (cleanup.policy=compact) keeps the \
         latest record per key, so every record needs one"
    )]
    MissingKey { offset_delta: i32 },
    #[error(
        "produce request carries {count} record batches for one partition; Produce v3 and later allow exactly one"
    )]
    MultipleBatches { count: usize },
    #[error("record batch cannot be decoded: {reason}")]
    Undecodable { reason: String },
}

/// Everything the broker library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("invalid record batch for {topic}/{partition}: {source}")]
    Batch {
        topic: String,
        partition: i32,
        source: BatchError,
    },
    #[error("batch of {size} bytes for {topic}/{partition} exceeds max.message.bytes={max}")]
    RecordTooLarge {
        topic: String,
        partition: i32,
        size: usize,
        max: usize,
    },
    #[error("produce to {topic}/{partition} refused: {source}")]
    Sequence {
        topic: String,
        partition: i32,
        source: crate::log::producer::SequenceError,
    },
    #[error("topic {topic:?} does not exist")]
    UnknownTopic { topic: String },
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("topic {topic:?} already exists")]
    TopicExists { topic: String },
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName { name: String, reason: &'static str },
    #[error("invalid partition count for {topic:?}: {reason}")]
    InvalidPartitions { topic: String, reason: String },
    #[error("invalid config {key}={value:?}: {reason}")]
    InvalidConfig {
        key: String,
        value: String,
        reason: String,
    },
    #[error("offset {offset} is out of range for {topic}/{partition} (log holds {start}..{end})")]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        offset: i64,
        start: i64,
        end: i64,
    },
    #[error("corrupt data in {path} at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("the log store is shutting down")]
    ShuttingDown,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// The Kafka error a client gets for this failure.
    pub fn response_error(&self) -> ResponseError {
        match self {
            Error::Io { .. } | Error::Corrupt { .. } => ResponseError::KafkaStorageError,
            Error::Bind { .. } | Error::ShuttingDown => ResponseError::UnknownServerError,
            Error::Batch { source, .. } => match source {
                BatchError::CrcMismatch { .. }
                | BatchError::Truncated { .. }
                | BatchError::BadLength { .. } => ResponseError::CorruptMessage,
                BatchError::UnsupportedMagic { .. }
                | BatchError::BadCounts { .. }
                | BatchError::MissingKey { .. }
                | BatchError::MultipleBatches { .. }
                | BatchError::Empty => ResponseError::InvalidRecord,
                BatchError::Undecodable { .. } => ResponseError::CorruptMessage,
            },
            Error::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
            Error::Sequence { source, .. } => match source {
                SequenceError::StaleEpoch { .. } => ResponseError::InvalidProducerEpoch,
                SequenceError::OutOfOrder { .. } => ResponseError::OutOfOrderSequenceNumber,
            },
            Error::UnknownTopic { .. } | Error::UnknownPartition { .. } => {
                ResponseError::UnknownTopicOrPartition
            }
            Error::TopicExists { .. } => ResponseError::TopicAlreadyExists,
            Error::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
            Error::InvalidPartitions { .. } => ResponseError::InvalidPartitions,
            Error::InvalidConfig { .. } => ResponseError::InvalidConfig,
            Error::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        }
    }

    /// The numeric Kafka error code.
    pub fn code(&self) -> i16 {
        self.response_error().code()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
