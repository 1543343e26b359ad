//! Recovery of damaged data directories: torn tails, corrupt bytes, garbage appended, lost indexes. The log is
//! cut back to the last valid batch and never served with a gap or a corrupt batch.

mod common;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use busbar_broker::log::batch;
use busbar_broker::{FsyncPolicy, LogStore, StoreOptions, TopicConfig};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn open(dir: &Path) -> LogStore {
    LogStore::open(StoreOptions {
        data_dir: dir.to_owned(),
        fsync: FsyncPolicy::Os,
        // Small segments so the damage can hit a non-active segment too.
        defaults: TopicConfig {
            segment_bytes: 4096,
            ..TopicConfig::default()
        },
    })
    .unwrap()
}

fn batch_of(n: usize, tag: usize) -> Bytes {
    batch_at_time(n, tag, 1_000 + tag as i64)
}

/// `n` records keyed `key-<tag>`, every one stamped `timestamp`.
fn batch_at_time(n: usize, tag: usize, timestamp: i64) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32, // offset - sequence constant: one batch for all records
            timestamp,
            key: Some(Bytes::from(format!("key-{tag}"))),
            value: Some(Bytes::from(format!("value-{tag}-{i}-{}", "p".repeat(40)))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Writes 40 batches of 3 records (120 offsets) to t/0 and closes the store cleanly.
async fn fill(dir: &Path) {
    let store = open(dir);
    store.create_topic("t", 1, BTreeMap::new(), false).unwrap();
    for tag in 0..40 {
        store.produce("t", 0, batch_of(3, tag)).await.unwrap();
    }
    store.close().unwrap();
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.join("topics/t/0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

/// Reads the whole partition, checking every batch's CRC and that offsets are dense. Returns the next offset.
fn read_all(store: &LogStore) -> i64 {
    let mut next = 0;
    loop {
        let fetched = store.fetch("t", 0, next, 1 << 20).unwrap();
        if fetched.records.is_empty() {
            assert_eq!(next, fetched.high_watermark);
            return next;
        }
        let mut rest = fetched.records;
        while !rest.is_empty() {
            let header = batch::validate(&rest).expect("served batches are valid");
            assert_eq!(header.base_offset, next, "no gap, no overlap");
            next = header.last_offset() + 1;
            let _ = rest.split_to(header.total_len());
        }
    }
}

fn unclean(dir: &Path) {
    // Simulate a crash: no clean-shutdown marker, so every batch is checked on open.
    let _ = std::fs::remove_file(dir.join(".clean-shutdown"));
}

#[tokio::test]
async fn torn_tail_is_cut_to_the_last_whole_batch() {
    let dir = common::TempDir::new("torn");
    fill(dir.path()).await;
    let last = segments(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    unclean(dir.path());
    let store = open(dir.path());
    let next = read_all(&store);
    assert_eq!(
        next, 117,
        "the torn last batch (3 records) is gone, everything before it stays"
    );
    // Appends continue right after the cut.
    assert_eq!(
        store
            .produce("t", 0, batch_of(2, 99))
            .await
            .unwrap()
            .base_offset,
        117
    );
    assert_eq!(read_all(&store), 119);
}

#[tokio::test]
async fn corrupt_byte_in_an_older_segment_drops_it_and_everything_after() {
    let dir = common::TempDir::new("corrupt");
    fill(dir.path()).await;
    let all = segments(dir.path());
    assert!(
        all.len() >= 3,
        "expected several segments, got {}",
        all.len()
    );
    let victim = &all[1];
    let mut file = OpenOptions::new().write(true).open(victim).unwrap();
    file.seek(SeekFrom::Start(200)).unwrap();
    file.write_all(&[0xde, 0xad]).unwrap();
    drop(file);
    unclean(dir.path());
    let store = open(dir.path());
    let next = read_all(&store);
    let second_base: i64 = victim
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        next >= second_base && next < 120,
        "log cut inside the damaged segment (next offset {next})"
    );
    assert_eq!(
        segments(dir.path()).len(),
        2,
        "later segments are removed rather than served after a gap"
    );
}

#[tokio::test]
async fn garbage_after_the_last_batch_is_removed() {
    let dir = common::TempDir::new("garbage");
    fill(dir.path()).await;
    let last = segments(dir.path()).pop().unwrap();
    OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap()
        .write_all(&[0x42; 333])
        .unwrap();
    unclean(dir.path());
    let store = open(dir.path());
    assert_eq!(read_all(&store), 120);
}

#[tokio::test]
async fn lost_or_damaged_indexes_are_rebuilt_after_a_clean_shutdown() {
    let dir = common::TempDir::new("indexes");
    fill(dir.path()).await;
    for log in segments(dir.path()) {
        std::fs::remove_file(log.with_extension("index")).unwrap();
        std::fs::write(log.with_extension("timeindex"), [1, 2, 3]).unwrap();
    }
    let store = open(dir.path());
    assert_eq!(read_all(&store), 120);
    // Fetch from the middle and by timestamp still work with rebuilt indexes.
    let fetched = store.fetch("t", 0, 61, 1 << 20).unwrap();
    let header = batch::validate(&fetched.records).unwrap();
    assert!(header.base_offset <= 61 && header.last_offset() >= 61);
    let found = store
        .list_offsets("t", 0, busbar_broker::OffsetSpec::Timestamp(1_020))
        .unwrap();
    assert_eq!(found, Some((60, 1_020)));
}

#[tokio::test]
async fn restart_keeps_data_configs_and_deleted_records() {
    let dir = common::TempDir::new("restart");
    fill(dir.path()).await;
    {
        let store = open(dir.path());
        let mut overrides = BTreeMap::new();
        overrides.insert("retention.ms".to_owned(), "123456".to_owned());
        store.replace_config("t", overrides, false).unwrap();
        assert_eq!(store.delete_records("t", 0, 30).unwrap(), 30);
        store.close().unwrap();
    }
    let store = open(dir.path());
    let (config, overrides) = store.topic_config("t").unwrap();
    assert_eq!(config.retention_ms, 123_456);
    assert_eq!(overrides.len(), 1);
    let offsets = store.offsets("t", 0).unwrap();
    assert_eq!((offsets.log_start, offsets.high_watermark), (30, 120));
    assert!(
        store.fetch("t", 0, 29, 1024).is_err(),
        "records before the log start are gone"
    );
}

/// Fetch positions and lookups by time answer as a scan of every batch would, while appending (the recent
/// batches are found without reading the file), after a clean restart (indexes trusted) and after a crash
/// (indexes rebuilt). Batch timestamps go up and down, as producers' clocks do; the indexes are sparse.
#[tokio::test]
async fn lookups_by_offset_and_time_agree_with_a_scan() {
    fn timestamp_of(tag: usize) -> i64 {
        1_000 + ((tag * 37) % 101) as i64 // a permutation of 0..101: every batch has its own timestamp
    }
    fn check(store: &LogStore, batches: usize) {
        for offset in 0..(batches * 3) as i64 {
            let fetched = store.fetch("t", 0, offset, 1).unwrap();
            let header = batch::validate(&fetched.records).unwrap();
            assert!(
                header.base_offset <= offset && offset <= header.last_offset(),
                "fetch at {offset}"
            );
        }
        for wanted in 990..1_110 {
            let expected = (0..batches)
                .find(|&tag| timestamp_of(tag) >= wanted)
                .map(|tag| ((tag * 3) as i64, timestamp_of(tag)));
            let found = store
                .list_offsets("t", 0, busbar_broker::OffsetSpec::Timestamp(wanted))
                .unwrap();
            assert_eq!(found, expected, "first offset at or after {wanted}");
        }
        let max = (0..batches).max_by_key(|&tag| timestamp_of(tag)).unwrap();
        let found = store
            .list_offsets("t", 0, busbar_broker::OffsetSpec::MaxTimestamp)
            .unwrap();
        assert_eq!(found, Some(((max * 3) as i64, timestamp_of(max))));
    }
    let dir = common::TempDir::new("lookups");
    let store = open(dir.path());
    store.create_topic("t", 1, BTreeMap::new(), false).unwrap();
    let batches = 150;
    for tag in 0..batches {
        store
            .produce("t", 0, batch_at_time(3, tag, timestamp_of(tag)))
            .await
            .unwrap();
        if tag % 50 == 49 {
            check(&store, tag + 1);
        }
    }
    store.close().unwrap();
    drop(store);
    let store = open(dir.path());
    check(&store, batches);
    store.close().unwrap();
    drop(store);
    unclean(dir.path());
    let store = open(dir.path());
    check(&store, batches);
}
