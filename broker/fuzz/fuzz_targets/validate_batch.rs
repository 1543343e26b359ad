//! Any bytes as a produce payload: batch validation never panics, accepted batches tile the input exactly and
//! re-validate after their base offset is rewritten (what the broker stores).
#![no_main]

use busbar_broker::log::batch;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batches) = batch::split_batches(Bytes::copy_from_slice(data)) {
        let total: usize = batches.iter().map(|(h, b)| {
            assert_eq!(h.total_len(), b.len());
            b.len()
        }).sum();
        assert_eq!(total, data.len());
        for (header, bytes) in &batches {
            let mut stamped = BytesMut::new();
            batch::with_base_offset(bytes, 1234, &mut stamped);
            let again = batch::validate(&stamped).expect("stamping keeps the CRC valid");
            assert_eq!(again.base_offset, 1234);
            assert_eq!(again.record_count, header.record_count);
        }
    }
    let whole = batch::whole_batches_len(data);
    assert!(whole <= data.len());
});
