//! Attacker review 9 (issue 17): swappable key rings, ranges and origins, the key-rotation
//! example's reload paths and admin endpoint.
//!
//! A test marked `// FINDING:` asserts the secure behaviour and fails on the code it was
//! written against; the others are regression tests of attacks that were refused.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use key_rotation::AdminError;
use tollgate::client_ip::{ClientIpSource, IpRanges, IpRangesHandle, ListHeader};
use tollgate::core::{Key, KeyRing, KeyRingHandle, Secret, VerifiedSignature};
use tollgate::signature::{BodyHmac, VerifySignatureLayer};

// The key-rotation example in-process on loopback: its own tests' harness.
#[path = "../../examples/key-rotation/tests/common/mod.rs"]
mod rotation;

use rotation::{BODY, NEW, OLD, signature, start_with_keys as start_example, write};

async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> (StatusCode, String) {
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

// ---------------------------------------------------------------------------------------
// Client IP: one version of the trusted proxies per request.
// ---------------------------------------------------------------------------------------

// FINDING: a chain of sources (`a.or(b)`) that share one `IpRangesHandle` loads the handle
// once per source, not once per request. A swap between the two loads judges the first
// source with the old ranges and the second with the new ones, and the request resolves to
// an address that no single version gives (the crate docs promise "one version": "never
// yields an address no single version gives").
//
// Old version: 10.0.0.0/8 trusted, so the peer 192.0.2.1 is not a proxy: answer = the peer.
// New version: 192.0.2.0/24 trusted: `x-real-ip` is read: answer = 203.0.113.7.
// Mixed (old for `x-real-ip`, new for `x-forwarded-for`): 198.51.100.9.
#[test]
fn chain_sharing_one_ranges_handle_never_mixes_versions() {
    let old: IpRanges = "10.0.0.0/8".parse().unwrap();
    let new: IpRanges = "192.0.2.0/24".parse().unwrap();
    let proxies = IpRangesHandle::new(old.clone());
    let source =
        ClientIpSource::header(http::HeaderName::from_static("x-real-ip"), proxies.clone()).or(
            ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, proxies.clone()),
        );
    let mut headers = HeaderMap::new();
    headers.insert("x-real-ip", HeaderValue::from_static("203.0.113.7"));
    headers.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.9"));
    let peer: IpAddr = "192.0.2.1".parse().unwrap();
    let peer_answer: IpAddr = "192.0.2.1".parse().unwrap();
    let new_answer: IpAddr = "203.0.113.7".parse().unwrap();
    let mixed: IpAddr = "198.51.100.9".parse().unwrap();

    // Each version alone.
    assert_eq!(
        source.extract(&headers, Some(peer)).unwrap().ip(),
        peer_answer
    );
    proxies.store(new.clone());
    assert_eq!(
        source.extract(&headers, Some(peer)).unwrap().ip(),
        new_answer
    );
    proxies.store(old.clone());

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, proxies) = (Arc::clone(&stop), proxies);
        std::thread::spawn(move || {
            let mut flip = false;
            while !stop.load(Ordering::Relaxed) {
                proxies.store(if flip { old.clone() } else { new.clone() });
                flip = !flip;
            }
        })
    };
    let mut seen_mixed = 0u32;
    let mut unexpected = Vec::new();
    for _ in 0..400_000 {
        match source.extract(&headers, Some(peer)) {
            Ok(ip) if ip.ip() == mixed => seen_mixed += 1,
            Ok(ip) if ip.ip() == peer_answer || ip.ip() == new_answer => {}
            other => unexpected.push(format!("{other:?}")),
        }
        if seen_mixed > 0 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    assert_eq!(
        seen_mixed, 0,
        "a request resolved to {mixed}: x-real-ip judged with the old ranges, \
         x-forwarded-for with the new"
    );
}

// ---------------------------------------------------------------------------------------
// Key rotation: the verifier's handle.
// ---------------------------------------------------------------------------------------

async fn serve_verifier(layer: VerifySignatureLayer) -> SocketAddr {
    async fn webhook(axum::Extension(verified): axum::Extension<VerifiedSignature>) -> String {
        verified.key_id().to_owned()
    }
    let router = axum::Router::new()
        .route("/webhooks", axum::routing::post(webhook))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn post_signed(addr: SocketAddr, secret: &str) -> (StatusCode, String) {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::post(format!("http://{addr}/webhooks"))
        .header("x-webhook-signature", signature(secret))
        .body(Full::new(Bytes::from_static(BODY)))
        .unwrap();
    send(&client, request).await
}

// Refused: a layer cloned before the swap, and one re-configured after cloning
// (`on_rejection` copies the configuration), both follow the handle: the revoked key fails
// the very next request on each of them, and a blank ring is never installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_fails_next_request_on_every_copy_of_the_layer() {
    let keys = KeyRingHandle::new(
        KeyRing::new(Key::new("old", Secret::from_string(OLD)))
            .rotate(Key::new("new", Secret::from_string(NEW))),
    );
    let layer = VerifySignatureLayer::new(BodyHmac::x_webhook_signature(), keys.clone()).unwrap();
    let copy = layer.clone();
    let reconfigured = layer
        .clone()
        .on_rejection(|rejection: &tollgate::core::Rejection| {
            let mut response = http::Response::new(Bytes::from(rejection.code().to_owned()));
            *response.status_mut() = rejection.status();
            response
        });
    let a = serve_verifier(layer).await;
    let b = serve_verifier(copy).await;
    let c = serve_verifier(reconfigured).await;
    for addr in [a, b, c] {
        assert_eq!(post_signed(addr, OLD).await, (StatusCode::OK, "old".into()));
    }
    keys.store(keys.load().without("old").unwrap()).unwrap();
    for addr in [a, b] {
        let (status, body) = post_signed(addr, OLD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains("signature_invalid"), "{body}");
        assert_eq!(post_signed(addr, NEW).await, (StatusCode::OK, "new".into()));
    }
    assert_eq!(
        post_signed(c, OLD).await,
        (StatusCode::UNAUTHORIZED, "signature_invalid".into())
    );
    // A blank ring is refused; the one in place keeps verifying.
    assert!(
        keys.store(KeyRing::single(Secret::from_string("  ")))
            .is_err()
    );
    assert_eq!(post_signed(a, NEW).await, (StatusCode::OK, "new".into()));
    assert_eq!(
        post_signed(a, "attacker-guess").await.0,
        StatusCode::UNAUTHORIZED
    );
}

// ---------------------------------------------------------------------------------------
// The key-rotation example.
// ---------------------------------------------------------------------------------------

// FINDING: the keys file strips `#` comments from the whole line, secret included: a secret
// containing `#` is silently cut at it (`k1 = ab#<rest>` installs the two-byte key `ab`).
// Anyone can then forge webhooks by brute-forcing a tiny key, and the real sender's
// signatures (over the whole secret) are refused. The example says a wrong file is refused
// with its line number; this one is accepted with a different key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_with_hash_is_not_silently_truncated() {
    let full = "ab#Zq9kP2xL7vN4mR8tW1yB6cF3hJ5";
    let running = start_example(&format!("k1 = {full}\n")).await;
    let (status, body) = running.webhook("ab").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a webhook signed with the two-byte prefix `ab` verified as {body:?}"
    );
}

// FINDING: reloads are not serialized and install what they read whenever they finish. A
// reload that read the keys file before a revocation and finishes after a later reload
// re-installs the revoked key (SIGHUP and `POST /reload` overlapping, or two SIGHUPs on a
// slow file system). Forced deterministically here: the first reload blocks on the proxies
// file (a FIFO) after reading the old keys; the key is revoked and a second reload installs
// that; then the first reload completes.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlapping_stale_reload_never_reinstates_a_revoked_key() {
    let running = start_example(&format!("new = {NEW}\nold = {OLD}\n")).await;
    assert_eq!(running.webhook(OLD).await, (StatusCode::OK, "old".into()));
    let dir = running.dir.path().to_owned();
    let proxies = dir.join("proxies");
    std::fs::remove_file(&proxies).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&proxies)
        .status()
        .unwrap();
    assert!(made.success());

    // Reload A: reads the keys (old + new), then blocks opening the FIFO.
    let stale = {
        let reloader = Arc::clone(&running.reloader);
        tokio::spawn(async move { reloader.reload().await })
    };
    // Opening the FIFO for writing returns once reload A has opened it for reading.
    let writer = {
        let proxies = proxies.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .open(proxies)
                .unwrap()
        })
        .await
        .unwrap()
    };
    // The operator revokes `old` and reloads (B): a regular proxies file again.
    std::fs::write(dir.join("proxies.next"), "# none\n").unwrap();
    std::fs::rename(dir.join("proxies.next"), &proxies).unwrap();
    write(&running.dir, "keys", &format!("new = {NEW}\n"));
    let mut revoke = {
        let reloader = Arc::clone(&running.reloader);
        tokio::spawn(async move { reloader.reload().await })
    };
    // Unserialized reloads let B finish now, before A; serialized ones make B wait for A.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), &mut revoke).await;

    // Reload A completes with what it read before the revocation; B (if it waited) after.
    drop(writer);
    let finished = stale.await.unwrap();
    if !revoke.is_finished() {
        revoke.await.unwrap().unwrap();
    }
    let (status, body) = running.webhook(OLD).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the revoked key verifies again ({body:?}) after a stale reload finished: {finished:?}"
    );
}

// Refused: a reload with a bad keys file changes nothing (not even the valid origins file
// next to it), says why with the file and line, never the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_file_on_reload_keeps_every_old_setting() {
    let running = start_example(&format!("old = {OLD}\n")).await;
    assert_eq!(
        running.whoami("https://app.example.com", "").await,
        (StatusCode::OK, "127.0.0.1".into())
    );
    write(&running.dir, "origins", "https://evil.example.net\n");
    for bad in [
        "blank =    \nold = s3cr3t-kept-out-of-errors\n".to_owned(),
        "s3cr3t-kept-out-of-errors\n".to_owned(),
        "= s3cr3t-kept-out-of-errors\n".to_owned(),
        "# nothing\n".to_owned(),
    ] {
        write(&running.dir, "keys", &bad);
        let err = running.reloader.reload().await.unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("keys"), "{text}");
        assert_eq!(running.webhook(OLD).await, (StatusCode::OK, "old".into()));
        assert_eq!(
            running.whoami("https://app.example.com", "").await.0,
            StatusCode::OK
        );
        assert_eq!(
            running.whoami("https://evil.example.net", "").await.0,
            StatusCode::FORBIDDEN
        );
    }
    // A bad origin with good keys: nothing changes either.
    write(&running.dir, "keys", &format!("new = {NEW}\n"));
    write(&running.dir, "origins", "*\n");
    assert!(running.reloader.reload().await.is_err());
    assert_eq!(running.webhook(OLD).await, (StatusCode::OK, "old".into()));
    assert_eq!(running.webhook(NEW).await.0, StatusCode::UNAUTHORIZED);
}

// Refused: the admin endpoint starts on loopback only (any form of a non-loopback address,
// an IPv4-mapped loopback included, is refused) and answers nothing but `POST /reload`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoint_is_loopback_only() {
    let running = start_example(&format!("old = {OLD}\n")).await;
    for addr in ["0.0.0.0:0", "[::]:0", "[::ffff:127.0.0.1]:0", "192.0.2.1:0"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let err = key_rotation::start_admin(addr, Arc::clone(&running.reloader))
            .await
            .unwrap_err();
        assert!(
            matches!(err, AdminError::NotLoopback(a) if a == addr),
            "{err}"
        );
    }
    let admin = key_rotation::start_admin(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&running.reloader),
    )
    .await
    .unwrap();
    let get = Request::get(format!("http://{admin}/reload"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(running.send(get).await.0, StatusCode::METHOD_NOT_ALLOWED);
    // A refused reload answers the file and line, never the key.
    write(&running.dir, "keys", "blank = \nold = s3cr3t-in-file\n");
    let post = Request::post(format!("http://{admin}/reload"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = running.send(post).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!body.contains("s3cr3t"), "{body}");
    assert_eq!(running.webhook(OLD).await, (StatusCode::OK, "old".into()));
}

// ---------------------------------------------------------------------------------------
// Metrics: bounded labels, every refusal counted once (custom responder included).
// ---------------------------------------------------------------------------------------

// Refused: 300 refusals from 300 distinct forged client IPs, answered by a custom responder,
// count exactly 300 in one series; no label value is request input.
#[test]
fn distinct_client_ips_refused_by_a_custom_responder_count_once_in_one_series() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use tollgate::client_ip::{IpAllowlistLayer, ResolveClientIpLayer};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let source = ClientIpSource::rightmost_trusted_range(
                ListHeader::XForwardedFor,
                "loopback".parse::<IpRanges>().unwrap(),
            );
            let allow = IpAllowlistLayer::new("203.0.113.0/24".parse().unwrap()).on_rejection(
                |rejection: &tollgate::core::Rejection| {
                    let mut response = http::Response::new(Bytes::from_static(b"nope"));
                    *response.status_mut() = rejection.status();
                    response
                },
            );
            let router = axum::Router::new()
                .route("/", axum::routing::get(|| async { "ok" }))
                .layer(allow)
                .layer(ResolveClientIpLayer::new(source));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await
            });
            let client: Client<HttpConnector, Full<Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            for i in 0..300u32 {
                let xff = format!("198.51.{}.{}", i / 250, i % 250 + 1);
                let request = Request::get(format!("http://{addr}/"))
                    .header("x-forwarded-for", xff)
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                assert_eq!(
                    send(&client, request).await,
                    (StatusCode::FORBIDDEN, "nope".into())
                );
            }
            let request = Request::get(format!("http://{addr}/"))
                .header("x-forwarded-for", "203.0.113.9")
                .body(Full::new(Bytes::new()))
                .unwrap();
            assert_eq!(send(&client, request).await, (StatusCode::OK, "ok".into()));
        });
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let counter = |name: &str, labels: &[(&str, &str)]| -> u64 {
        snapshot
            .iter()
            .filter(|(key, ..)| {
                let key = key.key();
                key.name() == name
                    && key.labels().count() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
            })
            .map(|(.., value)| match value {
                DebugValue::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    };
    assert_eq!(
        counter(
            "tollgate_requests_refused_total",
            &[("layer", "ip_allowlist"), ("code", "ip_not_allowed")]
        ),
        300
    );
    assert_eq!(
        counter(
            "tollgate_requests_allowed_total",
            &[("layer", "ip_allowlist")]
        ),
        1
    );
    assert_eq!(
        counter("tollgate_requests_allowed_total", &[("layer", "client_ip")]),
        301
    );
    for (key, ..) in &snapshot {
        for label in key.key().labels() {
            assert!(
                !label.value().contains('.') && !label.value().contains(':'),
                "request input in a label: {label:?}"
            );
        }
    }
    assert!(snapshot.len() <= 6, "{} series", snapshot.len());
}
