//! Slow and hostile clients against the inbound stacks, over real TCP (issue 18, item 5).
//!
//! The server is the recommended webhook stack (body limit + signature verification → replay
//! guard → handler, as in the webhook-receiver example) next to the Transak inbound preset
//! (origin allowlist → client IP), on axum behind the examples' accept loop (hyper HTTP/1
//! with a header read timeout). The webhook-receiver example's own router is attacked with
//! its defaults too. Clients are raw TCP sockets that write exactly the bytes an attacker
//! would:
//!
//! - a body trickled one byte at a time (`Content-Length` and chunked): 408 `body_timeout`
//!   once the verifier's body timeout has passed since the head arrived, not later, however
//!   often bytes arrive; the connection is then closed;
//! - `Content-Length: 10000000000` with no body: 413 at once; a `Content-Length` within the
//!   limit with no body: 408 after the timeout;
//! - 10,000 headers, and 1 MiB of `X-Forwarded-For` (one header, or many): hyper's own limits
//!   answer 431 and close, before the application sees anything; the most `X-Forwarded-For`
//!   hyper lets through is resolved by the client-IP layer in bounded time;
//! - 200 connections trickling at once: each gets 408 and is closed, and the resident memory
//!   of the process stays far below what their declared lengths would cost.
//!
//! Every test has an outer `tokio::time::timeout`: an attack that hangs the server fails the
//! test instead of hanging it. A panic hook counts panics on the runtime's worker threads
//! (where the server's tasks run): none may happen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use bytes::Bytes;
use example_server::Limits;
use http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tollgate::client_ip::{ClientIp, ClientIpSource, IpRanges, ListHeader};
use tollgate::core::{KeyRing, Secret};
use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
use tollgate::signature::{BodyHmac, VerifySignatureLayer};
use tollgate::transak::TransakInbound;
use tower::ServiceBuilder;
use tower::util::MapRequestLayer;

const SECRET: &str = "hostile-clients-onekey-secret";
const ORIGIN: &str = "https://app.example";
/// The body timeout of the test stack.
const BODY_TIMEOUT: Duration = Duration::from_millis(300);
/// How late after the timeout an answer may come on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);
/// The outer bound of every test: an attack that hangs the server fails the test.
const TEST_BOUND: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Panics on the server's threads.

static WORKER_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics on tokio's worker threads (the server's connection tasks run there; the
/// tests' own assertions run on the test thread). Installed once per process.
fn count_worker_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("tokio-runtime-worker") {
                WORKER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// Runs `test` within [`TEST_BOUND`], then checks that no worker thread panicked.
async fn bounded<F: Future<Output = ()>>(test: F) {
    count_worker_panics();
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("the attack hung the server: no answer within the test's bound");
    assert_eq!(
        WORKER_PANICS.load(Ordering::SeqCst),
        0,
        "a server task panicked"
    );
}

// ---------------------------------------------------------------------------------------------
// The server.

struct Server {
    addr: SocketAddr,
    /// Requests that reached the application at all (the outermost layer).
    saw: Arc<AtomicUsize>,
    /// Requests the webhook handler ran for.
    handled: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Server {
    fn saw(&self) -> usize {
        self.saw.load(Ordering::SeqCst)
    }

    fn handled(&self) -> usize {
        self.handled.load(Ordering::SeqCst)
    }

    /// The accept loop is still running (it did not end or panic).
    fn assert_alive(&self) {
        assert!(!self.task.is_finished(), "the accept loop ended");
    }
}

/// The stack: `POST /webhooks/onekey` behind the verifier (`body_limit`, [`BODY_TIMEOUT`])
/// and a replay guard; `GET /api/widget` behind the Transak inbound preset, resolving the
/// client IP from `X-Forwarded-For` with loopback and 10/8 as trusted proxies. Served by the
/// examples' accept loop with its default limits.
async fn start(body_limit: usize) -> Server {
    let saw = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let verify = VerifySignatureLayer::new(
        BodyHmac::onekey(),
        KeyRing::single(Secret::from_string(SECRET)),
    )
    .unwrap()
    .body_limit(body_limit)
    .body_timeout(BODY_TIMEOUT);
    let replay = ReplayGuardLayer::new(MemoryNonceStore::new(10_000))
        .untimed_retention(Duration::from_secs(3600));
    let proxies: IpRanges = "127.0.0.0/8, 10.0.0.0/8".parse().unwrap();
    let inbound = TransakInbound::new(
        [ORIGIN],
        ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, proxies),
    )
    .unwrap();
    let counter = Arc::clone(&handled);
    let seen = Arc::clone(&saw);
    let app = Router::new()
        .route(
            "/webhooks/onekey",
            post(move |body: Bytes| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { format!("received {} bytes", body.len()) }
            })
            .layer(ServiceBuilder::new().layer(verify).layer(replay)),
        )
        .route(
            "/api/widget",
            get(
                |axum::Extension(ip): axum::Extension<ClientIp>| async move {
                    format!("client {}", ip.ip())
                },
            )
            .layer(inbound),
        )
        .layer(MapRequestLayer::new(move |request: Request<Body>| {
            seen.fetch_add(1, Ordering::SeqCst);
            request
        }));
    serve(app, saw, handled).await
}

async fn serve(app: Router, saw: Arc<AtomicUsize>, handled: Arc<AtomicUsize>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(example_server::serve(listener, app, Limits::default()));
    Server {
        addr,
        saw,
        handled,
        task,
    }
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client.

/// An answer as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The exact JSON body of a tollgate rejection.
fn rejection(code: &str, message: &str) -> String {
    serde_json::json!({ "error": { "code": code, "message": message } }).to_string()
}

/// Reads one response (head and `Content-Length` body).
async fn read_answer(reader: &mut (impl tokio::io::AsyncRead + Unpin)) -> std::io::Result<Answer> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0u8; 4096];
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    })
}

/// Whether the server closed the connection: the next read ends (EOF or reset) within 2 s.
async fn closed(reader: &mut (impl tokio::io::AsyncRead + Unpin)) -> bool {
    let mut rest = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), reader.read(&mut rest)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// A webhook request head declaring `content-length`, signed over a body that never comes.
fn webhook_head(path: &str, content_length: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         payload-signature: {}\r\ncontent-length: {content_length}\r\n\r\n",
        "0".repeat(64)
    )
}

/// Sends `head`, then one byte (or one one-byte chunk) every `every` until the server stops
/// reading; returns the answer, the time from the head to the answer, and whether the server
/// then closed the connection.
async fn trickle(
    addr: SocketAddr,
    head: String,
    chunked: bool,
    every: Duration,
) -> std::io::Result<(Answer, Duration, bool)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await?;
    let started = Instant::now();
    let drip = tokio::spawn(async move {
        let byte: &[u8] = if chunked { b"1\r\nx\r\n" } else { b"x" };
        let mut sent = 0usize;
        loop {
            tokio::time::sleep(every).await;
            if writer.write_all(byte).await.is_err() {
                return sent;
            }
            sent += 1;
        }
    });
    let answer = read_answer(&mut reader).await;
    let elapsed = started.elapsed();
    let closed = closed(&mut reader).await;
    drip.abort();
    Ok((answer?, elapsed, closed))
}

/// tokio's timer works in whole milliseconds and may fire up to one tick before the exact
/// instant.
const TICK: Duration = Duration::from_millis(2);

fn assert_within_timeout(elapsed: Duration, timeout: Duration) {
    eprintln!("answered after {elapsed:?} (timeout {timeout:?})");
    assert!(
        elapsed + TICK >= timeout && elapsed <= timeout + SLACK,
        "answered after {elapsed:?}, expected within [{:?}, {:?}]",
        timeout - TICK,
        timeout + SLACK
    );
}

// ---------------------------------------------------------------------------------------------
// Slow bodies.

/// A body trickled one byte every 20 ms (`Content-Length: 1000`): 408 `body_timeout` once the
/// body timeout has passed, not reset by each byte; the handler never runs and the
/// connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_off_at_the_body_timeout() {
    bounded(async {
        let server = start(64 * 1024).await;
        let (answer, elapsed, closed) = trickle(
            server.addr,
            webhook_head("/webhooks/onekey", "1000"),
            false,
            Duration::from_millis(20),
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 408);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(
            answer.body,
            rejection(
                "body_timeout",
                "request body did not arrive in time: 300 ms"
            )
        );
        assert_within_timeout(elapsed, BODY_TIMEOUT);
        assert!(closed, "the connection stayed open after 408");
        assert_eq!((server.saw(), server.handled()), (1, 0));
        server.assert_alive();
    })
    .await;
}

/// The same with a chunked body, one one-byte chunk every 20 ms (no declared length at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_chunked_body_is_cut_off_at_the_body_timeout() {
    bounded(async {
        let server = start(64 * 1024).await;
        let head = format!(
            "POST /webhooks/onekey HTTP/1.1\r\nhost: localhost\r\npayload-signature: {}\r\n\
             transfer-encoding: chunked\r\n\r\n",
            "0".repeat(64)
        );
        let (answer, elapsed, closed) = trickle(server.addr, head, true, Duration::from_millis(20))
            .await
            .unwrap();
        assert_eq!(answer.status, 408);
        assert_eq!(
            answer.body,
            rejection(
                "body_timeout",
                "request body did not arrive in time: 300 ms"
            )
        );
        assert_within_timeout(elapsed, BODY_TIMEOUT);
        assert!(closed, "the connection stayed open after 408");
        assert_eq!(server.handled(), 0);
        server.assert_alive();
    })
    .await;
}

/// A `Content-Length` within the limit and no body at all: 408 after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_that_never_comes_times_out() {
    bounded(async {
        let server = start(64 * 1024).await;
        let (answer, elapsed, closed) = trickle(
            server.addr,
            webhook_head("/webhooks/onekey", "100"),
            false,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 408);
        assert_eq!(
            answer.body,
            rejection(
                "body_timeout",
                "request body did not arrive in time: 300 ms"
            )
        );
        assert_within_timeout(elapsed, BODY_TIMEOUT);
        assert!(closed);
        assert_eq!(server.handled(), 0);
        server.assert_alive();
    })
    .await;
}

/// `Content-Length: 10000000000` and no body: 413 at once, without waiting for the body
/// (well before the body timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_declared_length_is_refused_at_once() {
    bounded(async {
        let server = start(64 * 1024).await;
        let (answer, elapsed, closed) = trickle(
            server.addr,
            webhook_head("/webhooks/onekey", "10000000000"),
            false,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 413);
        assert_eq!(
            answer.body,
            rejection(
                "payload_too_large",
                "request body is larger than the limit: 65536 bytes"
            )
        );
        assert!(elapsed < BODY_TIMEOUT, "413 only after {elapsed:?}");
        assert!(closed);
        assert_eq!(server.handled(), 0);
        server.assert_alive();
    })
    .await;
}

/// A complete, correctly signed body still passes the stack at full speed: the timeout
/// costs honest senders nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_signed_body_passes() {
    bounded(async {
        let server = start(64 * 1024).await;
        let body = r#"{"event":"payout.completed","id":"evt_hostile_1"}"#;
        let signature = BodyHmac::onekey().compute(&Secret::from_string(SECRET), body.as_bytes());
        let request = format!(
            "POST /webhooks/onekey HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             payload-signature: {signature}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let started = Instant::now();
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read_answer(&mut stream).await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, format!("received {} bytes", body.len()));
        assert!(started.elapsed() < BODY_TIMEOUT);
        assert_eq!(server.handled(), 1);
    })
    .await;
}

/// The webhook-receiver example's own router, with its defaults (no timeout configured): a
/// body trickled one byte a second is answered 408 `body_timeout` after the default 10 s,
/// before the accept loop's 30 s request timeout. The README's verifier is attacked at the
/// same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_receiver_cuts_off_a_byte_a_second_after_the_default_timeout() {
    bounded(async {
        let readme = tokio::spawn(readme_slow_clients_verifier_answers_408_after_its_timeout());
        let config =
            webhook_receiver::Config::from_vars(webhook_receiver::Secrets::Demo, |_| None).unwrap();
        let inbox = webhook_receiver::Inbox::default();
        let app = webhook_receiver::app(&config, inbox.clone()).unwrap();
        let addr = webhook_receiver::spawn("127.0.0.1:0".parse().unwrap(), app)
            .await
            .unwrap();
        let (answer, elapsed, closed) = trickle(
            addr,
            webhook_head("/webhooks/onekey", "1000"),
            false,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 408);
        assert_eq!(
            answer.body,
            rejection(
                "body_timeout",
                "request body did not arrive in time: 10000 ms"
            )
        );
        assert_within_timeout(elapsed, tollgate::core::DEFAULT_BODY_TIMEOUT);
        assert!(closed);
        assert!(inbox.is_empty());
        readme.await.unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Hostile heads.

/// Writes `request` while reading the answer (the server may answer and close before the
/// client has written everything). Returns the answer (or the read error), the time from
/// the first byte written to the answer, and whether the server then closed the connection.
async fn send_head(
    addr: SocketAddr,
    request: Vec<u8>,
) -> (std::io::Result<Answer>, Duration, bool) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    // The writer half is kept until the end: dropping it would half-close the connection.
    let write = tokio::spawn(async move {
        let written = writer.write_all(&request).await;
        std::future::pending::<()>().await;
        drop((writer, written));
    });
    let answer = read_answer(&mut reader).await;
    let elapsed = started.elapsed();
    let closed = closed(&mut reader).await;
    write.abort();
    (answer, elapsed, closed)
}

/// 10,000 headers: hyper refuses the head (more than its 100 headers) with 431 and closes;
/// the application never sees the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_headers_are_refused_by_hyper() {
    bounded(async {
        let server = start(64 * 1024).await;
        let mut request = String::from("GET /api/widget HTTP/1.1\r\nhost: localhost\r\n");
        for i in 0..10_000 {
            request.push_str(&format!("x-h{i}: v\r\n"));
        }
        request.push_str("\r\n");
        let (answer, _, closed) = send_head(server.addr, request.into_bytes()).await;
        let answer = answer.unwrap();
        assert_eq!(answer.status, 431);
        assert_eq!(answer.body, "");
        assert!(closed);
        assert_eq!(server.saw(), 0);
        server.assert_alive();
    })
    .await;
}

/// A request to `/api/widget` from the allowed origin with these `X-Forwarded-For` lines.
fn widget_request(forwarded_for: &[String]) -> Vec<u8> {
    let mut request =
        format!("GET /api/widget HTTP/1.1\r\nhost: localhost\r\norigin: {ORIGIN}\r\n");
    for line in forwarded_for {
        request.push_str("x-forwarded-for: ");
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// `n` trusted hops (`10.0.0.1`), comma separated.
fn trusted_hops(n: usize) -> String {
    vec!["10.0.0.1"; n].join(", ")
}

/// 1 MiB of `X-Forwarded-For` in one header, and the same split over 1,024 headers: both
/// over hyper's head limits (about 400 KiB of buffer, 100 headers), refused 431 with the
/// connection closed; the application never sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mebibyte_of_x_forwarded_for_is_refused_by_hyper() {
    bounded(async {
        let server = start(64 * 1024).await;
        // 1 MiB in one line: "10.0.0.1, " is 10 bytes.
        let one = vec![format!("203.0.113.9, {}", trusted_hops(104_858))];
        assert!(one[0].len() >= 1 << 20);
        // 1 MiB over 1,024 lines of about 1 KiB.
        let many: Vec<String> = (0..1024).map(|_| trusted_hops(103)).collect();
        assert!(many.iter().map(String::len).sum::<usize>() >= 1 << 20);
        for lines in [one, many] {
            let (answer, _, closed) = send_head(server.addr, widget_request(&lines)).await;
            let answer = answer.unwrap();
            assert_eq!(answer.status, 431);
            assert!(closed);
        }
        assert_eq!(server.saw(), 0);
        server.assert_alive();
    })
    .await;
}

/// The most `X-Forwarded-For` hyper lets through (90 lines of 3.6 KiB, about 320 KiB, 32,400
/// hops, all trusted but the leftmost): the client-IP layer walks every hop, right to left,
/// and resolves the real client in bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_x_forwarded_for_hyper_admits_resolves_in_bounded_time() {
    bounded(async {
        let server = start(64 * 1024).await;
        let mut lines: Vec<String> = (0..90).map(|_| trusted_hops(360)).collect();
        lines[0] = format!("203.0.113.9, {}", lines[0]);
        let total: usize = lines.iter().map(String::len).sum();
        assert!(total > 300 * 1024, "{total} bytes");
        let (answer, elapsed, closed) = send_head(server.addr, widget_request(&lines)).await;
        let answer = answer.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.body, "client 203.0.113.9");
        assert!(
            elapsed < Duration::from_secs(1),
            "answered after {elapsed:?}"
        );
        assert!(!closed, "an admitted request keeps its connection");
        // A forged hop in the middle is the client (the rightmost untrusted hop), not the
        // leftmost value the attacker wrote.
        lines[45] = format!("{}, 198.51.100.66", lines[45]);
        let (answer, _, _) = send_head(server.addr, widget_request(&lines)).await;
        assert_eq!(answer.unwrap().body, "client 198.51.100.66");
        assert_eq!(server.saw(), 2);
        server.assert_alive();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Many slow clients at once.

/// The resident set size of this process, in KiB.
fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// 200 connections at once, each declaring a 1 MiB body (the limit) and trickling a byte every
/// 20 ms: each is answered 408 `body_timeout` and closed, and the process's resident memory
/// grows by far less than the 200 MiB the declared lengths would cost (buffers follow the
/// bytes that arrived).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_trickling_clients_cost_what_they_sent() {
    bounded(async {
        const CLIENTS: usize = 200;
        let server = start(1024 * 1024).await;
        let before = rss_kib();
        let peak = Arc::new(AtomicUsize::new(before));
        let sampler = {
            let peak = Arc::clone(&peak);
            tokio::spawn(async move {
                loop {
                    peak.fetch_max(rss_kib(), Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                tokio::spawn(trickle(
                    server.addr,
                    webhook_head("/webhooks/onekey", "1048576"),
                    false,
                    Duration::from_millis(20),
                ))
            })
            .collect();
        let mut statuses = Vec::with_capacity(CLIENTS);
        let mut all_closed = true;
        let mut slowest = Duration::ZERO;
        for client in clients {
            let (answer, elapsed, closed) = client.await.unwrap().unwrap();
            statuses.push((answer.status, answer.body));
            all_closed &= closed;
            slowest = slowest.max(elapsed);
        }
        sampler.abort();
        let peak = peak.load(Ordering::SeqCst);
        let expected = rejection("body_timeout", "request body did not arrive in time: 300 ms");
        assert!(statuses.iter().all(|(status, body)| *status == 408 && *body == expected));
        assert!(all_closed, "a connection stayed open");
        assert!(slowest <= BODY_TIMEOUT + SLACK * 2, "slowest: {slowest:?}");
        assert_eq!(server.handled(), 0);
        let growth = peak.saturating_sub(before);
        eprintln!("{CLIENTS} clients: slowest answered after {slowest:?}");
        eprintln!(
            "rss: before {before} KiB, peak {peak} KiB (+{growth} KiB for {CLIENTS} clients), after {} KiB",
            rss_kib()
        );
        assert!(
            growth < 32 * 1024,
            "{CLIENTS} trickling clients grew the resident set by {growth} KiB"
        );
        server.assert_alive();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The README's "Slow clients" block, compiled and exercised.

// The README's "Slow clients" block, byte for byte (checked by the readme crate).
#[allow(dead_code, unreachable_pub)]
#[path = "../readme/tests/sections/slow_clients.rs"]
mod slow_clients;
use slow_clients::webhook_verifier;

/// The README's verifier, on a route over TCP: a body that never comes after its
/// `Content-Length` is answered 408 `body_timeout` after its 5 s. (Run alongside the
/// webhook-receiver attack, to keep the binary's wall time near 10 s.)
async fn readme_slow_clients_verifier_answers_408_after_its_timeout() {
    let verifier = webhook_verifier(Secret::from_string(SECRET)).unwrap();
    let app = Router::new().route(
        "/webhooks/onekey",
        post(|| async { "received" }).layer(verifier),
    );
    let server = serve(app, Arc::default(), Arc::default()).await;
    let (answer, elapsed, closed) = trickle(
        server.addr,
        webhook_head("/webhooks/onekey", "100"),
        false,
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 408);
    assert_eq!(
        answer.body,
        rejection(
            "body_timeout",
            "request body did not arrive in time: 5000 ms"
        )
    );
    assert_within_timeout(elapsed, Duration::from_secs(5));
    assert!(closed);
    server.assert_alive();
}
