//! Kafka framing: every request is a 4-byte big-endian size followed by that many bytes.

use bytes::{Buf, Bytes, BytesMut};

/// A frame the broker refuses; the connection is closed, as Kafka does.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("request size {size} is negative")]
    Negative { size: i32 },
    #[error("request size {size} exceeds the maximum of {max} bytes (--max-request-bytes)")]
    TooLarge { size: usize, max: usize },
}

/// Takes the next complete frame out of `buf`, or Ok(None) when more bytes are needed.
pub fn next_frame(buf: &mut BytesMut, max_size: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(FrameError::Negative { size });
    }
    let size = size as usize;
    if size > max_size {
        return Err(FrameError::TooLarge {
            size,
            max: max_size,
        });
    }
    if buf.len() < 4 + size {
        buf.reserve(4 + size - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_and_partial_frames_wait() {
        let mut buf = BytesMut::from(&[0, 0, 0, 2, 7, 8, 0, 0, 0, 3, 1][..]);
        assert_eq!(
            next_frame(&mut buf, 100).unwrap().unwrap(),
            Bytes::from_static(&[7, 8])
        );
        assert_eq!(next_frame(&mut buf, 100).unwrap(), None);
        buf.extend_from_slice(&[2, 3]);
        assert_eq!(
            next_frame(&mut buf, 100).unwrap().unwrap(),
            Bytes::from_static(&[1, 2, 3])
        );
    }

    #[test]
    fn oversized_and_negative_sizes_are_refused() {
        let mut buf = BytesMut::from(&[0, 0, 1, 0][..]);
        assert_eq!(
            next_frame(&mut buf, 10),
            Err(FrameError::TooLarge { size: 256, max: 10 })
        );
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            next_frame(&mut buf, 10),
            Err(FrameError::Negative { size: -1 })
        );
    }
}
