//! `busbar serve` end to end: webhooks in, the bus, rules, input transformers, HTTP targets out — with real
//! HTTP servers, a real Kafka client reading the dead-letter topic, and the process killed with SIGKILL.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Busbar, Receiver, tempdir, write_pipeline};
use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers as _;
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

fn orders_pipeline(receiver: &Receiver, retry: Value) -> Value {
    json!({
        "name": "orders",
        "bus": { "topic": "orders", "partitions": 3 },
        "sources": {
            "shop": { "connector": "builtin:http-webhook",
                      "config": { "path": "/hooks/shop", "source": "shop", "detail-type": "order.created",
                                  "key": "/customer" } }
        },
        "rules": [
            { "name": "big-orders",
              "pattern": { "detail-type": ["order.created"], "detail": { "total": [{ "numeric": [">", 100] }] } },
              "targets": [
                { "name": "notify", "connector": "builtin:http",
                  "grants": { "http": [receiver.addr.to_string()] },
                  "config": { "url": receiver.url("/orders/{$.order}") },
                  "input_transformer": { "input_paths_map": { "id": "$.detail.id", "customer": "$.detail.customer" },
                                         "input_template": "{\"order\": <id>, \"customer\": <customer>}" },
                  "retry": retry,
                  "batch": { "max_records": 16, "max_wait": "5ms" } } ] },
            { "name": "everything", "pattern": { "source": ["shop"] },
              "targets": [ { "name": "debug", "connector": "builtin:log", "config": { "level": "debug" } } ] }
        ]
    })
}

async fn post_order(http: &reqwest::Client, busbar: &Busbar, id: u64, customer: &str, total: u64) -> u16 {
    let body = json!({ "id": id, "customer": customer, "total": total });
    match http.post(busbar.url("/hooks/shop")).json(&body).send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_events_arrive_transformed_and_in_order_per_key() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let file = write_pipeline(dir.path(), "orders.json", &orders_pipeline(&receiver, json!({})));
    let busbar = Busbar::start(&[&file], &dir.path().join("data"));
    let http = client();
    let mut expected: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for id in 0..60u64 {
        let customer = ["ada", "bob", "cy"][id as usize % 3];
        let total = if id % 2 == 0 { 500 } else { 50 };
        assert_eq!(post_order(&http, &busbar, id, customer, total).await, 202, "webhook {id} accepted");
        if total > 100 {
            expected.entry(customer.to_owned()).or_default().push(id);
        }
    }
    receiver.wait_for(30, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 30, "only orders over 100 match, each delivered once: {bodies:?}");
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for body in &bodies {
        let keys: BTreeSet<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["order", "customer"]), "the input transformer shaped {body}");
        seen.entry(body["customer"].as_str().unwrap().to_owned()).or_default().push(body["order"].as_u64().unwrap());
    }
    assert_eq!(seen, expected, "per customer (the partition key) in the order posted");
    let paths: BTreeSet<String> = receiver
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.headers.get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default())
        .collect();
    assert_eq!(paths, BTreeSet::from(["application/json".to_owned()]));
    busbar.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_down_gets_everything_once_it_returns() {
    let receiver = Receiver::start().await;
    receiver.status.store(503, Ordering::SeqCst);
    let dir = tempdir();
    let retry = json!({ "max_attempts": 1000, "backoff": { "initial": "20ms", "max": "200ms" } });
    let file = write_pipeline(dir.path(), "orders.json", &orders_pipeline(&receiver, retry));
    let busbar = Busbar::start(&[&file], &dir.path().join("data"));
    let http = client();
    for id in 0..20u64 {
        assert_eq!(post_order(&http, &busbar, id, "ada", 1000).await, 202);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.count(), 0);
    assert!(*receiver.attempts.lock().unwrap() > 1, "the target was retried while down");
    receiver.status.store(200, Ordering::SeqCst);
    receiver.wait_for(20, Duration::from_secs(30)).await;
    let ids: Vec<u64> = receiver.bodies().iter().map(|b| b["order"].as_u64().unwrap()).collect();
    assert_eq!(ids, (0..20).collect::<Vec<_>>(), "all delivered, in order, once the target is back");
    busbar.stop();
}

fn dead_letters(broker: std::net::SocketAddr, topic: &str, expected: usize) -> Vec<(Value, BTreeMap<String, String>)> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.to_string())
        .set("group.id", "e2e-dlq-reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.len() < expected && std::time::Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let value: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
            let mut headers = BTreeMap::new();
            if let Some(h) = message.headers() {
                for header in h.iter() {
                    headers.insert(
                        header.key.to_owned(),
                        String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            out.push((value, headers));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_target_keeps_refusing_are_dead_lettered_with_the_reason() {
    let receiver = Receiver::start().await;
    receiver.status.store(500, Ordering::SeqCst);
    let dir = tempdir();
    let retry = json!({ "max_attempts": 2, "backoff": { "initial": "10ms", "max": "20ms" } });
    let file = write_pipeline(dir.path(), "orders.json", &orders_pipeline(&receiver, retry));
    let busbar = Busbar::start(&[&file], &dir.path().join("data"));
    let http = client();
    for id in 0..3u64 {
        assert_eq!(post_order(&http, &busbar, id, "bob", 999).await, 202);
    }
    let dlq = dead_letters(busbar.broker, "orders.big-orders.notify.dlq", 3);
    assert_eq!(dlq.len(), 3, "every refused event is dead-lettered");
    for (i, (event, headers)) in dlq.iter().enumerate() {
        assert_eq!(event["detail"]["id"], json!(i as u64), "the original event is kept, in order");
        assert_eq!(event["source"], "shop");
        assert_eq!(headers["busbar.rule"], "big-orders");
        assert_eq!(headers["busbar.target"], "notify");
        assert_eq!(headers["busbar.attempts"], "3", "first attempt + 2 retries");
        assert!(headers["busbar.error"].contains("500"), "the error names the status: {headers:?}");
        assert!(headers.contains_key("busbar.first-failure-time"));
    }
    assert_eq!(*receiver.attempts.lock().unwrap(), 9, "3 events x 3 attempts");
    busbar.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_with_a_bad_signature_is_refused_and_dead_lettered() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let mut pipeline = orders_pipeline(&receiver, json!({}));
    pipeline["sources"]["shop"]["config"]["verify"] = json!({ "scheme": "github", "secret": "s3cret" });
    let file = write_pipeline(dir.path(), "orders.json", &pipeline);
    let busbar = Busbar::start(&[&file], &dir.path().join("data"));
    let response = client()
        .post(busbar.url("/hooks/shop"))
        .header("X-Hub-Signature-256", "sha256=0000")
        .body(r#"{"id": 1, "customer": "x", "total": 500}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let dlq = dead_letters(busbar.broker, "orders.shop.dlq", 1);
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].0["id"], 1, "the rejected body is kept");
    assert!(dlq[0].1["busbar.error"].to_lowercase().contains("signature"), "{:?}", dlq[0].1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 0, "a rejected request never reaches a target");
    busbar.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_accepted_event() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let file = write_pipeline(dir.path(), "orders.json", &orders_pipeline(&receiver, json!({})));
    let data = dir.path().join("data");
    let http = client();
    let mut accepted = BTreeSet::new();
    let mut next = 0u64;
    for round in 0..3 {
        let busbar = Busbar::start(&[&file], &data);
        let url = busbar.url("/hooks/shop");
        // Posts run concurrently with the kill: whatever got a 202 must be delivered.
        let posts: Vec<_> = (next..next + 200)
            .map(|id| {
                let http = http.clone();
                let url = url.clone();
                tokio::spawn(async move {
                    let body = json!({ "id": id, "customer": format!("c{}", id % 7), "total": 1000 });
                    let ok = matches!(http.post(&url).json(&body).send().await, Ok(r) if r.status() == 202);
                    (id, ok)
                })
            })
            .collect();
        next += 200;
        tokio::time::sleep(Duration::from_millis(150 + 100 * round)).await;
        busbar.kill9();
        for post in posts {
            let (id, ok) = post.await.unwrap();
            if ok {
                accepted.insert(id);
            }
        }
    }
    assert!(!accepted.is_empty(), "some posts were accepted before the kills");
    let busbar = Busbar::start(&[&file], &data);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let delivered: BTreeSet<u64> = receiver.bodies().iter().map(|b| b["order"].as_u64().unwrap()).collect();
        let missing: Vec<u64> = accepted.difference(&delivered).copied().collect();
        if missing.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "accepted but never delivered: {missing:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    busbar.stop();
}

#[test]
fn a_bad_pipeline_file_is_rejected_before_anything_starts() {
    let dir = tempdir();
    let file = dir.path().join("bad.json");
    std::fs::write(
        &file,
        "{\n  \"name\": \"bad\",\n  \"rules\": [\n    { \"name\": \"r\", \"pattern\": { \"detail\": { \"n\": [{ \"numeric\": [\"~\", 1] }] } },\n      \"targets\": [] }\n  ]\n}\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_busbar"))
        .arg("serve")
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .args(["--http-listen", "127.0.0.1:0", "--broker-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{}:4:", file.display())), "file:line:column in {stderr}");
    assert!(stderr.contains("numeric"), "names the problem: {stderr}");
    assert!(!data.exists(), "nothing was started, not even the data directory");
}
