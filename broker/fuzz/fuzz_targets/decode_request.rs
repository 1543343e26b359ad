//! Any bytes as a request stream: framing and request decoding never panic, and a frame is either decoded or
//! refused with a reason.
#![no_main]

use busbar_broker::server::dispatch::{self, Decoded};
use busbar_broker::server::frame;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = frame::next_frame(&mut buf, 1 << 20) {
        match dispatch::decode(frame) {
            Ok(Decoded::Request(request)) => {
                let version = request.header.request_api_version;
                let (min, max) = dispatch::supported_versions(request.api_key).expect("decoded APIs are supported");
                assert!((min..=max).contains(&version));
            }
            Ok(Decoded::ApiVersionsFallback { .. }) | Err(_) => {}
        }
    }
});
