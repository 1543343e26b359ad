//! Outgoing `wasi:http` against a real local HTTP server, allowed only to granted hosts.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use busbar_runtime::Error;
use busbar_runtime::host::{Grants, Limits};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A tiny HTTP/1.1 server on 127.0.0.1:0 that answers every request with its path; counts requests.
async fn server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let text = String::from_utf8_lossy(&buf);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let body = format!("hello from {path}");
                let response =
                    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                sock.write_all(response.as_bytes()).await.ok();
            });
        }
    });
    (port, hits)
}

#[tokio::test]
async fn granted_hosts_are_reachable_and_others_are_denied() {
    let (port, hits) = server().await;
    let rt = common::runtime();
    let source = common::load(&rt, "probe-source").await;

    let grants = Grants { http: vec![format!("127.0.0.1:{port}")], ..Grants::default() };
    let mut task = common::open(&rt, &source, "fetcher", json!({}), grants, Limits::default()).await;
    let r = task.poll(Some(&format!("http http://127.0.0.1:{port}/items?page=2")), 1).await.expect("granted");
    let body: serde_json::Value = serde_json::from_slice(&r.events[0].payload).unwrap();
    assert_eq!(body, json!({ "status": 200, "body": "hello from /items?page=2" }));
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Same host, another port: denied before anything leaves the host.
    let (other_port, other_hits) = server().await;
    let err = task.poll(Some(&format!("http http://127.0.0.1:{other_port}/")), 1).await.expect_err("denied");
    match err {
        Error::Connector { message, .. } => assert!(message.contains("HTTP request denied"), "{message}"),
        other => panic!("expected a connector error, got {other}"),
    }
    assert_eq!(other_hits.load(Ordering::SeqCst), 0, "the denied request never reached the server");

    // No grants at all: denied too.
    let mut task = common::open(&rt, &source, "nohttp", json!({}), Grants::default(), Limits::default()).await;
    let err = task.poll(Some(&format!("http http://127.0.0.1:{port}/")), 1).await.expect_err("denied");
    assert!(err.to_string().contains("HTTP request denied"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
