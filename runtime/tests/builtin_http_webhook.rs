//! `builtin:http-webhook` driven through the host: bodies, CloudEvents, and signature checks with real HMACs.

#[path = "common/builtins.rs"]
mod builtins;
mod common;

use busbar_runtime::host::{ConnectorTask, Event, Grants, Header, HttpRequest, Limits, Runtime};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// HMAC-SHA256 (RFC 2104), computed here independently of the connector's own implementation.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(message.iter().copied())
        .collect();
    let inner_hash = Sha256::digest(&inner);
    let outer: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(inner_hash.iter().copied())
        .collect();
    Sha256::digest(&outer).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn webhook(config: Value) -> ConnectorTask {
    let rt = builtins::runtime();
    let connector = rt
        .load(&"builtin:http-webhook".parse().unwrap())
        .await
        .expect("builtin:http-webhook");
    common::open(
        &rt,
        &connector,
        "hook",
        config,
        Grants::default(),
        Limits::default(),
    )
    .await
}

fn request(headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: headers
            .iter()
            .map(|(n, v)| Header {
                name: (*n).into(),
                value: v.as_bytes().to_vec(),
            })
            .collect(),
        body: body.to_vec(),
    }
}

/// Sends one request; returns the status, the JSON response body and the events.
async fn send(
    task: &mut ConnectorTask,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value, Vec<Event>) {
    let handled = task.handle(&request(headers, body)).await.expect("handle");
    let body: Value = serde_json::from_slice(&handled.response.body).expect("JSON response");
    (handled.response.status, body, handled.events)
}

fn detail(event: &Event) -> Value {
    serde_json::from_slice(&event.payload).expect("JSON detail")
}

fn rejected(status: u16, body: &Value, events: &[Event], want_status: u16, reason_contains: &str) {
    assert_eq!(status, want_status, "{body}");
    assert!(events.is_empty(), "a rejected request yields no events");
    let reason = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("error reason in {body}"));
    assert!(
        reason.contains(reason_contains),
        "{reason:?} should contain {reason_contains:?}"
    );
}

#[tokio::test]
async fn describes_a_strict_schema_and_rejects_unknown_fields() {
    let rt = builtins::runtime();
    assert!(Runtime::builtin_names().contains(&"http-webhook"));
    let connector = rt
        .load(&"builtin:http-webhook".parse().unwrap())
        .await
        .expect("load");
    let schema = connector.config_schema();
    assert_eq!(schema["additionalProperties"], json!(false));
    for (name, prop) in schema["properties"].as_object().unwrap() {
        assert!(
            prop["description"].is_string(),
            "property {name} has no description"
        );
    }
    let err = connector
        .validate_config(&json!({ "detail_type": "x" }))
        .expect_err("unknown field");
    assert!(err.to_string().contains("detail_type"), "{err}");
    let err = connector
        .validate_config(&json!({ "verify": { "scheme": "gitlab", "secret": "s" } }))
        .expect_err("bad scheme");
    assert!(err.to_string().contains("/verify"), "{err}");
    connector
        .validate_config(&json!({ "path": "/gh", "verify": { "scheme": "stripe", "secret": "s", "tolerance": 60 } }))
        .expect("valid");
}

#[tokio::test]
async fn json_and_form_bodies_become_events() {
    let mut task = webhook(json!({
        "source": "github", "detail-type": "unknown", "detail-type-header": "X-GitHub-Event",
        "id-header": "X-GitHub-Delivery", "key": "/repository/id"
    }))
    .await;
    let body = br#"{"action":"opened","repository":{"id":42,"name":"busbar"}}"#;
    let (status, resp, events) = send(
        &mut task,
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "pull_request"),
            ("X-GitHub-Delivery", "d-1"),
        ],
        body,
    )
    .await;
    assert_eq!((status, resp), (202, json!({ "accepted": 1 })));
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.source.as_str(), e.detail_type.as_str(), e.id.as_str()),
        ("github", "pull_request", "d-1")
    );
    assert_eq!(e.key.as_deref(), Some(&b"42"[..]));
    assert_eq!(detail(e), serde_json::from_slice::<Value>(body).unwrap());
    assert_eq!(e.payload, body, "a JSON body is the payload as it came");

    // Without the header: the configured default detail-type; a string key is taken as its text.
    let mut plain = webhook(json!({ "key": "/user", "status": 200 })).await;
    let (status, _, events) = send(
        &mut plain,
        &[("content-type", "application/x-www-form-urlencoded")],
        b"user=ada&tag=a&tag=b+c&note=caf%C3%A9",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (events[0].source.as_str(), events[0].detail_type.as_str()),
        ("webhook", "webhook")
    );
    assert_eq!(events[0].key.as_deref(), Some(&b"ada"[..]));
    assert_eq!(
        detail(&events[0]),
        json!({ "user": "ada", "tag": ["a", "b c"], "note": "café" })
    );
}

/// The key pointer is read from the body without building the rest of it: the key must be exactly what
/// `Value::pointer` finds in the whole body (a string as its text, anything else as JSON), and a pointer that finds
/// nothing or null is refused with the pointer named.
#[tokio::test]
async fn key_pointers_find_what_the_whole_value_would() {
    let cases: &[(&str, &str)] = &[
        ("/customer", r#"{"customer":"c-1","total":3}"#),
        ("/a/b/c", r#"{"x":[1,{"y":null}],"a":{"b":{"c":true,"d":1}}}"#),
        ("/items/1/sku", r#"{"items":[{"sku":"s0"},{"sku":"s1"},{"sku":"s2"}]}"#),
        ("/items/01", r#"{"items":["a","b"]}"#),
        ("/items/+1", r#"{"items":["a","b"]}"#),
        ("/items/-", r#"{"items":["a","b"]}"#),
        ("/items/2", r#"{"items":["a","b"]}"#),
        ("/0", r#"[7,8]"#),
        ("/a~1b/c~0d", r#"{"a/b":{"c~d":"escaped tokens"}}"#),
        ("/k", r#"{"k":1,"k":2}"#),
        ("/a/b", r#"{"a":{"b":1},"a":{"c":2}}"#),
        ("/obj", r#"{"obj":{"z":1,"a":[1,2.5,"x"]},"n":1}"#),
        ("/n", r#"{"n":3.0e2}"#),
        ("/big", r#"{"big":12345678901234567890}"#),
        ("/s", r#"{"s":"quote \" and \u00e9"}"#),
        ("/\\u0041", r#"{"\\u0041":"a key with a backslash"}"#),
        ("/A", r#"{"\u0041":"key with an escape"}"#),
        ("/n/x", r#"{"n":1}"#),
        ("/s/0", r#"{"s":"abc"}"#),
        ("/nul", r#"{"nul":null}"#),
        ("/", r#"{"":"empty key"}"#),
        ("/missing", r#"{"deep":{"missing":1}}"#),
        ("", r#"{"whole":[1,"body"]}"#),
    ];
    for (pointer, body) in cases {
        let mut task = webhook(json!({ "key": pointer })).await;
        let (status, answer, events) =
            send(&mut task, &[("content-type", "application/json")], body.as_bytes()).await;
        let whole: Value = serde_json::from_str(body).unwrap();
        match whole.pointer(pointer) {
            None | Some(Value::Null) => {
                rejected(status, &answer, &events, 400, pointer);
            }
            Some(found) => {
                assert_eq!(status, 202, "{pointer} in {body}: {answer}");
                let key = events[0].key.as_deref().expect("a key");
                match found {
                    Value::String(s) => assert_eq!(key, s.as_bytes(), "{pointer} in {body}"),
                    // Anything else as JSON (an object's members in the connector's own order).
                    other => assert_eq!(
                        &serde_json::from_slice::<Value>(key).expect("a JSON key"),
                        other,
                        "{pointer} in {body}"
                    ),
                }
                assert_eq!(events[0].payload, body.as_bytes(), "the body is the payload as it came");
            }
        }
    }
    // The body is still checked whole when the key comes early.
    let mut task = webhook(json!({ "key": "/k" })).await;
    for bad in [&br#"{"k":"v","rest":[1,2"#[..], br#"{"k":"v"} trailing"#, br#"{"k":"v","x":01}"#] {
        let (s, b, e) = send(&mut task, &[("content-type", "application/json")], bad).await;
        rejected(s, &b, &e, 400, "not valid JSON");
    }
}

#[tokio::test]
async fn unreadable_bodies_are_answered_4xx_with_the_reason() {
    let mut task = webhook(json!({ "key": "/id" })).await;
    let (s, b, e) = send(
        &mut task,
        &[("content-type", "application/json")],
        b"{\"id\": 1,",
    )
    .await;
    rejected(s, &b, &e, 400, "not valid JSON");
    let (s, b, e) = send(&mut task, &[], b"").await;
    rejected(s, &b, &e, 400, "empty");
    let (s, b, e) = send(&mut task, &[("content-type", "application/xml")], b"<a/>").await;
    rejected(s, &b, &e, 415, "application/xml");
    let (s, b, e) = send(
        &mut task,
        &[("content-type", "application/json")],
        b"{\"other\": 1}",
    )
    .await;
    rejected(s, &b, &e, 400, "/id");
    // Without a key pointer a JSON body is only checked, not built into a value: the same answers, and a good
    // body becomes the payload byte for byte.
    let mut unkeyed = webhook(json!({})).await;
    let (s, b, e) = send(&mut unkeyed, &[("content-type", "application/json")], b"{\"id\": 1,").await;
    rejected(s, &b, &e, 400, "not valid JSON");
    let (s, b, e) = send(&mut unkeyed, &[], b" \n").await;
    rejected(s, &b, &e, 400, "empty");
    let body = b"{ \"id\" : 1, \"tags\": [\"a\"] }";
    let (s, _, e) = send(&mut unkeyed, &[("content-type", "application/json")], body).await;
    assert_eq!(s, 202);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].payload, body.to_vec(), "the payload is the body as it came");
    assert_eq!(e[0].key, None);
    let mut get = request(&[], b"{}");
    get.method = "GET".into();
    let handled = task.handle(&get).await.expect("handle");
    assert_eq!(handled.response.status, 405);
}

#[tokio::test]
async fn github_signatures() {
    let mut task = webhook(
        json!({ "verify": { "scheme": "github", "secret": "It's a Secret to Everybody" } }),
    )
    .await;
    let body = b"Hello, World!";
    // The example from GitHub's documentation, so this test also pins the exact scheme.
    let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(
        good,
        format!(
            "sha256={}",
            hex(&hmac_sha256(b"It's a Secret to Everybody", body))
        )
    );
    let json_body = br#"{"zen":"Keep it logically awesome."}"#;
    let sig = format!(
        "sha256={}",
        hex(&hmac_sha256(b"It's a Secret to Everybody", json_body))
    );
    let (s, b, e) = send(&mut task, &[("X-Hub-Signature-256", &sig)], json_body).await;
    assert_eq!((s, b, e.len()), (202, json!({ "accepted": 1 }), 1));

    let (s, b, e) = send(&mut task, &[("X-Hub-Signature-256", good)], json_body).await;
    rejected(s, &b, &e, 401, "does not match");
    let (s, b, e) = send(&mut task, &[], json_body).await;
    rejected(s, &b, &e, 401, "missing X-Hub-Signature-256");
    let (s, b, e) = send(&mut task, &[("X-Hub-Signature-256", &sig[7..])], json_body).await;
    rejected(s, &b, &e, 401, "sha256=");
}

#[tokio::test]
async fn stripe_signatures_with_timestamp_tolerance() {
    let secret = "whsec_test_secret";
    let mut task = webhook(json!({ "verify": { "scheme": "stripe", "secret": secret } })).await;
    let body = br#"{"id":"evt_1","type":"charge.succeeded"}"#;
    let sign = |t: i64, body: &[u8]| {
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(body);
        hex(&hmac_sha256(secret.as_bytes(), &signed))
    };
    let t = now();
    let header = format!("t={t},v1={},v0=ignored", sign(t, body));
    let (s, _, e) = send(&mut task, &[("Stripe-Signature", &header)], body).await;
    assert_eq!((s, e.len()), (202, 1));
    // A rotated secret: one of several v1 signatures matching is enough.
    let header = format!("t={t},v1={},v1={}", hex(&[0u8; 32]), sign(t, body));
    assert_eq!(
        send(&mut task, &[("Stripe-Signature", &header)], body)
            .await
            .0,
        202
    );

    let stale = t - 301;
    let header = format!("t={stale},v1={}", sign(stale, body));
    let (s, b, e) = send(&mut task, &[("Stripe-Signature", &header)], body).await;
    rejected(s, &b, &e, 401, "tolerance of 300 s");
    let header = format!("t={t},v1={}", sign(t, b"{\"tampered\":true}"));
    let (s, b, e) = send(&mut task, &[("Stripe-Signature", &header)], body).await;
    rejected(s, &b, &e, 401, "does not match");
    let (s, b, e) = send(
        &mut task,
        &[("Stripe-Signature", &format!("v1={}", sign(t, body)))],
        body,
    )
    .await;
    rejected(s, &b, &e, 401, "timestamp");

    // A wider tolerance accepts the same old signature.
    let mut lenient =
        webhook(json!({ "verify": { "scheme": "stripe", "secret": secret, "tolerance": 3600 } }))
            .await;
    let header = format!("t={stale},v1={}", sign(stale, body));
    assert_eq!(
        send(&mut lenient, &[("Stripe-Signature", &header)], body)
            .await
            .0,
        202
    );
}

#[tokio::test]
async fn slack_signatures_and_url_verification() {
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let mut task =
        webhook(json!({ "verify": { "scheme": "slack", "secret": secret, "tolerance": 60 } }))
            .await;
    let sign = |ts: &str, body: &[u8]| {
        let mut base = format!("v0:{ts}:").into_bytes();
        base.extend_from_slice(body);
        format!("v0={}", hex(&hmac_sha256(secret.as_bytes(), &base)))
    };
    let body = b"token=xyz&team_id=T1&command=%2Fdeploy&text=prod";
    let ts = now().to_string();
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-Slack-Request-Timestamp", ts.as_str()),
    ];
    let sig = sign(&ts, body);
    let (s, _, e) = send(
        &mut task,
        &[headers[0], headers[1], ("X-Slack-Signature", &sig)],
        body,
    )
    .await;
    assert_eq!(s, 202);
    assert_eq!(detail(&e[0])["command"], json!("/deploy"));

    let old = (now() - 120).to_string();
    let sig = sign(&old, body);
    let (s, b, e) = send(
        &mut task,
        &[
            headers[0],
            ("X-Slack-Request-Timestamp", &old),
            ("X-Slack-Signature", &sig),
        ],
        body,
    )
    .await;
    rejected(s, &b, &e, 401, "outside the tolerance");
    let sig = sign(&ts, b"token=xyz");
    let (s, b, e) = send(
        &mut task,
        &[headers[0], headers[1], ("X-Slack-Signature", &sig)],
        body,
    )
    .await;
    rejected(s, &b, &e, 401, "does not match");

    let challenge = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let sig = sign(&ts, challenge);
    let (s, b, e) = send(
        &mut task,
        &[
            ("content-type", "application/json"),
            headers[1],
            ("X-Slack-Signature", &sig),
        ],
        challenge,
    )
    .await;
    assert_eq!(
        (s, b, e.len()),
        (
            200,
            json!({ "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" }),
            0
        )
    );
}

#[tokio::test]
async fn generic_hmac_with_prefix_and_base64() {
    let mut task = webhook(json!({ "verify": {
        "scheme": "hmac", "secret": "k3y", "header": "X-Signature", "encoding": "base64", "prefix": "hmac-sha256 "
    } }))
    .await;
    let body = br#"{"order":7}"#;
    let sig = format!("hmac-sha256 {}", base64(&hmac_sha256(b"k3y", body)));
    assert_eq!(send(&mut task, &[("x-signature", &sig)], body).await.0, 202);
    let (s, b, e) = send(
        &mut task,
        &[("x-signature", &base64(&hmac_sha256(b"k3y", body)))],
        body,
    )
    .await;
    rejected(s, &b, &e, 401, "must start with");
    let sig = format!("hmac-sha256 {}", base64(&hmac_sha256(b"other", body)));
    let (s, b, e) = send(&mut task, &[("x-signature", &sig)], body).await;
    rejected(s, &b, &e, 401, "does not match");
    let (s, b, e) = send(&mut task, &[("x-signature", "hmac-sha256 !!!")], body).await;
    rejected(s, &b, &e, 401, "not base64");
}

#[tokio::test]
async fn cloudevents_binary_structured_and_batch() {
    let mut task =
        webhook(json!({ "source": "ignored", "detail-type": "ignored", "key": "/order" })).await;
    let (s, b, e) = send(
        &mut task,
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "A234-1234-1234"),
            ("ce-source", "https://shop.example/orders"),
            ("ce-type", "com.example.order.created"),
            ("ce-time", "2018-04-05T17:31:00Z"),
            ("ce-subject", "order-9"),
            ("content-type", "application/json; charset=utf-8"),
        ],
        br#"{"order":"o-9","total":12.5}"#,
    )
    .await;
    assert_eq!((s, b), (202, json!({ "accepted": 1 })));
    let ev = &e[0];
    assert_eq!(ev.id, "A234-1234-1234");
    assert_eq!(ev.source, "https://shop.example/orders");
    assert_eq!(ev.detail_type, "com.example.order.created");
    assert_eq!(ev.time, "2018-04-05T17:31:00Z");
    assert_eq!(ev.key.as_deref(), Some(&b"o-9"[..]));
    assert_eq!(detail(ev), json!({ "order": "o-9", "total": 12.5 }));
    assert!(
        ev.headers
            .iter()
            .any(|h| h.name == "ce-subject" && h.value == b"order-9"),
        "{:?}",
        ev.headers
    );

    let structured = json!({
        "specversion": "1.0", "id": "s-1", "source": "/sensors/4", "type": "reading", "time": "2024-01-01T00:00:00Z",
        "datacontenttype": "application/json", "data": { "order": "o-1", "celsius": 21 }, "traceparent": "00-abc"
    });
    let (s, _, e) = send(
        &mut task,
        &[("content-type", "application/cloudevents+json")],
        structured.to_string().as_bytes(),
    )
    .await;
    assert_eq!(s, 202);
    assert_eq!(
        (
            e[0].id.as_str(),
            e[0].source.as_str(),
            e[0].detail_type.as_str()
        ),
        ("s-1", "/sensors/4", "reading")
    );
    assert_eq!(detail(&e[0]), json!({ "order": "o-1", "celsius": 21 }));
    assert!(e[0].headers.iter().any(|h| h.name == "ce-traceparent"));

    let batch = json!([
        { "specversion": "1.0", "id": "b-1", "source": "s", "type": "t", "data": { "order": "x" } },
        { "specversion": "1.0", "id": "b-2", "source": "s", "type": "t",
          "datacontenttype": "application/json", "data_base64": base64(br#"{"order":"y"}"#) }
    ]);
    let (s, b, e) = send(
        &mut task,
        &[("content-type", "application/cloudevents-batch+json")],
        batch.to_string().as_bytes(),
    )
    .await;
    assert_eq!((s, b), (202, json!({ "accepted": 2 })));
    assert_eq!(detail(&e[1]), json!({ "order": "y" }));
    assert_eq!(e[1].key.as_deref(), Some(&b"y"[..]));

    // Missing required attributes are the sender's error.
    let (s, b, e) = send(
        &mut task,
        &[("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-type", "t")],
        b"{}",
    )
    .await;
    rejected(s, &b, &e, 400, "ce-source");
    let (s, b, e) = send(
        &mut task,
        &[("content-type", "application/cloudevents+json")],
        br#"{"specversion":"1.0","id":"1","source":"s","data":{}}"#,
    )
    .await;
    rejected(s, &b, &e, 400, "`type`");
}
