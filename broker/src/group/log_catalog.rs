//! The log store as the coordinator's [`TopicCatalog`]: KIP-848 assignments name topics by id.

use uuid::Uuid;

use super::{TopicCatalog, TopicMeta};
use crate::log::LogStore;

impl TopicCatalog for LogStore {
    fn topic(&self, name: &str) -> Option<TopicMeta> {
        self.topic_info(name).ok().map(|t| TopicMeta {
            id: t.id,
            partitions: t.partitions,
        })
    }

    fn topic_name(&self, id: Uuid) -> Option<String> {
        self.topics()
            .into_iter()
            .find(|t| t.id == id)
            .map(|t| t.name)
    }

    fn topic_names(&self) -> Vec<String> {
        self.topics().into_iter().map(|t| t.name).collect()
    }
}
