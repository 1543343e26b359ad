//! Helpers for end-to-end tests of the `busbar` binary: start `busbar serve` on free ports, and real HTTP
//! receivers whose behaviour the test controls.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;

/// A running `busbar serve`.
pub struct Busbar {
    pub child: Child,
    pub http: SocketAddr,
    pub broker: SocketAddr,
}

impl Busbar {
    /// Starts `busbar serve` on `files` with free ports and waits until it says it is serving.
    pub fn start(files: &[&Path], data_dir: &Path) -> Busbar {
        Self::start_with(files, data_dir, Stdio::inherit(), &[])
    }

    /// Like [`Busbar::start`], with extra environment variables.
    pub fn start_env(files: &[&Path], data_dir: &Path, env: &[(&str, &str)]) -> Busbar {
        Self::start_with(files, data_dir, Stdio::inherit(), env)
    }

    /// Like [`Busbar::start`], with the process's log (stderr) written to `log`.
    pub fn start_logged(files: &[&Path], data_dir: &Path, log: &Path) -> Busbar {
        Self::start_with(files, data_dir, std::fs::File::create(log).expect("log file").into(), &[])
    }

    fn start_with(files: &[&Path], data_dir: &Path, stderr: Stdio, env: &[(&str, &str)]) -> Busbar {
        let mut command = Command::new(env!("CARGO_BIN_EXE_busbar"));
        command
            .arg("serve")
            .args(files)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http-listen", "127.0.0.1:0", "--broker-listen", "127.0.0.1:0"])
            .env("BUSBAR_LOG", "warn,busbar=info")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn busbar serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx.recv_timeout(Duration::from_secs(120)).expect("busbar serve did not start in 120 s");
        // "busbar serving: broker 127.0.0.1:X http 127.0.0.1:Y pipelines a,b"
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = |label: &str| -> SocketAddr {
            let i = words.iter().position(|w| *w == label).unwrap_or_else(|| panic!("no {label} in {line:?}"));
            words[i + 1].parse().expect("address")
        };
        Busbar { http: at("http"), broker: at("broker"), child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Sends SIGHUP: reload the pipeline files.
    pub fn hangup(&self) {
        let status = Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// SIGKILL: no shutdown work at all.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("busbar did not stop within 30 s of SIGTERM");
    }
}

impl Drop for Busbar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// A real HTTP server that records what it receives and answers with the status the test sets.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub status: Arc<AtomicU16>,
    pub attempts: Arc<Mutex<u64>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let receiver = Receiver {
            addr: "127.0.0.1:0".parse().unwrap(),
            received: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            attempts: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/{*rest}", any(record)).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
        Receiver { addr, ..receiver }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.received.lock().unwrap().iter().map(Received::json).collect()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits until `n` requests were accepted, or panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.count() < n {
            assert!(Instant::now() < deadline, "receiver got {} of {n} requests in {timeout:?}", self.count());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn record(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    *receiver.attempts.lock().unwrap() += 1;
    let status = StatusCode::from_u16(receiver.status.load(Ordering::SeqCst)).unwrap();
    if status.is_success() {
        receiver.received.lock().unwrap().push(Received { headers, body });
    }
    status
}

/// Writes `pipeline` into `dir/name` and returns the path.
pub fn write_pipeline(dir: &Path, name: &str, pipeline: &serde_json::Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(pipeline).unwrap()).unwrap();
    path
}

/// A fresh temporary directory, removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("busbar-e2e-").tempdir().expect("tempdir")
}

/// Whether `what` answers at `addr`. When it does not: skips with a message, or panics when
/// `BUSBAR_REQUIRE_SERVICES=1` (as CI sets), so a missing service never passes silently there.
pub fn service_available(what: &str, addr: &str) -> bool {
    let ok = std::net::TcpStream::connect_timeout(&addr.parse().expect("address"), Duration::from_secs(2)).is_ok();
    if !ok {
        if std::env::var("BUSBAR_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{what} is required (BUSBAR_REQUIRE_SERVICES=1) but nothing answers at {addr}");
        }
        eprintln!("skipping: {what} is not reachable at {addr} (set BUSBAR_REQUIRE_SERVICES=1 to make this fail)");
    }
    ok
}

/// The test databases that answer: `(label, dialect, url)` for PostgreSQL and MariaDB.
pub fn databases() -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    if service_available("PostgreSQL", "127.0.0.1:5432") {
        let user = std::env::var("BUSBAR_PG_USER").unwrap_or_else(|_| "postgres".into());
        out.push(("pg", "postgres", format!("postgres://{user}@127.0.0.1:5432/test")));
    }
    if service_available("MariaDB", "127.0.0.1:3306") {
        out.push(("maria", "mysql", "mysql://root@127.0.0.1:3306/test".to_owned()));
    }
    out
}

/// A table name unique to this test run.
pub fn table_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("busbar_{prefix}_{}_{nanos}", std::process::id())
}
