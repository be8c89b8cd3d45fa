//! The shared accept loop's limits over real TCP: a request head that dawdles is cut off and
//! frees its slot (slowloris on the head), and a body that never arrives is answered 408 and
//! frees its slot (slowloris on the body). One copy for every example that serves with it.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use example_server::Limits;

/// A route that reads the whole body, then answers 401 (as an unsigned webhook would be).
async fn spawn(limits: Limits) -> SocketAddr {
    let app = Router::new().route(
        "/hook",
        post(|_body: Bytes| async { StatusCode::UNAUTHORIZED }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(example_server::serve(listener, app, limits));
    addr
}

/// Holds the only slot with `stall`, then checks that `stall` is answered (or cut off) within
/// 3 s and that a request waiting for the slot gets the route's 401.
fn stall_then_serve(addr: SocketAddr, stall: &[u8]) -> Vec<u8> {
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(stall).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut waiting = TcpStream::connect(addr).unwrap();
    waiting
        .write_all(
            b"POST /hook HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
        )
        .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    let mut slow_answer = Vec::new();
    let _ = slow.read_to_end(&mut slow_answer);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the stalled request held its connection for {:?}",
        started.elapsed()
    );
    let mut answer = String::new();
    waiting.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    slow_answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_cut_off_and_frees_its_slot() {
    let addr = spawn(Limits {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 1,
        ..Limits::default()
    })
    .await;
    tokio::task::spawn_blocking(move || {
        // Half a request head, then nothing.
        stall_then_serve(addr, b"POST /hook HTTP/1.1\r\nhost: loc");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_is_answered_408_and_frees_its_slot() {
    let addr = spawn(Limits {
        header_read_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(500),
        max_connections: 1,
        ..Limits::default()
    })
    .await;
    let answer = tokio::task::spawn_blocking(move || {
        // A complete head declaring 100 bytes, one byte, then nothing.
        stall_then_serve(
            addr,
            b"POST /hook HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{",
        )
    })
    .await
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}
