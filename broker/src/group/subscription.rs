//! The `consumer` embedded protocol of classic groups: the subscription a member sends in JoinGroup metadata
//! and the assignment the leader hands out through SyncGroup (Kafka's ConsumerProtocolSubscription and
//! ConsumerProtocolAssignment). Every version starts with the same fields, which are all the coordinator
//! reads; later fields (user data, owned partitions, rack) are ignored.

use bytes::{BufMut, Bytes, BytesMut};

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Some(h)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.i16()?;
        if n < 0 {
            return None;
        }
        String::from_utf8(self.take(n as usize)?.to_vec()).ok()
    }
    fn count(&mut self) -> Option<usize> {
        let n = self.i32()?;
        // A count can never exceed the bytes left (every element takes at least two); refuse garbage early.
        if n < 0 || n as usize > self.0.len() {
            return None;
        }
        Some(n as usize)
    }
}

/// The topics of a ConsumerProtocolSubscription, or None if the bytes are not one.
pub fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader(metadata);
    r.i16()?;
    (0..r.count()?).map(|_| r.string()).collect()
}

/// The partitions of a ConsumerProtocolAssignment, or None if the bytes are not one.
pub fn assigned_partitions(assignment: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    let mut r = Reader(assignment);
    r.i16()?;
    let topics = r.count()?;
    let mut out = Vec::with_capacity(topics);
    for _ in 0..topics {
        let topic = r.string()?;
        let parts = (0..r.count()?)
            .map(|_| r.i32())
            .collect::<Option<Vec<i32>>>()?;
        out.push((topic, parts));
    }
    Some(out)
}

fn put_string(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

/// A version 0 ConsumerProtocolSubscription (used to describe KIP-848 members through DescribeGroups).
pub fn encode_subscription(topics: &[String]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(topics.len() as i32);
    for t in topics {
        put_string(&mut b, t);
    }
    b.put_i32(-1);
    b.freeze()
}

/// A version 0 ConsumerProtocolAssignment.
pub fn encode_assignment(partitions: &[(String, Vec<i32>)]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(partitions.len() as i32);
    for (t, parts) in partitions {
        put_string(&mut b, t);
        b.put_i32(parts.len() as i32);
        for p in parts {
            b.put_i32(*p);
        }
    }
    b.put_i32(-1);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let s = encode_subscription(&["a".into(), "orders".into()]);
        assert_eq!(
            subscribed_topics(&s),
            Some(vec!["a".to_string(), "orders".to_string()])
        );
        let a = encode_assignment(&[("orders".into(), vec![0, 3, 5])]);
        assert_eq!(
            assigned_partitions(&a),
            Some(vec![("orders".to_string(), vec![0, 3, 5])])
        );
        assert_eq!(subscribed_topics(b"\x00"), None);
        assert_eq!(assigned_partitions(b"\x00\x00\x7f\xff\xff\xff"), None);
    }

    #[test]
    fn reads_a_librdkafka_v3_subscription() {
        // Version 3 adds owned partitions, generation and rack after the topics; they are skipped.
        let mut b = BytesMut::new();
        b.put_i16(3);
        b.put_i32(1);
        put_string(&mut b, "t");
        b.put_i32(-1); // user data
        b.put_i32(0); // owned partitions
        b.put_i32(7); // generation
        b.put_i16(-1); // rack
        assert_eq!(subscribed_topics(&b), Some(vec!["t".to_string()]));
    }
}
