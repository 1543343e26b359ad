//! The web console in a real browser: `busbar serve` with an API token and a pipeline with a webhook source, an
//! HTTP target that fails until the test fixes it, a transforming log target and a probe connector that traps on
//! command; then tests/console/console.test.mjs (playwright-core driving Chromium) signs in, watches live counts,
//! re-drives a dead letter, restarts the failed connector, checks the playground and measures the first load.
//! Screenshots and timing.json go to `<target>/console-artifacts/`.
//!
//! Needs node, Chromium and tests/console/node_modules (tests/console/setup.sh installs them). Without them the
//! test says so and passes, unless BUSBAR_REQUIRE_SERVICES=1 (CI), where it runs the setup script itself and
//! any failure is a test failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{any, get, put};
use common::{Busbar, tempdir, write_pipeline};
use serde_json::{Value, json};

const TOKEN: &str = "console-test-token-0123456789";

/// The HTTP target: answers with the status the browser test sets (`PUT /control/status`) and lists what it
/// accepted (`GET /control/received`).
#[derive(Clone, Default)]
struct Target {
    status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Value>>>,
}

async fn start_target() -> (std::net::SocketAddr, Target) {
    let target = Target { status: Arc::new(AtomicU16::new(500)), ..Target::default() };
    let app = axum::Router::new()
        .route(
            "/control/status",
            put(|State(t): State<Target>, body: String| async move {
                let code: u16 = body.trim().parse().map_err(|_| StatusCode::BAD_REQUEST)?;
                t.status.store(code, Ordering::SeqCst);
                Ok::<_, StatusCode>(StatusCode::NO_CONTENT)
            }),
        )
        .route(
            "/control/received",
            get(|State(t): State<Target>| async move { axum::Json(Value::Array(t.received.lock().unwrap().clone())) }),
        )
        .route(
            "/{*rest}",
            any(|State(t): State<Target>, body: axum::body::Bytes| async move {
                let status = StatusCode::from_u16(t.status.load(Ordering::SeqCst)).unwrap();
                if status.is_success() {
                    t.received.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                }
                status
            }),
        )
        .with_state(target.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, target)
}

fn pipeline(target: std::net::SocketAddr, probe: &Path) -> Value {
    let quick_retry = json!({ "max_attempts": 1, "backoff": { "initial": "10ms", "max": "10ms" } });
    json!({
        "name": "shop",
        "bus": { "topic": "shop", "partitions": 2, "retention": "7d" },
        "sources": { "in": { "connector": "builtin:http-webhook",
                             "config": { "path": "/hooks/in", "source": "shop", "detail-type": "order", "key": "/customer" } } },
        "rules": [
            { "name": "big", "pattern": { "detail": { "total": [{ "numeric": [">", 100] }] } },
              "targets": [
                { "name": "http", "connector": "builtin:http", "grants": { "http": [target.to_string()] },
                  "config": { "url": format!("http://{target}/orders") }, "retry": quick_retry },
                { "name": "audit", "connector": "builtin:log", "config": { "level": "debug" },
                  "input_transformer": { "input_paths_map": { "id": "$.detail.id", "total": "$.detail.total" },
                                         "input_template": "{\"order\": <id>, \"total\": <total>}" } } ] },
            { "name": "all", "pattern": { "source": ["shop"] },
              "targets": [ { "name": "log", "connector": "builtin:log", "config": { "level": "debug" } } ] },
            { "name": "fragile", "pattern": { "detail": { "cmd": [{ "exists": true }] } },
              "targets": [ { "name": "probe", "connector": probe, "grants": { "state": true }, "config": { "label": "fragile" },
                             "input_transformer": { "input_paths_map": { "cmd": "$.detail.cmd" }, "input_template": "<cmd>" },
                             "retry": quick_retry } ] }
        ]
    })
}

/// node, the browser and playwright-core, or why the test cannot run.
struct Tools {
    chromium: PathBuf,
}

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("console")
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

fn find_chromium() -> Option<PathBuf> {
    if let Some(given) = std::env::var_os("BUSBAR_CHROMIUM").map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(given);
    }
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| on_path(name))
}

fn tools() -> Option<Tools> {
    let dir = console_dir();
    if std::env::var("BUSBAR_REQUIRE_SERVICES").as_deref() == Ok("1") {
        // CI: install whatever is missing; a failure to do so fails the test.
        let output = Command::new("bash").arg(dir.join("setup.sh")).output().expect("running tests/console/setup.sh");
        assert!(
            output.status.success(),
            "tests/console/setup.sh failed (BUSBAR_REQUIRE_SERVICES=1):\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let chromium = String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().trim().to_owned();
        return Some(Tools { chromium: PathBuf::from(chromium) });
    }
    let mut missing = Vec::new();
    if on_path("node").is_none() {
        missing.push("node");
    }
    let chromium = find_chromium();
    if chromium.is_none() {
        missing.push("Chromium (or set BUSBAR_CHROMIUM)");
    }
    if !dir.join("node_modules").join("playwright-core").is_dir() {
        missing.push("tests/console/node_modules (npm ci)");
    }
    if !missing.is_empty() {
        eprintln!(
            "skipping the console browser test: missing {}. Run tests/console/setup.sh to install them; with \
             BUSBAR_REQUIRE_SERVICES=1 (as CI sets) this test installs them itself and fails if it cannot.",
            missing.join(", ")
        );
        return None;
    }
    Some(Tools { chromium: chromium.expect("checked") })
}

/// `<target>/console-artifacts`, next to the binary under test.
fn artifacts_dir() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_busbar"));
    binary.parent().and_then(Path::parent).expect("target/<profile>/busbar").join("console-artifacts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_live_counts_restarts_a_connector_redrives_a_dead_letter_and_tests_patterns() {
    let Some(tools) = tools() else { return };
    let (target_addr, _target) = start_target().await;
    let probe = Path::new(busbar_connectors::test_guest("probe-sink").expect("the probe-sink test guest is built"));
    let dir = tempdir();
    let file = write_pipeline(dir.path(), "shop.json", &pipeline(target_addr, probe));
    let busbar = Busbar::start_env(&[&file], &dir.path().join("data"), &[("BUSBAR_API_TOKEN", TOKEN)]);

    let artifacts = artifacts_dir();
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();
    let log_path = artifacts.join("console-test.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new("node")
        .arg("console.test.mjs")
        .current_dir(console_dir())
        .env("BUSBAR_URL", busbar.url(""))
        .env("BUSBAR_TOKEN", TOKEN)
        .env("BUSBAR_CHROMIUM", &tools.chromium)
        .env("CONTROL_URL", format!("http://{target_addr}/control"))
        .env("ARTIFACTS", &artifacts)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("starting node");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    println!("{output}");
    println!("screenshots and timing: {}", artifacts.display());
    let status = status.unwrap_or_else(|| panic!("the browser test did not finish in 300 s:\n{output}"));
    assert!(status.success(), "the browser test failed ({status}):\n{output}");
    assert!(output.contains("all steps passed"), "{output}");
    for shot in ["02-pipelines-live-counts", "03-dlq-redriven", "04-connector-failed", "05-connector-restarted", "06-playground"] {
        assert!(artifacts.join(format!("{shot}.png")).is_file(), "screenshot {shot}.png saved");
    }
    busbar.stop();
}
