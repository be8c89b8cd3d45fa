//! Attack review 12: the inbound compositions as a user builds them from the README ("A
//! stacked example", "Rotating keys", "Running several instances", "Security model"), the
//! presets and the examples, attacked whole over loopback.
//!
//! A test whose doc starts with `FINDING:` asserts the secure behaviour and fails on the code
//! as reviewed; the others are regression tests of attacks the code withstood.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::HeaderName;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tollgate::client_ip::{
    ClientIpSource, ForwardUserIpLayer, IpAllowlistLayer, IpRanges, MissingClientIp,
    ResolveClientIpLayer,
};
use tollgate::core::{BoxError, BufferedBody, Key, KeyRing, KeyRingHandle, ManualClock, Secret};
use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
use tollgate::signature::{Canonical, StandardWebhooks, VerifySignatureLayer};
use tower::ServiceBuilder;

const NOW: u64 = 1_700_000_000;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `request` and reads the status and the error code of a JSON rejection (empty for
/// the handler's own answers).
async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> (StatusCode, String) {
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let code = json["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code)
}

async fn serve_router(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

// ---------------------------------------------------------------------------------------------
// 1. Standard Webhooks: the claim of a message id ends with its *first* delivery's window.
// ---------------------------------------------------------------------------------------------

/// A Standard Webhooks delivery for the webhook-receiver example's `/webhooks/standard`,
/// signed with its demo secret at `ts`.
fn standard_delivery(
    addr: SocketAddr,
    id: &str,
    ts: u64,
    body: &'static [u8],
) -> Request<Full<Bytes>> {
    let (_, whsec) = webhook_receiver::SECRET_VARS[2];
    let secret = StandardWebhooks::secret_from_whsec(whsec).unwrap();
    let signature = StandardWebhooks::new().compute(&secret, id, ts, body);
    Request::post(format!("http://{addr}/webhooks/standard"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

/// Was a FINDING, fixed (`NonceStore::claim_extending`): the webhook-receiver example (and every `VerifySignatureLayer(StandardWebhooks)` →
/// `ReplayGuardLayer` stack, whose claim names the *message*, its `webhook-id`) accepts one
/// message twice. The claim on the id is held until the first delivery's window ends
/// (`ts + 300`, at least the store's 600 s minimum retention); a later delivery of the same id
/// is refused as `replayed` but does not extend the claim, so once the first claim lapses
/// that later delivery (captured, or simply resent) is accepted while its own window is still
/// open.
///
/// Timeline: `T` delivery A (id `msg_twice`) → 200. `T+590` the sender's retry B (same id,
/// same body, stamped `T+590`; Standard Webhooks senders retry after 5 minutes and more when
/// an answer was lost) → 401 `replayed`. `T+601`, B again → **200**: `msg_twice` was handled
/// twice, well inside B's signed window (`T+890`). README: "No signed request is accepted
/// twice … A claim names the *message* (its signed id …)". Fix: when a claim is refused as
/// already seen, extend it to the later `expires_at` (memory: keep the max expiry in the
/// slot; Redis: `PEXPIREAT … GT` in the claim script), so an id stays claimed while any
/// signature of it seen so far can verify.
#[tokio::test]
async fn standard_webhooks_id_seen_twice_is_claimed_until_the_later_window_ends() {
    let clock = ManualClock::new(NOW);
    let mut config =
        webhook_receiver::Config::from_vars(webhook_receiver::Secrets::Demo, |_| None).unwrap();
    config.clock = Arc::new(clock.clone());
    let inbox = webhook_receiver::Inbox::default();
    let app = webhook_receiver::app(&config, inbox.clone()).unwrap();
    let addr = webhook_receiver::spawn("127.0.0.1:0".parse().unwrap(), app)
        .await
        .unwrap();
    let client = client();
    let body: &'static [u8] = br#"{"type":"payout.completed","amount":100}"#;

    let first = standard_delivery(addr, "msg_twice", NOW, body);
    assert_eq!(send(&client, first).await, (StatusCode::OK, String::new()));

    clock.set(NOW + 590);
    let retry = || standard_delivery(addr, "msg_twice", NOW + 590, body);
    assert_eq!(
        send(&client, retry()).await,
        (StatusCode::UNAUTHORIZED, "replayed".to_owned())
    );

    clock.set(NOW + 601);
    let again = send(&client, retry()).await;
    assert_eq!(
        (again, inbox.len()),
        ((StatusCode::UNAUTHORIZED, "replayed".to_owned()), 1),
        "message msg_twice handled twice: the claim on its id lapsed at the first delivery's \
         window while a later delivery of it was still valid"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Canonical without the query: a released claim lets another query in.
// ---------------------------------------------------------------------------------------------

/// Was a FINDING, fixed (the claim is kept): `Canonical::new().delimited().include_query(false)` recorded its signed content
/// (method, path *without* the query, timestamp, body) as covering the message, so a failed
/// handling (5xx) releases the claim. The query, which the handler reads, is not signed: after
/// the release an attacker who saw the request sends it with another query and it is accepted,
/// before the sender's retry. README: "a claim whose signature binds the body … is released
/// before the response goes out, so the sender's retry — the same message — is accepted"; here
/// the accepted "retry" is another request (`?amount=100` became `?amount=99999`).
///
/// Fix: a signature that leaves part of the request target out does not cover the message:
/// record it with `with_ambiguous_signed_content` (claim kept), or document that
/// `include_query(false)` must not be used with a query the handler reads.
#[tokio::test]
async fn canonical_without_query_release_never_admits_another_query() {
    let clock = ManualClock::new(NOW);
    let secret = Secret::from_string("attack12-canonical-secret");
    let scheme = Canonical::new().delimited().include_query(false);
    let store = MemoryNonceStore::new(1_024).with_clock(clock.clone());
    let queries = Arc::new(Mutex::new(Vec::<String>::new()));
    let runs = Arc::new(AtomicUsize::new(0));
    let (seen, counter) = (queries.clone(), runs.clone());
    let handler = tower::service_fn(move |request: Request<BufferedBody>| {
        let (seen, counter) = (seen.clone(), counter.clone());
        async move {
            seen.lock()
                .unwrap()
                .push(request.uri().query().unwrap_or_default().to_owned());
            // The first handling fails (a provider outage): the claim is released.
            let status = if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        }
    });
    let stack = ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(scheme.clone(), KeyRing::new(Key::new("k1", secret.clone())))
                .unwrap()
                .clock(clock.clone()),
        )
        .layer(ReplayGuardLayer::new(store).clock(clock.clone()))
        .service(handler);
    let app = Router::new().route_service("/v1/payouts", stack);
    let addr = serve_router(app).await;
    let client = client();

    let body = br#"{"to":"acct_1"}"#;
    let signature = scheme.compute(&secret, "POST", "/v1/payouts", body, NOW);
    let request = |query: &str| {
        Request::post(format!("http://{addr}/v1/payouts?{query}"))
            .header("x-timestamp", NOW.to_string())
            .header("x-signature", signature.clone())
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    };
    assert_eq!(
        send(&client, request("amount=100")).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let forged = send(&client, request("amount=99999")).await;
    assert_eq!(
        (forged, queries.lock().unwrap().clone()),
        (
            (StatusCode::UNAUTHORIZED, "replayed".to_owned()),
            vec!["amount=100".to_owned()]
        ),
        "a released claim admitted the same signature with another, unsigned query"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Two client-IP layers: a continuing inner one leaves the outer one's IP in place.
// ---------------------------------------------------------------------------------------------

/// What the handler's outbound call carried as `x-user-ip` (through `ForwardUserIpLayer`, fed
/// by the inbound task's scope), or `refused` when the layer found no client IP.
async fn forwarded_user_ip() -> String {
    let seen = Arc::new(Mutex::new(None::<String>));
    let recorder = seen.clone();
    let outbound = ServiceBuilder::new()
        .layer(ForwardUserIpLayer::new())
        .service(tower::service_fn(move |request: Request<Full<Bytes>>| {
            let recorder = recorder.clone();
            async move {
                *recorder.lock().unwrap() = request
                    .headers()
                    .get("x-user-ip")
                    .map(|v| v.to_str().unwrap().to_owned());
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            }
        }));
    let request = Request::post("https://api.provider.example/v1/session")
        .body(Full::new(Bytes::new()))
        .unwrap();
    match tower::ServiceExt::oneshot(outbound, request).await {
        Ok(_) => seen
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| "none".to_owned()),
        Err(err) if err.downcast_ref::<MissingClientIp>().is_some() => "refused".to_owned(),
        Err(err) => format!("error: {err}"),
    }
}

/// Was a FINDING, fixed (the outer IP is removed and its scope hidden): `continue_on_failure` promises that when no client IP is found (a source trusted
/// the peer as its proxy and could not read its header) "an inner `IpAllowlistLayer` refuses
/// such a request … instead of judging the peer, and `ForwardUserIpLayer` fails the outbound
/// call with `MissingClientIp` (no task-local scope is opened)". When another
/// `ResolveClientIpLayer` runs outside it (the README's stacked example resolves the IP
/// Router-wide; a route adds the proxy-aware source of its own), the failing inner layer
/// leaves the outer layer's `ClientIp` extension and task-local scope in place: the IP
/// allowlist judges that IP and `x-user-ip` carries it — here the trusted proxy's own address
/// (127.0.0.1), the one thing README "Security model" says is never reported as the client.
///
/// Fix: on failure, `ResolveClientIp` removes any `ClientIp` already in the extensions and
/// runs the inner service in a scope that hides an outer one (e.g. a task-local
/// `Option<ClientIp>` set to `None`), so every consumer sees "no client IP".
#[tokio::test]
async fn a_continuing_inner_client_ip_layer_never_leaves_an_outer_ip_behind() {
    let proxy: IpRanges = "127.0.0.0/8".parse().unwrap();
    let inner = || {
        ResolveClientIpLayer::new(ClientIpSource::header(
            HeaderName::from_static("x-real-ip"),
            proxy.clone(),
        ))
        .continue_on_failure()
    };
    let app = Router::new()
        // The allowlist admits the proxy's range only to show whose address it judged.
        .route(
            "/allowlisted",
            post(|| async { "handled" }).layer(
                ServiceBuilder::new()
                    .layer(inner())
                    .layer(IpAllowlistLayer::new(proxy.clone())),
            ),
        )
        .route(
            "/forward",
            post(|| async { forwarded_user_ip().await }).layer(inner()),
        )
        .layer(ResolveClientIpLayer::new(ClientIpSource::remote_addr()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let client = client();
    // From the trusted proxy (loopback), without its `x-real-ip`: there is no client IP.
    let post_to = |path: &str| {
        Request::post(format!("http://{addr}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let allowlisted = send(&client, post_to("/allowlisted")).await;
    let response = client.request(post_to("/forward")).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        (allowlisted, String::from_utf8_lossy(&body).into_owned()),
        (
            (StatusCode::BAD_REQUEST, "invalid_client_ip".to_owned()),
            "refused".to_owned()
        ),
        "the allowlist judged, and `x-user-ip` carried, the trusted proxy's own address"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. README "Rotating keys": deploy and revoke are read-modify-write without a compare.
// ---------------------------------------------------------------------------------------------

/// README "Rotating keys", `deploy_new_key`, verbatim but for the key id (the README's own
/// copy is compiled and checked against the README by the `tollgate-readme` tests).
fn deploy_new_key(keys: &KeyRingHandle, new_secret: Secret) -> Result<(), BoxError> {
    keys.update(|ring| Ok::<_, BoxError>(ring.clone().rotate(Key::new("2026-11", new_secret))))?;
    Ok(())
}

/// README "Rotating keys", `revoke_old_key`, verbatim but for the key id.
fn revoke_leaked_key(keys: &KeyRingHandle) -> Result<(), BoxError> {
    keys.update(|ring| {
        ring.without("2026-05")
            .ok_or_else(|| BoxError::from("no key would remain"))
    })?;
    Ok(())
}

/// Was a FINDING (low), fixed: `KeyRingHandle` offered `load` and `store`/`swap` but no
/// atomic update, and the README's rotation functions were load-modify-store. A revocation of a leaked key that
/// runs while a deploy is in flight (a SIGHUP reload and an admin call, two operators, a
/// deploy script and an incident responder) is lost when the deploy stores the ring it
/// loaded before the revocation: the leaked key verifies again, silently ("a revoked key fails
/// its very next use" no longer holds). Each side returns `Ok`.
///
/// Reproduced with the README's two functions on two threads, released together by a
/// barrier: about one run in two thousand loses the revocation on a 2-core machine.
/// Fixed by `KeyRingHandle::update(|ring| -> Result<KeyRing, _>)`: writers of one handle run
/// one at a time (readers never wait), and the new ring is checked like `store`'s; the README
/// uses it.
#[test]
fn readme_rotation_functions_never_lose_a_revocation() {
    use std::sync::Barrier;
    const RUNS: usize = 20_000;
    let ring = || {
        KeyRing::new(Key::new("2026-05", Secret::from_string("leaked-secret")))
            .rotate(Key::new("2026-08", Secret::from_string("current-secret")))
    };
    let handle = Arc::new(Mutex::new(KeyRingHandle::new(ring())));
    let start = Arc::new(Barrier::new(2));
    let done = Arc::new(Barrier::new(2));
    let deployer = {
        let (handle, start, done) = (handle.clone(), start.clone(), done.clone());
        std::thread::spawn(move || {
            for _ in 0..RUNS {
                start.wait();
                let keys = handle.lock().unwrap().clone();
                deploy_new_key(&keys, Secret::from_string("new-secret")).unwrap();
                done.wait();
            }
        })
    };
    let mut reinstated = 0;
    for _ in 0..RUNS {
        let keys = KeyRingHandle::new(ring());
        *handle.lock().unwrap() = keys.clone();
        start.wait();
        revoke_leaked_key(&keys).unwrap();
        done.wait();
        // Both calls returned Ok: the leaked key must be gone.
        if keys.load().keys().iter().any(|key| key.id() == "2026-05") {
            reinstated += 1;
        }
    }
    deployer.join().unwrap();
    assert_eq!(
        reinstated, 0,
        "runs of {RUNS} in which a revocation of the leaked key was lost to a concurrent \
         deploy (the leaked key verifies again)"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Control: the verifier's body limit and deadline hold per stream over HTTP/2 (h2c).
// ---------------------------------------------------------------------------------------------

type Frames = http_body_util::StreamBody<
    tokio_stream::wrappers::ReceiverStream<Result<hyper::body::Frame<Bytes>, Infallible>>,
>;

/// control: holds — over HTTP/2 prior knowledge, on one connection, a stream that declares
/// more than the limit is 413 before any byte of it is read, a stream without a length that
/// sends more than the limit is 413, and streams that trickle their body are each cut off
/// at the body deadline (408), counted from the first read and not reset by the trickle,
/// while a signed request on the same connection is answered 200.
#[tokio::test]
async fn verifier_limits_hold_per_stream_over_h2c() {
    use std::time::{Duration, Instant};
    use tollgate::signature::BodyHmac;
    const SECRET: &str = "attack12-h2-secret";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let service = ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(BodyHmac::onekey(), Secret::from_string(SECRET))
                .unwrap()
                .body_limit(1_024)
                .body_timeout(Duration::from_millis(300)),
        )
        .service(tower::service_fn(move |_: Request<BufferedBody>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok")))) }
        }));
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            )
            .await
            .ok();
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let signature = |body: &[u8]| BodyHmac::onekey().compute(&Secret::from_string(SECRET), body);
    let request = |length: Option<usize>, body: Frames, signature: &str| {
        let mut builder =
            Request::post(format!("http://{addr}/webhook")).header("payload-signature", signature);
        if let Some(length) = length {
            builder = builder.header("content-length", length);
        }
        builder.body(body).unwrap()
    };
    let stream = || {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        (
            tx,
            http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
    };
    let code = |response: Response<hyper::body::Incoming>| async move {
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        (
            status,
            json["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };

    // Declared over the limit, nothing sent: 413 at once.
    let (_hold, body) = stream();
    let started = Instant::now();
    let response = sender
        .clone()
        .send_request(request(Some(10_000), body, &signature(b"")))
        .await
        .unwrap();
    assert_eq!(
        code(response).await,
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large".to_owned()
        )
    );
    assert!(started.elapsed() < Duration::from_millis(250));

    // No length, more than the limit in small frames: 413.
    let (tx, body) = stream();
    let pending = tokio::spawn(
        sender
            .clone()
            .send_request(request(None, body, &signature(b""))),
    );
    for _ in 0..40 {
        if tx
            .send(Ok(hyper::body::Frame::data(Bytes::from_static(
                &[b'x'; 64],
            ))))
            .await
            .is_err()
        {
            break;
        }
    }
    drop(tx);
    assert_eq!(
        code(pending.await.unwrap().unwrap()).await,
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large".to_owned()
        )
    );

    // Five streams trickling a byte every 20 ms: each cut off by the 300 ms deadline.
    let started = Instant::now();
    let mut trickles = Vec::new();
    for _ in 0..5 {
        let (tx, body) = stream();
        let response = tokio::spawn(sender.clone().send_request(request(
            None,
            body,
            &signature(b""),
        )));
        tokio::spawn(async move {
            while tx
                .send(Ok(hyper::body::Frame::data(Bytes::from_static(b"x"))))
                .await
                .is_ok()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        trickles.push(response);
    }
    // A signed request on the same connection meanwhile: answered.
    let body = br#"{"event":"payout"}"#;
    let (tx, frames) = stream();
    tx.send(Ok(hyper::body::Frame::data(Bytes::from_static(body))))
        .await
        .unwrap();
    drop(tx);
    let signed = sender
        .clone()
        .send_request(request(Some(body.len()), frames, &signature(body)))
        .await
        .unwrap();
    assert_eq!(code(signed).await, (StatusCode::OK, String::new()));
    for trickle in trickles {
        assert_eq!(
            code(trickle.await.unwrap().unwrap()).await,
            (StatusCode::REQUEST_TIMEOUT, "body_timeout".to_owned())
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// 6. The key-rotation example's webhook route has no replay guard.
// ---------------------------------------------------------------------------------------------

// The key-rotation example in-process on loopback: its own tests' harness.
#[path = "../../examples/key-rotation/tests/common/mod.rs"]
mod rotation;

/// Was a FINDING (low), fixed: the `key-rotation` example verified `POST /webhooks` with the
/// body-only `X-Webhook-Signature` scheme and stopped there: no `ReplayGuardLayer`. A body-only
/// signature never expires, so one captured delivery was accepted again, unchanged, for ever.
/// README: "The examples are templates, so they are safe to copy", and "Security model" asks
/// for the replay guard inside the verifier with an explicit `untimed_retention`. The route
/// now claims each signed body for `WEBHOOK_RETENTION`, whichever key verified it.
#[tokio::test]
async fn key_rotation_example_never_accepts_one_webhook_twice() {
    // Mid-rotation: both keys verify.
    let keys = format!("new = {}\nold = {}\n", rotation::NEW, rotation::OLD);
    let running = rotation::start_with_keys(&keys).await;
    let delivery = Bytes::from_static(rotation::BODY);
    assert_eq!(
        running.webhook_body(rotation::OLD, delivery.clone()).await,
        (StatusCode::OK, "old".to_owned())
    );
    for secret in [rotation::OLD, rotation::NEW] {
        let (status, body) = running.webhook_body(secret, delivery.clone()).await;
        assert_eq!(
            (status, body.contains("replayed")),
            (StatusCode::UNAUTHORIZED, true),
            "the same signed webhook was accepted again: {body}"
        );
    }
}
