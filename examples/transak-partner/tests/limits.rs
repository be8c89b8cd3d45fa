//! The partner's server cuts off a connection that dawdles over its request head
//! (slowloris) and serves no more than its connection limit at once.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use transak_partner::{Limits, Secrets};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_cut_off_and_frees_its_slot() {
    let config = transak_partner::Config::from_vars(Secrets::Demo, |_| None).unwrap();
    let app = transak_partner::app(&config, "http://127.0.0.1:9").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 1,
        ..Limits::default()
    };
    tokio::spawn(transak_partner::serve_with(listener, app, limits));

    tokio::task::spawn_blocking(move || {
        // A slowloris connection takes the only slot: half a request head, then nothing.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"POST /api/widget-url HTTP/1.1\r\nhost: loc")
            .unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Meanwhile a real request waits for the slot.
        let mut waiting = TcpStream::connect(addr).unwrap();
        waiting
            .write_all(
                b"POST /api/widget-url HTTP/1.1\r\nhost: localhost\r\norigin: https://evil.example\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .unwrap();
        waiting
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = slow.read_to_end(&mut rest);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the slow head held its connection for {:?}",
            started.elapsed()
        );
        let mut answer = String::new();
        waiting.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    })
    .await
    .unwrap();
}
