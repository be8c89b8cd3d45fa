//! Keys swapped while the server runs, through a `KeyRingHandle`, over real sockets:
//! a request in flight is verified by exactly one version, a revoked key fails its very next
//! use, and many clients verifying while another task swaps see no torn state and lose no
//! request. The signer's handle is tested the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::extract::Request as AxumRequest;
use axum::{Extension, Router, routing::post};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tollgate_core::{BufferedBody, Key, KeyRing, KeyRingHandle, Secret, VerifiedSignature};
use tollgate_signature::{
    BodyHmac, ConfigError, RequestParts, Scheme, SignError, SignRequest, SignRequestLayer,
    Upstream, VerifySignatureLayer,
};
use tower::{ServiceBuilder, ServiceExt};

const BODY: &[u8] = br#"{"event":"payment.completed","amount":"100.00"}"#;

fn secret(n: usize) -> Secret {
    Secret::from_string(format!("rotation-secret-{n}-0123456789abcdef"))
}

/// The `payload-signature` of `body` under `secret`.
fn sign(secret: &Secret, body: &[u8]) -> String {
    let (method, uri, headers) = (Method::POST, Uri::from_static("/hook"), HeaderMap::new());
    let added = BodyHmac::onekey()
        .sign(secret, &RequestParts::new(&method, &uri, &headers, body), 0)
        .unwrap();
    added[0].1.to_str().unwrap().to_owned()
}

/// An axum server on loopback whose handler answers the id of the key that verified; an outer
/// layer notifies `entered` when a request reached the verifier (its body may still be
/// arriving).
async fn serve(keys: KeyRingHandle, entered: Arc<Notify>) -> SocketAddr {
    async fn handler(Extension(verified): Extension<VerifiedSignature>) -> String {
        verified.key_id().to_owned()
    }
    let verify = VerifySignatureLayer::new(BodyHmac::onekey(), keys).unwrap();
    let app = Router::new()
        .route("/hook", post(handler))
        .layer(verify)
        .layer(axum::middleware::map_request(
            move |request: AxumRequest| {
                let entered = Arc::clone(&entered);
                async move {
                    entered.notify_one();
                    request
                }
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn post_signed(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    signature: &str,
) -> (StatusCode, String) {
    let request = Request::post(format!("http://{addr}/hook"))
        .header("content-type", "application/json")
        .header("payload-signature", signature)
        .body(Full::new(Bytes::from_static(BODY)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Sends the head and half the body, waits until the server's stack has the request, runs
/// `during`, sends the rest: the status and body of the answer.
async fn in_flight(
    addr: SocketAddr,
    entered: &Notify,
    signature: &str,
    during: impl FnOnce(),
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /hook HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         payload-signature: {signature}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        BODY.len()
    );
    let (first, rest) = BODY.split_at(BODY.len() / 2);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    entered.notified().await;
    during();
    stream.write_all(rest).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

/// A request whose body is still arriving while the ring is swapped is verified by the one
/// version loaded when its body is complete: with the same secret under a new key id, it
/// reports the new id (never the old id, never a mix); with its key revoked meanwhile, 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_during_a_swap_is_verified_by_exactly_one_version() {
    let keys = KeyRingHandle::new(KeyRing::new(Key::new("v1", secret(1))));
    let entered = Arc::new(Notify::new());
    let addr = serve(keys.clone(), Arc::clone(&entered)).await;
    let signature = sign(&secret(1), BODY);

    // Same secret, new id: the id proves which version verified the request.
    let (status, body) = in_flight(addr, &entered, &signature, || {
        keys.store(KeyRing::new(Key::new("v2", secret(1)))).unwrap();
    })
    .await;
    assert_eq!((status, body.as_str()), (200, "v2"));

    // Its key revoked while its body arrives: refused, as the next request would be.
    let (status, body) = in_flight(addr, &entered, &signature, || {
        keys.store(KeyRing::new(Key::new("v3", secret(3)))).unwrap();
    })
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        r#"{"error":{"code":"signature_invalid","message":"the signature does not match"}}"#
    );
}

/// New key, deploy, verify, revoke old: the old key works until it is revoked and fails on
/// its very next use after, on the same keep-alive connection.
#[tokio::test]
async fn revoking_a_key_fails_its_very_next_use() {
    let keys = KeyRingHandle::new(KeyRing::new(Key::new("old", secret(1))));
    let addr = serve(keys.clone(), Arc::new(Notify::new())).await;
    let client = client();
    let (old, new) = (sign(&secret(1), BODY), sign(&secret(2), BODY));

    assert_eq!(
        post_signed(&client, addr, &old).await,
        (StatusCode::OK, "old".into())
    );
    assert_eq!(
        post_signed(&client, addr, &new).await.0,
        StatusCode::UNAUTHORIZED
    );

    // New key deployed next to the old one: both verify.
    let rotated = keys
        .load()
        .as_ref()
        .clone()
        .rotate(Key::new("new", secret(2)));
    keys.store(rotated).unwrap();
    assert_eq!(
        post_signed(&client, addr, &new).await,
        (StatusCode::OK, "new".into())
    );
    assert_eq!(
        post_signed(&client, addr, &old).await,
        (StatusCode::OK, "old".into())
    );

    // Revoke the old key: its very next use is refused; the new key still verifies.
    keys.store(keys.load().without("old").unwrap()).unwrap();
    let (status, body) = post_signed(&client, addr, &old).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        r#"{"error":{"code":"signature_invalid","message":"the signature does not match"}}"#
    );
    assert_eq!(
        post_signed(&client, addr, &new).await,
        (StatusCode::OK, "new".into())
    );
}

/// What the handle refuses to store, a layer would refuse to be built with: a blank signing
/// key. The ring in place keeps verifying.
#[tokio::test]
async fn a_swap_never_installs_a_ring_the_layer_refuses() {
    let blank = || KeyRing::new(Key::new("blank", Secret::from_string(" \t")));
    assert_eq!(
        VerifySignatureLayer::new(BodyHmac::onekey(), blank()).unwrap_err(),
        ConfigError::NoUsableKey
    );
    let keys = KeyRingHandle::new(KeyRing::new(Key::new("good", secret(1))));
    let addr = serve(keys.clone(), Arc::new(Notify::new())).await;
    assert!(keys.store(blank()).is_err());
    let client = client();
    let good = sign(&secret(1), BODY);
    assert_eq!(
        post_signed(&client, addr, &good).await,
        (StatusCode::OK, "good".into())
    );
}

/// The ring of version `n`: two of four secrets, under ids naming the version and the secret
/// (`"v7/s3"`), signing key first.
fn version(n: usize) -> KeyRing {
    let (a, b) = (n % 4, (n + 1) % 4);
    KeyRing::new(Key::new(format!("v{n}/s{b}"), secret(b)))
        .rotate(Key::new(format!("v{n}/s{a}"), secret(a)))
}

/// Many clients verify over real sockets while another task swaps the ring in a loop. Every
/// request is answered (none lost), and every accepted one names a key of one version that
/// holds exactly the secret it was signed with: no torn state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_verifiers_while_keys_swap_in_a_loop_see_no_torn_state() {
    const TASKS: usize = 16;
    const REQUESTS: usize = 40;
    let keys = KeyRingHandle::new(version(0));
    let addr = serve(keys.clone(), Arc::new(Notify::new())).await;
    let done = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (keys, done) = (keys.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                n += 1;
                keys.store(version(n)).unwrap();
                tokio::task::yield_now().await;
            }
            n
        })
    };
    let (accepted, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (accepted, refused) = (Arc::clone(&accepted), Arc::clone(&refused));
        tasks.push(tokio::spawn(async move {
            let client = client();
            for i in 0..REQUESTS {
                let j = (task + i) % 4;
                let (status, body) = post_signed(&client, addr, &sign(&secret(j), BODY)).await;
                match status {
                    StatusCode::OK => {
                        let (v, s) = body.split_once('/').unwrap();
                        let n: usize = v.strip_prefix('v').unwrap().parse().unwrap();
                        assert_eq!(s, format!("s{j}"), "signed with s{j}, verified as {body}");
                        assert!(j == n % 4 || j == (n + 1) % 4, "{body} does not hold s{j}");
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    StatusCode::UNAUTHORIZED => {
                        assert!(body.contains(r#""code":"signature_invalid""#), "{body}");
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("unexpected {other}: {body}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let swaps = swapper.await.unwrap();
    let (accepted, refused) = (
        accepted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    assert_eq!(accepted + refused, TASKS * REQUESTS, "a request was lost");
    assert!(
        accepted > 0 && refused > 0,
        "accepted {accepted}, refused {refused}"
    );
    assert!(swaps > 10, "only {swaps} swaps ran during the requests");
}

/// The signer takes a handle too: each request signs with the signing key of the version
/// loaded in `call`; a ring whose signing key expired refuses, and a swap heals it.
#[tokio::test]
async fn the_signer_follows_its_handle() {
    let server_keys =
        KeyRingHandle::new(KeyRing::new(Key::new("a", secret(1))).rotate(Key::new("b", secret(2))));
    let addr = serve(server_keys, Arc::new(Notify::new())).await;
    let signer_keys = KeyRingHandle::new(KeyRing::new(Key::new("a", secret(1))));
    let upstream = Upstream::parse(&format!("http://{addr}")).unwrap();
    let client = ServiceBuilder::new()
        .layer(SignRequestLayer::new(BodyHmac::onekey(), signer_keys.clone(), upstream).unwrap())
        .service(Client::builder(TokioExecutor::new()).build_http::<BufferedBody>());
    let send = |client: SignRequest<Client<HttpConnector, BufferedBody>>| async move {
        let request = Request::post(format!("http://{addr}/hook"))
            .body(Full::new(Bytes::from_static(BODY)))
            .unwrap();
        let response = client.oneshot(request).await?;
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Ok::<_, tollgate_core::BoxError>(body)
    };
    assert_eq!(send(client.clone()).await.unwrap(), "a");
    signer_keys
        .store(KeyRing::new(Key::new("b", secret(2))))
        .unwrap();
    assert_eq!(send(client.clone()).await.unwrap(), "b");
    signer_keys
        .store(KeyRing::new(Key::new("gone", secret(2)).not_after(1)))
        .unwrap();
    let error = send(client.clone()).await.unwrap_err();
    assert!(
        matches!(error.downcast_ref::<SignError>(), Some(SignError::KeyExpired { key_id }) if key_id.as_ref() as &str == "gone"),
        "{error}"
    );
    assert!(
        signer_keys
            .store(KeyRing::single(Secret::from_string("")))
            .is_err()
    );
    signer_keys
        .store(KeyRing::new(Key::new("a", secret(1))))
        .unwrap();
    assert_eq!(send(client).await.unwrap(), "a");
}
