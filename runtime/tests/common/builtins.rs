//! Helpers for the built-in connectors' tests (`builtin_*.rs`, which include this file with `#[path]`): loading a
//! built-in, a small real HTTP/1.1 server on 127.0.0.1:0 with a scripted responder that records every request,
//! and database URLs with skip-unless-required checks.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use busbar_runtime::host::{Connector, ConnectorTask, Grants, Limits, Runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A runtime without an on-disk cache: tests load built-ins concurrently, and a cache entry written by two loads
/// in one process at once races on its temporary file name.
pub fn runtime() -> Runtime {
    Runtime::new(busbar_runtime::host::RuntimeConfig::default()).expect("runtime")
}

pub async fn load_builtin(rt: &Runtime, name: &str) -> Arc<Connector> {
    rt.load(&format!("builtin:{name}").parse().expect("reference"))
        .await
        .unwrap_or_else(|e| panic!("loading builtin:{name}: {e}"))
}

pub async fn open_builtin(
    rt: &Runtime,
    name: &str,
    config: serde_json::Value,
    grants: Grants,
) -> ConnectorTask {
    let connector = load_builtin(rt, name).await;
    rt.open(
        connector,
        busbar_runtime::host::OpenOptions {
            name: format!("test-{name}"),
            config,
            grants,
            limits: Limits::default(),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("opening builtin:{name}: {e}"))
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON request body")
    }
}

/// What the server answers: status, headers, body, and how long to wait before answering.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

pub type Responder = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

/// A real HTTP/1.1 server (one request per connection, fixed-length or chunked request bodies).
pub struct TestServer {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl TestServer {
    pub async fn start(
        responder: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let responder: Responder = Arc::new(responder);
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (log, responder) = (log.clone(), responder.clone());
                tokio::spawn(async move {
                    let _ = serve_one(sock, log, responder).await;
                });
            }
        });
        TestServer { port, received }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn grant(&self) -> Grants {
        Grants {
            http: vec![format!("127.0.0.1:{}", self.port)],
            ..Grants::default()
        }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn serve_one(
    mut sock: TcpStream,
    log: Arc<Mutex<Vec<Received>>>,
    responder: Responder,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let at = Instant::now();
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut rest = buf[head_end + 4..].to_vec();
    let body = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                let n = sock.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(());
                }
                rest.extend_from_slice(&chunk[..n]);
            };
            let size_text = String::from_utf8_lossy(&rest[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
                .unwrap_or(0);
            while rest.len() < line_end + 2 + size + 2 {
                let n = sock.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(());
                }
                rest.extend_from_slice(&chunk[..n]);
            }
            body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break body;
            }
        }
    } else {
        let len: usize = get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while rest.len() < len {
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    };
    let request = Received {
        method,
        target,
        headers,
        body,
        at,
    };
    let reply = responder(&request);
    log.lock().unwrap().push(request);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut out = format!(
        "HTTP/1.1 {} Status\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (n, v) in &reply.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    sock.write_all(out.as_bytes()).await?;
    sock.write_all(&reply.body).await?;
    sock.shutdown().await
}

/// PostgreSQL test URL, or `None` (with a skip message) when it is not reachable and not required.
pub fn postgres_url() -> Option<String> {
    if !super::common::service_available("PostgreSQL", "127.0.0.1:5432") {
        return None;
    }
    let user = std::env::var("BUSBAR_PG_USER").unwrap_or_else(|_| "postgres".into());
    Some(format!("postgres://{user}@127.0.0.1:5432/test"))
}

/// MariaDB test URL, or `None` (with a skip message) when it is not reachable and not required.
pub fn mariadb_url() -> Option<String> {
    if !super::common::service_available("MariaDB", "127.0.0.1:3306") {
        return None;
    }
    Some("mysql://root@127.0.0.1:3306/test".into())
}

/// A unique table name for one test run.
pub fn table_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("busbar_{prefix}_{}_{nanos}", std::process::id())
}

/// A direct database handle for setting up and checking tables, independent of the connectors under test.
pub enum Db {
    Pg(sqlx::PgPool),
    My(sqlx::MySqlPool),
    Lite(sqlx::SqlitePool),
}

/// One row of the test tables: (id, name, total).
pub type TestRow = (i64, Option<String>, Option<f64>);

impl Db {
    pub async fn connect(url: &str) -> Db {
        if url.starts_with("postgres") {
            Db::Pg(
                sqlx::PgPool::connect(url)
                    .await
                    .expect("connect to PostgreSQL"),
            )
        } else if url.starts_with("mysql") {
            Db::My(
                sqlx::MySqlPool::connect(url)
                    .await
                    .expect("connect to MariaDB"),
            )
        } else {
            Db::Lite(sqlx::SqlitePool::connect(url).await.expect("open SQLite"))
        }
    }

    pub async fn exec(&self, sql: &str) {
        let r = match self {
            Db::Pg(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(p)
                .await
                .map(|_| ()),
            Db::My(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(p)
                .await
                .map(|_| ()),
            Db::Lite(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(p)
                .await
                .map(|_| ()),
        };
        r.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// `SELECT id, name, total FROM table ORDER BY id`.
    pub async fn rows(&self, table: &str) -> Vec<TestRow> {
        use sqlx::Row;
        let sql = format!("SELECT id, name, total FROM {table} ORDER BY id");
        macro_rules! read {
            ($pool:expr) => {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .fetch_all($pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(|r| {
                        (
                            r.get::<i64, _>(0),
                            r.get::<Option<String>, _>(1),
                            r.get::<Option<f64>, _>(2),
                        )
                    })
                    .collect()
            };
        }
        match self {
            Db::Pg(p) => read!(p),
            Db::My(p) => read!(p),
            Db::Lite(p) => read!(p),
        }
    }
}

/// The three databases as (label, dialect, URL) for a scenario, skipping the unreachable ones (unless required).
pub fn databases(sqlite_dir: &std::path::Path) -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    if let Some(url) = postgres_url() {
        out.push(("pg", "postgres", url));
    }
    if let Some(url) = mariadb_url() {
        out.push(("maria", "mysql", url));
    }
    std::fs::create_dir_all(sqlite_dir).expect("sqlite dir");
    out.push((
        "lite",
        "sqlite",
        format!("sqlite://{}?mode=rwc", sqlite_dir.join("test.db").display()),
    ));
    out
}

/// A runtime with one SQL connection named `db`.
pub fn runtime_with_db(url: &str) -> Runtime {
    let mut connections = std::collections::HashMap::new();
    connections.insert("db".to_owned(), url.to_owned());
    Runtime::new(busbar_runtime::host::RuntimeConfig {
        connections,

        ..Default::default()
    })
    .expect("runtime")
}

pub fn sql_grant() -> Grants {
    Grants {
        sql: vec!["db".into()],
        ..Grants::default()
    }
}
