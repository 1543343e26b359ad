//! `busbar serve` beyond the happy path: replaying a window of the bus, reloading pipeline files while events
//! flow (and refusing a bad reload), SQL targets and sources on real PostgreSQL and MariaDB, and a connector
//! that traps while a neighbour target carries on.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Busbar, Receiver, databases, table_name, tempdir, write_pipeline};
use serde_json::{Value, json};
use sqlx::Row as _;

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn post(http: &reqwest::Client, busbar: &Busbar, path: &str, body: &Value) -> u16 {
    match http.post(busbar.url(path)).json(body).send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn events_pipeline(receiver: &Receiver, pattern: Value) -> Value {
    json!({
        "name": "events",
        "bus": { "topic": "events", "partitions": 2 },
        "sources": {
            "in": { "connector": "builtin:http-webhook",
                    "config": { "path": "/hooks/in", "source": "app", "detail-type": "thing", "key": "/key" } }
        },
        "rules": [
            { "name": "forward", "pattern": pattern,
              "targets": [
                { "name": "http", "connector": "builtin:http",
                  "grants": { "http": [receiver.addr.to_string()] },
                  "config": { "url": receiver.url("/in") },
                  "input_transformer": { "input_paths_map": { "n": "$.detail.n", "kind": "$.detail.kind" },
                                         "input_template": "{\"n\": <n>, \"kind\": <kind>}" } },
                { "name": "log", "connector": "builtin:log", "config": { "level": "debug" } } ] }
        ]
    })
}

fn received_ns(receiver: &Receiver) -> Vec<u64> {
    receiver.bodies().iter().map(|b| b["n"].as_u64().unwrap()).collect()
}

fn busbar_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_busbar")).args(args).output().expect("run busbar")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_redelivers_a_time_window_to_one_target() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let file = write_pipeline(dir.path(), "events.json", &events_pipeline(&receiver, json!({ "source": ["app"] })));
    let busbar = Busbar::start(&[&file], &dir.path().join("data"));
    let http = client();
    for n in 0..10u64 {
        let status = post(&http, &busbar, "/hooks/in", &json!({ "n": n, "kind": "a", "key": format!("k{}", n % 3) })).await;
        assert_eq!(status, 202);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let middle = now_ms();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for n in 10..16u64 {
        let status = post(&http, &busbar, "/hooks/in", &json!({ "n": n, "kind": "a", "key": format!("k{}", n % 3) })).await;
        assert_eq!(status, 202);
    }
    receiver.wait_for(16, Duration::from_secs(30)).await;

    let api = format!("http://{}", busbar.http);
    let from = middle.to_string();
    let output = tokio::task::spawn_blocking(move || {
        busbar_cli(&["replay", "--api", &api, "--pipeline", "events", "--rule", "forward", "--target", "http", "--from", &from])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "replay failed: {stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("6 records in the window, 6 matched, 6 events queued"), "{stdout}");
    receiver.wait_for(22, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut replayed = received_ns(&receiver)[16..].to_vec();
    replayed.sort_unstable();
    assert_eq!(replayed, (10..16).collect::<Vec<_>>(), "exactly the window, once more");
    assert_eq!(receiver.count(), 22, "the log target was not asked for, and nothing else was re-sent");

    // A window in the past with an end: nothing before `middle`'s first record, nothing after.
    let api = format!("http://{}", busbar.http);
    let (from, to) = ((middle - 60_000).to_string(), middle.to_string());
    let output = tokio::task::spawn_blocking(move || {
        busbar_cli(&["replay", "--api", &api, "--pipeline", "events", "--rule", "forward", "--from", &from, "--to", &to])
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("10 records in the window, 10 matched, 20 events queued"),
        "both targets of the rule: {}", String::from_utf8_lossy(&output.stdout));
    receiver.wait_for(32, Duration::from_secs(30)).await;

    // Bad requests say what is wrong and what exists.
    let api = format!("http://{}", busbar.http);
    let output = tokio::task::spawn_blocking(move || {
        busbar_cli(&["replay", "--api", &api, "--pipeline", "events", "--rule", "nope", "--from", "1h"])
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"nope\"") && stderr.contains("forward"), "names the rule and the known ones: {stderr}");
    let output = busbar_cli(&["replay", "--api", "http://127.0.0.1:9", "--pipeline", "x", "--rule", "y", "--from", "yesterday"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a time"), "{}", String::from_utf8_lossy(&output.stderr));
    let response = http.post(busbar.url("/replay")).body("{not json").header("content-type", "application/json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "bad_request", "{error}");
    let response = http.get(busbar.url("/replay/99")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    busbar.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_rules_without_dropping_events_and_a_bad_file_keeps_the_old_ones() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let only_a = events_pipeline(&receiver, json!({ "detail": { "kind": ["a"] } }));
    let file = write_pipeline(dir.path(), "events.json", &only_a);
    let log = dir.path().join("busbar.log");
    let busbar = Busbar::start_logged(&[&file], &dir.path().join("data"), &log);
    let http = client();

    // Kind "a" flows the whole time; the reload happens in the middle of it.
    let flow = {
        let http = http.clone();
        let url = busbar.url("/hooks/in");
        tokio::spawn(async move {
            for n in 0..300u64 {
                let body = json!({ "n": n, "kind": "a", "key": format!("k{}", n % 5) });
                let response = http.post(&url).json(&body).send().await.expect("post");
                assert_eq!(response.status(), 202);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    for n in 1000..1010u64 {
        assert_eq!(post(&http, &busbar, "/hooks/in", &json!({ "n": n, "kind": "b", "key": "b" })).await, 202);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a_or_b = events_pipeline(&receiver, json!({ "detail": { "kind": ["a", "b"] } }));
    write_pipeline(dir.path(), "events.json", &a_or_b);
    busbar.hangup();
    // Kind "b" starts matching once the new rules are in.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut probe = 2000u64;
    loop {
        assert_eq!(post(&http, &busbar, "/hooks/in", &json!({ "n": probe, "kind": "b", "key": "b" })).await, 202);
        tokio::time::sleep(Duration::from_millis(100)).await;
        if received_ns(&receiver).iter().any(|&n| n >= 2000) {
            break;
        }
        assert!(Instant::now() < deadline, "the reloaded rule never matched kind b");
        probe += 1;
    }
    flow.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got: BTreeSet<u64> = received_ns(&receiver).into_iter().filter(|&n| n < 300).collect();
        if got.len() == 300 {
            break;
        }
        assert!(Instant::now() < deadline, "kind a events lost across the reload: {} of 300", got.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ns = received_ns(&receiver);
    assert!(!ns.iter().any(|n| (1000..1010).contains(n)), "kind b before the reload never matched the old rule");
    let a_count = ns.iter().filter(|&&n| n < 300).count();
    assert_eq!(a_count, 300, "each kind-a event delivered once, none dropped or doubled by the swap");

    // A reload that fails validation keeps the running rules and says why.
    std::fs::write(&file, r#"{ "name": "events", "rules": [ { "name": "forward", "pattern": { "detail": { "n": [{ "numeric": ["~", 1] }] } }, "targets": [] } ] }"#).unwrap();
    busbar.hangup();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("reload rejected") {
        assert!(Instant::now() < deadline, "no rejection in the log: {}", std::fs::read_to_string(&log).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("events.json:1:") && logged.contains("numeric"), "says where and what: {logged}");
    let before = receiver.count();
    assert_eq!(post(&http, &busbar, "/hooks/in", &json!({ "n": 5000, "kind": "b", "key": "b" })).await, 202);
    receiver.wait_for(before + 1, Duration::from_secs(30)).await;
    assert_eq!(received_ns(&receiver).last(), Some(&5000), "the previous rules still run");

    // A version that validates but cannot start (its new source is not a component) changes nothing: the rules
    // stay the previous ones (kind "c" is not routed), the webhook keeps taking events.
    let broken = dir.path().join("broken.wasm");
    std::fs::write(&broken, b"\0asm but not a component").unwrap();
    let mut abc = events_pipeline(&receiver, json!({ "detail": { "kind": ["a", "b", "c"] } }));
    abc["sources"]["broken"] = json!({ "connector": broken.to_str().unwrap() });
    write_pipeline(dir.path(), "events.json", &abc);
    busbar.hangup();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("reload failed; kept the previous version") {
        assert!(Instant::now() < deadline, "no failed reload in the log: {}", std::fs::read_to_string(&log).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = receiver.count();
    assert_eq!(post(&http, &busbar, "/hooks/in", &json!({ "n": 6000, "kind": "c", "key": "c" })).await, 202);
    assert_eq!(post(&http, &busbar, "/hooks/in", &json!({ "n": 6001, "kind": "b", "key": "c" })).await, 202);
    receiver.wait_for(before + 1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ns = received_ns(&receiver);
    assert!(ns.contains(&6001), "the running version still delivers");
    assert!(!ns.contains(&6000), "the rules of the version that failed to start were not put in place");
    busbar.stop();
}

enum Db {
    Pg(sqlx::PgPool),
    My(sqlx::MySqlPool),
}

impl Db {
    async fn connect(url: &str) -> Db {
        if url.starts_with("postgres") {
            Db::Pg(sqlx::PgPool::connect(url).await.expect("connect to PostgreSQL"))
        } else {
            Db::My(sqlx::MySqlPool::connect(url).await.expect("connect to MariaDB"))
        }
    }

    async fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Db::Pg(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
            Db::My(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("SQL failed: {e}"));
    }

    /// `(id, name, total)` rows, by id.
    async fn rows(&self, table: &str) -> Vec<(i64, String, f64)> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT id, name, total FROM {table} ORDER BY id"));
        match self {
            Db::Pg(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
            Db::My(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_events_are_upserted_into_postgres_and_mariadb() {
    let dbs = databases();
    if dbs.is_empty() {
        return;
    }
    let dir = tempdir();
    let mut files = Vec::new();
    let mut tables = Vec::new();
    for (label, dialect, url) in &dbs {
        let db = Db::connect(url).await;
        let table = table_name(&format!("serve_{label}"));
        db.exec(&format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, total DOUBLE PRECISION)")).await;
        let pipeline = json!({
            "name": format!("orders-{label}"),
            "bus": { "topic": format!("orders-{label}"), "partitions": 2 },
            "connections": { "db": { "url": url } },
            "sources": { "shop": { "connector": "builtin:http-webhook",
                                   "config": { "path": format!("/hooks/{label}"), "source": "shop", "detail-type": "order", "key": "/id" } } },
            "rules": [ { "name": "store", "pattern": { "detail-type": ["order"] },
                         "targets": [ { "name": "table", "connector": "builtin:sql", "grants": { "sql": ["db"] },
                                        "config": { "connection": "db", "dialect": dialect, "table": table, "mode": "upsert", "key": ["id"],
                                                    "columns": { "id": "$.detail.id", "name": "/detail/name", "total": "$.detail.total" } },
                                        "batch": { "max_records": 50, "max_wait": "20ms" } } ] } ]
        });
        files.push(write_pipeline(dir.path(), &format!("{label}.json"), &pipeline));
        tables.push((label.to_string(), db, table));
    }
    let paths: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
    let busbar = Busbar::start(&paths, &dir.path().join("data"));
    let http = client();
    for (label, _, _) in &tables {
        for id in 0..100i64 {
            let body = json!({ "id": id, "name": format!("v1-{id}"), "total": id as f64 / 2.0 });
            assert_eq!(post(&http, &busbar, &format!("/hooks/{label}"), &body).await, 202);
        }
        // Updates of the same keys: per-key order means the last one wins.
        for id in 0..20i64 {
            let body = json!({ "id": id, "name": format!("v2-{id}"), "total": 1000.0 + id as f64 });
            assert_eq!(post(&http, &busbar, &format!("/hooks/{label}"), &body).await, 202);
        }
    }
    for (label, db, table) in &tables {
        let expected: Vec<(i64, String, f64)> = (0..100i64)
            .map(|id| if id < 20 { (id, format!("v2-{id}"), 1000.0 + id as f64) } else { (id, format!("v1-{id}"), id as f64 / 2.0) })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let rows = db.rows(table).await;
            if rows == expected {
                break;
            }
            assert!(Instant::now() < deadline, "{label}: rows after 60 s: {} of 100, first {:?}", rows.len(), rows.first());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        db.exec(&format!("DROP TABLE {table}")).await;
    }
    busbar.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_polled_from_postgres_and_mariadb_reach_an_http_target_once() {
    let dbs = databases();
    if dbs.is_empty() {
        return;
    }
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let mut files = Vec::new();
    let mut tables = Vec::new();
    for (label, dialect, url) in &dbs {
        let db = Db::connect(url).await;
        let table = table_name(&format!("poll_{label}"));
        db.exec(&format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, total DOUBLE PRECISION)")).await;
        for id in 1..=30i64 {
            db.exec(&format!("INSERT INTO {table} VALUES ({id}, 'row-{id}', {id}.5)")).await;
        }
        let mut config = json!({ "connection": "db", "dialect": dialect, "table": table, "mode": "incrementing",
                                 "incrementing-column": "id", "key-column": "id", "source": format!("db.{label}"), "interval": "200ms" });
        if *label == "pg" {
            // PostgreSQL wakes the poll at once through LISTEN/NOTIFY; the interval alone would take an hour.
            config["interval"] = json!("1h");
            config["notify-channel"] = json!(format!("{table}_changed"));
        }
        let pipeline = json!({
            "name": format!("rows-{label}"),
            "bus": { "topic": format!("rows-{label}"), "partitions": 2 },
            "connections": { "db": { "url": url } },
            "sources": { "table": { "connector": "builtin:sql-poll", "grants": { "sql": ["db"] }, "config": config } },
            "rules": [ { "name": "ship", "pattern": { "source": [format!("db.{label}")] },
                         "targets": [ { "name": "http", "connector": "builtin:http", "grants": { "http": [receiver.addr.to_string()] },
                                        "config": { "url": receiver.url(&format!("/{label}")) },
                                        "input_transformer": { "input_paths_map": { "id": "$.detail.id", "name": "$.detail.name" },
                                                               "input_template": format!("{{\"db\": \"{label}\", \"id\": <id>, \"name\": <name>}}") } } ] } ]
        });
        files.push(write_pipeline(dir.path(), &format!("{label}.json"), &pipeline));
        tables.push((label.to_string(), db, table));
    }
    let paths: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
    let data = dir.path().join("data");
    let busbar = Busbar::start(&paths, &data);
    // The PostgreSQL source polls once at start, then only when notified.
    receiver.wait_for(30 * tables.len(), Duration::from_secs(60)).await;
    for (label, db, table) in &tables {
        for id in 31..=40i64 {
            db.exec(&format!("INSERT INTO {table} VALUES ({id}, 'row-{id}', {id}.5)")).await;
        }
        if label == "pg" {
            db.exec(&format!("NOTIFY {table}_changed")).await;
        }
    }
    receiver.wait_for(40 * tables.len(), Duration::from_secs(30)).await;
    // A restart resumes from the durable cursor: old rows are not sent again.
    busbar.stop();
    let busbar = Busbar::start(&paths, &data);
    for (label, db, table) in &tables {
        db.exec(&format!("INSERT INTO {table} VALUES (41, 'row-41', 41.5)")).await;
        if label == "pg" {
            db.exec(&format!("NOTIFY {table}_changed")).await;
        }
    }
    receiver.wait_for(41 * tables.len(), Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (label, db, table) in &tables {
        let ids: Vec<i64> = receiver
            .bodies()
            .iter()
            .filter(|b| b["db"] == label.as_str())
            .map(|b| b["id"].as_i64().unwrap())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=41).collect::<Vec<_>>(), "{label}: every row once, none again after the restart");
        assert!(receiver.bodies().iter().any(|b| b["db"] == label.as_str() && b["name"] == "row-7"), "{label}: transformed");
        db.exec(&format!("DROP TABLE {table}")).await;
    }
    busbar.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_traps_is_retried_and_dead_lettered_while_its_neighbour_delivers_everything() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let probe = busbar_connectors::test_guest("probe-sink").expect("the probe-sink test guest is built");
    let pipeline = json!({
        "name": "mixed",
        "bus": { "topic": "mixed", "partitions": 1 },
        "sources": { "in": { "connector": "builtin:http-webhook", "config": { "path": "/hooks/in", "source": "app", "detail-type": "thing" } } },
        "rules": [ { "name": "both", "pattern": { "source": ["app"] },
                     "targets": [
                        { "name": "fragile", "connector": probe, "grants": { "state": true }, "config": { "label": "fragile" },
                          "input_transformer": { "input_paths_map": { "cmd": "$.detail.cmd" }, "input_template": "<cmd>" },
                          "retry": { "max_attempts": 2, "backoff": { "initial": "10ms", "max": "50ms" } } },
                        { "name": "http", "connector": "builtin:http", "grants": { "http": [receiver.addr.to_string()] },
                          "config": { "url": receiver.url("/in") } } ] } ]
    });
    let file = write_pipeline(dir.path(), "mixed.json", &pipeline);
    let busbar = Busbar::start(&[&file], &dir.path().join("data"));
    let http = client();
    for n in 0..20u64 {
        let cmd = if n % 5 == 0 { format!("!trap boom-{n}") } else { format!("fine-{n}") };
        assert_eq!(post(&http, &busbar, "/hooks/in", &json!({ "n": n, "cmd": cmd })).await, 202);
    }
    receiver.wait_for(20, Duration::from_secs(60)).await;
    let ns: Vec<u64> = receiver.bodies().iter().map(|b| b["detail"]["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, (0..20).collect::<Vec<_>>(), "the neighbour got every event, in order");

    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", busbar.broker.to_string())
        .set("group.id", "trap-dlq-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    use rdkafka::Message as _;
    use rdkafka::consumer::Consumer as _;
    use rdkafka::message::Headers as _;
    consumer.subscribe(&["mixed.both.fragile.dlq"]).unwrap();
    let mut dead = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while dead.len() < 4 && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let event: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
            let error = message
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "busbar.error").and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned())))
                .unwrap_or_default();
            dead.push((event["detail"]["n"].as_u64().unwrap(), error));
        }
    }
    let dead_ns: Vec<u64> = dead.iter().map(|(n, _)| *n).collect();
    assert_eq!(dead_ns, vec![0, 5, 10, 15], "only the trapping events, after their retries");
    assert!(dead.iter().all(|(_, e)| e.contains("trap")), "the DLQ says the connector trapped: {dead:?}");
    busbar.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_instances_of_a_target_keep_per_key_order_and_lose_nothing() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let mut pipeline = events_pipeline(&receiver, json!({ "source": ["app"] }));
    let targets = &mut pipeline["rules"][0]["targets"];
    targets[0]["tasks"] = json!(4);
    targets[0]["batch"] = json!({ "max_records": 32, "max_wait": "5ms" });
    // A second target with no order promise, spread evenly over 3 instances.
    targets[1] = json!({ "name": "unordered", "connector": "builtin:http", "grants": { "http": [receiver.addr.to_string()] },
                         "config": { "url": receiver.url("/unordered") }, "ordering": "none", "tasks": 3,
                         "batch": { "max_records": 32, "max_wait": "5ms" } });
    let file = write_pipeline(dir.path(), "events.json", &pipeline);
    let busbar = Busbar::start(&[&file], &dir.path().join("data"));
    let http = client();
    let posts: Vec<_> = (0..8u64)
        .map(|k| {
            let http = http.clone();
            let url = busbar.url("/hooks/in");
            tokio::spawn(async move {
                for i in 0..25u64 {
                    let body = json!({ "n": k * 1000 + i, "kind": "a", "key": format!("key-{k}") });
                    assert_eq!(http.post(&url).json(&body).send().await.unwrap().status(), 202);
                }
            })
        })
        .collect();
    for post in posts {
        post.await.unwrap();
    }
    receiver.wait_for(400, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 400, "200 events x 2 targets, each once");
    let mut ordered: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    let mut unordered = BTreeSet::new();
    for r in &received {
        let body = r.json();
        match body.get("n") {
            Some(n) => ordered.entry(n.as_u64().unwrap() / 1000).or_default().push(n.as_u64().unwrap() % 1000),
            None => {
                assert!(unordered.insert(body["detail"]["n"].as_u64().unwrap()), "delivered twice: {body}");
            }
        }
    }
    for (key, seq) in &ordered {
        assert_eq!(seq, &(0..25).collect::<Vec<_>>(), "key-{key} in the order posted, over 4 instances");
    }
    assert_eq!(unordered.len(), 200);
    busbar.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_takes_no_more_events_once_it_holds_max_bytes() {
    let receiver = Receiver::start().await;
    let dir = tempdir();
    let mut pipeline = events_pipeline(&receiver, json!({ "source": ["app"] }));
    // A long wait and room for 500: counted by records alone, the 40 events below would make one or two batches.
    pipeline["rules"][0]["targets"][0]["batch"] = json!({ "max_records": 500, "max_wait": "3s", "max_bytes": 8192 });
    let file = write_pipeline(dir.path(), "events.json", &pipeline);
    let busbar = Busbar::start(&[&file], &dir.path().join("data"));
    let http = client();
    let pad = "x".repeat(2000);
    for n in 0..40u64 {
        // ~2.3 KB each as an envelope: a batch is full at its fourth.
        assert_eq!(post(&http, &busbar, "/hooks/in", &json!({ "n": n, "kind": "a", "key": "k", "pad": pad })).await, 202);
    }
    receiver.wait_for(40, Duration::from_secs(30)).await;
    assert_eq!(received_ns(&receiver), (0..40).collect::<Vec<_>>(), "every event once, in order");
    let text = http.get(busbar.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let series = r#"busbar_target_batches_total{pipeline="events",rule="forward",target="http"} "#;
    let batches: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {text}"));
    assert!((10.0..=40.0).contains(&batches), "batches of at most 4 events of ~2.3 KB under 8 KB: {batches}");
    busbar.stop();
}
