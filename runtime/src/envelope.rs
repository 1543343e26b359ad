//! The event envelope every rule sees: EventBridge's `version, id, source, detail-type, time, account, region,
//! resources, detail`. Records written by plain Kafka producers are wrapped so rules can match them too.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use serde_json::{Map, Value};

use crate::bus::Fetched;

/// The fields that make a JSON object an envelope rather than a plain payload.
const REQUIRED: [&str; 3] = ["source", "detail-type", "detail"];

/// Whether `value` is already an envelope.
pub fn is_envelope(value: &Value) -> bool {
    value.as_object().is_some_and(|o| REQUIRED.iter().all(|k| o.contains_key(*k)))
}

/// Turns a bus record into the envelope rules match against, as a value (see [`Envelope::from_record`]).
pub fn from_record(topic: &str, fetched: &Fetched) -> Value {
    Envelope::from_record(topic, fetched).into_value()
}

/// A routed event: the envelope rules see, held as its JSON bytes, as a parsed value, or both, each made when
/// first needed. A record that already is a complete envelope is matched from its bytes by the rules' scanner,
/// handed to targets as those bytes, and parsed into a value only for a target whose input reads from the event
/// (an input path or transformer), once for all of them.
#[derive(Debug)]
pub struct Envelope {
    json: OnceLock<Bytes>,
    value: OnceLock<Value>,
    id: String,
}

impl Envelope {
    /// Turns a bus record into the envelope rules match against.
    ///
    /// A record whose value is an envelope is used as it is (missing optional fields are filled). Anything else
    /// is wrapped: `source = "kafka:<topic>"`, `detail-type = "kafka.record"`, `detail` = the parsed JSON value,
    /// or the value as a string when it is not JSON. The id is derived from topic, partition and offset, so a
    /// replayed record keeps its id and targets can de-duplicate.
    pub fn from_record(topic: &str, fetched: &Fetched) -> Self {
        let record = &fetched.record;
        if let Some(bytes) = &record.value
            && let Some(id) = complete_envelope_id(bytes)
        {
            return Self { json: OnceLock::from(bytes.clone()), value: OnceLock::new(), id };
        }
        let parsed = record.value.as_deref().map(serde_json::from_slice::<Value>);
        // Only needed when the record has no `time` of its own.
        let time = || rfc3339(record.timestamp_ms.unwrap_or_else(now_ms));
        let value = match parsed {
            Some(Ok(value)) if is_envelope(&value) => {
                let mut object = match value {
                    Value::Object(o) => o,
                    _ => unreachable!("is_envelope checked it is an object"),
                };
                fill(&mut object, "version", || Value::from("0"));
                fill(&mut object, "id", || Value::from(record_id(topic, fetched)));
                fill(&mut object, "time", || Value::from(time()));
                fill(&mut object, "account", || Value::from(""));
                fill(&mut object, "region", || Value::from(""));
                fill(&mut object, "resources", || Value::Array(Vec::new()));
                Value::Object(object)
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
                Value::Object(object)
            }
        };
        Self::from_value(value)
    }

    /// An event that was written out whole (parked or dead-lettered): kept as bytes when it is a complete
    /// envelope, parsed otherwise; `None` when it is not JSON.
    pub fn from_json(bytes: Bytes) -> Option<Self> {
        match complete_envelope_id(&bytes) {
            Some(id) => Some(Self { json: OnceLock::from(bytes), value: OnceLock::new(), id }),
            None => serde_json::from_slice(&bytes).ok().map(Self::from_value),
        }
    }

    /// An envelope already parsed (re-driven or tested events).
    pub fn from_value(value: Value) -> Self {
        let id = value.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        Self { json: OnceLock::new(), value: OnceLock::from(value), id }
    }

    /// The event's `id` (empty when it is not a string).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The envelope's JSON bytes, when it came as bytes (then they are what rules match against).
    pub fn bytes(&self) -> Option<&Bytes> {
        self.json.get()
    }

    /// The whole event as JSON: the record's own bytes when it was a complete envelope, else written out once.
    pub fn json(&self) -> Bytes {
        self.json.get_or_init(|| Bytes::from(serde_json::to_vec(self.value()).unwrap_or_default())).clone()
    }

    /// The length of [`Envelope::json`] (which it writes out once, if the event did not come as bytes).
    pub fn json_len(&self) -> usize {
        self.json.get().map_or_else(|| self.json().len(), Bytes::len)
    }

    /// The event as a value, parsed on first use.
    pub fn value(&self) -> &Value {
        // Bytes are kept only once they proved to be a JSON object (`complete_envelope_id`), so this parse
        // cannot fail.
        self.value.get_or_init(|| self.json.get().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default())
    }

    pub fn into_value(self) -> Value {
        self.value();
        self.value.into_inner().unwrap_or_default()
    }
}

/// The id of an event whose JSON is an envelope with every field present (`version, id, source, detail-type,
/// time, account, region, resources, detail`) and a string id: then its bytes are the envelope exactly as rules
/// must see it, and need not be parsed into a value to be matched or delivered. Checked without building a
/// value (values are skipped, not collected); `None` for anything else, including invalid JSON and repeated
/// fields, which take the general path.
fn complete_envelope_id(bytes: &[u8]) -> Option<String> {
    use serde::de::IgnoredAny;
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        version: Option<IgnoredAny>,
        #[serde(borrow)]
        id: Option<std::borrow::Cow<'a, str>>,
        source: Option<IgnoredAny>,
        #[serde(rename = "detail-type")]
        detail_type: Option<IgnoredAny>,
        time: Option<IgnoredAny>,
        account: Option<IgnoredAny>,
        region: Option<IgnoredAny>,
        resources: Option<IgnoredAny>,
        detail: Option<IgnoredAny>,
    }
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let head: Head<'_> = serde_json::from_slice(bytes).ok()?;
    let complete = head.version.is_some()
        && head.source.is_some()
        && head.detail_type.is_some()
        && head.time.is_some()
        && head.account.is_some()
        && head.region.is_some()
        && head.resources.is_some()
        && head.detail.is_some();
    complete.then(|| head.id.map(std::borrow::Cow::into_owned)).flatten()
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

/// Inserts `key` when it is missing.
fn fill(object: &mut Map<String, Value>, key: &str, value: impl FnOnce() -> Value) {
    if !object.contains_key(key) {
        object.insert(key.to_owned(), value());
    }
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
    fn a_complete_envelope_is_kept_as_its_bytes_and_parsed_only_when_asked() {
        let bytes = new_event_json("shop", "order", br#"{"total": 12, "note": "caf\u00e9"}"#, Some("e-7"), None);
        let event = Envelope::from_record("bus", &fetched(&bytes));
        assert_eq!(event.bytes().map(|b| &b[..]), Some(&bytes[..]), "matched and delivered from the record's bytes");
        assert_eq!(event.id(), "e-7");
        assert!(event.value.get().is_none(), "not parsed by routing alone");
        assert_eq!(event.value()["detail"]["note"], "café");
        assert_eq!(&event.json()[..], &bytes[..]);
        assert_eq!(event.into_value(), serde_json::from_slice::<Value>(&bytes).unwrap());
    }

    #[test]
    fn incomplete_or_unusual_envelopes_take_the_general_path() {
        // A missing field is filled in, so the bytes are not the envelope rules see.
        let event = Envelope::from_record("bus", &fetched(br#"{"source":"s","detail-type":"t","detail":{},"id":"x"}"#));
        assert!(event.bytes().is_none());
        assert_eq!(event.id(), "x");
        assert_eq!(event.value()["account"], "");
        // Every field, but a numeric id; and a field given twice.
        let numeric = br#"{"version":"0","id":5,"source":"s","detail-type":"t","time":"2026-01-01T00:00:00Z","account":"","region":"","resources":[],"detail":{}}"#;
        let event = Envelope::from_record("bus", &fetched(numeric));
        assert!(event.bytes().is_none());
        assert_eq!((event.id(), &event.value()["id"]), ("", &Value::from(5)));
        let twice = br#"{"version":"0","id":"a","source":"s","source":"u","detail-type":"t","time":"","account":"","region":"","resources":[],"detail":{}}"#;
        let event = Envelope::from_record("bus", &fetched(twice));
        assert!(event.bytes().is_none());
        assert_eq!(event.value()["source"], "u", "the last of a repeated field wins, as serde_json reads it");
        // Not an object at all, or not JSON: wrapped.
        assert_eq!(Envelope::from_record("t", &fetched(b"[1]")).value()["detail"], serde_json::json!([1]));
        assert_eq!(Envelope::from_record("t", &fetched(b"{\"a\":")).value()["detail"], "{\"a\":");
    }

    #[test]
    fn written_out_events_read_back() {
        let bytes = Bytes::from(new_event_json("s", "t", b"{}", Some("i"), None));
        let event = Envelope::from_json(bytes.clone()).unwrap();
        assert_eq!((event.bytes(), event.id()), (Some(&bytes), "i"));
        let partial = Envelope::from_json(Bytes::from_static(br#"{"id":"j","detail":1}"#)).unwrap();
        assert_eq!((partial.bytes(), partial.id(), &partial.value()["detail"]), (None, "j", &Value::from(1)));
        assert!(Envelope::from_json(Bytes::from_static(b"not json")).is_none());
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
