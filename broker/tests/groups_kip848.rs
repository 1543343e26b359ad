//! The KIP-848 consumer protocol (`group.protocol=consumer`) with librdkafka: server-side assignment while
//! members join and leave mid-stream.

mod groups_support;

use std::sync::Arc;
use std::time::Duration;

use groups_support::{Ledger, Worker, create_topic, produce, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_members_join_and_leave_mid_stream() {
    let dir = std::env::temp_dir().join(format!("busbar-groups-kip848-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let broker = groups_support::start(&dir).await;
    let addr = broker.local_addr();
    let extra = &[("group.protocol", "consumer")];
    create_topic(addr, "k", 6).await;
    produce(addr, "k", 6, 0..1200).await;
    let ledger = Arc::new(Ledger::default());
    let w0 = Worker::start(0, addr, "kip848", "k", extra, ledger.clone());
    let w1 = Worker::start(1, addr, "kip848", "k", extra, ledger.clone());
    let w2 = Worker::start(2, addr, "kip848", "k", extra, ledger.clone());
    ledger.wait_exact_cover(6, Duration::from_secs(30));
    produce(addr, "k", 6, 1200..2400).await;
    w1.stop();
    ledger.wait_exact_cover(6, Duration::from_secs(30));
    let w3 = Worker::start(3, addr, "kip848", "k", extra, ledger.clone());
    produce(addr, "k", 6, 2400..3600).await;
    wait_until(Duration::from_secs(60), "all records processed", || {
        ledger.processed_count() >= 3600
    });
    // KIP-848 rebalances incrementally (revoke, then assign on a later heartbeat): wait for it to converge.
    wait_until(
        Duration::from_secs(30),
        "the uniform assignor balances 3 members x 2 partitions",
        || {
            let cover = ledger.wait_exact_cover(6, Duration::from_secs(30));
            cover.len() == 3 && cover.values().all(|p| p.len() == 2)
        },
    );
    let cover = ledger.wait_exact_cover(6, Duration::from_secs(30));
    assert_eq!(cover.len(), 3, "{cover:?}");
    assert!(
        cover.values().all(|p| p.len() == 2),
        "the uniform assignor balances: {cover:?}"
    );
    ledger.assert_no_overlap();
    ledger.assert_exactly_once(3600, 6);
    for w in [w0, w2, w3] {
        w.stop();
    }
    broker.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
