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
    // Per partition traffic: 30 records in; the router read each of them at least once.
    let per_partition = |name: &str| -> f64 { (0..2).map(|p| m[&format!(r#"{name}{{topic="shop",partition="{p}"}}"#)]).sum() };
    assert_eq!(per_partition("busbar_topic_partition_records_in_total"), 30.0, "{text}");
    assert!(per_partition("busbar_topic_partition_records_out_total") >= 30.0, "{text}");
    let bytes_in = per_partition("busbar_topic_partition_bytes_in_total");
    assert!(bytes_in > 30.0 * 60.0, "30 batches of at least their 61-byte header: {bytes_in}");
    assert!(per_partition("busbar_topic_partition_bytes_out_total") >= bytes_in);
    // Connectors: all running, no restarts; the webhook source was called once per request, the HTTP target at
    // least once and at most once per delivered event.
    let instance = |name: &str, connector: &str| format!(r#"{name}{{pipeline="shop",connector="{connector}",instance="{connector}""#);
    for connector in ["shop/in", "shop/big/http", "shop/all/log"] {
        assert_eq!(m[&format!(r#"{},state="running"}}"#, instance("busbar_connector_state", connector))], 1.0, "{text}");
        assert_eq!(m[&format!(r#"{},state="failed"}}"#, instance("busbar_connector_state", connector))], 0.0);
        assert_eq!(m[&format!("{}}}", instance("busbar_connector_restarts_total", connector))], 0.0);
    }
    assert_eq!(m[&format!("{}}}", instance("busbar_connector_call_seconds_count", "shop/in"))], 30.0, "{text}");
    let http_calls = m[&format!("{}}}", instance("busbar_connector_call_seconds_count", "shop/big/http"))];
    assert!((1.0..=10.0).contains(&http_calls), "{http_calls}");
    assert_eq!(
        m[&format!(r#"{},le="+Inf"}}"#, instance("busbar_connector_call_seconds_bucket", "shop/in"))],
        30.0
    );
    assert!(m[&format!("{}}}", instance("busbar_connector_call_seconds_sum", "shop/in"))] > 0.0);

    // The same counters as JSON, for the console.
    let stats: Value = http.get(busbar.url("/stats")).send().await.unwrap().json().await.unwrap();
    let shop = &stats["pipelines"][0];
    assert_eq!(shop["name"], "shop");
    assert_eq!(shop["records_read"], 30, "{stats}");
    assert_eq!(shop["rules"][0]["name"], "big");
    assert_eq!(shop["rules"][0]["matches"], 10);
    assert_eq!(shop["rules"][1]["matches"], 30);
    let target = &shop["rules"][0]["targets"][0];
    assert_eq!(target["name"], "http");
    assert_eq!(target["connector"], "builtin:http");
    assert_eq!(target["delivered"], 10);
    assert_eq!(target["dead_letter_topic"], "shop.big.http.dlq");
    let in_buckets: u64 = target["latency"]["buckets"].as_array().unwrap().iter().map(|b| b[1].as_u64().unwrap()).sum();
    assert_eq!(in_buckets, 10, "every delivery is in one latency bucket: {target}");
    assert_eq!(shop["sources"][0]["path"], "/hooks/in");
    let bus = stats["topics"].as_array().unwrap().iter().find(|t| t["name"] == "shop").unwrap();
    assert_eq!(bus["partitions"].as_array().unwrap().len(), 2);
    assert!(stats["groups"].as_array().unwrap().iter().any(|g| g["group"] == "busbar.router.shop" && g["lag"] == 0), "{stats}");

    // The playground against a running pipeline: which rules match and what each target would receive.
    let event = json!({ "source": "shop", "detail-type": "order", "detail": { "id": 7, "total": 250 } });
    let verdict: Value = http.post(busbar.url("/rules/test")).json(&json!({ "pipeline": "shop", "event": event })).send().await.unwrap().json().await.unwrap();
    assert_eq!(verdict["match"], true);
    assert_eq!(verdict["rules"][0]["rule"], "big");
    assert_eq!(verdict["rules"][0]["match"], true);
    assert_eq!(verdict["rules"][0]["targets"][0]["json"], event, "builtin:http without a transformer gets the whole event");
    assert_eq!(verdict["rules"][1]["match"], true);
    let small = json!({ "source": "shop", "detail": { "total": 2 } });
    let verdict: Value = http.post(busbar.url("/rules/test")).json(&json!({ "pipeline": "shop", "event": small })).send().await.unwrap().json().await.unwrap();
    assert_eq!(verdict["rules"][0]["match"], false);
    assert!(verdict["rules"][0]["targets"][0].get("input").is_none(), "no input for a rule that does not match: {verdict}");
    let both = http.post(busbar.url("/rules/test")).json(&json!({ "pipeline": "shop", "pattern": {}, "event": {} })).send().await.unwrap();
    assert_eq!(both.status(), 400);
    let unknown = http.post(busbar.url("/rules/test")).json(&json!({ "pipeline": "nope", "event": {} })).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    busbar.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_applies_a_new_pipeline_version_like_a_reload_and_keeps_the_old_one_when_it_is_rejected() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let file = write_pipeline(dir.path(), "shop.json", &pipeline(&receiver));
    let neighbour = write_pipeline(dir.path(), "other.json", &json!({ "name": "other", "rules": [] }));
    let token = "put-token-with-some-length";
    let busbar = Busbar::start_env(&[&file, &neighbour], &dir.path().join("data"), &[("BUSBAR_API_TOKEN", token)]);
    let http = client();
    let put = |path: &str, body: String| http.put(busbar.url(path)).bearer_auth(token).header("content-type", "application/json").body(body).send();
    let get_spec = || async {
        let one: Value = http.get(busbar.url("/pipelines/shop")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        one["spec"].clone()
    };
    let order = |id: u64, total: u64| json!({ "id": id, "customer": format!("c{id}"), "total": total });
    let send = |body: Value| http.post(busbar.url("/hooks/in")).json(&body).send();
    let ids = |receiver: &Receiver| -> Vec<u64> { receiver.bodies().iter().map(|b| b["detail"]["id"].as_u64().unwrap()).collect() };

    // Version 2 sends only orders above 1000 to the HTTP target.
    let mut v2 = pipeline(&receiver);
    v2["rules"][0]["pattern"] = json!({ "detail": { "total": [{ "numeric": [">", 1000] }] } });
    let v2_text = serde_json::to_string_pretty(&v2).unwrap();

    // Auth, unknown names, renames.
    let denied = http.put(busbar.url("/pipelines/shop")).body(v2_text.clone()).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let mut other = v2.clone();
    other["name"] = json!("nope");
    let missing = put("/pipelines/nope", other.to_string()).await.unwrap();
    assert_eq!(missing.status(), 404);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["code"], "not_found");
    let renamed = put("/pipelines/shop", other.to_string()).await.unwrap();
    assert_eq!(renamed.status(), 400);
    let error: Value = renamed.json().await.unwrap();
    assert!(error["message"].as_str().unwrap().contains("cannot rename"), "{error}");

    // A version that fails validation: 400 with the report; the old version still routes.
    let mut bad = v2.clone();
    bad["rules"][0]["pattern"] = json!({ "detail": { "total": [{ "numeric": ["~", 1] }] } });
    let rejected = put("/pipelines/shop", bad.to_string()).await.unwrap();
    assert_eq!(rejected.status(), 400);
    let error: Value = rejected.json().await.unwrap();
    assert_eq!(error["code"], "invalid_pipeline", "{error}");
    let problem = error["problems"][0].as_str().unwrap();
    assert!(problem.starts_with("request body:") && problem.contains("numeric"), "located in the body: {error}");
    assert!(error["message"].as_str().unwrap().contains("running version is unchanged"), "{error}");
    let mut taken = v2.clone();
    taken["bus"]["topic"] = json!("other");
    let clash: Value = put("/pipelines/shop", taken.to_string()).await.unwrap().json().await.unwrap();
    assert_eq!(clash["code"], "invalid_pipeline");
    assert!(clash["problems"][0].as_str().unwrap().contains("already the bus of pipeline other"), "checked against the other pipelines: {clash}");
    let syntax = put("/pipelines/shop", r#"{"name": "shop","#.into()).await.unwrap();
    assert_eq!(syntax.status(), 400);
    assert_eq!(syntax.json::<Value>().await.unwrap()["code"], "invalid_pipeline");
    assert_eq!(get_spec().await["rules"][0]["pattern"], pipeline(&receiver)["rules"][0]["pattern"], "the old version runs");
    assert_eq!(send(order(1, 500)).await.unwrap().status(), 202);
    receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(ids(&receiver), [1], "the old rule (> 100) still routes");

    // The good version: applied, visible, and routing differently.
    let applied = put("/pipelines/shop", v2_text.clone()).await.unwrap();
    assert_eq!(applied.status(), 200);
    let applied: Value = applied.json().await.unwrap();
    assert_eq!(applied["changed"], true, "{applied}");
    assert_eq!(get_spec().await["rules"][0]["pattern"], v2["rules"][0]["pattern"]);
    assert_eq!(send(order(2, 500)).await.unwrap().status(), 202);
    assert_eq!(send(order(3, 5000)).await.unwrap().status(), 202);
    receiver.wait_for(2, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ids(&receiver), [1, 3], "500 no longer matches, 5000 does");
    let again: Value = put("/pipelines/shop", v2_text).await.unwrap().json().await.unwrap();
    assert_eq!(again["changed"], false, "the same version again restarts nothing");

    // A reload from the file (SIGHUP) puts the file's version back: the file stays the source of truth.
    busbar.hangup();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while get_spec().await["rules"][0]["pattern"] != pipeline(&receiver)["rules"][0]["pattern"] {
        assert!(std::time::Instant::now() < deadline, "SIGHUP did not restore the file's version");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(send(order(4, 500)).await.unwrap().status(), 202);
    receiver.wait_for(3, Duration::from_secs(30)).await;
    assert_eq!(ids(&receiver), [1, 3, 4]);
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

    // The console's files hold no data and are served without the token; the page asks for it.
    let page = http.get(busbar.url("/ui/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let tag = page.headers()["etag"].clone();
    assert!(page.text().await.unwrap().contains("/ui/app.js"));
    let again = http.get(busbar.url("/ui/")).header("if-none-match", tag).send().await.unwrap();
    assert_eq!(again.status(), 304, "an unchanged file is not sent again");
    for (path, kind) in [("/ui/app.js", "text/javascript; charset=utf-8"), ("/ui/app.css", "text/css; charset=utf-8")] {
        let asset = http.get(busbar.url(path)).send().await.unwrap();
        assert_eq!(asset.status(), 200);
        assert_eq!(asset.headers()["content-type"], kind);
    }
    let bare = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let redirect = bare.get(busbar.url("/ui")).send().await.unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/ui/");
    assert_eq!(http.get(busbar.url("/stats")).send().await.unwrap().status(), 401, "the data the page shows needs the token");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_pause_resume_stop_restart_and_dead_letters_are_redriven() {
    let receiver = Receiver::start().await;
    receiver.status.store(500, std::sync::atomic::Ordering::SeqCst);
    let dir = tempdir();
    let mut p = pipeline(&receiver);
    p["rules"][0]["targets"][0]["retry"] = json!({ "max_attempts": 1, "backoff": { "initial": "10ms", "max": "10ms" } });
    let file = write_pipeline(dir.path(), "shop.json", &p);
    let busbar = Busbar::start(&[&file], &dir.path().join("data"));
    let http = client();
    let put = |path: &str| http.put(busbar.url(path)).send();

    let list: Value = http.get(busbar.url("/connectors")).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["shop/all/log", "shop/big/http", "shop/in"]);
    assert!(list.as_array().unwrap().iter().all(|c| c["state"] == "RUNNING"), "{list}");
    let config: Value = http.get(busbar.url("/connectors/shop/big/http")).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["config"]["connector"], "builtin:http");
    let status: Value = http.get(busbar.url("/connectors/shop/in/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["type"], "source");
    assert_eq!(status["tasks"][0]["state"], "running", "{status}");
    let missing = http.get(busbar.url("/connectors/shop/nope/status")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let wrong_method = http.get(busbar.url("/connectors/shop/in/pause")).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);

    // Two big orders fail at the HTTP target (500, one retry) and are dead-lettered.
    for n in 0..2 {
        let body = json!({ "id": n, "customer": "ada", "total": 500 });
        assert_eq!(http.post(busbar.url("/hooks/in")).json(&body).send().await.unwrap().status(), 202);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let dlq = loop {
        let dlq: Value = http.get(busbar.url("/dlq/shop.big.http.dlq")).send().await.unwrap().json().await.unwrap();
        if dlq["records"].as_array().is_some_and(|r| r.len() == 2) {
            break dlq;
        }
        assert!(std::time::Instant::now() < deadline, "dead letters never appeared: {dlq}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dlq["records"][1]["event"]["detail"]["id"], 1);
    assert_eq!(dlq["records"][0]["headers"]["busbar.target"], "http");
    assert!(dlq["records"][0]["headers"]["busbar.error"].as_str().unwrap().contains("500"), "{dlq}");
    assert_eq!(http.get(busbar.url("/dlq/shop")).send().await.unwrap().status(), 400, "not a DLQ");

    // The target is fixed; re-drive one record, then the rest.
    receiver.status.store(200, std::sync::atomic::Ordering::SeqCst);
    let one: Value = http.post(busbar.url("/dlq/shop.big.http.dlq/redrive")).json(&json!({ "offset": 1 })).send().await.unwrap().json().await.unwrap();
    assert_eq!(one["redriven"], 1, "{one}");
    receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(receiver.bodies()[0]["detail"]["id"], 1);
    let all: Value = http.post(busbar.url("/dlq/shop.big.http.dlq/redrive")).send().await.unwrap().json().await.unwrap();
    assert_eq!(all["redriven"], 2);
    receiver.wait_for(3, Duration::from_secs(30)).await;
    let missing = http.post(busbar.url("/dlq/shop.big.http.dlq/redrive")).json(&json!({ "offset": 99 })).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    // Pausing the webhook source: requests are refused with 503 + Retry-After until it resumes.
    let paused: Value = put("/connectors/shop/in/pause").await.unwrap().json().await.unwrap();
    assert_eq!(paused["state"], "PAUSED");
    let refused = http.post(busbar.url("/hooks/in")).json(&json!({ "customer": "x", "total": 1 })).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    assert_eq!(http.post(busbar.url("/connectors/shop/in/restart")).send().await.unwrap().status(), 409, "restart needs running");
    let resumed: Value = put("/connectors/shop/in/resume").await.unwrap().json().await.unwrap();
    assert_eq!(resumed["state"], "RUNNING");

    // Pausing a target holds its deliveries (nothing lost); resuming delivers them.
    let before = receiver.count();
    assert_eq!(put("/connectors/shop/big/http/pause").await.unwrap().status(), 202);
    for n in 10..13 {
        let body = json!({ "id": n, "customer": "bob", "total": 900 });
        assert_eq!(http.post(busbar.url("/hooks/in")).json(&body).send().await.unwrap().status(), 202);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(receiver.count(), before, "a paused target receives nothing");
    let metric = |series: String| {
        let http = http.clone();
        let url = busbar.url("/metrics");
        async move {
            let text = http.get(url).send().await.unwrap().text().await.unwrap();
            *scrape(&text).get(&series).unwrap_or_else(|| panic!("{series} in {text}"))
        }
    };
    let state = |connector: &str, state: &str| {
        format!(r#"busbar_connector_state{{pipeline="shop",connector="{connector}",instance="{connector}",state="{state}"}}"#)
    };
    assert_eq!(metric(state("shop/big/http", "paused")).await, 1.0);
    assert_eq!(metric(state("shop/big/http", "running")).await, 0.0);
    put("/connectors/shop/big/http/resume").await.unwrap();
    receiver.wait_for(before + 3, Duration::from_secs(30)).await;

    // Stop closes the instances; resume opens them again; restart works while running.
    let stopped: Value = put("/connectors/shop/all/log/stop").await.unwrap().json().await.unwrap();
    assert_eq!(stopped["state"], "STOPPED");
    assert_eq!(stopped["tasks"][0]["state"], "closed", "{stopped}");
    assert_eq!(metric(state("shop/all/log", "stopped")).await, 1.0);
    assert_eq!(put("/connectors/shop/all/log/pause").await.unwrap().status(), 409, "pause needs a running connector");
    let resumed: Value = put("/connectors/shop/all/log/resume").await.unwrap().json().await.unwrap();
    assert_eq!(resumed["tasks"][0]["state"], "running", "{resumed}");
    let restarted: Value = http.post(busbar.url("/connectors/shop/all/log/restart")).send().await.unwrap().json().await.unwrap();
    assert_eq!(restarted["tasks"][0]["restarts"], 2, "stop+resume and restart each re-open the instance: {restarted}");
    let restarts = r#"busbar_connector_restarts_total{pipeline="shop",connector="shop/all/log",instance="shop/all/log"}"#;
    assert_eq!(metric(restarts.to_owned()).await, 2.0);
    assert_eq!(metric(state("shop/all/log", "running")).await, 1.0);

    // Plugins and config validation against their schemas.
    let plugins: Value = http.get(busbar.url("/connector-plugins")).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = plugins.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    for expected in ["builtin:http", "builtin:http-webhook", "builtin:sql", "builtin:sql-poll", "builtin:http-poll", "builtin:log", "builtin:topic"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let http_plugin = plugins.as_array().unwrap().iter().find(|p| p["name"] == "builtin:http").unwrap();
    assert!(http_plugin["config_schema"]["properties"]["url"].is_object());
    let verdict: Value = http.put(busbar.url("/connector-plugins/builtin:http/config/validate")).json(&json!({ "url": "ftp://x" })).send().await.unwrap().json().await.unwrap();
    assert_eq!(verdict["error_count"], 1, "{verdict}");
    assert!(verdict["errors"][0].as_str().unwrap().contains("/url"), "names the field: {verdict}");
    let verdict: Value = http.put(busbar.url("/connector-plugins/http/config/validate")).json(&json!({ "url": "https://x.example/{$.id}" })).send().await.unwrap().json().await.unwrap();
    assert_eq!(verdict["error_count"], 0, "{verdict}");
    assert_eq!(http.put(busbar.url("/connector-plugins/nope/config/validate")).json(&json!({})).send().await.unwrap().status(), 404);
    busbar.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_and_the_routes_agree() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let file = write_pipeline(dir.path(), "shop.json", &pipeline(&receiver));
    let busbar = Busbar::start(&[&file], &dir.path().join("data"));
    let http = client();
    // One delivered event, so the router's group has committed offsets.
    let body = json!({ "id": 1, "customer": "ada", "total": 500 });
    assert_eq!(http.post(busbar.url("/hooks/in")).json(&body).send().await.unwrap().status(), 202);
    receiver.wait_for(1, Duration::from_secs(30)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while http.get(busbar.url("/groups/busbar.router.shop")).send().await.unwrap().status() == 404 {
        assert!(std::time::Instant::now() < deadline, "the router never committed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let doc: Value = http.get(busbar.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    // Every documented route answers (not 404 for the route itself, not 405 for its method).
    let sample = |path: &str| {
        path.replace("{name}", if path.starts_with("/connectors/") { "shop/in" } else if path.starts_with("/connector-plugins") { "builtin:log" } else { "shop" })
            .replace("{id}", "busbar.router.shop")
            .replace("{topic}", "shop.big.http.dlq")
    };
    let mut checked = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let url = busbar.url(&sample(path));
            let request = match method.as_str() {
                "get" => http.get(&url),
                "post" => http.post(&url).json(&json!({})),
                "put" => http.put(&url).json(&json!({})),
                other => panic!("unexpected method {other} for {path}"),
            };
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            if status == 404 {
                let error: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                assert_eq!(error["code"], "not_found", "{method} {path}: a 404 must come from the handler, not the router: {body}");
                assert!(path.contains("/replay/"), "{method} {path} answered 404 for a sample that exists: {body}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "{checked} operations checked");
    // And every route the server has is documented: unknown paths under the API are 404 from the router.
    let routes_in_source = include_str!("../src/serve/api.rs")
        .lines()
        .filter_map(|l| l.trim().strip_prefix(".route(\""))
        .map(|l| l.split('"').next().unwrap().to_owned())
        .collect::<Vec<_>>();
    for route in routes_in_source {
        let documented = match route.as_str() {
            "/connectors/{*rest}" => paths.contains_key("/connectors/{name}/status"),
            other => paths.contains_key(other),
        };
        assert!(documented, "route {route} is not in openapi.json");
    }
    busbar.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connectors_command_lists_pauses_and_resumes() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let file = write_pipeline(dir.path(), "shop.json", &pipeline(&receiver));
    let busbar = Busbar::start(&[&file], &dir.path().join("data"));
    let api = format!("http://{}", busbar.http);
    let run = move |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_busbar")).arg("connectors").args(args).args(["--api", &api]).output().unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, out, _) = tokio::task::spawn_blocking({ let run = run.clone(); move || run(&["list"]) }).await.unwrap();
    assert_eq!(code, Some(0));
    assert!(out.lines().any(|l| l.starts_with("shop/big/http") && l.contains("RUNNING") && l.contains("builtin:http")), "{out}");
    let (code, out, _) = tokio::task::spawn_blocking({ let run = run.clone(); move || run(&["pause", "shop/in"]) }).await.unwrap();
    assert_eq!(code, Some(0));
    assert!(out.contains("shop/in PAUSED"), "{out}");
    let (code, out, _) = tokio::task::spawn_blocking({ let run = run.clone(); move || run(&["status", "shop/in", "-o", "json"]) }).await.unwrap();
    assert_eq!(code, Some(0));
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["state"], "PAUSED");
    let (code, _, err) = tokio::task::spawn_blocking({ let run = run.clone(); move || run(&["restart", "shop/in"]) }).await.unwrap();
    assert_eq!(code, Some(2), "a paused connector is resumed, not restarted");
    assert!(err.contains("resume"), "{err}");
    let (code, out, _) = tokio::task::spawn_blocking({ let run = run.clone(); move || run(&["resume", "shop/in"]) }).await.unwrap();
    assert_eq!(code, Some(0));
    assert!(out.contains("RUNNING"), "{out}");
    let (code, _, err) = tokio::task::spawn_blocking(move || run(&["status", "shop/nope"])).await.unwrap();
    assert_eq!(code, Some(2));
    assert!(err.contains("shop/in"), "names the connectors that exist: {err}");
    busbar.stop();
}
