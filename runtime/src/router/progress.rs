//! Which offsets of a source partition may be committed.
//!
//! The router commits a partition only up to the lowest record that some matched target still owes: delivered,
//! dead-lettered or parked durably all count as settled. Records no rule matched settle at once.

use std::collections::BTreeMap;

/// Settlement bookkeeping for one source partition.
#[derive(Debug, Default)]
pub struct PartitionProgress {
    /// The offset after the last record handed to the router.
    next: i64,
    /// Records still owed by at least one target, with how many targets still owe them.
    pending: BTreeMap<i64, u32>,
    /// The last position committed to the bus.
    committed: Option<i64>,
}

impl PartitionProgress {
    /// Starts at `position`, the first offset the router will read.
    pub fn new(position: i64) -> Self {
        Self { next: position, pending: BTreeMap::new(), committed: Some(position) }
    }

    /// Registers that `offset` was read and is owed to `targets` targets (0 if no rule matched).
    pub fn dispatched(&mut self, offset: i64, targets: u32) {
        if targets > 0 {
            *self.pending.entry(offset).or_insert(0) += targets;
        }
        self.next = self.next.max(offset + 1);
    }

    /// One target settled `offset`. Settling an offset that is not owed is ignored (a replayed duplicate).
    pub fn settled(&mut self, offset: i64) {
        if let Some(count) = self.pending.get_mut(&offset) {
            *count -= 1;
            if *count == 0 {
                self.pending.remove(&offset);
            }
        }
    }

    /// The position that is safe to commit: the lowest owed offset, or everything read so far.
    pub fn committable(&self) -> i64 {
        self.pending.keys().next().copied().unwrap_or(self.next)
    }

    /// The position to commit now, if it moved since the last commit.
    pub fn to_commit(&self) -> Option<i64> {
        let position = self.committable();
        (self.committed != Some(position)).then_some(position)
    }

    /// Records that `position` was committed.
    pub fn mark_committed(&mut self, position: i64) {
        self.committed = Some(position);
    }

    /// Number of records still owed by some target.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_waits_for_the_lowest_owed_record() {
        let mut p = PartitionProgress::new(10);
        assert_eq!(p.to_commit(), None);
        p.dispatched(10, 2);
        p.dispatched(11, 0);
        p.dispatched(12, 1);
        assert_eq!(p.committable(), 10);
        p.settled(12);
        assert_eq!(p.committable(), 10, "12 settled but 10 still owed");
        p.settled(10);
        assert_eq!(p.committable(), 10, "one of two targets still owes 10");
        p.settled(10);
        assert_eq!(p.committable(), 13);
        assert_eq!(p.to_commit(), Some(13));
        p.mark_committed(13);
        assert_eq!(p.to_commit(), None);
    }

    #[test]
    fn unmatched_records_advance_the_position() {
        let mut p = PartitionProgress::new(0);
        for offset in 0..5 {
            p.dispatched(offset, 0);
        }
        assert_eq!(p.to_commit(), Some(5));
        assert_eq!(p.in_flight(), 0);
    }

    #[test]
    fn settling_unknown_offsets_is_harmless() {
        let mut p = PartitionProgress::new(0);
        p.dispatched(0, 1);
        p.settled(7);
        assert_eq!(p.committable(), 0);
    }
}
