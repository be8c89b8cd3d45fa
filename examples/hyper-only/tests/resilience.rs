//! The hyper-only server survives what takes naive accept loops down: running out of file
//! descriptors (`EMFILE` from `accept`) and clients that open connections and never finish a
//! request head (slowloris).
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary killed (and reaped) when the test ends, whatever happens.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// One `GET /api/whoami` on a fresh connection: the status line and body, or an error.
fn whoami(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(
        b"GET /api/whoami HTTP/1.1\r\nhost: localhost\r\norigin: http://localhost:5173\r\nconnection: close\r\n\r\n",
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Retries [`whoami`] until it answers 200 or `budget` runs out.
fn answers_within(addr: SocketAddr, budget: Duration) -> Result<String, String> {
    let deadline = Instant::now() + budget;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match whoami(addr) {
            Ok(answer) if answer.starts_with("HTTP/1.1 200") => return Ok(answer),
            Ok(answer) => last = format!("answer: {answer:?}"),
            Err(err) => last = format!("error: {err}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last)
}

#[test]
fn survives_running_out_of_file_descriptors() {
    let addr = free_addr();
    // 64 descriptors for the server: 100 held connections are more than it can accept.
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 64 && exec "$0""#)
        .arg(env!("CARGO_BIN_EXE_hyper-only"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HYPER_ONLY_ADDR", addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hyper-only under ulimit -n 64");
    let mut server = Server(child);
    answers_within(addr, Duration::from_secs(10)).expect("the server starts and answers");

    let mut held = Vec::new();
    for _ in 0..100 {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    assert!(held.len() >= 70, "only {} connections opened", held.len());
    // Give the server time to accept what it can and meet EMFILE (or die of it).
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline && server.0.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(held);

    let answer = answers_within(addr, Duration::from_secs(10));
    let exited = server.0.try_wait().ok().flatten();
    let mut stderr = String::new();
    if exited.is_some()
        && let Some(mut pipe) = server.0.stderr.take()
    {
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(
        exited.is_none(),
        "the server exited ({exited:?}) after running out of descriptors: {stderr}"
    );
    let answer = answer.expect("the server answers again once the connections are gone");
    assert!(answer.contains(r#"{"clientIp":"127.0.0.1"}"#), "{answer}");
}

#[tokio::test]
async fn a_slow_request_head_is_cut_off_and_frees_its_slot() {
    let mut config = hyper_only::Config::from_env().expect("defaults");
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.header_read_timeout = Duration::from_millis(300);
    config.max_connections = 2;
    let addr = hyper_only::spawn(config).await.expect("spawn");

    tokio::task::spawn_blocking(move || {
        // Two slowloris connections take both slots: each sends half a request head and stops.
        let mut slow: Vec<TcpStream> = (0..2)
            .map(|_| {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream
                    .write_all(b"GET /api/whoami HTTP/1.1\r\nhost: loc")
                    .unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                stream
            })
            .collect();
        let started = Instant::now();
        // The server closes them once the header read timeout passes (408 or a bare close).
        for stream in &mut slow {
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        }
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_secs(3),
            "slow heads held their connections for {waited:?}"
        );
        // Their slots are free again: a normal request is served.
        let answer =
            answers_within(addr, Duration::from_secs(5)).expect("served after the cut-off");
        assert!(answer.contains(r#"{"clientIp":"127.0.0.1"}"#), "{answer}");
    })
    .await
    .unwrap();
}
