//! Request bodies to events: plain JSON or form bodies (one event each) and CloudEvents in binary mode
//! (`ce-*` headers), structured mode (`application/cloudevents+json`) and batch mode
//! (`application/cloudevents-batch+json`), whose attributes map onto the envelope: `source` -> source,
//! `type` -> detail-type, `id` -> id, `time` -> time, `data` -> detail; other attributes become `ce-<name>` headers.

use base64::Engine as _;
use busbar_connector_sdk::{Event, Header};
use serde::Deserialize as _;
use serde::de::DeserializeSeed as _;
use serde_json::{Map, Value};

use crate::config::Config;

/// A request the webhook refuses: the status and the reason for the `{"error": …}` body.
pub struct Rejected {
    pub status: u16,
    pub reason: String,
}

fn bad(reason: impl Into<String>) -> Rejected {
    Rejected {
        status: 400,
        reason: reason.into(),
    }
}

pub enum Parsed {
    /// An ordinary body as JSON, and whether the body itself is that JSON (then it becomes the payload as it
    /// came, instead of being written out again).
    Plain(Value, bool),
    /// A JSON body checked without building its value, because nothing reads its fields but the key pointer: it
    /// becomes the payload as it came, and only the value at the key pointer (if any) was built. Building the
    /// whole value costs several times the check for a 1 KB body.
    CheckedJson(Option<Value>),
    CloudEvents(Vec<CloudEvent>),
}

pub struct CloudEvent {
    id: String,
    source: String,
    kind: String,
    time: String,
    data: Value,
    extensions: Vec<(String, String)>,
}

const CE_CORE: [&str; 5] = ["id", "source", "type", "time", "specversion"];

/// What of a plain JSON body the webhook reads, decided once when it opens.
pub enum Reads {
    /// Nothing: the body is only checked.
    Nothing,
    /// The value at the key pointer, as its unescaped tokens (`~1` is `/`, `~0` is `~`): all that is built.
    Pointer(Vec<String>),
    /// The whole value: Slack's challenge, or a key pointer to the whole body (`""`).
    Everything,
}

/// What [`parse`] has to build of a plain JSON body for this config (whose key pointer `open` checked: empty or
/// starting with `/`).
pub fn reads(config: &Config) -> Reads {
    match (&config.key, &config.verify) {
        (_, Some(crate::config::Verify::Slack { .. })) => Reads::Everything,
        (Some(pointer), _) => match pointer.strip_prefix('/') {
            Some(rest) => Reads::Pointer(
                rest.split('/')
                    .map(|t| t.replace("~1", "/").replace("~0", "~"))
                    .collect(),
            ),
            None => Reads::Everything,
        },
        (None, _) => Reads::Nothing,
    }
}

/// Reads a request body, building of a plain JSON body only what `reads` says.
pub fn parse(headers: &[Header], body: &[u8], reads: &Reads) -> Result<Parsed, Rejected> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
    };
    let media = header("content-type").map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    if header("ce-specversion").is_some() {
        let required = |name: &str| {
            header(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                bad(format!(
                    "CloudEvents binary mode: missing the {name} header"
                ))
            })
        };
        let mut extensions = Vec::new();
        for h in headers {
            let name = h.name.to_ascii_lowercase();
            if let Some(attr) = name.strip_prefix("ce-")
                && !CE_CORE.contains(&attr)
            {
                extensions.push((
                    attr.to_owned(),
                    String::from_utf8_lossy(&h.value).into_owned(),
                ));
            }
        }
        return Ok(Parsed::CloudEvents(vec![CloudEvent {
            id: required("ce-id")?,
            source: required("ce-source")?,
            kind: required("ce-type")?,
            time: header("ce-time").unwrap_or_default(),
            data: data(media.as_deref(), body)?,
            extensions,
        }]));
    }
    match media.as_deref() {
        Some("application/cloudevents+json") => Ok(Parsed::CloudEvents(vec![structured(
            json(body)?,
            "the body",
        )?])),
        Some("application/cloudevents-batch+json") => match json(body)? {
            Value::Array(items) => Ok(Parsed::CloudEvents(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| structured(v, &format!("batch item {i}")))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err(bad("a CloudEvents batch must be a JSON array of events")),
        },
        other if is_json(other) => match reads {
            Reads::Nothing => check_json_at(body, None).map(Parsed::CheckedJson),
            Reads::Pointer(tokens) => check_json_at(body, Some(tokens)).map(Parsed::CheckedJson),
            Reads::Everything => Ok(Parsed::Plain(json(body)?, true)),
        },
        other => {
            let value = data(other, body)?;
            Ok(Parsed::Plain(value, is_json(other)))
        }
    }
}

/// Whether a body of this media type is read as JSON.
fn is_json(media: Option<&str>) -> bool {
    match media {
        None => true,
        Some(m) => m == "application/json" || m.ends_with("+json") || m == "text/json",
    }
}

/// A body as JSON: parsed JSON, a form as an object (repeated fields become arrays), text as a string.
fn data(media: Option<&str>, body: &[u8]) -> Result<Value, Rejected> {
    match media {
        None => json(body),
        Some(m) if is_json(Some(m)) => json(body),
        Some("application/x-www-form-urlencoded") => Ok(form(body)),
        Some(m) if m.starts_with("text/") => match std::str::from_utf8(body) {
            Ok(text) => Ok(Value::String(text.to_owned())),
            Err(_) => Err(bad(format!("the body is declared {m} but is not UTF-8"))),
        },
        Some(m) => Err(Rejected {
            status: 415,
            reason: format!(
                "content type {m} is not accepted: send application/json, application/x-www-form-urlencoded, text/* or CloudEvents"
            ),
        }),
    }
}

fn json(body: &[u8]) -> Result<Value, Rejected> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(EMPTY));
    }
    serde_json::from_slice(body).map_err(not_json)
}

/// What [`json`] checks, building only the value at the pointer `tokens` (RFC 6901, at least one token), if
/// given: `None` when the pointer finds nothing, as [`Value::pointer`] would on the whole value.
fn check_json_at(body: &[u8], tokens: Option<&[String]>) -> Result<Option<Value>, Rejected> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(EMPTY));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = match tokens {
        Some(path) => At { path }.deserialize(&mut de).map_err(not_json)?,
        None => {
            serde::de::IgnoredAny::deserialize(&mut de).map_err(not_json)?;
            None
        }
    };
    de.end().map_err(not_json)?;
    Ok(found)
}

/// Deserializes a document, building only the value at the rest of a JSON pointer and skipping the rest.
struct At<'a> {
    path: &'a [String],
}

impl<'de> serde::de::DeserializeSeed<'de> for At<'_> {
    type Value = Option<Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        if self.path.is_empty() {
            Value::deserialize(d).map(Some)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> serde::de::Visitor<'de> for At<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    // A scalar where the pointer goes on: it finds nothing.
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (token, rest) = self.path.split_first().expect("a non-empty path");
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(token))? {
            if hit {
                // A repeated key: the last value wins, as when the whole value is built.
                found = map.next_value_seed(At { path: rest })?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (token, rest) = self.path.split_first().expect("a non-empty path");
        // Array indexes as `Value::pointer` reads them: decimal, no sign, no leading zero.
        let index = if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
            None
        } else {
            token.parse::<usize>().ok()
        };
        let mut found = None;
        let mut at = 0;
        loop {
            let more = if Some(at) == index {
                seq.next_element_seed(At { path: rest })?.map(|v| found = v)
            } else {
                seq.next_element::<serde::de::IgnoredAny>()?.map(drop)
            };
            if more.is_none() {
                return Ok(found);
            }
            at += 1;
        }
    }
}

/// Whether a map key equals a pointer token, compared without building the key.
struct KeyIs<'a>(&'a str);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

const EMPTY: &str = "the body is empty: expected a JSON document";

fn not_json(e: serde_json::Error) -> Rejected {
    bad(format!("the body is not valid JSON: {e}"))
}

fn form(body: &[u8]) -> Value {
    let mut out = Map::new();
    for (k, v) in form_urlencoded::parse(body) {
        let v = Value::String(v.into_owned());
        match out.get_mut(k.as_ref()) {
            Some(Value::Array(items)) => items.push(v),
            Some(first) => *first = Value::Array(vec![first.take(), v]),
            None => {
                out.insert(k.into_owned(), v);
            }
        }
    }
    Value::Object(out)
}

fn structured(value: Value, what: &str) -> Result<CloudEvent, Rejected> {
    let Value::Object(mut obj) = value else {
        return Err(bad(format!(
            "CloudEvents structured mode: {what} must be a JSON object"
        )));
    };
    let mut take = |name: &str| -> Result<String, Rejected> {
        match obj.remove(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            _ => Err(bad(format!(
                "CloudEvents structured mode: {what} needs a non-empty string `{name}`"
            ))),
        }
    };
    let (id, source, kind) = (take("id")?, take("source")?, take("type")?);
    take("specversion")?;
    let time = match obj.remove("time") {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let content_type = match obj.remove("datacontenttype") {
        Some(Value::String(s)) => Some(
            s.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase(),
        ),
        _ => None,
    };
    let data = match (obj.remove("data"), obj.remove("data_base64")) {
        (Some(data), _) => data,
        (None, Some(Value::String(b64))) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| {
                    bad(format!(
                        "CloudEvents structured mode: {what} has invalid data_base64: {e}"
                    ))
                })?;
            match content_type.as_deref() {
                Some(m) if m.contains("json") => json(&bytes)?,
                _ => match String::from_utf8(bytes) {
                    Ok(text) => Value::String(text),
                    Err(_) => Value::String(b64),
                },
            }
        }
        _ => Value::Null,
    };
    let extensions = obj
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                },
            )
        })
        .collect();
    Ok(CloudEvent {
        id,
        source,
        kind,
        time,
        data,
        extensions,
    })
}

/// The events of a parsed request, with the config's defaults, key pointer and header-derived fields.
pub fn to_events(
    parsed: Parsed,
    body: &[u8],
    config: &Config,
    header: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Event>, String> {
    match parsed {
        Parsed::Plain(value, body_is_json) => {
            let key = key(config, &value)?;
            let payload = if body_is_json { None } else { Some(&value) };
            Ok(vec![plain_event(payload, key, body, config, header)])
        }
        Parsed::CheckedJson(found) => {
            let key = match &config.key {
                Some(_) => key_of(config, found.as_ref())?,
                None => None,
            };
            Ok(vec![plain_event(None, key, body, config, header)])
        }
        Parsed::CloudEvents(items) => items
            .into_iter()
            .map(|ce| {
                let mut event = Event::json(&ce.source, &ce.kind, &ce.data);
                event.id = ce.id;
                event.time = ce.time;
                event.key = key(config, &ce.data)?;
                event.headers = ce
                    .extensions
                    .into_iter()
                    .map(|(k, v)| Header {
                        name: format!("ce-{k}"),
                        value: v.into_bytes(),
                    })
                    .collect();
                Ok(event)
            })
            .collect(),
    }
}

/// The event of an ordinary body: its payload is `value` written out, or the body as it came when that is the JSON.
fn plain_event(
    value: Option<&Value>,
    key: Option<Vec<u8>>,
    body: &[u8],
    config: &Config,
    header: &dyn Fn(&str) -> Option<String>,
) -> Event {
    let detail_type = config
        .detail_type_header
        .as_deref()
        .and_then(header)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| config.detail_type.clone());
    let mut event = match value {
        Some(value) => Event::json(&config.source, &detail_type, value),
        None => Event {
            payload: body.to_vec(),
            ..Event::json(&config.source, &detail_type, &Value::Null)
        },
    };
    if let Some(id) = config.id_header.as_deref().and_then(header) {
        event.id = id;
    }
    event.key = key;
    event
}

fn key(config: &Config, detail: &Value) -> Result<Option<Vec<u8>>, String> {
    match &config.key {
        Some(pointer) => key_of(config, detail.pointer(pointer)),
        None => Ok(None),
    }
}

/// The key from what the key pointer found.
fn key_of(config: &Config, found: Option<&Value>) -> Result<Option<Vec<u8>>, String> {
    let pointer = config.key.as_deref().unwrap_or_default();
    match found {
        None | Some(Value::Null) => Err(format!(
            "the key pointer {pointer} finds no value in the body"
        )),
        Some(Value::String(s)) => Ok(Some(s.as_bytes().to_vec())),
        Some(other) => Ok(Some(other.to_string().into_bytes())),
    }
}
