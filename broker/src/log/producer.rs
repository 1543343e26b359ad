//! Idempotent producers: per-partition producer state, checked on every append.
//!
//! Kafka's rules (`ProducerStateManager`, `ProducerAppendInfo`): for each producer id the partition keeps the
//! current epoch and the sequence ranges and offsets of the last five batches it wrote.
//! - A batch whose epoch and sequence range match one of those five is a retry of a batch already written: it
//!   is not appended again, and the producer gets the original offset (success).
//! - An epoch older than the current one is refused with INVALID_PRODUCER_EPOCH (a newer instance took over).
//! - A newer epoch must start at sequence 0; the same epoch must continue at the last sequence + 1 (wrapping
//!   from `i32::MAX` to 0). Anything else is OUT_OF_ORDER_SEQUENCE_NUMBER.
//! - A producer the partition knows nothing of (new, or its batches are gone) may start at any sequence.
//!
//! The state is rebuilt on start by replaying the batch headers of the log's tail ([`ProducerStates::observe`]),
//! so a producer retrying across a broker restart still gets its duplicate answered with the original offset.

use std::collections::{HashMap, VecDeque};

use super::batch::BatchHeader;

/// Batches remembered per producer: Kafka's `max.in.flight.requests.per.connection` limit for idempotence.
pub const CACHED_BATCHES: usize = 5;

/// Where a batch of one producer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// What a partition knows of one producer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// The last batches written in `epoch`, oldest first, at most [`CACHED_BATCHES`].
    pub batches: VecDeque<BatchMeta>,
    /// Wall-clock time of the producer's last write, or of the restart that recovered it (expiry counts from
    /// it). Kafka uses the batch's record timestamp instead; the broker's clock keeps a producer that sends old
    /// timestamps (a replay) from expiring while it writes.
    pub last_write_ms: i64,
}

impl ProducerEntry {
    fn push(&mut self, epoch: i16, meta: BatchMeta) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
        if self.batches.len() == CACHED_BATCHES {
            self.batches.pop_front();
        }
        self.batches.push_back(meta);
    }

    fn duplicate_of(&self, header: &BatchHeader) -> Option<BatchMeta> {
        if header.producer_epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == header.base_sequence && b.last_seq == header.last_sequence())
            .copied()
    }
}

/// Why an idempotent batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error(
        "producer {producer_id} sent epoch {epoch}, older than its current epoch {current}: \
         a newer instance of this producer has taken over"
    )]
    StaleEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error(
        "producer {producer_id} (epoch {epoch}) sent a batch starting at sequence {got}; expected {expected}"
    )]
    OutOfOrder {
        producer_id: i64,
        epoch: i16,
        got: i32,
        expected: i32,
    },
}

/// The outcome of checking the batches of one produce request against the producer state.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// Append them, then [`ProducerStates::apply`] these entries.
    Append(Vec<(i64, ProducerEntry)>),
    /// A retry of a batch already in the log: append nothing, answer with its offsets.
    Duplicate(BatchMeta),
}

/// The producer state of one partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Checks batches that would be appended with the first at `next_offset`. Nothing changes until
    /// [`ProducerStates::apply`], so a failed write leaves the state as it was.
    pub fn check(
        &self,
        batches: &[BatchHeader],
        mut next_offset: i64,
    ) -> Result<Checked, SequenceError> {
        let mut updated: Vec<(i64, ProducerEntry)> = Vec::new();
        for h in batches {
            let offset = next_offset;
            next_offset += h.offset_count();
            if !h.has_producer_id() || h.is_control() {
                continue;
            }
            let pid = h.producer_id;
            let slot = match updated.iter().position(|(id, _)| *id == pid) {
                Some(i) => i,
                None => {
                    updated.push((pid, self.producers.get(&pid).cloned().unwrap_or_default()));
                    updated.len() - 1
                }
            };
            let known = self.producers.contains_key(&pid) || !updated[slot].1.batches.is_empty();
            let entry = &mut updated[slot].1;
            if known {
                if let Some(dup) = entry.duplicate_of(h) {
                    return Ok(Checked::Duplicate(dup));
                }
                check_sequence(pid, entry, h)?;
            }
            entry.push(
                h.producer_epoch,
                BatchMeta {
                    first_seq: h.base_sequence,
                    last_seq: h.last_sequence(),
                    base_offset: offset,
                    last_offset: offset + i64::from(h.last_offset_delta),
                },
            );
        }
        Ok(Checked::Append(updated))
    }

    /// Records the entries of a successful [`ProducerStates::check`], written at `now_ms`.
    pub fn apply(&mut self, updated: Vec<(i64, ProducerEntry)>, now_ms: i64) {
        self.producers
            .extend(updated.into_iter().map(|(id, mut e)| {
                e.last_write_ms = now_ms;
                (id, e)
            }));
    }

    /// Replays a batch already in the log (recovery at `now_ms`): no checks, the log is the truth.
    pub fn observe(&mut self, h: &BatchHeader, now_ms: i64) {
        if !h.has_producer_id() || h.is_control() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        entry.last_write_ms = now_ms;
        if h.producer_epoch < entry.epoch {
            return;
        }
        entry.push(
            h.producer_epoch,
            BatchMeta {
                first_seq: h.base_sequence,
                last_seq: h.last_sequence(),
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
            },
        );
    }

    /// Forgets producers whose last batch is older than `max_age_ms` (Kafka's `producer.id.expiration.ms`):
    /// without this, every producer that ever wrote to the partition would stay in memory. A forgotten producer
    /// is unknown again, so its next batch is accepted at any sequence. Returns how many were dropped.
    pub fn expire(&mut self, now_ms: i64, max_age_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_write_ms) < max_age_ms);
        before - self.producers.len()
    }
}

fn check_sequence(pid: i64, entry: &ProducerEntry, h: &BatchHeader) -> Result<(), SequenceError> {
    let seq = h.base_sequence;
    if h.producer_epoch < entry.epoch {
        return Err(SequenceError::StaleEpoch {
            producer_id: pid,
            epoch: h.producer_epoch,
            current: entry.epoch,
        });
    }
    if h.producer_epoch > entry.epoch {
        return if seq == 0 {
            Ok(())
        } else {
            Err(SequenceError::OutOfOrder {
                producer_id: pid,
                epoch: h.producer_epoch,
                got: seq,
                expected: 0,
            })
        };
    }
    let Some(last) = entry.batches.back() else {
        return Ok(());
    };
    let expected = if last.last_seq == i32::MAX {
        0
    } else {
        last.last_seq + 1
    };
    if seq == expected {
        Ok(())
    } else {
        Err(SequenceError::OutOfOrder {
            producer_id: pid,
            epoch: h.producer_epoch,
            got: seq,
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 100,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: records,
        }
    }

    fn append(s: &mut ProducerStates, h: BatchHeader, at: i64) -> Result<Checked, SequenceError> {
        append_at(s, h, at, 0)
    }

    fn append_at(
        s: &mut ProducerStates,
        h: BatchHeader,
        at: i64,
        now_ms: i64,
    ) -> Result<Checked, SequenceError> {
        let c = s.check(&[h], at)?;
        if let Checked::Append(u) = &c {
            s.apply(u.clone(), now_ms);
        }
        Ok(c)
    }

    #[test]
    fn in_order_batches_append_and_a_retry_gets_the_original_offsets() {
        let mut s = ProducerStates::default();
        assert!(matches!(
            append(&mut s, batch(7, 0, 0, 3), 10),
            Ok(Checked::Append(_))
        ));
        assert!(matches!(
            append(&mut s, batch(7, 0, 3, 2), 13),
            Ok(Checked::Append(_))
        ));
        let dup = append(&mut s, batch(7, 0, 0, 3), 15).unwrap();
        assert_eq!(
            dup,
            Checked::Duplicate(BatchMeta {
                first_seq: 0,
                last_seq: 2,
                base_offset: 10,
                last_offset: 12
            })
        );
    }

    #[test]
    fn gaps_and_old_sequences_are_out_of_order() {
        let mut s = ProducerStates::default();
        append(&mut s, batch(1, 0, 0, 5), 0).unwrap();
        assert_eq!(
            append(&mut s, batch(1, 0, 6, 1), 5),
            Err(SequenceError::OutOfOrder {
                producer_id: 1,
                epoch: 0,
                got: 6,
                expected: 5
            })
        );
        // Overlapping an earlier batch without matching it exactly is not a retry.
        assert!(matches!(
            append(&mut s, batch(1, 0, 2, 3), 5),
            Err(SequenceError::OutOfOrder { .. })
        ));
        // Only the last five batches are remembered: an older retry cannot be told apart from a gap.
        for i in 1..=5 {
            append(&mut s, batch(1, 0, i * 5, 5), i64::from(i) * 5).unwrap();
        }
        assert!(matches!(
            append(&mut s, batch(1, 0, 0, 5), 30),
            Err(SequenceError::OutOfOrder { .. })
        ));
        assert!(matches!(
            append(&mut s, batch(1, 0, 5, 5), 30),
            Ok(Checked::Duplicate(_))
        ));
    }

    #[test]
    fn epochs_fence_and_restart_sequences() {
        let mut s = ProducerStates::default();
        append(&mut s, batch(1, 3, 0, 1), 0).unwrap();
        assert_eq!(
            append(&mut s, batch(1, 2, 1, 1), 1),
            Err(SequenceError::StaleEpoch {
                producer_id: 1,
                epoch: 2,
                current: 3
            })
        );
        assert!(matches!(
            append(&mut s, batch(1, 4, 5, 1), 1),
            Err(SequenceError::OutOfOrder { expected: 0, .. })
        ));
        assert!(matches!(
            append(&mut s, batch(1, 4, 0, 1), 1),
            Ok(Checked::Append(_))
        ));
        assert_eq!(s.get(1).unwrap().epoch, 4);
    }

    #[test]
    fn unknown_producers_start_anywhere_and_sequences_wrap() {
        let mut s = ProducerStates::default();
        append(&mut s, batch(9, 0, i32::MAX - 1, 2), 0).unwrap();
        assert!(matches!(
            append(&mut s, batch(9, 0, 0, 1), 2),
            Ok(Checked::Append(_))
        ));
        // Batches without a producer id are never checked.
        assert!(matches!(
            append(&mut s, batch(-1, -1, -1, 4), 3),
            Ok(Checked::Append(_))
        ));
    }

    #[test]
    fn one_request_with_two_batches_of_one_producer_is_checked_in_order() {
        let s = ProducerStates::default();
        let ok = s.check(&[batch(1, 0, 0, 2), batch(1, 0, 2, 2)], 0).unwrap();
        let Checked::Append(u) = ok else {
            panic!("appended")
        };
        assert_eq!(u[0].1.batches.len(), 2);
        assert!(s.check(&[batch(1, 0, 0, 2), batch(1, 0, 3, 2)], 0).is_err());
    }

    #[test]
    fn idle_producers_expire() {
        let mut s = ProducerStates::default();
        append_at(&mut s, batch(1, 0, 0, 1), 0, 1_000).unwrap();
        append_at(&mut s, batch(2, 0, 0, 1), 1, 90_000).unwrap();
        assert_eq!(s.expire(100_000, 50_000), 1);
        assert!(s.get(1).is_none() && s.get(2).is_some());
        // The expired producer is unknown again: any sequence is accepted.
        assert!(matches!(
            append(&mut s, batch(1, 0, 9, 1), 2),
            Ok(Checked::Append(_))
        ));
    }

    #[test]
    fn recovery_replays_the_log() {
        let mut s = ProducerStates::default();
        let mut h = batch(4, 1, 10, 2);
        h.base_offset = 100;
        s.observe(&h, 0);
        let dup = s.check(&[batch(4, 1, 10, 2)], 200).unwrap();
        assert_eq!(
            dup,
            Checked::Duplicate(BatchMeta {
                first_seq: 10,
                last_seq: 11,
                base_offset: 100,
                last_offset: 101
            })
        );
        assert!(s.check(&[batch(4, 1, 12, 1)], 200).is_ok());
    }
}
