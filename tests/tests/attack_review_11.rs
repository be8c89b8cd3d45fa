//! Attack review 11: the stacks changed in issue 18 (the whole-body read timeout, the
//! per-thread cache of `IpRangesHandle`, the `rightmost-trusted-count:x-forwarded-for:1` fast
//! path and its IPv4 parser, and the secret scan of TRACE logs).
//!
//! A test whose doc starts with `FINDING (fixed):` asserts the secure behaviour and failed on
//! the code as reviewed (both are fixed); the others are regression tests of attacks the code
//! withstood from the start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroUsize;
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::Full;
use proptest::prelude::*;
use tollgate::client_ip::{ClientIpSource, ExtractError, IpRanges, IpRangesHandle, ListHeader};
use tollgate::core::{BufferedBody, Secret};
use tollgate::signature::{BodyHmac, VerifySignatureLayer};
use tollgate_test_support::secrets::{Scanner, TestSecret};
use tower::ServiceBuilder;

const SECRET: &str = "attack11-onekey-secret";

// ---------------------------------------------------------------------------------------------
// 1. The body timeout in a tokio runtime without the time driver.
// ---------------------------------------------------------------------------------------------

/// FINDING (fixed): a server whose tokio runtime has IO but no time driver (hyper needs no
/// timer unless a timeout is configured, so `Builder::new_current_thread().enable_io()` serves
/// it fine) was taken down by any client that sends its body a few milliseconds after its head:
/// `BufferBody`'s `wait` sees a runtime (`Handle::try_current()` is `Ok`) and calls
/// `tokio::time::sleep`, which panics ("timers are disabled"). The connection task died and
/// the client got no answer at all. The docs say the time driver is required, but "never a
/// panic on input": the expected answer is the verifier's (here 401 `signature_missing`,
/// the body is not signed) or a 500, never a panic.
#[test]
fn verifier_in_a_runtime_without_timers_answers_a_slow_body_instead_of_panicking() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (served, outcome) = mpsc::channel::<Result<(), String>>();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let result = runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let service = ServiceBuilder::new()
                .layer(
                    VerifySignatureLayer::new(BodyHmac::onekey(), Secret::from_string(SECRET))
                        .unwrap()
                        .body_timeout(Duration::from_secs(5)),
                )
                .service_fn(|_request: Request<BufferedBody>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
            let connection =
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
                    hyper_util::rt::TokioIo::new(stream),
                    hyper_util::service::TowerToHyperService::new(service),
                ));
            match connection.await {
                Ok(_) => Ok(()),
                Err(err) => Err(format!("the connection task failed: {err}")),
            }
        });
        served.send(result).unwrap();
    });

    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client
        .write_all(
            b"POST /webhook HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
              content-length: 2\r\nconnection: close\r\n\r\n",
        )
        .unwrap();
    // The body comes a moment after the head: the verifier's first read has to wait.
    std::thread::sleep(Duration::from_millis(100));
    client.write_all(b"{}").unwrap();
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let served = outcome.recv_timeout(Duration::from_secs(10));
    server.join().unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "a slow body in a runtime without timers got {answer:?}, server: {served:?}"
    );
    assert!(
        answer.contains("signature_missing"),
        "{answer:?}, server: {served:?}"
    );
    assert_eq!(served, Ok(Ok(())));
}

// ---------------------------------------------------------------------------------------------
// 2. `rightmost-trusted-count:x-forwarded-for:1` (fast path) against the general walk.
// ---------------------------------------------------------------------------------------------

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
/// The hop appended for the general walk (count 2): valid, so the walk goes past it.
const APPENDED: &str = "192.0.2.77";

fn count(n: usize) -> ClientIpSource {
    ClientIpSource::rightmost_trusted_count(
        ListHeader::XForwardedFor,
        NonZeroUsize::new(n).unwrap(),
    )
}

/// The fast path's answer for `lines`, and the general walk's for the same lines plus one
/// valid hop on a line of its own (so the original rightmost element is its hop 1), with the
/// hop numbers shifted back.
fn both_paths(lines: &[Vec<u8>]) -> Option<(String, String)> {
    let mut headers = HeaderMap::new();
    for line in lines {
        headers.append("x-forwarded-for", HeaderValue::from_bytes(line).ok()?);
    }
    let fast = count(1).extract(&headers, Some(PEER));
    headers.append("x-forwarded-for", HeaderValue::from_static(APPENDED));
    let walked = count(2).extract(&headers, Some(PEER));
    let fast = match fast {
        Ok(ip) => format!("ok {}", ip.ip()),
        Err(err) => format!("{err:?}"),
    };
    let walked = match walked {
        Ok(ip) => format!("ok {}", ip.ip()),
        Err(ExtractError::InvalidHop { header, hop }) => format!(
            "{:?}",
            ExtractError::InvalidHop {
                header,
                hop: hop - 1
            }
        ),
        Err(err) => format!("{err:?}"),
    };
    Some((fast, walked))
}

/// Pieces of `X-Forwarded-For` elements: valid and invalid addresses in every spelling a
/// client can send, whitespace, empty elements, obs-text bytes.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"203.0.113.9".to_vec()),
        Just(b" 203.0.113.9 ".to_vec()),
        Just(b"\t198.51.100.1\t".to_vec()),
        Just(b"203.0.113.9:443".to_vec()),
        Just(b"[2001:db8::1]:8080".to_vec()),
        Just(b"[2001:db8::1]".to_vec()),
        Just(b"2001:db8::1".to_vec()),
        Just(b"2001:DB8::1".to_vec()),
        Just(b"::ffff:203.0.113.9".to_vec()),
        Just(b"[::ffff:203.0.113.9]:1".to_vec()),
        Just(b"fe80::1%eth0".to_vec()),
        Just(b"fe80::1%".to_vec()),
        Just(b"unknown".to_vec()),
        Just(b"_hidden".to_vec()),
        Just(b"01.2.3.4".to_vec()),
        Just(b"256.1.1.1".to_vec()),
        Just(b"1.2.3.4.".to_vec()),
        Just(b"1.2.3".to_vec()),
        Just(b"0.0.0.0".to_vec()),
        Just(b"1.2.3.4:".to_vec()),
        Just(b"1.2.3.4:65536".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b"1.2.3.4\xa0".to_vec()),
        Just(Vec::new()),
        Just(b" ".to_vec()),
        proptest::collection::vec(
            prop_oneof![Just(b'1'), Just(b'.'), Just(b'0'), Just(b':')],
            0..12
        ),
    ]
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(piece(), 1..5),
        prop_oneof![
            Just(&b","[..]),
            Just(&b", "[..]),
            Just(&b" ,"[..]),
            Just(&b",,"[..])
        ],
        any::<bool>(),
    )
        .prop_map(|(pieces, separator, trailing)| {
            let mut out = pieces.join(separator);
            if trailing {
                out.push(b',');
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// The fast path answers exactly as the general right-to-left walk, for one to three
    /// `X-Forwarded-For` lines of any of the pieces above.
    #[test]
    fn xff_fast_path_answers_as_the_general_walk(lines in proptest::collection::vec(line(), 1..4)) {
        if let Some((fast, walked)) = both_paths(&lines) {
            prop_assert_eq!(fast, walked, "lines {:?}", lines);
        }
    }

    /// The hop parser accepts exactly what `Ipv4Addr::from_str` accepts, on every text of
    /// digits and dots (no other spelling of a node can contain only those).
    #[test]
    fn ipv4_hops_are_exactly_what_std_accepts(text in "[0-9.]{0,17}") {
        let Some((fast, walked)) = both_paths(&[text.clone().into_bytes()]) else {
            return Ok(());
        };
        prop_assert_eq!(&fast, &walked);
        let expected = match text.parse::<Ipv4Addr>() {
            Ok(ip) => format!("ok {ip}"),
            Err(_) => "InvalidHop".to_owned(),
        };
        prop_assert!(fast.starts_with(&expected), "{:?}: {} vs {}", text, fast, expected);
    }
}

/// Octets around every boundary, written every way: `parse_v4` agrees with std.
#[test]
fn ipv4_octet_boundaries_match_std() {
    let octets = [
        "0", "00", "000", "1", "01", "001", "9", "10", "010", "99", "100", "199", "249", "250",
        "255", "256", "260", "299", "300", "999", "1000", "0255",
    ];
    for a in octets {
        for b in ["0", "255", "256", "01"] {
            let text = format!("{a}.1.{b}.{a}");
            let (fast, _) = both_paths(&[text.clone().into_bytes()]).unwrap();
            let expected = match text.parse::<Ipv4Addr>() {
                Ok(ip) => format!("ok {ip}"),
                Err(_) => "InvalidHop".to_owned(),
            };
            assert!(fast.starts_with(&expected), "{text}: {fast} vs {expected}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. `IpRangesHandle`'s per-thread cache: a revoked proxy is never trusted again.
// ---------------------------------------------------------------------------------------------

/// More handles than cache slots, dropped and recreated every round, revoked and restored
/// while tasks migrate between the worker threads: once `store` has returned, no request on
/// any thread is judged with the old trusted proxies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_proxy_is_never_trusted_on_any_thread_after_store() {
    let peer: IpAddr = "10.0.0.1".parse().unwrap();
    let trusting: IpRanges = "10.0.0.0/8".parse().unwrap();
    let revoked: IpRanges = "192.0.2.0/24".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
    let headers = std::sync::Arc::new(headers);
    for round in 0..40 {
        // 20 handles over 8 slots; new ones each round (new stamps, reused slots).
        let handles: Vec<IpRangesHandle> = (0..20)
            .map(|_| IpRangesHandle::new(trusting.clone()))
            .collect();
        let sources: Vec<ClientIpSource> = handles
            .iter()
            .map(|h| ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, h.clone()))
            .collect();
        let sources = std::sync::Arc::new(sources);
        for (phase, ranges, client) in [
            (0, &trusting, "203.0.113.9"),
            (1, &revoked, "10.0.0.1"),
            (2, &trusting, "203.0.113.9"),
        ] {
            for handle in &handles {
                handle.store(ranges.clone());
            }
            let mut tasks = Vec::new();
            for task in 0..16 {
                let sources = std::sync::Arc::clone(&sources);
                let headers = std::sync::Arc::clone(&headers);
                tasks.push(tokio::spawn(async move {
                    for step in 0..3 {
                        for (i, source) in sources.iter().enumerate() {
                            let ip = source.extract(&headers, Some(peer)).unwrap().ip();
                            assert_eq!(
                                ip.to_string(),
                                client,
                                "round {round} phase {phase} task {task} step {step} handle {i}"
                            );
                        }
                        tokio::task::yield_now().await;
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. The secret scan: a form a log really contains that the scanner misses.
// ---------------------------------------------------------------------------------------------

fn secret(name: &str) -> TestSecret {
    *tollgate_test_support::secrets::SECRETS
        .iter()
        .find(|s| s.name == name)
        .unwrap()
}

/// FINDING (fixed): a secret base64-encoded *after a prefix* was not found. base64 encodes by
/// groups of three bytes, so `base64(prefix + secret)` contains `base64(secret)` only when the
/// prefix length is a multiple of three. `Authorization: Basic base64(user:secret)` for any
/// user/secret pair not listed in `BASIC_PAIRS` (a `SecretHeaderLayer` configured with a
/// Basic value, a provider client logging its request at TRACE), or a base64 JSON body or
/// gRPC `-bin` metadata carrying a secret, leaked unseen. Fixed: for each secret also scan the
/// three alignment-shifted base64 cores (encode `[0; k] + secret` for k = 1, 2, drop the
/// characters that depend on the prefix and on the tail), in both alphabets.
#[test]
fn secret_scan_finds_a_secret_base64_encoded_after_a_prefix() {
    let scanner = Scanner::for_test_secrets();
    let passphrase = secret("demo::ONEKEY_API_PASSPHRASE");
    for user in ["someone", "someone1", "someone12"] {
        let header = STANDARD.encode(format!("{user}:{}", passphrase.value()));
        let line = format!("TRACE tollgate: sending request authorization=\"Basic {header}\"");
        let (hits, _) = scanner.scan(line.as_bytes());
        assert!(
            hits.iter().any(|hit| hit.secret == passphrase.name),
            "Basic auth with a {}-byte user prefix: no hit",
            user.len() + 1
        );
    }
}
