//! The control API of `busbar serve`: every route, with bad input, unknown names and the bearer token; and the
//! Prometheus metrics scraped during an end-to-end run, checked against the events sent.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::{Busbar, Receiver, tempdir, write_pipeline};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

fn pipeline(receiver: &Receiver) -> Value {
    json!({
        "name": "shop",
        "bus": { "topic": "shop", "partitions": 2 },
        "sources": { "in": { "connector": "builtin:http-webhook",
                             "config": { "path": "/hooks/in", "source": "shop", "detail-type": "order", "key": "/customer" } } },
        "rules": [
            { "name": "big", "pattern": { "detail": { "total": [{ "numeric": [">", 100] }] } },
              "targets": [ { "name": "http", "connector": "builtin:http", "grants": { "http": [receiver.addr.to_string()] },
                             "config": { "url": receiver.url("/big") } } ] },
            { "name": "all", "pattern": { "source": ["shop"] },
              "targets": [ { "name": "log", "connector": "builtin:log", "config": { "level": "debug" } } ] }
        ]
    })
}

/// Parses Prometheus text into `name{labels}` -> value.
fn scrape(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_pipelines_topics_groups_and_metrics_that_match_what_was_sent() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let file = write_pipeline(dir.path(), "shop.json", &pipeline(&receiver));
    let busbar = Busbar::start(&[&file], &dir.path().join("data"));
    let http = client();
    for n in 0..30u64 {
        let body = json!({ "id": n, "customer": format!("c{}", n % 4), "total": if n % 3 == 0 { 500 } else { 5 } });
        let status = http.post(busbar.url("/hooks/in")).json(&body).send().await.unwrap().status();
        assert_eq!(status, 202);
    }
    receiver.wait_for(10, Duration::from_secs(30)).await;

    // Pipelines: the list, one pipeline as written, and unknown names.
    let list: Value = http.get(busbar.url("/pipelines")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list[0]["name"], "shop");
    assert_eq!(list[0]["rules"][0], json!({ "name": "big", "targets": ["http"] }));
    let one: Value = http.get(busbar.url("/pipelines/shop")).send().await.unwrap().json().await.unwrap();
    assert_eq!(one["spec"]["rules"][1]["name"], "all");
    let missing = http.get(busbar.url("/pipelines/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["code"], "not_found");
    assert!(error["message"].as_str().unwrap().contains("shop"), "names what runs: {error}");

    // Validation of a pipeline document without running it.
    let verdict: Value = http.post(busbar.url("/pipelines/validate")).body(r#"{"name": "x", "rules": [{"name": "r", "pattern": {"a": [{"numeric": ["~", 1]}]}, "targets": []}]}"#).send().await.unwrap().json().await.unwrap();
    assert_eq!(verdict["valid"], false);
    assert!(verdict["problems"][0].as_str().unwrap().contains("numeric"), "{verdict}");
    let verdict: Value = http.post(busbar.url("/pipelines/validate")).body(serde_json::to_vec(&pipeline(&receiver)).unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(verdict, json!({ "valid": true, "problems": [] }));

    // Topics: the bus topic holds the 30 events.
    let topic: Value = http.get(busbar.url("/topics/shop")).send().await.unwrap().json().await.unwrap();
    let records: i64 = topic["partitions"].as_array().unwrap().iter().map(|p| p["records"].as_i64().unwrap()).sum();
    assert_eq!(records, 30, "{topic}");
    let topics: Value = http.get(busbar.url("/topics")).send().await.unwrap().json().await.unwrap();
    assert!(topics.as_array().unwrap().iter().any(|t| t["name"] == "shop.big.http.dlq"), "DLQ topics are listed: {topics}");
    assert_eq!(http.get(busbar.url("/topics/nope")).send().await.unwrap().status(), 404);

    // Groups: the router's group reaches lag 0 once everything is settled.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let group: Value = http.get(busbar.url("/groups/busbar.router.shop")).send().await.unwrap().json().await.unwrap();
        if group["lag"] == 0 && group["partitions"].as_array().is_some_and(|p| p.len() == 2) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "router lag never reached 0: {group}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let groups: Value = http.get(busbar.url("/groups")).send().await.unwrap().json().await.unwrap();
    assert!(groups.as_array().unwrap().iter().any(|g| g["group"] == "busbar.router.shop"), "{groups}");
    assert_eq!(http.get(busbar.url("/groups/nope")).send().await.unwrap().status(), 404);

    // The pattern playground.
    let verdict: Value = http
        .post(busbar.url("/rules/test"))
        .json(&json!({ "pattern": { "detail": { "total": [{ "numeric": [">", 100] }] } }, "event": { "detail": { "total": 3.0e2 } } }))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(verdict, json!({ "match": true }));
    let bad = http.post(busbar.url("/rules/test")).json(&json!({ "pattern": { "a": "not-a-list" }, "event": {} })).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let error: Value = bad.json().await.unwrap();
    assert!(error["message"].as_str().unwrap().contains("invalid pattern"), "{error}");
    let bad = http.post(busbar.url("/rules/test")).header("content-type", "application/json").body("{").send().await.unwrap();
    assert_eq!(bad.status(), 400);

    // Metrics agree with what was sent: 30 read, 30 matched (rule `all`), 10 big, 10 delivered over HTTP.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = http.get(busbar.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let m = scrape(&text);
    assert_eq!(m[r#"busbar_router_records_read_total{pipeline="shop"}"#], 30.0, "{text}");
    assert_eq!(m[r#"busbar_rule_matches_total{pipeline="shop",rule="all"}"#], 30.0);
    assert_eq!(m[r#"busbar_rule_matches_total{pipeline="shop",rule="big"}"#], 10.0);
    assert_eq!(m[r#"busbar_target_deliveries_total{pipeline="shop",rule="big",target="http"}"#], 10.0);
    assert_eq!(m[r#"busbar_target_deliveries_total{pipeline="shop",rule="all",target="log"}"#], 30.0);
    assert_eq!(m[r#"busbar_target_dead_letters_total{pipeline="shop",rule="big",target="http"}"#], 0.0);
    let hw: f64 = (0..2).map(|p| m[&format!(r#"busbar_topic_partition_high_watermark{{topic="shop",partition="{p}"}}"#)]).sum();
    assert_eq!(hw, 30.0);
    assert!(m.keys().any(|k| k.starts_with("busbar_consumer_group_lag{group=\"busbar.router.shop\"")), "{text}");
    assert_eq!(m[r#"busbar_target_delivery_seconds_count{pipeline="shop",rule="big",target="http"}"#], 10.0);
    assert_eq!(m[r#"busbar_target_delivery_seconds_bucket{pipeline="shop",rule="big",target="http",le="+Inf"}"#], 10.0);
    assert!(m[r#"busbar_target_delivery_seconds_bucket{pipeline="shop",rule="big",target="http",le="30"}"#] == 10.0, "{text}");
    busbar.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_the_api_but_not_webhooks_or_health() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let file = write_pipeline(dir.path(), "shop.json", &pipeline(&receiver));
    let busbar = Busbar::start_env(&[&file], &dir.path().join("data"), &[("BUSBAR_API_TOKEN", "t0ken-with-some-length")]);
    let http = client();
    let denied = http.get(busbar.url("/pipelines")).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    assert_eq!(denied.headers()["www-authenticate"], "Bearer");
    let error: Value = denied.json().await.unwrap();
    assert_eq!(error["code"], "unauthorized");
    let wrong = http.get(busbar.url("/metrics")).bearer_auth("t0ken-with-some-lengtX").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let allowed = http.get(busbar.url("/pipelines")).bearer_auth("t0ken-with-some-length").send().await.unwrap();
    assert_eq!(allowed.status(), 200);
    let hook = http.post(busbar.url("/hooks/in")).json(&json!({ "customer": "c", "total": 1 })).send().await.unwrap();
    assert_eq!(hook.status(), 202, "webhooks check their own signatures, not the API token: {:?}", hook.text().await);
    assert_eq!(http.get(busbar.url("/healthz")).send().await.unwrap().status(), 200);
    busbar.stop();
}

#[test]
fn listening_beyond_loopback_without_a_token_is_refused() {
    let dir = tempdir();
    let file = dir.path().join("p.json");
    std::fs::write(&file, r#"{ "name": "p", "rules": [] }"#).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_busbar"))
        .arg("serve")
        .arg(&file)
        .args(["--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--http-listen", "0.0.0.0:0", "--broker-listen", "127.0.0.1:0"])
        .env_remove("BUSBAR_API_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--api-token"), "says what to do: {stderr}");
}
