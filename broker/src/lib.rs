//! busbar-broker: a Kafka-wire-compatible broker and its storage.
