//! The event envelope every rule sees: EventBridge's `version, id, source, detail-type, time, account, region,
//! resources, detail`. Records written by plain Kafka producers are wrapped so rules can match them too.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::bus::Fetched;

/// The fields that make a JSON object an envelope rather than a plain payload.
const REQUIRED: [&str; 3] = ["source", "detail-type", "detail"];

/// Whether `value` is already an envelope.
pub fn is_envelope(value: &Value) -> bool {
    value.as_object().is_some_and(|o| REQUIRED.iter().all(|k| o.contains_key(*k)))
}

/// Turns a bus record into the envelope rules match against.
///
/// A record whose value is an envelope is used as it is (missing optional fields are filled). Anything else is
/// wrapped: `source = "kafka:<topic>"`, `detail-type = "kafka.record"`, `detail` = the parsed JSON value, or the
/// value as a string when it is not JSON. The id is derived from topic, partition and offset, so a replayed
/// record keeps its id and targets can de-duplicate.
pub fn from_record(topic: &str, fetched: &Fetched) -> Value {
    from_record_keeping_bytes(topic, fetched).0
}

/// [`from_record`], plus the record's bytes when they already are that envelope (every field present, nothing
/// filled in), so a target that takes the whole event can be handed them without writing the value out again.
pub fn from_record_keeping_bytes(topic: &str, fetched: &Fetched) -> (Value, Option<bytes::Bytes>) {
    let record = &fetched.record;
    let parsed = record.value.as_deref().map(serde_json::from_slice::<Value>);
    // Only needed when the record has no `time` of its own.
    let time = || rfc3339(record.timestamp_ms.unwrap_or_else(now_ms));
    match parsed {
        Some(Ok(value)) if is_envelope(&value) => {
            let mut object = match value {
                Value::Object(o) => o,
                _ => unreachable!("is_envelope checked it is an object"),
            };
            let filled = [
                fill(&mut object, "version", || Value::from("0")),
                fill(&mut object, "id", || Value::from(record_id(topic, fetched))),
                fill(&mut object, "time", || Value::from(time())),
                fill(&mut object, "account", || Value::from("")),
                fill(&mut object, "region", || Value::from("")),
                fill(&mut object, "resources", || Value::Array(Vec::new())),
            ];
            let unchanged = !filled.contains(&true);
            (Value::Object(object), if unchanged { record.value.clone() } else { None })
        }
        parsed => {
            let detail = match parsed {
                Some(Ok(value)) => value,
                Some(Err(_)) => {
                    Value::from(String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned())
                }
                None => Value::Null,
            };
            let mut object = Map::with_capacity(9);
            object.insert("version".into(), Value::from("0"));
            object.insert("id".into(), Value::from(record_id(topic, fetched)));
            object.insert("source".into(), Value::from(format!("kafka:{topic}")));
            object.insert("detail-type".into(), Value::from("kafka.record"));
            object.insert("time".into(), Value::from(time()));
            object.insert("account".into(), Value::from(""));
            object.insert("region".into(), Value::from(""));
            object.insert("resources".into(), Value::Array(Vec::new()));
            object.insert("detail".into(), detail);
            (Value::Object(object), None)
        }
    }
}

/// A new envelope for an event a source connector produced, serialised, with `detail` taken from `payload`: JSON
/// is checked and copied as it is (not parsed into a value and written again, which costs several times more for a 1 KB event);
/// anything else becomes a JSON string.
pub fn new_event_json(source: &str, detail_type: &str, payload: &[u8], id: Option<&str>, time: Option<&str>) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Envelope<'a, D: serde::Serialize> {
        version: &'a str,
        id: &'a str,
        source: &'a str,
        #[serde(rename = "detail-type")]
        detail_type: &'a str,
        time: &'a str,
        account: &'a str,
        region: &'a str,
        resources: [&'a str; 0],
        detail: D,
    }
    let generated;
    let id = match id {
        Some(id) => id,
        None => {
            generated = uuid::Uuid::new_v4().to_string();
            &generated
        }
    };
    let stamped;
    let time = match time {
        Some(time) => time,
        None => {
            stamped = rfc3339(now_ms());
            &stamped
        }
    };
    fn write<D: serde::Serialize>(fields: [&str; 4], detail: D) -> serde_json::Result<Vec<u8>> {
        let [id, source, detail_type, time] = fields;
        let envelope =
            Envelope { version: "0", id, source, detail_type, time, account: "", region: "", resources: [], detail };
        serde_json::to_vec(&envelope)
    }
    let fields = [id, source, detail_type, time];
    let written = match serde_json::from_slice::<&serde_json::value::RawValue>(payload) {
        Ok(raw) => write(fields, raw),
        Err(_) => write(fields, String::from_utf8_lossy(payload)),
    };
    written.expect("an envelope of strings and checked JSON serialises")
}

/// Inserts `key` when it is missing; true if it did.
fn fill(object: &mut Map<String, Value>, key: &str, value: impl FnOnce() -> Value) -> bool {
    if object.contains_key(key) {
        return false;
    }
    object.insert(key.to_owned(), value());
    true
}

/// A stable UUID-shaped id for a record position (UUID v5 in a busbar namespace).
fn record_id(topic: &str, fetched: &Fetched) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6b7e_1f0e_b05b_4a2f_9c1d_2f3a_4b5c_6d7e);
    let name = format!("{topic}/{}/{}", fetched.partition, fetched.offset);
    uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// RFC 3339 in UTC with second precision, as EventBridge writes `time`.
pub fn rfc3339(ms: i64) -> String {
    let time = SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::bus::Record;

    #[test]
    fn new_event_json_wraps_the_payload_in_a_full_envelope() {
        let payload = br#"{ "id": 7, "note": "caf\u00e9 \"quoted\"", "items": [1, 2.5e1, {"a": null}] }"#;
        let bytes = new_event_json("shop", "order", payload, Some("e-1"), Some("2026-01-01T00:00:00Z"));
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        let detail: Value = serde_json::from_slice(payload).unwrap();
        let want = serde_json::json!({
            "version": "0", "id": "e-1", "source": "shop", "detail-type": "order", "time": "2026-01-01T00:00:00Z",
            "account": "", "region": "", "resources": [], "detail": detail,
        });
        assert_eq!(parsed, want);
        assert!(is_envelope(&parsed));
        // Not JSON: the payload becomes a string; missing id and time are filled.
        let bytes = new_event_json("shop", "raw", b"plain {text", None, None);
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed["detail"], "plain {text");
        assert_eq!(parsed["id"].as_str().unwrap().len(), 36);
        assert!(parsed["time"].as_str().unwrap().ends_with('Z'));
        // A JSON value followed by more text is not JSON either.
        let parsed: Value = serde_json::from_slice(&new_event_json("s", "t", b"{} {}", None, None)).unwrap();
        assert_eq!(parsed["detail"], "{} {}");
    }

    fn fetched(value: &[u8]) -> Fetched {
        Fetched {
            partition: 1,
            offset: 42,
            record: Record {
                value: Some(Bytes::copy_from_slice(value)),
                timestamp_ms: Some(1_700_000_000_000),
                ..Record::default()
            },
        }
    }

    #[test]
    fn plain_json_is_wrapped() {
        let event = from_record("orders", &fetched(br#"{"total": 5}"#));
        assert_eq!(event["source"], "kafka:orders");
        assert_eq!(event["detail-type"], "kafka.record");
        assert_eq!(event["detail"]["total"], 5);
        assert_eq!(event["time"], "2023-11-14T22:13:20Z");
        assert_eq!(event["id"], from_record("orders", &fetched(b"other"))["id"], "id depends on position only");
    }

    #[test]
    fn non_json_becomes_a_string_detail() {
        let event = from_record("logs", &fetched(b"plain text"));
        assert_eq!(event["detail"], "plain text");
    }

    #[test]
    fn envelopes_pass_through_with_defaults_filled() {
        let event = from_record("bus", &fetched(br#"{"source":"shop","detail-type":"order.created","detail":{},"id":"x"}"#));
        assert_eq!(event["source"], "shop");
        assert_eq!(event["id"], "x");
        assert_eq!(event["resources"], Value::Array(vec![]));
        assert_eq!(event["version"], "0");
    }
}
